"""How the commands of spamkit.cli declare their options with typer: choices and checks that
fail as usage errors before a command runs, a settings dataclass as one option per field, and
the options several commands share."""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from dataclasses import Field, fields
from typing import Any, get_type_hints

import typer

from spamkit.runtime.bundle import GRAPHS_SMALLEST_FIRST, RUNTIME_DEVICES, parse_digest

DATA_HELP = (
    "Data file: the SMSSpamCollection file, the UCI zip, or your own CSV/TSV. "
    "Default: $SPAMKIT_DATA, else the file `spamkit data --data` recorded, else the cached "
    "download, else download from UCI."
)

# eval and calibrate: the split of the model's own data, or of any file given.
AS_TRAINED_HELP = (
    "Data file (default: the model's training data, found as --data is by default and "
    "refused unless its sha256 is the one the model recorded)."
)


def one_of(values: tuple[str, ...] | dict) -> dict:
    """typer.Option arguments that accept only `values`: anything else is a usage error (exit 2)
    that names them, before the command runs."""
    def check(value: str | None) -> str | None:
        if value is not None and value not in values:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(values)}")
        return value

    def complete(incomplete: str) -> list[str]:  # shell completion offers the choices
        return [v for v in values if v.startswith(incomplete)]

    return {"callback": check, "metavar": "[" + "|".join(values) + "]",
            "autocompletion": complete}


def checked_by(problem: Callable[[str], str | None]) -> Callable:
    """A typer option callback: a value that `problem` finds fault with (it says what) is a
    usage error (exit 2), before the command runs."""
    def check(value: str | None) -> str | None:
        why = None if value is None else problem(value)
        if why:
            raise typer.BadParameter(why)
        return value

    return check


def config_options(cls: type, param: str) -> Callable:
    """Decorator: the command's parameter `param` becomes one option per field of the dataclass
    `cls`, with the field's default and the help, choices, check, flag and bounds its metadata
    gives (config.option); the command receives them as one `cls`."""
    hints = get_type_hints(cls)

    def option(f: Field) -> inspect.Parameter:
        meta = dict(f.metadata)
        names = [meta.pop("flag")] if "flag" in meta else []  # else typer's: --field-name
        if "choices" in meta:
            meta.update(one_of(meta.pop("choices")))
        if "check" in meta:
            meta["callback"] = checked_by(meta.pop("check"))
        return inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=hints[f.name],
                                 default=typer.Option(f.default, *names, **meta))

    def decorate(command: Callable) -> Callable:
        def wrapper(**kwargs):
            config = cls(**{f.name: kwargs.pop(f.name) for f in fields(cls)})
            return command(**kwargs, **{param: config})

        signature = inspect.signature(command, eval_str=True)
        # Keyword-only, all of them: typer passes options by name, and the fields go in between.
        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
                  for p in signature.parameters.values()]
        at = [p.name for p in params].index(param)
        params[at : at + 1] = [option(f) for f in fields(cls)]
        functools.update_wrapper(wrapper, command, assigned=("__module__", "__name__",
                                                             "__qualname__", "__doc__"))
        wrapper.__signature__ = signature.replace(parameters=params)
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper

    return decorate


def given_options(ctx: typer.Context, exclude: set[str]) -> dict:
    """The options the user gave (on the command line or through the environment), by name,
    with their values."""
    def given(name: str) -> bool:
        source = ctx.get_parameter_source(name)
        return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")

    return {n: v for n, v in sorted(ctx.params.items()) if n not in exclude and given(n)}


def _check_digest(value: str | None) -> str | None:
    try:
        return None if value is None else parse_digest(value)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


def data_option(help: str = DATA_HELP) -> Any:
    return typer.Option(None, "--data", help=help)


def threads_option(help: str = "ONNX Runtime threads.") -> Any:
    # At least one, at most the CPUs there are.
    return typer.Option(None, min=1, max=os.cpu_count(), help=help)


def device_option() -> Any:
    return typer.Option("cpu", **one_of(RUNTIME_DEVICES), help="cpu, cuda or auto.")


def precision_option() -> Any:
    return typer.Option(None, **one_of(GRAPHS_SMALLEST_FIRST), help="Graph to run: int8, fp16 "
                        "or fp32 (default: the smallest meant for the device).")


def digest_option() -> Any:
    return typer.Option(None, "--digest", callback=_check_digest, help="Refuse any bundle but "
                        "the one with this digest, as `spamkit export` or `spamkit calibrate` "
                        "printed it.")


def json_option(what: str) -> Any:
    return typer.Option(False, "--json", help=f"Print {what} as JSON.")


def quiet_option(result: str = "nothing on success") -> Any:
    return typer.Option(False, "--quiet", help="No progress bars, stage or info lines: print "
                        f"{result}; warnings and errors still show.")
