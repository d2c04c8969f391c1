"""Text graphs in the runtime: messages go into the graph as strings and GPT-2's BPE runs inside
it (onnxruntime-extensions' GPT2Tokenizer op; `spamkit export --text-input` writes them).

onnxruntime-extensions is the `text` extra and is imported only when a text graph is loaded.
The character cap is the caller's (the graph has no code-point slicing op), so the messages are
cut here exactly as the Tokenizer cuts them (docs/bundle-format.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from spamkit.runtime.batching import length_sorted_batches
from spamkit.runtime.bundle import ATTENTION_MASK, INPUT_IDS, LOGITS, TEXT
from spamkit.runtime.errors import BundleError

EXTRA = "pip install 'spamkit[text]'"
# A text batch is capped in characters, not tokens (they are unknown until the graph has run):
# GPT-2 averages about four characters a token on English text.
CHARS_PER_TOKEN = 4
# The outputs a text graph gives, beside its input `text` string [batch].
TEXT_OUTPUTS = {LOGITS: "tensor(float)", INPUT_IDS: "tensor(int64)",
                ATTENTION_MASK: "tensor(int64)"}
# onnxruntime-extensions reads a string only up to its first NUL, so each NUL goes in as U+D800's
# bytes (never in UTF-8 text), which the text graph's BPE tables read as NUL's own id.
NUL_BYTES = b"\xed\xa0\x80"


def extensions_library() -> str:
    """The path of onnxruntime-extensions' custom-op library; ImportError naming the extra."""
    try:
        import onnxruntime_extensions
    except ImportError:
        raise ImportError(f"text graphs need onnxruntime-extensions: {EXTRA}") from None
    return onnxruntime_extensions.get_library_path()


def check_text_graph(session: ort.InferenceSession, classes: int, graph: Path) -> None:
    """Refuse a text graph the runtime could not call: `text` string [batch] in; float32 logits
    [batch, classes] and the int64 ids and mask it ran out."""
    inputs = session.get_inputs()
    outputs = {o.name: o for o in session.get_outputs()}
    if [i.name for i in inputs] != [TEXT] or not set(TEXT_OUTPUTS) <= set(outputs):
        raise BundleError(f"{graph} takes {[i.name for i in inputs]} and gives "
                          f"{sorted(outputs)}, not {[TEXT]} -> {sorted(TEXT_OUTPUTS)}")
    if inputs[0].type != "tensor(string)" or len(inputs[0].shape) != 1:
        raise BundleError(f"{graph}: {TEXT} is {inputs[0].type} of rank {len(inputs[0].shape)}, "
                          "not tensor(string) of rank 1")
    for name, dtype in TEXT_OUTPUTS.items():
        if outputs[name].type != dtype or len(outputs[name].shape) != 2:
            raise BundleError(f"{graph}: {name} is {outputs[name].type} of rank "
                              f"{len(outputs[name].shape)}, not {dtype} of rank 2")
    width = outputs[LOGITS].shape[1]
    if isinstance(width, int) and width != classes:
        raise BundleError(f"{graph} gives {width} logits per message, but the manifest names "
                          f"{classes} labels")


def cut_texts(texts: Sequence[str], max_chars: int) -> list[str]:
    """Each message's last `max_chars` code points, as UTF-8 can carry it: UTF-16 surrogates
    paired up, a lone one U+FFFD (tiktoken's reading, which the graph cannot do itself)."""
    cut = []
    for t in texts:
        t = t[-max_chars:]
        try:
            t.encode("utf-8")
        except UnicodeEncodeError:
            t = t.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        cut.append(t)
    return cut


def text_batches(texts: Sequence[str], batch_size: int, batch_tokens: int
                 ) -> Iterator[list[int]]:
    """Indices of `texts` (already cut), shortest first, in runs of at most `batch_size`
    messages and about `batch_tokens` padded tokens, counted in characters."""
    lengths = [len(t) for t in texts]
    return length_sorted_batches(lengths, batch_size, batch_tokens * CHARS_PER_TOKEN)


def as_text_tensor(texts: Sequence[str]) -> np.ndarray:
    """The (cut) messages as a text graph's input: UTF-8, each NUL sent as NUL_BYTES."""
    encoded = [t.encode("utf-8").replace(b"\0", NUL_BYTES) for t in texts]
    # ONNX Runtime reads each item of a bytes array as a C string: one spare byte ends them all.
    width = max(map(len, encoded), default=0) + 1
    return np.array(encoded, dtype=f"S{width}").reshape(len(texts))
