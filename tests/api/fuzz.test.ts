import { writeFile } from 'node:fs/promises';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { type FuzzRequest, type FuzzRoute, Fuzzer } from '../helpers/fuzz.js';
import { post, startGateway, type TestGateway } from '../helpers/gateway.js';

/**
 * Ten thousand and some requests, mostly wrong, over every API route of a real gateway with real
 * children: not one may be answered with a 5xx (or a reset connection). A fixed seed makes a failure
 * reproducible; FUZZ_SEED and FUZZ_COUNT run others.
 */
const SEED = Number(process.env.FUZZ_SEED ?? 2812);
const COUNT = Number(process.env.FUZZ_COUNT ?? 10_500);
/** Requests in flight at once: enough to overlap, few enough for the models' queues. */
const CONCURRENCY = 4;

const fixtures = inject('fixtures');
const messages = [{ role: 'user', content: 'hi' }];
const ROUTES: FuzzRoute[] = [
  { method: 'GET', path: '/' },
  { method: 'GET', path: '/api/version' },
  { method: 'GET', path: '/api/tags' },
  { method: 'GET', path: '/api/ps' },
  { method: 'GET', path: '/v1/models' },
  { method: 'GET', path: '/v1/models/tiny' },
  { method: 'POST', path: '/api/show', valid: { model: 'tiny' } },
  { method: 'POST', path: '/api/generate', valid: { model: 'tiny', prompt: 'hi', options: { num_predict: 2 } } },
  {
    method: 'POST',
    path: '/api/generate',
    valid: { model: 'fim', prompt: 'a', suffix: 'b', options: { num_predict: 2 } },
  },
  { method: 'POST', path: '/api/chat', valid: { model: 'tiny', messages, options: { num_predict: 2 }, stream: false } },
  {
    method: 'POST',
    path: '/api/chat',
    valid: { model: 'tiny', messages, tools: [{ type: 'function', function: { name: 'f', parameters: {} } }] },
  },
  {
    method: 'POST',
    path: '/api/chat',
    valid: { model: 'tiny', messages, format: 'json', options: { num_predict: 2 } },
  },
  { method: 'POST', path: '/api/embed', valid: { model: 'embed', input: ['a', 'b'] } },
  { method: 'POST', path: '/api/embed', valid: { model: 'tiny', input: 'a', dimensions: 8 } },
  { method: 'POST', path: '/api/embeddings', valid: { model: 'embed', prompt: 'a' } },
  { method: 'POST', path: '/v1/chat/completions', valid: { model: 'tiny', messages, max_tokens: 2 } },
  {
    method: 'POST',
    path: '/v1/chat/completions',
    valid: {
      model: 'tiny',
      messages,
      max_tokens: 2,
      stream: true,
      tools: [{ type: 'function', function: { name: 'f' } }],
    },
  },
  { method: 'POST', path: '/v1/completions', valid: { model: 'tiny', prompt: 'a', max_tokens: 2 } },
  { method: 'POST', path: '/v1/completions', valid: { model: 'fim', prompt: 'a', suffix: 'b', max_tokens: 2 } },
  { method: 'POST', path: '/v1/embeddings', valid: { model: 'embed', input: 'a', encoding_format: 'float' } },
  { method: 'POST', path: '/v1/responses', valid: { model: 'tiny', input: 'hi', max_output_tokens: 2 } },
  { method: 'POST', path: '/v1/messages', valid: { model: 'tiny', max_tokens: 2, messages } },
  { method: 'POST', path: '/v1/messages', valid: { model: 'tiny', max_tokens: 2, messages, stream: true } },
  { method: 'POST', path: '/v1/messages/count_tokens', valid: { model: 'tiny', messages } },
  { method: 'POST', path: '/infill', valid: { model: 'fim', input_prefix: 'a', input_suffix: 'b', n_predict: 2 } },
  { method: 'POST', path: '/v1/rerank', valid: { model: 'rerank', query: 'q', documents: ['a+', 'b'] } },
  { method: 'POST', path: '/rerank', valid: { model: 'rerank', query: 'q', documents: ['a'], top_n: 1 } },
  { method: 'POST', path: '/tokenize', valid: { model: 'tiny', content: 'hello', with_pieces: true } },
  { method: 'POST', path: '/detokenize', valid: { model: 'tiny', tokens: [100, 101] } },
  { method: 'POST', path: '/apply-template', valid: { model: 'tiny', messages } },
  { method: 'POST', path: '/api/copy', valid: { source: 'missing', destination: 'fuzz-copy' }, invalidOnly: true },
  { method: 'POST', path: '/api/create', valid: { model: 'fuzz-new', from: 'missing' }, invalidOnly: true },
  { method: 'DELETE', path: '/api/delete', valid: { model: 'missing' }, forbidModels: true },
  { method: 'POST', path: '/api/pull', valid: { model: '../x', stream: false }, invalidOnly: true },
  { method: 'POST', path: '/api/blobs/sha256:00', valid: {} },
  { method: 'HEAD', path: '/api/blobs/sha256:00' },
];
const MODEL_NAMES = new Set(['tiny', 'fim', 'embed', 'rerank']);

