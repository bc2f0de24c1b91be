/**
 * A parser for the part of Go's text/template that Ollama's model templates use: text, actions with
 * pipelines, variables (`$x := …`, `$x = …`), if / else if / else, range (with `$i, $v :=`), with,
 * break, continue, comments and `{{-`/`-}}` trimming. `define`, `template` and `block` are refused.
 */

export type Arg =
  | { k: 'field'; from: 'dot' | 'var'; name?: string; path: string[] }
  | { k: 'lit'; v: unknown }
  | { k: 'ident'; name: string }
  | { k: 'sub'; pipe: Pipe; path: string[] };

export interface Pipe {
  /** Variables a `:=` declares (range may declare two), or the one `=` assigns. */
  vars: string[];
  assign: boolean;
  cmds: Arg[][];
}

export type Node =
  | { t: 'text'; v: string }
  | { t: 'out'; pipe: Pipe }
  | { t: 'if'; branches: { pipe: Pipe; body: Node[] }[]; otherwise: Node[] }
  | { t: 'range' | 'with'; pipe: Pipe; body: Node[]; otherwise: Node[] }
  | { t: 'break' | 'continue' };

export class TemplateSyntaxError extends Error {}

type Item = { text: string } | { action: string };

/** Splits a template into text and actions, applying `{{-` and `-}}` whitespace trimming. */
function lex(src: string): Item[] {
  const out: Item[] = [];
  const re = /\{\{(-\s)?([\s\S]*?)(\s-)?\}\}/g;
  let last = 0;
  let trimNext = false;
  for (let m = re.exec(src); m; m = re.exec(src)) {
    let text = src.slice(last, m.index);
    if (trimNext) text = text.replace(/^\s+/, '');
    if (m[1] || m[0].startsWith('{{-}}')) text = text.replace(/\s+$/, '');
    if (text) out.push({ text });
    const action = m[2]!.trim();
    if (!(action.startsWith('/*') && action.endsWith('*/'))) out.push({ action });
    trimNext = Boolean(m[3]);
    last = re.lastIndex;
  }
  let tail = src.slice(last);
  if (trimNext) tail = tail.replace(/^\s+/, '');
  if (tail) out.push({ text: tail });
  return out;
}

type Tok = { k: 'str' | 'num' | 'word' | 'field' | 'var' | 'punct'; v: string };

function tokenize(action: string): Tok[] {
  const toks: Tok[] = [];
  const re =
    /\s*(?:("(?:[^"\\]|\\.)*")|(`[^`]*`)|('(?:[^'\\]|\\.)')|(-?\d+(?:\.\d+)?)|(\$\w*(?:\.\w+)*)|((?:\.\w+)+|\.)|([A-Za-z_]\w*)|(:=|[()|=,]))/y;
  let pos = 0;
  while (pos < action.length) {
    re.lastIndex = pos;
    const m = re.exec(action);
    if (!m) {
      if (action.slice(pos).trim() === '') break;
      throw new TemplateSyntaxError(`unexpected "${action.slice(pos).trim().slice(0, 20)}" in {{ ${action} }}`);
    }
    pos = re.lastIndex;
    if (m[1]) toks.push({ k: 'str', v: JSON.parse(m[1]) as string });
    else if (m[2]) toks.push({ k: 'str', v: m[2].slice(1, -1) });
    else if (m[3]) toks.push({ k: 'num', v: String((JSON.parse(`"${m[3].slice(1, -1)}"`) as string).codePointAt(0)) });
    else if (m[4]) toks.push({ k: 'num', v: m[4] });
    else if (m[5]) toks.push({ k: 'var', v: m[5] });
    else if (m[6]) toks.push({ k: 'field', v: m[6] });
    else if (m[7]) toks.push({ k: 'word', v: m[7] });
    else if (m[8]) toks.push({ k: 'punct', v: m[8] });
  }
  return toks;
}

const LITERALS: Record<string, unknown> = { true: true, false: false, nil: null };

/** A pipeline: `[$a[, $b] :=|=] cmd [| cmd]…`, a command being operands separated by spaces. */
function parsePipe(toks: Tok[], i: { n: number }, inParens: boolean): Pipe {
  const pipe: Pipe = { vars: [], assign: false, cmds: [] };
  const decl = toks.slice(i.n, i.n + 4);
  if (decl[0]?.k === 'var' && decl[1]?.v === ',' && decl[2]?.k === 'var' && decl[3]?.v === ':=') {
    pipe.vars = [decl[0].v, decl[2].v];
    i.n += 4;
  } else if (decl[0]?.k === 'var' && (decl[1]?.v === ':=' || decl[1]?.v === '=')) {
    pipe.vars = [decl[0].v];
    pipe.assign = decl[1].v === '=';
    i.n += 2;
  }
  let cmd: Arg[] = [];
  while (i.n < toks.length) {
    const t = toks[i.n++]!;
    if (t.v === ')' && t.k === 'punct') {
      if (!inParens) throw new TemplateSyntaxError('unexpected ")"');
      i.n--;
      break;
    }
    if (t.v === '|' && t.k === 'punct') {
      if (!cmd.length) throw new TemplateSyntaxError('missing command before "|"');
      pipe.cmds.push(cmd);
      cmd = [];
      continue;
    }
    cmd.push(parseOperand(t, toks, i));
  }
  if (cmd.length) pipe.cmds.push(cmd);
  if (!pipe.cmds.length) throw new TemplateSyntaxError('empty pipeline');
  return pipe;
}

