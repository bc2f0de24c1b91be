/**
 * The Node runtime settings Corral runs with. They are set by the launcher, bin/corral, that every way
 * of starting Corral goes through (the `corral` command, `npm start`, systemd); a test holds its exec
 * line equal to these. Only `node dist/src/cli.js` bypasses it, and `corral serve` then logs what it
 * lacks. docs/performance.md ("Runtime flags") has the measurements:
 * - `--max-semi-space-size=2` caps V8's young generation (lower idle RSS);
 * - `--v8-pool-size=1`: one V8 worker thread instead of one per core, fewer stacks and malloc arenas;
 * - `--liftoff-only` keeps undici's llhttp WebAssembly parser on the baseline compiler: its TurboFan
 *   tier-up allocates compiler memory, part of which stays resident;
 * - `MALLOC_MMAP_THRESHOLD_` fixes glibc's mmap threshold, so large transient buffers are unmapped
 *   after use instead of fragmenting the main heap.
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
