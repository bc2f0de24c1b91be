/**
 * Ollama-style durations: "5m", "300s", "1h30m", "250ms", a plain number of seconds, or a
 * negative value meaning "forever". Returns milliseconds; Infinity for negative values.
 */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`invalid duration ${value}`);
    return value < 0 ? Infinity : value * 1000;
  }
  const text = value.trim();
  if (/^-?\d+(\.\d+)?$/.test(text)) return parseDuration(Number(text));
  const negative = text.startsWith('-');
  const body = negative ? text.slice(1) : text;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(body); m; m = re.exec(body)) {
    total += Number(m[1]) * (UNIT_MS[m[2]!] ?? 0);
    consumed = re.lastIndex;
  }
  if (consumed === 0 || consumed !== body.length) {
    throw new Error(`invalid duration "${value}" (use e.g. "5m", "300s", "1h", or a number of seconds)`);
  }
  return negative ? Infinity : total;
}

/** Bytes from a number or a size string like "16GB", "512MiB", "1.5G". */
export function parseSize(value: string | number): number {
  if (typeof value === 'number') return value;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(value);
  if (!m) throw new Error(`invalid size "${value}" (use e.g. "16GB", "512MiB" or a number of bytes)`);
  const power = ' kmgt'.indexOf((m[2] || ' ').toLowerCase());
  const base = m[3]?.toLowerCase() === 'ib' ? 1024 : 1000;
  return Math.round(Number(m[1]) * base ** power);
}
