"""Load OpenAI's GPT-2 weights in the Hugging Face format into spamkit's model.

Hugging Face's GPT-2 uses the same module names as spamkit (both follow OpenAI's), with two
differences: its linear layers are `Conv1D`, which store the weight as [in, out] (transposed
against nn.Linear), and GPT2LMHeadModel prefixes everything with `transformer.`. The LM head is
tied to the token embedding and is dropped; a fresh class head is added.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from spamkit.config import PRESETS, GPTConfig
from spamkit.errors import SpamkitError
from spamkit.training.checkpoint import check_shapes, expected_shapes
from spamkit.training.model import GPTClassifier

HUB_IDS = {name: f"openai-community/{name}"
           for name in ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl")}
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
# Not weights: old checkpoints' causal-mask buffers (the LM head is dropped by name).
MASK_BUFFERS = (".attn.bias", ".attn.masked_bias")


def find_weights(init: str, weights: str | None) -> Path:
    """The weight file for `init`: from --weights (a file or a directory), else the Hugging
    Face cache or hub."""
    if weights:
        path = Path(weights).expanduser()
        if path.is_dir():
            for name in WEIGHT_FILES:
                if (path / name).is_file():
                    return path / name
            raise SpamkitError(f"{path} has neither {' nor '.join(WEIGHT_FILES)}")
        if not path.is_file():
            raise SpamkitError(f"no weights at {path} (from --weights)")
        return path
    return _from_hub(init)


def _from_hub(init: str) -> Path:
    repo = HUB_IDS[init]
    how = (
        f"download {repo}'s model.safetensors (huggingface-cli download {repo} model.safetensors "
        f"config.json) and pass --weights PATH, or train offline with --init random"
    )
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise SpamkitError(f"--init {init} needs huggingface_hub or --weights: {how}") from None
    try:
        # Reads the cache first; downloads only when the file is not there.
        path = hf_hub_download(repo, "model.safetensors")
        hf_hub_download(repo, "config.json")
    except Exception as e:  # noqa: BLE001 - offline, DNS, HTTP, cache errors all mean "not here"
        raise SpamkitError(f"could not get {repo} from the Hugging Face cache or hub "
                           f"({type(e).__name__}); {how}") from None
    return Path(path)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except SafetensorError as e:
            raise SpamkitError(f"{path} is not a readable safetensors file: {e}") from None
    try:
        # A .bin is a pickle: weights_only=True refuses anything but tensors and plain
        # containers, so loading it cannot run code.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises UnpicklingError, RuntimeError, ...
        raise SpamkitError(f"{path} is not a plain PyTorch weights file ({type(e).__name__}: "
                           f"{str(e).splitlines()[0]})") from None
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise SpamkitError(f"{path} does not hold named tensors (a state dict) but "
                           f"{type(state).__name__} of other things")
    return state


def to_spamkit_names(hf: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    state = {}
    for name, tensor in hf.items():
        name = name.removeprefix("transformer.")
        if name.startswith("lm_head.") or name.endswith(MASK_BUFFERS):
            continue
        # (A misshapen tensor is left as it is, for check_shapes to name.)
        conv1d = name.endswith(CONV1D) and tensor.dim() == 2
        state[name] = tensor.t().contiguous() if conv1d else tensor
    return state


def to_hf_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of to_spamkit_names, for transformers' GPT2ForSequenceClassification: its
    class head is `score`, which has no bias, so only a head whose bias is zero maps exactly."""
    hf = {}
    for name, tensor in state.items():
        if name == "head.bias":
            if tensor.any():
                raise SpamkitError("Hugging Face's GPT-2 score head has no bias, and this "
                                   "model's head bias is not zero")
        elif name == "head.weight":
            hf["score.weight"] = tensor
        else:
            hf[f"transformer.{name}"] = tensor.t().contiguous() if name.endswith(CONV1D) else tensor
    return hf


def gpt2_config(path: Path, state: dict[str, torch.Tensor], **overrides) -> GPTConfig:
    """Shape of the weights: sizes from the tensors, heads from config.json beside them (or
    from GPT-2's four published sizes). Checked against the caps in GPTConfig before anything
    is built."""
    n_layer = _layer_count(path, state)
    shapes = {k: tuple(state[k].shape) for k in ("wte.weight", "wpe.weight")}
    widths = {shape[-1] for shape in shapes.values()}
    if any(len(shape) != 2 for shape in shapes.values()) or len(widths) != 1:
        raise SpamkitError(f"{path} does not hold GPT-2 embeddings (wte and wpe of shapes "
                           f"[tokens, width] and [positions, width]): {shapes}")
    (vocab, n_embd), (context, _) = shapes.values()
    config_file = path.parent / "config.json"
    if config_file.is_file():
        n_head = _heads_from(config_file)
    else:
        known = {(c.n_layer, c.n_embd): c.n_head for c in PRESETS.values()}
        if (n_layer, n_embd) not in known:
            raise SpamkitError(f"cannot tell the number of heads of {path}: "
                               "put its config.json beside it")
        n_head = known[(n_layer, n_embd)]
    return GPTConfig(vocab_size=vocab, context_length=context, n_layer=n_layer, n_head=n_head,
                     n_embd=n_embd, **overrides)


def _layer_count(path: Path, state: dict[str, torch.Tensor]) -> int:
    """How many blocks `h.0.` ... `h.N.` the weights hold: numbered from 0 with no gap."""
    found = {k.split(".")[1] for k in state if k.startswith("h.")}
    if found != {str(i) for i in range(len(found))}:
        odd = sorted(found - {str(i) for i in range(len(found))})[:3]
        raise SpamkitError(f"{path} does not number its blocks h.0 to h.{len(found) - 1}: it "
                           f"has {', '.join('h.' + x for x in odd)}")
    return len(found)


def _heads_from(config_file: Path) -> int:
    try:
        config = json.loads(config_file.read_bytes())
    except (ValueError, OSError) as e:
        raise SpamkitError(f"{config_file} is not valid JSON ({e})") from None
    n_head = config.get("n_head") if isinstance(config, dict) else None
    if not isinstance(n_head, int) or isinstance(n_head, bool):
        raise SpamkitError(f"{config_file} gives no number of heads (n_head)")
    return n_head


def load_pretrained(path: Path, **overrides) -> GPTClassifier:
    """A classifier with GPT-2's weights everywhere but the new head. `overrides` set the
    classifier-only fields (num_classes, token, dropout)."""
    state = to_spamkit_names(read_state_dict(path))
    if "wte.weight" not in state or "wpe.weight" not in state:
        raise SpamkitError(f"{path} does not hold GPT-2 weights (no wte/wpe embeddings)")
    cfg = gpt2_config(path, state, **overrides)
    expected = {k: v for k, v in expected_shapes(cfg).items() if not k.startswith("head.")}
    check_shapes(expected, {k: tuple(v.shape) for k, v in state.items()}, source=str(path))
    model = GPTClassifier(cfg)
    head = {k: v for k, v in model.state_dict().items() if k.startswith("head.")}
    model.load_state_dict({**state, **head})
    return model


def preset_name(cfg: GPTConfig) -> str:
    """The preset these shapes are, or "custom"."""
    shape = (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.context_length)
    for name, p in PRESETS.items():
        if (p.n_layer, p.n_head, p.n_embd, p.context_length) == shape:
            return name
    return "custom"
