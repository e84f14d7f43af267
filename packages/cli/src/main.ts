// The only module that reads process.env (and argv): the config is built from env once, on the first
// command that needs it, so `--help` works without a valid configuration.
import { loadConfig, type Config } from '@hallpass/server';
import { createProgram, reportFailure } from './program.ts';

let config: Readonly<Config> | undefined;
const program = createProgram({
  config: () => (config ??= loadConfig(process.env)),
  out: (line) => console.log(line),
  progress: (line) => console.error(line),
});

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(reportFailure(err));
  process.exit(1);
});
