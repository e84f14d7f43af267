// Loaded into the server under test (`node --import tsx --import bench/probe.mjs ...`, see
// startServerProcess; plain JavaScript so it needs no loader): collects where a request's time may go besides its own work, and answers the
// bench over the IPC channel. GC pauses (perf_hooks), event-loop delay, group-commit batch sizes and
// times, pool waits (the diagnostics channels of packages/db). Nothing here changes the server.
import { subscribe } from 'node:diagnostics_channel';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';

class Samples {
  values = [];
  add(v) {
    this.values.push(v);
  }
  summary() {
    const s = [...this.values].sort((a, b) => a - b);
    const at = (p) => (s.length ? s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] : 0);
    return { count: s.length, total: s.reduce((a, b) => a + b, 0), p50: at(0.5), p99: at(0.99), max: s.at(-1) ?? 0 };
  }
}

let gc = new Samples();
/** @type {Map<string, { size: Samples; queuedMs: Samples; runMs: Samples }>} */
let batches = new Map();
let poolWait = new Samples();
let poolRun = new Samples();
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();

new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gc.add(e.duration);
}).observe({ entryTypes: ['gc'] });

subscribe('hallpass:db:batch', (m) => {
  const t = m; // a BatchTiming (packages/db/src/diagnostics.ts)
  let b = batches.get(t.name);
  if (!b) batches.set(t.name, (b = { size: new Samples(), queuedMs: new Samples(), runMs: new Samples() }));
  b.size.add(t.size);
  b.queuedMs.add(t.queuedMs);
  b.runMs.add(t.runMs);
});
subscribe('hallpass:db:pool', (m) => {
  const t = m; // a PoolTiming
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
    const report = {
      gc: gc.summary(),
      loopDelay: { p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 },
      batches: Object.fromEntries([...batches].map(([k, v]) => [k, { size: v.size.summary(), queuedMs: v.queuedMs.summary(), runMs: v.runMs.summary() }])),
      poolWaitMs: poolWait.summary(),
      poolRunMs: poolRun.summary(),
    };
    process.send?.({ probe: 'report', report });
  }
});
