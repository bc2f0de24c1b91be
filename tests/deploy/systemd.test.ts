import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');

async function which(tool: string): Promise<boolean> {
  try {
    await run('sh', ['-c', `command -v ${tool}`]);
    return true;
  } catch {
    return false;
  }
}

const haveSystemdAnalyze = await which('systemd-analyze');

describe('deploy/corral.service', () => {
  it.skipIf(!haveSystemdAnalyze)('passes systemd-analyze verify without a warning', async () => {
    // The unit names the install location /opt/corral; here the checkout (built by pretest) stands in for it,
    // so verify also checks that ExecStart is an executable file.
    const unit = (await readFile(join(root, 'deploy/corral.service'), 'utf8')).replaceAll('/opt/corral', root);
    const dir = await mkdtemp(join(tmpdir(), 'corral-unit-'));
    try {
      await writeFile(join(dir, 'corral.service'), unit);
      const { stderr } = await run('systemd-analyze', ['verify', join(dir, 'corral.service')]);
      expect(stderr.trim()).toBe('');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
