"""`Classifier`: load a bundle, tokenize, batch, run the graph's session (runtime/session.py
makes it), return labels or probabilities."""

from __future__ import annotations

import itertools
import math
import numbers
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np

try:
    import onnxruntime as ort
except ImportError as e:  # onnxruntime and onnxruntime-gpu are alternatives, so an extra
    # `from None`: the hint is the whole message, not the last line of two tracebacks.
    raise ModuleNotFoundError(
        f"spamkit.runtime needs ONNX Runtime ({e}): pip install \"spamkit[cpu]\", or "
        "\"spamkit[gpu]\" on a machine with CUDA", name="onnxruntime"
    ) from None

from spamkit.runtime.batching import length_sorted_batches, pad_batch
from spamkit.runtime.bundle import (
    ATTENTION_MASK,
    GRAPH_FILES,
    GRAPH_FORMATS,
    INPUT_IDS,
    LOGITS,
    RUNTIME_DEVICES,
    TEXT,
    Manifest,
    first_line,
    load_json,
    open_manifest,
    read_verified,
)
from spamkit.runtime.device import Device, Precision, check_session_options
from spamkit.runtime.errors import BundleError
from spamkit.runtime.hub import locate_bundle
from spamkit.runtime.pipeline import TOP_K_NOT_GIVEN, check_top_k, pipeline_results
from spamkit.runtime.session import open_session
from spamkit.runtime.text_graph import as_text_tensor, cut_texts, extensions_library, text_batches
from spamkit.runtime.tokenizer import Tokenizer

# A batch stops at this many (padded) tokens by default: ONNX Runtime's working memory grows
# with the tokens in flight, and more of them barely speed up the matmuls (docs/performance.md).
BATCH_TOKENS = 128
MAX_TOKENIZER_BYTES = 64 << 20  # far above GPT-2's: a huge file is refused unread


def load_tokenizer(bundle: Path, manifest: Manifest) -> Tokenizer:
    """The bundle's tokenizer, read once and checked against its sha256, whose ids all fit the
    model's vocabulary (bundles older than format 3 do not record it)."""
    path = bundle / manifest.tokenizer
    data = load_json(read_verified(bundle, manifest, manifest.tokenizer, MAX_TOKENIZER_BYTES),
                     str(path))
    try:
        tokenizer = Tokenizer.from_json(data, manifest.context_length)
    except ValueError as e:
        raise BundleError(f"{path} is not a GPT-2 tokenizer: {e}") from None
    largest = tokenizer.encoding.max_token_value
    if manifest.vocab_size is not None and largest >= manifest.vocab_size:
        raise BundleError(f"{path} has token ids up to {largest}, beyond the model's vocabulary "
                          f"of {manifest.vocab_size}")
    if manifest.pad_id > largest:
        raise BundleError(f"{bundle} pads with id {manifest.pad_id}, which {path} does not have")
    return tokenizer


def check_options(batch_size: object, batch_tokens: object, threshold: object) -> None:
    """ValueError unless batch_size and batch_tokens are ints >= 1, and threshold is None or a
    probability (numpy's numbers included)."""
    check_count("batch_size", batch_size)
    check_count("batch_tokens", batch_tokens)
    if threshold is not None and not (isinstance(threshold, numbers.Real)
                                      and not isinstance(threshold, bool)
                                      and math.isfinite(threshold) and 0 <= threshold <= 1):
        raise ValueError(f"threshold must be a probability from 0 to 1, not {threshold!r}")


