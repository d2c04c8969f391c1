// A spamkit bundle's preprocessing in JavaScript, as docs/bundle-format.md ("How messages are
// read") specifies it and runtime/tokenizer.py, runtime/batching.py and runtime/classifier.py
// do it: GPT-2 byte-pair encoding from the bundle's tokenizer.json, truncation from the front,
// the empty-message rule, right padding, softmax and the decision. The one copy, shared by the
// page `spamkit web` writes and the Node.js program in ports/node; plain ES module, no imports.

export const FORMAT = "spamkit-bundle";
// 4 adds the text graphs (docs/bundle-format.md), which these readers do not use.
export const MAX_FORMAT_VERSION = 4;
export const EOT = "<|endoftext|>";
export const INPUT_IDS = "input_ids";
export const ATTENTION_MASK = "attention_mask";
export const LOGITS = "logits";
// The only piece-splitting regex a bundle may hold (runtime/tokenizer.py GPT2_PAT_STR).
export const GPT2_PAT_STR =
  String.raw`'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s`;
// The same regex in JavaScript's dialect. Possessive quantifiers become greedy: each one ends its
// alternative, so nothing after it could make the engine give characters back. \s becomes
// \p{White_Space}, the set tiktoken's Rust regex means by \s (JavaScript's \s adds U+FEFF and
// lacks U+0085).
const PIECES = new RegExp(
  String.raw`'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\p{White_Space}\p{L}\p{N}]+` +
  String.raw`|\p{White_Space}+$|\p{White_Space}+(?!\P{White_Space})|\p{White_Space}`, "gu");
// Graphs a CPU runs, smallest first (runtime/bundle.py GRAPHS_SMALLEST_FIRST, those meant for cpu).
const CPU_GRAPHS = ["int8", "fp16", "fp32"];

/** A manifest's fields that preprocessing and graph choice rely on, checked; Error otherwise. */
export function checkManifest(m) {
  const fail = (why) => { throw new Error(`manifest.json ${why}`); };
  if (!m || typeof m !== "object" || m.format !== FORMAT) fail("is not a spamkit bundle manifest");
  if (!Number.isInteger(m.format_version) || m.format_version < 1) fail("has no format_version");
  if (m.format_version > MAX_FORMAT_VERSION) {
    fail(`is bundle format ${m.format_version}; this reads ${MAX_FORMAT_VERSION} and older`);
  }
  if (!Array.isArray(m.labels) || m.labels.length < 2 ||
      !m.labels.every((l) => typeof l === "string") || new Set(m.labels).size !== m.labels.length) {
    fail("labels must be 2 or more distinct names");
  }
  if (!Number.isInteger(m.context_length) || m.context_length < 1) fail("has no context_length");
  if (m.token !== "last" && m.token !== "first") fail("token must be last or first");
  if (!m.graphs || typeof m.graphs !== "object" || !m.files || typeof m.files !== "object") {
    fail("must name its graphs and files");
  }
  const t = m.threshold;
  if (t != null && (!m.labels.includes(t.label) || !(t.value >= 0 && t.value <= 1))) {
    fail("threshold must name one of the labels and a probability");
  }
  return m;
}

/** The graph a CPU runs (int8, else another meant for cpu) and its files, graph first. */
export function chooseGraph(m) {
  const devices = m.devices ?? { fp32: ["cpu"], int8: ["cpu"] }; // format 1 (runtime/bundle.py)
  const precision = CPU_GRAPHS.find((p) => p in m.graphs && (devices[p] ?? []).includes("cpu"));
  if (!precision) throw new Error("the bundle has no graph meant for the CPU");
  return { precision, ...graphFiles(m, precision) };
}

/** The graph file of this precision and its files (external data), graph first. */
export function graphFiles(m, precision) {
  const graph = m.graphs[precision];
  const files = Object.keys(m.files).filter((f) => f === graph || f.startsWith(graph + "."));
  return { graph, files: [graph, ...files.filter((f) => f !== graph)] };
}

