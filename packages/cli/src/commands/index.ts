import type { CliCommand } from '../context.ts';
import { backupCommand } from './backup.ts';
import { clientsCommand } from './clients.ts';
import { exportAuditCommand } from './export-audit.ts';
import { keysCommand } from './keys.ts';
import { migrateCommand } from './migrate.ts';
import { restoreCommand } from './restore.ts';
import { serveCommand } from './serve.ts';
import { verifyBackupCommand } from './verify-backup.ts';

/** Every command, in the order `hallpass --help` lists them. */
export const commands: readonly CliCommand[] = [
  serveCommand,
  migrateCommand,
  keysCommand,
  backupCommand,
  restoreCommand,
  verifyBackupCommand,
  exportAuditCommand,
  clientsCommand,
];
