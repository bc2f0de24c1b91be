import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { postJson } from '../../src/upstream/client.js';
import { Runner } from '../../src/runner/runner.js';

/** Connection handling against a real llama-server, whose streamed answers end their connection. */
let runner: Runner;
const fixtures = inject('fixtures');
const logs = mkdtempSync(join(tmpdir(), 'corral-conn-'));
const chat = (stream: boolean) => ({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, stream });

beforeAll(async () => {
  runner = new Runner({ model: 'tiny', binary: fixtures.llamaServer, args: ['-m', fixtures.models.chat, '-c', '256', '-t', '1', '--no-webui'], logFile: join(logs, 'tiny.log'), startupTimeoutMs: 30_000, stopTimeoutMs: 5_000 });
  await runner.start();
});
afterAll(async () => {
  await runner?.stop();
  rmSync(logs, { recursive: true, force: true });
});

describe('upstream connections', () => {
  it('llama-server announces keep-alive on a streamed answer, then closes the connection', async () => {
    const socket = connect(runner.port, '127.0.0.1');
    await once(socket, 'connect');
    const body = JSON.stringify(chat(true));
    socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    let text = '';
    socket.setEncoding('utf8').on('data', (c: string) => (text += c));
    await once(socket, 'close');
    expect(text).toMatch(/Keep-Alive: timeout=\d+/i);
    expect(text).toContain('data: [DONE]');
  });

  it('a streamed request closes its own socket when done instead of returning it to the pool', async () => {
    const pool = new Pool(runner.baseUrl);
    const disconnected = once(pool, 'disconnect') as Promise<[unknown, unknown, Error]>;
    const res = await postJson(pool, '/v1/chat/completions', chat(true));
    res.body.resume();
    const [, , err] = await disconnected;
    // Closed by undici on our request ("reset"), not by llama-server under a reused socket.
    expect(err.message).toBe('reset');
    await pool.close();
  });
});
