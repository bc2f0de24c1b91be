import type { Arg, Node, Pipe } from './go-template-parse.js';

export class TemplateExecError extends Error {}

/** Thrown at the first `.Response` when rendering stops there (Ollama's legacy templates). */
class Cut extends Error {}
class Break extends Error {}
class Continue extends Error {}

/** Go's truth: false, 0, nil, and empty strings, slices and maps are false. */
export function truthy(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

/** json.Marshal's output: Go escapes <, > and & in strings. */
export function goJson(v: unknown): string {
  return (JSON.stringify(v ?? null) ?? 'null')
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026');
}

/** How a value prints: strings as they are, structures (tools, arguments) as their JSON, as Ollama's String() methods do. */
export function printValue(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'object') return goJson(v);
  return String(v);
}

/** A Go field name in data that came from JSON: `ToolCalls` is `ToolCalls`, `toolCalls` or `tool_calls`. */
function field(v: unknown, name: string): unknown {
  if (v === null || typeof v !== 'object') return undefined;
  const o = v as Record<string, unknown>;
  if (name in o) return o[name];
  const lower = name[0]!.toLowerCase() + name.slice(1);
  if (lower in o) return o[lower];
  const snake = name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
  return o[snake];
}

function compare(a: unknown, b: unknown, op: string): boolean {
  if (typeof a !== typeof b || (typeof a !== 'number' && typeof a !== 'string'))
    throw new TemplateExecError(`${op}: incompatible types for comparison`);
  const x = a as number | string;
  const y = b as number | string;
  return op === 'lt' ? x < y : op === 'le' ? x <= y : op === 'gt' ? x > y : x >= y;
}

