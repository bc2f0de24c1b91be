import { execa } from 'execa';
import { isExecutable } from '../../src/provision/llama-binary.js';

/**
 * The browser tests drive Debian's Chromium (browser downloads do not work on these machines).
 * `npm test` runs this first so a fresh machine gets it; it needs root (CI and the dev machines are).
 */
const CHROMIUM = '/usr/bin/chromium';

async function main(): Promise<void> {
  if (await isExecutable(CHROMIUM)) {
    process.stderr.write(`[provision] browser for the admin-UI tests: ${CHROMIUM}\n`);
    return;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write(
      `[provision] ${CHROMIUM} is missing and this is not root: install it with "apt-get install -y chromium" (browser tests will fail)\n`,
    );
    return;
  }
  process.stderr.write(
    `[provision] the admin-UI tests drive a real browser and ${CHROMIUM} is missing: installing Debian's ` +
      '"chromium" package with apt-get update && apt-get install chromium (about 100 MB download, a minute or two)\n',
  );
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await execa('apt-get', ['update', '-qq'], { env, stdio: 'inherit' });
  await execa('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'chromium'], { env, stdio: 'inherit' });
}

main().catch((err: unknown) => {
  process.stderr.write(`[provision] chromium: ${(err as Error).message}\n`);
  process.exit(1);
});
