"""What `spamkit train --resume` needs to continue after the last complete epoch.

After every epoch, training writes `OUT/training-state/` (atomically): the model, the best
epoch's weights, AdamW's moments, the random generators and the progress so far. A finished run
replaces OUT with the checkpoint, state and all; an interrupted one leaves OUT holding only the
state, which `load_checkpoint` does not mistake for a checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from spamkit.atomic import atomic_dir
from spamkit.config import GPTConfig, TrainConfig
from spamkit.data import DataConfig
from spamkit.errors import SpamkitError
from spamkit.jsonfile import read_format_json
from spamkit.outputs import STATE_FILES, TRAINING_STATE

# Named in spamkit.outputs, which tells a training state from a user's folder without torch.
STATE_DIR, (STATE_JSON, TENSORS_FILE) = TRAINING_STATE, STATE_FILES
FORMAT = "spamkit-training-state"
# Options of `spamkit train` that say where and how the run runs, not what it computes: free to
# differ on --resume.
NOT_SETTINGS = ("threads", "quiet")


@dataclass
class Progress:
    epoch: int = 0  # last complete epoch
    step: int = 0
    seen: int = 0
    history: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=lambda: {"val_accuracy": -1.0, "val_loss": float("inf"),
                                                "epoch": 0})
    best_state: dict[str, torch.Tensor] | None = None


def save_state(out_dir: str | Path, cfg: TrainConfig, data: DataConfig, model_cfg: GPTConfig,
               labels: list[str], model, optimizer, scaler, progress: Progress,
               extra: dict | None = None) -> None:
    """Write the resume point; `extra`: more of what the run needs to resume (JSON), saved
    beside the rest (`spamkit pretrain`'s settings)."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    if progress.best_state is not None:
        tensors |= {f"best.{k}": v for k, v in progress.best_state.items()}
    opt = optimizer.state_dict()
    for index, slots in opt["state"].items():
        tensors |= {f"optim.{index}.{k}": torch.as_tensor(v) for k, v in slots.items()}
    tensors["rng.torch"] = torch.get_rng_state()
    if _on_cuda(model):  # dropout on the GPU draws from CUDA's generator
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    meta = {
        "format": FORMAT, "train": asdict(cfg), "data": asdict(data), "model": asdict(model_cfg),
        "labels": labels,  # in the model's class order, which a classifier given to --init sets
        "epoch": progress.epoch, "step": progress.step, "seen": progress.seen,
        "history": progress.history, "best": progress.best,
        "optimizer_groups": opt["param_groups"], "scaler": scaler.state_dict(), **(extra or {}),
    }
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    with atomic_dir(Path(out_dir) / STATE_DIR) as tmp:
        save_file(tensors, str(tmp / TENSORS_FILE))
        (tmp / STATE_JSON).write_text(json.dumps(meta, indent=1))


@dataclass
class SavedState:
    train: TrainConfig
    data: DataConfig
    model: GPTConfig
    meta: dict
    tensors: dict[str, torch.Tensor]

    @property
    def labels(self) -> list[str] | None:
        """The class names in the model's order; None in a state written before they were
        saved (the data's order, then)."""
        return self.meta.get("labels")

    def restore(self, model, optimizer, scaler) -> Progress:
        def part(prefix: str) -> dict[str, torch.Tensor]:
            return {k[len(prefix):]: v for k, v in self.tensors.items() if k.startswith(prefix)}

        model.load_state_dict(part("model."))
        slots: dict[int, dict] = {}
        for name, value in part("optim.").items():
            index, key = name.split(".", 1)
            slots.setdefault(int(index), {})[key] = value
        # Tensors load on the CPU; these copy them to the device this run trains on.
        optimizer.load_state_dict({"state": slots, "param_groups": self.meta["optimizer_groups"]})
        # A run saved without a scaler (bf16, fp32) that resumes on a GPU without bf16 (fp16)
        # starts its scaler afresh.
        if self.meta["scaler"]:
            scaler.load_state_dict(self.meta["scaler"])
        torch.set_rng_state(self.tensors["rng.torch"])
        if "rng.cuda" in self.tensors and _on_cuda(model):
            torch.cuda.set_rng_state(self.tensors["rng.cuda"])
        best = part("best.")
        return Progress(self.meta["epoch"], self.meta["step"], self.meta["seen"],
                        self.meta["history"], self.meta["best"], best or None)


def _on_cuda(model) -> bool:
    return next(model.parameters()).is_cuda


def refuse_other_settings(out_dir: str | Path, given: dict[str, object]) -> None:
    """`--resume` continues with the settings the run started with: refuse, in one line, any
    option given now (`given`: option name -> value) that says otherwise, rather than ignore it."""
    meta = _read_meta(Path(out_dir) / STATE_DIR)
    saved = {**meta["train"], **meta["data"]}
    saved["data"] = saved.pop("path")
    differ = [name for name, value in given.items()
              if name not in NOT_SETTINGS and not _same_setting(name, value, saved.get(name))]
    if differ:
        said = ", ".join(f"--{n.replace('_', '-')} {given[n]} (it has {saved.get(n)})"
                         for n in differ)
        raise SpamkitError(f"--resume continues {out_dir} with the settings it started with, "
                           f"and {said} differs: leave it out, or start afresh with --force")


def _same_setting(name: str, given: object, saved: object) -> bool:
    if name in ("data", "init") and given is not None and saved is not None:
        return Path(str(given)).resolve() == Path(str(saved)).resolve()  # any spelling
    return given == saved


def _read_meta(state_dir: Path) -> dict:
    try:
        return read_format_json(state_dir / STATE_JSON, FORMAT, 1, "spamkit training state")
    except FileNotFoundError:
        raise SpamkitError(f"nothing to resume in {state_dir.parent}: no {STATE_DIR}/ from an "
                           "interrupted `spamkit train --out` there") from None


def load_state(out_dir: str | Path) -> SavedState:
    state_dir = Path(out_dir) / STATE_DIR
    meta = _read_meta(state_dir)
    try:
        tensors = load_file(str(state_dir / TENSORS_FILE))
    except FileNotFoundError:
        raise SpamkitError(f"{state_dir} is damaged: it has no {TENSORS_FILE}") from None
    return SavedState(TrainConfig(**meta["train"]), DataConfig(**meta["data"]),
                      GPTConfig(**meta["model"]), meta, tensors)
