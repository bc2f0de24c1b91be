import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { inject } from 'vitest';
import { createGateway, type Gateway, type GatewayOptions } from '../../src/gateway.js';

export interface TestGateway {
  gw: Gateway;
  /** http://127.0.0.1:PORT */
  url: string;
  dir: string;
  configFile: string;
  close(): Promise<void>;
}

/**
 * Starts a real Corral (real llama-server children) in a fresh temporary directory, listening on
 * an ephemeral loopback port. `config` is merged into a minimal YAML config.
 */
export async function startGateway(
  config: Record<string, unknown> = {},
  options: Partial<GatewayOptions> = {},
): Promise<TestGateway> {
  const fixtures = inject('fixtures');
  const dir = await mkdtemp(join(tmpdir(), 'corral-test-'));
  await mkdir(join(dir, 'config'), { recursive: true });
  await mkdir(join(dir, 'data', 'models'), { recursive: true });
  const configFile = join(dir, 'config', 'corral.yaml');
  const full = {
    llama_server: {
      binary: fixtures.llamaServer,
      args: ['-t', '1', '--ignore-eos'],
      stop_timeout: '5s',
      ...(config.llama_server as object),
    },
    defaults: { ctx_size: 512, ...(config.defaults as object) },
    // Tests never see the machine's own Ollama models unless they ask for a store.
    ollama_store: 'off',
    ...Object.fromEntries(Object.entries(config).filter(([k]) => k !== 'llama_server' && k !== 'defaults')),
  };
  await writeFile(configFile, stringify(full));
  const gw = await createGateway({ configFile, cwd: dir, ...options });
  const address = await gw.app.listen({ host: '127.0.0.1', port: 0 });
  return {
    gw,
    url: address,
    dir,
    configFile,
    async close() {
      await gw.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Reads an NDJSON response body into its objects. */
export async function ndjson(res: Response): Promise<Record<string, unknown>[]> {
  const text = await res.text();
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export function post(url: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...init,
  });
}
