import { createDeps, signApiKey } from '@hallpass/server';
import type { CliCommand } from '../context.ts';

export const keysCommand: CliCommand = (program, ctx) =>
  program
    .command('keys')
    .description('print the anon key (browsers), the service key (servers only: bypasses RLS) and the JWKS')
    .action(async () => {
      const deps = await createDeps(ctx.config());
      try {
        ctx.out(`HALLPASS_ANON_KEY=${await signApiKey(deps, 'anon')}`);
        ctx.out(`HALLPASS_SERVICE_KEY=${await signApiKey(deps, 'service_role')}`);
        ctx.out(`JWKS=${JSON.stringify({ keys: [deps.signing.publicJwk] })}`);
      } finally {
        await deps.db.close();
      }
    });
