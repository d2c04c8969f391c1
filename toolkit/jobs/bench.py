"""`spamkit bench`: how fast a bundle classifies on this machine, as an app meets it.

`run_bench` starts a fresh process (`python -m spamkit.jobs.bench`) that imports the runtime, loads
the bundle and answers a first message (start-up, timed from the process's start), then times
batch-1 latency and `Classifier.logits` (what `predict` runs) over a list of real messages; see
spamkit.jobs.measure. Never imports torch: it runs where an app would.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from spamkit import __version__
from spamkit.errors import SpamkitError
from spamkit.jobs.measure import MeasureConfig, child_main, machine_facts, run_child
from spamkit.runtime.classifier import (
    BATCH_TOKENS,
    Classifier,
    check_load_options,
    check_options,
    ort,
)
from spamkit.runtime.isa import isa_facts


@dataclass(frozen=True)
class BenchConfig:
    bundle: str
    threads: int  # ONNX Runtime intra-op threads
    device: str = "cpu"
    precision: str | None = None  # None: the graph Classifier.load picks
    batch_size: int = 32
    digest: str | None = None  # pins the bundle: any other is refused

    def __post_init__(self) -> None:
        try:  # the checks Classifier.load makes, here before a process is started
            check_load_options(self.threads, self.precision, self.device)
            check_options(self.batch_size, BATCH_TOKENS, None)
        except ValueError as e:
            raise SpamkitError(str(e)) from None


class BundleRoute:
    """A loaded Classifier, as spamkit.jobs.measure times it."""

    def __init__(self, clf: Classifier, cfg: BenchConfig) -> None:
        self.clf = clf
        self.cfg = cfg

    def logits(self, texts: list[str]) -> np.ndarray:
        return self.clf.logits(texts)

    def token_counts(self, texts: list[str]) -> list[int]:
        return [len(x) for x in self.clf.tokenizer.encode_batch(texts)]

    def facts(self) -> dict:
        manifest, precision = self.clf.manifest, self.clf.precision
        bundle = Path(self.cfg.bundle)
        graph_bytes = sum((bundle / f).stat().st_size for f in manifest.graph_files(precision))
        return {"precision": precision, "device": self.clf.device,
                "graph": manifest.graphs[precision],
                "graph_mb": graph_bytes / 1e6, "threads": self.cfg.threads,
                "batch_size": self.cfg.batch_size, "onnxruntime": ort.__version__,
                "providers": self.clf.session.get_providers(),
                **isa_facts(precision, manifest.int8_target)}


def loader_for(spec: dict) -> Callable[[], BundleRoute]:
    cfg = BenchConfig(**spec)

    def load() -> BundleRoute:
        clf = Classifier.load(cfg.bundle, device=cfg.device, threads=cfg.threads,
                              precision=cfg.precision, batch_size=cfg.batch_size,
                              digest=cfg.digest)
        return BundleRoute(clf, cfg)

    return load


def child_command() -> list[str]:
    """The measuring process for a bundle; benchmarks/compare.py runs it too."""
    return [sys.executable, "-m", "spamkit.jobs.bench"]


def run_bench(bench: BenchConfig, measure: MeasureConfig) -> dict:
    """Measure `bench.bundle` in a fresh process; add the facts of the machine.

    Args:
        bench: the bundle and how Classifier.load opens it.
        measure: the messages and how many to time.

    Returns:
        Start-up, batch-1 latency, throughput, peak memory and token counts (spamkit.jobs.
        measure), with the machine, the bundle and the data file.

    Raises:
        SpamkitError: the measuring process failed (with its error line) or printed no
            result.
    """
    spec = {"route": asdict(bench), "measure": asdict(measure)}
    result = run_child(child_command(), spec)
    return {"bundle": bench.bundle, "data": measure.data, **result,
            "machine": {**machine_facts(), "spamkit": __version__}}


def format_table(r: dict) -> str:
    """The human report of run_bench's result."""
    lat, thr, tok, m = r["latency_ms"], r["throughput"], r["tokens_per_message"], r["machine"]
    startup = (f"{r['startup_s']:.2f} s from process start to first answer (imports "
               f"{r['import_s']:.2f} s, load {r['load_s']:.2f} s, first answer "
               f"{r['first_answer_s'] * 1e3:.0f} ms)")
    latency = (f"p50 {lat['p50']:.1f} ms, p90 {lat['p90']:.1f} ms (mean {lat['mean']:.1f}, max "
               f"{lat['max']:.1f}) over {lat['messages']} messages after {lat['warmup']} warm-up")
    throughput = (f"{thr['msgs_per_s']:.0f} msgs/s: {thr['messages']} messages in dataset order "
                  f"in one call, {thr['seconds']:.2f} s")
    rss = (f"{r['peak_rss_mb']:.0f} MB ({r['rss_after_first_answer_mb']:.0f} MB after the first "
           "answer)")
    messages = (f"{tok['median']:.0f} tokens median, {tok['mean']:.1f} mean, {tok['max']} max "
                f"over the {thr['messages']} listed, from {r['data']}")
    machine = (f"{m['cpu']}, {m['usable_cpus']} of {m['cpus']} CPUs usable, load "
               f"{m['load_avg_1m']:.2f}; Python {m['python']}")
    software = (f"spamkit {m['spamkit']}, ONNX Runtime {r['onnxruntime']} "
                f"({', '.join(r['providers'])})")
    isa = f"host {r['host_isa']}; graph built for {r['graph_target']}"
    rows = [("ISA", isa), ("start-up", startup), ("batch-1 latency", latency),
            ("throughput", throughput), ("peak RSS", rss), ("messages", messages),
            ("machine", machine), ("software", software)]
    head = (f"{r['bundle']}: {r['precision']} graph {r['graph']} ({r['graph_mb']:.1f} MB) on "
            f"{r['device']}, threads {r['threads']}, batch size {r['batch_size']}")
    width = max(len(name) for name, _ in rows)
    return "\n".join([head, *(f"  {name:<{width}}  {text}" for name, text in rows)])


if __name__ == "__main__":
    child_main(loader_for)
