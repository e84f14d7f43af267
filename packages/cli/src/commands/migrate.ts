import { runMigrations } from '@hallpass/server';
import type { CliCommand } from '../context.ts';
import { withDatabase } from './open-database.ts';

export const migrateCommand: CliCommand = (program, ctx) =>
  program
    .command('migrate')
    .description("apply pending migrations (Hallpass's, then APP_MIGRATIONS_DIR's) without serving")
    .action(async () => {
      const config = ctx.config();
      ctx.progress('applying migrations');
      const applied = await withDatabase(config, (db) => runMigrations(db, config.appMigrationsDir));
      ctx.out(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
    });
