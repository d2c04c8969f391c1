"""Find, read and split labelled text messages.

The default data set is the UCI SMS Spam Collection, downloaded once and cached after its
checksum is verified. A user can instead point at a local copy (the SMSSpamCollection file,
the UCI zip) or at their own CSV/TSV table. This module must not import torch.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import urllib.request
import zipfile
import zlib
from dataclasses import asdict, dataclass, replace
from http.client import HTTPException
from pathlib import Path

import numpy as np

from spamkit.atomic import write_bytes_atomic
from spamkit.config import SPLITS
from spamkit.errors import SpamkitError
from spamkit.records import KINDS, Source, records
from spamkit.runtime.bundle import sha256_file

UCI_URL = "https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip"
SMS_SHA256 = "7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d"
DATA_ENV = "SPAMKIT_DATA"
URL_ENV = "SPAMKIT_DATA_URL"
CACHE_ENV = "SPAMKIT_CACHE"

SMS_NAME = "SMSSpamCollection"
# In the cache: the data file `spamkit data --data FILE` was given, for every later command.
REMEMBERED_FILE = "data-file.json"
DOWNLOAD_TIMEOUT_S = 30
# Many times the UCI archive and its SMSSpamCollection: a download or zip member larger than
# this is not that file, and is not read any further (a zip bomb stops here).
MAX_SMS_BYTES = 8 * 2**20
# Messages are read whole into memory to be split: a larger data file is refused unread.
MAX_DATA_BYTES = 2**30
TRAIN_FRAC, VAL_FRAC = 0.7, 0.1


@dataclass(frozen=True)
class Examples:
    texts: list[str]
    labels: list[int]  # class ids, indices into Splits.labels

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class Splits:
    labels: list[str]  # class names; index = class id
    train: Examples
    val: Examples
    test: Examples
    sha256: str | None = None  # of the data file they were split from


@dataclass(frozen=True)
class DataConfig:
    path: str | None = None
    split: str = "balanced"
    seed: int = 123
    text_column: str = "text"
    label_column: str = "label"
    # The data file's sha256 once a model was trained on it: "as trained" must be that file.
    sha256: str | None = None

    def with_path(self, path: str | None) -> DataConfig:
        """This split of the file `path` when one is given (the user's choice: no sha256 to
        match), else this config as it is."""
        return replace(self, path=path, sha256=None) if path else self

    def split_fields(self) -> dict:
        """What picks the split's messages: every field but the path the file was read from."""
        return {k: v for k, v in asdict(self).items() if k != "path"}


# -----------------------------------------------------------------------------
# finding the data


def default_cache_dir() -> Path:
    """$SPAMKIT_CACHE, else the platform's cache directory: ~/.cache/spamkit (or under
    $XDG_CACHE_HOME) on Linux, ~/Library/Caches/spamkit on macOS, %LOCALAPPDATA%\\spamkit\\Cache
    on Windows."""
    from platformdirs import user_cache_dir

    return Path(os.environ.get(CACHE_ENV) or user_cache_dir("spamkit", appauthor=False)
                ).expanduser()


