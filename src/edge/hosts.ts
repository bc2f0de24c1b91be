import { isIP } from 'node:net';
import { hostname } from 'node:os';

/** "example.com:11434" → "example.com"; "[::1]:11434" → "::1". */
export function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') === -1 ? undefined : h.indexOf(']'));
  const colon = h.lastIndexOf(':');
  return colon === -1 || h.indexOf(':') !== colon ? h : h.slice(0, colon);
}

/**
 * Whether a Host header names this server, for the DNS-rebinding check. A rebinding page reaches
 * 127.0.0.1 under its own domain name, so names are what is checked: loopback names, this machine's
 * name, the configured bind host and `server.allowed_hosts` (exact, or "*.example.com" / ".example.com"
 * for subdomains, or "*" for any). An IP literal cannot be rebound and is always accepted.
 */
export function createHostMatcher(opts: { bindHost: string; allowed: readonly string[] }) {
  const allowed = opts.allowed.map((a) => a.trim().toLowerCase());
  const anyHost = allowed.includes('*');
  const exact = new Set([
    'localhost',
    hostname().toLowerCase(),
    opts.bindHost.toLowerCase(),
    ...allowed.filter((a) => !a.startsWith('*.') && !a.startsWith('.')),
  ]);
  const suffixes = [
    '.localhost',
    ...allowed.filter((a) => a.startsWith('*.') || a.startsWith('.')).map((a) => a.replace(/^\*/, '')),
  ];
  return (header: string | undefined): boolean => {
    if (anyHost || header === undefined || header === '') return true;
    const name = hostName(header).replace(/\.$/, '');
    return isIP(name) !== 0 || exact.has(name) || suffixes.some((s) => name.endsWith(s));
  };
}
