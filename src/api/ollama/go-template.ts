import { BadRequest } from '../../errors.js';

export interface TemplateVars {
  System: string;
  Prompt: string;
  Response: string;
}

type Node =
  | { text: string }
  | { field: keyof TemplateVars }
  | { cond: keyof TemplateVars; whenTrue: Node[]; whenFalse: Node[] };

const FIELDS = new Set(['System', 'Prompt', 'Response']);

function refuse(what: string): never {
  throw new BadRequest(
    `invalid value for "template": ${what}; Corral renders only the classic subset ({{ .System }}, {{ .Prompt }}, {{ .Response }}, {{ if .X }}…{{ else }}…{{ end }}) — for anything richer create a model with a Jinja template`,
  );
}

/** Tokenises `{{- action -}}` blocks with Go's whitespace trimming. */
function lex(src: string): ({ text: string } | { action: string })[] {
  const out: ({ text: string } | { action: string })[] = [];
  const re = /\{\{(-?)\s*([\s\S]*?)\s*(-?)\}\}/g;
  let last = 0;
  let trimNext = false;
  for (let m = re.exec(src); m; m = re.exec(src)) {
    let text = src.slice(last, m.index);
    if (trimNext) text = text.replace(/^\s+/, '');
    if (m[1]) text = text.replace(/\s+$/, '');
    if (text) out.push({ text });
    out.push({ action: m[2]! });
    trimNext = Boolean(m[3]);
    last = re.lastIndex;
  }
  let tail = src.slice(last);
  if (trimNext) tail = tail.replace(/^\s+/, '');
  if (tail) out.push({ text: tail });
  return out;
}

function parse(
  tokens: ReturnType<typeof lex>,
  i: { n: number },
  inIf: boolean,
): { nodes: Node[]; end: 'end' | 'else' | 'eof' } {
  const nodes: Node[] = [];
  while (i.n < tokens.length) {
    const t = tokens[i.n++]!;
    if ('text' in t) {
      nodes.push(t);
      continue;
    }
    const a = t.action;
    if (a === 'end' || a === 'else') {
      if (!inIf) refuse(`unexpected {{ ${a} }}`);
      return { nodes, end: a };
    }
    const field = /^\.(\w+)$/.exec(a);
    if (field) {
      if (!FIELDS.has(field[1]!)) refuse(`unsupported field .${field[1]}`);
      nodes.push({ field: field[1] as keyof TemplateVars });
      continue;
    }
    const cond = /^if\s+\.(\w+)$/.exec(a);
    if (cond) {
      if (!FIELDS.has(cond[1]!)) refuse(`unsupported field .${cond[1]}`);
      const then = parse(tokens, i, true);
      const otherwise = then.end === 'else' ? parse(tokens, i, true) : { nodes: [], end: 'end' as const };
      if (then.end === 'eof' || otherwise.end !== 'end') refuse('unterminated {{ if }}');
      nodes.push({ cond: cond[1] as keyof TemplateVars, whenTrue: then.nodes, whenFalse: otherwise.nodes });
      continue;
    }
    refuse(`unsupported action {{ ${a} }}`);
  }
  return { nodes, end: 'eof' };
}

/**
 * Renders an Ollama (Go text/template) prompt template into the raw prompt. Like Ollama, output
 * stops at `{{ .Response }}`: the model continues from there.
 */
export function renderGoTemplate(template: string, vars: TemplateVars): string {
  const { nodes, end } = parse(lex(template), { n: 0 }, false);
  if (end !== 'eof') refuse('unbalanced {{ end }}');
  let out = '';
  const walk = (list: Node[]): boolean => {
    for (const n of list) {
      if ('text' in n) out += n.text;
      else if ('field' in n) {
        if (n.field === 'Response') return true;
        out += vars[n.field];
      } else if (walk(vars[n.cond] ? n.whenTrue : n.whenFalse)) return true;
    }
    return false;
  };
  walk(nodes);
  return out;
}

export function looksLikeJinja(template: string): boolean {
  return /\{%|\{\{-?\s*(messages|message|bos_token|raw)\b/.test(template);
}
