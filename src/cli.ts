#!/usr/bin/env -S MALLOC_MMAP_THRESHOLD_=131072 node --max-semi-space-size=2 --v8-pool-size=1 --liftoff-only
// The line above is memory-settings.ts's NODE_FLAGS and GATEWAY_ENV (a test holds them equal).
import { parseArgs } from 'node:util';
import { ensureLlamaServer, llamaServerVersion } from './provision/llama-binary.js';
import { serve } from './commands/serve.js';
import { doctor } from './commands/doctor.js';
import { tokenCommand, userCommand } from './auth/cli.js';
import { storeCommand } from './commands/store.js';
import { reportCommand } from './commands/report.js';

const DEFAULT_CONFIG = 'config/corral.yaml';

const commands: Record<string, (args: string[]) => Promise<number>> = {
  async serve(args) {
    const { values } = parseArgs({
      args,
      options: {
        config: { type: 'string', short: 'c' },
        host: { type: 'string' },
        port: { type: 'string', short: 'p' },
      },
    });
    return serve({
      config: values.config ?? process.env.CORRAL_CONFIG ?? DEFAULT_CONFIG,
      host: values.host,
      port: values.port ? Number(values.port) : undefined,
    });
  },
  async doctor(args) {
    const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } } });
    return doctor(values.config ?? process.env.CORRAL_CONFIG ?? DEFAULT_CONFIG);
  },
  async provision() {
    const bin = await ensureLlamaServer({ progress: (line) => process.stderr.write(`[provision] ${line}\n`) });
    process.stderr.write(
      `[provision] llama-server: ${bin.path} (${bin.reason}), version ${await llamaServerVersion(bin.path)}\n`,
    );
    return 0;
  },
  user: (args) => userCommand(args),
  token: (args) => tokenCommand(args),
  store: (args) => storeCommand(args),
  report: (args) => reportCommand(args),
};

const [name = 'serve', ...rest] = process.argv.slice(2);
const command = commands[name];
if (!command) {
  process.stderr.write(`unknown command "${name}"; commands: ${Object.keys(commands).join(', ')}\n`);
  process.exit(2);
}
command(rest).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const problems = (err as { problems?: string[] }).problems;
    process.stderr.write(
      `corral ${name}: ${err instanceof Error ? err.message : String(err)}\n${problems ? `${problems.map((p) => `  ${p}`).join('\n')}\n` : ''}`,
    );
    process.exit(1);
  },
);
