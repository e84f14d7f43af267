// Loaded into the server under test (`node --import tsx --import bench/probe.ts ...`, see
// startServerProcess): collects where a request's time may go besides its own work, and answers the
// bench over the IPC channel. GC pauses (perf_hooks), event-loop delay, group-commit batch sizes and
// times, pool waits (the diagnostics channels of packages/db). Nothing here changes the server.
import { subscribe } from 'node:diagnostics_channel';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import type { BatchTiming, PoolTiming } from '../packages/db/src/diagnostics.ts';

export interface Summary {
  count: number;
  total: number;
  p50: number;
  p99: number;
  max: number;
}

export interface ProbeReport {
  gc: Summary;
  /** Event-loop delay in ms (resolution 10 ms samples by monitorEventLoopDelay). */
  loopDelay: { p50: number; p99: number; max: number };
  batches: Record<string, { size: Summary; queuedMs: Summary; runMs: Summary }>;
  poolWaitMs: Summary;
  poolRunMs: Summary;
}

class Samples {
  values: number[] = [];
  add(v: number) {
    this.values.push(v);
  }
  summary(): Summary {
    const s = [...this.values].sort((a, b) => a - b);
    const at = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]! : 0);
    return { count: s.length, total: s.reduce((a, b) => a + b, 0), p50: at(0.5), p99: at(0.99), max: s.at(-1) ?? 0 };
  }
}

let gc = new Samples();
let batches = new Map<string, { size: Samples; queuedMs: Samples; runMs: Samples }>();
let poolWait = new Samples();
let poolRun = new Samples();
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();

new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gc.add(e.duration);
}).observe({ entryTypes: ['gc'] });

subscribe('hallpass:db:batch', (m) => {
  const t = m as BatchTiming;
  let b = batches.get(t.name);
  if (!b) batches.set(t.name, (b = { size: new Samples(), queuedMs: new Samples(), runMs: new Samples() }));
  b.size.add(t.size);
  b.queuedMs.add(t.queuedMs);
  b.runMs.add(t.runMs);
});
subscribe('hallpass:db:pool', (m) => {
  const t = m as PoolTiming;
  poolWait.add(t.waitMs);
  poolRun.add(t.runMs);
});

process.channel?.unref();
process.on('message', (msg) => {
  if (msg === 'probe:reset') {
    gc = new Samples();
    batches = new Map();
    poolWait = new Samples();
    poolRun = new Samples();
    loop.reset();
    process.send?.({ probe: 'reset' });
  } else if (msg === 'probe:report') {
    const report: ProbeReport = {
      gc: gc.summary(),
      loopDelay: { p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 },
      batches: Object.fromEntries([...batches].map(([k, v]) => [k, { size: v.size.summary(), queuedMs: v.queuedMs.summary(), runMs: v.runMs.summary() }])),
      poolWaitMs: poolWait.summary(),
      poolRunMs: poolRun.summary(),
    };
    process.send?.({ probe: 'report', report });
  }
});
