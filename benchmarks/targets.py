"""Accuracy of each int8 target on every kind of CPU, measured from this host.

For a checkpoint, exports one bundle per target (`spamkit export --int8 --keep-fp32 --target T`),
then on the test split compares with the fp32 graph's labels: the int8 graph as this host runs
it, and as each kind of int8 kernel computes it (spamkit.export.kernel_reference: exact int32 for
VNNI/AMX/ARM64, saturating 16-bit pair sums for x86 without VNNI). Prints a markdown table and
writes it, with the figures as JSON, to --out.

    python benchmarks/targets.py runs/demo/checkpoint --out runs/targets-mini \
        --data ../shared/data/sms_spam_collection/SMSSpamCollection

On ONNX Runtime's AVX2 kernels from any x86-64 host (the host's own kernels then sum pairs in
16 bits, so no reference is needed):

    tools/native_host.sh .venv/bin/python benchmarks/targets.py runs/demo/checkpoint \
        --out runs/targets-demo-avx2 --data ... --kernels
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from spamkit.data import load_splits
from spamkit.export.bundle import ExportConfig, export_bundle
from spamkit.export.kernel_reference import reference_graph, reference_logits
from spamkit.runtime import Classifier
from spamkit.runtime.bundle import read_manifest
from spamkit.runtime.isa import KERNELS, TARGETS, host_isa
from spamkit.training.checkpoint import load_checkpoint


def measure_target(checkpoint: Path, bundle: Path, target: str, data: str | None,
                   limit: int | None, kernels: list[str]) -> dict:
    if not (bundle / "manifest.json").is_file():
        export_bundle(checkpoint, bundle, ExportConfig(int8=True, keep_fp32=True, data=data,
                                                       target=target))
    ckpt_data = load_checkpoint(checkpoint).data
    splits = load_splits(replace(ckpt_data, path=data) if data else ckpt_data)
    texts, truth = splits.test.texts[:limit], np.array(splits.test.labels[:limit])
    fp32 = Classifier.load(bundle, precision="fp32").logits(texts).argmax(axis=1)
    clf = Classifier.load(bundle, precision="int8")
    routes = {f"this host ({host_isa().name})": clf.logits(texts).argmax(axis=1)}
    ids = clf.tokenizer.encode_batch(texts)
    for kernel in kernels:
        graph = bundle.parent / f"{bundle.name}.reference.{kernel}.onnx"
        reference_graph(bundle / "model.int8.onnx", graph, kernel)
        start = time.perf_counter()
        routes[f"{kernel} kernels"] = reference_logits(graph, ids, clf.tokenizer.pad_id
                                                       ).argmax(axis=1)
        print(f"  {target}: {kernel} reference over {len(ids)} messages in "
              f"{time.perf_counter() - start:.0f} s", flush=True)
    return {
        "target": target, "messages": len(texts),
        "fp32_correct": int((fp32 == truth).sum()),
        "routes": {name: {"agreement_with_fp32": float(np.mean(labels == fp32)),
                          "correct": int((labels == truth).sum())}
                   for name, labels in routes.items()},
        "manifest": {k: read_manifest(bundle).__dict__[k] for k in ("int8_target",
                                                                    "checked_on_isa")},
    }


def format_rows(results: list[dict]) -> list[str]:
    rows = ["| target | int8 computed by | labels agree with fp32 | test correct (int8 / fp32) |",
            "|---|---|---|---|"]
    for r in results:
        for route, figures in r["routes"].items():
            rows.append(f"| {r['target']} | {route} | {figures['agreement_with_fp32']:.2%} | "
                        f"{figures['correct']} / {r['fp32_correct']} of {r['messages']} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data")
    parser.add_argument("--targets", nargs="+", default=list(TARGETS), choices=TARGETS)
    parser.add_argument("--limit", type=int, help="only the first N test messages")
    kernels = sorted(set(KERNELS.values()))
    parser.add_argument("--kernels", nargs="*", default=kernels, choices=kernels,
                        help="the kernel references to run, none with no value (pair sums on "
                             "8-bit weights of the 124M shape take seconds a message)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = [measure_target(args.checkpoint, args.out / target, target, args.data, args.limit,
                              args.kernels)
               for target in args.targets]
    rows = format_rows(results)
    header = f"{args.checkpoint}, measured on {host_isa().describe()}"
    print("\n".join([header, *rows]))
    (args.out / "targets.md").write_text("\n".join([header, "", *rows]) + "\n")
    (args.out / "targets.json").write_text(json.dumps(
        {"host_isa": host_isa().describe(), "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
