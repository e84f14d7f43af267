#!/usr/bin/env node
// The only module that reads process.env and argv: `serve` (default), `migrate`, `keys`, `clients`.
import { ConfigError, loadConfig, redactConfig } from './config/config.ts';
import { createDeps, createLogger, exitOnSignals, runMigrations, startServer } from './server.ts';
import { signApiKey } from './sessions/api-keys.ts';
import { runClientsCommand } from './scalekit/clients.cli.ts';

async function main(command: string): Promise<void> {
  const config = loadConfig(process.env);
  switch (command) {
    case 'serve': {
      const server = await startServer(config);
      const log = server.deps.log;
      log.info({ config: redactConfig(config) }, 'configuration');
      const where = config.databaseUrl ? 'PostgreSQL server' : `embedded PGlite in ${config.dataDir}/data`;
      console.log(`Hallpass is listening on ${config.baseUrl} (bound to ${server.url}), database: ${where}`);
      if (config.mail.devMailbox) console.log(`No SMTP_URL set: sign-in mail goes to the dev mailbox at ${config.baseUrl}/dev/mailbox`);
      exitOnSignals(server);
      return;
    }
    case 'migrate': {
      const deps = await createDeps(config);
      const applied = await runMigrations(deps.db, config.appMigrationsDir);
      console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
      await deps.db.close();
      return;
    }
    case 'keys': {
      // Prints the API keys (anon: safe for browsers; service_role: server-side only) and the JWKS.
      const deps = await createDeps(config);
      console.log(`HALLPASS_ANON_KEY=${await signApiKey(deps, 'anon')}`);
      console.log(`HALLPASS_SERVICE_KEY=${await signApiKey(deps, 'service_role')}`);
      console.log(`JWKS=${JSON.stringify({ keys: [deps.signing.publicJwk] })}`);
      await deps.db.close();
      return;
    }
    case 'clients': {
      // API clients of the Scalekit API: create (prints the secret once), list, revoke, revoke-tokens.
      const deps = await createDeps(config, { log: createLogger({ logLevel: 'warn' }) });
      await runMigrations(deps.db, config.appMigrationsDir);
      const code = await runClientsCommand(deps, process.argv.slice(3), (line) => console.log(line));
      await deps.db.close();
      process.exitCode = code;
      return;
    }
    default:
      console.error(`unknown command "${command}"; use serve, migrate, keys or clients`);
      process.exit(2);
  }
}

main(process.argv[2] ?? 'serve').catch((err: unknown) => {
  if (err instanceof ConfigError) console.error(err.message);
  else console.error(err);
  process.exit(1);
});
