import { BadRequest } from '../errors.js';

/** The subset of Ollama's Modelfile that Corral understands. */
export interface ModelfileSpec {
  from?: string | undefined;
  system?: string | undefined;
  template?: string | undefined;
  parameters: Record<string, unknown>;
}

/** Parameters Ollama allows several times (they accumulate into an array). */
const REPEATABLE = new Set(['stop']);

/** `PARAMETER temperature 0.7` → 0.7; quoted strings lose their quotes; true/false become booleans. */
export function parameterValue(raw: string): unknown {
  const v = raw.trim();
  if (/^".*"$/s.test(v)) {
    try {
      return JSON.parse(v) as unknown;
    } catch {
      return v.slice(1, -1);
    }
  }
  if (/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(v)) return Number(v);
  if (v === 'true' || v === 'false') return v === 'true';
  return v;
}

export function addParameter(params: Record<string, unknown>, key: string, value: unknown): void {
  if (REPEATABLE.has(key)) {
    const prev = params[key];
    params[key] = [
      ...(Array.isArray(prev) ? prev : prev === undefined ? [] : [prev]),
      ...(Array.isArray(value) ? value : [value]),
    ];
  } else {
    params[key] = value;
  }
}

/** Parses FROM / PARAMETER / SYSTEM / TEMPLATE (with """multi-line""" values); anything else is refused by name. */
export function parseModelfile(text: string): ModelfileSpec {
  const spec: ModelfileSpec = { parameters: {} };
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\w+)\s+([\s\S]*)$/.exec(line);
    if (!m)
      throw new BadRequest(`invalid value for "modelfile": line ${i + 1}: expected an instruction and an argument`);
    const instruction = m[1]!.toUpperCase();
    let arg = m[2]!;
    if (arg.startsWith('"""')) {
      arg = arg.slice(3);
      const parts: string[] = [];
      while (!arg.includes('"""')) {
        parts.push(arg);
        if (++i >= lines.length)
          throw new BadRequest(`invalid value for "modelfile": unterminated """ for ${instruction}`);
        arg = lines[i]!;
      }
      parts.push(arg.slice(0, arg.indexOf('"""')));
      arg = parts.join('\n');
    } else {
      arg = arg.trim();
      if (/^".*"$/s.test(arg) && instruction !== 'PARAMETER') arg = String(parameterValue(arg));
    }
    switch (instruction) {
      case 'FROM':
        spec.from = arg;
        break;
      case 'SYSTEM':
        spec.system = arg;
        break;
      case 'TEMPLATE':
        spec.template = arg;
        break;
      case 'PARAMETER': {
        const pm = /^(\w+)\s+([\s\S]+)$/.exec(arg);
        if (!pm)
          throw new BadRequest(`invalid value for "modelfile": line ${i + 1}: PARAMETER needs a name and a value`);
        addParameter(spec.parameters, pm[1]!, parameterValue(pm[2]!));
        break;
      }
      default:
        throw new BadRequest(
          `invalid value for "modelfile": line ${i + 1}: ${instruction} is not supported by Corral (supported: FROM, PARAMETER, SYSTEM, TEMPLATE)`,
        );
    }
  }
  return spec;
}

/**
 * Ollama's templates are Go text/template (`{{ .Prompt }}`, `{{ range .Messages }}`); llama-server's are
 * Jinja, which always has statements (`{% for message in messages %}`). A template with actions but no
 * statement is taken for Go.
 */
export function isGoTemplate(template: string): boolean {
  return /\{\{/.test(template) && !/\{%/.test(template);
}
