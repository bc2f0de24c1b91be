import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { findLlamaServer } from '../../src/provision/llama-binary.js';
import { generateFixtureModels, type FixtureModels } from '../fixtures/models.js';
import { TestPostgres } from './postgres-server.js';

export interface Fixtures {
  llamaServer: string;
  models: FixtureModels;
}

/** The test run's PostgreSQL: a superuser URL (database "postgres"), or why there is none. */
export type PostgresFixture = { adminUrl: string; error?: undefined } | { adminUrl?: undefined; error: string };

declare module 'vitest' {
  export interface ProvidedContext {
    fixtures: Fixtures;
    postgres: PostgresFixture;
  }
}

/**
 * Runs once per test run: the real llama-server (provisioned by `npm test`'s pretest step), tiny
 * random-weight GGUF models written fresh by the suite itself, and one PostgreSQL server in which
 * each test file that needs one creates its own database (tests/helpers/postgres.ts).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const bin = await findLlamaServer({});
  if (!bin)
    throw new Error('no llama-server found: run `npm test` (its pretest step builds one) or set CORRAL_LLAMA_SERVER');
  const dir = await mkdtemp(join(tmpdir(), 'corral-fixtures-'));
  // A missing PostgreSQL fails the tests that need it, with the reason, rather than the whole run.
  const [models, postgres] = await Promise.all([
    generateFixtureModels(dir),
    TestPostgres.create().catch((err: Error) => err),
  ]);
  project.provide('fixtures', { llamaServer: bin.path, models });
  project.provide(
    'postgres',
    postgres instanceof Error ? { error: postgres.message } : { adminUrl: postgres.url('postgres') },
  );
  return async () => {
    if (!(postgres instanceof Error)) await postgres.destroy();
    await rm(dir, { recursive: true, force: true });
  };
}
