import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Queryable } from '@hallpass/db';
import { Cron } from 'croner';
import type { Deps } from '../deps.ts';
import { exportAuditLog } from './audit-export.ts';
import { takeBackup } from './backup.service.ts';
import { verifyBackup } from './backup.verify.ts';

/** What one scheduled run did on this instance. */
export type ScheduledBackupOutcome =
  | { status: 'ok'; slot: Date; file: string; durationMs: number }
  | { status: 'failed'; slot: Date; stage: 'backup' | 'verify' | 'audit-export'; error: Error; durationMs: number }
  | { status: 'skipped'; slot: Date; reason: 'taken by another instance' | 'previous run still going' };

export interface BackupSchedulerHooks {
  /**
   * Called after every scheduled run, whatever happened: the place to count backups and failures
   * in metrics (a failed backup or verify is also logged at error level).
   */
  onRun?(outcome: ScheduledBackupOutcome): void;
}

export interface BackupScheduler {
  /** Runs the job for `slot` now, as the schedule would (tests and `--now`). */
  runSlot(slot: Date): Promise<ScheduledBackupOutcome>;
  stop(): Promise<void>;
}

// Any fixed 64-bit number: every instance takes the same lock while it backs up.
const backupLockKey = 7_316_480_113;

/**
 * Which scheduled times were taken (hallpass.backup_runs, migration 0022), so three instances firing
 * at one time make one backup: the first to insert the slot takes it.
 */
async function claimSlot(q: Queryable, slot: Date, instance: string): Promise<boolean> {
  const { rows } = await q.query('insert into hallpass.backup_runs (slot, instance) values ($1, $2) on conflict (slot) do nothing returning slot', [
    slot,
    instance,
  ]);
  return rows.length > 0;
}

async function recordRun(q: Queryable, outcome: ScheduledBackupOutcome): Promise<void> {
  if (outcome.status === 'skipped') return;
  await q.query('update hallpass.backup_runs set finished_at = now(), status = $2, file = $3, error = $4 where slot = $1', [
    outcome.slot,
    outcome.status === 'ok' ? 'ok' : `failed: ${outcome.stage}`,
    outcome.status === 'ok' ? outcome.file : null,
    outcome.status === 'failed' ? outcome.error.message : null,
  ]);
}

/**
 * Takes backups on `config.backup.schedule` (cron, UTC) inside the server: backup, verify-backup of
 * it, the audit-log export, then retention. With several instances on one PostgreSQL, one takes
 * each scheduled time: the slot is claimed in `hallpass.backup_runs` under an advisory lock held
 * while it works, so no two backups run at once either. The embedded database is one process, so
 * its server is the only one that can copy it.
 */
export function startBackupScheduler(deps: Pick<Deps, 'config' | 'db' | 'log' | 'clock'>, hooks: BackupSchedulerHooks = {}): BackupScheduler {
  const { config, db, log } = deps;
  const instance = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  let running: Promise<unknown> | null = null;

  const work = async (slot: Date): Promise<ScheduledBackupOutcome> => {
    const started = Date.now();
    const failed = (stage: 'backup' | 'verify' | 'audit-export', error: unknown): ScheduledBackupOutcome => ({
      status: 'failed',
      slot,
      stage,
      error: error instanceof Error ? error : new Error(String(error)),
      durationMs: Date.now() - started,
    });
    let file: string;
    try {
      file = (await takeBackup(deps)).files.payload;
    } catch (err) {
      return failed('backup', err);
    }
    try {
      await verifyBackup(config, file);
    } catch (err) {
      return failed('verify', err);
    }
    try {
      await exportAuditLog(deps);
    } catch (err) {
      return failed('audit-export', err);
    }
    return { status: 'ok', slot, file, durationMs: Date.now() - started };
  };

  const runClaimed = async (slot: Date): Promise<ScheduledBackupOutcome> => {
    if (db.kind === 'pglite') {
      // One process: nobody else can claim; the slot row still records what happened.
      if (!(await db.transaction((tx) => claimSlot(tx, slot, instance)))) return { status: 'skipped', slot, reason: 'taken by another instance' };
      const outcome = await work(slot);
      await recordRun(db, outcome);
      return outcome;
    }
    return db.transaction(async (tx) => {
      const { rows } = await tx.query<{ got: boolean }>('select pg_try_advisory_xact_lock($1) as got', [backupLockKey]);
      if (!rows[0]!.got || !(await claimSlot(tx, slot, instance))) return { status: 'skipped', slot, reason: 'taken by another instance' } as const;
      const outcome = await work(slot);
      await recordRun(tx, outcome);
      return outcome;
    });
  };

  const runSlot = async (slot: Date): Promise<ScheduledBackupOutcome> => {
    if (running) return { status: 'skipped', slot, reason: 'previous run still going' };
    const p = runClaimed(slot);
    running = p.catch(() => {});
    let outcome: ScheduledBackupOutcome;
    try {
      outcome = await p;
    } catch (err) {
      outcome = { status: 'failed', slot, stage: 'backup', error: err as Error, durationMs: 0 };
    } finally {
      running = null;
    }
    if (outcome.status === 'failed') log.error({ err: outcome.error, stage: outcome.stage, slot }, `scheduled backup failed at ${outcome.stage}`);
    else if (outcome.status === 'ok') log.info({ file: outcome.file, durationMs: outcome.durationMs }, 'backup taken and verified');
    else log.debug({ slot, reason: outcome.reason }, 'scheduled backup skipped');
    hooks.onRun?.(outcome);
    return outcome;
  };

  const cron = config.backup.schedule
    ? new Cron(config.backup.schedule, { timezone: 'UTC' }, () => {
        // Every instance names the run by its scheduled time, not by when its timer fired.
        const slot = cron!.previousRuns(1, new Date(deps.clock.now().getTime() + 1000))[0] ?? deps.clock.now();
        void runSlot(slot);
      })
    : undefined;

  return {
    runSlot,
    async stop() {
      cron?.stop();
      await running;
    },
  };
}
