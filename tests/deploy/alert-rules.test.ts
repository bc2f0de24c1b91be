import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { AlertRulesSchema } from '../../src/config/alerts-schema.js';
import type { TestGateway } from '../helpers/gateway.js';
import { metricNames, scrapeAfterOneAnswer } from '../helpers/promql.js';

const root = new URL('../../', import.meta.url);
const rulesFile = new URL('deploy/prometheus/alerts.yaml', root).pathname;
/** Debian's prometheus package (tests/setup/provision-promtool.ts installs it). */
const PROMTOOL = '/usr/bin/promtool';

interface Rule {
  alert: string;
  expr: string;
  labels: { severity: string; corral_rule: string };
}

describe('deploy/prometheus/alerts.yaml', () => {
  let t: TestGateway;
  let rules: Rule[];
  let exported: Set<string>;
  beforeAll(async () => {
    ({ t, exported } = await scrapeAfterOneAnswer());
    const doc = parse(await readFile(rulesFile, 'utf8')) as { groups: { rules: Rule[] }[] };
    rules = doc.groups.flatMap((g) => g.rules);
  });
  afterAll(() => t?.close());

  it.skipIf(!existsSync(PROMTOOL))('passes promtool check rules and its unit tests', async () => {
    const check = await execa(PROMTOOL, ['check', 'rules', rulesFile], { reject: false });
    expect(check.exitCode, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toContain(`SUCCESS: ${rules.length} rules found`);
    const unit = await execa(PROMTOOL, ['test', 'rules', 'alerts.test.yaml'], {
      cwd: new URL('deploy/prometheus/', root).pathname,
      reject: false,
    });
    expect(unit.exitCode, unit.stdout + unit.stderr).toBe(0);
  });

  it("reads only metrics that a real Corral's /metrics exports", async () => {
    const unknown = rules.flatMap((r) =>
      metricNames(r.expr)
        .filter((n) => !exported.has(n))
        .map((n) => `${r.alert}: ${n}`),
    );
    expect(unknown).toEqual([]);
    expect(rules.flatMap((r) => metricNames(r.expr)).length).toBeGreaterThan(rules.length);
  });

  it("mirrors each of Corral's alert rules with its default severity", () => {
    const corral = Object.entries(AlertRulesSchema.properties).map(([name, schema]) => ({
      name,
      severity: (schema.properties.severity as { default: string }).default,
    }));
    const mirrored = rules.map((r) => ({ name: r.labels.corral_rule, severity: r.labels.severity }));
    expect(mirrored.sort((a, b) => a.name.localeCompare(b.name))).toEqual(
      corral.sort((a, b) => a.name.localeCompare(b.name)),
    );
  });
});
