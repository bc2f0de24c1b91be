import { StoreUnavailable } from '../errors.js';
import type { SqlDb, Statement } from './sql.js';

/**
 * Writes that are not on the response path (request log rows, last-used stamps, usage counters)
 * are queued and committed together at most `delayMs` later, so a response never waits for the
 * database and many small writes cost one transaction. Committing on every event-loop turn instead
 * gave one or two rows per transaction under load, about 4 % of the gateway's CPU at 200 concurrent
 * streams. Reads that must see these rows flush first (see the repositories).
 *
 * While the database is unreachable the queue keeps what it holds (up to `maxPending` statements,
 * the oldest dropped beyond that) and commits it once the database answers again.
 */
export interface WriteQueue {
  /** With a `key`, the write replaces one of the same key still queued (a last-used stamp: only the latest counts). */
  enqueue(write: Statement, key?: string): void;
  /** Commits everything queued so far; for readers, shutdown and tests. */
  flush(): Promise<void>;
  readonly pending: number;
}

export interface WriteQueueOptions {
  /** Failures of deferred writes (they have no request to fail) and drops while unreachable. */
  onError?: (err: unknown) => void;
  delayMs?: number;
  maxPending?: number;
}

export function createWriteQueue(db: SqlDb, options: WriteQueueOptions = {}): WriteQueue {
  const onError = options.onError ?? (() => {});
  const delayMs = options.delayMs ?? 100;
  const maxPending = options.maxPending ?? 100_000;
  let queue: Statement[] = [];
  /** Where each keyed write sits in `queue`. */
  let keyed = new Map<string, number>();
  let scheduled: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();

  const schedule = (ms: number) => {
    // Unref'd: pending writes never keep the process alive; close() commits them.
    scheduled ??= setTimeout(() => void flush().catch(() => {}), ms).unref();
  };
  /**
   * One batch in one transaction; when a statement fails on its own, each is tried alone so the rest
   * still commit. Returns what is left uncommitted because the database became unreachable.
   */
  const commit = async (batch: Statement[]): Promise<Statement[]> => {
    try {
      await db.batch(batch);
      return [];
    } catch (err) {
      if (err instanceof StoreUnavailable) return batch;
    }
    for (const [i, s] of batch.entries()) {
      try {
        await db.batch([s]);
      } catch (err) {
        if (err instanceof StoreUnavailable) return batch.slice(i);
        onError(err);
      }
    }
    return [];
  };
  const drain = async (): Promise<void> => {
    if (scheduled) clearTimeout(scheduled);
    scheduled = undefined;
    if (queue.length === 0) return;
    const batch = queue;
    queue = [];
    keyed = new Map();
    const left = await commit(batch);
    if (left.length === 0) return;
    // Unreachable: what is left goes back in front of what came since, and is tried again later.
    queue = left.concat(queue);
    keyed = new Map(); // positions moved; a later stamp is then queued beside the earlier one, which is harmless
    if (queue.length > maxPending) {
      const dropped = queue.splice(0, queue.length - maxPending).length;
      onError(new Error(`${dropped} deferred writes dropped while the database was unreachable`));
    }
    schedule(1000);
    throw new StoreUnavailable(`${queue.length} writes wait for the database to be reachable again`);
  };
  // Flushes run one after another, so batches commit in the order they were queued.
  const flush = (): Promise<void> => {
    const next = running.then(drain, drain);
    running = next.catch(() => {});
    return next;
  };
  return {
    enqueue(write, key) {
      const at = key === undefined ? undefined : keyed.get(key);
      if (at !== undefined) queue[at] = write;
      else {
        if (key !== undefined) keyed.set(key, queue.length);
        queue.push(write);
      }
      schedule(delayMs);
    },
    flush,
    get pending() {
      return queue.length;
    },
  };
}
