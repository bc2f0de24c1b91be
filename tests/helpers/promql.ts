import { inject } from 'vitest';
import { post, startGateway, type TestGateway } from './gateway.js';

/** Every series name a Prometheus exposition text offers, histogram and summary parts included. */
export function exportedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) {
      const [, name, kind] = type as unknown as [string, string, string];
      names.add(name);
      if (kind === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
      if (kind === 'summary') for (const s of ['_sum', '_count']) names.add(name + s);
    } else if (line && !line.startsWith('#')) names.add(/^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0] ?? '');
  }
  names.delete('');
  return names;
}

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

/** The metric names a PromQL expression reads: identifiers that are not functions, keywords or labels. */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const names: string[] = [];
  for (const m of bare.matchAll(/(?<![$\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![a-zA-Z0-9_:])(?!\s*\()/g)) {
    if (!KEYWORDS.has(m[1]!.toLowerCase())) names.push(m[1]!);
  }
  return names;
}

/**
 * A real Corral with one model loaded (so its llama-server's metrics are in the scrape too) and the
 * series names its /metrics exports.
 */
export async function scrapeAfterOneAnswer(): Promise<{ t: TestGateway; exported: Set<string> }> {
  const { models } = inject('fixtures');
  const t = await startGateway({ models: { chat: { path: models.chat } } });
  const res = await post(`${t.url}/api/generate`, {
    model: 'chat',
    prompt: 'hi',
    stream: false,
    options: { num_predict: 2 },
  });
  if (res.status !== 200) throw new Error(`generate answered ${res.status}`);
  return { t, exported: exportedNames(await (await fetch(`${t.url}/metrics`)).text()) };
}
