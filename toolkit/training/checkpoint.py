"""A trained model on disk: a directory with safetensors weights and JSON metadata.

    config.json        model shape, labels, token choice, how it was trained (never pickled);
                       an ensemble's (`spamkit ensemble`) also how many members it has
    model.safetensors  every weight, frozen ones included, so export needs nothing else
    metrics.json       per-epoch and final loss/accuracy

The directory is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from spamkit import __version__
from spamkit.atomic import atomic_dir
from spamkit.config import MAX_PARAMETERS, SIZES
from spamkit.data import DataConfig
from spamkit.errors import SpamkitError
from spamkit.jsonfile import peek_format_json, read_format_json
from spamkit.outputs import CHECKPOINT_FILES, PRETRAINED_FORMAT
from spamkit.training.model import Ensemble, GPTClassifier, GPTConfig

FORMAT = "spamkit-checkpoint"
# Version 2 is an ensemble's: a spamkit from before ensembles refuses one by its version rather
# than by a weight it does not know. One model's checkpoint stays version 1.
FORMAT_VERSION = 2
MAX_MEMBERS = 64
# Named in spamkit.outputs, which tells a checkpoint folder from a user's without torch.
CONFIG_FILE, WEIGHTS_FILE, METRICS_FILE, CURVES_FILE = CHECKPOINT_FILES


@dataclass
class Checkpoint:
    model: GPTClassifier | Ensemble
    labels: list[str]
    preset: str
    data: DataConfig
    training: dict = field(default_factory=dict)  # the TrainConfig, as recorded

    @property
    def config(self) -> GPTConfig:
        return self.model.config

    @property
    def members(self) -> int:
        """How many models answer together: 1, or an ensemble's size."""
        return len(self.model.members) if isinstance(self.model, Ensemble) else 1


def save_checkpoint(path: str | Path, ckpt: Checkpoint, metrics: dict) -> None:
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION if ckpt.members > 1 else 1,
        "spamkit_version": __version__,
        "preset": ckpt.preset,
        "model": asdict(ckpt.config),
        "labels": ckpt.labels,
        "tokenizer": "gpt2",
        "data": asdict(ckpt.data),
        "training": ckpt.training,
        **({"members": ckpt.members} if ckpt.members > 1 else {}),
    }
    state = {k: v.detach().float().contiguous() for k, v in ckpt.model.state_dict().items()}
    with atomic_dir(path) as tmp:
        save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT})
        (tmp / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
        # Last: a directory without its config is not a checkpoint to load_checkpoint.
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")


def _read_config(path: Path) -> dict:
    if not path.is_dir():
        raise SpamkitError(f"checkpoint not found: {path} is not a directory")
    if peek_format_json(path / CONFIG_FILE, PRETRAINED_FORMAT) is not None:
        raise SpamkitError(f"{path} is a language model from `spamkit pretrain`, not a "
                           f"classifier: fine-tune it first with `spamkit train --init {path}`")
    try:
        return read_format_json(path / CONFIG_FILE, FORMAT, FORMAT_VERSION,
                                "spamkit checkpoint config")
    except FileNotFoundError:
        if (path / "training-state").is_dir():
            raise SpamkitError(f"{path} is an unfinished training run, not a checkpoint: "
                               f"finish it with spamkit train --resume --out {path}") from None
        raise SpamkitError(f"{path} is not a spamkit checkpoint: no {CONFIG_FILE}") from None


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load a checkpoint, checking its config and every weight's shape against each other
    before the model is built: a damaged or hostile checkpoint is refused before any large
    allocation."""
    path = Path(path)
    config = _read_config(path)
    model_cfg, labels, preset, data = _parse_config(path / CONFIG_FILE, config)
    members = _members(path / CONFIG_FILE, config, model_cfg)
    weights = path / WEIGHTS_FILE
    check_shapes(expected_shapes(model_cfg, members), file_shapes(weights), source=str(weights))
    model = new_model(model_cfg, members)
    try:
        model.load_state_dict(load_file(str(weights)))
    except SafetensorError as e:
        raise SpamkitError(f"{weights} is damaged: {e}") from None
    return Checkpoint(model.eval(), labels, preset, data, config.get("training", {}))


def _parse_config(source: Path, config: dict) -> tuple[GPTConfig, list[str], str, DataConfig]:
    model = config.get("model")
    missing = [k for k in SIZES if not isinstance(model, dict) or k not in model]
    if missing:  # never a default: a wrong shape would misread every weight
        raise SpamkitError(f"{source} is malformed: its model has no {missing[0]}")
    try:
        model_cfg = GPTConfig(**model)
        labels, preset, data = config["labels"], config["preset"], DataConfig(**config["data"])
    except KeyError as e:
        raise SpamkitError(f"{source} is malformed: no {e} entry") from None
    except (TypeError, SpamkitError) as e:
        raise SpamkitError(f"{source} is malformed: {e}") from None
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise SpamkitError(f"{source} is malformed: its labels are not a list of names")
    if len(labels) != model_cfg.num_classes:
        raise SpamkitError(f"{source} lists {len(labels)} labels for "
                           f"{model_cfg.num_classes} classes")
    return model_cfg, labels, preset, data


def _members(source: Path, config: dict, model_cfg: GPTConfig) -> int:
    """How many models the checkpoint holds (1 unless it is an ensemble), within the caps."""
    members = config.get("members", 1)
    if not isinstance(members, int) or isinstance(members, bool) \
            or not 1 <= members <= MAX_MEMBERS \
            or members * model_cfg.parameters > MAX_PARAMETERS:
        raise SpamkitError(f"{source} is malformed: {members!r} members is not a count from 1 "
                           f"to {MAX_MEMBERS} whose weights spamkit builds")
    return members


def file_shapes(weights: Path) -> dict[str, tuple[int, ...]]:
    """The name and shape of every tensor in a safetensors file, from its header alone."""
    if not weights.is_file():
        raise SpamkitError(f"{weights.parent} has no {weights.name}")
    try:
        with safe_open(str(weights), "pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except SafetensorError as e:
        raise SpamkitError(f"{weights} is damaged: {e}") from None


def expected_shapes(cfg: GPTConfig, members: int = 1) -> dict[str, tuple[int, ...]]:
    """Every weight's shape for `cfg` (an ensemble's of `members` models when more than one),
    from a model on the meta device (nothing allocated)."""
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in new_model(cfg, members).state_dict().items()}


def new_model(cfg: GPTConfig, members: int = 1) -> GPTClassifier | Ensemble:
    """A freshly initialised classifier of `cfg`, or an ensemble of `members` of them."""
    return GPTClassifier(cfg) if members == 1 else Ensemble(cfg, members)


def check_shapes(expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]],
                 source: str) -> None:
    """Refuse a partial or misshapen load, naming the first offending tensors."""
    problems = [f"missing {k}" for k in expected if k not in found]
    problems += [f"unexpected {k}" for k in found if k not in expected]
    problems += [f"{k} has shape {shape}, model needs {expected[k]}"
                 for k, shape in found.items() if k in expected and shape != expected[k]]
    if problems:
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        raise SpamkitError(f"{source} does not match its config: {'; '.join(problems[:3])}{more}")
