import { randomBytes } from 'node:crypto';
import type { Config } from '../config/schema.js';
import type { Store } from '../store/store.js';
import { createAccounts } from './accounts.js';
import { isLoopbackHost } from './client-ip.js';
import { createPasswords, type Passwords } from './passwords.js';
import { sha256Hex } from './tokens.js';

export interface BootstrapLog {
  info(msg: string): void;
  warn(msg: string): void;
}

export type EnsureAdminResult =
  | { status: 'exists' }
  | { status: 'created'; username: string }
  | { status: 'setup'; url: string; expiresAt: number };

/**
 * First start: an admin from CORRAL_ADMIN_PASSWORD, or else a one-time setup URL (printed by the
 * caller) through which the first admin is created in the browser.
 */
export async function ensureAdmin(
  store: Store,
  env: NodeJS.ProcessEnv,
  log: BootstrapLog,
  options: { passwords?: Passwords; now?: () => number; setupTtlMs?: number } = {},
): Promise<EnsureAdminResult> {
  const now = options.now ?? Date.now;
  if ((await store.users.adminCount()) > 0) return { status: 'exists' };
  const password = env.CORRAL_ADMIN_PASSWORD;
  if (password) {
    const accounts = createAccounts({ store, passwords: options.passwords ?? createPasswords(), now });
    const username = env.CORRAL_ADMIN_USER || 'admin';
    try {
      await accounts.addUser(username, password, 'admin', 'bootstrap');
    } catch (err) {
      // Nodes sharing one PostgreSQL start together: the first to create the admin wins.
      if ((await store.users.adminCount()) > 0) return { status: 'exists' };
      throw err;
    }
    log.info(`created admin user "${username}" from CORRAL_ADMIN_PASSWORD`);
    return { status: 'created', username };
  }
  const secret = randomBytes(24).toString('base64url');
  const expiresAt = now() + (options.setupTtlMs ?? 15 * 60_000);
  await store.setupTokens.create(sha256Hex(secret), expiresAt, now());
  const url = `/admin/setup?token=${secret}`;
  log.warn(`no admin user yet: open ${url} within ${Math.round((expiresAt - now()) / 60_000)} minutes to create one`);
  return { status: 'setup', url, expiresAt };
}

/** Throws for an unprotected non-loopback bind; returns warnings the caller must log loudly. */
export function startupAuthCheck(config: Config['auth'], host: string): string[] {
  const proxies =
    config.mode === 'loopback-open' && config.trusted_proxies.length > 0
      ? [
          'auth.mode is "loopback-open" with auth.trusted_proxies set: callers through a proxy are never ' +
            'loopback, so they all need an API token; set auth.mode: required to say so',
        ]
      : [];
  if (isLoopbackHost(host)) return proxies;
  if (config.mode === 'off' && !config.force_insecure) {
    throw new Error(
      `refusing to start: auth.mode is "off" and server.host is ${host}, so anyone who can reach it ` +
        'could use and administer Corral; bind to 127.0.0.1, enable auth, or set auth.force_insecure: true',
    );
  }
  const warnings = [...proxies, `listening on ${host}, beyond loopback: clients on other machines can reach Corral`];
  if (config.mode === 'off') warnings.push('auth.mode is "off" (forced): every client has full admin rights');
  else warnings.push(`auth.mode is "${config.mode}": every non-loopback client needs an API token`);
  return warnings;
}