/** GPT-2 byte-pair encoding from a bundle's tokenizer.json, as runtime/tokenizer.py does it. */
export class Tokenizer {
  constructor(data, maxLength) {
    if (!data || data.pat_str !== GPT2_PAT_STR || !Array.isArray(data.ranks) ||
        !data.special_tokens || !Number.isInteger(data.special_tokens[EOT])) {
      throw new Error("tokenizer.json is not a GPT-2 tokenizer");
    }
    // Byte sequences as strings of char codes 0-255 (what atob gives): cheap Map keys.
    this.ranks = new Map(data.ranks.map((b64, rank) => [atob(b64), rank]));
    this.eotId = data.special_tokens[EOT];
    this.padId = this.eotId; // padding never reaches the classified token (causal attention)
    this.maxLength = maxLength;
    const longest = Math.max(...data.ranks.map((b64) => atob(b64).length));
    // Cut at this many characters first: still at least maxLength tokens (runtime/tokenizer.py).
    this.maxChars = maxLength * longest;
    this.encoder = new TextEncoder();
  }

  /** Token ids of a message: the LAST maxLength tokens; an empty message is [<|endoftext|>].
   * The literal text <|endoftext|> is that token's id; the text around it is encoded part by
   * part (docs/bundle-format.md, "How a message becomes token ids"). */
  encode(text) {
    // Python cuts by code points and tiktoken turns lone surrogates into U+FFFD.
    const parts = lastCodePoints(text, this.maxChars).toWellFormed().split(EOT);
    const ids = [];
    parts.forEach((part, i) => {
      if (i > 0) ids.push(this.eotId);
      for (const [piece] of part.matchAll(PIECES)) {
        const bytes = byteString(this.encoder.encode(piece));
        const rank = this.ranks.get(bytes);
        if (rank !== undefined) ids.push(rank);
        else ids.push(...this.mergePairs(bytes));
      }
    });
    return ids.length ? ids.slice(-this.maxLength) : [this.eotId];
  }

  /** tiktoken's byte-pair merge: join the adjacent pair of lowest rank (leftmost on a tie)
   * until no joined pair is a token; then each part's rank. Parts are a linked list and pairs a
   * heap, so a 64k-byte piece (a message of one repeated letter) takes milliseconds, not
   * the seconds a rescan after every merge would. */
  mergePairs(bytes) {
    const n = bytes.length;
    const next = Int32Array.from({ length: n }, (_, i) => i + 1); // part i is bytes[i, next[i])
    const prev = Int32Array.from({ length: n }, (_, i) => i - 1);
    const version = new Int32Array(n);
    const heap = new PairHeap();
    const pushPair = (i) => {
      if (i < 0 || next[i] >= n) return;
      const rank = this.ranks.get(bytes.slice(i, next[next[i]]));
      if (rank !== undefined) heap.push([rank, i, ++version[i]]);
    };
    for (let i = 0; i < n; i++) pushPair(i);
    while (heap.size) {
      const [, i, v] = heap.pop();
      if (v !== version[i] || next[i] >= n) continue; // stale: part i or its neighbour changed
      const gone = next[i];
      next[i] = next[gone];
      if (next[i] < n) prev[next[i]] = i;
      version[gone] = -1;
      ++version[i];
      pushPair(i);
      if (prev[i] >= 0) { ++version[prev[i]]; pushPair(prev[i]); }
    }
    const ids = [];
    for (let i = 0; i < n; i = next[i]) ids.push(this.ranks.get(bytes.slice(i, next[i])));
    return ids;
  }
}

