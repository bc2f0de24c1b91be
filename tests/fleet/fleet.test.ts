import Anthropic from '@anthropic-ai/sdk';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { join } from 'node:path';
import { execa } from 'execa';
import { CLI } from '../helpers/cli.js';
import { eventually, type FleetNodeProcess, startAll, startNode } from '../helpers/fleet.js';
import { ndjson, post } from '../helpers/gateway.js';
import { freshPostgresDatabase, type TestDatabase } from '../helpers/postgres.js';

const fixtures = inject('fixtures');
let db: TestDatabase;
let a: FleetNodeProcess;
let b: FleetNodeProcess;
let c: FleetNodeProcess;
const options = { num_predict: 4, temperature: 0, seed: 1 };

/** `corral <args>` with a node's config, as its operator would run it on that node's machine. */
const corral = (node: FleetNodeProcess, args: string[]) =>
  execa(process.execPath, [CLI, ...args, '--config', join(node.dir, 'config', 'corral.yaml')], { cwd: node.dir });

/**
 * Three nodes on one PostgreSQL, each with models of its own: "alpha" only on A, "beta" only on B,
 * "gamma" only on C, and "shared" on B and C.
 */
beforeAll(async () => {
  db = await freshPostgresDatabase();
  const database = db.url;
  const m = fixtures.models;
  [a, b, c] = await startAll([
    startNode('a', database, { models: { alpha: { path: m.chat } } }),
    startNode('b', database, { models: { beta: { path: m.fim }, shared: { path: m.chat2 } } }),
    startNode('c', database, {
      models: { gamma: { path: m.chat }, shared: { path: m.chat2 }, vectors: { path: m.embed, embedding: true } },
    }),
  ]);
  // Each node reads the others at its next heartbeat (every 2 s).
  for (const node of [a, b, c]) await seesNodes(node, ['a', 'b', 'c']);
}, 120_000);

afterAll(async () => {
  await Promise.all([a, b, c].map((n) => n?.stop()));
  await db?.drop();
});

async function tags(node: FleetNodeProcess): Promise<{ models: { name: string; nodes: string[] }[] }> {
  return (await fetch(`${node.url}/api/tags`)).json() as never;
}

async function seesNodes(node: FleetNodeProcess, ids: string[]): Promise<void> {
  await eventually(
    async () => {
      const seen = new Set((await tags(node)).models.flatMap((m) => m.nodes));
      return ids.every((id) => seen.has(id)) && seen.size === ids.length ? true : undefined;
    },
    `node ${node.id} to see ${ids.join(', ')}`,
  );
}

async function runsOn(node: FleetNodeProcess, model: string, where: string): Promise<void> {
  await eventually(async () => {
    const ps = (await (await fetch(`${node.url}/api/ps`)).json()) as { models: { name: string; node: string }[] };
    return ps.models.some((m) => m.name === model && m.node === where) ? true : undefined;
  }, `node ${node.id} to see ${model} running on ${where}`);
}

