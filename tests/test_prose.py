"""No measured figures in the code's prose or in `--help`: they live in docs/, each with the
command, date and host that made it, where a reader of results looks for them.

Scanned: every comment and string (docstrings, help texts, messages) of the Python sources of
toolkit/, export/ and runtime/, and the `--help` of spamkit and of each of its commands,
rendered in this process as the console script prints it.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
import sys
import tokenize
from pathlib import Path

import pytest
import typer

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("toolkit", "export", "runtime")

# What a measurement reads like: a time, a rate or a size with its unit, a ratio ("1.4x"), a
# percentage written out, or a claim of something measured or timed ("measured no faster").
FIGURE = re.compile(
    r"(?<![\w.:{])\d+(?:\.\d+)?(?:-\d+(?:\.\d+)?)? ?"
    r"(?:ms|µs|s|sec|seconds?|min|minutes?|msgs/s|tokens/s|s/step|s/epoch|[KMG]i?B|kB)(?![\w/])"
    r"|(?<![\w.:{])\d+(?:\.\d+)?(?:-\d+(?:\.\d+)?)?x(?!\w)"
    r"|(?<![\w.:{])\d+(?:\.\d+)? ?%"
    r"|\bmeasured (?:no |about |only |~|\d|faster|slower|better|worse)"
    r"|\btook (?:about |~)?\d"
)
# The one kind of figure that is not a measurement here: spamkit.data refuses a download or
# zip member far larger than the published file it must be, and its error message says that
# file's size (as fixed a fact of the data set as its sha256).
NOT_MEASURED = re.compile(r"the SMS Spam Collection(?:'s archive)? \(0\.[25] MB\)")


def figures(text: str) -> list[str]:
    """The figures in `text` (whitespace collapsed) that NOT_MEASURED does not cover, each with
    some context."""
    text = " ".join(text.split())
    allowed = [m.span() for m in NOT_MEASURED.finditer(text)]
    return [text[max(0, m.start() - 50) : m.end() + 20] for m in FIGURE.finditer(text)
            if not any(a <= m.start() and m.end() <= b for a, b in allowed)]


def strings(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, text) of every string: docstrings, help texts, messages. Adjacent literals are
    one (ast joins them); an f-string's fields read {}."""
    fields = {id(n) for j in ast.walk(tree) if isinstance(j, ast.JoinedStr)
              for v in j.values for n in ast.walk(v)}
    found = []
    for node in ast.walk(tree):
        if id(node) in fields:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append((node.lineno, node.value))
        elif isinstance(node, ast.JoinedStr):
            found.append((node.lineno, "".join(v.value if isinstance(v, ast.Constant) else "{}"
                                               for v in node.values)))
    return found


def comments(path: Path) -> list[tuple[int, str]]:
    """(line, text) of each run of comments on consecutive lines, read as one."""
    runs: list[tuple[int, str]] = []
    last = 0
    with tokenize.open(path) as f:
        for tok in tokenize.generate_tokens(f.readline):
            if tok.type == tokenize.COMMENT:
                line, text = tok.start[0], tok.string.lstrip("#")
                if runs and line == last + 1:
                    runs[-1] = (runs[-1][0], f"{runs[-1][1]} {text}")
                else:
                    runs.append((line, text))
                last = line
    return runs


def help_pages(monkeypatch) -> dict[str, str]:
    """`spamkit --help` and `spamkit COMMAND --help` for every command, as the console script
    prints them, with rich's panel borders taken out."""
    from spamkit.__main__ import main
    from spamkit.cli import app

    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("NO_COLOR", "1")
    pages = {}
    for args in [[], *([name] for name in sorted(typer.main.get_command(app).commands))]:
        out = io.StringIO()
        monkeypatch.setattr(sys, "argv", ["spamkit", *args, "--help"])
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as stop:
            main()
        assert stop.value.code in (0, None), out.getvalue()
        pages[" ".join(["spamkit", *args])] = re.sub(r"[│╭╮╰╯─]", " ", out.getvalue())
    return pages


def test_the_code_states_no_measured_figures():
    found = []
    for path in sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py")):
        texts = strings(ast.parse(path.read_text(encoding="utf-8"))) + comments(path)
        found += [f"{path.relative_to(ROOT)}:{line}: ...{hit}..."
                  for line, text in sorted(texts) for hit in figures(text)]

    assert not found, ("measured figures belong in docs/, with the command, date and ISA that "
                       "made them:\n" + "\n".join(found))


def test_no_help_states_a_measured_figure(monkeypatch):
    pages = help_pages(monkeypatch)

    assert {"spamkit", "spamkit train", "spamkit serve"} <= set(pages)
    assert all("Usage" in text for text in pages.values())
    found = [f"{page} --help: ...{hit}..." for page, text in pages.items() for hit in figures(text)]
    assert not found, "--help gives no measured figures:\n" + "\n".join(found)


@pytest.mark.parametrize("text", [
    "on a CPU it measured no faster, after tens of seconds of compiling",
    "p50 6.1 ms and 198 msgs/s on this host",
    "moved a trained 124M\n    model's logits 1.4x as much",
    "only cost 3% more squared error",
    "peak RSS 250 MB",
    "About 1.5 minutes for the 124M shape",
    "an epoch that takes 1.5 s alone took 80 s",
])
def test_a_measured_figure_is_found(text):
    assert figures(text)


@pytest.mark.parametrize("text", [
    "accuracy {:.2%} in {:.1f} s",  # formats, filled in as the program runs
    "the 124M shape, GPT-2 XL's 1.6e9 parameters, a 70/10/20 split, 0x1f",
    "unpacks to over {} MiB, which the SMS Spam Collection (0.5 MB) never does; refused",
    "figures measured at export",
])
def test_what_is_not_a_measurement_passes(text):
    assert not figures(text)
