import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { post, startGateway, type TestGateway } from '../helpers/gateway.js';

const fixtures = inject('fixtures');
let t: TestGateway;
const logLines: string[] = [];
/** Emits 'line' for every log line, so a test can await the one it needs instead of sleeping. */
const logEvents = new EventEmitter();
const logStream = new Writable({
  write(chunk: Buffer, _enc, cb) {
    for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) {
      logLines.push(line);
      logEvents.emit('line', line);
    }
    cb();
  },
});

/** Resolves once a log line matching `test` has been written (it may already have been). */
function logged(test: (line: string) => boolean): Promise<void> {
  if (logLines.some(test)) return Promise.resolve();
  return new Promise((resolve) => {
    const on = (line: string): void => {
      if (!test(line)) return;
      logEvents.off('line', on);
      resolve();
    };
    logEvents.on('line', on);
  });
}

beforeAll(async () => {
  t = await startGateway(
    { models: { tiny: { path: fixtures.models.chat } } },
    { logger: { level: 'info', stream: logStream } },
  );
});
afterAll(async () => t?.close());

async function scrape(): Promise<string> {
  const res = await fetch(`${t.url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  return res.text();
}

/** The value of one sample line, matched by name and a label subset. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
      return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('health and readiness', () => {
  it('GET /health answers without I/O', async () => {
    const res = await fetch(`${t.url}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });
  it('GET /ready checks config, store and logs directories and the llama-server binary', async () => {
    const res = await fetch(`${t.url}/ready`);
    const body = (await res.json()) as { status: string; checks: Record<string, string> };
    expect(res.status).toBe(200);
    expect(body).toEqual({
      status: 'ready',
      checks: { config: 'ok', 'data directory': 'ok', 'logs directory': 'ok', store: 'ok', llama_server: 'ok' },
    });
  });
});

describe('request ids', () => {
  it('generates one and returns it as a header', async () => {
    const res = await fetch(`${t.url}/api/version`);
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
  it('accepts a sane incoming id and replaces an unsafe one', async () => {
    expect(
      (await fetch(`${t.url}/api/version`, { headers: { 'x-request-id': 'trace-42' } })).headers.get('x-request-id'),
    ).toBe('trace-42');
    const odd = await fetch(`${t.url}/api/version`, { headers: { 'x-request-id': 'a b<script>' } });
    expect(odd.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('logs', () => {
  it('are JSON with the request id, and never contain tokens, passwords or cookies', async () => {
    await fetch(`${t.url}/api/tags?token=querysecret`, {
      headers: {
        authorization: 'Bearer secret123',
        cookie: 'corral_session=cookiesecret',
        'x-request-id': 'redact-test',
      },
    });
    t.gw.app.log.info({ user: { password: 'hunter2', token: 'tok-abc' } }, 'login attempt');
    // The per-request line is written when the response finishes, which can be after the client has it.
    await logged((l) => l.includes('"reqId":"redact-test"') && l.includes('request completed'));
    const all = logLines.join('\n');
    for (const secret of ['secret123', 'cookiesecret', 'querysecret', 'hunter2', 'tok-abc'])
      expect(all).not.toContain(secret);
    const incoming = logLines
      .map((l) => JSON.parse(l) as Record<string, any>)
      .find((l) => l.reqId === 'redact-test' && l.req);
    expect(incoming?.req.headers.authorization).toBe('[Redacted]');
    expect(incoming?.req.url).toContain('token=[Redacted]');
  });
});

describe('GET /metrics', () => {
  it('counts requests, TTFT, queue wait, tokens and loads, and re-exports llama-server metrics with a model label', async () => {
    const gen = await post(`${t.url}/api/generate`, {
      model: 'tiny',
      prompt: 'hi',
      options: { num_predict: 5, temperature: 0, seed: 1 },
    });
    expect(gen.status).toBe(200);
    await gen.text();
    const v1 = await post(`${t.url}/v1/chat/completions`, {
      model: 'tiny',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 4,
      stream: true,
    });
    expect(v1.status).toBe(200);
    expect(await v1.text()).toContain('[DONE]');
    // Metrics are recorded when each response finishes on the server side, logged in the same hook.
    await logged((l) => l.includes('"url":"/v1/chat/completions"') && l.includes('request completed'));

    const text = await scrape();
    expect(
      sample(text, 'corral_http_requests_total', { route: '/api/generate', status: '200', model: 'tiny:latest' }),
    ).toBe(1);
    expect(
      sample(text, 'corral_http_requests_total', {
        route: '/v1/chat/completions',
        status: '200',
        model: 'tiny:latest',
      }),
    ).toBe(1);
    expect(
      sample(text, 'corral_time_to_first_token_seconds_count', { route: '/api/generate', model: 'tiny:latest' }),
    ).toBe(1);
    expect(
      sample(text, 'corral_time_to_first_token_seconds_count', { route: '/v1/chat/completions', model: 'tiny:latest' }),
    ).toBe(1);
    expect(sample(text, 'corral_queue_wait_seconds_count', { model: 'tiny:latest' })).toBe(2);
    expect(sample(text, 'corral_generated_tokens_total', { model: 'tiny:latest' })).toBe(9);
    expect(sample(text, 'corral_prompt_tokens_total', { model: 'tiny:latest' })).toBeGreaterThan(0);
    expect(sample(text, 'corral_model_loads_total', { model: 'tiny:latest' })).toBe(1);
    expect(sample(text, 'corral_model_load_duration_seconds_count', { model: 'tiny:latest' })).toBe(1);
    expect(sample(text, 'corral_model_estimated_memory_bytes', { model: 'tiny:latest' })).toBeGreaterThan(0);
    expect(sample(text, 'corral_queue_depth', { model: 'tiny:latest' })).toBe(0);
    expect(text).toMatch(/^corral_loaded_models 1$/m);
    expect(text).toContain('process_resident_memory_bytes');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
    expect(sample(text, 'llamacpp_tokens_predicted_total', { model: 'tiny:latest' })).toBe(9);
    expect(text).not.toContain('llamacpp:');
  });

  it('counts unloads as evictions and keeps no stale per-model gauges', async () => {
    await post(`${t.url}/api/generate`, { model: 'tiny', keep_alive: 0 }).then((r) => r.text());
    const text = await scrape();
    expect(sample(text, 'corral_model_unloads_total', { model: 'tiny:latest', reason: 'keep_alive 0' })).toBe(1);
    expect(sample(text, 'corral_model_evictions_total', { model: 'tiny:latest' })).toBe(1);
    expect(text).toMatch(/^corral_loaded_models 0$/m);
    expect(sample(text, 'corral_queue_depth', { model: 'tiny:latest' })).toBeUndefined();
    expect(text).not.toContain('llamacpp_');
  });
});
