import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import type { Deps } from '../deps.ts';
import { AppError } from '../shared/errors.ts';
import { resolveClientToken, type ClientIdentity } from './clients.service.ts';
import { PasswordlessService, PasswordlessType, TemplateType } from './gen/scalekit/v1/auth/passwordless_pb.ts';
import { toConnectError, toScalekitError } from './scalekit.errors.ts';
import { resendForClient, sendForClient, verifyForClient, type ScalekitSendResult } from './scalekit.service.ts';

/** Paths of the gRPC service: requests under it go to this handler, everything else to the app. */
export const grpcPathPrefix = `/${PasswordlessService.typeName}/`;

type GrpcDeps = Parameters<typeof sendForClient>[0] & Pick<Deps, 'log'>;

const bearer = (ctx: HandlerContext) => /^Bearer\s+(\S+)$/i.exec(ctx.requestHeader.get('authorization') ?? '')?.[1];

/** The calling client; Unauthenticated (the SDK then fetches a token and retries) when there is none. */
async function authenticate(deps: GrpcDeps, ctx: HandlerContext): Promise<ClientIdentity> {
  const token = bearer(ctx);
  const client = token ? await resolveClientToken(deps, token) : null;
  if (!client) throw new AppError('unauthenticated', { message: 'A valid access token from /oauth/token is required.' });
  return client;
}

const sendResponse = (r: ScalekitSendResult) => ({
  authRequestId: r.authRequestId,
  expiresAt: BigInt(r.expiresAt),
  expiresIn: r.expiresIn,
  passwordlessType: PasswordlessType[r.passwordlessType],
});

const templateName = (t: TemplateType | undefined) => (t === TemplateType.SIGNIN ? 'SIGNIN' : t === TemplateType.SIGNUP ? 'SIGNUP' : undefined);

/** Runs a method body; every failure leaves as a gRPC status from the one mapping (scalekit.errors.ts). */
async function call<T>(deps: GrpcDeps, credential: 'code' | 'link' | undefined, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ConnectError) throw err;
    throw toConnectError(toScalekitError(err, deps.log, credential));
  }
}

/**
 * Scalekit's `PasswordlessService` for @scalekit-sdk/node: gRPC only (the SDK's transport), served by
 * connect-node over HTTP/2 on the same port as the rest of Hallpass.
 */
export function scalekitGrpcHandler(deps: GrpcDeps): (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => void {
  const routes = (router: ConnectRouter) =>
    router.service(PasswordlessService, {
      sendPasswordlessEmail: (req, ctx) =>
        call(deps, undefined, async () => {
          const client = await authenticate(deps, ctx);
          if (req.template !== undefined && req.template !== TemplateType.UNSPECIFIED && !templateName(req.template)) {
            throw new AppError('invalid_request');
          }
          const sent = await sendForClient(
            deps,
            client,
            {
              email: req.email,
              template: templateName(req.template),
              magiclinkAuthUri: req.magiclinkAuthUri,
              state: req.state,
              expiresIn: req.expiresIn,
              templateVariables: req.templateVariables,
            },
            ctx.requestHeader.get('user-agent'),
          );
          return sendResponse(sent);
        }),
      resendPasswordlessEmail: (req, ctx) =>
        call(deps, undefined, async () => {
          const client = await authenticate(deps, ctx);
          return sendResponse(await resendForClient(deps, client, req.authRequestId, ctx.requestHeader.get('user-agent')));
        }),
      verifyPasswordlessEmail: (req, ctx) =>
        call(deps, req.authCredential.case === 'linkToken' ? 'link' : 'code', async () => {
          const client = await authenticate(deps, ctx);
          const v = await verifyForClient(deps, client, {
            code: req.authCredential.case === 'code' ? req.authCredential.value : undefined,
            linkToken: req.authCredential.case === 'linkToken' ? req.authCredential.value : undefined,
            authRequestId: req.authRequestId,
          });
          return {
            email: v.email,
            ...(v.state !== null ? { state: v.state } : {}),
            template: TemplateType[v.template],
            passwordlessType: PasswordlessType[v.passwordlessType],
          };
        }),
    });
  const handler = connectNodeAdapter({
    routes,
    grpc: true,
    grpcWeb: false,
    connect: false,
    // Larger than any valid request (30 template variables of 1 KB); the JSON API allows 16 KB.
    readMaxBytes: 64 * 1024,
    // The SDK sends 20 s deadlines; nothing here waits on SMTP (mail goes through the outbox).
    fallback: (_req, res) => {
      res.writeHead(404, { 'content-type': 'application/grpc', 'grpc-status': String(Code.Unimplemented) });
      res.end();
    },
  });
  return handler as (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => void;
}
