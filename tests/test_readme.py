"""The README stays a five-minute read: what spamkit is, two commands, install, a quickstart,
where it runs, the guarantees, the docs and the layout. Measurements live in docs/."""

from __future__ import annotations

import re

from conftest import ROOT

README = (ROOT / "README.md").read_text()
MAX_LINES = 150
# A measured figure: a time, a rate, a size or a ratio of a benchmark.
FIGURE = re.compile(r"\d+(\.\d+)? ?(ms|msgs/s|MB|GB|s/step|x faster)\b|\d+(\.\d+)?x\b")


def prose_lines() -> list[str]:
    """The README's lines outside code blocks."""
    lines, in_code = [], False
    for line in README.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code:
            lines.append(line)
    return lines


def test_the_readme_is_at_most_150_lines():
    assert len(README.splitlines()) <= MAX_LINES


def test_measured_figures_fill_at_most_one_line_of_the_readme():
    with_figures = [line for line in prose_lines() if FIGURE.search(line)]
    assert len(with_figures) <= 1, with_figures


def test_the_readme_opens_with_what_spamkit_is_and_keeps_its_sections():
    first = README.split("\n\n", 2)[1]
    assert first.startswith("spamkit fine-tunes GPT-2 text classifiers")
    headings = re.findall(r"^## (.+)$", README, flags=re.MULTILINE)
    assert headings[:4] == ["Two commands", "Install", "Quickstart", "Where it runs"]
    assert {"Guarantees", "Documentation", "Layout"} <= set(headings)
