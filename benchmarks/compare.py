"""spamkit against the book's inference and transformers + optimum, from one Hugging Face folder.

    make compare                                   # creates .venv-compare, then runs this
    make compare COMPARE_ARGS="--preset tiny --rounds 1"              # a quick smoke run
    make compare COMPARE_ARGS="--hf-dir DIR"       # your own GPT2ForSequenceClassification
    python benchmarks/compare.py --peer-python .venv-compare/bin/python --data FILE [--rounds 3]

1. The one input: a transformers GPT2ForSequenceClassification folder (save_pretrained, with its
   tokenizer), --hf-dir, or by default a seeded random one of --preset's shape (same_weights.py
   hf; seed --seed), made once under --work (git-ignored runs/). Every route starts from it as
   its user would: spamkit's bundle is `spamkit export HF_DIR --int8 --keep-fp32 --target T`
   (--target, default portable); optimum's graph is `optimum-cli export onnx --model HF_DIR`,
   quantized by `optimum-cli onnxruntime quantize --per_channel` with its `--avx512_vnni`
   preset (optimum-int8) and its `--avx2` preset (optimum-int8-avx2); the book's PyTorch model
   is read from it by spamkit.training.hf_classifier. The exports are cached under --work
   (the default folder's beside it, in PRESET-seedSEED/), with the fingerprint of the folder's
   files (names, sizes, times): a rewritten folder is exported again. The report names the
   folder and the host's ISA (spamkit.runtime.isa): int8 kernels, and so the figures, differ
   by ISA.
2. Rounds: every route in a fresh process of its own, one at a time, in the same order each
   round, on the same messages with the same threads (spamkit.jobs.measure times them all).
3. Report: the median of each figure over the rounds, spamkit's ratio to each peer, the
   targets for the 124M shape, and cross-checks that the routes compute the same thing (token
   counts, logits).

transformers and optimum for the optimum routes live in --peer-python's venv only (optimum-onnx
needs transformers<4.58); the book and spamkit routes, and the default folder, are made in this
interpreter's venv (spamkit's `train` extra has transformers).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from spamkit import __version__
from spamkit.atomic import atomic_dir, write_bytes_atomic
from spamkit.data import resolve_data
from spamkit.jobs.bench import BenchConfig, child_command
from spamkit.jobs.measure import MeasureConfig, machine_facts, run_child
from spamkit.runtime import isa
from spamkit.runtime.bundle import read_manifest

HERE = Path(__file__).resolve().parent
PEERS = HERE / "peers.py"
ROUTES = ("book", "optimum-fp32", "optimum-int8", "optimum-int8-avx2", "spamkit-fp32",
          "spamkit-int8")
# optimum's int8 routes: the `optimum-cli onnxruntime quantize` preset of each.
OPTIMUM_INT8 = {"optimum-int8": "--avx512_vnni", "optimum-int8-avx2": "--avx2"}
SPAMKIT = ("spamkit-fp32", "spamkit-int8")
OPTIMUM_INT8_FILE = "model_quantized.onnx"
# Beside the cached exports: the fingerprint of the folder they were made from.
MADE_FROM = "made-from.txt"
# (figure, better when, format) for the table and the ratios; figures are paths into a result.
FIGURES = {
    "start-up s": (("startup_s",), "low", "{:.2f}"),
    "load s": (("load_s",), "low", "{:.2f}"),
    "p50 ms": (("latency_ms", "p50"), "low", "{:.1f}"),
    "p90 ms": (("latency_ms", "p90"), "low", "{:.1f}"),
    "msgs/s": (("throughput", "msgs_per_s"), "high", "{:.0f}"),
    "msgs/s sorted": (("throughput", "sorted_msgs_per_s"), "high", "{:.0f}"),
    "peak RSS MB": (("peak_rss_mb",), "low", "{:.0f}"),
    "model MB": (("graph_mb",), "low", "{:.0f}"),
}
# What spamkit aims for on the 124M shape: (route, figure, bound, at most?).
TARGETS = [
    ("spamkit-int8", "p50 ms", 6.0, True),
    ("spamkit-int8", "p90 ms", 11.0, True),
    ("spamkit-fp32", "p50 ms", 20.0, True),
    ("spamkit-int8", "msgs/s", 130.0, False),
    ("spamkit-int8", "start-up s", 0.5, True),
    ("spamkit-int8", "peak RSS MB", 220.0, True),
]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(cmd: list, **kw) -> None:
    log("$ " + " ".join(map(str, cmd)))
    done = subprocess.run([str(c) for c in cmd], stdout=subprocess.DEVNULL, **kw)
    if done.returncode:
        raise SystemExit(f"compare.py: error: the command above exited with {done.returncode} "
                         "(its message is above it); nothing was measured")


def hf_folder(args: argparse.Namespace) -> Path:
    """The one input: --hf-dir, or the seeded random folder of --preset and --seed, made once."""
    if args.hf_dir is not None:
        return args.hf_dir
    hf = args.work / f"{args.preset}-seed{args.seed}" / "hf"
    if not (hf / "config.json").is_file():
        run([sys.executable, HERE / "same_weights.py", "hf", hf, "--preset", args.preset,
             "--seed", args.seed])
    return hf


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def fingerprint(folder: Path) -> str:
    """Which state of `folder` exports were made from: its files' names, sizes and times."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    facts = [(str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    return short_hash(json.dumps(facts))


