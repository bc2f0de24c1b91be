import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { readFileSync } from 'node:fs';
import type { Runner } from '../../src/runner/runner.js';
import type { SupervisedRunner } from '../../src/scheduler/types.js';
import { post, startGateway, type TestGateway } from '../helpers/gateway.js';
import { bodyText } from '../helpers/runner.js';
import { until } from '../scheduler/helpers.js';

/** Whether a socket listens at this Unix socket path, from /proc/net/unix (read synchronously). */
function listening(path: string): boolean {
  return readFileSync('/proc/net/unix', 'utf8')
    .split('\n')
    .some((line) => {
      const fields = line.trim().split(/\s+/);
      // Flags 00010000: accepting connections.
      return fields[7] === path && fields[3] === '00010000';
    });
}

const socketOf = (runner: SupervisedRunner): string =>
  ((runner as Runner).endpoint as { socketPath: string }).socketPath;

/** llama-server's own slot state, asked through the child's client. */
async function processing(runner: SupervisedRunner | undefined): Promise<boolean> {
  if (!runner?.client) return false;
  const res = await runner.client.forward({ method: 'GET', path: '/slots' });
  const slots = JSON.parse(await bodyText(res.body)) as { is_processing: boolean }[];
  return slots.some((s) => s.is_processing);
}

let t: TestGateway;
const fixtures = inject('fixtures');

beforeAll(async () => {
  t = await startGateway({ models: { tiny: { path: fixtures.models.chat } }, defaults: { ctx_size: 4096 } });
});
afterAll(async () => t?.close());

/** Reads NDJSON lines as they arrive. */
async function* lines(body: ReadableStream<Uint8Array>): AsyncGenerator<Record<string, unknown>> {
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let nl;
    while ((nl = buf.indexOf('\n')) !== -1) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.trim()) yield JSON.parse(line) as Record<string, unknown>;
    }
  }
}

async function slotsBusy(): Promise<boolean> {
  return processing(t.gw.scheduler.loaded()[0]!.runner);
}

