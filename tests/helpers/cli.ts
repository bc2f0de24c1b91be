import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;
/** The compiled entry point, for tests that start it with `node` themselves. */
export const CLI = join(root, 'dist/src/cli.js');
/** The `corral` program (package.json's bin) as users run it: the launcher with Corral's runtime flags. */
export const LAUNCHER = join(root, 'bin/corral');

/** Compiles when a source is newer than the last build (npm test's pretest builds too); returns the launcher. */
export async function builtCli(): Promise<string> {
  execFileSync(join(root, 'bin/build-if-changed'), { stdio: 'inherit' });
  return LAUNCHER;
}
