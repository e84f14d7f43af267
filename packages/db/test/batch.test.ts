import { describe, expect, it } from 'vitest';
import { createBatcher } from '../src/batch.ts';

/** A promise the test resolves by hand, to hold a batch "in the database". */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

describe('createBatcher', () => {
  it('sends a lone call at once and gathers calls that arrive meanwhile into the next batch', async () => {
    const batches: number[][] = [];
    const first = gate();
    const call = createBatcher(async (items: number[]) => {
      batches.push(items);
      if (batches.length === 1) await first.opened;
      return items.map((i) => i * 10);
    });
    const a = call(1);
    expect(batches).toEqual([[1]]);
    const rest = [call(2), call(3), call(4)];
    first.open();
    expect(await a).toBe(10);
    expect(await Promise.all(rest)).toEqual([20, 30, 40]);
    expect(batches).toEqual([[1], [2, 3, 4]]);
  });

  it('caps a batch at maxBatch items', async () => {
    const batches: number[][] = [];
    const first = gate();
    const call = createBatcher(
      async (items: number[]) => {
        batches.push(items);
        if (batches.length === 1) await first.opened;
        return items;
      },
      { maxBatch: 2 },
    );
    const all = [call(1), call(2), call(3), call(4), call(5)];
    first.open();
    expect(await Promise.all(all)).toEqual([1, 2, 3, 4, 5]);
    expect(batches).toEqual([[1], [2, 3], [4, 5]]);
  });

  it('retries a failed batch item by item, so only the item that fails is refused', async () => {
    const first = gate();
    let calls = 0;
    const call = createBatcher(async (items: number[]) => {
      if (++calls === 1) await first.opened;
      if (items.includes(13)) throw new Error('unlucky');
      return items;
    });
    const lead = call(0);
    const results = Promise.allSettled([call(12), call(13), call(14)]);
    first.open();
    await lead;
    const settled = await results;
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((settled[1] as PromiseRejectedResult).reason.message).toBe('unlucky');
  });
});
