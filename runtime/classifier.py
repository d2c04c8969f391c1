"""`Classifier`: load a bundle, tokenize, batch, run ONNX Runtime, return labels or probabilities."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

try:
    import onnxruntime as ort
except ImportError as e:  # onnxruntime and onnxruntime-gpu are alternatives, so an extra
    raise ImportError(
        "spamkit.runtime needs ONNX Runtime: pip install 'spamkit[cpu]', "
        "or 'spamkit[gpu]' on a machine with CUDA"
    ) from e

from spamkit.runtime.bundle import BundleError, Manifest, read_manifest, verify_files
from spamkit.runtime.device import choose_graph, providers_for, runs_on_cuda
from spamkit.runtime.tokenizer import Tokenizer

# A batch stops at this many (padded) tokens by default: ONNX Runtime's working memory grows
# with the tokens in flight (~100 KB each for the 124M shape), while the int8 matmuls are near
# full speed at a hundred rows already (`spamkit bench` on the 124M int8 bundle: 150-158 msgs/s
# and 216 MB peak RSS at 128 tokens, 147-170 msgs/s and 225 MB at 256).
BATCH_TOKENS = 128


def make_session(
    graph: Path, providers: list[str], threads: int | None = None
) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    try:
        # ONNX Runtime (>= 1.20) itself refuses external-data paths that leave the graph's
        # directory; any refusal is reported as a bad bundle.
        return ort.InferenceSession(str(graph), sess_options=options, providers=providers)
    except Exception as e:  # noqa: BLE001 - ORT raises its own Fail/InvalidGraph types
        raise BundleError(f"ONNX Runtime cannot load {graph}: {str(e).splitlines()[0]}") from None


def _open_graph(bundle: Path, manifest: Manifest, precision: str, providers: list[str],
                threads: int | None) -> ort.InferenceSession:
    """A session on the bundle's `precision` graph, checked against its sha256 first."""
    verify_files(bundle, manifest, manifest.graph_files(precision))
    return make_session(bundle / manifest.graphs[precision], providers, threads)


