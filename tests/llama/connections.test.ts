import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UpstreamError, UpstreamUnreachable } from '../../src/errors.js';
import { Transport } from '../../src/llama/transport.js';
import { Runner } from '../../src/runner/runner.js';
import { runnerPlumbing, tinySpec } from '../helpers/runner.js';

/** Connection handling against a real llama-server, whose streamed answers end their connection. */
let runner: Runner;
const logs = mkdtempSync(join(tmpdir(), 'corral-conn-'));
const chat = (stream: boolean) => ({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, stream });
const plumbing = runnerPlumbing();
let socketPath: string;
const transport = (): Transport => new Transport({ socketPath });
const postJson = (
  http: Transport,
  path: string,
  body: { stream?: boolean; [k: string]: unknown },
  signal?: AbortSignal,
) => http.send('POST', path, JSON.stringify(body), { signal, stream: body.stream === true });

beforeAll(async () => {
  runner = new Runner(tinySpec(plumbing, join(logs, 'tiny.log')));
  await runner.start();
  socketPath = (runner.endpoint as { socketPath: string }).socketPath;
});
afterAll(async () => {
  await runner?.stop();
  plumbing.remove();
  rmSync(logs, { recursive: true, force: true });
});

describe('upstream connections', () => {
  it('llama-server announces keep-alive on a streamed answer, then closes the connection', async () => {
    const socket = connect(socketPath);
    await once(socket, 'connect');
    const body = JSON.stringify(chat(true));
    socket.write(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    let text = '';
    socket.setEncoding('utf8').on('data', (c: string) => (text += c));
    await once(socket, 'close');
    expect(text).toMatch(/Keep-Alive: timeout=\d+/i);
    expect(text).toContain('data: [DONE]');
  });

  it('a streamed request goes on a connection of its own and arrives whole, without transfer framing', async () => {
    const pool = transport();
    const res = await pool.send('POST', '/v1/chat/completions', JSON.stringify(chat(true)), {
      stream: true,
      headers: { 'x-request-id': 'stream-own-conn' },
    });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toContain('text/event-stream');
    let text = '';
    for await (const chunk of res.body.setEncoding('utf8')) text += chunk;
    const events = text.split('\n\n').filter(Boolean);
    // Every event is whole (a chunk-size line left in would break one) and the stream ends with [DONE].
    for (const event of events.slice(0, -1)) expect(() => JSON.parse(event.replace(/^data: /, ''))).not.toThrow();
    expect(events.at(-1)).toBe('data: [DONE]');
    expect(text).not.toMatch(/^[0-9a-f]+\r$/m);
    // Its connection was not kept for reuse: llama-server closes it. Non-streamed answers keep theirs.
    expect(pool.idle).toBe(0);
    expect(await pool.text('GET', '/health')).toContain('ok');
    expect(pool.idle).toBe(1);
    pool.close();
  });

  it('a reader slower than llama-server holds the stream back and still gets all of it', async () => {
    const pool = transport();
    const res = await postJson(pool, '/v1/chat/completions', { ...chat(true), max_tokens: 150, ignore_eos: true });
    let text = '';
    let writes = 0;
    // A one-byte buffer that takes a turn of the event loop per chunk: the body's buffer fills, the
    // socket is paused, and each read resumes it.
    const slow = new Writable({
      highWaterMark: 1,
      write(chunk: Buffer, _enc, done) {
        text += chunk.toString();
        writes++;
        setImmediate(done);
      },
    });
    await pipeline(res.body, slow);
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect(writes).toBeGreaterThan(10);
    const usage = JSON.parse(
      text
        .split('\n\n')
        .filter(Boolean)
        .at(-2)!
        .replace(/^data: /, ''),
    ) as { timings: { predicted_n: number } };
    expect(usage.timings.predicted_n).toBe(150);
    pool.close();
  });

  it("llama-server's refusal of a streamed request comes back with its own message and status", async () => {
    const pool = transport();
    const long = { messages: [{ role: 'user', content: 'word '.repeat(2000) }], max_tokens: 2, stream: true };
    const err = await postJson(pool, '/v1/chat/completions', long).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect((err as UpstreamError).status).toBe(400);
    expect((err as Error).message).toMatch(/context/i);
    pool.close();
  });

  it('a streamed request to a socket nobody listens on was never delivered', async () => {
    const pool = new Transport({ socketPath: join(logs, 'nobody.sock') });
    const err = await postJson(pool, '/v1/chat/completions', chat(true)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamUnreachable);
    expect((err as UpstreamUnreachable).delivered).toBe(false);
    expect((err as UpstreamUnreachable).status).toBe(502);
    pool.close();
  });

  it('an aborted signal ends a streamed answer in progress with the abort', async () => {
    const pool = transport();
    const controller = new AbortController();
    // With 20 alternatives per token the answer is far larger than one socket read (64 KiB), so it
    // cannot have arrived whole with the head however fast the model is or however late we read.
    const res = await postJson(
      pool,
      '/v1/chat/completions',
      { ...chat(true), max_tokens: 200, ignore_eos: true, logprobs: true, top_logprobs: 20 },
      controller.signal,
    );
    // Right after the head: at most the bytes of the read that carried it have arrived.
    controller.abort(new Error('client left'));
    let text = '';
    const reading = (async () => {
      for await (const chunk of res.body) text += String(chunk);
    })();
    await expect(reading).rejects.toThrow('client left');
    expect(text).not.toContain('[DONE]');
    expect(res.body.destroyed).toBe(true);
    pool.close();
  });
});
