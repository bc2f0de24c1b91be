import { BlockList, isIP } from 'node:net';

/** "::ffff:10.0.0.1" and "10.0.0.1" are one client. */
export function normalizeIp(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m ? m[1]! : ip;
}

export function isLoopback(ip: string | undefined): boolean {
  if (!ip) return false;
  const a = normalizeIp(ip);
  return a === '::1' || /^127\.\d+\.\d+\.\d+$/.test(a);
}

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || isLoopback(host);
}

/** Matches addresses against a list of IPs and CIDR ranges such as "10.0.0.0/8" or "fd00::/8". */
export function createAddressMatcher(entries: readonly string[]) {
  const list = new BlockList();
  for (const entry of entries) {
    const [addr = '', bits] = entry.trim().split('/');
    const family = isIP(addr);
    if (family === 0) throw new Error(`trusted_proxies: "${entry}" is not an IP address or CIDR range`);
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (bits === undefined) list.addAddress(addr, type);
    else list.addSubnet(addr, Number(bits), type);
  }
  return (ip: string): boolean => {
    const a = normalizeIp(ip);
    const family = isIP(a);
    return family !== 0 && list.check(a, family === 4 ? 'ipv4' : 'ipv6');
  };
}

export interface ClientAddress {
  ip: string;
  /**
   * The connection came from a trusted proxy. Such a request is never loopback: a proxy on the same
   * host connects from 127.0.0.1 for every remote caller, and "127.0.0.1" in X-Forwarded-For only
   * says the caller was local to the proxy.
   */
  proxied: boolean;
}

/**
 * The client address. X-Forwarded-For is honoured only when the connecting peer is a trusted proxy;
 * walking it from the right and stopping at the first untrusted hop means a client cannot prepend
 * addresses of its own choosing.
 */
export function clientAddress(
  peer: string,
  forwardedFor: string | string[] | undefined,
  trusted: (ip: string) => boolean,
): ClientAddress {
  let current = normalizeIp(peer);
  if (!trusted(current)) return { ip: current, proxied: false };
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : (forwardedFor ?? ''))
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = normalizeIp(hops[i]!);
    if (isIP(hop) === 0) break;
    current = hop;
    if (!trusted(hop)) break;
  }
  return { ip: current, proxied: true };
}
