import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Ollama } from 'ollama';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type FleetNodeProcess, startAll, startNode, startWorker, type WorkerProcess } from '../helpers/fleet.js';
import { post } from '../helpers/gateway.js';
import { freshPostgresDatabase, type TestDatabase } from '../helpers/postgres.js';

const fixtures = inject('fixtures');
let db: TestDatabase;
let workers: WorkerProcess[] = [];
let a: FleetNodeProcess;
let b: FleetNodeProcess;
const options = { num_predict: 4, temperature: 0, seed: 1 };

/** Two `corral worker` rpc-servers on this machine, and two nodes whose models run on them. */
beforeAll(async () => {
  db = await freshPostgresDatabase();
  const database = db.url;
  workers = await startAll([startWorker('w1', database), startWorker('w2', database)]);
  const [w1, w2] = workers.map((w) => w.endpoint);
  [a, b] = await startAll([
    startNode('a', database, {
      models: {
        // -lv 4: llama-server logs where each tensor went.
        big: { path: fixtures.models.chat, rpc: 'auto', args: ['-lv', '4'] },
        pair: { path: fixtures.models.chat2, rpc: [w1, w2], args: ['-lv', '4'] },
      },
    }),
    startNode('b', database, { models: { other: { path: fixtures.models.chat, rpc: 'auto' } } }),
  ]);
}, 120_000);

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await Promise.all(workers.map((w) => w.stop()));
  await db?.drop();
});

/** The rpc-servers llama-server put the model's weights on, from the model's log file on node A. */
async function weightsOn(model: string): Promise<string[]> {
  const log = await readFile(join(a.dir, 'logs', `${model}_latest.log`), 'utf8');
  const endpoints = [...log.matchAll(/load_tensors: RPC\d+\[([^\]]+)\] model buffer size/g)].map((m) => m[1]!);
  return [...new Set(endpoints)].sort();
}

describe('a model across llama.cpp RPC workers', () => {
  it('"rpc: auto" runs on every live worker of the fleet and answers through Corral', async () => {
    const ollama = new Ollama({ host: a.url });
    const res = await ollama.chat({ model: 'big', messages: [{ role: 'user', content: 'hello' }], options });
    expect(res.eval_count).toBe(4);
    expect(await weightsOn('big')).toEqual(workers.map((w) => w.endpoint).sort());
  });

  it('an rpc-server serves one model at a time: another node is told who holds it', async () => {
    const res = await post(`${b.url}/api/generate`, { model: 'other', prompt: 'hi', stream: false, options });
    expect(res.status).toBe(500);
    expect(((await res.json()) as { error: string }).error).toMatch(
      /rpc workers are in use by .*model "big:latest" on node "a"/,
    );
  });

  it('a model naming its workers takes them over from the model that had them on this node', async () => {
    const res = await post(`${a.url}/api/generate`, { model: 'pair', prompt: 'hi', stream: false, options });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { eval_count: number }).eval_count).toBe(4);
    expect(await weightsOn('pair')).toEqual(workers.map((w) => w.endpoint).sort());
    const ps = (await (await fetch(`${a.url}/api/ps`)).json()) as { models: { name: string; node: string }[] };
    expect(ps.models.filter((m) => m.node === 'a').map((m) => m.name)).toEqual(['pair:latest']);
  });
});
