import { randomUUID } from 'node:crypto';
import { errors, jwtVerify, SignJWT } from 'jose';

/** The header a forwarded request carries its fleet credential in. Never accepted from a client. */
export const FLEET_HEADER = 'x-corral-fleet';
/** Answers name the node that served them. */
export const NODE_HEADER = 'x-corral-node';

/** Long enough for a connect and a queue at the receiving end's edge, short enough to be worthless later. */
const LIFETIME_S = 30;
const ALGORITHM = 'HS256';
export const MIN_SECRET_LENGTH = 32;

/** What the entry node vouches for about a request it forwards. */
export interface ForwardClaims {
  /** The node that forwarded it. */
  from: string;
  requestId: string;
  /** The original client was local to the entry node (what loopback-open judges). */
  clientLocal: boolean;
  clientIp: string;
}

export interface FleetCredentials {
  /** A credential for one request to node `to`, bound to its method and URL. */
  sign(to: string, method: string, url: string, claims: ForwardClaims): Promise<string>;
  /** The claims of a credential meant for this node, this method and URL, not seen before; else throws. */
  verify(token: string, method: string, url: string): Promise<ForwardClaims>;
}

export class InvalidFleetCredential extends Error {}

/**
 * Short-lived JWTs signed with the fleet secret (jose, HS256). Each is bound to the receiving node, the
 * request's method and URL, and used once: a copied credential cannot be replayed, redirected to another
 * node or reused for another route.
 */
export function fleetCredentials(selfId: string, secret: string, now: () => number = Date.now): FleetCredentials {
  if (secret.length < MIN_SECRET_LENGTH)
    throw new Error(`fleet.secret must be at least ${MIN_SECRET_LENGTH} characters`);
  const key = new TextEncoder().encode(secret);
  const seen = new Map<string, number>();
  const remember = (jti: string, exp: number): boolean => {
    const t = now();
    for (const [id, until] of seen) if (until < t) seen.delete(id);
    if (seen.has(jti)) return false;
    seen.set(jti, exp * 1000 + 60_000);
    return true;
  };
  return {
    sign(to, method, url, claims) {
      const iat = Math.floor(now() / 1000);
      return new SignJWT({ m: method, u: url, rid: claims.requestId, loc: claims.clientLocal, ip: claims.clientIp })
        .setProtectedHeader({ alg: ALGORITHM })
        .setIssuer(claims.from)
        .setAudience(to)
        .setJti(randomUUID())
        .setIssuedAt(iat)
        .setExpirationTime(iat + LIFETIME_S)
        .sign(key);
    },
    async verify(token, method, url) {
      try {
        const { payload } = await jwtVerify(token, key, {
          audience: selfId,
          algorithms: [ALGORITHM],
          clockTolerance: 5,
          currentDate: new Date(now()),
        });
        if (payload.m !== method || payload.u !== url) throw new InvalidFleetCredential('issued for another request');
        if (typeof payload.jti !== 'string' || !remember(payload.jti, payload.exp ?? 0))
          throw new InvalidFleetCredential('already used');
        return {
          from: String(payload.iss ?? ''),
          requestId: String(payload.rid ?? ''),
          clientLocal: payload.loc === true,
          clientIp: String(payload.ip ?? ''),
        };
      } catch (err) {
        if (err instanceof InvalidFleetCredential) throw err;
        if (err instanceof errors.JOSEError) throw new InvalidFleetCredential(err.code.replace(/^ERR_/, ''));
        throw err;
      }
    },
  };
}
