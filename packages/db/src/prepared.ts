/** Statement texts marked hot, each with the name it is prepared under on PostgreSQL connections. */
const names = new Map<string, string>();

/**
 * Marks a hot statement. On PostgreSQL it then runs as a named prepared statement: parsed and
 * planned once per pooled connection instead of on every call. PGlite runs it as before. Only for
 * fixed texts (a module-level constant), never text built per request: each stays prepared on every
 * connection for the connection's life.
 * @example const verifySql = prepared('select ... from hallpass.verify_codes($1, ...)');
 */
export function prepared(text: string): string {
  if (!names.has(text)) names.set(text, `hallpass_${names.size + 1}`);
  return text;
}

/** The prepared-statement name of a text marked by `prepared`, if it was. */
export function preparedName(text: string): string | undefined {
  return names.get(text);
}