/** A binary min-heap of [rank, start, version], by rank, then start (leftmost first). */
class PairHeap {
  constructor() { this.items = []; }
  get size() { return this.items.length; }
  static less(a, b) { return a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]); }
  push(item) {
    const h = this.items;
    h.push(item);
    for (let i = h.length - 1; i > 0;) {
      const up = (i - 1) >> 1;
      if (!PairHeap.less(h[i], h[up])) break;
      [h[i], h[up]] = [h[up], h[i]];
      i = up;
    }
  }
  pop() {
    const h = this.items;
    const top = h[0];
    const last = h.pop();
    if (h.length) {
      h[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < h.length && PairHeap.less(h[l], h[m])) m = l;
        if (r < h.length && PairHeap.less(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}

/** Bytes as a string of char codes 0-255, in slices (a spread of a long piece would overflow
 * the call stack). */
function byteString(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return s;
}

/** The last n code points of text (Python's text[-n:]). */
function lastCodePoints(text, n) {
  if (text.length <= n) return text;
  let i = text.length;
  for (let count = 0; count < n && i > 0; count++) {
    i--;
    const low = text.charCodeAt(i);
    if (i > 0 && low >= 0xdc00 && low <= 0xdfff) {
      const high = text.charCodeAt(i - 1);
      if (high >= 0xd800 && high <= 0xdbff) i--;
    }
  }
  return text.slice(i);
}

/** Indices of messages with these token counts, shortest first, in runs of at most batchSize
 * messages and batchTokens padded tokens (runtime/batching.py length_sorted_batches). */
export function lengthSortedBatches(lengths, batchSize, batchTokens = Infinity) {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[a] - lengths[b] || a - b);
  const batches = [];
  let rows = [];
  for (const i of order) {
    if (rows.length && (rows.length === batchSize || (rows.length + 1) * lengths[i] > batchTokens)) {
      batches.push(rows);
      rows = [];
    }
    rows.push(i);
  }
  if (rows.length) batches.push(rows);
  return batches;
}

/** Right-padded int64 input_ids and attention_mask for a batch (runtime/batching.py pad_batch). */
export function padBatch(batch, padId) {
  const width = Math.max(...batch.map((x) => x.length));
  const inputIds = new BigInt64Array(batch.length * width).fill(BigInt(padId));
  const mask = new BigInt64Array(batch.length * width);
  batch.forEach((ids, row) => ids.forEach((id, j) => {
    inputIds[row * width + j] = BigInt(id);
    mask[row * width + j] = 1n;
  }));
  return { inputIds, mask, dims: [batch.length, width] };
}

export function softmax(logits) {
  const top = Math.max(...logits);
  const e = logits.map((z) => Math.exp(z - top));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / sum);
}

/** The label index for probabilities (runtime/classifier.py decide): with the manifest's
 * threshold its label wins whenever its probability reaches it, else the most probable one. */
export function decide(probs, labels, threshold) {
  const argmax = (p) => p.reduce((best, x, i) => (x > p[best] ? i : best), 0);
  if (!threshold) return argmax(probs);
  const positive = labels.indexOf(threshold.label);
  if (probs[positive] >= threshold.value) return positive;
  return argmax(probs.map((p, i) => (i === positive ? -1 : p)));
}

/** Classify texts with an ONNX Runtime session (onnxruntime-web or -node: `Tensor` is the
 * package's). Returns [{label, probabilities}] in the order of texts. */
export async function classify(session, Tensor, tokenizer, manifest, texts,
  { batchSize = 32, batchTokens = 128 } = {}) {
  const ids = texts.map((t) => tokenizer.encode(t));
  const results = new Array(texts.length);
  for (const rows of lengthSortedBatches(ids.map((x) => x.length), batchSize, batchTokens)) {
    const { inputIds, mask, dims } = padBatch(rows.map((i) => ids[i]), tokenizer.padId);
    const out = await session.run({
      [INPUT_IDS]: new Tensor("int64", inputIds, dims),
      [ATTENTION_MASK]: new Tensor("int64", mask, dims),
    });
    const logits = out[LOGITS];
    const classes = manifest.labels.length;
    if (logits.dims.length !== 2 || logits.dims[0] !== rows.length || logits.dims[1] !== classes) {
      throw new Error(`the graph gave logits of shape [${logits.dims}], not [${rows.length}, ${classes}]`);
    }
    rows.forEach((i, r) => {
      const z = Array.from(logits.data.subarray(r * classes, (r + 1) * classes));
      if (!z.every(Number.isFinite)) throw new Error(`the graph gave a NaN or infinite logit for texts[${i}]`);
      const probabilities = softmax(z);
      results[i] = { label: manifest.labels[decide(probabilities, manifest.labels, manifest.threshold)],
        probabilities };
    });
  }
  return results;
}
