"""The service's metrics, exposed by prometheus_client: requests and messages by outcome, the
latency and micro-batch histograms, the queue depth, and the process_* series (CPU, memory,
open files) of prometheus_client's ProcessCollector."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

# An inference request's outcome, by the status spamkit answers it with (a protocol may send
# another status for it, e.g. text-embeddings-inference's 429 for a full queue).
OUTCOMES = {200: "ok", 400: "bad_json", 413: "too_large", 415: "not_json", 422: "invalid",
            500: "error", 503: "queue_full", 504: "timeout"}
OTHER = "other"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


def outcome_of(status: int) -> str:
    return OUTCOMES.get(status, OTHER)


def batch_bounds(max_batch: int) -> list[int]:
    """1, 2, 4, ... up to max_batch, which is always a bound itself."""
    bounds = [1 << i for i in range(max_batch.bit_length()) if 1 << i < max_batch]
    return [*bounds, max_batch]


class Metrics:
    """What /metrics reports, in a registry of its own. Updated from the event loop and the
    inference worker alike (prometheus_client's metrics are thread-safe)."""

    def __init__(self, max_batch: int, queue_depth: Callable[[], int]) -> None:
        self.registry = registry = CollectorRegistry()
        self.requests = Counter("spamkit_requests", "Inference requests answered (/v1/classify, "
                                "/predict, /v2/models/NAME/infer), by outcome.", ["outcome"],
                                registry=registry)
        self.messages = Counter("spamkit_messages", "Messages in the inference requests "
                                "answered, by outcome (0 for a request that could not be read).",
                                ["outcome"], registry=registry)
        for outcome in [*dict.fromkeys(OUTCOMES.values()), OTHER]:  # each shown from the start
            self.requests.labels(outcome)
            self.messages.labels(outcome)
        self.latency = Histogram("spamkit_request_duration_seconds", "Inference requests, from "
                                 "arrival to answer.", buckets=LATENCY_BUCKETS, registry=registry)
        self.batches = Histogram("spamkit_batch_messages", "Messages per micro-batch run by the "
                                 "inference worker.", buckets=batch_bounds(max_batch),
                                 registry=registry)
        Gauge("spamkit_queue_depth", "Messages waiting for the worker.",
              registry=registry).set_function(queue_depth)
        ProcessCollector(registry=registry)

    def record_request(self, outcome: str, messages: int, seconds: float) -> None:
        self.requests.labels(outcome).inc()
        self.messages.labels(outcome).inc(messages)
        self.latency.observe(seconds)

    def record_batch(self, messages: int) -> None:
        self.batches.observe(messages)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric (CONTENT_TYPE)."""
        return generate_latest(self.registry)