def _extract_sms(archive: Path | io.BytesIO, cache_dir: Path, source: str) -> Path:
    """Copy SMSSpamCollection out of a zip into the cache, only if its checksum matches."""
    try:
        with zipfile.ZipFile(archive) as zf:
            # Mirrors sometimes repack the archive under a top-level folder.
            members = [n for n in zf.namelist() if n.rsplit("/", 1)[-1] == SMS_NAME]
            if not members:
                raise SpamkitError(f"{source} has no {SMS_NAME} file inside")
            with zf.open(members[0]) as member:
                data = member.read(MAX_SMS_BYTES + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise SpamkitError(f"{source} is not a valid zip archive ({e})") from None
    if len(data) > MAX_SMS_BYTES:
        raise SpamkitError(f"{source}: its {SMS_NAME} unpacks to over {MAX_SMS_BYTES >> 20} MiB, "
                           "which the SMS Spam Collection (0.5 MB) never does; refused")
    digest = hashlib.sha256(data).hexdigest()
    if digest != SMS_SHA256:
        raise SpamkitError(
            f"{SMS_NAME} from {source} has sha256 {digest}, expected {SMS_SHA256}: "
            "the archive is damaged or is not the UCI SMS Spam Collection"
        )
    target = cache_dir / SMS_NAME
    write_bytes_atomic(target, data)
    return target


def _download(url: str, cache_dir: Path) -> Path:
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            # The archive is small: holding it in memory means a broken download can never
            # leave a partial file behind.
            archive = io.BytesIO(response.read(MAX_SMS_BYTES + 1))
    except (OSError, ValueError, HTTPException) as e:
        raise SpamkitError(
            f"could not download the SMS Spam Collection from {url} ({e}); "
            f"give a local copy with --data PATH or the {DATA_ENV} environment variable "
            f"(the {SMS_NAME} file or the UCI zip)"
        ) from None
    if len(archive.getbuffer()) > MAX_SMS_BYTES:
        raise SpamkitError(f"the download from {url} is over {MAX_SMS_BYTES >> 20} MiB, which "
                           "the SMS Spam Collection's archive (0.2 MB) never is; refused")
    return _extract_sms(archive, cache_dir, source=url)


def resolve_data(
    path: str | None = None, *, cache_dir: Path | None = None, url: str | None = None
) -> Path:
    """A local data file: `path`, else $SPAMKIT_DATA, else the file `spamkit data --data`
    remembered, else the cached download, else a download (checked against its sha256).

    Args:
        path: the SMSSpamCollection file, the UCI zip (extracted into the cache) or a CSV/TSV.
        cache_dir: where downloads and the record live (default: $SPAMKIT_CACHE, else the
            platform's user cache).
        url: where to download from (default: $SPAMKIT_DATA_URL, else UCI's archive).

    Returns:
        The path of the data file to read.

    Raises:
        SpamkitError: no file where one was named, a damaged record, or a download or zip
            that fails, is too large or is not the SMS Spam Collection.
    """
    cache_dir = cache_dir or default_cache_dir()
    given, origin = (path, "--data") if path else (os.environ.get(DATA_ENV), DATA_ENV)
    if not given:
        given, origin = remembered_data(cache_dir), "remembered by `spamkit data --data`"
    if given:
        local = Path(given).expanduser()
        if not local.is_file():
            raise SpamkitError(f"no data file at {local} (from {origin})")
        if local.suffix.lower() == ".zip":
            return _extract_sms(local, cache_dir, source=str(local))
        return local
    cached = cache_dir / SMS_NAME
    if cached.is_file():  # only ever written after its checksum matched
        return cached
    return _download(url or os.environ.get(URL_ENV) or UCI_URL, cache_dir)


def remembered_data(cache_dir: Path | None = None) -> str | None:
    """The data file `spamkit data --data` last recorded, if any."""
    record = (cache_dir or default_cache_dir()) / REMEMBERED_FILE
    try:
        path = json.loads(record.read_bytes()).get("path")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, AttributeError):
        path = None
    if not isinstance(path, str) or not path:
        raise SpamkitError(f"{record} is damaged: record the data file again with "
                           "`spamkit data --data FILE`, or forget it with `spamkit data --forget`")
    return path


def remember_data(path: Path, cache_dir: Path | None = None) -> None:
    """Record `path` (made absolute) for every later command that is given no --data."""
    record = (cache_dir or default_cache_dir()) / REMEMBERED_FILE
    text = json.dumps({"path": str(Path(path).expanduser().absolute())}) + "\n"
    write_bytes_atomic(record, text.encode())


def forget_data(cache_dir: Path | None = None) -> bool:
    """Forget the remembered data file; whether there was one."""
    record = (cache_dir or default_cache_dir()) / REMEMBERED_FILE
    try:
        record.unlink()
    except FileNotFoundError:
        return False
    return True


def data_file(cfg: DataConfig) -> tuple[Path, str]:
    """The data file `cfg` names (resolve_data) and its sha256, which must be the one `cfg`
    records when a model was trained on it."""
    path = resolve_data(cfg.path)
    found = sha256_file(path)
    if cfg.sha256 is not None and found != cfg.sha256:
        raise SpamkitError(
            f"{path} is not the data file the model was trained on (sha256 {found[:12]}..., "
            f"the model's {cfg.sha256[:12]}...): give that file with --data"
        )
    return path, found


# -----------------------------------------------------------------------------
# reading messages


def _read_sms(path: Path) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    # Split on "\n" only: str.splitlines would also break messages at \x1c, \u2028 and such.
    for lineno, line in enumerate(path.read_text(encoding="utf-8-sig").split("\n"), 1):
        line = line.rstrip("\r")
        if not line:
            continue
        label, tab, text = line.partition("\t")
        if not tab or not label.strip():
            raise SpamkitError(f"{path}, line {lineno}: expected 'label<TAB>text'")
        labels.append(label.strip())
        texts.append(text)
    return texts, labels


def _read_table(path: Path, text_column: str, label_column: str) -> tuple[list[str], list[str]]:
    """A CSV or TSV with a header, read as `spamkit score` reads one (strict CSV, TSV without
    quoting), the label column taking the place of the id."""
    texts, labels = [], []
    if path.stat().st_size == 0:
        return texts, labels  # not even a header: no messages
    for record, after in records(Source(path, KINDS[path.suffix.lower()], text_column,
                                        label_column)):
        if not record.id.strip():
            raise SpamkitError(f"{path}, line {after.line - 1}: missing label")
        texts.append(record.text)
        labels.append(record.id.strip())
    return texts, labels


