// Serves www/ on 127.0.0.1 with a strict Content-Security-Policy: no inline script, no eval,
// only 'wasm-unsafe-eval' for the wasm module. No dependencies beyond Node itself.
//
//   node scripts/serve.mjs [--port N]     (default 8000; if taken, an OS-chosen port)
//
// The e2e tests import startServer() so that they run under the same headers.
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self'",
  "img-src 'self' data:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

const ROOT = resolve(fileURLToPath(new URL('../www', import.meta.url)));

async function handle(req, res, root) {
  const url = new URL(req.url, 'http://localhost');
  let path = normalize(join(root, decodeURIComponent(url.pathname)));
  if (path !== root && !path.startsWith(root + sep)) {
    res.writeHead(403).end('forbidden');
    return;
  }
  try {
    if ((await stat(path)).isDirectory()) path = join(path, 'index.html');
    const body = await readFile(path);
    res.writeHead(200, {
      'Content-Type': TYPES[extname(path)] ?? 'application/octet-stream',
      'Content-Security-Policy': CSP,
      'X-Content-Type-Options': 'nosniff',
      // The element and the iframe are embedded in other people's pages: modules, styles and
      // the wasm are fetched across origins.
      'Access-Control-Allow-Origin': '*',
      'Cache-Control': 'no-cache',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  } catch {
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
  }
}

/** Starts the server; resolves to {url, close}. Port 0 lets the OS choose. */
export function startServer({ port = 8000, root = ROOT } = {}) {
  return new Promise((resolvePromise, reject) => {
    const server = createServer((req, res) => {
      handle(req, res, root).catch(() => res.writeHead(500).end());
    });
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const { port: actual } = server.address();
      resolvePromise({
        url: `http://127.0.0.1:${actual}/`,
        close: () => new Promise((done) => server.close(done)),
      });
    });
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--port');
  const wanted = i > 0 ? Number(process.argv[i + 1]) : 8000;
  let server;
  try {
    server = await startServer({ port: wanted });
  } catch (err) {
    if (err.code !== 'EADDRINUSE') throw err;
    console.log(`Port ${wanted} is taken; using a free one.`);
    server = await startServer({ port: 0 });
  }
  console.log(`Brokerlab playground: ${server.url}`);
  console.log('Press Ctrl+C to stop.');
}