describe('a fleet of three nodes sharing one PostgreSQL', () => {
  it('lists the same models, with the nodes that serve them, from every node', async () => {
    const lists = await Promise.all([a, b, c].map(tags));
    expect(lists[1]).toEqual(lists[0]);
    expect(lists[2]).toEqual(lists[0]);
    expect(lists[0]!.models.map((m) => [m.name, m.nodes])).toEqual([
      ['alpha:latest', ['a']],
      ['beta:latest', ['b']],
      ['gamma:latest', ['c']],
      ['shared:latest', ['b', 'c']],
      ['vectors:latest', ['c']],
    ]);
    const openai = await Promise.all([a, b, c].map(async (n) => (await fetch(`${n.url}/v1/models`)).json()));
    expect(openai[1]).toEqual(openai[0]);
    expect((openai[0] as { data: { id: string }[] }).data.map((d) => d.id)).toContain('gamma:latest');
    const one = (await (await fetch(`${a.url}/v1/models/gamma`)).json()) as Record<string, unknown>;
    expect(one).toMatchObject({ id: 'gamma:latest', object: 'model', owned_by: 'corral', nodes: ['c'] });
  });

  it('a client of node A chats with a model only node C has, through the ollama client, streamed and not', async () => {
    const ollama = new Ollama({ host: a.url });
    const messages = [{ role: 'user', content: 'hello' }];
    const whole = await ollama.chat({ model: 'gamma', messages, options });
    expect(whole.done).toBe(true);
    expect(whole.eval_count).toBe(4);
    let text = '';
    let final: { eval_count?: number } | undefined;
    for await (const part of await ollama.chat({ model: 'gamma', messages, stream: true, options })) {
      text += part.message.content;
      if (part.done) final = part;
    }
    expect(final?.eval_count).toBe(4);
    expect(text).toBe(whole.message.content);
    // It runs on C, and every node's /api/ps says so (once it has read C's report).
    for (const node of [a, b, c]) await runsOn(node, 'gamma:latest', 'c');
  });

  it("the admin UI's Nodes page shows every node; a model's page says where the model runs", async () => {
    const login = await fetch(`${a.url}/admin/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: 'admin', password: 'fleet-test-password' }).toString(),
      redirect: 'manual',
    });
    expect(login.status).toBe(303);
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
    const nodesPage = async () => {
      const page = await (await fetch(`${a.url}/admin/nodes`, { headers: { cookie } })).text();
      const rows = [...page.matchAll(/<tr data-node="([^"]+)">([\s\S]*?)<\/tr>/g)].map((m) => [m[1]!, m[2]!]);
      return { page, rows, rowC: rows.find(([id]) => id === 'c')?.[1] ?? '' };
    };
    // gamma, loaded on C by the test before, shows once A has read C's next report.
    const { page, rows, rowC } = await eventually(async () => {
      const seen = await nodesPage();
      return /gamma:latest <span class="muted">ready, 0 running, 0 waiting/.test(seen.rowC) ? seen : undefined;
    }, 'the Nodes page to show gamma running on C');
    expect(rows.map(([id]) => id)).toEqual(['a', 'b', 'c']);
    expect(rowC).toMatch(/s ago/);
    expect(page).toContain('(this node)');
    expect(page).toMatch(/data-testid="fleet-health">3 live nodes/);

    const cLogin = await fetch(`${c.url}/admin/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: 'admin', password: 'fleet-test-password' }).toString(),
      redirect: 'manual',
    });
    const cCookie = (cLogin.headers.get('set-cookie') ?? '').split(';')[0]!;
    const model = await (await fetch(`${c.url}/admin/model?name=shared`, { headers: { cookie: cCookie } })).text();
    expect(model).toContain('<dt>Fleet</dt><dd>loaded nowhere; in the catalogue of b, c</dd>');
  });

  it('and through the openai client, streamed and not, with the request id carried to C', async () => {
    const openai = new OpenAI({ baseURL: `${a.url}/v1`, apiKey: 'unused' });
    const messages = [{ role: 'user' as const, content: 'hello' }];
    const whole = await openai.chat.completions.create({ model: 'gamma', messages, max_tokens: 4, temperature: 0 });
    expect(whole.usage?.completion_tokens).toBe(4);
    const stream = await openai.chat.completions.create({
      model: 'gamma',
      messages,
      max_tokens: 4,
      temperature: 0,
      stream: true,
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe(whole.choices[0]?.message.content);

    const res = await post(
      `${a.url}/v1/completions`,
      { model: 'gamma', prompt: 'hi', max_tokens: 2 },
      { headers: { 'content-type': 'application/json', 'x-request-id': 'trace-fleet-1' } },
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('x-corral-node')).toBe('c');
    expect(res.headers.get('x-request-id')).toBe('trace-fleet-1');
    await res.text();
    // C logs the request under the same id (its log line is written as its answer ends).
    await eventually(
      async () => (/"reqId":"trace-fleet-1","forwardedBy":"a"/.test(c.output()) ? true : undefined),
      "C's log line for the request",
    );
  });

  it('every API reaches the model on C: show, embeddings, Anthropic messages', async () => {
    const ollama = new Ollama({ host: a.url });
    const show = await ollama.show({ model: 'gamma' });
    expect(show.details.family).toBe('llama');
    const embedded = await ollama.embed({ model: 'vectors', input: ['one', 'two'] });
    expect(embedded.embeddings).toHaveLength(2);
    expect(embedded.embeddings[0]!.length).toBeGreaterThan(0);
    const anthropic = new Anthropic({ baseURL: a.url, apiKey: 'unused', maxRetries: 0 });
    const messages = [{ role: 'user' as const, content: 'hello' }];
    const created = await anthropic.messages.create({ model: 'gamma', max_tokens: 3, messages });
    expect(created.usage.output_tokens).toBe(3);
    // Streamed, read as events: this llama-server leaves out `message_start` from some of its
    // /v1/messages streams (seen without Corral too), which the Anthropic client refuses.
    const res = await post(`${a.url}/v1/messages`, { model: 'gamma', max_tokens: 3, messages, stream: true });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    expect(res.headers.get('x-corral-node')).toBe('c');
    const events = [...(await res.text()).matchAll(/^event: (\S+)$/gm)].map((m) => m[1]);
    expect(events.filter((e) => e === 'content_block_delta').length).toBeGreaterThan(0);
    expect(events.at(-1)).toBe('message_stop');
  });

  it('serves a model here when it is here, and answers 404 for a model no node has', async () => {
    const res = await post(`${a.url}/api/generate`, { model: 'alpha', prompt: 'hi', stream: false, options });
    expect(res.headers.get('x-corral-node')).toBe('a');
    expect(((await res.json()) as { eval_count: number }).eval_count).toBe(4);
    const missing = await post(`${a.url}/api/generate`, { model: 'nowhere', prompt: 'hi' });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: 'model "nowhere" not found, try pulling it first' });
  });

  it('/metrics labels every series with its node and carries the inference-extension figures', async () => {
    const metric = (text: string, name: string): string[] => text.split('\n').filter((l) => l.startsWith(`${name}{`));
    // A generation in progress on A: one request running, its model's only slot busy.
    const controller = new AbortController();
    const res = await post(
      `${a.url}/api/generate`,
      { model: 'alpha', prompt: 'hi', options: { num_predict: 100000 } },
      { signal: controller.signal, headers: { 'content-type': 'application/json' } },
    );
    const reader = res.body!.getReader();
    await reader.read();
    const busy = await (await fetch(`${a.url}/metrics`)).text();
    controller.abort();
    await reader.cancel().catch(() => {});
    expect(metric(busy, 'corral_requests_running')).toEqual(['corral_requests_running{node="a"} 1']);
    expect(metric(busy, 'corral_requests_waiting')).toEqual(['corral_requests_waiting{node="a"} 0']);
    expect(metric(busy, 'corral_kv_cache_usage_perc')).toEqual(['corral_kv_cache_usage_perc{node="a"} 1']);
    const [lora] = metric(busy, 'corral_lora_requests_info');
    expect(lora).toMatch(/running_lora_adapters="alpha:latest"/);
    expect(lora).toMatch(/waiting_lora_adapters=""/);
    expect(lora).toMatch(/node="a"/);
    const series = busy.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(series.filter((l) => !l.includes('node="a"'))).toEqual([]);
    expect(series.some((l) => l.startsWith('llamacpp_') && l.includes('model="alpha:latest"'))).toBe(true);
  });

  it('refuses a fleet credential a client made up', async () => {
    const res = await post(
      `${b.url}/api/generate`,
      { model: 'beta', prompt: 'hi' },
      {
        headers: { 'content-type': 'application/json', 'x-corral-fleet': 'eyJhbGciOiJIUzI1NiJ9.e30.bad' },
      },
    );
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: string }).error).toMatch(/invalid fleet credential/);
  });

  it('a token made on node B works on A (also for a model on C) and its revocation on C reaches A within a heartbeat', async () => {
    const created = await corral(b, [
      'token',
      'create',
      '--name',
      'cross-node',
      '--role',
      'viewer',
      '--models',
      'gamma',
    ]);
    const secret = created.stdout.trim();
    const id = /token (\d+)/.exec(created.stderr)?.[1];
    const asToken = { headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` } };
    const generate = (model: string) =>
      post(`${a.url}/api/generate`, { model, prompt: 'hi', stream: false, options }, asToken);
    expect((await generate('gamma')).status).toBe(200);
    // The token's model list is checked on A, the node it was presented to.
    expect((await generate('alpha')).status).toBe(403);
    await corral(c, ['token', 'revoke', String(id)]);
    const revokedAt = Date.now();
    await expect.poll(async () => (await generate('gamma')).status, { timeout: 2_000, interval: 50 }).toBe(401);
    expect(Date.now() - revokedAt).toBeLessThan(2_000);
  });

  it('a node killed mid-stream ends the stream with an error line; the next request goes to another node', async () => {
    // "shared" is loaded on C, so A forwards it there.
    const load = await post(`${c.url}/api/generate`, { model: 'shared' });
    expect(load.status).toBe(200);
    await runsOn(a, 'shared:latest', 'c');

    const res = await post(`${a.url}/api/generate`, {
      model: 'shared',
      prompt: 'hi',
      options: { num_predict: 100000, temperature: 0 },
    });
    expect(res.headers.get('x-corral-node')).toBe('c');
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(JSON.parse(new TextDecoder().decode(first.value).split('\n')[0]!)).toMatchObject({ done: false });
    await c.kill();
    let rest = new TextDecoder().decode(first.value);
    for (let step = await reader.read(); !step.done; step = await reader.read())
      rest += new TextDecoder().decode(step.value);
    const lines = rest
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const last = lines.at(-1)!;
    expect(last.error).toMatch(/^node "c" stopped mid-answer/);
    expect(lines.some((l) => l.done === true)).toBe(false);

    const next = await post(`${a.url}/api/generate`, { model: 'shared', prompt: 'hi', stream: false, options });
    expect(next.status).toBe(200);
    expect(next.headers.get('x-corral-node')).toBe('b');
    expect(((await next.json()) as { eval_count: number }).eval_count).toBe(4);

    // Within the expiry the others forget C, and say so alike.
    for (const node of [a, b]) await seesNodes(node, ['a', 'b']);
    const streamed = await ndjson(await post(`${a.url}/api/chat`, { model: 'shared', messages: [], stream: true }));
    expect(streamed.at(-1)).toMatchObject({ done: true });
  });
});