def read_messages(
    path: Path, text_column: str = "text", label_column: str = "label"
) -> tuple[list[str], list[str]]:
    """The texts and the label name of each row: CSV/TSV by suffix, else SMS format.

    Args:
        path: the data file.
        text_column: a CSV/TSV's column of messages.
        label_column: a CSV/TSV's column of labels.

    Returns:
        The messages and their label names, in file order.

    Raises:
        SpamkitError: a file too large to hold, not UTF-8, malformed, or without messages.
    """
    path = Path(path)
    if path.stat().st_size > MAX_DATA_BYTES:
        raise SpamkitError(f"{path} is over {MAX_DATA_BYTES >> 30} GiB: too large to train or "
                           "evaluate on in memory; use a sample of it")
    try:
        if path.suffix.lower() in (".csv", ".tsv"):
            texts, labels = _read_table(path, text_column, label_column)
        else:
            texts, labels = _read_sms(path)
    except UnicodeDecodeError as e:
        raise SpamkitError(f"{path} is not UTF-8 text ({e})") from None
    if not texts:
        raise SpamkitError(f"no messages in {path}")
    return texts, labels


def read_texts(path: Path, text_column: str | None = None) -> list[str]:
    """The messages of a file, for work that needs no labels. With `text_column`, read as
    `spamkit score` reads its input: that column of a CSV/TSV, that field of JSON Lines, any
    other file one message per line. Without, the texts of labelled data (read_messages)."""
    if text_column is None:
        return read_messages(path)[0]
    path = Path(path)
    if path.stat().st_size > MAX_DATA_BYTES:
        raise SpamkitError(f"{path} is over {MAX_DATA_BYTES >> 30} GiB: use a sample of it")
    texts = [record.text for record, _ in records(Source.of(path, text_column))]
    if not texts:
        raise SpamkitError(f"no messages in {path}")
    return texts


# -----------------------------------------------------------------------------
# splitting


def _cut(idx: np.ndarray) -> list[np.ndarray]:
    n_train, n_val = int(len(idx) * TRAIN_FRAC), int(len(idx) * VAL_FRAC)
    return [idx[:n_train], idx[n_train : n_train + n_val], idx[n_train + n_val :]]


def split_examples(texts: list[str], label_names: list[str], split: str, seed: int) -> Splits:
    """Split into train/val/test 70/10/20: "balanced" undersamples to the smallest class
    first (as the book does), "full" keeps every message and cuts each class separately.

    Args:
        texts: the messages.
        label_names: each message's label; the sorted names become class ids 0, 1, ...
        split: "balanced" or "full".
        seed: seed of the undersampling and the shuffles: the same seed, the same splits.

    Returns:
        The three splits and the class names.

    Raises:
        SpamkitError: an unknown split, fewer than two labels, or too few messages for a
            split to be non-empty.
    """
    if split not in SPLITS:
        raise SpamkitError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    labels = sorted(set(label_names))
    if len(labels) < 2:
        raise SpamkitError(f"need at least two labels to classify, found only {labels}")
    class_id = {name: i for i, name in enumerate(labels)}
    y = np.array([class_id[name] for name in label_names])
    rng = np.random.default_rng(seed)
    by_class = [np.flatnonzero(y == c) for c in range(len(labels))]
    if split == "balanced":
        n = min(len(idx) for idx in by_class)
        kept = np.concatenate([rng.choice(idx, n, replace=False) for idx in by_class])
        parts = _cut(rng.permutation(kept))
    else:
        cuts = [_cut(rng.permutation(idx)) for idx in by_class]
        parts = [rng.permutation(np.concatenate(part)) for part in zip(*cuts)]
    for name, part in zip(("train", "val", "test"), parts):
        if len(part) == 0:
            raise SpamkitError(
                f"the {name} split is empty: {len(texts)} messages are too few "
                f"for a {split} 70/10/20 split"
            )
    train, val, test = (
        Examples([texts[i] for i in part], [int(y[i]) for i in part]) for part in parts
    )
    return Splits(labels=labels, train=train, val=val, test=test)


def load_splits(cfg: DataConfig) -> Splits:
    """The splits `cfg` describes, of the file it names.

    Args:
        cfg: the data file (resolve_data), its split and seed, and the sha256 it must have
            when a model recorded one.

    Returns:
        The splits, with the data file's sha256.

    Raises:
        SpamkitError: the file cannot be found or read, is not the one the model was trained
            on, or cannot be split (read_messages, split_examples).
    """
    path, sha256 = data_file(cfg)
    texts, label_names = read_messages(path, cfg.text_column, cfg.label_column)
    return replace(split_examples(texts, label_names, cfg.split, cfg.seed), sha256=sha256)
