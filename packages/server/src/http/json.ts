import type { Context } from 'hono';
import { z } from 'zod';
import { AppError } from '../shared/errors.ts';
import { normalizeEmail } from '../shared/email.ts';

/** A zod string that normalises an email address, failing with the stable `invalid_email` code. */
export const emailField = z.string().transform((value, ctx) => {
  const email = normalizeEmail(value);
  if (!email) {
    ctx.addIssue({ code: 'custom', message: 'not a valid email address', params: { hallpass: 'invalid_email' } });
    return z.NEVER;
  }
  return email;
});

/**
 * Reads a JSON body and validates it against a strict schema. Each failure has its own code:
 * not JSON content -> unsupported_media_type, unparsable -> invalid_json, a bad email -> invalid_email,
 * anything else (missing field, wrong type, unknown field) -> invalid_request with the issues listed.
 */
export async function readJson<S extends z.ZodType>(c: Context, schema: S): Promise<z.output<S>> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/json\s*(;|$)/i.test(type)) throw new AppError('unsupported_media_type');
  let body: unknown;
  try {
    body = JSON.parse(await c.req.text());
  } catch {
    throw new AppError('invalid_json');
  }
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues;
  if (issues.some((i) => i.code === 'custom' && (i as { params?: { hallpass?: string } }).params?.hallpass === 'invalid_email')) {
    throw new AppError('invalid_email');
  }
  throw new AppError('invalid_request', {
    details: { issues: issues.slice(0, 10).map((i) => ({ path: i.path.join('.'), message: i.message })) },
  });
}
