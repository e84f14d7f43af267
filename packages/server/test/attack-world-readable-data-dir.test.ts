import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createScratchDatabase, testBackend } from '@hallpass/db/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// Attack (issue 9, finding 2): after `npm start` most files under .hallpass/data were mode 0666 and
// the folders 0755, so any local user could rewrite profiles and sessions (and read secrets.json).
// The server runs here as `npm start` runs it, in a child process, under the loosest umask (000).
const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const dataDir = mkdtempSync(join(tmpdir(), 'hallpass-perms-'));
let databaseUrl: string | undefined;
let dropDatabase = async () => {};

beforeAll(async () => {
  // On the postgres backend the data dir holds only the generated secrets; on pglite, the database too.
  if (testBackend() === 'postgres') {
    const scratch = await createScratchDatabase(process.env.TEST_DATABASE_URL!, 'hallpass_test');
    databaseUrl = scratch.url;
    dropDatabase = scratch.drop;
  }
});
afterAll(async () => {
  await dropDatabase();
  rmSync(dataDir, { recursive: true, force: true });
});

async function serveWithUmask000(): Promise<{ child: ChildProcess; output: () => string }> {
  const env: Record<string, string | undefined> = {
    ...process.env,
    NODE_ENV: 'test',
    HALLPASS_DATA_DIR: dataDir,
    DATABASE_URL: databaseUrl,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
  };
  const child = spawn('/bin/sh', ['-c', 'umask 000 && exec "$@"', 'sh', process.execPath, '--import', 'tsx', main, 'serve'], {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  while (!out.includes('listening')) {
    if (child.exitCode !== null) throw new Error(`server exited: ${out}`);
    await once(child.stdout!, 'data');
  }
  return { child, output: () => out };
}

async function stop(child: ChildProcess) {
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
}

/** Every path under the data dir that a group or other user could read, write or enter. */
function openPaths(): string[] {
  const open: string[] = [];
  const walk = (path: string) => {
    const stat = lstatSync(path);
    if (stat.mode & 0o077) open.push(`${(stat.mode & 0o777).toString(8)} ${path.slice(dataDir.length) || '/'}`);
    if (stat.isDirectory()) for (const name of readdirSync(path)) walk(join(path, name));
  };
  walk(dataDir);
  return open;
}

describe('attack: another local user reads or rewrites the data dir', () => {
  it('keeps the data dir 0700 and nothing in it group- or world-accessible, even under umask 000', async () => {
    const { child } = await serveWithUmask000();
    try {
      expect(lstatSync(dataDir).mode & 0o777).toBe(0o700);
      expect(lstatSync(join(dataDir, 'secrets.json')).mode & 0o777).toBe(0o600);
      if (!databaseUrl) expect(readdirSync(join(dataDir, 'data')).length).toBeGreaterThan(5);
      expect(openPaths()).toEqual([]);
    } finally {
      await stop(child);
    }
    expect(openPaths()).toEqual([]);
  }, 180_000);

  it('tightens again at the next start, with a warning, what was opened meanwhile', async () => {
    chmodSync(dataDir, 0o755);
    chmodSync(join(dataDir, 'secrets.json'), 0o644);
    if (!databaseUrl) {
      chmodSync(join(dataDir, 'data'), 0o777);
      chmodSync(join(dataDir, 'data', 'PG_VERSION'), 0o666);
    }
    expect(openPaths().length).toBeGreaterThan(0);
    const { child, output } = await serveWithUmask000();
    try {
      expect(openPaths()).toEqual([]);
      const warnings = output()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { level: number; msg: string; count: number });
      const warning = warnings.find((w) => w.level === 40 && /data dir/.test(w.msg));
      expect(warning?.count).toBeGreaterThanOrEqual(databaseUrl ? 2 : 4);
    } finally {
      await stop(child);
    }
  }, 180_000);
});
