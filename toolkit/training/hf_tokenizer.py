"""Is a transformers folder's tokenizer GPT-2's byte-level BPE, the one a bundle carries?

A bundle tokenizes with GPT-2's vocabulary and merges (spamkit.tokenizer), so a model trained on
other ids would be fed the wrong ones. The tokenizer files are checked against GPT-2's, field by
field: the vocabulary and every merge in rank order, byte-level pre-tokenization without a
prefix space, no normalizer, no BOS token added. Added special tokens (a `[PAD]`) are allowed: a
message is never tokenized to one (docs/bring-your-own.md says what that means for their text).
"""

from __future__ import annotations

import json
from pathlib import Path

from spamkit.errors import SpamkitError
from spamkit.tokenizer import gpt2_bpe_files, merge_lines

TOKENIZER_JSON, VOCAB_JSON, MERGES_TXT = "tokenizer.json", "vocab.json", "merges.txt"
TOKENIZER_CONFIG = "tokenizer_config.json"
# Far larger than GPT-2's tokenizer.json: a larger file is not one, and is not read.
MAX_TOKENIZER_BYTES = 64 * 2**20
# tokenizer_config.json fields under which transformers' tokenizer reads text otherwise.
NOT_GPT2 = {"add_prefix_space": "adds a space before each message",
            "add_bos_token": "puts <|endoftext|> before each message"}


def check_gpt2_tokenizer(folder: Path) -> None:
    """Refuse, in one line naming the file and field, a tokenizer that is not GPT-2's.

    Args:
        folder: a transformers model folder (save_pretrained).

    Raises:
        SpamkitError: no tokenizer files, or ones that would give other ids than GPT-2's.
    """
    vocab, merges = gpt2_bpe_files()
    checked = False
    if (folder / TOKENIZER_JSON).is_file():
        _check_tokenizer_json(folder / TOKENIZER_JSON, vocab, merges)
        checked = True
    if (folder / VOCAB_JSON).is_file() and (folder / MERGES_TXT).is_file():
        _check_same(folder / VOCAB_JSON, "vocabulary", _read_json(folder / VOCAB_JSON), vocab)
        text = _read_capped(folder / MERGES_TXT).decode("utf-8", errors="replace")
        _check_same(folder / MERGES_TXT, "merges", merge_lines(text), merges)
        checked = True
    if not checked:
        raise SpamkitError(f"{folder} has no tokenizer files ({TOKENIZER_JSON}, or {VOCAB_JSON} "
                           f"and {MERGES_TXT}): save the tokenizer beside the model "
                           "(tokenizer.save_pretrained(DIR))")
    if (folder / TOKENIZER_CONFIG).is_file():
        _check_tokenizer_config(folder / TOKENIZER_CONFIG, vocab)


def _check_tokenizer_json(path: Path, vocab: dict[str, int], merges: list[str]) -> None:
    """The tokenizers library's file: a byte-level BPE model with GPT-2's vocab and merges."""
    data = _read_json(path)
    model = data.get("model")
    if not isinstance(model, dict) or model.get("type") != "BPE":
        kind = model.get("type") if isinstance(model, dict) else model
        raise SpamkitError(f"{path}: model.type is {kind!r}, not GPT-2's BPE")
    pre = data.get("pre_tokenizer")
    if not (isinstance(pre, dict) and pre.get("type") == "ByteLevel"
            and pre.get("add_prefix_space") is False and pre.get("use_regex", True) is True):
        raise SpamkitError(f"{path}: pre_tokenizer is {json.dumps(pre)[:120]}, not GPT-2's "
                           "(ByteLevel with its regex and add_prefix_space false)")
    if data.get("normalizer") is not None:
        raise SpamkitError(f"{path}: normalizer is {json.dumps(data['normalizer'])[:120]}; "
                           "GPT-2's tokenizer changes no text before splitting it")
    found = model.get("merges")
    if isinstance(found, list):  # "a b" strings, or [a, b] pairs in newer files
        found = [m if isinstance(m, str) else " ".join(map(str, m)) for m in found]
    _check_same(path, "model.vocab", model.get("vocab"), vocab)
    _check_same(path, "model.merges", found, merges)
    added = data.get("added_tokens") or []
    _check_added(path, "added_tokens", [(t.get("content"), t.get("id"), t.get("special"))
                                        for t in added if isinstance(t, dict)], vocab)


def _check_tokenizer_config(path: Path, vocab: dict[str, int]) -> None:
    """transformers' own settings: none that reads a message otherwise, no added plain word."""
    data = _read_json(path)
    for field, does in NOT_GPT2.items():
        if data.get(field):
            raise SpamkitError(f"{path}: {field} is true: transformers' tokenizer {does}, "
                               "which GPT-2's (and spamkit's) does not")
    decoder = data.get("added_tokens_decoder") or {}
    if isinstance(decoder, dict):
        _check_added(path, "added_tokens_decoder", [
            (t.get("content"), int(i) if str(i).isdigit() else i, t.get("special"))
            for i, t in decoder.items() if isinstance(t, dict)], vocab)


def _check_added(path: Path, field: str, added: list[tuple], vocab: dict[str, int]) -> None:
    """Refuse an added token that is not special: transformers would read its text in a message
    as that one token, where GPT-2's BPE splits it."""
    for content, token_id, special in added:
        if vocab.get(content) != token_id and special is not True:
            raise SpamkitError(f"{path}: {field} adds {content!r} (id {token_id}) as a plain "
                               "token; GPT-2's byte-level BPE, which spamkit tokenizes with, "
                               "would split it")


def _check_same(path: Path, field: str, found: object, want: dict | list) -> None:
    """Refuse `found` unless it is GPT-2's `want`, naming the first difference."""
    if found == want:
        return
    if isinstance(want, dict) and isinstance(found, dict):
        token = next((t for t in want if found.get(t) != want[t]), None)
        token = token if token is not None else next(t for t in found if t not in want)
        detail = f"{token!r} is {found.get(token)!r} where GPT-2's is {want.get(token)!r}"
    elif isinstance(want, list) and isinstance(found, list):
        i = next((i for i, (a, b) in enumerate(zip(found, want)) if a != b),
                 min(len(found), len(want)))
        detail = (f"{len(found)} merges where GPT-2 has {len(want)}" if i == min(
            len(found), len(want)) else f"merge {i} is {found[i]!r} where GPT-2's is {want[i]!r}")
    else:
        detail = f"a {type(found).__name__}"
    raise SpamkitError(f"{path}: its {field} is not GPT-2's ({detail}); a bundle tokenizes "
                       "with GPT-2's byte-level BPE, so the model would be fed other ids")


def _read_capped(path: Path) -> bytes:
    with open(path, "rb") as f:
        data = f.read(MAX_TOKENIZER_BYTES + 1)
    if len(data) > MAX_TOKENIZER_BYTES:
        raise SpamkitError(f"{path} is over {MAX_TOKENIZER_BYTES >> 20} MiB: not a GPT-2 "
                           "tokenizer file")
    return data


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(_read_capped(path))
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        raise SpamkitError(f"{path} is not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise SpamkitError(f"{path} is not a JSON object")
    return data
