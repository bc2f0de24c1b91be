import { execFileSync } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;
/** The `corral` program (package.json's bin), as users run it. */
export const CLI = join(root, 'dist/src/cli.js');

async function newestSource(d: string): Promise<number> {
  let newest = 0;
  for (const e of await readdir(d, { withFileTypes: true })) {
    const p = join(d, e.name);
    newest = Math.max(newest, e.isDirectory() ? await newestSource(p) : (await stat(p)).mtimeMs);
  }
  return newest;
}

/** Compiles the CLI when src/ is newer than it (npm test's pretest builds it too); returns its path. */
export async function builtCli(): Promise<string> {
  const built = await stat(CLI).then(
    (s) => s.mtimeMs,
    () => 0,
  );
  if (built < (await newestSource(join(root, 'src'))))
    execFileSync(join(root, 'node_modules/.bin/tsc'), ['-p', root], { stdio: 'inherit' });
  return CLI;
}
