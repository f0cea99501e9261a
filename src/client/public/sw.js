// peerchat's service worker: just enough to open the app with the relay down. The history is in
// IndexedDB; this only keeps the app shell.
// - Navigations: network first (a new deploy is used on the next load, no "update available" prompt),
//   falling back to the cached shell.
// - /assets/*: Vite's content-hashed files, cache first; pruned to the current shell's set on each update.
// - Never cached: /trpc, /peerjs, /.well-known, /metrics and anything not GET.
const CACHE = 'peerchat-shell-v1';
const SHELL = ['/', '/manifest.webmanifest', '/icon.svg', '/icon-192.png', '/icon-512.png'];

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      await cache.addAll(SHELL);
      await cacheAssetsOf(cache, await cache.match('/'));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const k of await caches.keys()) if (k !== CACHE) await caches.delete(k);
      // The navigation's request starts while this worker starts up, not after it (navigation preload).
      await self.registration.navigationPreload?.enable();
      await self.clients.claim();
    })(),
  );
});

/** Puts the scripts and styles the shell page names into the cache, and drops assets it no longer names. */
async function cacheAssetsOf(cache, response) {
  if (!response) return;
  const html = await response.clone().text();
  const wanted = new Set([...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]));
  await Promise.all([...wanted].map((u) => cache.match(u).then((hit) => hit || cache.add(u))));
  for (const req of await cache.keys()) {
    const path = new URL(req.url).pathname;
    if (path.startsWith('/assets/') && !wanted.has(path) && wanted.size > 0) {
      // Lazy chunks are not named in the shell: keep those, drop only stale entry files.
      if (/\/assets\/index-/.test(path)) await cache.delete(req);
    }
  }
}

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  if (/^\/(trpc|peerjs|\.well-known|metrics|healthz)/.test(url.pathname)) return;
  if (req.mode === 'navigate') {
    event.respondWith(
      (async () => {
        try {
          const fresh = (await event.preloadResponse) || (await fetch(req));
          if (fresh.ok) {
            // The page gets the response now; the shell is cached beside it (waiting for that write
            // before answering put a cache write on the path of every navigation).
            const forShell = fresh.clone();
            const forAssets = fresh.clone();
            event.waitUntil(
              caches.open(CACHE).then(async (cache) => {
                await cache.put('/', forShell);
                await cacheAssetsOf(cache, forAssets);
              }),
            );
          }
          return fresh;
        } catch {
          return (await caches.match('/', { cacheName: CACHE })) || Response.error();
        }
      })(),
    );
    return;
  }
  if (url.pathname.startsWith('/assets/') || SHELL.includes(url.pathname)) {
    event.respondWith(
      (async () => {
        const cache = await caches.open(CACHE);
        const hit = await cache.match(req);
        if (hit) return hit;
        const fresh = await fetch(req);
        if (fresh.ok) await cache.put(req, fresh.clone());
        return fresh;
      })(),
    );
  }
});
