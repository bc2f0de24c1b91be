import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureLlamaTool, findLlamaTool } from '../../src/provision/llama-binary.js';
import { runCommand } from '../../src/runner/command.js';
import { freePort } from '../../src/runner/free-port.js';

const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
});

/** Resolves once something listens on the port (rpc-server's own output is block-buffered on a pipe). */
async function listening(port: number, child: ChildProcess): Promise<void> {
  for (;;) {
    if (child.exitCode !== null) throw new Error(`rpc-server exited with ${child.exitCode}`);
    const socket = connect(port, '127.0.0.1');
    const ok = await new Promise<boolean>((resolve) => {
      socket.once('connect', () => resolve(true));
      socket.once('error', () => resolve(false));
    });
    socket.destroy();
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('llama.cpp tools from the same build as the server', () => {
  it('llama-quantize and rpc-server are found (built by provisioning when missing)', async () => {
    const quantize = await ensureLlamaTool('llama-quantize', { env: { ...process.env, PATH: '/usr/bin:/bin' } });
    const rpc = await ensureLlamaTool('rpc-server', { env: { ...process.env, PATH: '/usr/bin:/bin' } });
    expect(dirname(quantize)).toBe(dirname(rpc));
    const usage = await runCommand(quantize, ['--help'], 10_000);
    expect(`${usage.stdout}${usage.stderr}`).toContain('usage:');
  }, 600_000);

  it("llama-server loads the RPC module beside it and lists an rpc-server's device", async () => {
    const env = { ...process.env, PATH: '/usr/bin:/bin' };
    const rpc = await findLlamaTool('rpc-server', { env });
    if (!rpc) throw new Error('rpc-server not provisioned (the test above builds it)');
    const port = await freePort();
    const worker = spawn(rpc, ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
    children.push(worker);
    await listening(port, worker);
    // The server of the same directory: where provisioning puts the programs and the backend modules.
    const server = `${dirname(rpc)}/llama-server`;
    const listed = await runCommand(server, ['--rpc', `127.0.0.1:${port}`, '--list-devices'], 20_000);
    expect(listed.stdout).toMatch(new RegExp(`RPC0: 127\\.0\\.0\\.1:${port} \\(\\d+ MiB`));
    worker.kill('SIGTERM');
    await once(worker, 'exit');
  }, 60_000);
});
