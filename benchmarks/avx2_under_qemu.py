"""The kernel references against ONNX Runtime's real AVX2 kernels, on a host that has more.

Runs a bundle's int8 graph in `qemu-x86_64-static -cpu Haswell` (user-mode emulation of an
AVX2 CPU without AVX-512 or VNNI: ONNX Runtime picks its AVX2 u8s8 kernels there), on the first
--messages test messages one at a time, and compares its logits with the `pairs16` and `exact`
references (spamkit.export.kernel_reference) computed natively. Slow (emulated), so not a test.

    python benchmarks/avx2_under_qemu.py runs/demo/bundle --messages 20 \
        --data ../shared/data/sms_spam_collection/SMSSpamCollection
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

QEMU = "qemu-x86_64-static"


def run_graph(graph: str, ids_file: str, out_file: str) -> None:
    """In the emulated CPU: the graph's logits for each message of `ids_file`, alone."""
    import onnxruntime as ort

    session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    messages = np.load(ids_file)
    rows = [session.run(["logits"], {"input_ids": ids[None], "attention_mask":
                                     np.ones((1, len(ids)), np.int64)})[0][0]
            for ids in (messages[k] for k in sorted(messages, key=int))]
    np.save(out_file, np.stack(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--data")
    parser.add_argument("--cpu", default="Haswell", help="qemu's CPU model")
    args = parser.parse_args()
    if shutil.which(QEMU) is None:
        sys.exit(f"{QEMU} not found (Debian: apt-get install qemu-user-static)")
    from spamkit.data import DataConfig, load_splits
    from spamkit.export.kernel_reference import reference_graph, reference_logits
    from spamkit.runtime import Classifier

    clf = Classifier.load(args.bundle, precision="int8")
    data = DataConfig(**clf.manifest.data)
    splits = load_splits(replace(data, path=args.data) if args.data else data)
    ids = clf.tokenizer.encode_batch(splits.test.texts[: args.messages])
    graph = args.bundle / clf.manifest.graphs["int8"]
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "ids.npz", **{str(i): np.array(x, np.int64) for i, x in
                                           enumerate(ids)})
        subprocess.run([QEMU, "-cpu", args.cpu, sys.executable, __file__, "--child", str(graph),
                        f"{tmp}/ids.npz", f"{tmp}/out.npy"], check=True)
        emulated = np.load(f"{tmp}/out.npy")
        print(f"{args.bundle} (int8 target {clf.manifest.int8_target}), {len(ids)} test messages, "
              f"ONNX Runtime under qemu -cpu {args.cpu}:")
        for kernel in ("pairs16", "exact"):
            reference_graph(graph, Path(tmp) / f"{kernel}.onnx", kernel)
            ref = reference_logits(Path(tmp) / f"{kernel}.onnx", ids, clf.tokenizer.pad_id)
            print(f"  vs the {kernel} reference: max |logit diff| "
                  f"{np.abs(emulated - ref).max():.2e}, labels agree on "
                  f"{np.mean(emulated.argmax(1) == ref.argmax(1)):.2%}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        run_graph(*sys.argv[2:5])
    else:
        main()