/** One request: a valid body now and then, mostly a mutated one, sometimes no JSON at all. */
function nextRequest(f: Fuzzer): FuzzRequest {
  const route = f.pick(ROUTES);
  const req: FuzzRequest = { method: route.method, path: route.path, contentType: f.contentType() };
  if (route.method === 'GET' || route.method === 'HEAD') {
    if (route.path.startsWith('/v1/models/') && f.chance(0.7)) req.path = `/v1/models/${f.pathSegment()}`;
    return req;
  }
  const valid = route.valid ?? {};
  const roll = f.int(100);
  if (roll < 15) req.body = f.garbage();
  else if (roll < 18 && !route.invalidOnly) req.body = JSON.stringify(valid);
  else {
    const body = f.mutate(valid) as Record<string, unknown>;
    if (route.forbidModels && MODEL_NAMES.has(String(body.model).replace(/:latest$/, ''))) body.model = 'missing';
    // A pull that could run would download; its fields stay wrong in type.
    if (route.invalidOnly && typeof body.model === 'string') body.model = f.pick(['../x', '%2e%2e/x', 'a b', '']);
    if (route.invalidOnly && typeof body.from === 'string') body.from = 'missing';
    req.body = JSON.stringify(body);
  }
  return req;
}

let t: TestGateway;
beforeAll(async () => {
  t = await startGateway({
    models: {
      tiny: { path: fixtures.models.chat },
      fim: { path: fixtures.models.fim },
      embed: { path: fixtures.models.embed },
      rerank: { path: fixtures.models.rerank },
    },
    // A request that sets no length generates 4 tokens (llama-server's -n), not up to the context.
    llama_server: { args: ['-t', '1', '--ignore-eos', '-n', '4'] },
    defaults: { ctx_size: 256, queue_size: 256 },
  });
});
afterAll(async () => t?.close());

it(`${COUNT} fuzzed requests over every API route, seed ${SEED}: no 5xx, no reset, and the gateway still serves`, async () => {
  const f = new Fuzzer(SEED);
  const dispatcher = new Agent({ connections: CONCURRENCY });
  const failures: string[] = [];
  const statuses = new Map<number, number>();
  let sent = 0;
  const worker = async (): Promise<void> => {
    while (sent < COUNT) {
      sent++;
      const req = nextRequest(f);
      const headers: Record<string, string> = req.contentType ? { 'content-type': req.contentType } : {};
      const what = `${req.method} ${req.path} ${String(req.body ?? '').slice(0, 300)}`;
      try {
        const res = await undiciFetch(`${t.url}${req.path}`, {
          method: req.method,
          headers,
          body: req.body,
          dispatcher,
        });
        const answer = await res.text();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        // 501 is a refusal by design (/api/push, /api/create from blobs), not a failure.
        if (res.status >= 500 && res.status !== 501) failures.push(`${res.status} ${answer.slice(0, 200)} ← ${what}`);
      } catch (err) {
        failures.push(`${(err as Error).message} ${what}`);
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  await dispatcher.close();
  if (process.env.FUZZ_REPORT) await writeFile(process.env.FUZZ_REPORT, failures.join('\n'));
  expect(failures.slice(0, 20)).toEqual([]);
  expect(sent).toBeGreaterThanOrEqual(COUNT);
  // Most requests are refused, some are served.
  expect(statuses.get(200) ?? 0).toBeGreaterThan(COUNT / 50);
  expect((await fetch(`${t.url}/health`)).status).toBe(200);
  const after = await post(`${t.url}/api/generate`, {
    model: 'tiny',
    prompt: 'hi',
    stream: false,
    options: { num_predict: 2 },
  });
  expect(after.status).toBe(200);
}, 600_000);
