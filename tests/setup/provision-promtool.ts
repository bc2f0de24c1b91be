import { execa } from 'execa';
import { isExecutable } from '../../src/provision/llama-binary.js';

/**
 * tests/deploy/alert-rules.test.ts checks deploy/prometheus/alerts.yaml with `promtool`, which comes
 * with Debian's prometheus package. `npm test` runs this first so a fresh machine gets it; it needs
 * root (CI and the dev machines are). The package's service is not started (no init system runs here).
 */
const PROMTOOL = '/usr/bin/promtool';

async function main(): Promise<void> {
  if (await isExecutable(PROMTOOL)) return;
  if (process.getuid?.() !== 0) {
    process.stderr.write(
      `[provision] ${PROMTOOL} is missing and this is not root: install it with "apt-get install -y prometheus" (the alert rule tests will be skipped)\n`,
    );
    return;
  }
  process.stderr.write(
    '[provision] installing Debian prometheus for promtool, which checks deploy/prometheus/alerts.yaml (apt-get)\n',
  );
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await execa('apt-get', ['update', '-qq'], { env, stdio: 'inherit' });
  await execa('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'prometheus'], { env, stdio: 'inherit' });
}

main().catch((err: unknown) => {
  process.stderr.write(`[provision] promtool: ${(err as Error).message}\n`);
  process.exit(1);
});