def pad_batch(batch: list[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad token ids to the batch's longest: the graph's input_ids and attention_mask."""
    width = max(len(x) for x in batch)
    input_ids = np.full((len(batch), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(batch), width), dtype=np.int64)
    for i, x in enumerate(batch):
        input_ids[i, : len(x)] = x
        mask[i, : len(x)] = 1
    return input_ids, mask


class Classifier:
    """A text classifier backed by one ONNX Runtime session. Safe to share between threads."""

    def __init__(
        self,
        session: ort.InferenceSession,
        tokenizer: Tokenizer,
        manifest: Manifest,
        device: str,
        precision: str,
        batch_size: int = 32,
        threshold: float | None = None,
        batch_tokens: int = BATCH_TOKENS,
    ) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.manifest = manifest
        self.labels: list[str] = list(manifest.labels)
        self.device = device
        self.precision = precision
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens
        # Messages read, tokenized and length-sorted together: bounds memory on huge inputs.
        self.chunk_size = 64 * batch_size
        stored = manifest.threshold or {}
        # predict() answers `threshold_label` when its probability reaches `threshold`;
        # without one it answers the most probable label.
        self.threshold_label: str | None = stored.get("label")
        if threshold is not None and self.threshold_label is None:
            if len(self.labels) != 2:
                raise ValueError("threshold= needs a calibrated bundle or a two-class model")
            self.threshold_label = self.labels[1]
        self.threshold = threshold if threshold is not None else stored.get("value")

    @classmethod
    def load(
        cls,
        bundle: str | os.PathLike[str],
        device: str = "cpu",
        threads: int | None = None,
        precision: str | None = None,
        batch_size: int = 32,
        threshold: float | None = None,
        batch_tokens: int = BATCH_TOKENS,
    ) -> Classifier:
        """Load a bundle. `device` is "cpu", "cuda" (an error where ONNX Runtime cannot run on
        a GPU) or "auto" (CUDA when it can, else the CPU with a warning; `.device` says which).
        `precision` picks a graph ("int8", "fp16", "fp32"); by default the smallest one meant
        for the device: int8 on a CPU, fp16 on a GPU, else fp32. `threads` caps ONNX Runtime's
        intra-op threads (default: one per physical core). `threshold` overrides the
        probability threshold `spamkit calibrate` stored for the positive class (for a
        two-class model without one, the second label, e.g. "spam"). A batch holds at most
        `batch_size` messages and `batch_tokens` padded tokens."""
        bundle = Path(bundle)
        manifest = read_manifest(bundle)
        verify_files(bundle, manifest, [manifest.tokenizer])
        providers, running = providers_for(device)
        graph = choose_graph(manifest, bundle, running, precision)
        session = _open_graph(bundle, manifest, graph, providers, threads)
        if running == "cuda" and not runs_on_cuda(session, device):
            running = "cpu"
            graph = choose_graph(manifest, bundle, running, precision)
            session = _open_graph(bundle, manifest, graph, ["CPUExecutionProvider"], threads)
        tokenizer = Tokenizer.load(bundle / manifest.tokenizer, manifest.context_length)
        return cls(session, tokenizer, manifest, running, graph, batch_size, threshold,
                   batch_tokens)

    def logits(self, texts: str | Iterable[str]) -> np.ndarray:
        """Class logits, [n, classes] (or [classes] for a single string).

        `texts` may be any iterable, a generator included: it is read and tokenized
        `chunk_size` messages at a time, so memory stays bounded whatever the input's size."""
        if isinstance(texts, str):
            return self.logits([texts])[0]
        if isinstance(texts, (bytes, bytearray)):
            raise TypeError("texts is bytes: decode it to str first")
        parts = [np.empty((0, len(self.labels)), dtype=np.float32)]
        it = iter(texts)
        for start in itertools.count(0, self.chunk_size):
            chunk = list(itertools.islice(it, self.chunk_size))
            if not chunk:
                break
            for i, t in enumerate(chunk, start):
                if not isinstance(t, str):
                    raise TypeError(f"texts[{i}] is {type(t).__name__}, not str")
            parts.append(self._logits(self.tokenizer.encode_batch(chunk)))
        return np.concatenate(parts)

    def _logits(self, ids: list[list[int]]) -> np.ndarray:
        out = np.empty((len(ids), len(self.labels)), dtype=np.float32)
        # Batches of similar length waste little compute on padding; results go back to the
        # caller's order. Right padding never changes a message's logits (causal attention).
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for rows in self._batches(order, [len(x) for x in ids]):
            out[rows] = self._run([ids[i] for i in rows])
        return out

    def _batches(self, order: list[int], lengths: list[int]) -> Iterator[list[int]]:
        """Consecutive runs of `order` (shortest first) within the batch's size and token cap;
        a message longer than the cap runs alone."""
        rows: list[int] = []
        for i in order:
            if rows and (len(rows) == self.batch_size
                         or (len(rows) + 1) * lengths[i] > self.batch_tokens):
                yield rows
                rows = []
            rows.append(i)
        if rows:
            yield rows

    def _run(self, batch: list[list[int]]) -> np.ndarray:
        # On CUDA too: session.run copies the two host arrays to the GPU and the logits back,
        # once each, which is all I/O binding would do when the inputs start on the host.
        input_ids, mask = pad_batch(batch, self.tokenizer.pad_id)
        return self.session.run(["logits"], {"input_ids": input_ids, "attention_mask": mask})[0]

    def predict_proba(self, texts: str | Iterable[str]) -> np.ndarray:
        """Class probabilities (softmax of the logits), columns in the order of `labels`."""
        z = self.logits(texts)
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def predict(self, texts: str | Iterable[str]) -> str | list[str]:
        """The label for each text: one string for a string, a list for a list."""
        if isinstance(texts, str):
            return self.predict([texts])[0]
        return [self.labels[i] for i in self.decide(self.predict_proba(texts))]

    def decide(self, proba: np.ndarray) -> np.ndarray:
        """Class index for each row of `predict_proba`'s output. With a threshold, the
        positive label wins whenever its probability reaches it; otherwise (and without one)
        the most probable label does."""
        if self.threshold is None or len(proba) == 0:
            return proba.argmax(axis=-1)
        positive = self.labels.index(self.threshold_label)
        others = proba.copy()
        others[:, positive] = -1.0
        return np.where(proba[:, positive] >= self.threshold, positive, others.argmax(axis=-1))
