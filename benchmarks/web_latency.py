"""Per-message latency of a bundle in the browser (the page of `spamkit web`, onnxruntime-web's
WebAssembly build on one thread, in Debian's headless Chromium) beside the Python runtime on the
same bundle and messages, one message at a time. Needs `make web-deps`.

    flock /tmp/spamkit-bench.lock python benchmarks/web_latency.py BUNDLE \\
        --data ../shared/data/sms_spam_collection/SMSSpamCollection --screenshot docs/web.png

The browser's figure is what the page shows as "classified in": tokenizing in JavaScript plus
session.run, timed inside the page (performance.now, which Chromium rounds to 0.1 ms).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from webpage import classify_in_page, opened, served

from spamkit.data import DataConfig, load_splits
from spamkit.runtime import Classifier
from spamkit.web.site import write_site

WARMUP = 20
SHOWN = "WINNER!! You have been selected to receive a £900 prize reward! Call 09061701461 to claim."


def browser_ms(bundle: Path, texts: list[str], screenshot: Path | None) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        write_site(bundle, Path(tmp) / "site")
        with served(Path(tmp) / "site") as url, opened(url, []) as page:
            classify_in_page(page, texts[:WARMUP])
            times = [r["ms"] for r in classify_in_page(page, texts)]
            if screenshot:  # the page as a user sees it after typing a message and Enter
                page.fill("#message", SHOWN)
                page.press("#message", "Enter")
                page.wait_for_selector("#result:not([hidden])")
                page.screenshot(path=str(screenshot), full_page=True)
            return times


def python_ms(bundle: Path, texts: list[str], threads: int | None) -> list[float]:
    clf = Classifier.load(bundle, threads=threads)
    clf.predict_proba(texts[:WARMUP])
    times = []
    for text in texts:
        start = time.perf_counter()
        clf.predict_proba([text])
        times.append((time.perf_counter() - start) * 1000)
    return times


def summary(name: str, ms: list[float]) -> str:
    q = statistics.quantiles(ms, n=10)
    return (f"{name:<38} p50 {statistics.median(ms):6.2f} ms   p90 {q[-1]:6.2f} ms   "
            f"mean {statistics.fmean(ms):6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--data", default=None, help="as `spamkit train --data`")
    parser.add_argument("--messages", type=int, default=300, help="from the test split")
    parser.add_argument("--screenshot", type=Path, help="also save a PNG of the page here")
    args = parser.parse_args()
    texts = load_splits(DataConfig(path=args.data)).test.texts[: args.messages]
    print(f"{len(texts)} SMS messages of the test split, one at a time, {platform.machine()}")
    browser = browser_ms(args.bundle, texts, args.screenshot)
    print(summary("browser (onnxruntime-web, 1 thread)", browser))
    print(summary("python runtime (onnxruntime, 1 thread)", python_ms(args.bundle, texts, 1)))
    print(summary("python runtime (onnxruntime, default)", python_ms(args.bundle, texts, None)))


if __name__ == "__main__":
    main()
