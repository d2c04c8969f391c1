"""Per-message latency of bundles in the browser (the page of `spamkit web`, onnxruntime-web's
WebAssembly build in Debian's headless Chromium) beside the Python runtime on the same bundle,
graph and messages, one message at a time, by the message's length in tokens. Needs `make
web-deps`.

    python benchmarks/web_latency.py BUNDLE [BUNDLE ...] \\
        --data ../shared/data/sms_spam_collection/SMSSpamCollection [--screenshot docs/web.png]

Each bundle's routes: the page with every logical core (cross-origin isolated, as a plain static
server and its service worker give it) and with one thread, on each graph it carries for
WebAssembly (int8 and fp32 where the bundle has both); the Python runtime on one thread and on
its default (all cores), on the same graph. The browser's figure is what the page shows as
"classified in": tokenizing in JavaScript plus session.run, timed inside the page
(performance.now, which Chromium rounds to 0.1 ms). Prints a Markdown table: p50 overall and per
token-length bucket, p90 and mean, in ms.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from webpage import classify_in_page, opened, served

from spamkit.data import DataConfig, load_splits
from spamkit.runtime import Classifier
from spamkit.runtime.isa import host_isa
from spamkit.web.site import write_site

WARMUP = 20
BUCKETS = ((1, 16), (17, 32), (33, 64), (65, None))  # tokens per message
SHOWN = "WINNER!! You have been selected to receive a £900 prize reward! Call 09061701461 to claim."


def browser_routes(site: Path, texts: list[str], graphs: list[str],
                   screenshot: Path | None) -> dict[str, list[float]]:
    """The page's milliseconds per message for each graph, on every core and on one thread."""
    times = {}
    with served(site) as url:
        for graph in graphs:
            for threads in ("all", 1):
                query = f"?backend=wasm&graph={graph}" + ("" if threads == "all" else "&threads=1")
                with opened(url + query, []) as page:
                    classify_in_page(page, texts[:WARMUP])
                    ran = page.evaluate("async () => (await window.spamkit).threads")
                    name = f"browser wasm {graph}, {ran} thread{'s' * (ran > 1)}"
                    times[name] = [r["ms"] for r in classify_in_page(page, texts)]
                    if screenshot and threads == "all" and graph == graphs[0]:
                        save_screenshot(page, screenshot)
    return times


def save_screenshot(page, path: Path) -> None:
    """The page as a user sees it after typing a message and Enter."""
    page.fill("#message", SHOWN)
    page.press("#message", "Enter")
    page.wait_for_selector("#result:not([hidden])")
    page.screenshot(path=str(path), full_page=True)


def python_ms(bundle: Path, texts: list[str], graph: str, threads: int | None) -> list[float]:
    clf = Classifier.load(bundle, threads=threads, precision=graph)
    clf.predict_proba(texts[:WARMUP])
    times = []
    for text in texts:
        start = time.perf_counter()
        clf.predict_proba([text])
        times.append((time.perf_counter() - start) * 1000)
    return times


def in_bucket(n: int, lo: int, hi: int | None) -> bool:
    return lo <= n and (hi is None or n <= hi)


def row(name: str, ms: list[float], lengths: list[int]) -> str:
    """A table row: p50, p50 per bucket of token length, p90, mean."""
    cells = [statistics.median(ms)]
    for lo, hi in BUCKETS:
        inside = [t for t, n in zip(ms, lengths, strict=True) if in_bucket(n, lo, hi)]
        cells.append(statistics.median(inside) if inside else float("nan"))
    cells += [statistics.quantiles(ms, n=10)[-1], statistics.fmean(ms)]
    return f"| {name} | " + " | ".join(f"{c:.2f}" for c in cells) + " |"


def header(lengths: list[int]) -> list[str]:
    def bucket(lo: int, hi: int | None) -> str:
        n = sum(in_bucket(x, lo, hi) for x in lengths)
        return f"{lo}-{hi} tok ({n})" if hi else f"{lo}+ tok ({n})"

    names = ["route", "p50", *(bucket(lo, hi) for lo, hi in BUCKETS), "p90", "mean"]
    return ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]


def measure(bundle: Path, texts: list[str], screenshot: Path | None,
            say: Callable[[str], None]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        site = write_site(bundle, Path(tmp) / "site")
        graphs = list(dict.fromkeys(site.graphs.values()))  # WebAssembly runs each graph carried
        clf = Classifier.load(bundle, threads=1)
        lengths = [len(ids) for ids in clf.tokenizer.encode_batch(texts)]
        say(f"\n{bundle} ({clf.manifest.preset}), {len(texts)} messages one at a time (p50 by "
            "message length in tokens), ms\n")
        for line in header(lengths):
            say(line)
        for name, ms in browser_routes(Path(tmp) / "site", texts, graphs, screenshot).items():
            say(row(name, ms, lengths))
    for graph in graphs:
        for threads, label in ((1, "1 thread"), (None, f"default ({os.cpu_count()} cores)")):
            say(row(f"python {graph}, {label}", python_ms(bundle, texts, graph, threads), lengths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundles", type=Path, nargs="+")
    parser.add_argument("--data", default=None, help="as `spamkit train --data`")
    parser.add_argument("--messages", type=int, default=300, help="from the test split")
    parser.add_argument("--screenshot", type=Path, help="also save a PNG of the first page here")
    args = parser.parse_args()
    texts = load_splits(DataConfig(path=args.data)).test.texts[: args.messages]
    print(f"{platform.machine()}, ISA {host_isa().name}, {os.cpu_count()} logical cores")
    for i, bundle in enumerate(args.bundles):
        measure(bundle, texts, args.screenshot if i == 0 else None,
                lambda line: print(line, flush=True))


if __name__ == "__main__":
    main()
