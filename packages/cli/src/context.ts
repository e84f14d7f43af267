import type { Config } from '@hallpass/server';
import type { Command } from 'commander';

/** What every command gets: the config (read from env once, on first use) and where to write. */
export interface CliContext {
  config(): Readonly<Config>;
  /** Results, for scripts: stdout. */
  out(line: string): void;
  /** Progress on long work: stderr, so stdout stays clean. */
  progress(line: string): void;
}

/** One command: adds itself to the program. A new command is one file and one line in commands/index.ts. */
export type CliCommand = (program: Command, ctx: CliContext) => void;
