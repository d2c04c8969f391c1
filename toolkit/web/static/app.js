// The page's logic: load the bundle `spamkit web` copied into bundle/, check it, start the
// backend the browser supports, classify what is typed. Preprocessing is preprocess.js, the
// module the Node.js port shares.
import { crossOriginIsolation } from "./isolation.js";
import { checkManifest, classify, graphFiles, Tokenizer } from "./preprocess.js";

// onnxruntime-web's build for each backend; site.json says which graph each runs.
const BUILDS = { wasm: "./vendor/ort.wasm.min.mjs", webgpu: "./vendor/ort.webgpu.min.mjs" };
const NAMES = { wasm: "WebAssembly", webgpu: "WebGPU" };
// `?backend=wasm|webgpu`, `?graph=PRECISION` and `?threads=N` in the page's address ask for
// them (benchmarks/web_latency.py).
const asked = new URLSearchParams(location.search);

const $ = (id) => document.getElementById(id);

async function fetchBytes(name) {
  const response = await fetch(name);
  if (!response.ok) throw new Error(`${name}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function sha256(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The files' bytes from bundle/, checked against `sums` (the manifest's sha256, and the
 * site's for the files it made) where the browser can hash (WebCrypto exists only in secure
 * contexts: https or localhost). */
async function fetchChecked(sums, names) {
  const files = Object.fromEntries(
    await Promise.all(names.map(async (n) => [n, await fetchBytes(`bundle/${n}`)])));
  if (!globalThis.crypto?.subtle) return { files, checked: false };
  for (const name of names) {
    if (await sha256(files[name]) !== sums[name]) {
      throw new Error(`bundle/${name} does not match its checksum: damaged or changed`);
    }
  }
  return { files, checked: true };
}

/** Why WebGPU is not to run here, or null where it may. */
async function webgpuProblem(site) {
  if (asked.get("backend") === "wasm") return "the page's address asks for WebAssembly";
  if (!site.graphs.webgpu) return "this site was written without it";
  if (!navigator.gpu) return "this browser has no WebGPU";
  const adapter = await navigator.gpu.requestAdapter().catch(() => null);
  return adapter ? null : "this browser found no GPU adapter for it";
}

/** The precision of the graph `backend` runs and its files, graph first: on WebGPU the site's
 * version of it (site.webgpu_graph), on WebAssembly the site's choice or `?graph=`. */
function graphToRun(backend, site, manifest) {
  if (backend === "webgpu") {
    const { files } = graphFiles(manifest, site.graphs.webgpu);
    return { precision: site.graphs.webgpu, names: [site.webgpu_graph, ...files.slice(1)] };
  }
  const precision = asked.get("graph") ?? site.graphs.wasm;
  if (!Object.values(site.graphs).includes(precision)) {
    throw new Error(`?graph=${precision}: this site has ${Object.values(site.graphs).join(", ")}`);
  }
  return { precision, names: graphFiles(manifest, precision).files };
}

/** The graph `backend` runs (graphToRun): its precision, files' bytes and whether they were
 * checked. */
async function fetchGraph(backend, site, manifest) {
  const { precision, names } = graphToRun(backend, site, manifest);
  const { files, checked } = await fetchChecked({ ...manifest.files, ...site.files }, names);
  return { precision, names, files, checked };
}

/** An onnxruntime-web session of `backend` on `graph` (fetchGraph). */
async function startSession(backend, { precision, names, files, checked }, threads) {
  const ort = await import(BUILDS[backend]);
  ort.env.wasm.wasmPaths = new URL("./vendor/", import.meta.url).href;
  ort.env.wasm.numThreads = threads;  // WebGPU's build too runs some operators on the CPU
  const session = await ort.InferenceSession.create(files[names[0]], {
    executionProviders: [backend],
    externalData: names.slice(1).map((name) => ({ path: name, data: files[name] })),
  });
  return { ort, session, precision, checked, backend };
}

/** WebGPU where the browser has it and the site a graph for it, else WebAssembly; with why
 * WebGPU was passed over (`?backend=` asks for one, and then there is no fallback). A damaged
 * file is an error on either: only a browser that cannot run WebGPU falls back. */
async function startBackend(site, manifest, threads) {
  let why = await webgpuProblem(site);
  if (!why) {
    const graph = await fetchGraph("webgpu", site, manifest);
    try {
      return await startSession("webgpu", graph, threads);
    } catch (e) {
      why = `it failed to start: ${e.message}`;
    }
  }
  if (asked.get("backend") === "webgpu") throw new Error(`?backend=webgpu: ${why}`);
  return { ...await startSession("wasm", await fetchGraph("wasm", site, manifest), threads), why };
}

async function load(threads) {
  const manifestBytes = await fetchBytes("bundle/manifest.json");
  const manifest = checkManifest(JSON.parse(new TextDecoder().decode(manifestBytes)));
  const site = JSON.parse(new TextDecoder().decode(await fetchBytes("site.json")));
  const tokenizerFile = manifest.tokenizer ?? "tokenizer.json";
  const { files } = await fetchChecked(manifest.files, [tokenizerFile]);
  const tokenizer = new Tokenizer(JSON.parse(new TextDecoder().decode(files[tokenizerFile])),
    manifest.context_length);
  const running = await startBackend(site, manifest, threads);
  const digest = globalThis.crypto?.subtle ? await sha256(manifestBytes) : null;
  return { manifest, tokenizer, digest, ...running };
}

/** One message: its label, probabilities and the milliseconds taken (tokenize + run). */
async function classifyOne(model, text) {
  const start = performance.now();
  const [result] = await classify(model.session, model.ort.Tensor, model.tokenizer, model.manifest,
    [text]);
  return { ...result, ms: performance.now() - start };
}

function show(model, { label, probabilities, ms }) {
  const labels = model.manifest.labels;
  $("result").hidden = false;
  $("result").dataset.label = label;
  $("label").textContent = label;
  $("probability").textContent = `p = ${probabilities[labels.indexOf(label)].toFixed(4)}`;
  $("probabilities").textContent = labels.map((l, i) => `${l} ${probabilities[i].toFixed(4)}`).join(", ");
  $("time").textContent = `${ms.toFixed(1)} ms`;
}

function describe({ manifest, precision, backend, checked, digest }) {
  $("status").dataset.state = "ready";
  $("status").textContent = `Ready: the ${manifest.preset} model's ${precision} graph on `
    + `${NAMES[backend]}` + (checked ? ", checked against the manifest's sha256." : " (not "
      + "checked: this page is not served from https or localhost, so the browser cannot hash it).");
  $("bundle").textContent = digest ? `bundle digest ${digest}` : "";
}

/** The backend, and the threads onnxruntime-web settled on (it keeps one where the browser
 * cannot share memory between threads). */
function describeBackend(model, isolation) {
  const threads = model.ort.env.wasm.numThreads;
  $("backend").dataset.backend = model.backend;
  $("backend").textContent = model.backend === "webgpu" ? "WebGPU: on this device's GPU."
    : `WebAssembly on the CPU (not WebGPU: ${model.why}).`;
  $("threads").dataset.threads = threads;
  $("threads").dataset.isolated = isolation.isolated;
  $("threads").textContent = isolation.isolated
    ? `${threads} ${threads === 1 ? "thread" : "threads"}: this page is cross-origin isolated.`
    : `1 thread: this page is not cross-origin isolated (${isolation.why}); \`spamkit web `
      + "--serve\` serves it with the headers that give threads.";
}

async function start() {
  const isolation = await crossOriginIsolation();  // first, as it may reload the page once
  // Threads need isolation (memory shared between workers): then one per logical core.
  const threads = isolation.isolated ? navigator.hardwareConcurrency || 1 : 1;
  const model = await load(Math.min(threads, Number(asked.get("threads")) || threads));
  describeBackend(model, isolation);
  describe(model);
  const run = async () => show(model, await classifyOne(model, $("message").value));
  $("message").disabled = $("classify").disabled = false;
  $("classify").addEventListener("click", run);
  $("message").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); run(); }
  });
  return { labels: model.manifest.labels, threads: model.ort.env.wasm.numThreads,
    backend: model.backend, graph: model.precision,
    classify: (text) => classifyOne(model, text) };
}

// For scripts driving the page (the browser tests): resolves to {labels, threads, backend,
// graph, classify(text)}.
window.spamkit = start().catch((e) => {
  $("status").dataset.state = "error";
  $("status").textContent = `spamkit: error: ${e.message}`;
  throw e;
});
