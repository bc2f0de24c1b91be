import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { openDatabase } from '../../src/store/database.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway | undefined;
let dir: string;
afterAll(async () => {
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

it('the gateway applies log retention when it starts', async () => {
  dir = await mkdtemp(join(tmpdir(), 'corral-retention-'));
  const path = join(dir, 'corral.db');
  const day = 86_400_000;
  const seed = openDatabase(path);
  seed.requestLog.write({ principal: 'old', endpoint: '/api/chat', status: 200, at: Date.now() - 10 * day });
  seed.requestLog.write({ principal: 'new', endpoint: '/api/chat', status: 200, at: Date.now() - day });
  await seed.close();
  t = await startGateway({ store: { path, request_log_retention: '7d' } });
  expect((await t.gw.store.requestLog.recent()).map((r) => r.principal)).toEqual(['new']);
});
