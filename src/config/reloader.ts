import { EventEmitter } from 'node:events';
import { diffConfig } from './diff.js';
import { type LoadedConfig, loadConfig } from './load.js';
import { watchFile } from './watch.js';

/** The outcome of the last config reload, for logs and the admin UI. */
export interface ReloadState {
  at: Date;
  ok: boolean;
  /** file:line problems when the new config was rejected (the last good one keeps serving). */
  problems: string[];
  changes: string[];
}

export interface ReloaderEvents {
  reload: [state: ReloadState];
}

export interface ReloaderOptions {
  env: NodeJS.ProcessEnv;
  /**
   * Puts a validated config into effect (current() already returns it) and returns what that changed
   * beyond the file's own diff (the models that restart). Throwing rejects the reload; the previous
   * config is current again.
   */
  apply(next: LoadedConfig, previous: LoadedConfig): Promise<string[]>;
  /** Reload when the file changes (default true when there is a file). */
  watch?: boolean | undefined;
}

/**
 * Hot reload: re-reads the config file, validates it, and applies the difference; a config that does
 * not validate is reported and the last good one keeps serving. Reloads never overlap (watch.ts).
 */
export class ConfigReloader extends EventEmitter<ReloaderEvents> {
  private last: ReloadState | undefined;
  private readonly watcher: { close(): Promise<void> } | undefined;

  constructor(
    private loaded: LoadedConfig,
    private readonly opts: ReloaderOptions,
  ) {
    super();
    const file = loaded.file;
    this.watcher =
      file && (opts.watch ?? true) ? watchFile(file, { onChange: async () => void (await this.reload()) }) : undefined;
  }

  current(): LoadedConfig {
    return this.loaded;
  }

  state(): ReloadState | undefined {
    return this.last;
  }

  async reload(): Promise<ReloadState> {
    const file = this.loaded.file;
    if (!file) return this.report({ at: new Date(), ok: false, problems: ['no config file to reload'], changes: [] });
    try {
      const next = await loadConfig(file, { env: this.opts.env });
      const changes = diffConfig(this.loaded.config, next.config);
      const previous = this.loaded;
      this.loaded = next;
      try {
        changes.push(...(await this.opts.apply(next, previous)));
      } catch (err) {
        this.loaded = previous;
        throw err;
      }
      return this.report({ at: new Date(), ok: true, problems: [], changes });
    } catch (err) {
      const problems = (err as { problems?: string[] }).problems ?? [(err as Error).message];
      return this.report({ at: new Date(), ok: false, problems, changes: [] });
    }
  }

  async close(): Promise<void> {
    await this.watcher?.close();
  }

  private report(state: ReloadState): ReloadState {
    this.last = state;
    this.emit('reload', state);
    return state;
  }
}
