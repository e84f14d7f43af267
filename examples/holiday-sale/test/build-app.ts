// Vitest global setup: builds the example once before any test file, so the browser tests run the
// same production bundle `npm start` serves. Vite builds it in about a second.
import { fileURLToPath } from 'node:url';
import { build } from 'vite';

export default async function setup(): Promise<void> {
  const root = fileURLToPath(new URL('..', import.meta.url));
  // Vitest sets NODE_ENV=test, which would give React's development build.
  const before = process.env.NODE_ENV;
  process.env.NODE_ENV = 'production';
  try {
    await build({ root, mode: 'production', logLevel: 'warn', configFile: `${root}/vite.config.ts` });
  } finally {
    process.env.NODE_ENV = before;
  }
}
