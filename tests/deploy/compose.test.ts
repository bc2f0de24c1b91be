import { execFile } from 'node:child_process';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseConfig } from '../../src/config/load.js';

const run = promisify(execFile);
const root = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
const deploy = join(root, 'deploy');

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
}

const compose = parse(await readFile(join(deploy, 'compose.yaml'), 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
};
const nodes = Object.entries(compose.services).filter(([name]) => name.startsWith('corral-'));

const haveCompose = await run('docker', ['compose', 'version']).then(
  () => true,
  () => false,
);

describe('deploy/compose.yaml', () => {
  it('runs PostgreSQL and two Corral nodes, each with a model directory of its own', () => {
    expect(compose.services.postgres?.image).toMatch(/^postgres:/);
    expect(nodes.map(([name]) => name)).toEqual(['corral-a', 'corral-b']);
    const modelDirs = nodes.map(([, s]) => s.volumes?.find((v) => v.endsWith(':/models:ro'))?.split(':')[0]);
    expect(modelDirs).toEqual(['./models-a', './models-b']);
    const ports = nodes.map(([, s]) => s.ports?.[0]?.split(':')[0]);
    expect(new Set(ports).size).toBe(2);
    for (const [name, s] of nodes) {
      expect(s.depends_on?.postgres?.condition).toBe('service_healthy');
      expect(s.environment?.CORRAL_NODE_ID).toBe(name);
      expect(new URL(s.environment!.CORRAL_ADVERTISE_URL!).hostname).toBe(name);
      expect(s.build?.dockerfile).toBe('deploy/Dockerfile');
    }
  });

  it("gives each node a valid Corral config that joins the fleet on the compose file's PostgreSQL", async () => {
    await access(join(deploy, 'Dockerfile'));
    const text = await readFile(join(deploy, 'fleet/corral.yaml'), 'utf8');
    for (const [name, s] of nodes) {
      expect(s.volumes).toContain('./fleet/corral.yaml:/etc/corral/corral.yaml:ro');
      const env = { ...s.environment, POSTGRES_PASSWORD: 'pw' };
      const config = parseConfig(text, 'corral.yaml', env);
      expect(config.fleet.node_id).toBe(name);
      expect(new URL(config.store.url).hostname).toBe('postgres');
      expect(config.fleet.enabled).toBe(true);
      expect(config.fleet.advertise_url).toBe(`http://${name}:11434`);
      expect(config.fleet.secret).toBe('');
      expect(s.environment?.CORRAL_FLEET_SECRET).toMatch(/^\$\{CORRAL_FLEET_SECRET:\?/);
      expect(config.auth.mode).toBe('required');
      expect(config.models_dirs).toContain('/models');
    }
  });

  it.skipIf(!haveCompose)('is what docker compose accepts', async () => {
    const { stderr } = await run('docker', ['compose', '-f', join(deploy, 'compose.yaml'), 'config', '-q'], {
      env: { ...process.env, POSTGRES_PASSWORD: 'pw', CORRAL_FLEET_SECRET: 'x'.repeat(32) },
    });
    expect(stderr.trim()).toBe('');
  });
});
