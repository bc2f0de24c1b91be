import { Kind, OptionalKind, type TSchema } from '@sinclair/typebox';
import { stringify } from 'yaml';

/**
 * Renders the configuration reference (docs/configuration.md) and the fully commented example
 * (config/corral.example.yaml) from the TypeBox schema, so the documentation cannot drift from
 * what the loader accepts. Only the schema's structure is read: objects, records, arrays, unions,
 * literals and optional keys at any depth, so keys added later are documented without changes here.
 */

type Schema = TSchema & Record<string, unknown>;

/** One key as it appears in the YAML, with the keys nested under it. */
export interface KeyDoc {
  /** YAML path; a record's entries appear as `<name>`, an array's items as `[]`. */
  path: string[];
  schema: Schema;
  optional: boolean;
  /** For objects, for records of objects (the entry's keys) and for arrays of objects (the item's keys). */
  children: KeyDoc[];
  /** How the children hang under this key. */
  nesting: 'object' | 'record' | 'array' | undefined;
}

const kind = (s: Schema): string => String(s[Kind]);
const propertiesOf = (s: Schema): Record<string, Schema> => (s.properties ?? {}) as Record<string, Schema>;
const recordValue = (s: Schema): Schema => Object.values(s.patternProperties as Record<string, Schema>)[0]!;

function childKeys(s: Schema, path: string[]): Pick<KeyDoc, 'children' | 'nesting'> {
  if (kind(s) === 'Object') return { children: keysOf(s, path), nesting: 'object' };
  if (kind(s) === 'Record' && kind(recordValue(s)) === 'Object')
    return { children: keysOf(recordValue(s), [...path, '<name>']), nesting: 'record' };
  if (kind(s) === 'Array' && kind(s.items as Schema) === 'Object')
    return { children: keysOf(s.items as Schema, [...path, '[]']), nesting: 'array' };
  return { children: [], nesting: undefined };
}

/** Every key of an object schema, in declaration order, with its nested keys. */
export function keysOf(object: Schema, path: string[] = []): KeyDoc[] {
  const required = new Set((object.required as string[] | undefined) ?? []);
  return Object.entries(propertiesOf(object)).map(([name, schema]) => {
    const keyPath = [...path, name];
    return {
      path: keyPath,
      schema,
      optional: schema[OptionalKind] === 'Optional' || !required.has(name),
      ...childKeys(schema, keyPath),
    };
  });
}

/** A record's entry name in examples: the first key of its example, else a placeholder. */
export function entryName(record: Schema): string {
  const example = (record.examples as unknown[] | undefined)?.[0];
  const first = example && typeof example === 'object' ? Object.keys(example)[0] : undefined;
  return first ?? '<name>';
}

export function flatten(keys: KeyDoc[]): KeyDoc[] {
  return keys.flatMap((k) => [k, ...flatten(k.children)]);
}

/** Keys without a `description`: the reference would be silent about them. */
export function undocumentedKeys(root: Schema): string[] {
  return flatten(keysOf(root))
    .filter((k) => typeof k.schema.description !== 'string' || k.schema.description.trim() === '')
    .map((k) => k.path.join('.'));
}

/** A value as it is written in YAML on one line. */
export function inlineYaml(value: unknown): string {
  return stringify(value, { collectionStyle: 'flow', flowCollectionPadding: false, lineWidth: 0 }).trimEnd();
}

export function typeName(s: Schema): string {
  if (typeof s.title === 'string') return s.title;
  switch (kind(s)) {
    case 'Literal':
      return inlineYaml(s.const);
    case 'Union':
      return (s.anyOf as Schema[]).map(typeName).join(' | ');
    case 'Array':
      return `list of ${typeName(s.items as Schema)}`;
    case 'Record':
      return `map of ${typeName(recordValue(s))}`;
    case 'Object':
      return 'object';
    case 'Unknown':
    case 'Any':
      return 'any';
    default:
      return String(s.type ?? kind(s)).toLowerCase();
  }
}

function range(s: Schema): string | undefined {
  const min = s.minimum as number | undefined;
  const max = s.maximum as number | undefined;
  if (min !== undefined && max !== undefined) return `${min} to ${max}`;
  if (min !== undefined) return `≥ ${min}`;
  if (max !== undefined) return `≤ ${max}`;
  if (typeof s.minLength === 'number' && s.minLength > 0) return 'not empty';
  if (Array.isArray(s.enum)) return s.enum.map((v) => `\`${inlineYaml(v)}\``).join(', ');
  return undefined;
}

/** What values are accepted, beyond the type: literal choices and numeric ranges. */
export function allowedValues(s: Schema): string | undefined {
  if (kind(s) === 'Union') {
    const members = s.anyOf as Schema[];
    if (members.every((m) => kind(m) === 'Literal' || kind(m) === 'Boolean')) {
      return members
        .flatMap((m) => (kind(m) === 'Literal' ? [inlineYaml(m.const)] : ['true', 'false']))
        .map((v) => `\`${v}\``)
        .join(', ');
    }
    const parts = members.map(range).filter((p): p is string => p !== undefined);
    return parts.length ? parts.join('; ') : undefined;
  }
  if (kind(s) === 'Array') return range(s.items as Schema);
  return range(s);
}

/** The value shown for a key in examples: its example, else its default. */
export function exampleValue(s: Schema): unknown {
  const examples = s.examples as unknown[] | undefined;
  return examples?.length ? examples[0] : s.default;
}
