import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { findLlamaServer } from '../../src/provision/llama-binary.js';
import { generateFixtureModels, type FixtureModels } from '../fixtures/models.js';

export interface Fixtures {
  llamaServer: string;
  models: FixtureModels;
}

declare module 'vitest' {
  export interface ProvidedContext {
    fixtures: Fixtures;
  }
}

/**
 * Runs once per test run: the real llama-server (provisioned by `npm test`'s pretest step) and
 * tiny random-weight GGUF models written fresh by the suite itself.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const bin = await findLlamaServer({});
  if (!bin)
    throw new Error('no llama-server found: run `npm test` (its pretest step builds one) or set CORRAL_LLAMA_SERVER');
  const dir = await mkdtemp(join(tmpdir(), 'corral-fixtures-'));
  const models = await generateFixtureModels(dir);
  project.provide('fixtures', { llamaServer: bin.path, models });
  return async () => {
    await rm(dir, { recursive: true, force: true });
  };
}