def exports_dir(args: argparse.Namespace, hf: Path) -> Path:
    """Where the exports of `hf` are cached (the default folder's beside it), emptied of those
    made from another state of it, or from anything else (a spamkit checkpoint, before)."""
    exports = (hf.parent if args.hf_dir is None
               else args.work / f"{hf.resolve().name}-{short_hash(str(hf.resolve()))}")
    state = fingerprint(hf)
    if (exports / MADE_FROM).is_file() and (exports / MADE_FROM).read_text() == state:
        return exports
    for made in [*exports.glob("bundle-*"), *exports.glob("optimum-*")]:
        shutil.rmtree(made)
    write_bytes_atomic(exports / MADE_FROM, state.encode())
    return exports


def prepare(args: argparse.Namespace, data: str) -> dict[str, Path]:
    """The Hugging Face folder, and what each route makes of it (spamkit's bundle and, when
    their routes run, optimum's two directories), made once."""
    hf = hf_folder(args)
    exports = exports_dir(args, hf)
    paths = {"hf": hf, "bundle": exports / f"bundle-{args.target}",
             "optimum-fp32": exports / "optimum-fp32",
             **{route: exports / route for route in OPTIMUM_INT8}}
    if not (paths["bundle"] / "manifest.json").is_file():
        run([sys.executable, "-m", "spamkit", "export", hf, "--out", paths["bundle"], "--int8",
             "--keep-fp32", "--target", args.target, "--data", data])
    if not any(r.startswith("optimum") for r in args.routes):
        return paths
    peer_bin = Path(args.peer_python).parent
    if not (paths["optimum-fp32"] / "model.onnx").is_file():
        with atomic_dir(paths["optimum-fp32"]) as tmp:
            run([peer_bin / "optimum-cli", "export", "onnx", "--model", hf, "--task",
                 "text-classification", tmp])
    for route, preset in OPTIMUM_INT8.items():
        if route in args.routes and not (paths[route] / OPTIMUM_INT8_FILE).is_file():
            quantize_peer(peer_bin, paths["optimum-fp32"], paths[route], preset)
    return paths


def quantize_peer(peer_bin: Path, fp32: Path, out: Path, preset: str) -> None:
    """optimum's int8 graph of the fp32 export with one of its ISA presets."""
    with atomic_dir(out) as tmp:
        run([peer_bin / "optimum-cli", "onnxruntime", "quantize", "--onnx_model", fp32, preset,
             "--per_channel", "-o", tmp])
        for f in fp32.iterdir():  # the tokenizer and config files
            if f.suffix != ".onnx" and not (tmp / f.name).exists():
                shutil.copy(f, tmp / f.name)


