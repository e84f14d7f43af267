import { BlockList, isIP } from 'node:net';

/**
 * Which hops in front of the server are trusted to report the client's address in X-Forwarded-For,
 * as Express's `trust proxy`: none, a number of hops, or the proxies' own addresses and ranges.
 */
export type TrustProxy = false | { hops: number } | { proxies: readonly string[] };

/** Named ranges, as Express accepts them. */
const namedRanges: Readonly<Record<string, readonly string[]>> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};

/**
 * Reads TRUST_PROXY: `false` (the default), `true` (one hop: the proxy in front of us), a hop count,
 * or a comma list of proxy addresses, CIDR ranges (IPv4 and IPv6) and the names `loopback`,
 * `linklocal`, `uniquelocal`. Returns the problems found instead when the value makes no sense.
 */
export function parseTrustProxy(value: string | undefined): TrustProxy | { problems: string[] } {
  const v = (value ?? 'false').trim().toLowerCase();
  if (['false', 'no', 'off', '0', ''].includes(v)) return false;
  if (['true', 'yes', 'on'].includes(v)) return { hops: 1 };
  if (/^\d+$/.test(v)) {
    const hops = Number(v);
    return hops <= 32 ? { hops } : { problems: [`TRUST_PROXY: ${value} hops is more than 32`] };
  }
  const proxies = v.split(',').map((s) => s.trim()).filter(Boolean);
  const problems = proxies.filter((p) => !namedRanges[p] && !parseRange(p)).map((p) => `TRUST_PROXY: ${p} is not an IP address, CIDR range or hop count`);
  return problems.length ? { problems } : { proxies };
}

function parseRange(entry: string): { address: string; prefix: number; type: 'ipv4' | 'ipv6' } | null {
  const [address = '', prefixText, extra] = entry.split('/');
  const family = isIP(address);
  if (!family || extra !== undefined) return null;
  const max = family === 4 ? 32 : 128;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return null;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  return prefix <= max ? { address, prefix, type: family === 4 ? 'ipv4' : 'ipv6' } : null;
}

function blockListOf(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries.flatMap((e) => namedRanges[e] ?? [e])) {
    const range = parseRange(entry)!;
    list.addSubnet(range.address, range.prefix, range.type);
  }
  return list;
}

function contains(list: BlockList, address: string): boolean {
  const family = isIP(address);
  // BlockList matches IPv4-mapped IPv6 addresses (::ffff:10.0.0.1) against IPv4 ranges too.
  return family !== 0 && list.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

// Compiled once per config value (the config is frozen and lives as long as the server).
const compiled = new WeakMap<object, BlockList>();

/**
 * The client's address: the socket's peer, or, behind trusted proxies, the right-most
 * X-Forwarded-For entry that is not itself a trusted proxy. Walking from the peer leftwards, as
 * Express's proxy-addr does, means only entries written by our own proxies are believed: whatever a
 * client writes into the header itself sits to the left of them and is never reached.
 */
export function clientAddress(trust: TrustProxy, peer: string | undefined, forwardedFor: string | undefined): string | null {
  if (!peer) return null;
  if (trust === false || !forwardedFor) return normalise(peer);
  let list: BlockList | undefined;
  if ('proxies' in trust) {
    list = compiled.get(trust);
    if (!list) compiled.set(trust, (list = blockListOf(trust.proxies)));
  }
  const trusted = (address: string, hop: number) => (list ? contains(list, address) : hop < (trust as { hops: number }).hops);
  const hops = [peer, ...forwardedFor.split(',').map((s) => s.trim()).filter(Boolean).reverse()];
  let i = 0;
  while (i < hops.length - 1 && trusted(hops[i]!, i)) i++;
  return normalise(hops[i]!);
}

/** One spelling per address, so limits keyed by it cannot be dodged by writing it differently. */
function normalise(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  // The URL parser writes IPv6 canonically (lower case, zeros compressed); a zone id (fe80::1%eth0)
  // is not URL syntax and is kept as it came.
  if (isIP(address) === 6 && URL.canParse(`http://[${address}]`)) return new URL(`http://[${address}]`).hostname.slice(1, -1);
  return address.slice(0, 64);
}

const loopback = blockListOf(['loopback']);

/** Whether an address (a socket's peer) is this machine's loopback: 127.0.0.0/8 or ::1. */
export function isLoopbackAddress(address: string | undefined | null): boolean {
  return !!address && contains(loopback, address);
}

/** Whether binding to `host` listens on loopback only (`localhost`, 127.x, ::1). */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  return bare.toLowerCase() === 'localhost' || isLoopbackAddress(bare);
}
