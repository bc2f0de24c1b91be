import type { AlertEngine } from '../alerts/engine.js';
import type { ApiDeps } from '../api/deps.js';
import type { BackendStatus } from '../provision/backend-status.js';
import type { ResolvedBinary } from '../provision/llama-binary.js';
import type { Accounts } from '../auth/accounts.js';
import type { Store } from '../store/database.js';
import type { RequestRecord } from '../metrics/request-hooks.js';
import type { FleetNode } from '../fleet/registry.js';

/** The fleet as this node sees it (its membership), for the Nodes page and model pages. */
export interface FleetView {
  selfId: string;
  nodes(): FleetNode[];
  health(): { ok: boolean; detail: string };
}

/** Result of a config reload as the admin UI shows it. */
export interface ReloadResult {
  at: Date;
  ok: boolean;
  /** "applied", "valid but not applied", … */
  summary: string;
  /** file:line problems when rejected. */
  problems: string[];
}

/** Config file access and reload; the config engineer's watcher provides the real one. */
export interface ConfigControl {
  file(): string | undefined;
  source(): Promise<string>;
  lastReload(): ReloadResult | undefined;
  reload(): Promise<ReloadResult>;
  /** Settles with the next reload's result (the watcher's, after a save), or undefined after `timeoutMs`. */
  nextReload?(timeoutMs: number): Promise<ReloadResult | undefined>;
}

/** What the admin UI needs; handed in by app.ts. Optional parts render an "not available" notice. */
export interface AdminDeps extends ApiDeps {
  binary?: ResolvedBinary | undefined;
  /** What that binary computes on (CPU, CUDA …), for the System page. */
  backend?: (() => BackendStatus) | undefined;
  configControl?: ConfigControl | undefined;
  /** Directory of per-model llama-server logs (absolute, or relative to the process cwd). */
  logsDir(): string;
  /** The data directory, resolved like logsDir; defaults to the config's data_dir. */
  dataDir?: (() => string) | undefined;
  /** Tokens and the request log. */
  store: Store;
  /** Users (every change audited). */
  accounts: Accounts;
  /** Calls `listener` after each finished request (after its request log row is written); returns an unsubscribe. */
  onRequestFinished?: ((listener: (record: RequestRecord) => void) => () => void) | undefined;
  /** Alert rules, their firing alerts and history. */
  alerts?: AlertEngine | undefined;
  /** This node's view of its fleet; undefined when it runs on its own. */
  fleetView?: FleetView | undefined;
}
