import { isDeepStrictEqual } from 'node:util';
import type { Config } from './schema.js';

/**
 * Human-readable differences between two configs, for logs and the admin UI. What each change
 * does to running processes is decided by the scheduler (by comparing launch fingerprints).
 */
export function diffConfig(before: Config, after: Config): string[] {
  const changes: string[] = [];
  const names = new Set([...Object.keys(before.models), ...Object.keys(after.models)]);
  for (const name of [...names].sort()) {
    const a = before.models[name];
    const b = after.models[name];
    if (!a && b) changes.push(`model ${name} added`);
    else if (a && !b) changes.push(`model ${name} removed`);
    else if (a && b && !isDeepStrictEqual(a, b)) {
      const fields = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter(
        (k) => !isDeepStrictEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
      );
      changes.push(`model ${name} changed (${fields.join(', ')})`);
    }
  }
  const restartOnly = new Set(['server', 'store', 'auth', 'metrics']);
  for (const key of Object.keys(after) as (keyof Config)[]) {
    if (key === 'models' || isDeepStrictEqual(before[key], after[key])) continue;
    changes.push(restartOnly.has(key) ? `${key} changed (takes effect after a restart of Corral)` : `${key} changed`);
  }
  return changes;
}
