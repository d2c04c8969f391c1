"""The service's counters and histograms in Prometheus's text format, written here: a few
lines, and one dependency fewer to keep in step."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Sequence

# A classify request's outcome, by the status it was answered with.
OUTCOMES = {200: "ok", 400: "bad_json", 413: "too_large", 415: "not_json", 422: "invalid",
            500: "error", 503: "queue_full", 504: "timeout"}
OTHER = "other"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def outcome_of(status: int) -> str:
    return OUTCOMES.get(status, OTHER)


class Histogram:
    """Observations counted into buckets (each counts those <= its bound), with sum and count."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last: above every bound
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def lines(self, name: str) -> list[str]:
        out, total = [], 0
        for bound, count in zip((*map(_number, self.bounds), "+Inf"), self.counts):
            total += count
            out.append(f'{name}_bucket{{le="{bound}"}} {total}')
        return [*out, f"{name}_sum {_number(self.sum)}", f"{name}_count {total}"]


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def batch_bounds(max_batch: int) -> list[int]:
    """1, 2, 4, ... up to max_batch, which is always a bound itself."""
    bounds = [1 << i for i in range(max_batch.bit_length()) if 1 << i < max_batch]
    return [*bounds, max_batch]


class Metrics:
    """What /metrics reports. Updated from the event loop and the inference worker alike."""

    def __init__(self, max_batch: int, queue_depth: Callable[[], int]) -> None:
        self._lock = threading.Lock()
        names = [*dict.fromkeys(OUTCOMES.values()), OTHER]
        self.requests = dict.fromkeys(names, 0)
        self.messages = dict.fromkeys(names, 0)
        self.latency = Histogram(LATENCY_BUCKETS)
        self.batches = Histogram(batch_bounds(max_batch))
        self.queue_depth = queue_depth

    def record_request(self, outcome: str, messages: int, seconds: float) -> None:
        with self._lock:
            self.requests[outcome] += 1
            self.messages[outcome] += messages
            self.latency.observe(seconds)

    def record_batch(self, messages: int) -> None:
        with self._lock:
            self.batches.observe(messages)

    def render(self) -> str:
        with self._lock:
            lines = [
                *_family("spamkit_requests_total", "counter",
                         "Classify requests answered, by outcome.",
                         [f'spamkit_requests_total{{outcome="{k}"}} {v}'
                          for k, v in self.requests.items()]),
                *_family("spamkit_messages_total", "counter",
                         "Messages in the classify requests answered, by outcome (0 for a "
                         "request that could not be read).",
                         [f'spamkit_messages_total{{outcome="{k}"}} {v}'
                          for k, v in self.messages.items()]),
                *_family("spamkit_request_duration_seconds", "histogram",
                         "Classify requests, from arrival to answer.",
                         self.latency.lines("spamkit_request_duration_seconds")),
                *_family("spamkit_batch_messages", "histogram",
                         "Messages per micro-batch run by the inference worker.",
                         self.batches.lines("spamkit_batch_messages")),
            ]
        lines += _family("spamkit_queue_depth", "gauge", "Messages waiting for the worker.",
                         [f"spamkit_queue_depth {self.queue_depth()}"])
        return "\n".join(lines) + "\n"


def _family(name: str, kind: str, help: str, samples: list[str]) -> list[str]:
    return [f"# HELP {name} {help}", f"# TYPE {name} {kind}", *samples]
