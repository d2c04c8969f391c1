"""Load test of `spamkit serve`: real SMS messages over loopback, against Classifier.predict.

    python benchmarks/serve_load.py BUNDLE [--data FILE] [--requests 1000] [--time-limit 30]

1. For each mode, micro-batching on (the defaults) and off (--max-batch 1): a fresh
   `spamkit serve BUNDLE --port 0` on 127.0.0.1, a warm-up, then at each concurrency (1, 8, 64)
   that many keep-alive clients each sending one message per request until --requests requests
   or --time-limit seconds, whichever first. p50/p99 latency, msgs/s, errors (any answer but
   200, any broken connection), and the server's RSS before and after the mode's load.
2. Next to each level, with the server idle: Classifier.predict on the messages that level
   sends, in this process (msgs/s offline). This host runs slower under sustained load
   (docs/serving.md), so each level is compared with the offline figure taken beside it, the
   two taking turns to go first from one round to the next, and --rounds repeats the levels:
   the table gives the median over rounds of msgs/s and of that ratio, with its range.
3. A table (markdown) on stdout, with the host's CPU and ISA, and the goals at concurrency 64:
   at least 90% of the offline msgs/s, p99 <= 5x p50, no errors, RSS flat.

Only loopback; the client is asyncio in this process, so it shares the host's CPUs with the
server (as a co-located client would). Run it under `flock /tmp/spamkit-bench.lock`.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import re
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from spamkit.data import read_messages, resolve_data
from spamkit.jobs.measure import cpu_model, usable_cpus
from spamkit.runtime import Classifier
from spamkit.runtime.isa import host_isa

MODES = {"batching on": [], "batching off": ["--max-batch", "1"]}
# An RSS growth beyond this over a mode's whole load counts as not flat.
RSS_FLAT_MB = 10.0


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def offline_msgs_per_s(clf: Classifier, texts: list[str]) -> float:
    start = time.perf_counter()
    clf.predict(texts)
    return len(texts) / (time.perf_counter() - start)


class Server:
    def __init__(self, bundle: str, threads: int, extra: list[str]) -> None:
        cmd = [sys.executable, "-m", "spamkit", "serve", bundle, "--port", "0",
               "--threads", str(threads), *extra]
        log("$ " + " ".join(cmd))
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        line = self.proc.stderr.readline()
        match = re.search(r"at http://([\d.]+):(\d+)", line)
        if not match:
            raise SystemExit(f"the server did not start: {line}{self.proc.stderr.read()}")
        self.host, self.port = match.group(1), int(match.group(2))

    def batches(self) -> tuple[float, float]:
        """Micro-batches run so far, and the messages in them (from /metrics)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
        figures = dict(line.rsplit(" ", 1) for line in text.splitlines() if line[:1] != "#")
        return (float(figures["spamkit_batch_messages_count"]),
                float(figures["spamkit_batch_messages_sum"]))

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024

    def stop(self) -> int:
        self.proc.terminate()
        code = self.proc.wait(timeout=60)
        self.proc.stderr.close()
        return code


