import { randomBytes } from 'node:crypto';
import type { Store } from '../store/store.js';
import type { UserRow } from '../store/users.js';
import { csrfTokenFor } from './csrf.js';
import { sha256Hex } from './tokens.js';

export const SESSION_COOKIE = 'corral_session';

export interface SessionManagerOptions {
  store: Store;
  idleMs: number;
  absoluteMs: number;
  now?: () => number;
}

export interface NewSession {
  /** The cookie value: a JWT carrying the session id. */
  token: string;
  sessionId: string;
  csrfToken: string;
  expiresAt: number;
}

export type SessionCheck =
  | { ok: true; sessionId: string; user: UserRow; csrfToken: string }
  | { ok: false; reason: 'invalid' | 'expired' | 'revoked' };

/**
 * The JWT only proves which session the cookie names; the session row decides whether it is still
 * valid, which is what makes logout, password changes and admin revocation take effect at once.
 */
export function createSessionManager(options: SessionManagerOptions) {
  const { store, idleMs, absoluteMs } = options;
  const now = options.now ?? Date.now;
  // Generated on first use and kept in the database so sessions survive restarts; every process
  // sharing the database agrees on them. Read once, on the first login or session cookie.
  let keys: Promise<{ secret: Uint8Array; csrfKey: string }> | undefined;
  const loadKeys = () =>
    (keys ??= (async () => {
      const make = () => randomBytes(32).toString('base64url');
      const [jwt, csrfKey] = [
        await store.settings.getOrCreate('session_jwt_secret', make),
        await store.settings.getOrCreate('csrf_key', make),
      ];
      return { secret: new TextEncoder().encode(jwt), csrfKey };
    })().catch((err: unknown) => {
      keys = undefined; // an unreachable database is asked again next time
      throw err;
    }));
  // Stamping last-seen on every request would be a write per request; this granularity is enough for idle expiry.
  const touchEvery = Math.min(60_000, idleMs / 20);
  // Loaded on the first login or session cookie: API clients never need it, and its ~45 modules would
  // otherwise stay resident in every gateway.
  let jose: Promise<typeof import('jose')> | undefined;
  const loadJose = () => (jose ??= import('jose'));

  return {
    idleMs,
    absoluteMs,
    async create(userId: number, meta: { ip?: string; userAgent?: string } = {}): Promise<NewSession> {
      const t = now();
      const { secret, csrfKey } = await loadKeys();
      const sessionId = randomBytes(32).toString('base64url');
      const expiresAt = t + absoluteMs;
      await store.sessions.create({ idHash: sha256Hex(sessionId), userId, expiresAt, ...meta }, t);
      const { SignJWT } = await loadJose();
      const token = await new SignJWT({ sid: sessionId })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(String(userId))
        .setIssuedAt(Math.floor(t / 1000))
        .setExpirationTime(Math.ceil(expiresAt / 1000))
        .sign(secret);
      return { token, sessionId, csrfToken: csrfTokenFor(csrfKey, sessionId), expiresAt };
    },

    async verify(token: string): Promise<SessionCheck> {
      const t = now();
      let sid: unknown;
      let sub: string | undefined;
      const { jwtVerify } = await loadJose();
      const { secret, csrfKey } = await loadKeys();
      try {
        const { payload } = await jwtVerify(token, secret, { algorithms: ['HS256'], currentDate: new Date(t) });
        sid = payload.sid;
        sub = payload.sub;
      } catch (err) {
        const expired = (err as { code?: string }).code === 'ERR_JWT_EXPIRED';
        return { ok: false, reason: expired ? 'expired' : 'invalid' };
      }
      if (typeof sid !== 'string') return { ok: false, reason: 'invalid' };
      const idHash = sha256Hex(sid);
      const row = await store.sessions.get(idHash);
      if (!row || String(row.user_id) !== sub) return { ok: false, reason: 'revoked' };
      if (row.revoked_at !== null) return { ok: false, reason: 'revoked' };
      if (row.expires_at <= t || row.last_seen_at + idleMs <= t) return { ok: false, reason: 'expired' };
      const user = await store.users.findById(row.user_id);
      if (!user || user.disabled) return { ok: false, reason: 'revoked' };
      if (t - row.last_seen_at >= touchEvery) store.sessions.touch(idHash, t);
      return { ok: true, sessionId: sid, user, csrfToken: csrfTokenFor(csrfKey, sid) };
    },

    revoke: (sessionId: string) => store.sessions.revoke(sha256Hex(sessionId), now()),
    revokeAllForUser: (userId: number) => store.sessions.revokeAllForUser(userId, now()),
  };
}

export type SessionManager = ReturnType<typeof createSessionManager>;
