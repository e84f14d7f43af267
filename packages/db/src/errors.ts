/**
 * Whether `err` means the database could not be reached or dropped the connection, as opposed to a
 * statement that failed: a refused or timed-out connect, a connection cut mid-query, or the server
 * shutting down or starting up. Callers answer these with "try again" (503), never a 500.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { code, message } = err as { code?: unknown; message?: unknown };
  if (typeof code === 'string') {
    // Socket errors from connecting or from a connection the server closed.
    if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN'].includes(code)) return true;
    // SQLSTATE class 08 (connection exception), 57P01-57P03 (admin/crash shutdown, cannot connect now).
    if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03') return true;
  }
  // node-postgres reports these as plain Errors without a code.
  if (typeof message === 'string' && /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error)/.test(message)) return true;
  // AggregateError (several addresses refused, e.g. localhost on ::1 and 127.0.0.1).
  if (err instanceof AggregateError) return err.errors.some(isDatabaseUnavailable);
  return false;
}
