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
      flowCollectionPadding: /[[{] [^\s\]}]/.test(text),
    });
    // Throws ConfigError with file:line problems: nothing invalid reaches the file.
    parseConfig(next, file, env);
    await writeFileAtomic(file, next);
    return { text: next, version: fileVersion(next) };
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
