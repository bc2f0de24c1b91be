import { readFile } from 'node:fs/promises';
import { Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { defaultConfig, parseConfig } from '../../src/config/load.js';
import { ConfigSchema } from '../../src/config/schema.js';
import { renderExampleYaml } from '../tools/config-example.js';
import { renderMarkdown } from '../tools/config-markdown.js';
import { undocumentedKeys } from '../tools/config-reference.js';
import { generatedDocs } from '../tools/docs.js';

const root = new URL('../../', import.meta.url);
const read = (path: string): Promise<string> => readFile(new URL(path, root), 'utf8');

/** Every key of `given` that also appears in `defaults` holds the same value there (objects compared key by key). */
function differences(given: unknown, defaults: unknown, path = ''): string[] {
  const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isMap(given) && isMap(defaults) && Object.keys(given).length > 0)
    return Object.entries(given).flatMap(([k, v]) => differences(v, defaults[k], path ? `${path}.${k}` : k));
  return JSON.stringify(given) === JSON.stringify(defaults)
    ? []
    : [`${path}: ${JSON.stringify(given)} (default ${JSON.stringify(defaults)})`];
}

describe('the configuration reference', () => {
  it('has a description for every config key', () => {
    expect(undocumentedKeys(ConfigSchema), 'add a `description` to these keys in src/config/schema.ts').toEqual([]);
  });

  it.each(generatedDocs())('$path is what `npm run docs` generates from the schema', async ({ path, text }) => {
    const committed = await read(path).catch(() => '(missing)');
    expect(committed === text, `${path} is out of date with src/config/schema.ts: run \`npm run docs\``).toBe(true);
  });

  it('config/corral.example.yaml is a valid config that changes no default', async () => {
    const example = await read('config/corral.example.yaml');
    expect(parseConfig(example, 'corral.example.yaml', {})).toEqual(defaultConfig());
  });

  it('config/corral.yaml is valid and every value it shows is the default it claims to be', async () => {
    const text = await read('config/corral.yaml');
    expect(() => parseConfig(text, 'config/corral.yaml', {})).not.toThrow();
    expect(differences(parse(text), defaultConfig())).toEqual([]);
  });
});

describe('the reference generator', () => {
  const Item = Type.Object(
    {
      name: Type.String({ description: 'Item name.' }),
      weight: Type.Optional(Type.Number({ minimum: 0, description: 'Item weight.', examples: [2.5] })),
    },
    { additionalProperties: false },
  );
  const schema = Type.Object(
    {
      nested: Type.Object(
        {
          mode: Type.Union([Type.Literal('a'), Type.Literal('b')], { default: 'a', description: 'Mode.' }),
          flag: Type.Union([Type.Literal('auto'), Type.Boolean()], { default: 'auto', description: 'Flag.' }),
          deeper: Type.Object(
            { level: Type.Integer({ minimum: 1, maximum: 9, default: 3, description: 'Level.' }) },
            { default: {}, description: 'Deeper.' },
          ),
        },
        { default: {}, description: 'Nested.' },
      ),
      items: Type.Array(Item, { default: [], description: 'Items.', examples: [[{ name: 'x' }]] }),
      byName: Type.Record(Type.String(), Item, { default: {}, description: 'Items by name.' }),
      labels: Type.Record(Type.String(), Type.String(), { default: {}, description: 'Labels.' }),
      note: Type.Optional(Type.String({ description: 'A note.', examples: ['hello'] })),
      extra: Type.Optional(
        Type.Object(
          { size: Type.Integer({ default: 1, description: 'Size.' }) },
          { description: 'Unset unless given.' },
        ),
      ),
    },
    { additionalProperties: false },
  );

  it('documents unions, literals, records, arrays of objects, optional and nested keys', () => {
    const md = renderMarkdown(schema);
    for (const heading of [
      '`nested.mode`',
      '`nested.deeper.level`',
      '`items.[].weight`',
      '`byName.<name>.name`',
      '`labels`',
      '`note`',
      '`extra.size`',
    ])
      expect(md).toContain(heading);
    expect(md).toContain('**Allowed:** `a`, `b`');
    expect(md).toContain('**Allowed:** `auto`, `true`, `false`');
    expect(md).toContain('**Allowed:** 1 to 9');
    expect(md).toContain('**Type:** list of object');
  });

  it('writes an example that parses back to the defaults', () => {
    const yaml = renderExampleYaml(schema);
    const parsed = parse(yaml) as unknown;
    expect(Value.Check(schema, parsed)).toBe(true);
    expect(parsed).toEqual(Value.Default(schema, {}));
    expect(yaml).toContain('# note: hello');
    expect(yaml).toContain('# extra:\n#   # Size.\n#   size: 1');
    expect(yaml).toMatch(/# items:\n# {3}-\n# {5}# Item name\.\n# {5}name: <string>/);
  });

  it('finds keys without a description at any depth', () => {
    const Bare = Type.Object({ inner: Type.String() });
    const missing = Type.Object({
      list: Type.Array(Bare, { description: 'List.' }),
      map: Type.Record(Type.String(), Bare, { description: 'Map.' }),
      top: Type.Boolean(),
    });
    expect(undocumentedKeys(missing)).toEqual(['list.[].inner', 'map.<name>.inner', 'top']);
  });
});
