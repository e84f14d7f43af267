import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// `npm run build` writes dist/, which the Hallpass server serves at `/` (APP_STATIC_DIR). `npm run dev`
// proxies the API to a server on :3000 so cookies stay same-origin.
const api = 'http://127.0.0.1:3000';
export default defineConfig({
  plugins: [react()],
  build: { target: 'es2022', sourcemap: false, reportCompressedSize: false },
  server: {
    proxy: {
      '/api': api,
      '/passwordless': api,
      '/dev': api,
      '/rest': api,
      '/realtime': { target: api.replace('http', 'ws'), ws: true },
    },
  },
});
