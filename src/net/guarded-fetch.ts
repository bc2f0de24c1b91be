import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import { Agent, fetch, type Response } from 'undici';
import { Forbidden, UpstreamError } from '../errors.js';
import { describeAddress, isPublicAddress } from './addresses.js';

/** What a pull may reach; every hop of every request is held to it. */
export interface FetchPolicy {
  /** Plain http allowed (config `pull.insecure`, or `insecure: true` on the request). */
  insecure: boolean;
  /** Host names or addresses allowed although they are (or resolve to) loopback, private or link-local. */
  privateHosts: readonly string[];
}

export interface GuardedInit {
  method?: 'GET' | 'HEAD';
  headers?: Record<string, string>;
  signal?: AbortSignal | undefined;
}

const MAX_REDIRECTS = 10;

/** The bare host name of a URL: lowercased, IPv6 brackets removed. */
function hostOf(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
}

function allowedPrivate(host: string, policy: FetchPolicy): boolean {
  return policy.privateHosts.some((h) => h.replace(/^\[|\]$/g, '').toLowerCase() === host);
}

function refuse(host: string, address: string): Forbidden {
  return new Forbidden(
    `pull: refusing to connect to ${host} (${address}, ${describeAddress(address)}); ` +
      'list the host in pull.private_hosts to allow it',
  );
}

/**
 * Resolves names at connect time and refuses non-public answers, so a name that resolved to a public
 * address when checked cannot point at 127.0.0.1 when connected (DNS rebinding).
 */
export function guardedLookup(policy: FetchPolicy) {
  return (
    hostname: string,
    options: { all?: boolean; family?: number },
    callback: (err: Error | null, address?: string | LookupAddress[], family?: number) => void,
  ): void => {
    dnsLookup(hostname, { family: options.family ?? 0, all: true }, (err, addresses) => {
      if (err) return callback(err);
      const host = hostname.toLowerCase();
      const bad = addresses.find((a) => !isPublicAddress(a.address));
      if (bad && !allowedPrivate(host, policy)) return callback(refuse(host, bad.address));
      if (options.all) return callback(null, addresses);
      return callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
}

/** Checks one URL before it is requested: scheme, and the addresses its host names now. */
async function checkHop(url: URL, policy: FetchPolicy): Promise<void> {
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && policy.insecure)) {
    throw new Forbidden(
      `pull: refusing ${url.protocol}//${url.host}: only https is allowed (set pull.insecure or send "insecure": true for http)`,
    );
  }
  if (url.username || url.password) throw new Forbidden('pull: URLs with credentials are refused');
  const host = hostOf(url);
  if (allowedPrivate(host, policy)) return;
  const addresses = isIP(host)
    ? [host]
    : await new Promise<string[]>((resolve, reject) =>
        dnsLookup(host, { all: true }, (err, list) => (err ? reject(err) : resolve(list.map((a) => a.address)))),
      ).catch((err: Error) => {
        throw new UpstreamError(`pull: cannot resolve ${host}: ${err.message}`, 502, { cause: err });
      });
  const bad = addresses.find((a) => !isPublicAddress(a));
  if (bad) throw refuse(host, bad);
}

/**
 * Fetch for pulls: follows redirects itself (at most 10), checking every hop's scheme and address
 * against the policy before connecting and again at connect time. Credentials sent to the first host
 * are dropped when a redirect leaves it.
 */
export class GuardedFetch {
  private readonly agent: Agent;

  constructor(private readonly policy: FetchPolicy) {
    this.agent = new Agent({ connect: { lookup: guardedLookup(policy) } as object });
  }

  async fetch(url: string, init: GuardedInit = {}): Promise<{ response: Response; url: string }> {
    let current = new URL(url);
    let headers = { ...init.headers };
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      await checkHop(current, this.policy);
      let response: Response;
      try {
        response = await fetch(current, {
          method: init.method ?? 'GET',
          headers,
          signal: init.signal,
          redirect: 'manual',
          dispatcher: this.agent,
        });
      } catch (err) {
        if (init.signal?.aborted) throw err;
        const cause = (err as { cause?: unknown }).cause;
        if (cause instanceof Forbidden) throw cause;
        throw new UpstreamError(`pull: cannot reach ${current.host}: ${errorText(err)}`, 502, { cause: err });
      }
      const location = response.headers.get('location');
      if (response.status < 300 || response.status > 399 || !location) return { response, url: current.href };
      await response.body?.cancel().catch(() => undefined);
      const next = new URL(location, current);
      if (next.origin !== current.origin) {
        const { authorization: _dropped, ...rest } = headers;
        headers = rest;
      }
      current = next;
    }
    throw new UpstreamError(`pull: more than ${MAX_REDIRECTS} redirects from ${url}`, 502);
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

function errorText(err: unknown): string {
  const cause = (err as { cause?: { message?: string } }).cause;
  return cause?.message ?? (err as Error).message;
}
