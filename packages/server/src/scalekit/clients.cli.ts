import { parseArgs } from 'node:util';
import type { Deps } from '../deps.ts';
import { createApiClient, listApiClients, revokeApiClient, revokeApiClientTokens } from './clients.service.ts';

const usage = `usage: hallpass clients create --name NAME [--tenant SLUG] [--json]
       hallpass clients list [--json]
       hallpass clients revoke ID
       hallpass clients revoke-tokens ID`;

/**
 * `hallpass clients ...`: API clients for the Scalekit API. `create` prints the secret once (it is
 * stored only as a digest). Returns the process exit code.
 */
export async function runClientsCommand(deps: Pick<Deps, 'db' | 'keys' | 'clock' | 'config'>, argv: string[], print: (line: string) => void): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    options: { name: { type: 'string' }, tenant: { type: 'string' }, json: { type: 'boolean', default: false } },
    allowPositionals: true,
    strict: true,
  });
  switch (sub) {
    case 'create': {
      if (!values.name) break;
      const { client, secret } = await createApiClient(deps, { name: values.name, tenant: values.tenant });
      if (values.json) print(JSON.stringify({ ...client, secret }));
      else {
        print(`client_id:     ${client.id}`);
        print(`client_secret: ${secret}`);
        print('The secret is shown only now: store it (e.g. as SCALEKIT_CLIENT_SECRET) before closing this window.');
      }
      return 0;
    }
    case 'list': {
      const clients = await listApiClients(deps);
      if (values.json) print(JSON.stringify(clients));
      else for (const c of clients) print([c.id, c.name, c.tenantId, c.createdAt, c.revokedAt ? `revoked ${c.revokedAt}` : 'active'].join('\t'));
      return 0;
    }
    case 'revoke':
    case 'revoke-tokens': {
      const id = positionals[0];
      if (!id) break;
      if (sub === 'revoke') {
        const done = await revokeApiClient(deps, id);
        print(done ? `revoked ${id}: its tokens stopped working` : `no active client ${id}`);
        return done ? 0 : 1;
      }
      print(`ended ${await revokeApiClientTokens(deps, id)} token(s) of ${id}`);
      return 0;
    }
  }
  print(usage);
  return 2;
}
