import { describe, expect, it } from 'vitest';
import { clientAddress, isLoopbackAddress, isLoopbackHost, parseTrustProxy, type TrustProxy } from './client-ip.ts';

const trust = (value: string) => parseTrustProxy(value) as TrustProxy;

describe('parseTrustProxy', () => {
  it('reads false, true (one hop), a hop count and a list of addresses, ranges and names', () => {
    expect(trust('false')).toBe(false);
    expect(parseTrustProxy(undefined)).toBe(false);
    expect(trust('0')).toBe(false);
    expect(trust('true')).toEqual({ hops: 1 });
    expect(trust('2')).toEqual({ hops: 2 });
    expect(trust('10.0.0.0/8, 2001:db8::/32,192.0.2.7,loopback')).toEqual({ proxies: ['10.0.0.0/8', '2001:db8::/32', '192.0.2.7', 'loopback'] });
  });

  it('reports what is not an address, a range or a count', () => {
    for (const bad of ['10.0.0.0/33', '::/129', 'proxy.internal', '10.0.0.1/8/2', '1.2.3', '99']) {
      expect(parseTrustProxy(bad)).toHaveProperty('problems');
    }
  });
});

describe('clientAddress', () => {
  it('takes the socket peer when no proxy is trusted, whatever X-Forwarded-For says', () => {
    expect(clientAddress(false, '198.51.100.7', '203.0.113.1')).toBe('198.51.100.7');
  });

  it('takes the right-most entry, not the left-most, behind one trusted hop', () => {
    expect(clientAddress(trust('true'), '10.0.0.2', '203.0.113.1, 198.51.100.7')).toBe('198.51.100.7');
    expect(clientAddress(trust('true'), '10.0.0.2', undefined)).toBe('10.0.0.2');
  });

  it('walks back as many hops as trusted, and no further than the header goes', () => {
    expect(clientAddress(trust('2'), '10.0.0.2', '203.0.113.1, 198.51.100.7, 10.0.0.9')).toBe('198.51.100.7');
    expect(clientAddress(trust('3'), '10.0.0.2', '198.51.100.7')).toBe('198.51.100.7');
  });

  it('skips trusted proxies by address and range (IPv4, IPv6, IPv4-mapped), stopping at the first untrusted one', () => {
    const t = trust('10.0.0.0/8,2001:db8::/32,loopback');
    expect(clientAddress(t, '::ffff:127.0.0.1', '10.9.9.9, 198.51.100.7, 10.1.2.3, 2001:db8::5')).toBe('198.51.100.7');
    expect(clientAddress(t, '2001:db8::1', '2001:DB8:0:0::abcd, 2001:0db8:0:0:0:0:0:9')).toBe('2001:db8::abcd');
    expect(clientAddress(t, '198.51.100.1', '10.1.2.3')).toBe('198.51.100.1');
    expect(clientAddress(t, '127.0.0.1', 'garbage, 10.0.0.1')).toBe('garbage');
  });

  it('writes one address one way, so a limit keyed by it cannot be dodged by spelling', () => {
    expect(clientAddress(false, '::ffff:198.51.100.7', undefined)).toBe('198.51.100.7');
    expect(clientAddress(trust('1'), '127.0.0.1', '2001:DB8:0::1')).toBe('2001:db8::1');
    expect(clientAddress(false, 'fe80::1%eth0', undefined)).toBe('fe80::1%eth0');
  });
});

describe('loopback', () => {
  it('knows loopback peers and hosts', () => {
    for (const a of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1']) expect(isLoopbackAddress(a)).toBe(true);
    for (const a of ['192.0.2.2', '::', '0.0.0.0', 'fd00::2', undefined]) expect(isLoopbackAddress(a)).toBe(false);
    for (const h of ['localhost', '127.0.0.1', '::1', '[::1]']) expect(isLoopbackHost(h)).toBe(true);
    for (const h of ['0.0.0.0', '::', '192.0.2.2', 'example.com']) expect(isLoopbackHost(h)).toBe(false);
  });
});
