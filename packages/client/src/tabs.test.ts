import { describe, expect, it } from 'vitest';
import { createTabs, type TabEnvironment } from './tabs.ts';

// Two "tabs" sharing one lock manager and one storage, as tabs of one browser do. The lock manager is
// a minimal FIFO stand-in for navigator.locks (Node has none); the browser test covers the real one.
function browserLike(): () => TabEnvironment {
  const store = new Map<string, string>();
  let queue: Promise<unknown> = Promise.resolve();
  const locks = {
    request: (_name: string, fn: () => Promise<unknown>) => {
      const run = queue.then(fn);
      queue = run.catch(() => {});
      return run;
    },
  } as unknown as LockManager;
  return () => ({
    locks,
    storage: { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => void store.set(k, v) },
    createChannel: (name) => new BroadcastChannel(name),
  });
}

describe('refresh across tabs', () => {
  it('asks the server once when two tabs refresh at the same moment, and both get its result', async () => {
    const env = browserLike();
    const [a, b] = [createTabs(env()), createTabs(env())];
    let calls = 0;
    const refresh = async () => {
      calls++;
      await new Promise((r) => setTimeout(r, 5)); // the server's answer takes a moment
      return { expiresAt: new Date(Date.now() + 900_000).toISOString(), tokenId: `t${calls}` };
    };
    const [x, y] = await Promise.all([a.refreshOnce(refresh), b.refreshOnce(refresh)]);
    expect(calls).toBe(1);
    expect(x).toEqual(y);
    a.close();
    b.close();
  });

  it('refreshes again when asked after the last refresh finished', async () => {
    const tabs = createTabs(browserLike()());
    let calls = 0;
    const refresh = async () => ({ expiresAt: new Date(Date.now() + 900_000 + ++calls).toISOString(), tokenId: `t${calls}` });
    await tabs.refreshOnce(refresh);
    await tabs.refreshOnce(refresh);
    expect(calls).toBe(2);
    tabs.close();
  });

  it('adopts a token the server says was renewed since (another tab, note not yet seen) instead of refreshing', async () => {
    const tabs = createTabs(browserLike()());
    let calls = 0;
    const refresh = async () => ({ expiresAt: new Date(Date.now() + 900_000).toISOString(), tokenId: `t${++calls}` });
    const renewed = { expiresAt: new Date(Date.now() + 900_000).toISOString(), tokenId: 'other-tab' };
    expect(await tabs.refreshOnce(refresh, async () => renewed)).toEqual(renewed);
    expect(calls).toBe(0);
    // The server still has the token this tab knew: refresh for real.
    expect(await tabs.refreshOnce(refresh, async () => null)).toMatchObject({ tokenId: 't1' });
    expect(calls).toBe(1);
    tabs.close();
  });
});
