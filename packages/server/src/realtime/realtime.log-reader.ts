import type { Db } from '@hallpass/db';
import { maxEventId, readEventsAfter, takeFreshXid, type EventRow } from './realtime.repository.ts';

export interface LogReader {
  /** Reads now (coalesced: calls while a read runs schedule exactly one more). */
  poke(): void;
  /** Highest id below which everything was delivered or is known never to commit. */
  readonly cursor: number;
  stop(): Promise<void>;
}

export interface LogReaderOptions {
  /** Rows per read. @default 2000 */
  batchSize?: number;
  onEvents(rows: EventRow[]): Promise<void>;
  onError(err: unknown): void;
}

/**
 * Follows hallpass.realtime_events in id order without losing rows that commit out of id order.
 *
 * Ids come from a sequence taken inside the writing transaction, so id 7 can commit after id 8.
 * A plain `id > last` cursor would skip 7 forever. Instead the cursor only advances over ids that
 * were delivered or are provably dead. When a read finds id 7 missing below a committed id 8, the
 * writer of 7 already held its transaction id (every writer takes one before its event id; see
 * hallpass.realtime_next_id), and took 7 before 8 committed, so before the read. The reader then
 * takes a fresh transaction id Y, above every id assigned until then, the writer's included. Once a
 * later read's snapshot xmin is at or above Y, every transaction below Y has ended: if 7 is still
 * absent, its writer rolled back. Rows above the cursor that were already delivered are
 * remembered so a re-read does not send them twice. Per row, commit order equals id order (the
 * second writer waits on the row lock of the first), so per-row order holds as well.
 */
export async function startLogReader(db: Db, options: LogReaderOptions): Promise<LogReader> {
  const batchSize = options.batchSize ?? 2000;
  let cursor = await maxEventId(db);
  const delivered = new Set<number>();
  // Missing id -> a transaction id above its writer's: once the snapshot xmin passes it, it is dead.
  const gaps = new Map<number, bigint>();
  let running: Promise<void> | null = null;
  let dispatching: Promise<void> = Promise.resolve();
  /** The batch queued behind the running dispatch, still open to rows read meanwhile. */
  let waiting: EventRow[] | null = null;
  let again = false;
  let stopped = false;

  const readOnce = async (): Promise<boolean> => {
    const batch = await readEventsAfter(db, cursor, batchSize);
    const fresh = batch.rows.filter((r) => !delivered.has(r.id));
    let expected = cursor + 1;
    const newGaps: number[] = [];
    for (const row of batch.rows) {
      for (let id = expected; id < row.id; id++) if (!gaps.has(id) && !delivered.has(id)) newGaps.push(id);
      gaps.delete(row.id);
      expected = row.id + 1;
    }
    for (const [id, bound] of gaps) if (batch.xmin >= bound) gaps.delete(id);
    if (newGaps.length) {
      const bound = await takeFreshXid(db);
      for (const id of newGaps) gaps.set(id, bound);
    }
    if (fresh.length) {
      // Handing rows over is chained (so they arrive in id order) but not awaited: the next read
      // overlaps it. The hub's `accept` resolves once the rows are queued for their RLS decisions
      // (each channel's events in order; a change joins a turn its channel is still waiting for, see
      // Hub.accept) and waits only while its queue is over its bound. Meanwhile rows read join the
      // one batch waiting here (in read order), and a waiting batch past batchSize makes reading
      // wait too, so a slow delivery slows reading and memory stays bounded.
      if (waiting && waiting.length >= batchSize) await dispatching;
      if (waiting) waiting.push(...fresh);
      else {
        const batch: EventRow[] = (waiting = [...fresh]);
        dispatching = dispatching
          .then(() => {
            if (waiting === batch) waiting = null;
            return options.onEvents(batch);
          })
          .catch((err: unknown) => options.onError(err));
      }
    }
    for (const row of fresh) delivered.add(row.id);
    // Advance over the contiguous prefix of delivered/dead ids.
    while (delivered.has(cursor + 1) || (cursor + 1 < expected && !gaps.has(cursor + 1))) {
      delivered.delete(cursor + 1);
      cursor++;
    }
    return batch.rows.length === batchSize;
  };

  const loop = async () => {
    do {
      again = false;
      try {
        while (!stopped && (await readOnce()));
      } catch (err) {
        options.onError(err);
      }
    } while (again && !stopped);
    running = null;
  };

  // Gaps resolve by time passing (the other transaction ends), which sends no NOTIFY when it rolls
  // back; a slow tick re-reads while any gap is open, and now and then regardless.
  let ticks = 0;
  const tick = setInterval(() => {
    if (gaps.size > 0 || ++ticks % 5 === 0) reader.poke();
  }, 200);
  tick.unref();

  const reader: LogReader = {
    poke() {
      if (stopped) return;
      if (running) {
        again = true;
        return;
      }
      running = loop();
    },
    get cursor() {
      return cursor;
    },
    async stop() {
      stopped = true;
      clearInterval(tick);
      await running;
      await dispatching;
    },
  };
  return reader;
}
