// The embedded database's own thread (see openPglite in pglite.ts): PGlite runs here, so its SQL
// uses a second core while the main thread serves HTTP. Plain JavaScript on purpose: a worker
// starts with no TypeScript loader, under tsx, vitest or plain node alike.
//
// Messages from the main thread: { id, op, ... }; answers: { id, result } or { id, error }.
// Notifications: { notify: channel, payload }.
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';

const port = parentPort;
if (!port) throw new Error('pglite-worker.mjs runs only as a worker thread');

const pg = await PGlite.create(workerData.dataDir ?? 'memory://');
/** Open transactions by id: the PGlite transaction handle and how to end it. */
const txs = new Map();
const unlisteners = new Map();
let nextTx = 1;

const rowsOf = (res) => ({ rows: res.rows, rowCount: res.affectedRows ?? res.rows.length });
const target = (msg) => {
  if (msg.tx === undefined) return pg;
  const open = txs.get(msg.tx);
  if (!open) throw new Error('transaction already ended');
  return open.tx;
};

/** A transaction stays open across messages until the main thread ends it (op `end`). */
function begin() {
  return new Promise((started, failed) => {
    const id = nextTx++;
    let open = false;
    pg.transaction(
      (tx) =>
        new Promise((commit, rollback) => {
          txs.set(id, { tx, commit, rollback });
          open = true;
          started(id);
        }),
    ).then(
      () => settle(id, undefined),
      (err) => (open ? settle(id, err) : failed(err)),
    );
  });
}

/** Transaction end answers wait here for PGlite's COMMIT/ROLLBACK to finish. */
const ending = new Map();
function settle(id, err) {
  txs.delete(id);
  const waiter = ending.get(id);
  ending.delete(id);
  if (!waiter) return;
  if (err && !(err instanceof RolledBack)) waiter.reject(err);
  else waiter.resolve(undefined);
}

class RolledBack extends Error {}

const ops = {
  query: async (msg) => rowsOf(await target(msg).query(msg.text, msg.params)),
  exec: async (msg) => void (await target(msg).exec(msg.sql)),
  begin: () => begin(),
  end: (msg) =>
    new Promise((resolve, reject) => {
      const open = txs.get(msg.tx);
      if (!open) return reject(new Error('transaction already ended'));
      ending.set(msg.tx, { resolve, reject });
      if (msg.commit) open.commit(undefined);
      else open.rollback(new RolledBack('rolled back'));
    }),
  listen: async (msg) => {
    if (unlisteners.has(msg.channel)) return;
    unlisteners.set(msg.channel, await pg.listen(msg.channel, (payload) => port.postMessage({ notify: msg.channel, payload })));
  },
  unlisten: async (msg) => {
    const un = unlisteners.get(msg.channel);
    unlisteners.delete(msg.channel);
    if (un && !pg.closed) await un();
  },
  dumpDataDir: async () => {
    const file = await pg.dumpDataDir('none');
    return new Uint8Array(await file.arrayBuffer());
  },
  close: async () => {
    if (!pg.closed) await pg.close();
  },
};

/** An error crosses threads as its message and its own fields (PostgreSQL's code, detail, ...). */
const plainError = (err) =>
  err instanceof Error ? { ...Object.fromEntries(Object.entries(err)), message: err.message, name: err.name } : { message: String(err) };

port.on('message', (msg) => {
  Promise.resolve()
    .then(() => ops[msg.op](msg))
    .then(
      (result) => port.postMessage({ id: msg.id, result }, result instanceof Uint8Array ? [result.buffer] : []),
      (err) => port.postMessage({ id: msg.id, error: plainError(err) }),
    );
});
port.postMessage({ ready: true });