async def client(server: Server, bodies, deadline: float, results: list) -> None:
    """One keep-alive connection sending requests one after another."""
    reader = writer = None
    for body in bodies:
        if time.monotonic() > deadline:
            break
        start = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(server.host, server.port)
            writer.write(b"POST /v1/classify HTTP/1.1\r\nHost: loopback\r\n"
                         b"Content-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            status, close = await read_response(reader)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            status, close = 0, True
        results.append((status, time.perf_counter() - start))
        if close and writer is not None:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """The status of an HTTP/1.1 response read whole, and whether the server closes."""
    status = int((await reader.readline()).split()[1])
    length, close = 0, False
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "connection" and value.strip().lower() == "close":
            close = True
    await reader.readexactly(length)
    return status, close


async def drive(server: Server, texts: list[str], concurrency: int, requests: int,
                time_limit: float) -> dict:
    bodies = (json.dumps({"texts": [texts[i % len(texts)]]}).encode() for i in range(requests))
    results: list[tuple[int, float]] = []
    start = time.perf_counter()
    deadline = time.monotonic() + time_limit
    await asyncio.gather(*(client(server, bodies, deadline, results)
                           for _ in range(concurrency)))
    wall = time.perf_counter() - start
    ok = sorted(t for status, t in results if status == 200)
    return {"concurrency": concurrency, "requests": len(results),
            "errors": len(results) - len(ok), "msgs_per_s": len(ok) / wall,
            "p50_ms": 1000 * statistics.median(ok) if ok else None,
            "p99_ms": 1000 * ok[min(len(ok) - 1, int(0.99 * len(ok)))] if ok else None}


def run_mode(args: argparse.Namespace, texts: list[str], extra: list[str],
             clf: Classifier) -> dict:
    """Each concurrency level --rounds times, each run next to an offline figure."""
    server = Server(args.bundle, args.threads, [*extra, *shlex.split(args.serve_args)])
    try:
        asyncio.run(drive(server, texts, 8, 64, args.time_limit))  # warm-up
        rss_before = server.rss_mb()
        levels = {c: [] for c in args.concurrency}
        sent = [texts[i % len(texts)] for i in range(args.requests)]
        for round_ in range(args.rounds):
            for c, runs in levels.items():
                if round_ % 2 == 0:
                    offline = offline_msgs_per_s(clf, sent)
                batches, messages = server.batches()
                runs.append(asyncio.run(drive(server, texts, c, args.requests, args.time_limit)))
                batches_after, messages_after = server.batches()
                if round_ % 2 == 1:
                    offline = offline_msgs_per_s(clf, sent)
                runs[-1] |= {"offline_msgs_per_s": offline,
                             "mean_batch": (messages_after - messages)
                             / max(batches_after - batches, 1)}
                log(f"  concurrency {c}: {runs[-1]}")
        rss_after = server.rss_mb()
    finally:
        code = server.stop()
    return {"levels": [summarize(runs) for runs in levels.values()],
            "rss_before_mb": rss_before, "rss_after_mb": rss_after, "exit_code": code}


def summarize(runs: list[dict]) -> dict:
    """One concurrency level over its rounds: medians, worst p99, total errors."""
    ratios = [r["msgs_per_s"] / r["offline_msgs_per_s"] for r in runs]
    median = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731
    return {"concurrency": runs[0]["concurrency"], "rounds": len(runs),
            "requests": sum(r["requests"] for r in runs),
            "errors": sum(r["errors"] for r in runs),
            "p50_ms": median("p50_ms"), "p99_ms": max(r["p99_ms"] for r in runs),
            "msgs_per_s": median("msgs_per_s"), "offline_msgs_per_s": median("offline_msgs_per_s"),
            "of_offline": statistics.median(ratios), "of_offline_range": (min(ratios), max(ratios)),
            "mean_batch": median("mean_batch"), "runs": runs}


def report(args: argparse.Namespace, results: dict) -> list[str]:
    lines = [(f"host: {cpu_model()}, {usable_cpus()} usable CPUs, ISA {host_isa().describe()}; "
              f"--threads {args.threads} {args.serve_args}; bundle {args.bundle}; "
              f"{args.rounds} round(s) per level"),
             "",
             ("| mode | clients | requests | errors | p50 ms | p99 ms | msgs/s | offline msgs/s | "
              "% of offline (range) | mean batch | RSS MB before -> after |"),
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for mode, r in results.items():
        rss = f"{r['rss_before_mb']:.0f} -> {r['rss_after_mb']:.0f}"
        for lv in r["levels"]:
            lo, hi = lv["of_offline_range"]
            lines.append(f"| {mode} | {lv['concurrency']} | {lv['requests']} | {lv['errors']} | "
                         f"{lv['p50_ms']:.1f} | {lv['p99_ms']:.1f} | {lv['msgs_per_s']:.1f} | "
                         f"{lv['offline_msgs_per_s']:.1f} | {100 * lv['of_offline']:.0f}% "
                         f"({100 * lo:.0f}-{100 * hi:.0f}%) | {lv['mean_batch']:.1f} | {rss} |")
    if "batching on" not in results:
        return lines
    on = results["batching on"]
    top = max(on["levels"], key=lambda lv: lv["concurrency"])
    goals = {
        "msgs/s >= 90% of offline (median of rounds)": top["of_offline"] >= 0.9,
        "p99 <= 5x p50": all(r["p99_ms"] <= 5 * r["p50_ms"] for r in top["runs"]),
        "no errors": all(lv["errors"] == 0 for lv in on["levels"]),
        "RSS flat": on["rss_after_mb"] - on["rss_before_mb"] <= RSS_FLAT_MB,
        "exit 0 on SIGTERM": all(r["exit_code"] == 0 for r in results.values()),
    }
    lines += ["", f"goals at concurrency {top['concurrency']} with batching on:"]
    lines += [f"- {name}: {'met' if met else 'NOT met'}" for name, met in goals.items()]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--data", default=None, help="SMS file (default: as spamkit finds it)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--requests", type=int, default=1000,
                        help="requests per concurrency level and round at most")
    parser.add_argument("--time-limit", type=float, default=30.0,
                        help="seconds per concurrency level and round at most")
    parser.add_argument("--rounds", type=int, default=3,
                        help="times each level runs, each beside its own offline figure")
    parser.add_argument("--messages", type=int, default=1000,
                        help="distinct messages, cycled (offline too: the same list as the load)")
    parser.add_argument("--threads", type=int, default=usable_cpus())
    parser.add_argument("--serve-args", default="",
                        help="more `spamkit serve` options for both modes, e.g. '--max-wait-ms 5'")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    texts = read_messages(resolve_data(args.data), "text", "label")[0][: args.messages]
    clf = Classifier.load(args.bundle, threads=args.threads)
    clf.predict(texts[:64])  # warm-up
    results = {mode: run_mode(args, texts, MODES[mode], clf) for mode in args.modes}
    print("\n".join(report(args, results)))
    if args.json:
        args.json.write_text(json.dumps({"modes": results, "isa": host_isa().describe()},
                                        indent=2))


if __name__ == "__main__":
    main()
