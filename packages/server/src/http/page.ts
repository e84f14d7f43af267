import { html, raw } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';

/** The shared look of the server's own pages (link confirm, dev mailbox, home). */
export function page(opts: { title: string; nonce: string | undefined; body: HtmlEscapedString | Promise<HtmlEscapedString>; script?: string }) {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${opts.title}</title>
<style nonce="${opts.nonce ?? ''}">
  :root { color-scheme: light dark; --accent: #0f62fe; }
  body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; min-height: 100vh; display: grid; place-items: center; background: Canvas; color: CanvasText; }
  main { width: min(92vw, 440px); padding: 32px; border-radius: 14px; box-shadow: 0 1px 3px #0002, 0 8px 24px #0001; background: Canvas; }
  main.wide { width: min(96vw, 960px); }
  h1 { font-size: 1.35rem; margin: 0 0 12px; }
  p { line-height: 1.5; }
  label { display: block; font-weight: 600; margin: 12px 0 6px; }
  input { font: inherit; width: 100%; box-sizing: border-box; padding: 10px 12px; border-radius: 8px; border: 1px solid #8888; }
  button, .button { font: inherit; display: inline-block; margin-top: 16px; padding: 10px 18px; border: 0; border-radius: 8px; background: var(--accent); color: #fff; cursor: pointer; text-decoration: none; }
  button.secondary { background: transparent; color: var(--accent); border: 1px solid var(--accent); }
  .error { color: #b3261e; }
  .muted { color: GrayText; font-size: .9rem; }
  table { border-collapse: collapse; width: 100%; font-size: .9rem; }
  td, th { text-align: left; padding: 8px; border-bottom: 1px solid #8884; vertical-align: top; }
  code { font-size: 1.1rem; letter-spacing: 2px; }
  pre { white-space: pre-wrap; font-size: .8rem; margin: 0; }
</style>
</head>
<body>
${opts.body}
${opts.script ? html`<script nonce="${opts.nonce ?? ''}">${raw(opts.script)}</script>` : ''}
</body>
</html>`;
}
