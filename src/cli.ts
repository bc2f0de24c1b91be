// Started through bin/corral, which sets Node's runtime flags (docs/performance.md, "Runtime flags").
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { commandHelp, mainHelp } from './cli/help.js';
import { type CommandSpec, findCommand, parseOptions } from './cli/spec.js';

const DEFAULT_CONFIG = 'config/corral.yaml';

type Values = Record<string, string | boolean | undefined>;

const configFile = (v: Values): string =>
  (v.config as string | undefined) ?? process.env.CORRAL_CONFIG ?? DEFAULT_CONFIG;

/** Loaded per command, so `corral --help` or `corral token list` does not load the gateway's modules. */
const run: Record<string, (values: Values, args: string[]) => Promise<number>> = {
  async serve(v) {
    const { serve, parsePort } = await import('./commands/serve.js');
    return serve({
      config: configFile(v),
      host: v.host as string | undefined,
      port: v.port === undefined ? undefined : parsePort(String(v.port), '--port'),
      logFormat: v['log-format'] as string | undefined,
      logLevel: v['log-level'] as string | undefined,
    });
  },
  async worker(v) {
    const { workerCommand } = await import('./commands/worker.js');
    return workerCommand({ config: configFile(v), logLevel: v['log-level'] as string | undefined });
  },
  async doctor(v) {
    const { doctor } = await import('./commands/doctor.js');
    return doctor(configFile(v));
  },
  async provision(v) {
    const { provisionCommand } = await import('./commands/provision.js');
    return provisionCommand({
      backend: v.backend as string | undefined,
      fromSource: v['from-source'] === true,
      prebuilt: v.prebuilt === true,
      releaseUrl: v['release-url'] as string | undefined,
      force: v.force === true,
    });
  },
  async user(_v, args) {
    const { userCommand } = await import('./auth/cli.js');
    return userCommand(args);
  },
  async token(_v, args) {
    const { tokenCommand } = await import('./auth/cli.js');
    return tokenCommand(args);
  },
  async store(_v, args) {
    const { storeCommand } = await import('./commands/store.js');
    return storeCommand(args);
  },
  async report(_v, args) {
    const { reportCommand } = await import('./commands/report.js');
    return reportCommand(args);
  },
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** Parses a command's arguments strictly: an unknown option or a stray argument is an error. */
function parse(spec: CommandSpec, args: string[]) {
  return parseArgs({
    args,
    options: parseOptions(spec),
    allowPositionals: spec.positionals === true,
    strict: true,
  });
}

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === '-h' || first === '--help') {
    process.stdout.write(mainHelp());
    return 0;
  }
  if (first === '-v' || first === '--version') {
    process.stdout.write(`corral ${version()}\n`);
    return 0;
  }
  if (first === 'help') {
    const spec = rest[0] ? findCommand(rest[0]) : undefined;
    if (rest[0] && !spec) return usageError(`unknown command "${rest[0]}"`);
    process.stdout.write(spec ? commandHelp(spec) : mainHelp());
    return 0;
  }
  // `corral --port 8080` is `corral serve --port 8080`.
  const [name, args] = first === undefined || first.startsWith('-') ? ['serve', argv] : [first, rest];
  const spec = findCommand(name);
  if (!spec) return usageError(`unknown command "${name}"`);
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(spec, args);
  } catch (err) {
    return usageError((err as Error).message, spec);
  }
  if (parsed.values.help) {
    process.stdout.write(commandHelp(spec));
    return 0;
  }
  try {
    return await run[spec.name]!(parsed.values as Values, args);
  } catch (err) {
    const problems = (err as { problems?: string[] }).problems;
    const detail = problems ? `\n${problems.map((p) => `  ${p}`).join('\n')}` : '';
    process.stderr.write(`corral ${spec.name}: ${err instanceof Error ? err.message : String(err)}${detail}\n`);
    return 1;
  }
}

function usageError(message: string, spec?: CommandSpec): number {
  const hint = spec ? `corral ${spec.name} --help` : 'corral --help';
  process.stderr.write(`corral: ${message}\nRun \`${hint}\` for the commands and options.\n`);
  return 2;
}

main(process.argv.slice(2)).then(
  // serve's promise never settles: it exits from its signal handlers.
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`corral: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
