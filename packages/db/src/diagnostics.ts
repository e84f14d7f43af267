import diagnostics_channel from 'node:diagnostics_channel';

/**
 * Where the time of a statement goes, for whoever subscribes (the sign-in bench's probe,
 * bench/probe.ts). Publishing is skipped when nothing subscribes, so this costs nothing in
 * production.
 */
export interface BatchTiming {
  /** The batcher's name (`createBatcher(run, { name })`). */
  name: string;
  size: number;
  /** How long the oldest item of the batch waited for the previous batch. */
  queuedMs: number;
  /** The batch statement itself, commit included. */
  runMs: number;
}

export interface PoolTiming {
  /** Waiting for a free pool connection. */
  waitMs: number;
  /** The statement (or transaction) on the connection. */
  runMs: number;
}

export const batchChannel = diagnostics_channel.channel('hallpass:db:batch');
export const poolChannel = diagnostics_channel.channel('hallpass:db:pool');
