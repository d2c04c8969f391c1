"""Runs the typer app of spamkit.cli as a Unix command: help that shows what is written, stdin
read as it arrives, and every error one `spamkit: error:` line on stderr with an exit code."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import NoReturn

import typer

from spamkit.errors import Interrupted, SpamkitError
from spamkit.extras import missing_extra


def run(app: typer.Typer) -> NoReturn:
    """Run `app` on sys.argv as `spamkit` and exit: with the command's exit code, else 2 for a
    bad option or argument, 1 for any other error, 130 when interrupted."""
    command = typer.main.get_command(app)
    _label_options(command)
    if app.rich_markup_mode == "rich":  # typer's default, where rich is installed
        _literal_help(command)
    try:
        code = command(standalone_mode=False, prog_name="spamkit")
    except typer.TyperException as e:  # typer >= 0.27.2: every error of the click it carries
        # A bad option or argument: one line, as for every other error, and click's exit 2.
        print(f"spamkit: error: {' '.join(e.format_message().split())}", file=sys.stderr)
        sys.exit(e.exit_code)
    except typer.Abort:
        print("spamkit: error: aborted", file=sys.stderr)
        sys.exit(1)
    except ImportError as e:  # an extra this command needs is not installed
        missing = missing_extra(e)
        if missing is None:
            raise
        print(f"spamkit: error: {missing}", file=sys.stderr)
        sys.exit(1)
    except SpamkitError as e:
        # Every process of a distributed run is interrupted at once; rank 0 speaks for all.
        if not (isinstance(e, Interrupted) and os.environ.get("RANK", "0") != "0"):
            print(f"spamkit: error: {e}", file=sys.stderr)
        sys.exit(getattr(e, "exit_code", 1))
    except OSError as e:
        print(f"spamkit: error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("spamkit: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)  # typer.Exit's code, or 0


def help_for_no_command(ctx: typer.Context) -> NoReturn:
    """The app's help and a usage error's exit code (2) for a command line that names no
    command: what click's no_args_is_help does, whose error typer does not export."""
    text = ctx.get_help()  # rich prints the help itself and returns nothing
    if text:
        print(text, file=sys.stderr)
    raise typer.Exit(2)


def _label_options(command) -> None:
    """Help shows a flag bare and a string option as TEXT: typer's own labels read
    `--json <bool>` and `--data <str>`."""
    for sub in getattr(command, "commands", {}).values():
        _label_options(sub)
    help_option = command.get_help_option(typer.Context(command))  # cached by the command
    for param in [*command.params, *([help_option] if help_option else [])]:
        if getattr(param, "is_flag", False):
            param.metavar = ""
        elif getattr(getattr(param, "type_descriptor", None), "annotation", None) is str:
            if param.param_type_name == "argument":  # its type column reads `<str>` too
                param.display_type_rich = lambda ctx: "TEXT"
            elif param.metavar is None:
                param.metavar = "TEXT"


def _literal_help(command) -> None:
    """Help shows square brackets as written (`spamkit[text]`, `hf://org/name[@revision]`):
    typer's rich help would read them as markup and drop them."""
    from rich.markup import escape

    for sub in getattr(command, "commands", {}).values():
        _literal_help(sub)
    if command.help:
        command.help = escape(command.help)
    for param in command.params:
        if getattr(param, "help", None):
            param.help = escape(param.help)


def stdin_lines() -> Iterator[list[str]]:
    """Stdin's lines as they arrive, one list per read: a read returns what is waiting, so
    lines already there are classified together and none waits for lines still to come.
    Lines end as in `spamkit score` (see strip_line_end); bytes that are not UTF-8 become
    U+FFFD rather than stopping the whole stream."""
    from spamkit.records import strip_line_end

    fd, pending = sys.stdin.fileno(), bytearray()
    while chunk := os.read(fd, 1 << 16):
        pending += chunk
        end = pending.rfind(b"\n") + 1  # a whole number of lines, and of UTF-8 characters
        if end:
            text = pending[:end].decode("utf-8", errors="replace")
            del pending[:end]
            yield [strip_line_end(line + "\n") for line in text.split("\n")[:-1]]
    if pending:
        yield [strip_line_end(pending.decode("utf-8", errors="replace"))]
