// Cross-origin isolation for the page, which WebAssembly threads need (SharedArrayBuffer). A
// server may send the headers itself (`spamkit web --serve`); a plain static server does not,
// and then isolation-sw.js adds them once it controls the page: after one reload, the first
// time. Where neither works, the page runs one thread and says why.

// In sessionStorage: this tab has reloaded once for the service worker (never twice).
const RELOADED = "spamkit-isolation-reloaded";

/** {isolated: true}, or {isolated: false, why}; may instead reload the page, once, and then
 * never resolves. */
export async function crossOriginIsolation() {
  if (globalThis.crossOriginIsolated) {
    storage((s) => s.removeItem(RELOADED));  // a later uncontrolled load may reload once again
    return { isolated: true };
  }
  const workers = navigator.serviceWorker;
  if (!workers) {
    return notIsolated("this browser gives it no service worker (they need https or localhost)");
  }
  const { registration, why } = await register(workers);
  if (!registration) return notIsolated(`its service worker could not be registered${why}`);
  if (workers.controller) {
    return notIsolated("its service worker's headers did not isolate it (an older browser, or "
      + "a page inside another site's page)");
  }
  if (!firstReload()) {
    return notIsolated("its service worker does not control it (Shift+Reload, or the "
      + "browser's developer tools bypass it)");
  }
  if (!await activated(registration)) return notIsolated("its service worker did not start");
  location.reload();
  return new Promise(() => {});  // the page is reloading
}

function notIsolated(why) {
  return { isolated: false, why };
}

/** {registration} of isolation-sw.js, or {why} not (": " and the browser's reason, or ""
 * where the browser gave none, as where something blocks service workers). */
async function register(workers) {
  try {
    const registration = await workers.register(new URL("isolation-sw.js", import.meta.url));
    return { registration, why: "" };
  } catch (e) {
    return { why: `: ${e.message}` };
  }
}

/** Whether the registration's worker becomes active (its install may fail instead). */
function activated(registration) {
  const worker = registration.installing ?? registration.waiting ?? registration.active;
  return new Promise((resolve) => {
    const settled = () => {
      if (worker.state === "activated" || worker.state === "redundant") {
        resolve(worker.state === "activated");
      }
    };
    worker.addEventListener("statechange", settled);
    settled();
  });
}

/** Whether this tab may reload for the service worker: the first time only, and never where
 * sessionStorage cannot remember that it did. */
function firstReload() {
  return storage((s) => {
    if (s.getItem(RELOADED)) return false;
    s.setItem(RELOADED, "1");
    return true;
  }) ?? false;
}

/** `use(sessionStorage)`, or undefined where the browser refuses the page storage. */
function storage(use) {
  try {
    return use(sessionStorage);
  } catch {
    return undefined;
  }
}
