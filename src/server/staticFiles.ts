// Serves the built web app (dist/client) with correct content types and no way out of its root.
import { createReadStream, type Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, resolve, sep } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.wasm': 'application/wasm',
  '.mp3': 'audio/mpeg',
  '.ogg': 'audio/ogg',
  '.wav': 'audio/wav',
};

const PLACEHOLDER = `<!doctype html><html><head><meta charset="utf-8"><title>peerchat relay</title></head>
<body><h1>peerchat relay is running</h1><p>The web app is not built. Run <code>npm run build:client</code>.</p></body></html>`;

export function contentTypeOf(path: string): string {
  return TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream';
}

async function fileAt(path: string): Promise<Stats | null> {
  try {
    const s = await stat(path);
    return s.isFile() ? s : null;
  } catch {
    return null;
  }
}

/**
 * Answers GET/HEAD for files under `root`. `/` is index.html; a path without an extension that names no file
 * also gets index.html (client-side routes). Without a built index.html, a placeholder page is served.
 */
export function createStaticHandler(root: string | null) {
  const base = root ? resolve(root) : null;
  return async (req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    let rel: string;
    try {
      rel = decodeURIComponent(pathname);
    } catch {
      res.writeHead(400).end();
      return;
    }
    // Refuse rather than normalize: no NUL, no backslash (Windows separators), no dot segments.
    if (rel.includes('\0') || rel.includes('\\') || rel.split('/').some((seg) => seg === '..' || seg === '.')) {
      res.writeHead(400).end();
      return;
    }
    const headers = { 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' };
    let path: string | null = null;
    let st: Stats | null = null;
    if (base) {
      const wanted = resolve(base, `.${rel === '/' ? '/index.html' : rel}`);
      // Defence in depth after the segment check: the resolved path must stay inside the root.
      if (wanted.startsWith(base + sep)) {
        st = await fileAt(wanted);
        if (st) path = wanted;
      }
      if (!path && extname(rel) === '') {
        const index = resolve(base, 'index.html');
        st = await fileAt(index);
        if (st) path = index;
      }
    }
    if (!path || !st) {
      if (rel === '/' || extname(rel) === '') {
        res.writeHead(200, { ...headers, 'content-type': TYPES['.html']!, 'cache-control': 'no-cache' });
        res.end(req.method === 'HEAD' ? undefined : PLACEHOLDER);
        return;
      }
      res.writeHead(404, { ...headers, 'content-type': 'text/plain; charset=utf-8' }).end('not found');
      return;
    }
    res.writeHead(200, {
      ...headers,
      'content-type': contentTypeOf(path),
      'content-length': st.size,
      // Vite puts content-hashed files under /assets/: they never change under the same name.
      'cache-control': rel.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const stream = createReadStream(path);
    stream.on('error', () => res.destroy());
    stream.pipe(res);
  };
}
