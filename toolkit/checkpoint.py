"""A trained model on disk: a directory with safetensors weights and JSON metadata.

    config.json        model shape, labels, token choice, how it was trained (never pickled)
    model.safetensors  every weight, frozen ones included, so export needs nothing else
    metrics.json       per-epoch and final loss/accuracy

The directory is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from spamkit import __version__
from spamkit.atomic import atomic_dir
from spamkit.data import DataConfig
from spamkit.errors import SpamkitError
from spamkit.model import GPTClassifier, GPTConfig

FORMAT = "spamkit-checkpoint"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
METRICS_FILE = "metrics.json"


@dataclass
class Checkpoint:
    model: GPTClassifier
    labels: list[str]
    preset: str
    data: DataConfig
    training: dict = field(default_factory=dict)  # the TrainConfig, as recorded

    @property
    def config(self) -> GPTConfig:
        return self.model.config


def save_checkpoint(path: str | Path, ckpt: Checkpoint, metrics: dict) -> None:
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "spamkit_version": __version__,
        "preset": ckpt.preset,
        "model": asdict(ckpt.config),
        "labels": ckpt.labels,
        "tokenizer": "gpt2",
        "data": asdict(ckpt.data),
        "training": ckpt.training,
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
    try:
        config = json.loads((path / CONFIG_FILE).read_text())
    except FileNotFoundError:
        if (path / "training-state").is_dir():
            raise SpamkitError(f"{path} is an unfinished training run, not a checkpoint: "
                               f"finish it with spamkit train --resume --out {path}") from None
        raise SpamkitError(f"{path} is not a spamkit checkpoint: no {CONFIG_FILE}") from None
    except json.JSONDecodeError as e:
        raise SpamkitError(f"{path / CONFIG_FILE} is not valid JSON: {e}") from None
    if config.get("format") != FORMAT:
        raise SpamkitError(f"{path / CONFIG_FILE} is not a spamkit checkpoint config")
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise SpamkitError(
            f"{path} has checkpoint format {config['format_version']}; this spamkit reads up to "
            f"{FORMAT_VERSION}: upgrade spamkit"
        )
    return config


def load_checkpoint(path: str | Path) -> Checkpoint:
    path = Path(path)
    config = _read_config(path)
    try:
        model_cfg = GPTConfig(**config["model"])
        labels, preset, data = config["labels"], config["preset"], DataConfig(**config["data"])
    except KeyError as e:
        raise SpamkitError(f"{path / CONFIG_FILE} is malformed: no {e} entry") from None
    except (TypeError, SpamkitError) as e:
        raise SpamkitError(f"{path / CONFIG_FILE} is malformed: {e}") from None
    if len(labels) != model_cfg.num_classes:
        raise SpamkitError(f"{path / CONFIG_FILE} lists {len(labels)} labels for "
                           f"{model_cfg.num_classes} classes")
    model = GPTClassifier(model_cfg)
    try:
        state = load_file(str(path / WEIGHTS_FILE))
    except FileNotFoundError:
        raise SpamkitError(f"{path} has no {WEIGHTS_FILE}") from None
    except SafetensorError as e:
        raise SpamkitError(f"{path / WEIGHTS_FILE} is damaged: {e}") from None
    check_state_dict(model, state, source=str(path / WEIGHTS_FILE))
    model.load_state_dict(state)
    return Checkpoint(model.eval(), labels, preset, data, config.get("training", {}))


def check_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Refuse a partial or misshapen load, naming the first offending tensors."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    problems = [f"missing {k}" for k in expected if k not in state]
    problems += [f"unexpected {k}" for k in state if k not in expected]
    problems += [
        f"{k} has shape {tuple(v.shape)}, model needs {expected[k]}"
        for k, v in state.items()
        if k in expected and tuple(v.shape) != expected[k]
    ]
    if problems:
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        raise SpamkitError(f"{source} does not match its config: {'; '.join(problems[:3])}{more}")
