import type { Config } from '../config/config.ts';

/** Refusal texts as Supabase Realtime words them (`<code>: <message>`), so clients and logs match. */
export const limitReasons = {
  sockets: 'ConnectionRateLimitReached: Too many connected users',
  joins: 'ClientJoinRateLimitReached: Too many joins per second',
  socketMessages: 'Too many messages per second',
  serverMessages: 'MessagePerSecondRateLimitReached: Too many messages per second',
  joinTimeout: 'No channel joined in time',
} as const;

export interface Bucket {
  /** Takes `n` tokens (default 1); false, taking nothing, when fewer are left. */
  take(n?: number): boolean;
  /** Whether it has refilled completely (nothing to remember about its owner). */
  full(): boolean;
}

/**
 * A token bucket refilling `rate` per second and holding two seconds' worth, full at first. `now` is
 * the injected clock in ms, so tests move time instead of sleeping.
 */
export function createBucket(rate: number, now: () => number): Bucket {
  const capacity = 2 * rate;
  let tokens = capacity;
  let at = now();
  const refill = () => {
    const t = now();
    tokens = Math.min(capacity, tokens + ((t - at) / 1000) * rate);
    at = t;
  };
  return {
    take(n = 1) {
      refill();
      if (tokens < n) return false;
      tokens -= n;
      return true;
    },
    full() {
      refill();
      return tokens >= capacity;
    },
  };
}

interface PerAddress {
  sockets: number;
  joins: Bucket;
}

type LimitConfig = Pick<Config['realtime'], 'maxSocketsPerIp' | 'joinsPerSecondPerIp' | 'serverMessagesPerSecond'>;

/**
 * The flood limits of one instance: open sockets and joins per client address, and one budget of
 * broadcast deliveries shared by every socket (each client broadcast is a log row and a fan-out). Addresses come
 * from `clientAddress`, the function behind the HTTP side's `clientIp`, so TRUST_PROXY means the same
 */
export class RealtimeLimits {
  private readonly addresses = new Map<string, PerAddress>();
  private readonly broadcasts: Bucket;

  constructor(
    private readonly config: LimitConfig,
    private readonly now: () => number,
  ) {
    this.broadcasts = createBucket(config.serverMessagesPerSecond, now);
  }

  /** Counts a new socket from `ip`; false (counting nothing) when that address holds the maximum. */
  openSocket(ip: string | null): boolean {
    const a = this.address(ip);
    if (a.sockets >= this.config.maxSocketsPerIp) return false;
    a.sockets++;
    return true;
  }

  closeSocket(ip: string | null): void {
    const a = this.addresses.get(ip ?? '');
    if (a) a.sockets = Math.max(0, a.sockets - 1);
  }

  takeJoin(ip: string | null): boolean {
    return this.address(ip).joins.take();
  }

  /**
   * Takes a client broadcast's cost from the instance's budget: the messages it will make here (its
   * topic's subscribers, at least 1). Counting deliveries, not broadcasts, is what bounds the work:
   * one broadcast to a crowded topic is many sends.
   */
  takeBroadcast(fanOut: number): boolean {
    return this.broadcasts.take(Math.max(1, fanOut));
  }

  /** Forgets addresses with no socket and a full join bucket (run on a schedule). */
  sweep(): void {
    for (const [ip, a] of this.addresses) if (a.sockets === 0 && a.joins.full()) this.addresses.delete(ip);
  }

  private address(ip: string | null): PerAddress {
    const key = ip ?? '';
    let a = this.addresses.get(key);
    if (!a) this.addresses.set(key, (a = { sockets: 0, joins: createBucket(this.config.joinsPerSecondPerIp, this.now) }));
    return a;
  }
}
