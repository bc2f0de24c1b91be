import { BlockList, isIP } from 'node:net';

/**
 * Addresses a pull must not reach unless the operator allows the host: loopback, private, link-local
 * (cloud metadata at 169.254.169.254), carrier-grade NAT, multicast, reserved and documentation ranges.
 * Node's BlockList also matches IPv4-mapped IPv6 forms (::ffff:127.0.0.1) against the IPv4 rules.
 */
const NOT_PUBLIC = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  NOT_PUBLIC.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const)
  NOT_PUBLIC.addSubnet(net, prefix, 'ipv6');

/** The IPv4 address inside NAT64 (64:ff9b::/96) and 6to4 (2002::/16) addresses, which route to it. */
function embeddedIpv4(address: string): string | undefined {
  const hextets = expandIpv6(address);
  if (!hextets) return undefined;
  const v4 = (hi: number, lo: number): string => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  if (hextets[0] === 0x64 && hextets[1] === 0xff9b && hextets.slice(2, 6).every((h) => h === 0))
    return v4(hextets[6]!, hextets[7]!);
  if (hextets[0] === 0x2002) return v4(hextets[1]!, hextets[2]!);
  return undefined;
}

function expandIpv6(address: string): number[] | undefined {
  let a = address.toLowerCase();
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (dotted) {
    const [b0, b1, b2, b3] = dotted[1]!.split('.').map(Number) as [number, number, number, number];
    a = `${a.slice(0, -dotted[1]!.length)}${((b0 << 8) | b1).toString(16)}:${((b2 << 8) | b3).toString(16)}`;
  }
  const [head, tail] = a.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const fill = tail === undefined ? 0 : 8 - h.length - t.length;
  const all = [...h, ...Array<string>(Math.max(0, fill)).fill('0'), ...t].map((x) => Number.parseInt(x, 16));
  return all.length === 8 && all.every((n) => Number.isInteger(n) && n >= 0 && n <= 0xffff) ? all : undefined;
}

/** Whether an IP address is on the public internet (false for anything that is not an address). */
export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return !NOT_PUBLIC.check(address, 'ipv4');
  if (family !== 6) return false;
  const inner = embeddedIpv4(address);
  if (inner && NOT_PUBLIC.check(inner, 'ipv4')) return false;
  return !NOT_PUBLIC.check(address, 'ipv6');
}

/** What kind of non-public address this is, for error messages. */
export function describeAddress(address: string): string {
  if (/^127\.|^::1$|^::ffff:127\./.test(address)) return 'a loopback address';
  if (/^169\.254\.|^fe[89ab]/i.test(address)) return 'a link-local address';
  if (/^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.)|^f[cd]/i.test(address)) return 'a private address';
  return 'a non-public address';
}
