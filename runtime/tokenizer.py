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
# GPT-2's piece-splitting regex (tiktoken's r50k). The only one a bundle may hold: tiktoken
# panics mid-encode on a regex that can match an empty string.
GPT2_PAT_STR = (
    r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
)


class Tokenizer:
    """Text -> token ids, truncated to the model's context keeping the END of the text.

    The classifier reads the last token, which has seen the whole (kept) message, so the end is
    the part worth keeping. An empty text becomes the single `<|endoftext|>` token: GPT-2's
    document boundary is the closest thing it has to "no content", and a message needs at least
    one token to be classified from. The literal text `<|endoftext|>` in a message is that token
    too, as in GPT-2's own tokenizers and the text graphs' (docs/bundle-format.md).
    """

    def __init__(self, encoding: tiktoken.Encoding, max_length: int) -> None:
        self.encoding = encoding
        self.max_length = max_length
        self.eot_id = encoding.eot_token
        longest_token = max(len(t) for t in encoding.token_byte_values())
        # A token never spans more characters than its bytes, so the last
        # max_length * longest_token characters always yield at least max_length tokens:
        # cutting there first keeps a million-character message cheap to tokenize.
        self.max_chars = max_length * longest_token

    @property
    def pad_id(self) -> int:
        # Padding sits after the last real token, which causal attention never lets it reach,
        # so its value does not matter; `<|endoftext|>` is GPT-2's own choice.
        return self.eot_id

    def encode(self, text: str) -> list[int]:
        return self.encode_batch([text])[0]

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        # "<|endoftext|>" in a message is the end-of-text id, any other special token plain
        # text: what onnxruntime-extensions' GPT2Tokenizer does, so the text graphs agree.
        # One at a time, not encode_batch: its thread pool, started on every call, costs far
        # more than encoding a short message (docs/performance.md).
        ids = (self.encoding.encode(t[-self.max_chars :], allowed_special={EOT},
                                    disallowed_special=()) for t in texts)
        return [x[-self.max_length :] if x else [self.eot_id] for x in ids]

    def ranks(self) -> list[bytes]:
        """Each rank's byte sequence, rank 0 first: the ids below the first special token."""
        first_special = min(self.special_tokens().values())
        try:
            return [self.encoding.decode_single_token_bytes(r) for r in range(first_special)]
        except KeyError:
            raise ValueError("token ranks must be contiguous from 0") from None

    def special_tokens(self) -> dict[str, int]:
        enc = self.encoding
        return dict(sorted(((t, enc.encode_single_token(t)) for t in enc.special_tokens_set),
                           key=lambda kv: kv[1]))

    def to_json(self) -> dict:
        enc = self.encoding
        return {
            "name": enc.name,
            "pat_str": enc._pat_str,  # noqa: SLF001 - tiktoken exposes no public accessor
            "special_tokens": self.special_tokens(),
            "ranks": [base64.b64encode(t).decode("ascii") for t in self.ranks()],
        }

    def __reduce__(self) -> tuple:
        # By its JSON form: the Encoding that from_json builds no longer holds its ranks.
        return Tokenizer.from_json, (self.to_json(), self.max_length)

    def save(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(json.dumps(self.to_json()), encoding="utf-8")

    @classmethod
    def from_json(cls, data: object, max_length: int) -> Tokenizer:
        """The tokenizer `to_json` described. Anything else is a ValueError saying what is
        wrong: tiktoken would otherwise accept a vocabulary that panics on the first text
        holding a byte it lacks."""
        name, pat_str, special, ranks = _checked_fields(data)
        try:
            encoding = tiktoken.Encoding(name=name, pat_str=pat_str, mergeable_ranks=ranks,
                                         special_tokens=special)
        except ValueError as e:  # e.g. a pat_str that is not a regular expression
            raise ValueError(f"tiktoken refuses it: {e}".splitlines()[0]) from None
        # tiktoken's own tables hold the ranks; the dict it keeps beside them would cost every
        # process that loads a bundle megabytes more (docs/performance.md). ranks() reads them back.
        ranks.clear()
        return cls(encoding, max_length)

    @classmethod
    def load(cls, path: str | os.PathLike[str], max_length: int) -> Tokenizer:
        return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")), max_length)


def _checked_fields(data: object) -> tuple[str, str, dict[str, int], dict[bytes, int]]:
    """name, pat_str, special tokens and byte ranks of a tokenizer's JSON, checked."""
    if not isinstance(data, dict) or set(data) != {"name", "pat_str", "special_tokens", "ranks"}:
        raise ValueError("it must be an object of name, pat_str, special_tokens and ranks")
    name, pat_str, special, ranks = (data[k] for k in ("name", "pat_str", "special_tokens",
                                                       "ranks"))
    if not isinstance(name, str) or pat_str != GPT2_PAT_STR:
        raise ValueError("name must be a string and pat_str GPT-2's regex")
    if (not isinstance(special, dict) or EOT not in special
            or not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < 1 << 31
                       for i in special.values())):
        raise ValueError(f"special_tokens must map names, {EOT} among them, to ids")
    if not isinstance(ranks, list) or not all(isinstance(t, str) for t in ranks):
        raise ValueError("ranks must be a list of base64 strings")
    try:
        decoded = {base64.b64decode(t, validate=True): i for i, t in enumerate(ranks)}
    except ValueError as e:  # binascii.Error
        raise ValueError(f"ranks holds a string that is not base64: {e}") from None
    if len(decoded) != len(ranks) or b"" in decoded:
        raise ValueError("ranks repeats a byte sequence or holds an empty one")
    if any(bytes([b]) not in decoded for b in range(256)):
        raise ValueError("ranks lacks a single byte: some text could not be tokenized")
    ids = list(special.values())
    if len(set(ids)) != len(ids) or any(i < len(ranks) for i in ids):
        raise ValueError("special token ids must be distinct and above the ranks")
    return name, pat_str, special, decoded
