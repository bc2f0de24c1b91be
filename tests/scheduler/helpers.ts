import { readFile, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { parse, stringify } from 'yaml';
import type { Scheduler } from '../../src/scheduler/scheduler.js';
import type { ReloadState } from '../../src/gateway.js';
import type { TestGateway } from '../helpers/gateway.js';

/** Resolves when `check()` holds, re-checking on every scheduler change (no sleeps). */
export function until(scheduler: Scheduler, check: () => boolean, timeoutMs = 15_000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (check()) return resolve();
    const timer = setTimeout(() => {
      scheduler.off('changed', onChange);
      reject(new Error('condition not reached in time'));
    }, timeoutMs);
    const onChange = (): void => {
      if (!check()) return;
      clearTimeout(timer);
      scheduler.off('changed', onChange);
      resolve();
    };
    scheduler.on('changed', onChange);
  });
}

/** Rewrites the test gateway's YAML and waits for the reload it triggers. */
const lastGood = new Map<string, string>();

export async function editConfig(
  t: TestGateway,
  // biome-ignore lint/suspicious/noConfusingVoidType: an edit either mutates the config or returns new YAML text
  edit: (config: Record<string, any>) => void | string,
): Promise<ReloadState> {
  let text = await readFile(t.configFile, 'utf8');
  try {
    parse(text);
    lastGood.set(t.configFile, text);
  } catch {
    // The previous edit was deliberately broken: edit the last parseable version instead.
    text = lastGood.get(t.configFile) ?? '{}';
  }
  const config = parse(text) as Record<string, any>;
  const replaced = edit(config);
  const reloaded = once(t.gw.events, 'reload') as Promise<[ReloadState]>;
  await writeFile(t.configFile, typeof replaced === 'string' ? replaced : stringify(config));
  return (await reloaded)[0];
}

export function pidOf(t: TestGateway, name: string): number | undefined {
  return t.gw.scheduler.loaded().find((l) => l.name === name)?.pid;
}

/** True while the process exists and is not a zombie. */
export async function running(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}