def check_load_options(threads: object, precision: object, device: object = "cpu",
                       graph_format: object = "onnx", text_graph: object = False) -> None:
    """ValueError unless threads is None or 1..this machine's CPUs, precision None or a graph
    name, device None or one of RUNTIME_DEVICES, and graph_format one of GRAPH_FORMATS ("ort"
    on the CPU only)."""
    cpus = os.cpu_count() or 1
    if threads is not None and (not _is_int(threads) or not 1 <= threads <= cpus):
        raise ValueError(f"threads must be an integer from 1 to {cpus} (this machine's CPUs), "
                         f"not {threads!r}")
    if precision is not None and precision not in GRAPH_FILES:
        raise ValueError(f"precision must be one of {', '.join(GRAPH_FILES)}, not {precision!r}")
    if device is not None and device not in RUNTIME_DEVICES:
        raise ValueError(f"device must be one of {', '.join(RUNTIME_DEVICES)}, not {device!r}")
    if graph_format not in GRAPH_FORMATS:
        raise ValueError(f"graph_format must be one of {', '.join(GRAPH_FORMATS)}, not "
                         f"{graph_format!r}")
    if graph_format == "ort" and device not in (None, "cpu"):
        raise ValueError(f"graph_format='ort' runs on the CPU only, not device={device!r}")
    if not isinstance(text_graph, bool):
        raise TypeError(f"text_graph must be True or False, not {text_graph!r}")
    if text_graph and graph_format != "onnx":
        raise ValueError("text graphs are ONNX graphs only: text_graph=True takes "
                         "graph_format='onnx'")


def check_count(name: str, value: object) -> None:
    """ValueError unless `value` is an int of at least 1 (numpy's included)."""
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be an integer of at least 1, not {value!r}")


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


