#!/usr/bin/env node
import { ensureLlamaServer, llamaServerVersion } from './provision/llama-binary.js';
import { tokenCommand, userCommand } from './auth/cli.js';

const commands: Record<string, (args: string[]) => Promise<number>> = {
  async provision() {
    const bin = await ensureLlamaServer({ progress: (line) => process.stderr.write(`[provision] ${line}\n`) });
    process.stderr.write(`[provision] llama-server: ${bin.path} (${bin.reason}), version ${await llamaServerVersion(bin.path)}\n`);
    return 0;
  },
  user: (args) => userCommand(args),
  token: (args) => tokenCommand(args),
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
    process.stderr.write(`corral ${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
