import type Database from 'better-sqlite3';

/**
 * Writes that are not on the response path (request log rows, last-used stamps, usage counters)
 * are queued and committed together on the next turn of the event loop, so a response never waits
 * for SQLite and many small writes cost one transaction.
 */
export interface WriteQueue {
  enqueue(write: () => void): void;
  /** Commits everything queued so far; for shutdown and tests. */
  flush(): void;
  readonly pending: number;
}

export function createWriteQueue(db: Database.Database, onError: (err: unknown) => void = () => {}): WriteQueue {
  let queue: (() => void)[] = [];
  let scheduled: NodeJS.Immediate | undefined;
  const flush = () => {
    if (scheduled) clearImmediate(scheduled);
    scheduled = undefined;
    if (queue.length === 0 || !db.open) return;
    const batch = queue;
    queue = [];
    try {
      db.transaction(() => {
        // A failing statement is rolled back on its own by SQLite; the rest of the batch still commits.
        for (const write of batch) {
          try {
            write();
          } catch (err) {
            onError(err);
          }
        }
      })();
    } catch (err) {
      onError(err);
    }
  };
  return {
    enqueue(write) {
      queue.push(write);
      scheduled ??= setImmediate(flush);
    },
    flush,
    get pending() {
      return queue.length;
    },
  };
}
