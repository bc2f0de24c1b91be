import type { ApiDeps } from '../api/deps.js';
import type { BackendStatus } from '../provision/backend-status.js';
import type { ResolvedBinary } from '../provision/llama-binary.js';
import type { AuthAdapter } from './auth-adapter.js';

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
}

// ---- Data interfaces filled by other modules at merge time (accounts store, request log). ----

export interface TokenRow {
  id: string | number;
  name: string;
  role: string;
  owner?: string | undefined;
  createdAt: Date;
  lastUsedAt?: Date | undefined;
  revoked: boolean;
}
export interface UserRow {
  id: string | number;
  username: string;
  role: string;
  disabled?: boolean | undefined;
  createdAt: Date;
  lastLoginAt?: Date | undefined;
}

/** The accounts store as the admin UI needs it (branch `auth`: src/store). */
export interface AccountsStore {
  listTokens(): Promise<TokenRow[]> | TokenRow[];
  /** Returns the secret once; only its hash is kept. */
  createToken(input: {
    name: string;
    role: string;
    createdBy?: string | number | undefined;
  }): Promise<{ id: string | number; secret: string }> | { id: string | number; secret: string };
  revokeToken(id: string): Promise<void> | void;
  listUsers(): Promise<UserRow[]> | UserRow[];
  createUser(input: {
    username: string;
    password: string;
    role: string;
    actor?: string | undefined;
  }): Promise<unknown> | unknown;
  setUserRole(id: string, role: string): Promise<void> | void;
  resetPassword(id: string, password: string): Promise<void> | void;
  /** Optional: a store without a disabled flag leaves the button out. */
  setUserDisabled?(id: string, disabled: boolean): Promise<void> | void;
  deleteUser?(id: string): Promise<void> | void;
}

export interface RequestRecord {
  at: Date;
  model: string;
  /** Token name or user name. */
  who: string;
  status: number;
  promptTokens?: number | undefined;
  completionTokens?: number | undefined;
  ttftMs?: number | undefined;
  tokensPerSecond?: number | undefined;
  durationMs: number;
}

/** The request log (metrics module). */
export interface RequestLog {
  recent(opts: {
    limit: number;
    model?: string | undefined;
    since?: Date | undefined;
  }): Promise<RequestRecord[]> | RequestRecord[];
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
  auth?: AuthAdapter | undefined;
  accounts?: AccountsStore | undefined;
  requestLog?: RequestLog | undefined;
}
