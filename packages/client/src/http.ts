import { errorFromResponse, HallpassError } from './errors.ts';

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface HttpOptions {
  /** Origin of the Hallpass server; '' means same origin as the page. */
  baseUrl: string;
  fetch: FetchLike;
}

export type Http = <T>(method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<T>;

/**
 * JSON over fetch with the session cookie. Cookies are HttpOnly: the SDK never sees a token, the
 * browser attaches them (`credentials: 'include'` also covers an API on another allowed origin).
 */
export function createHttp(opts: HttpOptions): Http {
  return async <T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> => {
    const init: RequestInit = { method, credentials: 'include', headers: { accept: 'application/json', ...headers } };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] = 'application/json';
    }
    let res: Response;
    try {
      res = await opts.fetch(/^https?:\/\//.test(path) ? path : opts.baseUrl + path, init);
    } catch (cause) {
      throw new HallpassError('network_error', 'Could not reach the server. Check your connection.', { cause });
    }
    if (!res.ok) throw await errorFromResponse(res);
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
  };
}
