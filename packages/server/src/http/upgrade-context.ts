import type { IncomingMessage } from 'node:http';
import { Context } from 'hono';

/**
 * An HTTP upgrade request (a WebSocket handshake, which never reaches the Hono app) as a Hono
 * context, so that what the HTTP side derives from a request (`clientIp`) is derived the same way,
 * by the same function, for sockets. Carries the headers and, as node-server does, the raw request.
 */
export function upgradeContext(req: IncomingMessage): Context {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (typeof value === 'string') headers.set(name, value);
    else if (value) for (const v of value) headers.append(name, v);
  }
  return new Context(new Request('http://localhost/', { headers }), { env: { incoming: req } });
}
