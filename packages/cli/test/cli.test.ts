import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lockDataDir } from '@hallpass/db';
import { createTestDatabase, testBackend, type TestDatabase } from '@hallpass/db/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../bin/hallpass.js', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function hallpass(args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'silent', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

let dataDir: string;
let env: Record<string, string>;
let database: TestDatabase | undefined;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'hallpass-cli-'));
  env = { HALLPASS_DATA_DIR: dataDir, NODE_ENV: 'test' };
  if (testBackend() === 'postgres') {
    database = await createTestDatabase();
    await database.db.close();
    env.DATABASE_URL = database.url!;
  }
});
afterAll(async () => {
  await database?.drop();
  await rm(dataDir, { recursive: true, force: true });
});

describe('the hallpass command', () => {
  it('lists its commands, each with --help, and exits non-zero on a usage error', async () => {
    const help = await hallpass(['--help'], env);
    expect(help.code).toBe(0);
    for (const c of ['serve', 'migrate', 'keys', 'backup', 'restore', 'verify-backup']) expect(help.stdout).toContain(c);
    expect((await hallpass(['restore', '--help'], env)).stdout).toContain('--force');
    const missing = await hallpass(['restore'], env);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/missing required argument/);
  }, 60_000);

  it('migrates, backs up (progress on stderr, the file on stdout) and verifies the backup', async () => {
    const migrate = await hallpass(['migrate'], env);
    expect(migrate.code, migrate.stderr).toBe(0);
    const backup = await hallpass(['backup'], env);
    expect(backup.code, backup.stderr).toBe(0);
    expect(backup.stderr).toMatch(/backup complete/);
    const file = backup.stdout.trim();
    expect(file).toMatch(new RegExp(`^${dataDir}/backups/hallpass-\\d{8}T\\d{9}Z\\.(pgdump|tar\\.gz)$`));
    const verify = await hallpass(['verify-backup'], env);
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toBe(`ok: ${file}\n`);
    const refused = await hallpass(['restore', file], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/target_not_empty/);
  }, 180_000);

  it.runIf(testBackend() === 'pglite')('refuses to back up an embedded database a running server holds, and says what to do', async () => {
    const release = lockDataDir(join(dataDir, 'data'));
    try {
      const run = await hallpass(['backup'], env);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/is open in process \d+/);
      expect(run.stderr).toMatch(/BACKUP_SCHEDULE/);
    } finally {
      release();
    }
  }, 60_000);
});
