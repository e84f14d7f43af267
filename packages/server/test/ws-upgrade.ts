import WebSocket from 'ws';

export type Upgrade = { ws: WebSocket } | { status: number; retryAfter: string | undefined; body: any };

/** Tries a WebSocket upgrade; resolves with the open socket, or the refusal's status and JSON body. */
export function tryUpgrade(url: string, headers: Record<string, string> = {}): Promise<Upgrade> {
  const ws = new WebSocket(url, { headers });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body: JSON.parse(text) }));
    });
    ws.once('error', reject);
  });
}
