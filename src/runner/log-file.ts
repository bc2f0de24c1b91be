import { closeSync, fstatSync, mkdirSync, openSync, renameSync, statSync, writeSync } from 'node:fs';
import { copyFile, open, stat, truncate } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** Where a model's llama-server writes: one file per model, named after it with unsafe characters replaced. */
export function modelLogFile(logsDir: string, model: string): string {
  return join(logsDir, `${model.replace(/[^a-zA-Z0-9._-]+/g, '_')}.log`);
}

/**
 * A child's log file. llama-server writes to it directly (it is the child's stdout and stderr), so
 * the several lines it prints per request cost the gateway nothing: no pipe to read, no wakeup, no
 * copy. The gateway reads the file only when somebody asks: the ready line while starting, the last
 * lines when a child fails, the admin UI's live tail.
 */
export interface ChildLog {
  /** Append-only descriptor for the child's stdout and stderr; close it once the child has it. */
  fd: number;
  /** Byte offset where this run's output begins (after the start line). */
  start: number;
}

/** A file's size; 0 when it does not exist (yet). */
async function sizeOf(path: string): Promise<number> {
  return (await stat(path).catch(() => undefined))?.size ?? 0;
}

/** Where a log file's previous content goes when it reaches its size limit. */
export const previousLog = (path: string): string => `${path}.1`;

/**
 * Opens the file for appending (creating its directory) and writes the run's start line. A file
 * already over `maxBytes` (0: no limit) is moved aside first, so every run starts under the limit.
 */
export function openChildLog(path: string, startLine: string, maxBytes = 0): ChildLog {
  mkdirSync(dirname(path), { recursive: true });
  if (maxBytes > 0 && (statSync(path, { throwIfNoEntry: false })?.size ?? 0) > maxBytes)
    renameSync(path, previousLog(path));
  const fd = openSync(path, 'a');
  try {
    writeSync(fd, `${startLine}\n`);
    return { fd, start: fstatSync(fd).size };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/**
 * Keeps a file that a running child appends to under `maxBytes`: its content is copied to the
 * previous-log file and the file truncated. The child's descriptor is in append mode, so its next
 * write lands at the new start (what it writes between the copy and the truncation is lost, as with
 * logrotate's copytruncate; renaming cannot work, the child would go on writing to the renamed file).
 * Returns whether it trimmed.
 */
export async function trimLog(path: string, maxBytes: number): Promise<boolean> {
  if (maxBytes <= 0 || (await sizeOf(path)) <= maxBytes) return false;
  await copyFile(path, previousLog(path));
  await truncate(path, 0);
  return true;
}

/** Lines are split on the newline byte, which never occurs inside a multi-byte UTF-8 character. */
const NL = 0x0a;

function text(bytes: Buffer): string {
  const s = bytes.toString('utf8');
  return s.endsWith('\r') ? s.slice(0, -1) : s;
}

/**
 * Splits bytes read at increasing offsets into lines, each with the offset just past its newline
 * (a position to resume from). A line without its newline yet is held until it is complete.
 */
export function lineCutter(onLine: (line: string, end: number) => void): {
  push(chunk: Buffer, at: number): void;
  reset(): void;
} {
  let partial: Buffer | undefined;
  return {
    push(chunk, at) {
      let bytes = chunk;
      let base = at;
      if (partial) {
        base -= partial.length;
        bytes = Buffer.concat([partial, chunk]);
        partial = undefined;
      }
      let from = 0;
      for (let nl = bytes.indexOf(NL); nl !== -1; nl = bytes.indexOf(NL, from)) {
        onLine(text(bytes.subarray(from, nl)), base + nl + 1);
        from = nl + 1;
      }
      if (from < bytes.length) partial = Buffer.from(bytes.subarray(from));
    },
    reset() {
      partial = undefined;
    },
  };
}

/**
 * The complete lines among the file's last `maxBytes` at or after `from`, each with its start offset.
 * A window that begins after `from` begins one byte early: if that byte is a newline the window
 * starts on a line, otherwise its first piece is the end of a line that was not read whole.
 */
async function linesNearEnd(path: string, from: number, maxBytes: number): Promise<{ line: string; start: number }[]> {
  let fh;
  let bytes: Buffer;
  let at: number;
  try {
    fh = await open(path, 'r');
    const { size } = await fh.stat();
    // A file shorter than `from` was trimmed since: all of it is newer.
    if (from > size) from = 0;
    at = Math.min(size, Math.max(from, size - maxBytes - 1));
    const buf = Buffer.alloc(size - at);
    bytes = buf.subarray(0, (await fh.read(buf, 0, buf.length, at)).bytesRead);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  } finally {
    await fh?.close();
  }
  if (at > from) {
    const nl = bytes.indexOf(NL);
    if (nl === -1) return [];
    bytes = bytes.subarray(nl + 1);
    at += nl + 1;
  }
  const out: { line: string; start: number }[] = [];
  let start = at;
  lineCutter((line, next) => {
    out.push({ line, start });
    start = next;
  }).push(bytes, at);
  return out;
}

/** The last `n` complete lines written at or after byte `from` (a run's start), for explaining a failure. */
export async function lastLines(path: string, from: number, n: number, maxBytes = 64 * 1024): Promise<string[]> {
  return (await linesNearEnd(path, from, maxBytes)).slice(-n).map((l) => l.line);
}

/**
 * Where a live tail of the file starts: right after `seen` (the offset a reconnecting reader got to)
 * when that is at most `maxBytes` behind the end, else where its last `n` lines begin.
 */
export async function resumeOffset(
  path: string,
  seen: number | undefined,
  n: number,
  maxBytes = 256 * 1024,
): Promise<number> {
  const size = await sizeOf(path);
  if (seen !== undefined && Number.isSafeInteger(seen) && seen >= 0 && seen <= size && size - seen <= maxBytes)
    return seen;
  return tailOffset(path, n);
}

/** The offset where the file's last `n` lines begin (0 for a missing file), for a live tail's first screen. */
export async function tailOffset(path: string, n: number, maxBytes = 64 * 1024): Promise<number> {
  const lines = await linesNearEnd(path, 0, maxBytes);
  return lines.at(-n)?.start ?? lines[0]?.start ?? 0;
}
