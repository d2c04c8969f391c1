"""Instructions per message on ONNX Runtime's AVX2 int8 kernels, counted from any x86 host.

valgrind's virtual x86 CPU has AVX2 but neither AVX-512 nor VNNI, so ONNX Runtime picks the
kernels there that it picks on an AVX2-only host (checked each run: a u8s8 matmul whose pairs
pass int16 comes out clipped, as the `pairs16` reference says). callgrind counts what they
execute: the same count on every run and every host, whatever else the machine is doing.
Instructions are not seconds (no cache misses, no memory stalls in them), but they show how
much of a graph's work is ONNX Runtime's u8s8 matmul kernel, the floor that no graph built on
the same matmuls can go under on AVX2.

Graphs: those `make compare` made (spamkit's int8 bundle, optimum's two int8 presets), from
--work. They run one after another in a process under callgrind, with one intra-op thread; for
each, a warm-up message; callgrind's counters zeroed; one more message (the first after zeroing
takes a one-off cost, whatever the graph); counters dumped; --runs messages of --tokens tokens
(19: the median of `spamkit bench`'s latency messages); counters dumped again. Only those last
messages, on the main thread, are counted. The same count, in a second process beside the
first, for one MLP matmul in each of matmul_floor.py's precisions: whether any other matmul of
ONNX Runtime's is cheaper on AVX2 than the u8s8 kernel that sets the floor (the function the
u8s8 one spends its instructions in). How long a run takes: docs/targets.md.

    python benchmarks/avx2_instructions.py --work runs/compare/gpt2-seed123
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np


def run_messages(graphs: list[str], tokens: int, runs: int, save: str | None) -> None:
    """In the counted process, on one thread, each graph in turn: a warm-up message, one more,
    then `runs` more, each followed by a handshake on stdin/stdout (where the parent zeroes
    callgrind's counters, dumps them, dumps them again: the second dump holds the `runs` messages
    alone). `save`: the first graph's output."""
    import onnxruntime as ort  # only this and numpy here: under valgrind an import takes seconds

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    gc.disable()  # a collection would land in one process's count and not in another's
    for i, graph in enumerate(graphs):
        session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        feed = message_feed(session, tokens)
        for count in (1, 1, runs):  # warm-up, one message that absorbs one-off costs, counted
            for _ in range(count):
                outputs = session.run(None, feed)
            print("ready", flush=True)
            sys.stdin.readline()
        if save and i == 0:
            np.save(save, outputs[0])


def message_feed(session: object, tokens: int) -> dict[str, np.ndarray]:
    """A message of `tokens` tokens for a classifier graph, or activations for a matmul's."""
    ids = (np.arange(tokens, dtype=np.int64) * 7919) % 50000 + 100  # any ids: same work
    feed = {"input_ids": ids[None], "attention_mask": np.ones((1, tokens), np.int64),
            "position_ids": np.arange(tokens, dtype=np.int64)[None]}
    return {i.name: feed[i.name] if i.name in feed else  # the probe's x: 10.0 quantizes to 255
            np.full((1, tokens, i.shape[-1]), 10.0, np.float32) for i in session.get_inputs()}


def write_probe(path: Path) -> np.ndarray:
    """matmul_floor's u8s8 MLP matmul, to `path`; returns its exact product for activations
    that quantize to 255 (255 - zero point 128 = 127): AVX2's kernel clips some pair sums."""
    # Imported here: the counted process runs without onnx and spamkit (slow under valgrind).
    from matmul_floor import SHAPES, matmul_graph
    from onnx import load_from_string, numpy_helper

    model = matmul_graph(*SHAPES[2], "u8s8")
    path.write_bytes(model)
    inits = {t.name: numpy_helper.to_array(t) for t in load_from_string(model).graph.initializer}
    return 127 * inits["w"].astype(np.int64).sum(axis=0) * inits["w_scale"] * inits["x_scale"]


def compare_graphs(work: Path, target: str) -> dict[str, Path]:
    """The int8 graphs `make compare` made in `work`: spamkit's and each optimum preset's."""
    # Imported here: the counted process runs without them (and spamkit; slow under valgrind).
    from compare import OPTIMUM_INT8, OPTIMUM_INT8_FILE

    from spamkit.runtime.bundle import GRAPH_FILES

    return {"spamkit-int8": work / f"bundle-{target}" / GRAPH_FILES["int8"],
            **{route: work / route / OPTIMUM_INT8_FILE for route in OPTIMUM_INT8}}


