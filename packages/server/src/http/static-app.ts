import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { Hono } from 'hono';
import type { AppEnv } from './context.ts';

const types: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

// Paths the server owns: an unknown one there is a JSON 404, never the app's page.
const apiPrefixes = ['/api/', '/auth/', '/rest/', '/realtime/', '/dev/', '/passwordless/', '/.well-known/'];

/** Whether `dir` holds a built app (an index.html). */
export function hasBuiltApp(dir: string | undefined): dir is string {
  return !!dir && existsSync(join(dir, 'index.html'));
}

/**
 * Serves a built single-page app (Vite's dist) from `root`: files as they are, and index.html for any
 * other page path so client-side routes load. Hashed assets are cached for a year; index.html never,
 * so a new build is picked up at once. The CSP stays strict: built scripts and styles are 'self'.
 */
export function staticAppRoutes(root: string) {
  const app = new Hono<AppEnv>();
  const base = normalize(root + sep);

  const file = async (path: string) => {
    const full = normalize(join(base, decodeURIComponent(path)));
    if (!full.startsWith(base)) return null; // ../ out of the root
    const info = await stat(full).catch(() => null);
    return info?.isFile() ? full : null;
  };

  app.get('*', async (c, next) => {
    const path = c.req.path;
    if (apiPrefixes.some((p) => path.startsWith(p))) return next();
    let full = await file(path);
    if (!full && !extname(path)) full = join(base, 'index.html');
    if (!full) return next();
    const body = await readFile(full);
    const type = types[extname(full)] ?? 'application/octet-stream';
    const immutable = path.startsWith('/assets/');
    c.header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
    c.header('content-type', type);
    return c.body(body);
  });
  return app;
}