def route_command(route: str, args: argparse.Namespace,
                  paths: dict[str, Path]) -> tuple[list, dict]:
    """How to start a route's measuring process, and its route spec."""
    if route in SPAMKIT:
        bench = BenchConfig(bundle=str(paths["bundle"]), threads=args.threads,
                            precision=route.removeprefix("spamkit-"))
        return child_command(), asdict(bench)
    spec = {"route": route, "model": str(paths["hf"] if route == "book" else paths[route]),
            "threads": args.threads}
    if route in OPTIMUM_INT8:
        spec["file_name"] = OPTIMUM_INT8_FILE
    python = sys.executable if route == "book" else args.peer_python
    return [python, str(PEERS)], spec


def figure(result: dict, path: tuple[str, ...]) -> float | None:
    for key in path:
        result = result.get(key) if isinstance(result, dict) else None
    return result


def median_figures(runs: list[dict]) -> dict[str, float | None]:
    out = {}
    for name, (path, _, _) in FIGURES.items():
        values = [v for v in (figure(r, path) for r in runs) if v is not None]
        out[name] = statistics.median(values) if values else None
    return out


def ratio(spamkit: float | None, peer: float | None, better: str) -> float | None:
    """How many times better spamkit is than the peer (> 1: spamkit wins)."""
    if not spamkit or not peer:
        return None
    return peer / spamkit if better == "low" else spamkit / peer


def cross_checks(args: argparse.Namespace, routes: list[str]) -> dict:
    """Do the routes compute the same thing? Logits of the list, labels alone vs in the list."""
    saved = {r: np.load(args.work / "logits" / f"{r}.npz") for r in routes}
    checks = {}
    if "spamkit-fp32" in saved:
        ref = saved["spamkit-fp32"]["list"]
        for r, s in saved.items():
            if r != "spamkit-fp32":
                checks[f"{r} vs spamkit-fp32"] = {
                    "max_abs_logit_diff": float(np.abs(s["list"] - ref).max()),
                    "label_agreement": float((s["list"].argmax(1) == ref.argmax(1)).mean())}
    for r, s in saved.items():
        alone, listed = s["single"].argmax(1), s["list"][: len(s["single"])].argmax(1)
        checks[f"{r} alone vs in the list"] = {"label_agreement": float((alone == listed).mean())}
    return checks


def table(rows: dict[str, list[str]], names: list[str]) -> list[str]:
    width = max(map(len, rows)) + 2
    return [" " * width + "".join(f"{n:>14}" for n in names),
            *(f"{r:<{width}}" + "".join(f"{c:>14}" for c in cells) for r, cells in rows.items())]


def report(args: argparse.Namespace, results: dict, medians: dict, checks: dict, header: dict,
           bundle: Path) -> str:
    routes = list(results)
    names = [n for n in FIGURES if any(medians[r][n] is not None for r in routes)]
    made = f"; random weights, seed {args.seed}" if args.hf_dir is None else ""
    title = (f"spamkit {header['spamkit']} vs peers, {header['date']}: {header['cpu']}, ISA "
             f"{header['isa']}, spamkit int8 target {header['int8_target']}, "
             f"{args.threads} threads, median of {args.rounds} rounds")
    model = (f"model: {header['hf_dir']}, the only input of every route ({header['shape']}: "
             f"preset {header['preset']}; labels {', '.join(header['labels'])}{made})")
    messages = (f"messages: batch-1 latency over the first {args.messages}, throughput over one "
                f"list of the first {args.throughput_messages} at batch 32, from {header['data']}")
    lines = [title, model, messages, ""]
    lines += table({r: [shown(medians[r][n], n) for n in names] for r in routes}, names)
    peers = [r for r in routes if r not in SPAMKIT]
    for s in (r for r in SPAMKIT if r in routes and peers):
        lines += ["", f"{s}: times better than each peer (> 1: spamkit wins)"]
        rows = {}
        for peer in peers:
            # spamkit's list figure is one predict() call on the list as given; it sorts by
            # length itself, so it is held against both orders of the peer's list.
            own = {n: medians[s]["msgs/s" if n == "msgs/s sorted" else n] for n in names}
            xs = [ratio(own[n], medians[peer][n], FIGURES[n][1]) for n in names]
            rows[peer] = [f"x{x:.2f}" if x else "-" for x in xs]
        lines += table(rows, names)

    noise = ("per round, to show the noise (load: the 1-minute load average at each route's "
             "start; a running route adds about its threads)")
    lines += ["", noise]
    for r in routes:
        per = {"p50 ms": [run["latency_ms"]["p50"] for run in results[r]],
               "msgs/s": [run["throughput"]["msgs_per_s"] for run in results[r]],
               "load": [run["load_avg_1m_at_start"] for run in results[r]]}
        cells = [f"{n} " + " / ".join(f"{v:.1f}" for v in values) for n, values in per.items()]
        lines.append(f"  {r}: " + "; ".join(cells))
    return "\n".join([*lines, *targets(args, medians, checks, bundle),
                      *check_lines(results, checks)])


