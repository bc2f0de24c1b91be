import { execa } from 'execa';
import { isExecutable } from '../../src/provision/llama-binary.js';

/**
 * Installs a Debian package the tests need unless `binary` is already there, saying what and why.
 * `npm test` runs the provision scripts first so a fresh machine gets them; apt-get needs root (CI and
 * the dev machines are root); elsewhere it prints the command to run and the tests that need it skip.
 */
export async function ensureDebianPackage(opts: { binary: string; pkg: string; why: string }): Promise<void> {
  if (await isExecutable(opts.binary)) {
    process.stderr.write(`[provision] ${opts.why}: ${opts.binary}\n`);
    return;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write(
      `[provision] ${opts.binary} is missing and this is not root: ` +
        `install it with "apt-get install -y ${opts.pkg}" (${opts.why})\n`,
    );
    return;
  }
  process.stderr.write(
    `[provision] ${opts.why}: ${opts.binary} is missing, installing Debian's "${opts.pkg}" package ` +
      `(apt-get update && apt-get install ${opts.pkg})\n`,
  );
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await execa('apt-get', ['update', '-qq'], { env, stdio: 'inherit' });
  await execa('apt-get', ['install', '-y', '-qq', '--no-install-recommends', opts.pkg], { env, stdio: 'inherit' });
}

/** Runs a provision script's main, reporting a failure as one line and exit code 1. */
export function provision(what: string, main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    process.stderr.write(`[provision] ${what}: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
