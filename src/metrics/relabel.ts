/** One metric family from a llama-server's exposition text. */
export interface Family {
  help?: string;
  type?: string;
  samples: string[];
}

/** `llamacpp:prompt_tokens_total` → `llamacpp_prompt_tokens_total`: colons are reserved for recording rules. */
export function sanitiseName(name: string): string {
  const clean = name.replace(/[^a-zA-Z0-9_]/g, '_');
  return /^[0-9]/.test(clean) ? `_${clean}` : clean;
}

export function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/**
 * Parses Prometheus text exposition and adds `model="..."` to every sample, merging into `families`
 * so HELP/TYPE appear once per name however many models report it.
 */
export function relabelInto(families: Map<string, Family>, text: string, model: string, node?: string): void {
  const label = `model="${escapeLabel(model)}"${node === undefined ? '' : `,node="${escapeLabel(node)}"`}`;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)\s*(.*)$/.exec(line);
      if (!m) continue;
      const fam = family(families, sanitiseName(m[2]!));
      if (m[1] === 'HELP') fam.help ??= m[3] ?? '';
      else fam.type ??= m[3] ?? 'untyped';
      continue;
    }
    const m = /^([^\s{]+)(\{[^}]*\})?\s+(.+)$/.exec(line);
    if (!m) continue;
    const name = sanitiseName(m[1]!);
    const inner = m[2] ? m[2].slice(1, -1).trim() : '';
    const labels = inner ? `{${label},${inner}}` : `{${label}}`;
    family(families, baseName(families, name)).samples.push(`${name}${labels} ${m[3]}`);
  }
}

/** Histogram and summary samples (`_bucket`, `_sum`, `_count`) belong to the family declared without the suffix. */
function baseName(families: Map<string, Family>, name: string): string {
  if (families.has(name)) return name;
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  return m && families.has(m[1]!) ? m[1]! : name;
}

function family(families: Map<string, Family>, name: string): Family {
  let fam = families.get(name);
  if (!fam) families.set(name, (fam = { samples: [] }));
  return fam;
}

export function renderFamilies(families: Map<string, Family>): string {
  let out = '';
  for (const [name, fam] of families) {
    if (fam.help !== undefined) out += `# HELP ${name} ${fam.help}\n`;
    if (fam.type !== undefined) out += `# TYPE ${name} ${fam.type}\n`;
    for (const s of fam.samples) out += `${s}\n`;
  }
  return out;
}
