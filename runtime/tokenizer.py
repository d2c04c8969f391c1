"""GPT-2 byte-pair tokenization, shared by training and the runtime so both see the same ids.

The whole tokenizer travels as one JSON file (`tokenizer.json` in a bundle): the regex that
splits text into pieces, the byte-sequence ranks, and the special tokens. Loading it needs
tiktoken and nothing from the network.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Sequence
from pathlib import Path

import tiktoken

EOT = "<|endoftext|>"


class Tokenizer:
    """Text -> token ids, truncated to the model's context keeping the END of the text.

    The classifier reads the last token, which has seen the whole (kept) message, so the end is
    the part worth keeping. An empty text becomes the single `<|endoftext|>` token: GPT-2's
    document boundary is the closest thing it has to "no content", and a message needs at least
    one token to be classified from.
    """

    def __init__(self, encoding: tiktoken.Encoding, max_length: int) -> None:
        self.encoding = encoding
        self.max_length = max_length
        self.eot_id = encoding.eot_token
        longest_token = max(len(t) for t in encoding.token_byte_values())
        # A token never spans more characters than its bytes, so the last
        # max_length * longest_token characters always yield at least max_length tokens:
        # cutting there first keeps a million-character message cheap to tokenize.
        self._max_chars = max_length * longest_token

    @property
    def pad_id(self) -> int:
        # Padding sits after the last real token, which causal attention never lets it reach,
        # so its value does not matter; `<|endoftext|>` is GPT-2's own choice.
        return self.eot_id

    def encode(self, text: str) -> list[int]:
        return self.encode_batch([text])[0]

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        # encode_ordinary: a message that contains "<|endoftext|>" is plain text, so no id a
        # message produces can be mistaken for the special token. One at a time, not
        # encode_ordinary_batch: that starts a thread pool on every call, which cost 190 us per
        # message (500 us right after an ONNX Runtime run, whose threads hold the cores) against
        # 7 us for the encoding itself.
        ids = (self.encoding.encode_ordinary(t[-self._max_chars :]) for t in texts)
        return [x[-self.max_length :] if x else [self.eot_id] for x in ids]

    def to_json(self) -> dict:
        enc = self.encoding
        ranks = enc._mergeable_ranks  # noqa: SLF001 - tiktoken exposes no public accessor
        ordered = sorted(ranks.items(), key=lambda kv: kv[1])
        if [r for _, r in ordered] != list(range(len(ordered))):
            raise ValueError("token ranks must be contiguous from 0")
        return {
            "name": enc.name,
            "pat_str": enc._pat_str,  # noqa: SLF001
            "special_tokens": enc._special_tokens,  # noqa: SLF001
            "ranks": [base64.b64encode(t).decode("ascii") for t, _ in ordered],
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(json.dumps(self.to_json()), encoding="utf-8")

    @classmethod
    def from_json(cls, data: dict, max_length: int) -> Tokenizer:
        ranks = {base64.b64decode(t): i for i, t in enumerate(data["ranks"])}
        encoding = tiktoken.Encoding(
            name=data["name"],
            pat_str=data["pat_str"],
            mergeable_ranks=ranks,
            special_tokens=data["special_tokens"],
        )
        return cls(encoding, max_length)

    @classmethod
    def load(cls, path: str | os.PathLike[str], max_length: int) -> Tokenizer:
        return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")), max_length)