function sprintf(format: string, args: unknown[]): string {
  let i = 0;
  return format.replace(/%([-+# 0]*\d*(?:\.\d+)?)([svdqtfx%])/g, (_m, _flags: string, verb: string) => {
    if (verb === '%') return '%';
    const a = args[i++];
    if (verb === 'q') return JSON.stringify(printValue(a));
    if (verb === 'd') return String(Math.trunc(Number(a)));
    if (verb === 'f') return Number(a).toFixed(6);
    return printValue(a);
  });
}

const today = (offsetDays = 0): string => new Date(Date.now() - offsetDays * 86_400_000).toISOString().slice(0, 10);

const FUNCS: Record<string, (...args: unknown[]) => unknown> = {
  not: (a) => !truthy(a),
  eq: (a, ...rest) => rest.some((b) => a === b),
  ne: (a, b) => a !== b,
  lt: (a, b) => compare(a, b, 'lt'),
  le: (a, b) => compare(a, b, 'le'),
  gt: (a, b) => compare(a, b, 'gt'),
  ge: (a, b) => compare(a, b, 'ge'),
  len: (a) => {
    if (typeof a === 'string' || Array.isArray(a)) return a.length;
    if (a && typeof a === 'object') return Object.keys(a).length;
    throw new TemplateExecError('len of a value that has no length');
  },
  index: (a, ...keys) => keys.reduce((v, k) => (v as Record<string, unknown> | undefined)?.[k as string], a),
  slice: (a, from, to) => {
    if (typeof a !== 'string' && !Array.isArray(a)) throw new TemplateExecError('slice of a value that is not a list');
    return a.slice(Number(from ?? 0), to === undefined ? undefined : Number(to));
  },
  printf: (format, ...args) => sprintf(String(format), args),
  print: (...args) => args.map(printValue).join(''),
  println: (...args) => `${args.map(printValue).join(' ')}\n`,
  json: (a) => goJson(a),
  currentDate: () => today(),
  yesterdayDate: () => today(1),
  toTypeScriptType: (p) => tsType(p),
};

function tsType(p: unknown): string {
  const type = field(p, 'Type');
  const one = (t: unknown): string =>
    t === 'string' ? 'string' : t === 'integer' || t === 'number' ? 'number' : t === 'boolean' ? 'boolean' : 'any';
  const en = field(p, 'Enum');
  if (Array.isArray(en) && en.length) return en.map((e) => JSON.stringify(e)).join(' | ');
  if (Array.isArray(type)) return type.map(one).join(' | ');
  if (type === 'array') return `${tsType(field(p, 'Items'))}[]`;
  return one(type);
}

interface Scope {
  vars: Map<string, unknown>[];
  cutAtResponse: boolean;
  out: string[];
}

/** Runs parsed nodes on `data`. With `cutAtResponse`, output stops where `.Response` is first reached. */
export function execute(nodes: Node[], data: Record<string, unknown>, cutAtResponse = false): string {
  const scope: Scope = { vars: [new Map([['$', data]])], cutAtResponse, out: [] };
  try {
    run(nodes, data, scope);
  } catch (err) {
    if (!(err instanceof Cut)) throw err;
  }
  return scope.out.join('');
}

function run(nodes: Node[], dot: unknown, s: Scope): void {
  for (const n of nodes) {
    switch (n.t) {
      case 'text':
        s.out.push(n.v);
        break;
      case 'out': {
        const v = pipe(n.pipe, dot, s);
        if (!n.pipe.vars.length) s.out.push(printValue(v));
        break;
      }
      case 'if': {
        const hit = n.branches.find((b) => inScope(s, () => truthy(pipe(b.pipe, dot, s))));
        inScope(s, () => run(hit ? hit.body : n.otherwise, dot, s));
        break;
      }
      case 'with':
        inScope(s, () => {
          const v = pipe(n.pipe, dot, s);
          run(truthy(v) ? n.body : n.otherwise, truthy(v) ? v : dot, s);
        });
        break;
      case 'range':
        inScope(s, () => range(n, dot, s));
        break;
      case 'break':
        throw new Break();
      case 'continue':
        throw new Continue();
    }
  }
}

function range(n: Extract<Node, { t: 'range' | 'with' }>, dot: unknown, s: Scope): void {
  const over = pipe({ ...n.pipe, vars: [] }, dot, s);
  const entries: [unknown, unknown][] = Array.isArray(over)
    ? over.map((v, i) => [i, v])
    : typeof over === 'number'
      ? Array.from({ length: Math.max(0, over) }, (_, i) => [i, i])
      : over && typeof over === 'object'
        ? Object.keys(over)
            .sort()
            .map((k) => [k, (over as Record<string, unknown>)[k]])
        : [];
  if (!entries.length) return run(n.otherwise, dot, s);
  for (const [k, v] of entries) {
    const vars = new Map<string, unknown>();
    if (n.pipe.vars.length === 2) vars.set(n.pipe.vars[0]!, k).set(n.pipe.vars[1]!, v);
    else if (n.pipe.vars.length === 1) vars.set(n.pipe.vars[0]!, v);
    s.vars.push(vars);
    try {
      run(n.body, v, s);
    } catch (err) {
      if (err instanceof Break) break;
      if (!(err instanceof Continue)) throw err;
    } finally {
      s.vars.pop();
    }
  }
}

function inScope<T>(s: Scope, fn: () => T): T {
  s.vars.push(new Map());
  try {
    return fn();
  } finally {
    s.vars.pop();
  }
}

function lookupVar(s: Scope, name: string): Map<string, unknown> | undefined {
  for (let i = s.vars.length - 1; i >= 0; i--) if (s.vars[i]!.has(name)) return s.vars[i];
  return undefined;
}

function pipe(p: Pipe, dot: unknown, s: Scope): unknown {
  let value: unknown;
  p.cmds.forEach((cmd, i) => {
    value = command(cmd, i === 0 ? [] : [value], dot, s);
  });
  if (p.vars.length === 1) {
    const name = p.vars[0]!;
    const home = p.assign ? lookupVar(s, name) : s.vars.at(-1);
    if (!home) throw new TemplateExecError(`undefined variable: ${name}`);
    home.set(name, value);
  }
  return value;
}

function command(cmd: Arg[], piped: unknown[], dot: unknown, s: Scope): unknown {
  const [head, ...rest] = cmd;
  if (head!.k === 'ident') {
    const name = head!.name;
    if (name === 'and' || name === 'or') {
      let v: unknown;
      for (const a of [...rest.map((r) => () => operand(r, dot, s)), ...piped.map((x) => () => x)]) {
        v = a();
        if (name === 'and' ? !truthy(v) : truthy(v)) return v;
      }
      return v;
    }
    const fn = FUNCS[name];
    if (!fn) throw new TemplateExecError(`function "${name}" not defined`);
    return fn(...rest.map((r) => operand(r, dot, s)), ...piped);
  }
  if (rest.length || piped.length) throw new TemplateExecError("can't give arguments to a non-function");
  return operand(head!, dot, s);
}

function operand(a: Arg, dot: unknown, s: Scope): unknown {
  switch (a.k) {
    case 'lit':
      return a.v;
    case 'ident':
      return command([a], [], dot, s);
    case 'sub':
      return walk(pipe(a.pipe, dot, s), a.path, s);
    case 'field': {
      const base = a.from === 'dot' ? dot : lookupVar(s, a.name!)?.get(a.name!);
      if (a.from === 'var' && !lookupVar(s, a.name!)) throw new TemplateExecError(`undefined variable: ${a.name}`);
      return walk(base, a.path, s);
    }
  }
}

function walk(v: unknown, path: string[], s: Scope): unknown {
  let cur = v;
  for (const name of path) {
    if (s.cutAtResponse && name === 'Response') throw new Cut();
    cur = field(cur, name);
  }
  return cur;
}
