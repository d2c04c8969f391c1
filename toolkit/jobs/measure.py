"""Timing a classifier as an app meets it: shared by `spamkit bench` and benchmarks/compare.py,
so that spamkit and its peers are measured by the same code.

Every route is measured in a fresh process of its own. Start-up (interpreter, imports, load,
first answer) is only honest from a process's start, and thread pools of several runtimes in
one process distort each other on a small machine. The parent runs the child with the moment
it started it (time.monotonic is one clock for all processes); the child loads the route,
answers a first message, then times batch-1 latency and list throughput on real messages and
prints one JSON object as the last line of its stdout.

Standard library and NumPy only: the peer routes import this module in a venv of their own.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from spamkit.errors import SpamkitError

# The first answer comes before the data file is read, so reading it is not start-up time.
FIRST_MESSAGE = "Ok lar... Joking wif u oni..."
MB = 1e6  # decimal megabytes, as the performance figures in docs/ use


@dataclass(frozen=True)
class MeasureConfig:
    data: str  # the messages: a local file read by spamkit.data.read_texts
    text_column: str | None = None  # None: labelled data; else a file of messages (read_texts)
    messages: int = 200  # batch-1 latency over the first N messages, in dataset order
    warmup: int = 10  # untimed batch-1 calls first
    throughput_messages: int = 1000  # one list of the first N messages, in dataset order
    length_sorted: bool = False  # also time the same list sorted by token count
    # Save the logits here (.npz): "single", the batch-1 run's; "list", the throughput run's.
    logits: str | None = None

    def __post_init__(self) -> None:
        if self.messages < 1 or self.throughput_messages < 1:
            raise SpamkitError("--messages and --throughput-messages must be at least 1")
        if self.warmup < 0:
            raise SpamkitError("--warmup cannot be negative")


class Route(Protocol):
    """A classifier under test, loaded."""

    def logits(self, texts: list[str]) -> np.ndarray:
        """[len(texts), classes], in the order given: the route's own way to classify a list."""
        ...

    def token_counts(self, texts: list[str]) -> list[int]: ...

    def facts(self) -> dict:
        """What is measured: graph, file size, threads, library versions."""
        ...


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in bytes on macOS, in KiB on Linux.
    return peak / MB if sys.platform == "darwin" else peak * 1024 / MB


def measure(load: Callable[[], Route], cfg: MeasureConfig, started: float) -> dict:
    """Load, answer a first message, then time batch-1 latency and list throughput.

    Args:
        load: makes the route (imports done, model not yet loaded).
        cfg: the messages and how many to time.
        started: time.monotonic() when the parent started this process.

    Returns:
        Seconds of start-up (import, load, first answer), latency in milliseconds, throughput,
        peak RSS in MB, tokens per message, and the route's facts.
    """
    imported = time.monotonic()
    route = load()
    loaded = time.monotonic()
    route.logits([FIRST_MESSAGE])
    answered = time.monotonic()
    rss_first = peak_rss_mb()

    from spamkit.data import read_texts

    texts = read_texts(Path(cfg.data), cfg.text_column)
    alone, latency = time_latency(route, texts, cfg)
    listed, counts, throughput = time_throughput(route, texts[: cfg.throughput_messages],
                                                 cfg.length_sorted)
    if cfg.logits:
        np.savez(cfg.logits, single=np.concatenate(alone), list=listed)
    return {
        "startup_s": answered - started,
        "import_s": imported - started,
        "load_s": loaded - imported,
        "first_answer_s": answered - loaded,
        "rss_after_first_answer_mb": rss_first,
        "latency_ms": latency,
        "throughput": throughput,
        "tokens_per_message": {
            "median": float(np.median(counts)),
            "mean": float(np.mean(counts)),
            "max": int(max(counts)),
        },
        "peak_rss_mb": peak_rss_mb(),
        **route.facts(),
    }


def time_latency(route: Route, texts: list[str], cfg: MeasureConfig
                 ) -> tuple[list[np.ndarray], dict]:
    """Batch-1 calls on the first `cfg.messages` texts, after `cfg.warmup` untimed ones: their
    logits, and the latency statistics in milliseconds."""
    for text in texts[: cfg.warmup]:
        route.logits([text])
    alone, latency = [], []
    for text in texts[: cfg.messages]:
        start = time.perf_counter()
        alone.append(route.logits([text]))
        latency.append((time.perf_counter() - start) * 1e3)
    latency = np.array(latency)
    return alone, {
        "messages": len(alone),
        "warmup": min(cfg.warmup, len(texts)),
        "p50": float(np.percentile(latency, 50)),
        "p90": float(np.percentile(latency, 90)),
        "mean": float(latency.mean()),
        "min": float(latency.min()),
        "max": float(latency.max()),
    }


def time_throughput(route: Route, many: list[str], length_sorted: bool
                    ) -> tuple[np.ndarray, list[int], dict]:
    """One call on the list `many` (and with `length_sorted` one more on it sorted by token
    count): its logits, the token counts, and messages per second."""
    start = time.perf_counter()
    listed = route.logits(many)
    seconds = time.perf_counter() - start
    counts = route.token_counts(many)
    throughput = {"messages": len(many), "seconds": seconds, "msgs_per_s": len(many) / seconds}
    if length_sorted:
        by_length = [many[i] for i in np.argsort(counts, kind="stable")]
        start = time.perf_counter()
        route.logits(by_length)
        sorted_s = time.perf_counter() - start
        throughput |= {"sorted_seconds": sorted_s, "sorted_msgs_per_s": len(many) / sorted_s}
    return listed, counts, throughput


def child_main(loader_for: Callable[[dict], Callable[[], Route]]) -> None:
    """Entry point of a measuring process, argv: SPEC_JSON STARTED. SPEC holds "measure" (a
    MeasureConfig) and "route" (what `loader_for` needs to make the route's loader)."""
    try:
        spec, started = json.loads(sys.argv[1]), float(sys.argv[2])
        cfg = MeasureConfig(**spec["measure"])
        print(json.dumps(measure(loader_for(spec["route"]), cfg, started)))
    except (SpamkitError, OSError, ValueError) as e:
        print(f"spamkit: error: {e}", file=sys.stderr)
        sys.exit(1)


def run_child(command: list[str], spec: dict, timeout: float | None = None) -> dict:
    """Start a measuring process (`command` SPEC_JSON STARTED) and return its JSON.

    Args:
        command: the process to run (e.g. `python -m spamkit.jobs.bench`, whose main is
            child_main).
        spec: its "route" and "measure" (a MeasureConfig's fields).
        timeout: seconds to wait for it (None: no limit).

    Returns:
        The result the process printed last (measure's).

    Raises:
        SpamkitError: the process failed (with its error line), ran past `timeout`, or
            printed no result.
    """
    started = time.monotonic()
    try:
        proc = subprocess.run([*command, json.dumps(spec), repr(started)],
                              capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise SpamkitError(f"the measuring process took over {timeout:.0f} s; stopped") from None
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        why = lines[-1].removeprefix("spamkit: error: ") if lines else f"exit {proc.returncode}"
        raise SpamkitError(why)
    lines = proc.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise SpamkitError(f"the measuring process printed no result: {proc.stdout[-200:]!r}"
                           ) from None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def machine_facts() -> dict:
    return {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "usable_cpus": usable_cpus(),
        "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