class Classifier:
    """A text classifier backed by one ONNX Runtime session. Safe to share between threads;
    pickled (multiprocessing, Ray) as what loads it again, see `__reduce__`.

    Make one with `Classifier.load`. The constructor takes a session made elsewhere (export
    checks the graphs it writes so); such a classifier cannot be pickled.

    Args:
        session: an ONNX Runtime session on a graph of the bundle (see spamkit.runtime.session).
        tokenizer: the bundle's tokenizer.
        manifest: the bundle's manifest (labels, stored threshold).
        device: where `session` runs, "cpu" or "cuda".
        precision: the graph's precision, "int8", "fp16" or "fp32".
        batch_size, threshold, batch_tokens, digest, text_graph: as `load` takes them.
        bundle: the bundle's folder, or None.

    Raises:
        ValueError: batch_size, batch_tokens or threshold out of range, or a threshold for a
            model of more than two classes that has no calibrated label."""

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
        digest: str | None = None,
        bundle: str | os.PathLike[str] | None = None,
        text_graph: bool = False,
    ) -> None:
        check_options(batch_size, batch_tokens, threshold)
        self.bundle = None if bundle is None else Path(bundle)
        self.session = session
        # True: `session` is a text graph, which takes the messages as strings.
        self.text_graph = text_graph
        self.tokenizer = tokenizer
        self.manifest = manifest
        self.labels: list[str] = list(manifest.labels)
        self.device = device
        self.precision = precision
        # sha256 of the manifest.json bytes loaded (what `spamkit export` prints), or None.
        self.digest = digest
        self.batch_size = int(batch_size)
        self.batch_tokens = int(batch_tokens)
        # Messages read, tokenized and length-sorted together: bounds memory on huge inputs.
        self.chunk_size = 64 * self.batch_size
        stored = manifest.threshold or {}
        # predict() answers `threshold_label` when its probability reaches `threshold`;
        # without one it answers the most probable label.
        self.threshold_label: str | None = stored.get("label")
        if threshold is not None and self.threshold_label is None:
            if len(self.labels) != 2:
                raise ValueError("threshold= needs a calibrated bundle or a two-class model")
            self.threshold_label = self.labels[1]
        self.threshold = float(threshold) if threshold is not None else stored.get("value")
        # How `load` loaded it (None when built around a session here): what a pickle holds.
        self._reload: dict[str, Any] | None = None

    @classmethod
    def load(
        cls,
        bundle: str | os.PathLike[str],
        device: Device | None = None,
        threads: int | None = None,
        precision: Precision | None = None,
        batch_size: int = 32,
        threshold: float | None = None,
        batch_tokens: int = BATCH_TOKENS,
        digest: str | None = None,
        providers: Sequence[str | tuple[str, dict]] | None = None,
        session_options: ort.SessionOptions | None = None,
        text_graph: bool = False,
        graph_format: str = "onnx",
    ) -> Classifier:
        """Load a bundle, every file it reads checked, into a session on the device asked for.

        Args:
            bundle: a folder, or "hf://org/name[@revision]" or a bare org/name on the Hub.
            device: "cpu" (default), "cuda" (else refused), "auto" (CUDA if it starts, else CPU).
            threads: ONNX Runtime's intra-op threads, 1 to the CPUs (default: one per core).
            precision: "int8", "fp16" or "fp32"; default: the smallest meant for the device.
            batch_size: at most this many messages per batch (a call may give its own).
            threshold: the positive label (calibrate's, else the second) wins at this probability.
            batch_tokens: at most this many padded tokens per batch.
            digest: the sha256 of manifest.json, as `spamkit export` printed it: pins the bundle.
            providers: ONNX Runtime's providers, as given: they decide the device (leave it out).
            session_options: an onnxruntime.SessionOptions, as given (then threads is refused).
            text_graph: run the precision's text graph (export --text-input; the `text` extra).
            graph_format: "onnx", or "ort" for its ORT-format copy (export --ort; CPU only).

        Returns:
            The classifier; `.device`, `.precision` and `.digest` say what was loaded.

        Raises:
            ValueError, TypeError: an argument out of range, of the wrong type, or two that
                contradict each other (threads with session_options, device with providers).
            BundleError: the bundle is missing, damaged, not the pinned one, or lacks the graph.
            SpamkitError: device="cuda" where ONNX Runtime cannot run on a GPU.
            ImportError: an extra is missing (`hub` for the Hub, `text` for text_graph)."""
        check_load_options(threads, precision, device, graph_format, text_graph)
        check_options(batch_size, batch_tokens, threshold)
        check_session_options(session_options, threads)
        if text_graph:
            extensions_library()  # before any hashing: a missing extra says so at once
        threads = None if threads is None else int(threads)
        folder, source = locate_bundle(bundle)
        manifest, found = open_manifest(folder, digest)
        tokenizer = load_tokenizer(folder, manifest)
        session, running, graph = open_session(folder, manifest, device, providers, precision,
                                               threads, session_options,
                                               "text" if text_graph else graph_format)
        clf = cls(session, tokenizer, manifest, running, graph, batch_size, threshold,
                  batch_tokens, found, folder, text_graph)
        # What was chosen, not asked: the other process runs the same graph on the same device.
        clf._reload = {"source": source, "device": running if providers is None else None,
                       "providers": None if providers is None else list(providers),
                       "precision": graph, "threads": threads, "text_graph": text_graph,
                       "graph_format": graph_format, "session_options": session_options}
        return clf

    def logits(self, texts: str | Iterable[str], batch_size: int | None = None) -> np.ndarray:
        """Class logits.

        `texts` may be any iterable of str, a generator or a pandas Series included: it is read
        and tokenized `chunk_size` messages (as many batches at any batch_size) at a time, so
        memory stays bounded whatever the input's size.

        Args:
            texts: one message, or an iterable of them (not a dict or a DataFrame: iterating
                one gives its keys or column names; pass its values or its text column).
            batch_size: messages per batch for this call (default: the one loaded with).

        Returns:
            float32 [n, classes] (or [classes] for a single string).

        Raises:
            TypeError: a message is not a str, or `texts` is a dict, a DataFrame or bytes.
            ValueError: batch_size is not an integer of at least 1.
            BundleError: the graph answers anything but finite float32 logits, one row per
                message and one column per label (naming the message)."""
        if isinstance(texts, str):
            return self.logits([texts], batch_size)[0]
        empty = np.empty((0, len(self.labels)), dtype=np.float32)
        return np.concatenate([empty, *self._logit_chunks(texts, batch_size)])

    def _logit_chunks(self, texts: Iterable[str], batch_size: int | None
                      ) -> Iterator[np.ndarray]:
        """The logits of `texts` a chunk at a time, each as soon as it is read; bad arguments
        are refused at once, before any text is read."""
        refuse_container(texts)
        if batch_size is not None:
            check_count("batch_size", batch_size)
        return self._run_chunks(iter(texts), self.batch_size if batch_size is None
                                else int(batch_size))

    def _run_chunks(self, it: Iterator[str], batch_size: int) -> Iterator[np.ndarray]:
        """Read, tokenize and run `it` chunk by chunk, yielding each chunk's logits."""
        size = self.chunk_size // self.batch_size * batch_size  # the same batches per chunk
        for start in itertools.count(0, size):
            chunk = list(itertools.islice(it, size))
            if not chunk:
                return
            for i, t in enumerate(chunk, start):
                if not isinstance(t, str):
                    raise TypeError(f"texts[{i}] is {type(t).__name__}, not str")
            if self.text_graph:
                yield self._text_logits(cut_texts(chunk, self.tokenizer.max_chars), start,
                                        batch_size)
            else:
                yield self._logits(self.tokenizer.encode_batch(chunk), start, batch_size)

    def _text_logits(self, texts: list[str], start: int, batch_size: int) -> np.ndarray:
        """Logits of a chunk of (cut) messages through the text graph."""
        out = np.empty((len(texts), len(self.labels)), dtype=np.float32)
        for rows in text_batches(texts, batch_size, self.batch_tokens):
            indices = [start + i for i in rows]
            feed = {TEXT: as_text_tensor([texts[i] for i in rows])}
            out[rows] = self._checked(feed, indices)
        return out

    def _logits(self, ids: list[list[int]], start: int, batch_size: int) -> np.ndarray:
        """Logits of a chunk of messages, the first being texts[start]."""
        out = np.empty((len(ids), len(self.labels)), dtype=np.float32)
        # Results go back to the caller's order. Right padding never changes a message's logits
        # (causal attention).
        lengths = [len(x) for x in ids]
        for rows in length_sorted_batches(lengths, batch_size, self.batch_tokens):
            out[rows] = self._run([ids[i] for i in rows], [start + i for i in rows])
        return out

    def _run(self, batch: list[list[int]], indices: list[int]) -> np.ndarray:
        """The logits of a batch, checked; `indices` are its messages' places in texts."""
        # On CUDA too: session.run copies the two host arrays to the GPU and the logits back,
        # once each, which is all I/O binding would do when the inputs start on the host.
        input_ids, mask = pad_batch(batch, self.tokenizer.pad_id)
        feed = {INPUT_IDS: input_ids, ATTENTION_MASK: mask}
        return self._checked(feed, indices)

    def _checked(self, feed: dict[str, np.ndarray], indices: list[int]) -> np.ndarray:
        """The graph's logits for `feed`, the messages at `indices` in texts, checked."""
        try:
            out = self.session.run([LOGITS], feed)[0]
        except Exception as e:  # noqa: BLE001 - ORT raises its own Fail/InvalidArgument types
            raise BundleError(f"the bundle's {self.precision} graph failed on texts[{indices[0]}]"
                              f" and its batch: {first_line(e)}") from None
        want = (len(indices), len(self.labels))
        if out.shape != want or out.dtype != np.float32:
            raise BundleError(f"the bundle's {self.precision} graph gave {out.dtype} logits of "
                              f"shape {list(out.shape)} for {len(indices)} messages, not float32 "
                              f"{list(want)}: it does not match the manifest's labels")
        finite = np.isfinite(out).all(axis=1)
        if not finite.all():
            raise BundleError(f"the bundle's {self.precision} graph gave a NaN or infinite logit "
                              f"for texts[{indices[int(np.argmin(finite))]}]: damaged or not a "
                              "trained model")
        return out

    def predict_proba(self, texts: str | Iterable[str], batch_size: int | None = None
                      ) -> np.ndarray:
        """Class probabilities (softmax of the logits), columns in the order of `labels`.

        Args:
            texts: one message, or an iterable of them, as `logits` takes them.
            batch_size: messages per batch for this call (default: the one loaded with).

        Returns:
            float32 [n, classes] (or [classes] for a single string).

        Raises:
            TypeError, ValueError, BundleError: as `logits`."""
        return softmax(self.logits(texts, batch_size))

    # A str is an Iterable[str] too: mypy picks the first overload that fits (as typeshed's
    # own str/Iterable[str] overloads do), so the overlap it warns of is the point.
    @overload
    def predict(  # type: ignore[overload-overlap]
            self, texts: str, batch_size: int | None = None) -> str: ...

    @overload
    def predict(self, texts: Iterable[str], batch_size: int | None = None) -> list[str]: ...

    def predict(self, texts: str | Iterable[str], batch_size: int | None = None
                ) -> str | list[str]:
        """The label for each text (a calibrated threshold applies, see `decide`).

        Args:
            texts: one message, or an iterable of them, as `logits` takes them.
            batch_size: messages per batch for this call (default: the one loaded with).

        Returns:
            One label for a string, a list of labels for an iterable.

        Raises:
            TypeError, ValueError, BundleError: as `logits`."""
        if isinstance(texts, str):
            return self.predict([texts], batch_size)[0]
        return list(self.iter_predict(texts, batch_size))

    def iter_predict(self, texts: Iterable[str], batch_size: int | None = None
                     ) -> Iterator[str]:
        """The label for each text, yielded as its chunk is classified: a generator that never
        ends (a queue, a socket's lines) gets its first labels once `chunk_size` messages
        are read, and memory stays bounded as in `logits`.

        Args:
            texts: an iterable of messages (not a single str), as `logits` takes them.
            batch_size: messages per batch for this call (default: the one loaded with).

        Returns:
            An iterator of labels, in the order of `texts`.

        Raises:
            TypeError: `texts` is a single str (call `predict` on it), or as `logits`, at once.
            ValueError: as `logits`, at once.
            BundleError: as `logits`, when the chunk that holds the message is reached."""
        if isinstance(texts, str):
            raise TypeError("texts is one str, whose iteration gives its characters: call "
                            "predict(text), or pass [text]")
        chunks = self._logit_chunks(texts, batch_size)
        return (label for z in chunks for label in self.decide_labels(softmax(z)))

    @overload
    def __call__(self, texts: str, top_k: int | None = ..., *,  # type: ignore[overload-overlap]
                 batch_size: int | None = None) -> list[dict[str, Any]]: ...

    @overload
    def __call__(self, texts: Iterable[str], *,
                 batch_size: int | None = None) -> list[dict[str, Any]]: ...

    @overload
    def __call__(self, texts: Iterable[str], top_k: int | None, *,
                 batch_size: int | None = None) -> list[list[dict[str, Any]]]: ...

    def __call__(self, texts: str | Iterable[str], top_k: object = TOP_K_NOT_GIVEN, *,
                 batch_size: int | None = None) -> list[Any]:
        """Classify as a transformers text-classification pipeline does, in its shapes.

        Args:
            texts: one message, or an iterable of them, as `logits` takes them.
            top_k: left out, `predict`'s label per text (a calibrated threshold applies);
                an int, that many classes per text, most probable first; None, every class.
            batch_size: messages per batch for this call (default: the one loaded with).

        Returns:
            Without top_k, one {"label", "score"} dict per text (`clf("text")` ->
            [{"label": "spam", "score": 0.98}]); with it, per text a list of such dicts, and a
            single string gives its list alone. Scores are `predict_proba`'s.

        Raises:
            TypeError, ValueError: top_k is not an int of at least 1 (or None), or as `logits`.
            BundleError: as `logits`."""
        check_top_k(top_k)
        single = isinstance(texts, str)
        proba = self.predict_proba([texts] if single else texts, batch_size)
        return pipeline_results(self.labels, proba, self.decide(proba), top_k, single)

    def __reduce__(self) -> tuple[Any, tuple[str, dict[str, Any]]]:
        """Pickled (for multiprocessing, Ray, Spark) as what loads it again: its bundle's path,
        or hf:// reference at its commit, pinned to its digest, and the options it answers by;
        never the session. Unpickling loads the bundle again, verified, and refuses one that
        changed since it was loaded (BundleError).

        Raises:
            TypeError: it was not made by `load`, or was loaded with session_options (an
                onnxruntime.SessionOptions cannot be pickled)."""
        if self._reload is None:
            raise TypeError("only a Classifier from Classifier.load can be pickled: one built "
                            "around a session of its own cannot be loaded again")
        options = dict(self._reload)
        if options.pop("session_options") is not None:
            raise TypeError("a Classifier loaded with session_options cannot be pickled: "
                            "onnxruntime.SessionOptions does not pickle; load it in the other "
                            "process with its own options")
        options.update(digest=self.digest, batch_size=self.batch_size,
                       batch_tokens=self.batch_tokens, threshold=self.threshold)
        return _load_again, (options.pop("source"), options)

    @property
    def classes_(self) -> np.ndarray:
        """The labels in the order of `predict_proba`'s columns, as scikit-learn names them."""
        return np.array(self.labels)

    def __repr__(self) -> str:
        threshold = (None if self.threshold is None
                     else f"{self.threshold:g} for {self.threshold_label!r}")
        bundle = None if self.bundle is None else str(self.bundle)
        return (f"Classifier(bundle={bundle!r}, labels={self.labels}, "
                f"precision={self.precision!r}, device={self.device!r}, "
                f"providers={self.session.get_providers()}, threshold={threshold}, "
                f"digest={self.digest and self.digest[:12] + '...'!r})")

    def decide_labels(self, proba: np.ndarray) -> list[str]:
        """The label for each row of `predict_proba`'s output, as `decide` picks it."""
        return [self.labels[i] for i in self.decide(proba)]

    def decide(self, proba: np.ndarray) -> np.ndarray:
        """Class index for each row of `predict_proba`'s output. With a threshold, the
        positive label wins whenever its probability reaches it; otherwise (and without one)
        the most probable label does.

        Args:
            proba: float [n, classes], columns in the order of `labels`.

        Returns:
            int [n]: each row's class index (`labels[i]` is its label)."""
        if self.threshold is None or len(proba) == 0:
            return proba.argmax(axis=-1)
        positive = self.labels.index(self.threshold_label)
        others = proba.copy()
        others[:, positive] = -1.0
        return np.where(proba[:, positive] >= self.threshold, positive, others.argmax(axis=-1))


def softmax(z: np.ndarray) -> np.ndarray:
    """Probabilities (float32) of logits `z` along their last axis."""
    # In float64: two finite float32 logits can lie further apart than float32 reaches.
    z = z.astype(np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def _load_again(source: str, options: dict[str, Any]) -> Classifier:
    """A pickled Classifier, loaded again in this process (see Classifier.__reduce__)."""
    return Classifier.load(source, **options)


def refuse_container(texts: object) -> None:
    """TypeError for what iterates as something other than its texts, saying what to pass."""
    if isinstance(texts, (bytes, bytearray)):
        raise TypeError("texts is bytes: decode it to str first")
    if isinstance(texts, Mapping):
        raise TypeError("texts is a dict, whose iteration gives its keys: pass the texts, e.g. "
                        "list(d.values())")
    # Duck typing keeps pandas (and polars) out of the runtime.
    if hasattr(texts, "columns") and type(texts).__name__ == "DataFrame":
        raise TypeError("texts is a DataFrame, whose iteration gives its column names: pass "
                        "its text column, e.g. df['text']")
