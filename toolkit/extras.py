"""Which pip extra brings each optional module, so that a command run without it says, in one
line, what to install: the base install (`pip install spamkit`) has neither torch nor ONNX
Runtime, and each command imports what it needs only when it runs."""

from __future__ import annotations

import importlib

from spamkit.errors import SpamkitError

ORT_INSTALL = 'pip install "spamkit[cpu]" (or "spamkit[gpu]" on a machine with CUDA)'
TRAIN_INSTALL = 'pip install "spamkit[train]"'
SERVE_INSTALL = 'pip install "spamkit[serve]"'

# top-level module -> (what uses it, how to install it)
EXTRAS = {
    "onnxruntime": ("running a bundle", ORT_INSTALL),
    "torch": ("training, export and checkpoints", TRAIN_INSTALL),
    "safetensors": ("training, export and checkpoints", TRAIN_INSTALL),
    "onnx": ("export", TRAIN_INSTALL),
    "onnx_ir": ("export", TRAIN_INSTALL),  # comes with onnxscript
    "onnxscript": ("export", TRAIN_INSTALL),
    "matplotlib": ("--plots", TRAIN_INSTALL),
    "ray": ("--engine ray", 'pip install "spamkit[ray]"'),
    "fastapi": ("spamkit serve", SERVE_INSTALL),
    "starlette": ("spamkit serve", SERVE_INSTALL),
    "pydantic": ("spamkit serve", SERVE_INSTALL),
    "uvicorn": ("spamkit serve", SERVE_INSTALL),
    "httptools": ("spamkit serve", SERVE_INSTALL),
    "onnxruntime_extensions": ("text graphs", 'pip install "spamkit[text]"'),
    "huggingface_hub": ("the Hugging Face Hub", 'pip install "spamkit[hub]"'),
}


class MissingExtra(SpamkitError):
    """An optional module this command needs is not installed."""


def missing_extra(error: ModuleNotFoundError) -> MissingExtra | None:
    """The one-line error for `error` when an extra brings its module, else None."""
    module = (error.name or "").split(".")[0]
    if module not in EXTRAS:
        return None
    needs, install = EXTRAS[module]
    return MissingExtra(f"this needs {module} (for {needs}), which is not installed: {install}")


def require(module: str, what: str) -> None:
    """Refuse `what` (an option or command) before any work when `module` is not installed."""
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] != module:
            raise  # installed, but broken: its own traceback says why
        raise MissingExtra(f"{what} needs {module}, which is not installed: "
                           f"{EXTRAS[module][1]}") from None
