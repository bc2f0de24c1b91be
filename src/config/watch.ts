import { watch, type FSWatcher } from 'chokidar';

export interface WatchOptions {
  /** Coalesces the bursts of events an editor's save produces. */
  debounceMs?: number;
  onChange(): Promise<void>;
}

/**
 * `schedule()` calls `run` after `debounceMs` of quiet; runs never overlap: a schedule during a run
 * makes exactly one more. `close()` cancels what is pending and waits for a run in progress.
 */
export function coalesced(run: () => Promise<void>, debounceMs: number): { schedule(): void; close(): Promise<void> } {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  let closed = false;
  const start = (): void => {
    if (closed) return;
    if (running) {
      again = true;
      return;
    }
    running = run()
      .catch(() => undefined)
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          start();
        }
      });
  };
  return {
    schedule() {
      if (timer) clearTimeout(timer);
      timer = setTimeout(start, debounceMs);
    },
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}

/** Watches one file and calls onChange after it settles; reloads never overlap. */
export function watchFile(file: string, opts: WatchOptions): { close(): Promise<void> } {
  const runner = coalesced(opts.onChange, opts.debounceMs ?? 100);
  // Editors often save by writing a new file and renaming it over the old one; chokidar's atomic
  // handling reports that as a change of the same path.
  const watcher: FSWatcher = watch(file, { ignoreInitial: true, atomic: true });
  watcher.on('change', runner.schedule).on('add', runner.schedule);
  return {
    async close() {
      await watcher.close();
      await runner.close();
    },
  };
}
