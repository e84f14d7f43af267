import { Scalekit } from '@scalekit-sdk/node';
import { createApiClient } from '../src/scalekit/clients.service.ts';
import type { TestServer } from './harness.ts';

/** An API client created through the service (as the CLI does) and an SDK instance using it. */
export async function sdkFor(server: TestServer, options: { name?: string; url?: string; tenant?: string } = {}) {
  const { client, secret } = await createApiClient(server.deps, { name: options.name ?? 'shop-backend', tenant: options.tenant });
  return { client, secret, scalekit: new Scalekit(options.url ?? server.url, client.id, secret) };
}

/** The SDK's exception as the caller sees it: class name, gRPC status and Hallpass's error code. */
export async function sdkError(p: Promise<unknown>): Promise<{ name: string; grpcStatus: number; httpStatus: number; errorCode: string | null }> {
  try {
    await p;
  } catch (err) {
    const e = err as { constructor: { name: string }; grpcStatus: number; httpStatus: number; errorCode: string | null };
    return { name: e.constructor.name, grpcStatus: e.grpcStatus, httpStatus: e.httpStatus, errorCode: e.errorCode };
  }
  throw new Error('expected the call to fail');
}

export const linkTokenOf = (link: string | null) => new URL(link!).searchParams.get('link_token')!;
