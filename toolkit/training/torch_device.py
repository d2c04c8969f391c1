"""Where training runs: the torch device that `--device` names, and the autocast precision that
device can do."""

from __future__ import annotations

import torch

from spamkit.errors import SpamkitError


def resolve_device(name: str) -> str:
    """"cpu" or "cuda" for --device cpu, cuda or auto. cuda without a usable GPU is an error:
    a run the user meant for the GPU never quietly takes hours on the CPU instead."""
    if name == "cpu":
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    if name == "auto":
        return "cpu"
    if torch.version.cuda is None:
        why = (f"this PyTorch ({torch.__version__}) is a CPU-only build; install a CUDA build "
               "(`make setup` does on a machine with nvidia-smi)")
    else:
        why = (f"PyTorch (built for CUDA {torch.version.cuda}) sees no GPU; check nvidia-smi "
               "and CUDA_VISIBLE_DEVICES")
    raise SpamkitError(f"--device cuda: {why}; or train with --device cpu or auto")


def resolve_precision(precision: str, device: str) -> str:
    """The autocast precision to train in. `auto` is bf16 on a GPU and fp32 on a CPU, where
    bf16 is slower or trains worse (docs/training.md); bf16 becomes fp16 (with the
    gradient scaler fp16 needs) on GPUs without native bf16."""
    if precision == "auto":
        precision = "bf16" if device == "cuda" else "fp32"
    # Emulated bf16 (pre-Ampere GPUs) runs, but slower than fp32: not worth training in.
    if device == "cuda" and precision == "bf16" and not torch.cuda.is_bf16_supported(
        including_emulation=False
    ):
        print(f"{torch.cuda.get_device_name()} has no native bf16: training in fp16 with a "
              "gradient scaler")
        return "fp16"
    return precision


def resolve_compile(compile: bool | None, device: str) -> bool:
    """torch.compile by default on a GPU only: on a CPU compiled steps are no faster and
    the compiling is paid on every run (docs/training.md)."""
    return device == "cuda" if compile is None else compile


def describe(device: str) -> str:
    return f"cuda ({torch.cuda.get_device_name()})" if device == "cuda" else device
