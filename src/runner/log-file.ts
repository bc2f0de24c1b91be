import { closeSync, fstatSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
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

/** Opens the file for appending (creating its directory) and writes the run's start line. */
export function openChildLog(path: string, startLine: string): ChildLog {
  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, 'a');
  try {
    writeSync(fd, `${startLine}\n`);
    return { fd, start: fstatSync(fd).size };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
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
export function lineCutter(onLine: (line: string, end: number) => void): { push(chunk: Buffer, at: number): void; reset(): void } {
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

/** The offset where the file's last `n` lines begin (0 for a missing file), for a live tail's first screen. */
export async function tailOffset(path: string, n: number, maxBytes = 64 * 1024): Promise<number> {
  const lines = await linesNearEnd(path, 0, maxBytes);
  return lines.at(-n)?.start ?? lines[0]?.start ?? 0;
}
