"""The unlabelled text `spamkit pretrain` reads: the messages of the data file that the split
leaves out of validation and test (the training split, and for the balanced split the messages
balancing dropped), and any files of the user's, never a message equal to one the split holds
out. Torch-free.

"Equal" is equal as the classifier reads it: the runtime tokenizes a message's text as it is
(no case, Unicode or whitespace folding), after the readers have taken off each line's end (LF,
or CRLF; spamkit.records), so a message read from a CRLF file equals the same message from an
LF one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from spamkit.data import DataConfig, data_file, read_messages, read_texts, split_examples
from spamkit.errors import SpamkitError


@dataclass(frozen=True)
class Unlabelled:
    """The messages to pretrain on, and what was left out of them."""

    texts: list[str]
    files: list[str]  # the --text files read, directories expanded, in reading order
    dropped: int  # messages equal to a validation or test message, never used
    sha256: str | None  # of the data file, whose split decides what is held out


def unlabelled_text(data_cfg: DataConfig, text_paths: list[str] | None = None,
                    text_column: str = "text", data_text: bool = True) -> Unlabelled:
    """The unlabelled messages a pretraining run reads.

    Args:
        data_cfg: the data file and split (as `spamkit train` takes them) whose validation and
            test messages are held out.
        text_paths: more text: files (one message per line, a CSV/TSV's `text_column`, JSON
            Lines' `text_column` field) or directories of them.
        text_column: the column or field of the messages in those files.
        data_text: read the data file's messages outside validation and test too.

    Returns:
        The data file's messages outside validation and test, then those of `text_paths`, with
        every one equal to a validation or test message dropped (and counted).

    Raises:
        SpamkitError: a file that is missing, unreadable or holds no messages, or no text
            at all.
    """
    path, sha256 = data_file(data_cfg)
    messages, labels = read_messages(path, data_cfg.text_column, data_cfg.label_column)
    splits = split_examples(messages, labels, data_cfg.split, data_cfg.seed)
    held_out = Counter(splits.val.texts + splits.test.texts)
    texts = _outside(held_out, messages) if data_text else []
    files = [str(f) for given in text_paths or [] for f in text_files(Path(given))]
    for name in files:
        texts += read_texts(Path(name), text_column)
    if not texts:
        raise SpamkitError("no unlabelled text to read: give --text, or read the data file's "
                           "(leave --no-data-text out)")
    kept = [t for t in texts if t not in held_out]
    return Unlabelled(kept, files, len(texts) - len(kept), sha256)


def _outside(held_out: Counter, texts: list[str]) -> list[str]:
    """`texts` less one occurrence of each held-out message: the split's own validation and
    test messages (its other copies stay, to be dropped and counted)."""
    left = Counter(held_out)
    kept = []
    for text in texts:
        if left[text]:
            left[text] -= 1
        else:
            kept.append(text)
    return kept


def text_files(path: Path) -> list[Path]:
    """`path` if it is a file; the files directly in it, by name, if it is a directory (hidden
    ones left out)."""
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        if not found:
            raise SpamkitError(f"--text {path} is a directory with no files in it")
        return found
    if not path.is_file():
        raise SpamkitError(f"--text {path}: no such file or directory")
    return [path]
