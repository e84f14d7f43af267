import { runMigrations } from '@hallpass/server';
import type { CliCommand } from '../context.ts';
import { openDatabase } from './open-database.ts';

export const migrateCommand: CliCommand = (program, ctx) =>
  program
    .command('migrate')
    .description("apply pending migrations (Hallpass's, then APP_MIGRATIONS_DIR's) without serving")
    .action(async () => {
      const config = ctx.config();
      const db = await openDatabase(config);
      try {
        ctx.progress('applying migrations');
        const applied = await runMigrations(db, config.appMigrationsDir);
        ctx.out(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
      } finally {
        await db.close();
      }
    });
