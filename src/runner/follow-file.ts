import { mkdirSync, watch, type FSWatcher } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { lineCutter } from './log-file.js';

export interface Follower {
  close(): void;
}

/**
 * Calls `onLine` for every complete line of a file from byte `from` on: first what is already there,
 * then each line as it is appended. The directory is watched (inotify on Linux), not the file, so a
 * file that does not exist yet, or is replaced by log rotation, is picked up when it appears; a file
 * that shrinks is read again from its start. Reads are serialised; a change during a read triggers
 * one more.
 */
export function followFile(path: string, from: number, onLine: (line: string, end: number) => void): Follower {
  const name = basename(path);
  let offset = from;
  let closed = false;
  let reading = false;
  let again = false;
  const cut = lineCutter((line, end) => {
    if (!closed) onLine(line, end);
  });

  const readNew = async (): Promise<void> => {
    let fh;
    try {
      fh = await open(path, 'r');
      const { size } = await fh.stat();
      if (size < offset) {
        offset = 0;
        cut.reset();
      }
      while (offset < size && !closed) {
        const buf = Buffer.alloc(Math.min(size - offset, 64 * 1024));
        const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
        if (bytesRead === 0) break;
        cut.push(buf.subarray(0, bytesRead), offset);
        offset += bytesRead;
      }
    } catch {
      // Not there yet (or removed): its creation is another directory event.
    } finally {
      await fh?.close().catch(() => {});
    }
  };

  const pump = (): void => {
    if (closed) return;
    if (reading) {
      again = true;
      return;
    }
    reading = true;
    void (async () => {
      do {
        again = false;
        await readNew();
      } while (again && !closed);
      reading = false;
    })();
  };

  let watcher: FSWatcher | undefined;
  try {
    mkdirSync(dirname(path), { recursive: true });
    watcher = watch(dirname(path), { persistent: false }, (_event, file) => {
      if (file === null || file === name) pump();
    });
    watcher.on('error', () => watcher?.close());
  } catch {
    // Without a watch the caller still gets what is there now.
  }
  pump();
  return {
    close() {
      closed = true;
      watcher?.close();
    },
  };
}
