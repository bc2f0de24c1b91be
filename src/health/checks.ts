import { constants } from 'node:fs';
import { access, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { llamaServerVersion } from '../provision/llama-binary.js';

/** One readiness condition; throws (or rejects) with a human-readable reason when not met. */
export interface ReadinessCheck {
  name: string;
  check(): Promise<void> | void;
  /** Also run on a timer, so a failure is logged even where nothing polls /ready. */
  watch?: boolean;
}

/**
 * The database answers: SQLite's files are still the ones it opened (an inode check), PostgreSQL
 * is reachable.
 */
export function storeCheck(store: { problem(): Promise<string | undefined> }): ReadinessCheck {
  return {
    name: 'store',
    watch: true,
    async check() {
      const problem = await store.problem();
      if (problem) throw new Error(problem);
    },
  };
}

/** The binary must exist, be executable and have answered `--version` once (cached: it costs a spawn). */
export function binaryCheck(binary: () => string): ReadinessCheck {
  let verified: string | undefined;
  return {
    name: 'llama_server',
    async check() {
      const path = binary();
      await access(path, constants.X_OK);
      if (verified === path) return;
      const version = await llamaServerVersion(path);
      if (!/\d+\.\d+/.test(version)) throw new Error(`${path} --version printed "${version}"`);
      verified = path;
    },
  };
}

/** A directory where the store lives must accept a write; used until the store offers its own probe. */
export function writableDirCheck(name: string, dir: () => string): ReadinessCheck {
  return {
    name,
    async check() {
      const d = dir();
      await mkdir(d, { recursive: true });
      const probe = join(d, `.ready-probe-${process.pid}`);
      await writeFile(probe, '');
      await rm(probe, { force: true });
    },
  };
}

export function configCheck(config: () => unknown): ReadinessCheck {
  return {
    name: 'config',
    check() {
      if (!config()) throw new Error('no configuration loaded');
    },
  };
}
