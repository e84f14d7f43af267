import { batchChannel, type BatchTiming } from './diagnostics.ts';

/**
 * Group commit for one kind of statement: calls that arrive while a batch is in the database wait
 * and go together as the next batch, so a burst of N costs one round trip and one commit, and a
 * lone call goes at once (no timer, no added latency when idle).
 *
 * `run` gets the items and must answer one result per item, in order. If it throws for a batch of
 * several, each item is retried alone, so one item that makes the statement fail fails only itself.
 * That retry is safe because `run` is meant to be one statement: when it fails, it wrote nothing.
 * (A connection lost during the commit leaves the outcome unknown, as for any single statement.)
 */
export function createBatcher<I, O>(
  run: (items: I[]) => Promise<O[]>,
  options: { maxBatch?: number; /** Names the batches in their timings (see diagnostics.ts). */ name?: string } = {},
): (item: I) => Promise<O> {
  const maxBatch = options.maxBatch ?? 64;
  const name = options.name ?? 'batch';
  interface Waiting {
    item: I;
    resolve: (o: O) => void;
    reject: (err: unknown) => void;
    at: number;
  }
  let queue: Waiting[] = [];
  let running = false;

  const settle = async (batch: Waiting[]) => {
    try {
      const started = batchChannel.hasSubscribers ? performance.now() : 0;
      const results = await run(batch.map((w) => w.item));
      if (started) {
        const timing: BatchTiming = { name, size: batch.length, queuedMs: started - batch[0]!.at, runMs: performance.now() - started };
        batchChannel.publish(timing);
      }
      if (results.length !== batch.length) throw new Error(`batch returned ${results.length} results for ${batch.length} items`);
      batch.forEach((w, i) => w.resolve(results[i]!));
    } catch (err) {
      if (batch.length === 1) return batch[0]!.reject(err);
      for (const w of batch) await settle([w]);
    }
  };

  const drain = async () => {
    running = true;
    while (queue.length > 0) {
      const batch = queue.slice(0, maxBatch);
      queue = queue.slice(batch.length);
      await settle(batch);
    }
    running = false;
  };

  return (item) =>
    new Promise<O>((resolve, reject) => {
      queue.push({ item, resolve, reject, at: batchChannel.hasSubscribers ? performance.now() : 0 });
      if (!running) void drain();
    });
}
