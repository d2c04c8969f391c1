// The page's logic: load the bundle `spamkit web` copied into bundle/, check it, classify what
// is typed. Preprocessing is preprocess.js, the module the Node.js port shares.
import * as ort from "./vendor/ort.wasm.min.mjs";

import { crossOriginIsolation } from "./isolation.js";
import { checkManifest, chooseGraph, classify, Tokenizer } from "./preprocess.js";

ort.env.wasm.wasmPaths = new URL("./vendor/", import.meta.url).href;

const $ = (id) => document.getElementById(id);

async function fetchBytes(name) {
  const response = await fetch(`bundle/${name}`);
  if (!response.ok) throw new Error(`bundle/${name}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function sha256(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The files' bytes, checked against the manifest's sha256 where the browser can hash
 * (WebCrypto exists only in secure contexts: https or localhost). */
async function fetchChecked(manifest, names) {
  const files = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await fetchBytes(n)])));
  if (!globalThis.crypto?.subtle) return { files, checked: false };
  for (const name of names) {
    if (await sha256(files[name]) !== manifest.files[name]) {
      throw new Error(`bundle/${name} does not match its checksum: damaged or changed`);
    }
  }
  return { files, checked: true };
}

async function load() {
  const manifestBytes = await fetchBytes("manifest.json");
  const manifest = checkManifest(JSON.parse(new TextDecoder().decode(manifestBytes)));
  const { precision, graph, files: graphFiles } = chooseGraph(manifest);
  const { files, checked } = await fetchChecked(manifest, [manifest.tokenizer ?? "tokenizer.json", ...graphFiles]);
  const tokenizer = new Tokenizer(JSON.parse(new TextDecoder().decode(files[manifest.tokenizer ?? "tokenizer.json"])),
    manifest.context_length);
  const session = await ort.InferenceSession.create(files[graph], {
    executionProviders: ["wasm"],
    externalData: graphFiles.slice(1).map((name) => ({ path: name, data: files[name] })),
  });
  const digest = globalThis.crypto?.subtle ? await sha256(manifestBytes) : null;
  return { manifest, tokenizer, session, precision, checked, digest };
}

/** One message: its label, probabilities and the milliseconds taken (tokenize + run). */
async function classifyOne(model, text) {
  const start = performance.now();
  const [result] = await classify(model.session, ort.Tensor, model.tokenizer, model.manifest, [text]);
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

function describe({ manifest, precision, checked, digest }) {
  $("status").dataset.state = "ready";
  $("status").textContent = `Ready: the ${manifest.preset} model's ${precision} graph` +
    (checked ? ", checked against the manifest's sha256." : " (not checked: this page is not "
      + "served from https or localhost, so the browser cannot hash it).");
  $("bundle").textContent = digest ? `bundle digest ${digest}` : "";
}

/** What onnxruntime-web runs on, as it settled it (it keeps one thread where the browser
 * cannot share memory between threads). */
function describeThreads(isolation) {
  const threads = ort.env.wasm.numThreads;
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
  ort.env.wasm.numThreads = isolation.isolated ? navigator.hardwareConcurrency || 1 : 1;
  const model = await load();
  describeThreads(isolation);
  describe(model);
  const run = async () => show(model, await classifyOne(model, $("message").value));
  $("message").disabled = $("classify").disabled = false;
  $("classify").addEventListener("click", run);
  $("message").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); run(); }
  });
  return { labels: model.manifest.labels, threads: ort.env.wasm.numThreads,
    classify: (text) => classifyOne(model, text) };
}

// For scripts driving the page (the browser tests): resolves to {labels, threads,
// classify(text)}.
window.spamkit = start().catch((e) => {
  $("status").dataset.state = "error";
  $("status").textContent = `spamkit: error: ${e.message}`;
  throw e;
});
