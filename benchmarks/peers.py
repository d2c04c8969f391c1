"""The routes benchmarks/compare.py measures spamkit against, one per process.

    python benchmarks/peers.py SPEC_JSON STARTED     (run by compare.py; see spamkit.jobs.measure)

- book: the book's inference (chapter 6's classify_review): spamkit's GPTClassifier in PyTorch
  eager mode with the Hugging Face folder's weights (read by spamkit.training.hf_classifier,
  which checks that the model computes what transformers does), every message padded to 120
  tokens (the longest message of the book's training split), the class read at the last
  position, padding included.
- optimum-fp32, optimum-int8: transformers' GPT2ForSequenceClassification exported by optimum
  from the same folder and run by ONNX Runtime through optimum's
  ORTModelForSequenceClassification, with the folder's own Hugging Face tokenizer: what a
  transformers user would deploy.

Lists are classified in batches of `batch_size` in the order given (the peers do not sort by
length themselves; compare.py also times them on a length-sorted list). Each route imports its
libraries before it loads, so start-up splits into imports and load as it does for spamkit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spamkit.jobs.measure import child_main

BOOK_PAD_TO = 120
BOOK_PAD_ID = 50256  # <|endoftext|>, the book's pad_token_id


@dataclass(frozen=True)
class PeerConfig:
    route: str  # book, optimum-fp32, optimum-int8, optimum-int8-avx2
    model: str  # a transformers GPT2ForSequenceClassification folder (book) or optimum's export
    threads: int
    batch_size: int = 32
    file_name: str = "model.onnx"  # optimum's graph in `model`


def chunks(texts: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(texts), size):
        yield texts[start : start + size]


def file_mb(path: Path) -> float:
    return path.stat().st_size / 1e6


def book_route(cfg: PeerConfig) -> Callable[[], object]:
    import torch

    from spamkit.tokenizer import gpt2_tokenizer
    from spamkit.training.hf_classifier import CLASSIFIER, load_hf_classifier
    from spamkit.training.pretrained import find_weights

    torch.set_num_threads(cfg.threads)

    class Book:
        def __init__(self) -> None:
            self.model = load_hf_classifier(Path(cfg.model)).checkpoint.model.eval()
            self.tokenizer = gpt2_tokenizer(self.model.config.context_length)

        def logits(self, texts: list[str]) -> np.ndarray:
            out = []
            for batch in chunks(texts, cfg.batch_size):
                # classify_review: keep the first 120 tokens, pad to 120, read the last position.
                ids = [x[:BOOK_PAD_TO] for x in self.tokenizer.encode_batch(batch)]
                ids = torch.tensor([x + [BOOK_PAD_ID] * (BOOK_PAD_TO - len(x)) for x in ids])
                with torch.no_grad():
                    out.append(self.model(ids, torch.ones_like(ids)).numpy())
            return np.concatenate(out)

        def token_counts(self, texts: list[str]) -> list[int]:
            return [len(x) for x in self.tokenizer.encode_batch(texts)]

        def facts(self) -> dict:
            weights = find_weights(CLASSIFIER, cfg.model)
            return {"graph": weights.name, "graph_mb": file_mb(weights),
                    "threads": cfg.threads, "batch_size": cfg.batch_size,
                    "torch": torch.__version__}

    return Book


def optimum_route(cfg: PeerConfig) -> Callable[[], object]:
    from importlib.metadata import version

    import onnxruntime as ort
    import transformers
    from optimum.onnxruntime import ORTModelForSequenceClassification

    class Optimum:
        def __init__(self) -> None:
            options = ort.SessionOptions()
            options.intra_op_num_threads = cfg.threads
            self.model = ORTModelForSequenceClassification.from_pretrained(
                cfg.model, file_name=cfg.file_name, session_options=options,
                provider="CPUExecutionProvider")
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(cfg.model)
            if self.tokenizer.pad_token is None:  # saved unset, as GPT-2's own: as the model pads
                self.tokenizer.pad_token_id = self.model.config.pad_token_id

        def encode(self, texts: list[str]) -> dict:
            return self.tokenizer(texts, padding=True, truncation=True, return_tensors="pt")

        def logits(self, texts: list[str]) -> np.ndarray:
            return np.concatenate([self.model(**self.encode(batch)).logits.numpy()
                                   for batch in chunks(texts, cfg.batch_size)])

        def token_counts(self, texts: list[str]) -> list[int]:
            return [len(x) for x in self.tokenizer(texts, truncation=True)["input_ids"]]

        def facts(self) -> dict:
            return {"graph": cfg.file_name, "graph_mb": file_mb(Path(cfg.model) / cfg.file_name),
                    "threads": cfg.threads, "batch_size": cfg.batch_size,
                    "onnxruntime": ort.__version__, "transformers": transformers.__version__,
                    "optimum_onnx": version("optimum-onnx")}

    return Optimum


ROUTES = {"book": book_route, "optimum-fp32": optimum_route, "optimum-int8": optimum_route,
          "optimum-int8-avx2": optimum_route}


def loader_for(spec: dict) -> Callable[[], object]:
    cfg = PeerConfig(**spec)
    return ROUTES[cfg.route](cfg)


if __name__ == "__main__":
    child_main(loader_for)
