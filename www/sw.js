// The offline copy of the page: a service worker that keeps this build's own files (the page, its
// scripts, the engine's worker and its wasm module) in the Cache API and serves them from there,
// so the engine restarts (Cancel, a device switch) and the page reloads without the network.
// Only the page's own origin, only GET; nothing else is touched, and nothing of the user's
// (images, models: those live in OPFS) is ever cached here.
// webpack.config.js writes this build's small files (ASSETS: fetched again at install, ~0.1 MB)
// and its version into the two constants below. The 45 MB wasm module is not among them: the
// page starts the engine once this worker controls it, so the module is fetched once, through
// here, and kept as it passes (measured: a first visit fetched it three times before).
const ASSETS = self.MEDFOCUS_ASSETS;
const VERSION = self.MEDFOCUS_VERSION;
const CACHE = `medfocus-page-${VERSION}`;

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(ASSETS))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((name) => name.startsWith("medfocus-page-") && name !== CACHE).map((name) => caches.delete(name))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const { request } = event;
  if (request.method !== "GET" || new URL(request.url).origin !== self.location.origin) return;
  if (request.mode === "navigate") {
    // The page itself: a new build when the host has one, this build's copy when offline.
    event.respondWith(fetch(request).catch(() => caches.match("./", { cacheName: CACHE })));
    return;
  }
  // The build's files are named by their content: a cached copy is always the right one, and a
  // file fetched once is kept.
  event.respondWith(
    caches.match(request, { cacheName: CACHE }).then(
      (cached) =>
        cached ??
        fetch(request).then((response) => {
          if (response.ok && response.type === "basic") {
            const copy = response.clone();
            event.waitUntil(caches.open(CACHE).then((cache) => cache.put(request, copy)));
          }
          return response;
        }),
    ),
  );
});
