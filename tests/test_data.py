"""Finding, reading and splitting the data, the way a user meets it: the real SMS Spam
Collection, a real (local) HTTP download, and small CSV/TSV files of their own."""

import csv
import hashlib
import io
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from conftest import SMS_FILE as SMS
from conftest import SMS_ZIP, closed_port_url

from spamkit.data import (
    DATA_ENV,
    SMS_SHA256,
    URL_ENV,
    DataConfig,
    load_splits,
    read_messages,
    resolve_data,
    split_examples,
)
from spamkit.errors import SpamkitError


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def write_table(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    """A CSV as the csv module writes one; a TSV as tab-joined lines (TSV has no quoting)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        if path.suffix == ".tsv":
            f.writelines("\t".join(row) + "\n" for row in [header, *rows])
        else:
            csv.writer(f).writerows([header, *rows])
    return path


# -----------------------------------------------------------------------------
# the real SMS Spam Collection


def test_every_line_of_the_real_file_loads_exactly():
    texts, labels = read_messages(SMS)
    assert len(texts) == 5574
    assert Counter(labels) == {"ham": 4827, "spam": 747}
    # Quotes and all: the messages rebuild the file byte for byte.
    assert any('"' in t for t in texts)
    rebuilt = "".join(f"{label}\t{text}\n" for label, text in zip(labels, texts))
    assert rebuilt == SMS.read_text(encoding="utf-8")


def test_balanced_split_matches_the_book():
    splits = load_splits(DataConfig(path=str(SMS)))
    assert splits.labels == ["ham", "spam"]
    assert (len(splits.train), len(splits.val), len(splits.test)) == (1045, 149, 300)
    everything = splits.train.labels + splits.val.labels + splits.test.labels
    assert Counter(everything) == {0: 747, 1: 747}
    for part in (splits.train, splits.val, splits.test):
        assert len(part.texts) == len(part.labels)

    again = load_splits(DataConfig(path=str(SMS)))
    assert again == splits
    other = load_splits(DataConfig(path=str(SMS), seed=7))
    assert other.train.texts != splits.train.texts


def test_full_split_is_stratified():
    splits = load_splits(DataConfig(path=str(SMS), split="full"))
    assert (len(splits.train), len(splits.val), len(splits.test)) == (3900, 556, 1118)
    assert Counter(splits.train.labels) == {0: 3378, 1: 522}
    assert Counter(splits.val.labels) == {0: 482, 1: 74}
    assert Counter(splits.test.labels) == {0: 967, 1: 151}
    assert load_splits(DataConfig(path=str(SMS), split="full")) == splits
    assert load_splits(DataConfig(path=str(SMS), split="full", seed=1)) != splits


def test_unknown_split_is_refused():
    with pytest.raises(SpamkitError, match="unknown split 'random'"):
        load_splits(DataConfig(path=str(SMS), split="random"))


# -----------------------------------------------------------------------------
# finding the data: download, cache, local copies


def test_download_verifies_and_caches(tmp_path, serve):
    cache = tmp_path / "cache"
    path = resolve_data(cache_dir=cache, url=serve(SMS_ZIP.read_bytes())[0])
    assert path == cache / "SMSSpamCollection"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SMS_SHA256
    assert [p.name for p in cache.iterdir()] == ["SMSSpamCollection"]
    # Offline from now on: the cached copy is enough.
    assert resolve_data(cache_dir=cache, url=closed_port_url()) == path


def test_download_url_and_cache_come_from_the_environment(tmp_path, serve, monkeypatch):
    monkeypatch.setenv(URL_ENV, serve(SMS_ZIP.read_bytes())[0])
    splits = load_splits(DataConfig())
    assert (len(splits.train), len(splits.val), len(splits.test)) == (1045, 149, 300)
    assert (tmp_path / "cache" / "SMSSpamCollection").is_file()


def test_tampered_download_is_rejected_and_not_cached(tmp_path, serve):
    tampered = SMS.read_bytes().replace(b"Free entry", b"Free ENTRY", 1)
    assert tampered != SMS.read_bytes()
    url = serve(zip_bytes({"SMSSpamCollection": tampered, "readme": b"hi"}))[0]
    cache = tmp_path / "cache"
    with pytest.raises(SpamkitError, match="sha256"):
        resolve_data(cache_dir=cache, url=url)
    assert not cache.exists() or list(cache.iterdir()) == []


def test_interrupted_download_is_a_clear_error(tmp_path, serve):
    truncated = SMS_ZIP.read_bytes()[:100_000]
    cache = tmp_path / "cache"
    with pytest.raises(SpamkitError, match="not a valid zip archive"):
        resolve_data(cache_dir=cache, url=serve(truncated)[0])
    assert not cache.exists() or list(cache.iterdir()) == []


def test_zip_without_the_collection_is_refused(tmp_path, serve):
    url = serve(zip_bytes({"readme": b"nothing here"}))[0]
    with pytest.raises(SpamkitError, match="no SMSSpamCollection file inside"):
        resolve_data(cache_dir=tmp_path / "cache", url=url)


def test_no_network_and_no_local_copy_says_how_to_give_one(tmp_path):
    url = closed_port_url()
    with pytest.raises(SpamkitError) as err:
        resolve_data(cache_dir=tmp_path / "cache", url=url)
    message = str(err.value)
    assert "--data" in message and DATA_ENV in message and url in message


def test_local_copy_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(SMS))
    assert resolve_data() == SMS

    monkeypatch.setenv(DATA_ENV, str(SMS_ZIP))
    assert resolve_data() == tmp_path / "cache" / "SMSSpamCollection"

    # The flag wins over the environment.
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "gone"))
    assert resolve_data(str(SMS)) == SMS
    with pytest.raises(SpamkitError, match=f"gone .from {DATA_ENV}"):
        resolve_data()


def test_missing_data_path_is_named(tmp_path):
    missing = tmp_path / "nope.tsv"
    with pytest.raises(SpamkitError, match="nope.tsv"):
        load_splits(DataConfig(path=str(missing)))


# -----------------------------------------------------------------------------
# the user's own data


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_user_table_with_quotes_and_commas(tmp_path, suffix):
    rows = [[f'order #{i}, "urgent", ship\tnow', "orders"] for i in range(10)]
    rows += [[f"hi, it's me\n(again) {i}", "chat"] for i in range(10)]
    if suffix == ".tsv":  # no quoting: quotes are text, and no field holds a tab or a newline
        rows = [[text.replace("\t", " ").replace("\n", " "), kind] for text, kind in rows]
    path = write_table(tmp_path / f"mine{suffix}", ["id", "message", "kind"],
                       [[str(i), *row] for i, row in enumerate(rows)])

    texts, labels = read_messages(path, text_column="message", label_column="kind")
    assert texts == [row[0] for row in rows]
    assert labels == [row[1] for row in rows]

    cfg = DataConfig(path=str(path), split="full", text_column="message", label_column="kind")
    splits = load_splits(cfg)
    assert splits.labels == ["chat", "orders"]
    assert (len(splits.train), len(splits.val), len(splits.test)) == (14, 2, 4)


def test_missing_column_is_named(tmp_path):
    path = write_table(tmp_path / "mine.csv", ["text", "category"], [["hello", "a"]])
    with pytest.raises(SpamkitError, match="no column 'label'.*'text', 'category'"):
        read_messages(path)


@pytest.mark.parametrize("name, content", [("empty.csv", ""), ("header.csv", "text,label\n"),
                                           ("empty.tsv", ""), ("blank", "\n\n")])
def test_file_without_messages(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(SpamkitError, match="no messages in"):
        read_messages(path)


def test_single_class_is_refused(tmp_path):
    path = write_table(tmp_path / "mine.csv", ["text", "label"], [["a", "ham"], ["b", "ham"]])
    with pytest.raises(SpamkitError, match="at least two labels"):
        load_splits(DataConfig(path=str(path)))


def test_sms_line_without_a_tab_names_the_line(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("ham\thello\nspam\tWIN NOW\njust some text\n")
    with pytest.raises(SpamkitError, match="line 3"):
        read_messages(path)


def test_sms_line_with_an_empty_label_names_the_line(tmp_path):
    """A tab with nothing but spaces before it: no label, though the line splits."""
    path = tmp_path / "mine.txt"
    path.write_text("ham\thello\nspam\tWIN NOW\n \tlabel lost\n")
    with pytest.raises(SpamkitError, match="mine.txt, line 3: expected 'label<TAB>text'"):
        read_messages(path)


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_a_table_row_without_a_label_names_the_line(tmp_path, suffix):
    path = write_table(tmp_path / f"mine{suffix}", ["text", "label"],
                       [["hello", "ham"], ["WIN NOW", "spam"], ["label lost", " "]])
    with pytest.raises(SpamkitError, match=f"mine{suffix}, line 4: missing label"):
        read_messages(path)


def test_too_few_messages_for_a_split():
    texts, labels = ["a", "b", "c", "d"], ["ham", "spam", "ham", "spam"]
    with pytest.raises(SpamkitError, match="the val split is empty"):
        split_examples(texts, labels, "balanced", seed=123)
