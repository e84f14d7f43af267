import type { Http } from './http.ts';

/** Options of a read through the data API. */
export interface SelectOptions {
  /** PostgREST `select` (columns and embedded relations). @default '*' */
  columns?: string;
  /** PostgREST filters, e.g. `{ offer_id: 'eq.3' }`. */
  filters?: Record<string, string>;
  /** e.g. `'ends_at.asc'`. */
  order?: string;
}

/**
 * A small slice of the data API (`/rest/v1`, the PostgREST dialect supabase-js speaks): enough for an
 * app's own tables. The anon key goes in `apikey`; who the user is comes from the session cookie,
 * and Postgres RLS decides which rows come back. For more, point supabase-js at the same URL.
 */
export function createDataApi(http: Http, restUrl: () => Promise<{ restUrl: string; anonKey: string }>) {
  const call = async <T>(method: string, table: string, query: URLSearchParams, body?: unknown, prefer?: string): Promise<T> => {
    const { restUrl: base, anonKey } = await restUrl();
    const headers: Record<string, string> = { apikey: anonKey };
    if (prefer) headers.prefer = prefer;
    const qs = query.toString();
    return http<T>(method, `${base}/${encodeURIComponent(table)}${qs ? `?${qs}` : ''}`, body, headers);
  };
  return {
    select<T = Record<string, unknown>>(table: string, opts: SelectOptions = {}): Promise<T[]> {
      const q = new URLSearchParams({ select: opts.columns ?? '*', ...opts.filters });
      if (opts.order) q.set('order', opts.order);
      return call<T[]>('GET', table, q);
    },
    insert<T = Record<string, unknown>>(table: string, rows: Record<string, unknown> | Record<string, unknown>[]): Promise<T[]> {
      return call<T[]>('POST', table, new URLSearchParams(), rows, 'return=representation');
    },
  };
}

export type DataApi = ReturnType<typeof createDataApi>;
