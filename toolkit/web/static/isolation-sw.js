// The page's service worker: it gives the site the two headers that make a page cross-origin
// isolated (which WebAssembly threads need) when the server sends none. It adds them to the
// site's own responses only and changes nothing else; isolation.js registers it.
//
// COEP is require-corp, not credentialless: every file the page loads is the site's own, so
// nothing needs a Cross-Origin-Resource-Policy, and require-corp is the value every browser
// with threads supports (credentialless is not in Safari).
const ISOLATION_HEADERS = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
};

// Control the open page at once: it reloads once to be isolated (isolation.js), not twice.
self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("fetch", (event) => {
  // Another origin's request is the browser's to make, as if there were no service worker.
  if (new URL(event.request.url).origin !== self.location.origin) return;
  event.respondWith(fetch(event.request).then(isolated));
});

/** `response` with the isolation headers when it is the site's own (a "basic" response:
 * same-origin, not a redirect or an opaque one, which must pass as they are). */
function isolated(response) {
  if (response.type !== "basic") return response;
  const headers = new Headers(response.headers);
  for (const [name, value] of Object.entries(ISOLATION_HEADERS)) headers.set(name, value);
  return new Response(response.body, {
    status: response.status, statusText: response.statusText, headers,
  });
}
