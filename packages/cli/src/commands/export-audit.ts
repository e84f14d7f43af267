import { exportAuditLog, systemClock } from '@hallpass/server';
import type { CliCommand } from '../context.ts';
import { withDatabase } from './open-database.ts';

export const exportAuditCommand: CliCommand = (program, ctx) =>
  program
    .command('export-audit')
    .description('write the audit log of every closed UTC day not yet exported as audit-YYYY-MM-DD.jsonl into AUDIT_EXPORT_DIR (written once, never rewritten)')
    .action(async () => {
      const config = ctx.config();
      const written = await withDatabase(config, (db) => exportAuditLog({ config, db, clock: systemClock }, ctx.progress));
      ctx.out(written.length ? `wrote ${written.join(', ')}` : 'nothing to export: every closed day is already exported');
    });
