import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Store } from '../store/store.js';
import type { ApiTokenRow } from '../store/api-tokens.js';
import type { NewApiToken } from '../store/api-tokens.js';

export const TOKEN_PREFIX = 'corral_';
const TOKEN_BYTES = 32;
// 32 bytes of base64url are 43 characters; accept longer ones in case the size grows later.
const TOKEN_SHAPE = /^corral_[A-Za-z0-9_-]{43,128}$/;

export const sha256Hex = (text: string) => createHash('sha256').update(text).digest('hex');

/** A fresh secret, recognisable by its prefix (for secret scanners), and its stored hash. */
export function generateSecret(): { secret: string; hash: string } {
  const secret = TOKEN_PREFIX + randomBytes(TOKEN_BYTES).toString('base64url');
  return { secret, hash: sha256Hex(secret) };
}

/** What a caller chooses for a new token; the secret, its hash and its prefix are made here. */
export type CreateTokenOptions = Omit<NewApiToken, 'tokenHash' | 'prefix'>;

/**
 * How much of a secret is kept in clear to tell tokens apart: 6 random characters (36 bits) of 256,
 * far too few to guess the rest from, enough to match a token in a client's config to its row.
 */
export const shownPrefix = (secret: string): string => secret.slice(0, TOKEN_PREFIX.length + 6);

/** The secret is returned here and nowhere else: only its hash and prefix are stored. */
export async function createApiToken(store: Store, options: CreateTokenOptions, now = Date.now()) {
  const { secret, hash } = generateSecret();
  const prefix = shownPrefix(secret);
  const id = await store.apiTokens.create({ ...options, tokenHash: hash, prefix }, now);
  return { id, secret, prefix };
}

export type TokenCheck =
  | { ok: true; row: ApiTokenRow }
  | { ok: false; reason: 'malformed' | 'unknown' | 'expired' | 'revoked'; row?: ApiTokenRow };

export async function checkApiToken(store: Store, secret: string, now = Date.now()): Promise<TokenCheck> {
  if (!TOKEN_SHAPE.test(secret)) return { ok: false, reason: 'malformed' };
  const hash = sha256Hex(secret);
  const row = await store.apiTokens.findByHash(hash);
  // The index lookup already matched; the constant-time compare guards against a lookup that
  // ever becomes a prefix or case-insensitive match.
  if (!row || !timingSafeEqual(Buffer.from(row.token_hash, 'hex'), Buffer.from(hash, 'hex'))) {
    return { ok: false, reason: 'unknown' };
  }
  if (row.revoked_at !== null) return { ok: false, reason: 'revoked', row };
  if (row.expires_at !== null && row.expires_at <= now) return { ok: false, reason: 'expired', row };
  return { ok: true, row };
}
