import { describe, expect, inject, it } from 'vitest';
import { post, startGateway } from '../helpers/gateway.js';
import { running, until } from './helpers.js';

const fixtures = inject('fixtures');

describe('shutdown', () => {
  it('drains: refuses new requests with 503, lets the running one finish, then stops every child', async () => {
    const t = await startGateway({ models: { a: { path: fixtures.models.chat } } });
    const find = () => t.gw.scheduler.loaded().find((l) => l.name === 'a:latest');
    const long = post(`${t.url}/api/generate`, {
      model: 'a',
      prompt: 'x',
      stream: false,
      options: { num_predict: 400 },
    });
    await until(t.gw.scheduler, () => find()?.inFlight === 1);
    const pid = find()!.pid!;
    const closing = t.gw.close({ drainMs: 20_000 });
    const refused = await post(`${t.url}/api/generate`, { model: 'a', prompt: 'y', stream: false });
    expect(refused.status).toBe(503);
    const res = await long;
    expect(res.status).toBe(200);
    expect(((await res.json()) as { eval_count: number }).eval_count).toBe(400);
    await closing;
    expect(await running(pid)).toBe(false);
    await t.close();
  });
});
