import { createHash, randomBytes } from 'node:crypto';
import { open, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { type Document, isSeq, parseDocument } from 'yaml';
import { Conflict } from '../errors.js';
import { parseConfig } from './load.js';

/** Identifies one content of the config file: a form carries it, a save compares it. */
export const fileVersion = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 32);

/** The file changed since the form that wants to save was rendered. */
export class ConfigChanged extends Conflict {}

/**
 * Replaces `file` with `text` so that a reader (the watcher, an editor, a crash) sees either the old
 * or the new file, never a half-written one: a temporary file beside it, fsync, rename, fsync of the
 * directory. The file's permission bits are kept.
 */
export async function writeFileAtomic(file: string, text: string): Promise<void> {
  const dir = dirname(file);
  const mode = (await stat(file).catch(() => undefined))?.mode ?? 0o644;
  const tmp = join(dir, `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(tmp, 'wx', mode & 0o777);
  try {
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } catch (err) {
    await handle.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  try {
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/** Sequences written as `key:\n- item` (not indented under their key) stay that way. */
const seqIndented = (text: string): boolean => !/^([ \t]*)[^\s#-][^\n]*:[ \t]*\n\1- /m.test(text);

/**
 * Serialises edits of one config file: each reads it, checks it is still at `expectedVersion`,
 * changes its YAML document (comments, key order and styles survive), validates the result as a
 * config and writes it atomically. Returns the new text and version.
 */
export function createConfigEditor(file: string, env: NodeJS.ProcessEnv = process.env) {
  let queue: Promise<unknown> = Promise.resolve();
  const edit = async (expectedVersion: string, change: (doc: Document) => void) => {
    const text = await readFile(file, 'utf8');
    if (fileVersion(text) !== expectedVersion) {
      throw new ConfigChanged(
        `${file} changed since this form was loaded (edited by hand or by someone else); nothing was saved. ` +
          'Reload the page to see the current settings.',
      );
    }
    const doc = parseDocument(text, { keepSourceTokens: false });
    if (doc.errors.length) throw new ConfigChanged(`${file} is not valid YAML right now: ${doc.errors[0]!.message}`);
    change(doc);
    const next = doc.toString({
      lineWidth: 0,
      indentSeq: seqIndented(text),
      flowCollectionPadding: /[[{] [^\s\]}]/.test(text.replace(/(^|\s)#.*$/gm, '')),
    });
    const merged = keepLayout(text, next);
    // Throws ConfigError with file:line problems: nothing invalid reaches the file.
    parseConfig(merged, file, env);
    await writeFileAtomic(file, merged);
    return { text: merged, version: fileVersion(merged) };
  };
  return {
    file,
    edit(expectedVersion: string, change: (doc: Document) => void): Promise<{ text: string; version: string }> {
      const run = queue.then(() => edit(expectedVersion, change));
      queue = run.catch(() => undefined);
      return run;
    },
  };
}

export type ConfigEditor = ReturnType<typeof createConfigEditor>;

/** Sets `path` to `value`, or deletes it for undefined; lists keep the flow or block style they had. */
export function setOrDelete(doc: Document, path: (string | number)[], value: unknown): void {
  if (value === undefined) {
    if (doc.hasIn(path)) doc.deleteIn(path);
    return;
  }
  if (Array.isArray(value)) {
    const before = doc.getIn(path, true);
    const node = doc.createNode(value);
    node.flow = isSeq(before) ? (before.flow ?? false) : value.every((v) => typeof v !== 'string' || v.length < 40);
    doc.setIn(path, node);
    return;
  }
  doc.setIn(path, value);
}

/**
 * A line compared without the spacing the serialiser normalises: before a trailing comment, inside
 * brackets, and the indentation of a comment line (it may move a comment under the key before it).
 */
const shape = (line: string): string =>
  /^\s*#/.test(line)
    ? line.trim()
    : line
        .replace(/\s+#/, ' #')
        .replace(/([[{])\s+/g, '$1')
        .replace(/\s+([\]}])/g, '$1')
        .trimEnd();

/**
 * The serialiser re-renders every line; lines the edit did not change are taken back from the
 * original text (aligned by a longest common subsequence of their shapes), so untouched lines keep
 * their exact spacing, such as comments aligned in a column.
 */
export function keepLayout(original: string, next: string): string {
  const a = original.split('\n');
  const b = next.split('\n');
  const sa = a.map(shape);
  const sb = b.map(shape);
  // lcs[i][j]: length of the longest common subsequence of sa[i..] and sb[j..].
  const lcs = Array.from({ length: a.length + 1 }, () => new Uint32Array(b.length + 1));
  for (let i = a.length - 1; i >= 0; i--)
    for (let j = b.length - 1; j >= 0; j--)
      lcs[i]![j] = sa[i] === sb[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (j < b.length) {
    if (i < a.length && sa[i] === sb[j]) {
      out.push(a[i]!);
      i++;
      j++;
    } else if (i < a.length && lcs[i + 1]![j]! >= lcs[i]![j + 1]!) i++;
    else out.push(b[j++]!);
  }
  return out.join('\n');
}
