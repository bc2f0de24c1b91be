import { watch, type FSWatcher } from 'chokidar';

export interface WatchOptions {
  /** Coalesces the bursts of events an editor's save produces. */
  debounceMs?: number;
  onChange(): Promise<void>;
}

/**
 * Watches one file and calls onChange after it settles. Reloads never overlap: a change during a
 * reload schedules exactly one more.
 */
export function watchFile(file: string, opts: WatchOptions): { close(): Promise<void> } {
  const debounceMs = opts.debounceMs ?? 100;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  let closed = false;

  const run = (): void => {
    if (closed) return;
    if (running) {
      again = true;
      return;
    }
    running = opts.onChange().finally(() => {
      running = undefined;
      if (again) {
        again = false;
        run();
      }
    });
  };
  const schedule = (): void => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(run, debounceMs);
  };
  // Editors often save by writing a new file and renaming it over the old one; chokidar's atomic
  // handling reports that as a change of the same path.
  const watcher: FSWatcher = watch(file, { ignoreInitial: true, atomic: true });
  watcher.on('change', schedule).on('add', schedule);
  return {
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      await watcher.close();
      await running;
    },
  };
}
