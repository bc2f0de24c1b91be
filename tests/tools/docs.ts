import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rolesMarkdown } from './roles-reference.js';
import { ConfigSchema } from '../../src/config/schema.js';
import { renderCliReference } from './cli-reference.js';
import { renderExampleYaml } from './config-example.js';
import { renderMarkdown } from './config-markdown.js';
import { undocumentedKeys } from './config-reference.js';

// Run from dist/tests/tools or tests/tools: the repository root is the nearest one with package.json.
const here = fileURLToPath(new URL('.', import.meta.url));
const root = resolve(here, here.includes('/dist/') ? '../../..' : '../..');

/** Files generated from the code (wholly, or their generated parts), by path relative to the repository root. */
export function generatedDocs(): { path: string; text: string }[] {
  return [
    { path: 'docs/configuration.md', text: renderMarkdown(ConfigSchema) },
    { path: 'config/corral.example.yaml', text: renderExampleYaml(ConfigSchema) },
    { path: 'docs/roles.md', text: rolesMarkdown() },
    { path: 'docs/cli.md', text: renderCliReference(readFileSync(resolve(root, 'docs/cli.md'), 'utf8')) },
  ];
}

/** `npm run docs`: rewrites every generated file. */
async function main(): Promise<number> {
  const missing = undocumentedKeys(ConfigSchema);
  if (missing.length) {
    process.stderr.write(`config keys without a description in src/config/schema.ts: ${missing.join(', ')}\n`);
    return 1;
  }
  for (const doc of generatedDocs()) {
    await writeFile(resolve(root, doc.path), doc.text);
    process.stdout.write(`wrote ${doc.path}\n`);
  }
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then((code) => process.exit(code));
}
