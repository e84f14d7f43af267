// Bundle sizes (gzipped) of what browsers download: the SDK, the React package and the example's
// first load. Targets from issue 5: SDK under 25 KB without the realtime client (which loads on first
// subscribe, as its own chunk), example first load under 150 KB.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build, type Rollup } from 'vite';

const root = fileURLToPath(new URL('..', import.meta.url));
const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;
const gz = (code: string | Uint8Array) => gzipSync(code, { level: 9 }).length;

async function library(entry: string, external: string[]): Promise<Rollup.OutputChunk[]> {
  const out = (await build({
    root,
    configFile: false,
    logLevel: 'silent',
    mode: 'production',
    define: { 'process.env.NODE_ENV': '"production"' },
    build: {
      write: false,
      minify: true,
      lib: { entry: `${root}${entry}`, formats: ['es'], fileName: 'index' },
      rollupOptions: { external: (id) => external.some((e) => id === e || id.startsWith(`${e}/`)) },
    },
  })) as Rollup.RollupOutput[];
  return out[0]!.output.filter((o): o is Rollup.OutputChunk => o.type === 'chunk');
}

function report(label: string, bytes: number, target?: number): boolean {
  const ok = target === undefined || bytes < target * 1024;
  console.log(`${label.padEnd(44)} ${kb(bytes).padStart(9)} gz${target ? `  (target < ${target} KB: ${ok ? 'ok' : 'OVER'})` : ''}`);
  return ok;
}

let ok = true;
const sdk = await library('packages/client/src/index.ts', []);
const sdkMain = sdk.filter((c) => c.isEntry);
const sdkLazy = sdk.filter((c) => !c.isEntry);
ok &&= report('@hallpass/client (without realtime)', sdkMain.reduce((n, c) => n + gz(c.code), 0), 25);
report('  + realtime client, loaded on first subscribe', sdkLazy.reduce((n, c) => n + gz(c.code), 0));

const react = await library('packages/react/src/index.ts', ['react', 'react-dom', '@hallpass/client']);
ok &&= report('@hallpass/react (without react, SDK)', react.reduce((n, c) => n + gz(c.code), 0), 15);

// The example as `npm start` serves it: what index.html loads before the app is interactive.
await build({ root: `${root}examples/holiday-sale`, logLevel: 'silent', mode: 'production' });
const dist = `${root}examples/holiday-sale/dist`;
const html = readFileSync(`${dist}/index.html`, 'utf8');
const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]!);
const firstLoad = gz(html) + assets.reduce((n, a) => n + gz(readFileSync(`${dist}${a}`)), 0);
ok &&= report('holiday-sale first load (html + js + css)', firstLoad, 150);

process.exit(ok ? 0 : 1);
