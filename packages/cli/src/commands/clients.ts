import { createDeps, createLogger, runClientsCommand, runMigrations } from '@hallpass/server';
import type { CliCommand } from '../context.ts';

export const clientsCommand: CliCommand = (program, ctx) =>
  program
    .command('clients')
    .description('API clients of the Scalekit API: create (prints the secret once), list, revoke, revoke-tokens')
    .argument('[args...]', 'the subcommand and its arguments')
    .allowUnknownOption()
    .action(async (args: string[]) => {
      const config = ctx.config();
      const deps = await createDeps(config, { log: createLogger({ logLevel: 'warn' }) });
      try {
        await runMigrations(deps.db, config.appMigrationsDir);
        process.exitCode = await runClientsCommand(deps, args, ctx.out);
      } finally {
        await deps.db.close();
      }
    });