describe('faults', () => {
  it('kill -9 of llama-server mid-stream ends the stream with an error line', async () => {
    const res = await post(`${t.url}/api/generate`, {
      model: 'tiny',
      prompt: 'long',
      options: { num_predict: 4000, temperature: 1 },
    });
    expect(res.status).toBe(200);
    let killed = 0;
    const seen: Record<string, unknown>[] = [];
    for await (const line of lines(res.body!)) {
      seen.push(line);
      if (seen.length === 3) {
        killed = t.gw.scheduler.loaded()[0]!.runner.pid!;
        process.kill(killed, 'SIGKILL');
      }
    }
    const last = seen.at(-1)!;
    expect(typeof last.error).toBe('string');
    expect(last.done).toBeUndefined();
    // The crashed runner is forgotten, and the next request starts a fresh one, even when it arrives
    // before the gateway has reaped the killed child (the broken stream can reach the client first).
    const next = await post(`${t.url}/api/generate`, {
      model: 'tiny',
      prompt: 'again',
      stream: false,
      options: { num_predict: 2 },
    });
    expect(next.status, await next.clone().text()).toBe(200);
    expect(((await next.json()) as { eval_count: number }).eval_count).toBe(2);
    expect(t.gw.scheduler.loaded()[0]!.pid).not.toBe(killed);
  });

  it('kill -9 of llama-server mid-stream ends a /v1 stream with an error event, then a clean end', async () => {
    const res = await post(`${t.url}/v1/chat/completions`, {
      model: 'tiny',
      messages: [{ role: 'user', content: 'long' }],
      stream: true,
      max_tokens: 4000,
      temperature: 1,
    });
    expect(res.status).toBe(200);
    let text = '';
    let killed = 0;
    const decoder = new TextDecoder();
    // A reset would make this loop throw ("terminated"); a clean end finishes it.
    for await (const chunk of res.body! as unknown as AsyncIterable<Uint8Array>) {
      text += decoder.decode(chunk, { stream: true });
      if (!killed && text.split('\n\n').length > 4) {
        killed = t.gw.scheduler.loaded()[0]!.pid!;
        process.kill(killed, 'SIGKILL');
      }
    }
    expect(killed).toBeGreaterThan(0);
    const events = text.split('\n\n').filter(Boolean);
    expect(events.at(-1)).toMatch(/^data: /);
    const last = JSON.parse(events.at(-1)!.slice(6)) as { error: { message: string; type: string } };
    expect(last.error.type).toBe('server_error');
    expect(last.error.message).toMatch(/llama-server stopped mid-answer/);
    expect(text).not.toContain('[DONE]');
  });

  it('a request that reaches a child killed before the gateway noticed is served by a fresh child', async () => {
    const warm = await post(`${t.url}/api/generate`, {
      model: 'tiny',
      prompt: 'warm',
      stream: false,
      options: { num_predict: 1 },
    });
    expect(warm.status, await warm.clone().text()).toBe(200);
    const runner = t.gw.scheduler.loaded()[0]!.runner;
    const killed = runner.pid!;
    const socket = socketOf(runner);
    process.kill(killed, 'SIGKILL');
    // Wait, without yielding to the event loop, until the child is a zombie and its socket is closed; the
    // gateway learns of the exit only when its event loop runs again, after these requests are sent.
    // The zombie state alone is not enough: the main thread shows Z while other threads are still
    // exiting with the listening socket open, and a connection made then is reset after it was written.
    const deadline = Date.now() + 5000;
    while (!/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${killed}/stat`, 'utf8')) || listening(socket)) {
      if (Date.now() > deadline) throw new Error('killed child never became a zombie with its socket closed');
    }
    const chat = { model: 'tiny', messages: [{ role: 'user', content: 'hi' }], stream: false };
    const pending = [
      t.gw.app.inject({ method: 'POST', url: '/api/chat', payload: { ...chat, options: { num_predict: 2 } } }),
      t.gw.app.inject({ method: 'POST', url: '/v1/chat/completions', payload: { ...chat, max_tokens: 2 } }),
    ];
    expect(runner.pid).toBe(killed); // the exit is not handled yet: both requests go to the dead port
    const [ollama, openai] = await Promise.all(pending);
    expect(ollama!.statusCode, ollama!.body).toBe(200);
    expect(ollama!.json().eval_count).toBe(2);
    expect(openai!.statusCode, openai!.body).toBe(200);
    expect(openai!.json().usage.completion_tokens).toBe(2);
    const now = t.gw.scheduler.loaded()[0]!;
    expect(now.pid).not.toBe(killed);
    expect(now.state).toBe('ready');
  });

  it('requests queued in the gateway when the child crashes are served by a fresh child', async () => {
    // parallel 1: two leases taken here fill what the gateway hands llama-server (its slot plus one
    // waiting there), so the HTTP request after them waits in Corral's own queue, whatever the timing.
    const model = t.gw.schedulable(t.gw.catalog.resolve('tiny')!);
    const held = [await t.gw.scheduler.acquire(model), await t.gw.scheduler.acquire(model)];
    const queued = post(`${t.url}/api/generate`, {
      model: 'tiny',
      prompt: 'queued',
      stream: false,
      options: { num_predict: 2 },
    });
    await until(t.gw.scheduler, () => t.gw.scheduler.loaded()[0]?.queued === 1);
    const killed = t.gw.scheduler.loaded()[0]!.pid!;
    process.kill(killed, 'SIGKILL');
    // It never reached the dead child: it is queued again and answered by a fresh one.
    const res = await queued;
    expect(res.status, await res.clone().text()).toBe(200);
    expect(((await res.json()) as { eval_count: number }).eval_count).toBe(2);
    for (const lease of held) lease.release();
    const now = t.gw.scheduler.loaded()[0]!;
    expect(now.pid).not.toBe(killed);
    expect(now.state).toBe('ready');
  });

  it('a request llama-server was already working on is not sent again when the child dies', async () => {
    const warm = await post(`${t.url}/api/generate`, {
      model: 'tiny',
      prompt: 'warm',
      stream: false,
      options: { num_predict: 1 },
    });
    expect(warm.status, await warm.clone().text()).toBe(200);
    const chat = {
      model: 'tiny',
      messages: [{ role: 'user', content: 'long' }],
      stream: false,
      max_tokens: 2000,
      temperature: 1,
    };
    const pending = post(`${t.url}/v1/chat/completions`, chat);
    // Poll the child's own slot state (bounded) until it is generating this request.
    let busy = false;
    for (let i = 0; i < 400 && !busy; i++) busy = await slotsBusy();
    expect(busy).toBe(true);
    const killed = t.gw.scheduler.loaded()[0]!.pid!;
    process.kill(killed, 'SIGKILL');
    // It may be what crashed the child: it fails rather than running again on a fresh one.
    const res = await pending;
    expect(res.status).toBe(502);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/unreachable/);
  });
});

describe('a client that leaves stops its generation', () => {
  // With context shift and no token limit llama-server generates until it is told to stop, so a slot
  // that goes idle again proves the gateway passed the client's departure on. The polls of /slots are
  // also what keeps llama-server busy with other results: it checks a non-streamed request's connection
  // only after a second without any result, so a non-streamed upstream request would not be stopped.
  let g: TestGateway;
  beforeAll(async () => {
    g = await startGateway({
      models: { endless: { path: fixtures.models.chat, args: ['--context-shift'] } },
      defaults: { ctx_size: 256 },
    });
    const warm = await post(`${g.url}/api/generate`, {
      model: 'endless',
      prompt: 'hi',
      stream: false,
      options: { num_predict: 1 },
    });
    expect(warm.status, await warm.clone().text()).toBe(200);
  });
  afterAll(async () => g?.close());

  const busy = (): Promise<boolean> => processing(g.gw.scheduler.loaded()[0]?.runner);

  const messages = [{ role: 'user', content: 'go on' }];
  const cases = [
    { name: 'streamed /api/chat', path: '/api/chat', body: { messages, stream: true, options: { num_predict: -1 } } },
    {
      name: 'non-streamed /api/chat',
      path: '/api/chat',
      body: { messages, stream: false, options: { num_predict: -1 } },
    },
    { name: 'streamed /api/generate', path: '/api/generate', body: { prompt: 'go on', options: { num_predict: -1 } } },
    // Passed through: llama-server's own stream stops at its next token once the gateway closes it.
    {
      name: 'streamed /v1/chat/completions',
      path: '/v1/chat/completions',
      body: { messages, stream: true, max_tokens: -1 },
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const controller = new AbortController();
      const pending = post(`${g.url}${c.path}`, { model: 'endless', ...c.body }, { signal: controller.signal });
      pending.catch(() => {});
      // Bounded polls of llama-server's own slot state: first until it generates, then until it stops.
      let generating = false;
      for (let i = 0; i < 400 && !generating; i++) generating = await busy();
      expect(generating).toBe(true);
      controller.abort();
      for (let i = 0; i < 200 && generating; i++) {
        generating = await busy();
        if (generating) await new Promise((r) => setTimeout(r, 25));
      }
      expect(generating).toBe(false);
      await until(g.gw.scheduler, () => g.gw.scheduler.loaded()[0]!.inFlight === 0);
    });
  }
});