function parseOperand(t: Tok, toks: Tok[], i: { n: number }): Arg {
  const fieldPath = (s: string): string[] => s.split('.').filter(Boolean);
  switch (t.k) {
    case 'str':
      return { k: 'lit', v: t.v };
    case 'num':
      return { k: 'lit', v: Number(t.v) };
    case 'field':
      return { k: 'field', from: 'dot', path: fieldPath(t.v) };
    case 'var': {
      const [name, ...path] = t.v.split('.');
      return { k: 'field', from: 'var', name: name!, path };
    }
    case 'word':
      return t.v in LITERALS ? { k: 'lit', v: LITERALS[t.v] } : { k: 'ident', name: t.v };
    default: {
      if (t.v !== '(') throw new TemplateSyntaxError(`unexpected "${t.v}"`);
      const pipe = parsePipe(toks, i, true);
      if (toks[i.n++]?.v !== ')') throw new TemplateSyntaxError('unclosed "("');
      const next = toks[i.n];
      const path = next?.k === 'field' && next.v !== '.' ? fieldPath(next.v) : [];
      if (path.length) i.n++;
      return { k: 'sub', pipe, path };
    }
  }
}

function pipeOf(src: string): Pipe {
  const toks = tokenize(src);
  const i = { n: 0 };
  const pipe = parsePipe(toks, i, false);
  if (i.n < toks.length) throw new TemplateSyntaxError(`unexpected "${toks[i.n]!.v}"`);
  return pipe;
}

type End = 'end' | 'else' | 'eof' | { elseIf: string } | { elseWith: string };

function parseList(items: Item[], i: { n: number }, depth: number): { nodes: Node[]; end: End } {
  const nodes: Node[] = [];
  while (i.n < items.length) {
    const item = items[i.n++]!;
    if ('text' in item) {
      nodes.push({ t: 'text', v: item.text });
      continue;
    }
    const a = item.action;
    const word = /^(\w+)\b\s*([\s\S]*)$/.exec(a);
    const kw = word?.[1];
    const rest = word?.[2] ?? '';
    if (kw === 'end' || (kw === 'else' && rest === '')) {
      if (depth === 0) throw new TemplateSyntaxError(`unexpected {{ ${a} }}`);
      return { nodes, end: kw };
    }
    if (kw === 'else' && /^if\b/.test(rest)) return { nodes, end: { elseIf: rest.slice(2) } };
    if (kw === 'else' && /^with\b/.test(rest)) return { nodes, end: { elseWith: rest.slice(4) } };
    if (kw === 'if' || kw === 'with' || kw === 'range') {
      nodes.push(parseBlock(kw, rest, items, i, depth));
    } else if (kw === 'break' || kw === 'continue') {
      nodes.push({ t: kw });
    } else if (kw === 'define' || kw === 'template' || kw === 'block') {
      throw new TemplateSyntaxError(`{{ ${kw} }} is not supported`);
    } else {
      nodes.push({ t: 'out', pipe: pipeOf(a) });
    }
  }
  if (depth > 0) throw new TemplateSyntaxError('unexpected end of template: missing {{ end }}');
  return { nodes, end: 'eof' };
}

function parseBlock(kw: 'if' | 'with' | 'range', src: string, items: Item[], i: { n: number }, depth: number): Node {
  const branches: { pipe: Pipe; body: Node[] }[] = [];
  let pipe = pipeOf(src);
  for (;;) {
    const body = parseList(items, i, depth + 1);
    branches.push({ pipe, body: body.nodes });
    if (body.end === 'end') return block(kw, branches, []);
    if (body.end === 'else') {
      const otherwise = parseList(items, i, depth + 1);
      if (otherwise.end !== 'end') throw new TemplateSyntaxError(`expected {{ end }} after {{ else }} of {{ ${kw} }}`);
      return block(kw, branches, otherwise.nodes);
    }
    if (typeof body.end === 'object' && kw !== 'range') {
      // `else if` / `else with` nest a new block in the else branch that shares this block's end.
      const inner = 'elseIf' in body.end ? body.end.elseIf : body.end.elseWith;
      if (kw === 'if' && 'elseIf' in body.end) {
        pipe = pipeOf(inner);
        continue;
      }
      return block(kw, branches, [parseBlock('elseIf' in body.end ? 'if' : 'with', inner, items, i, depth)]);
    }
    throw new TemplateSyntaxError(`unexpected {{ else }} form in {{ ${kw} }}`);
  }
}

function block(kw: 'if' | 'with' | 'range', branches: { pipe: Pipe; body: Node[] }[], otherwise: Node[]): Node {
  if (kw === 'if') return { t: 'if', branches, otherwise };
  return { t: kw, pipe: branches[0]!.pipe, body: branches[0]!.body, otherwise };
}

export function parseTemplate(src: string): Node[] {
  return parseList(lex(src.replace(/\r\n/g, '\n')), { n: 0 }, 0).nodes;
}

/** Every field and variable name a template mentions, lowercased (Ollama's Template.Vars). */
export function identifiers(nodes: Node[]): Set<string> {
  const out = new Set<string>();
  const pipe = (p: Pipe): void => {
    for (const cmd of p.cmds) for (const a of cmd) arg(a);
  };
  const arg = (a: Arg): void => {
    if (a.k === 'field') for (const f of a.path) out.add(f.toLowerCase());
    if (a.k === 'sub') pipe(a.pipe);
  };
  const walk = (list: Node[]): void => {
    for (const n of list) {
      if (n.t === 'out') pipe(n.pipe);
      else if (n.t === 'if') {
        for (const b of n.branches) {
          pipe(b.pipe);
          walk(b.body);
        }
        walk(n.otherwise);
      } else if (n.t === 'range' || n.t === 'with') {
        pipe(n.pipe);
        walk(n.body);
        walk(n.otherwise);
      }
    }
  };
  walk(nodes);
  return out;
}
