import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { registerHealthRoutes } from '../../src/health/routes.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';

/** A pino destination that keeps the parsed lines. */
function logSink() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { lines, stream };
}

let t: TestGateway | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe('the store files deleted while Corral runs', () => {
  for (const file of ['corral.db-wal', 'corral.db']) {
    it(`fails /ready and logs an error when ${file} is deleted`, async () => {
      const log = logSink();
      t = await startGateway({}, { logger: { level: 'info', stream: log.stream } });
      expect((await fetch(`${t.url}/ready`)).status).toBe(200);
      await rm(join(t.dir, 'data', file));
      const res = await fetch(`${t.url}/ready`);
      expect(res.status).toBe(503);
      const body = (await res.json()) as { checks: Record<string, string> };
      expect(body.checks.store).toContain(`${file} was deleted`);
      const errors = log.lines.filter((l) => l.msg === 'not ready');
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({ level: 50, check: 'store' });
      // Logged once, not on every probe.
      await fetch(`${t.url}/ready`);
      expect(log.lines.filter((l) => l.msg === 'not ready')).toHaveLength(1);
    });
  }
});

it('runs watched checks on a timer, so a failure is logged where nothing polls /ready', async () => {
  const log = logSink();
  const app = Fastify({ logger: { level: 'info', stream: log.stream } });
  let broken = false;
  registerHealthRoutes(
    app,
    [
      {
        name: 'store',
        watch: true,
        check() {
          if (broken) throw new Error('gone');
        },
      },
    ],
    { watchMs: 10 },
  );
  await app.ready();
  broken = true;
  await expect.poll(() => log.lines.some((l) => l.msg === 'not ready' && l.reason === 'gone')).toBe(true);
  broken = false;
  await expect.poll(() => log.lines.some((l) => l.msg === 'ready again')).toBe(true);
  await app.close();
});
