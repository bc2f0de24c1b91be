/**
 * How `corral` starts Node: the settings on the first line of src/cli.ts (its `#!/usr/bin/env -S`
 * line sets them, so `corral serve`, `npx corral serve` and `npm start` all get them; only
 * `node dist/src/cli.js` bypasses that line). Each lowers the gateway's idle RSS (`npm run bench`
 * reports it):
 * - `--max-semi-space-size=2` caps V8's young generation (about −20 MB idle);
 * - `--v8-pool-size=1`: one V8 worker thread instead of four, fewer stacks and malloc arenas (−3.5 MB);
 * - `--liftoff-only` keeps undici's llhttp WebAssembly parser on the baseline compiler: its TurboFan
 *   tier-up allocates about 30 MB of compiler memory, part of which stays resident;
 * - `MALLOC_MMAP_THRESHOLD_` fixes glibc's mmap threshold, so large transient buffers are unmapped
 *   after use instead of fragmenting the main heap (without it idle RSS is bimodal).
 * Not `--optimize-for-size`: under 200 concurrent streams its extra scavenges cost ~0.7 ms of gateway
 * CPU per request for an idle saving that is not stable.
 */
export const NODE_FLAGS = ['--max-semi-space-size=2', '--v8-pool-size=1', '--liftoff-only'] as const;
export const GATEWAY_ENV = { MALLOC_MMAP_THRESHOLD_: '131072' } as const;

/** The settings this process was started without, by name; empty when it has them all. */
export function missingMemorySettings(
  execArgv: readonly string[] = process.execArgv,
  env: NodeJS.ProcessEnv = process.env,
): string[] {
  const missing: string[] = NODE_FLAGS.filter((f) => !execArgv.includes(f));
  for (const [name, value] of Object.entries(GATEWAY_ENV)) if (env[name] !== value) missing.push(`${name}=${value}`);
  return missing;
}