def shown(value: float | None, name: str) -> str:
    return "-" if value is None else FIGURES[name][2].format(value)


def targets(args: argparse.Namespace, medians: dict, checks: dict, bundle: Path) -> list[str]:
    """The report's targets for the 124M shape, each met or not."""
    lines = ["", "targets (for the gpt2 shape)"]
    for route, name, bound, at_most in TARGETS:
        if route in medians:
            got = medians[route][name]
            ok = got <= bound if at_most else got >= bound
            lines.append(f"  {route} {name} {'<=' if at_most else '>='} {bound:g}: "
                         f"{shown(got, name)} {'met' if ok else 'NOT met'}")
    manifest = read_manifest(bundle)
    fp32 = manifest.graph_files("fp32") if "fp32" in manifest.graphs else []
    int8_mb = sum((bundle / f).stat().st_size for f in [*manifest.files, "manifest.json"]
                  if f not in fp32) / 1e6
    lines.append(f"  int8 bundle (without the fp32 graph) <= 125 MB: {int8_mb:.1f} MB "
                 f"{'met' if int8_mb <= 125 else 'NOT met'}")
    # spamkit export checks a transformers folder's graph against transformers' own model.
    diff = manifest.verification.get("fp32_max_abs_logit_diff_vs_torch")
    lines.append(f"  fp32 logits within 1e-4 of transformers' (spamkit export's check): "
                 f"{diff:.1e} {'met' if diff <= 1e-4 else 'NOT met'}")
    if "spamkit-int8" in medians:
        same = checks["spamkit-int8 alone vs in the list"]["label_agreement"]
        lines.append(f"  spamkit-int8 labels the same alone and in the list: {same:.2%} of "
                     f"{args.messages} {'met' if same == 1 else 'NOT met'}")
    return lines


