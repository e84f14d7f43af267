import { describe, expect, it } from 'vitest';
import { errorFromResponse, HallpassError, parseRetryAfter } from './errors.ts';

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });

describe('HallpassError from a server response', () => {
  it('carries the code, status and attempts left of otp_invalid', async () => {
    const err = await errorFromResponse(json(400, { error: { code: 'otp_invalid', message: 'no', attemptsRemaining: 3 } }));
    expect(err).toBeInstanceOf(HallpassError);
    expect([err.code, err.status, err.attemptsRemaining]).toEqual(['otp_invalid', 400, 3]);
  });

  it('takes Retry-After from the header of a 429', async () => {
    const err = await errorFromResponse(json(429, { error: { code: 'email_rate_limited_minute', message: 'slow' } }, { 'retry-after': '42' }));
    expect([err.code, err.status, err.retryAfter]).toEqual(['email_rate_limited_minute', 429, 42]);
  });

  it('reports a body that is not ours as unexpected_response', async () => {
    const err = await errorFromResponse(new Response('<html>bad gateway</html>', { status: 502 }));
    expect([err.code, err.status]).toEqual(['unexpected_response', 502]);
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    expect(parseRetryAfter('7')).toBe(7);
    expect(parseRetryAfter(new Date(Date.UTC(2030, 0, 1, 0, 0, 30)).toUTCString(), Date.UTC(2030, 0, 1))).toBe(30);
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});
