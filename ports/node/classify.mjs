#!/usr/bin/env node
// Classify messages with a spamkit bundle from Node.js, on onnxruntime-node: the same labels and
// probabilities as `spamkit classify`, with the preprocessing of the page `spamkit web` writes.
//
//   node ports/node/classify.mjs BUNDLE [TEXT ...]     one JSON object per message
//   node ports/node/classify.mjs BUNDLE --jsonl FILE   FILE: one JSON string per line
//
// Like the Python runtime, it checks the tokenizer and the graph against the manifest's sha256
// before ONNX Runtime reads them.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";

import ort from "onnxruntime-node";

import { checkManifest, chooseGraph, classify, Tokenizer } from "../../toolkit/web/static/preprocess.js";

const USAGE = "usage: classify.mjs BUNDLE [TEXT ...] | classify.mjs BUNDLE --jsonl FILE";
// Messages tokenized and run together, as the Python runtime's chunks: bounds memory.
const CHUNK = 2048;

class UsageError extends Error {}

function readVerified(bundle, manifest, name) {
  const data = readFileSync(path.join(bundle, name));
  if (createHash("sha256").update(data).digest("hex") !== manifest.files[name]) {
    throw new Error(`${path.join(bundle, name)} does not match its checksum: damaged or changed`);
  }
  return data;
}

async function loadBundle(bundle) {
  let manifest;
  try {
    manifest = checkManifest(JSON.parse(readFileSync(path.join(bundle, "manifest.json"), "utf8")));
  } catch (e) {
    throw new Error(`${bundle} is not a readable spamkit bundle: ${e.message}`);
  }
  const tokenizerFile = manifest.tokenizer ?? "tokenizer.json"; // format 1 has no field
  const tokenizer = new Tokenizer(JSON.parse(readVerified(bundle, manifest, tokenizerFile)),
    manifest.context_length);
  const { graph, files } = chooseGraph(manifest);
  files.forEach((name) => readVerified(bundle, manifest, name));
  const session = await ort.InferenceSession.create(path.join(bundle, graph));
  return { manifest, tokenizer, session };
}

function readTexts(args) {
  if (args[0] !== "--jsonl") return args;
  if (args.length !== 2) throw new UsageError(USAGE);
  return readFileSync(args[1], "utf8").split("\n").filter((line) => line !== "").map((line, i) => {
    const text = JSON.parse(line);
    if (typeof text !== "string") throw new Error(`${args[1]} line ${i + 1} is not a JSON string`);
    return text;
  });
}

async function main(argv) {
  if (argv.length < 2 || argv[0].startsWith("-")) throw new UsageError(USAGE);
  const texts = readTexts(argv.slice(1));
  const { manifest, tokenizer, session } = await loadBundle(argv[0]);
  for (let start = 0; start < texts.length; start += CHUNK) {
    const chunk = texts.slice(start, start + CHUNK);
    const results = await classify(session, ort.Tensor, tokenizer, manifest, chunk);
    const lines = results.map(({ label, probabilities }) => JSON.stringify({
      label, probabilities: Object.fromEntries(manifest.labels.map((l, i) => [l, probabilities[i]])),
    }));
    process.stdout.write(lines.join("\n") + "\n");
  }
}

main(process.argv.slice(2)).catch((e) => {
  process.stderr.write(`spamkit-node: error: ${String(e.message).split("\n")[0]}\n`);
  process.exit(e instanceof UsageError ? 2 : 1);
});