def counted(graphs: list[Path], tokens: int, runs: int, out: Path,
            save: Path | None = None) -> list[Path]:
    """Runs `run_messages` under callgrind; returns the files that count each graph's `runs`
    messages on the main thread, which runs every op (one intra-op thread). The others are left
    out: ONNX Runtime runs a thread of its own beside it, whose count varies between processes."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "PYTHONHASHSEED": "0"}
    cmd = ["valgrind", "--tool=callgrind", "--separate-threads=yes", f"--callgrind-out-file={out}",
           sys.executable, __file__, "--tokens", tokens, "--runs", runs, "--save", save or "",
           "--graphs", *graphs]
    failed = f"avx2_instructions: {', '.join(map(str, graphs))} failed under valgrind"
    with subprocess.Popen(list(map(str, cmd)), env=env, text=True, stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as child:
        for command in ("--zero", "--dump", "--dump") * len(graphs):
            if child.stdout.readline().strip() != "ready":
                sys.exit(failed)
            subprocess.run(["callgrind_control", command, str(child.pid)], check=True,
                           capture_output=True)
            child.stdin.write("\n")
            child.stdin.flush()
    if child.returncode != 0:
        sys.exit(failed)
    return [out.with_name(f"{out.name}.{2 * i + 2}-01") for i in range(len(graphs))]


def per_function(out: Path) -> Counter:
    """Instructions per function (self cost), read from a callgrind file (callgrind_annotate
    counts calls that began before the counters were zeroed as their callers' own cost)."""
    names, costs, function, after_call = {}, Counter(), "", False
    for line in out.read_text(errors="replace").splitlines():
        key, _, value = line.partition("=")
        if key in ("fn", "cfn"):
            match = re.match(r"\((\d+)\)\s*(.*)", value)
            names.setdefault(match.group(1), match.group(2))
            if key == "fn":
                function = names[match.group(1)]
        elif key == "calls":
            after_call = True
        elif line[:1] and line[0] in "0123456789+-*":
            if not after_call:  # the line after calls= is that call's inclusive cost
                costs[function] += int(line.split()[-1])
            after_call = False
    return costs


def per_message(graphs: list[Path], args: argparse.Namespace, out: Path,
                save: Path | None = None) -> list[Counter]:
    """Instructions of one message, per function, for each graph (all in one process)."""
    return [Counter({function: c / args.runs for function, c in per_function(file).items()})
            for file in counted(graphs, args.tokens, args.runs, out, save)]


def matmul_counts(args: argparse.Namespace, tmp: Path) -> tuple[str, dict[str, float]]:
    """Instructions per message of matmul_floor's MLP matmul in each of its precisions: ONNX
    Runtime's matmuls side by side (is any as cheap as u8s8 on AVX2?). And the function that
    the u8s8 one spends them in, after checking that it is AVX2's kernel (it clips)."""
    from matmul_floor import PRECISIONS, SHAPES, matmul_graph

    exact = write_probe(tmp / "matmul-u8s8.onnx")
    precisions = ["u8s8", *(p for p in PRECISIONS if p != "u8s8")]
    for precision in precisions[1:]:
        (tmp / f"matmul-{precision}.onnx").write_bytes(matmul_graph(*SHAPES[2], precision))
    costs = per_message([tmp / f"matmul-{p}.onnx" for p in precisions], args,
                        tmp / "matmul.out", save=tmp / "probe.npy")
    if np.abs(np.load(tmp / "probe.npy")[0, 0] - exact).max() < 1e-3:
        sys.exit("avx2_instructions: valgrind's CPU ran an exact u8s8 kernel, not AVX2's")
    kernel = costs[0].most_common(1)[0][0]
    return kernel, {p: sum(c.values()) for p, c in zip(precisions, costs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("runs/compare/gpt2-seed123"))
    parser.add_argument("--target", default="portable", help="spamkit's bundle-TARGET in --work")
    parser.add_argument("--tokens", type=int, default=19)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--graphs", nargs="+", help=argparse.SUPPRESS)  # the counted process
    parser.add_argument("--save", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.graphs:
        return run_messages(args.graphs, args.tokens, args.runs, args.save)
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        sys.exit("avx2_instructions: needs valgrind (Debian: apt-get install valgrind)")
    graphs = compare_graphs(args.work, args.target)
    missing = [str(p) for p in graphs.values() if not p.is_file()]
    if missing:
        sys.exit(f"avx2_instructions: no {missing[0]}: run `make compare` first")
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(1) as pool:
        matmuls = pool.submit(matmul_counts, args, Path(tmp))  # a process beside the graphs'
        counts = dict(zip(graphs, per_message(list(graphs.values()), args,
                                              Path(tmp) / "graphs.out")))
        kernel, matmul_totals = matmuls.result()
        report(counts, kernel, args)
        report_matmuls(matmul_totals, args)


def report(counts: dict[str, Counter], kernel: str, args: argparse.Namespace) -> None:
    print(f"Instructions per message of {args.tokens} tokens on ONNX Runtime's AVX2 kernels "
          f"(valgrind's CPU, 1 thread); the u8s8 matmul kernel is {kernel}")
    print("| graph | M instructions | in the u8s8 kernel | busiest function "
          "| spamkit-int8 / this |")
    print("|---|---:|---:|---|---:|")
    totals = {route: sum(costs.values()) for route, costs in counts.items()}
    for route, costs in counts.items():
        busiest, top = costs.most_common(1)[0]
        ratio = totals["spamkit-int8"] / totals[route]
        print(f"| {route} | {totals[route] / 1e6:.1f} | {costs[kernel] / 1e6:.1f} "
              f"({100 * costs[kernel] / totals[route]:.0f}%) | {busiest}: {top / 1e6:.1f} "
              f"({100 * top / totals[route]:.0f}%) | {ratio:.2f} |")
    peer = min((r for r in totals if r.startswith("optimum")), key=totals.get)
    print(f"Floor: spamkit-int8's u8s8 kernel alone is "
          f"{counts['spamkit-int8'][kernel] / totals[peer]:.2f}x {peer}'s whole message.")


def report_matmuls(counts: dict[str, float], args: argparse.Namespace) -> None:
    from matmul_floor import SHAPES

    k, n = SHAPES[2]
    print(f"\nOne MLP matmul ({k} -> {n}) of {args.tokens} tokens in each of ONNX Runtime's "
          "matmuls (benchmarks/matmul_floor.py's graphs), on AVX2's kernels:")
    print("| matmul | M instructions | / u8s8 |")
    print("|---|---:|---:|")
    for precision, count in counts.items():
        print(f"| {precision} | {count / 1e6:.2f} | {count / counts['u8s8']:.2f} |")


if __name__ == "__main__":
    main()
