"""`--init gpt2 --weights ...`: OpenAI's GPT-2 in the Hugging Face format loads exactly.

No machine here can download the real weights, so each test builds a small random GPT-2 with
transformers and saves it the ways the hub ships them."""

import json
import pickle
import shutil

import numpy as np
import pytest
import torch
from conftest import SMS_FILE, spamkit_cli

from spamkit.config import preset_config
from spamkit.data import DataConfig
from spamkit.errors import SpamkitError
from spamkit.export.bundle import ExportConfig, export_bundle
from spamkit.runtime import Classifier
from spamkit.tokenizer import gpt2_tokenizer
from spamkit.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from spamkit.training.lora import add_lora, merge_lora
from spamkit.training.model import GPTClassifier
from spamkit.training.pretrained import find_weights, load_pretrained, to_hf_names
from spamkit.training.train import collate

transformers = pytest.importorskip("transformers")

# The `tiny` preset's shape, so a loaded checkpoint is an ordinary tiny model.
SHAPE = dict(n_embd=64, n_layer=2, n_head=2, n_positions=256, vocab_size=50257)


@pytest.fixture(scope="module")
def hf_model():
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(transformers.GPT2Config(**SHAPE)).eval()


@pytest.fixture(scope="module")
def hf_dirs(hf_model, tmp_path_factory):
    """The same weights as `model.safetensors` (save_pretrained) and as `pytorch_model.bin`
    (a pickled state dict, what save_pretrained wrote before safetensors)."""
    st = tmp_path_factory.mktemp("hf_safetensors")
    hf_model.save_pretrained(st)
    pt = tmp_path_factory.mktemp("hf_bin")
    torch.save(hf_model.state_dict(), pt / "pytorch_model.bin")
    shutil.copy(st / "config.json", pt / "config.json")
    return {"safetensors": st, "bin": pt}


def _hidden_states_match(model, hf_model):
    ids = torch.tensor([[15496, 11, 995, 0, 50256, 318, 257, 1332] * 4])
    with torch.no_grad():
        want = hf_model(ids, output_hidden_states=True).hidden_states[-1]  # after ln_f
        got = model.ln_f(model.h[-1](model.trunk(ids)))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)  # every position


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_both_file_formats_load_exactly(hf_dirs, hf_model, fmt):
    path = find_weights("gpt2", str(hf_dirs[fmt]))
    model = load_pretrained(path, num_classes=2).eval()
    assert model.config.n_layer == 2 and model.config.n_head == 2
    _hidden_states_match(model, hf_model)


def test_a_bin_file_with_code_in_its_pickle_is_refused(tmp_path):
    marker = tmp_path / "the-pickle-ran"

    class Exploit:
        def __reduce__(self):  # unpickling calls open(marker, "w"): the file appears
            return (open, (str(marker), "w"))

    (tmp_path / "pytorch_model.bin").write_bytes(pickle.dumps({"wte.weight": Exploit()}))
    with pytest.raises(SpamkitError, match="not a plain PyTorch weights file"):
        load_pretrained(find_weights("gpt2", str(tmp_path)), num_classes=2)
    assert not marker.exists(), "loading the weights ran the code in the pickle"


def test_a_missing_or_misshapen_tensor_is_named(hf_dirs, tmp_path):
    from safetensors.torch import load_file, save_file

    state = load_file(str(hf_dirs["safetensors"] / "model.safetensors"))
    del state["transformer.h.1.ln_2.weight"]
    state["transformer.h.0.mlp.c_fc.bias"] = torch.zeros(7)
    save_file(state, str(tmp_path / "model.safetensors"))
    shutil.copy(hf_dirs["safetensors"] / "config.json", tmp_path)
    with pytest.raises(SpamkitError) as e:
        load_pretrained(tmp_path / "model.safetensors", num_classes=2)
    assert "missing h.1.ln_2.weight" in str(e.value)
    assert "h.0.mlp.c_fc.bias has shape (7,)" in str(e.value)


