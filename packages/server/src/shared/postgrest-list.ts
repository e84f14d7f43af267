/**
 * Splits a PostgREST-style list (`a,b,"c,d"`) on commas outside double quotes, keeping quotes and
 * escapes in the items for the caller to interpret. Returns null when a quote is left open. Shared
 * by the data API's query parser and the realtime filter parser, which speak the same dialect.
 */
export function splitQuotedList(s: string): string[] | null {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch === '\\' && quoted && i + 1 < s.length) {
      cur += ch + s[++i];
      continue;
    }
    if (ch === '"') quoted = !quoted;
    if (ch === ',' && !quoted) {
      out.push(cur);
      cur = '';
    } else {
      cur += ch;
    }
  }
  if (quoted) return null;
  out.push(cur);
  return out;
}
