import { DataDirInUseError } from '@hallpass/db';
import { BackupError, ConfigError } from '@hallpass/server';
import { Command } from 'commander';
import { commands } from './commands/index.ts';
import type { CliContext } from './context.ts';

export function createProgram(ctx: CliContext): Command {
  const program = new Command('hallpass')
    .description('Hallpass: passwordless sign-in you host yourself. Settings come from environment variables (see README).')
    .showHelpAfterError()
    .enablePositionalOptions();
  for (const add of commands) add(program, ctx);
  return program;
}

/** The one line an operator reads when a command fails. */
export function reportFailure(err: unknown): string {
  if (err instanceof ConfigError) return err.message;
  if (err instanceof BackupError) return `error (${err.code}): ${err.message}`;
  if (err instanceof DataDirInUseError) {
    return (
      `error: ${err.message}.\n` +
      'PGlite is one process: stop that server first, or let it do the work (backups: set BACKUP_SCHEDULE and it takes, verifies and prunes them itself).'
    );
  }
  return err instanceof Error ? `error: ${err.stack ?? err.message}` : `error: ${String(err)}`;
}
