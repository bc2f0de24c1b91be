import { BadRequest } from '../../errors.js';
import { execute, TemplateExecError } from './go-template-eval.js';
import { identifiers, parseTemplate, TemplateSyntaxError, type Node } from './go-template-parse.js';

export interface TemplateVars {
  System: string;
  Prompt: string;
  Response: string;
}

/** A chat message as Ollama clients send it. */
export interface PromptMessage {
  role: string;
  content?: string | undefined;
  thinking?: string | undefined;
  images?: string[] | undefined;
  tool_calls?: { id?: string; function: { index?: number; name: string; arguments?: unknown } }[] | undefined;
  tool_name?: string | undefined;
  tool_call_id?: string | undefined;
}

function parseOrThrow(template: string, what: (why: string) => string): Node[] {
  try {
    return parseTemplate(template);
  } catch (err) {
    if (err instanceof TemplateSyntaxError) throw new BadRequest(what(err.message));
    throw err;
  }
}

function run(nodes: Node[], data: Record<string, unknown>, cut: boolean, what: (why: string) => string): string {
  try {
    return execute(nodes, data, cut);
  } catch (err) {
    if (err instanceof TemplateExecError) throw new BadRequest(what(err.message));
    throw err;
  }
}

/** The 400 message for a per-request `template` Corral cannot render. */
export const requestTemplateError = (why: string): string => `invalid value for "template": ${why}`;

/** The 400 message for a model whose own Ollama template Corral cannot render. */
export const modelTemplateError =
  (model: string) =>
  (why: string): string =>
    `model "${model}" has no chat template in its GGUF and Corral cannot render its Ollama template: ${why}`;

/**
 * Renders an Ollama (Go text/template) template's classic form into the raw prompt. Like Ollama,
 * output stops at `{{ .Response }}`: the model continues from there.
 */
export function renderGoTemplate(template: string, vars: TemplateVars): string {
  return run(parseOrThrow(template, requestTemplateError), { ...vars }, true, requestTemplateError);
}

/** Why Corral cannot render this Go template, or undefined when it can. */
export function goTemplateProblem(template: string): string | undefined {
  try {
    parseTemplate(template);
    return undefined;
  } catch (err) {
    if (err instanceof TemplateSyntaxError) return err.message;
    throw err;
  }
}

export interface PromptInput {
  messages: PromptMessage[];
  tools?: unknown[] | undefined;
  think?: boolean | string | undefined;
}

/**
 * Ollama's Template.Execute: a template that ranges over `.Messages` is run once on the whole
 * conversation (system messages joined as `.System`, consecutive messages of one role merged); an
 * older one is run per exchange with `.System`, `.Prompt` and `.Response`, the last stopping at
 * `.Response`. `what` words the 400 for a template that cannot be rendered.
 */
export function renderOllamaPrompt(template: string, input: PromptInput, what: (why: string) => string): string {
  const nodes = parseOrThrow(template, what);
  const vars = identifiers(nodes);
  const { system, messages } = collate(input.messages);
  const think = input.think !== undefined && input.think !== false && input.think !== 'false';
  const thinkVars = {
    Think: think,
    ThinkLevel: typeof input.think === 'string' && think ? input.think : '',
    IsThinkSet: input.think !== undefined,
  };
  if (vars.has('messages')) {
    const data = {
      System: system,
      Messages: messages.map(templateMessage),
      Tools: input.tools?.length ? input.tools.map(templateTool) : undefined,
      Response: '',
      ...thinkVars,
    };
    return run(nodes, data, false, what);
  }
  // Parse adds {{ .Response }} to a template that mentions neither, so earlier answers are kept.
  const full: Node[] = vars.has('response')
    ? nodes
    : [
        ...nodes,
        { t: 'out', pipe: { vars: [], assign: false, cmds: [[{ k: 'field', from: 'dot', path: ['Response'] }]] } },
      ];
  let out = '';
  let cur = { System: '', Prompt: '', Response: '' };
  const flush = (): void => {
    out += run(full, { ...cur, ...thinkVars }, false, what);
    cur = { System: '', Prompt: '', Response: '' };
  };
  for (const m of messages) {
    if (m.role === 'system') {
      if (cur.Prompt || cur.Response) flush();
      cur.System = m.content ?? '';
    } else if (m.role === 'user') {
      if (cur.Response) flush();
      cur.Prompt = m.content ?? '';
    } else if (m.role === 'assistant') cur.Response = m.content ?? '';
  }
  return out + run(full, { ...cur, ...thinkVars }, true, what);
}

/** Ollama's collate: every system message joined as `.System`; consecutive messages of one role (not tool) merged. */
function collate(msgs: PromptMessage[]): { system: string; messages: PromptMessage[] } {
  const system: string[] = [];
  const out: PromptMessage[] = [];
  for (const m of msgs) {
    if (m.role === 'system') system.push(m.content ?? '');
    const prev = out.at(-1);
    if (prev && prev.role === m.role && m.role !== 'tool') prev.content = `${prev.content ?? ''}\n\n${m.content ?? ''}`;
    else out.push({ ...m });
  }
  return { system: system.join('\n\n'), messages: out };
}

/** Arguments print as JSON with keys sorted, as Go marshals a map. */
function sortedArgs(args: unknown): unknown {
  let a = args;
  if (typeof a === 'string') {
    try {
      a = JSON.parse(a) as unknown;
    } catch {
      return a;
    }
  }
  if (!a || typeof a !== 'object' || Array.isArray(a)) return a ?? {};
  const o = a as Record<string, unknown>;
  return Object.fromEntries(
    Object.keys(o)
      .sort()
      .map((k) => [k, o[k]]),
  );
}

function templateMessage(m: PromptMessage): Record<string, unknown> {
  return {
    Role: m.role,
    Content: m.content ?? '',
    Thinking: m.thinking ?? '',
    Images: m.images ?? [],
    ToolCalls: (m.tool_calls ?? []).map((c, i) => ({
      ID: c.id ?? '',
      Function: { Index: c.function.index ?? i, Name: c.function.name, Arguments: sortedArgs(c.function.arguments) },
    })),
    ToolName: m.tool_name ?? '',
    ToolCallID: m.tool_call_id ?? '',
  };
}

/** A tool in Ollama's struct order (type, function{name, description, parameters}), so it prints as Ollama prints it. */
function templateTool(tool: unknown): Record<string, unknown> {
  const t = (tool ?? {}) as { type?: string; function?: Record<string, unknown> };
  const f = t.function ?? {};
  const p = (f.parameters ?? {}) as Record<string, unknown>;
  const parameters: Record<string, unknown> = { type: p.type ?? 'object' };
  if (p.$defs !== undefined) parameters.$defs = p.$defs;
  if (p.items !== undefined) parameters.items = p.items;
  if (Array.isArray(p.required) && p.required.length) parameters.required = p.required;
  parameters.properties = p.properties ?? {};
  return {
    type: t.type ?? 'function',
    function: { name: f.name ?? '', description: f.description ?? '', parameters },
  };
}

export function looksLikeJinja(template: string): boolean {
  return /\{%|\{\{-?\s*(messages|message|bos_token|raw)\b/.test(template);
}