def check_lines(results: dict, checks: dict) -> list[str]:
    """The report's cross-checks: logits and labels between routes, tokens per message."""
    lines = ["", "cross-checks"]
    for name, c in checks.items():
        figures = [f"{k.replace('_', ' ')} " + (f"{v:.2%}" if "agreement" in k else f"{v:.1e}")
                   for k, v in c.items()]
        lines.append(f"  {name}: " + ", ".join(figures))
    tokens = {r: runs[0]["tokens_per_message"] for r, runs in results.items()}
    first = next(iter(tokens.values()))
    same = all(t == first for t in tokens.values())
    lines.append(f"  tokens per message: median {first['median']:g}, mean {first['mean']:.2f}; "
                 + ("the same for every route" if same else f"DIFFER: {tokens}"))
    return lines


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hf-dir", type=Path,
                        help="a transformers GPT2ForSequenceClassification folder "
                             "(save_pretrained, with its tokenizer) to compare on; default: a "
                             "seeded random one of --preset and --seed, made under --work")
    parser.add_argument("--peer-python",
                        help="Python of the venv with transformers<4.58 and optimum-onnx "
                             "(needed by the optimum routes)")
    parser.add_argument("--data", help="messages file (default: as spamkit finds it)")
    parser.add_argument("--preset", default="gpt2",
                        help="shape of the default folder (tiny for a smoke run)")
    parser.add_argument("--seed", type=int, default=123,
                        help="seed of the default folder's random weights")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--messages", type=int, default=200, help="batch-1 latency messages")
    parser.add_argument("--throughput-messages", type=int, default=1000)
    parser.add_argument("--routes", nargs="+", choices=ROUTES, default=list(ROUTES))
    parser.add_argument("--work", type=Path, default=Path("runs/compare"),
                        help="cache of the default folder and the exports, and where results "
                             "are saved")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--target", default="portable", choices=isa.TARGETS,
                        help="spamkit's int8 target (spamkit export --target)")
    args = parser.parse_args()
    if args.peer_python is None and any(r.startswith("optimum") for r in args.routes):
        parser.error("the optimum routes need --peer-python (make compare sets it up)")
    if args.hf_dir is not None and not (args.hf_dir / "config.json").is_file():
        parser.error(f"--hf-dir {args.hf_dir} has no config.json: give the folder "
                     "save_pretrained wrote")
    return args


def make_header(data: str, paths: dict[str, Path]) -> dict:
    """What the figures are of: versions, date, host, ISA, and the model."""
    manifest = read_manifest(paths["bundle"])
    config = json.loads((paths["hf"] / "config.json").read_text())
    shape = f"{config['n_layer']} layers, {config['n_head']} heads, width {config['n_embd']}"
    return {"spamkit": __version__, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
            "data": data, "isa": isa.host_isa().describe(), "int8_target": manifest.int8_target,
            "hf_dir": str(paths["hf"]), "preset": manifest.preset, "shape": shape,
            "labels": manifest.labels,
            **machine_facts()}


def main() -> None:
    args = parse_args()
    data = str(resolve_data(args.data))
    paths = prepare(args, data)
    (args.work / "logits").mkdir(parents=True, exist_ok=True)
    header = make_header(data, paths)
    results: dict[str, list[dict]] = {r: [] for r in args.routes}
    for n in range(args.rounds):
        for route in args.routes:
            command, spec = route_command(route, args, paths)
            measure = MeasureConfig(
                data=data, messages=args.messages, throughput_messages=args.throughput_messages,
                length_sorted=route.startswith("optimum"),
                logits=str(args.work / "logits" / f"{route}.npz"))
            t0, load = time.monotonic(), os.getloadavg()[0]
            r = run_child(command, {"route": spec, "measure": asdict(measure)})
            results[route].append({**r, "load_avg_1m_at_start": load})
            log(f"round {n + 1}/{args.rounds} {route}: p50 {r['latency_ms']['p50']:.1f} ms, "
                f"{r['throughput']['msgs_per_s']:.0f} msgs/s, peak RSS {r['peak_rss_mb']:.0f} MB "
                f"({time.monotonic() - t0:.0f} s)")
    medians = {r: median_figures(runs) for r, runs in results.items()}
    checks = cross_checks(args, args.routes)
    # Saved before the report is made: minutes of measurement never hang on its formatting.
    name = args.preset if args.hf_dir is None else args.hf_dir.resolve().name
    saved = args.work / f"results-{name}-{datetime.now():%Y%m%d-%H%M%S}.json"
    everything = {"header": header, "args": {k: str(v) for k, v in vars(args).items()},
                  "medians": medians, "checks": checks, "runs": results}
    write_bytes_atomic(saved, (json.dumps(everything, indent=2) + "\n").encode())
    log(f"results saved to {saved}")
    text = report(args, results, medians, checks, header, paths["bundle"])
    print(json.dumps(everything, indent=2) if args.json else text)


if __name__ == "__main__":
    main()
