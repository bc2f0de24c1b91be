import type { BlobProgress } from './blob-download.js';

interface Entry {
  done: Promise<void>;
  controller: AbortController;
  listeners: Set<(p: BlobProgress) => void>;
  last: BlobProgress | undefined;
}

/**
 * One download per blob file however many pulls want it: identical layers of different models, or
 * two clients pulling the same model, share the transfer and see the same progress. The transfer
 * stops only when every pull that wanted it has gone.
 */
export class SharedBlobs {
  private readonly running = new Map<string, Entry>();

  /** Joins (or starts) the download of `key`; resolves when it is complete, rejects with its error or when `signal` aborts. */
  join(
    key: string,
    start: (progress: (p: BlobProgress) => void, signal: AbortSignal) => Promise<void>,
    listener: (p: BlobProgress) => void,
    signal: AbortSignal,
  ): Promise<void> {
    let entry = this.running.get(key);
    if (!entry) {
      const created: Entry = { controller: new AbortController(), listeners: new Set(), last: undefined, done: null! };
      created.done = start((p) => {
        created.last = p;
        for (const l of created.listeners) l(p);
      }, created.controller.signal).finally(() => {
        if (this.running.get(key) === created) this.running.delete(key);
      });
      created.done.catch(() => undefined);
      this.running.set(key, created);
      entry = created;
    }
    const e = entry;
    e.listeners.add(listener);
    if (e.last) listener(e.last);
    const leave = (): void => {
      e.listeners.delete(listener);
      if (e.listeners.size === 0) e.controller.abort();
    };
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        leave();
        reject(signal.reason ?? new Error('aborted'));
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      e.done.then(
        () => {
          signal.removeEventListener('abort', onAbort);
          e.listeners.delete(listener);
          resolve();
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort);
          e.listeners.delete(listener);
          reject(err);
        },
      );
    });
  }

  /** How many downloads are running (for tests and the admin view). */
  get size(): number {
    return this.running.size;
  }
}
