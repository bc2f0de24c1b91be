import { COMMANDS, type CommandSpec, ENV_VARS, type OptionSpec } from './spec.js';

function flag(name: string, o: OptionSpec): string {
  const short = o.short ? `-${o.short}, ` : '    ';
  return `${short}--${name}${o.value ? ` ${o.value}` : ''}`;
}

function table(rows: [string, string][], indent = '  '): string[] {
  const width = Math.max(...rows.map(([a]) => a.length)) + 2;
  return rows.map(([a, b]) => `${indent}${a.padEnd(width)}${b}`);
}

export function commandHelp(spec: CommandSpec): string {
  const lines = [`usage: ${spec.usage}`, '', spec.summary, ...(spec.details ?? []).map((d) => d)];
  lines.push('', 'options:', ...table(Object.entries(spec.options).map(([n, o]) => [flag(n, o), o.description])));
  if (spec.env.length > 0) {
    lines.push('', 'environment:', ...table(spec.env.map((e) => [e, ENV_VARS[e] ?? ''])));
  }
  return `${lines.join('\n')}\n`;
}

export function mainHelp(): string {
  const lines = [
    'usage: corral [command] [options]',
    '',
    'Corral: an Ollama-compatible gateway in front of llama.cpp llama-server processes.',
    '',
    'commands:',
    ...table([
      ...COMMANDS.map((c): [string, string] => [c.name, c.summary]),
      ['help [command]', "this help, or a command's own (also: corral COMMAND --help)"],
    ]),
    '',
    'common options:',
    ...table([
      ['-c, --config FILE', 'config file (every command but provision)'],
      ['-h, --help', 'help'],
      ['-v, --version', "Corral's version"],
    ]),
    '',
    'environment:',
    ...table(Object.entries(ENV_VARS)),
    '',
    'Run `corral COMMAND --help` for every option of a command.',
  ];
  return `${lines.join('\n')}\n`;
}
