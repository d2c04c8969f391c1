"""Dynamic micro-batching: requests' messages wait in one bounded queue; one inference thread
takes as many as fit a micro-batch and runs them through the Classifier together.

One worker, so ONNX Runtime never runs more than one graph at a time: its intra-op threads
(`--threads`) are all the cores it takes. The micro-batch goes through `Classifier.logits`,
which sorts it by length into runs of its own `batch_tokens`, so a message's answer is the one
`Classifier.logits` gives it alone (the probabilities are their softmax; the int8 graph is
batch-invariant). A micro-batch that fails is run again request by request: each request gets
its own answer, or the error its own messages give."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from spamkit.runtime.classifier import Classifier
from spamkit.serve.config import ServeConfig
from spamkit.serve.metrics import Metrics


class QueueFull(Exception):
    """The queue has no room for the request's messages."""


@dataclass(eq=False)
class Job:
    """One request: its messages, their logits as they come, and who is waiting."""

    texts: list[str]
    future: asyncio.Future
    arrived: float  # time.monotonic()
    logits: np.ndarray | None = None
    left: int = 0
    dropped: bool = False  # answered already (timed out): its messages are not run


@dataclass
class Item:
    job: Job
    index: int
    tokens: int | None = None  # counted when the worker first looks at it


class Batcher:
    def __init__(self, classifier: Classifier, config: ServeConfig, metrics: Metrics) -> None:
        self.classifier = classifier
        self.config = config
        self.metrics = metrics
        self._queue: deque[Item] = deque()
        self._carry: Item | None = None  # taken from the queue, but did not fit the last batch
        self._ready = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._work, name="spamkit-inference",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive() and not self._stopping

    def depth(self) -> int:
        with self._ready:
            return len(self._queue) + (self._carry is not None)

    async def classify(self, texts: list[str]) -> np.ndarray:
        """Class logits of `texts`, in order. QueueFull when they do not fit the queue,
        TimeoutError past the request timeout (their messages then are never run)."""
        loop = asyncio.get_running_loop()
        job = Job(texts, loop.create_future(), time.monotonic(), left=len(texts))
        job.logits = np.empty((len(texts), len(self.classifier.labels)), dtype=np.float32)
        if not texts:
            return job.logits
        self._put(job)
        try:
            return await asyncio.wait_for(job.future, self.config.request_timeout_s)
        finally:
            job.dropped = True

    def _put(self, job: Job) -> None:
        with self._ready:
            if self._stopping:
                raise QueueFull("the server is shutting down")
            depth = len(self._queue) + (self._carry is not None)
            if depth + len(job.texts) > self.config.max_queue:
                raise QueueFull(f"the queue holds {depth} of at most {self.config.max_queue} "
                                f"messages: no room for {len(job.texts)} more")
            self._queue.extend(Item(job, i) for i in range(len(job.texts)))
            self._ready.notify()

    def stop(self) -> None:
        """Run what is queued, then end the worker."""
        with self._ready:
            self._stopping = True
            self._ready.notify()
        self._thread.join()

    def _work(self) -> None:
        while batch := self._take_batch():
            self._run(batch)

    def _take_batch(self) -> list[Item]:
        """The next micro-batch, oldest message first: it waits for the first message, then
        for more until max_wait_ms after that one arrived, while they fit. Empty at the end."""
        cfg = self.config
        batch: list[Item] = []
        longest, deadline = 0, None
        while len(batch) < cfg.max_batch:
            item = self._next_item(deadline)
            if item is None:
                break
            if item.job.dropped:
                continue
            if item.tokens is None:
                item.tokens = len(self.classifier.tokenizer.encode(item.job.texts[item.index]))
            if batch and (len(batch) + 1) * max(longest, item.tokens) > cfg.max_batch_tokens:
                self._carry = item
                break
            batch.append(item)
            longest = max(longest, item.tokens)
            if deadline is None:
                deadline = item.job.arrived + cfg.max_wait_ms / 1000
        return batch

    def _next_item(self, deadline: float | None) -> Item | None:
        """The oldest waiting message; without a deadline, waits for one until the end."""
        with self._ready:
            while not (self._carry or self._queue):
                left = None if deadline is None else deadline - time.monotonic()
                if self._stopping or (left is not None and left <= 0):
                    return None
                self._ready.wait(left)
            if self._carry:
                item, self._carry = self._carry, None
                return item
            return self._queue.popleft()

    def _run(self, batch: list[Item]) -> None:
        """Classify a micro-batch and hand each finished request its answer."""
        self.metrics.record_batch(len(batch))
        try:
            logits = self.classifier.logits([it.job.texts[it.index] for it in batch])
        except Exception:  # noqa: BLE001 - one request's failing message fails it alone
            for job in {it.job: None for it in batch}:
                self._run_alone(job)
            return
        for it, row in zip(batch, logits):
            job = it.job
            job.logits[it.index] = row
            job.left -= 1
            if job.left == 0:
                _settle(job.future, result=job.logits)

    def _run_alone(self, job: Job) -> None:
        """A request of a failed micro-batch, all its messages on their own: its answer, or the
        error Classifier.logits gives it alone (so naming its own texts[i])."""
        if job.dropped:
            return
        job.dropped = True  # its messages still queued are not run again
        try:
            _settle(job.future, result=self.classifier.logits(job.texts))
        except Exception as e:  # noqa: BLE001 - the request's own failure, for its own answer
            _settle(job.future, error=e)


def _settle(future: asyncio.Future, result: object = None,
            error: BaseException | None = None) -> None:
    """Answer a request's future from the worker thread, unless it was answered already."""
    def settle() -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    future.get_loop().call_soon_threadsafe(settle)