def test_a_spamkit_classifier_becomes_transformers_gpt2_for_sequence_classification():
    # benchmarks/compare.py runs the same weights through transformers and optimum this way.
    torch.manual_seed(1)
    model = GPTClassifier(preset_config("tiny")).eval()
    hf = transformers.GPT2ForSequenceClassification(transformers.GPT2Config(
        **SHAPE, num_labels=2, pad_token_id=50256)).eval()
    hf.load_state_dict(to_hf_names(model.state_dict()), strict=True)
    ids, mask = collate([[15496, 11, 995], [40, 716, 257, 1332, 13, 0]], pad_id=50256)
    with torch.no_grad():
        want = model(ids, mask)
        got = hf(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)

    with torch.no_grad():
        model.head.bias.fill_(0.5)
    with pytest.raises(SpamkitError, match="score head has no bias"):
        to_hf_names(model.state_dict())


def test_train_with_local_weights_through_the_cli(hf_dirs, hf_model, tmp_path):
    out = tmp_path / "ckpt"
    result = spamkit_cli("train", "--init", "gpt2",
                         "--weights", hf_dirs["bin"] / "pytorch_model.bin", "--trainable", "head",
                         "--epochs", "1", "--max-steps", "3", "--no-compile",
                         "--out", out, "--data", SMS_FILE)
    assert result.returncode == 0, result.stderr
    assert "loaded tiny GPT-2 weights" in result.stdout
    ckpt = load_checkpoint(out)
    assert ckpt.training["init"] == "gpt2" and ckpt.preset == "tiny"
    _hidden_states_match(ckpt.model, hf_model)  # only the head trained: the body is GPT-2's


def test_no_network_no_cache_no_weights_says_how_to_get_them(tmp_path):
    result = spamkit_cli("train", "--init", "gpt2-medium", "--out", tmp_path / "ckpt",
                         "--data", SMS_FILE,
                         env={"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    for words in ("openai-community/gpt2-medium", "--weights", "--init random"):
        assert words in result.stderr
    assert not (tmp_path / "ckpt").exists()


def test_lora_merged_export_gives_the_unmerged_logits(hf_dirs, tmp_path):
    torch.manual_seed(1)
    model = load_pretrained(find_weights("gpt2", str(hf_dirs["safetensors"])), num_classes=2)
    add_lora(model, rank=4, alpha=8)
    for name, p in model.named_parameters():
        if name.endswith(".B"):  # as after training: a non-zero update
            torch.nn.init.normal_(p, std=0.05)
    model.eval()
    texts = [line.split("\t", 1)[1] for line in SMS_FILE.read_text().splitlines()[:64]]
    ids = gpt2_tokenizer(256).encode_batch(texts)
    with torch.no_grad():
        unmerged = model(*collate(ids, 50256)).numpy()
    merge_lora(model)
    assert not any(n.endswith((".A", ".B")) for n, _ in model.named_parameters())
    save_checkpoint(tmp_path / "ckpt", Checkpoint(model, ["ham", "spam"], "tiny",
                                                  DataConfig(path=str(SMS_FILE))), {})
    export_bundle(tmp_path / "ckpt", tmp_path / "bundle", ExportConfig())
    onnx_logits = Classifier.load(tmp_path / "bundle", batch_size=64).logits(texts)
    np.testing.assert_allclose(onnx_logits, unmerged, atol=1e-4, rtol=0)


@pytest.mark.parametrize("trainable", ["head", "last-block", "lora"])
def test_trainable_variants_train_and_export(trainable, tmp_path):
    result = spamkit_cli("train", "--preset", "tiny", "--trainable", trainable, "--epochs", "1",
                         "--max-steps", "3", "--no-compile", "--out", tmp_path / "ckpt",
                         "--data", SMS_FILE)
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert config["training"]["trainable"] == trainable
    manifest = export_bundle(tmp_path / "ckpt", tmp_path / "bundle", ExportConfig(int8=True))
    assert manifest.verification["fp32_max_abs_logit_diff_vs_torch"] <= 1e-4


def test_a_book_padded_checkpoint_trains_but_does_not_export(tmp_path):
    result = spamkit_cli("train", "--preset", "tiny", "--pad-to", "longest", "--epochs", "1",
                         "--max-steps", "2", "--no-compile", "--out", tmp_path / "ckpt",
                         "--data", SMS_FILE)
    assert result.returncode == 0, result.stderr
    assert load_checkpoint(tmp_path / "ckpt").training["pad_to_tokens"] > 50
    with pytest.raises(SpamkitError, match="--pad-to"):
        export_bundle(tmp_path / "ckpt", tmp_path / "bundle", ExportConfig())
    assert not (tmp_path / "bundle").exists()
