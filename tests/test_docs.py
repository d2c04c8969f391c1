"""The docs as a reader meets them: every link lands, guides keep figures in one place.

Guide pages say what a user does; what was measured goes to a final `## Measurements` section,
with its command, date and CPU. Results pages (performance, experiments) are figures
throughout, and say first which command reproduces them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
RESULTS = {"performance.md", "experiments.md"}
GUIDES = [page for page in sorted(DOCS.glob("*.md")) if page.name not in RESULTS]
MEASUREMENTS = "## Measurements"

FENCE = re.compile(r"^```.*?^```[^\n]*$", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)|<img [^>]*src=\"([^\"]+)\"")
HEADING = re.compile(r"^#{1,6} +(.+?) *#* *$", re.M)
# A measured time, rate or size: "8.0 ms", "148 msgs/s", "1,600-1,800 messages/s", "216 MB".
# Narrow on purpose: a percentage or a bare "2 s" is as often a rule ("99% precision",
# "+ 2 s") as a measurement, and a flaky check is one nobody keeps.
FIGURE = re.compile(r"\b\d[\d,]*(?:\.\d+)?(?:-\d[\d,]*(?:\.\d+)?)? ?(?:ms|msgs/s|messages/s|MB)\b")


def prose(text: str) -> str:
    """The page without its fenced code blocks, where a link or heading is only an example."""
    return FENCE.sub("", text)


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for a page's headings: lowercase, punctuation dropped, spaces to '-',
    a repeated one numbered."""
    seen: dict[str, int] = {}
    for heading in HEADING.findall(prose(page.read_text(encoding="utf-8"))):
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        seen[slug] = seen.get(slug, -1) + 1
        if seen[slug]:
            seen[f"{slug}-{seen[slug]}"] = 0
    return set(seen)


def links(page: Path) -> list[str]:
    """The relative links and image sources of a page's prose."""
    text = CODE_SPAN.sub("", prose(page.read_text(encoding="utf-8")))
    targets = [a or b for a, b in LINK.findall(text)]
    return [t for t in targets if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_and_anchor_resolves(page):
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading with that anchor in {dest.name}")
    assert not broken, f"{page.name}: {broken}"


@pytest.mark.parametrize("page", GUIDES, ids=lambda p: p.name)
def test_a_guide_keeps_its_measured_figures_in_a_final_measurements_section(page):
    text = page.read_text(encoding="utf-8")
    guide, found, measured = text.partition(f"\n{MEASUREMENTS}\n")
    figures = FIGURE.findall(guide)
    assert not figures, f"{page.name}: figures before {MEASUREMENTS!r}: {figures}"
    later = re.findall(r"^## .*", prose(measured), re.M) if found else []
    assert not later, f"{page.name}: sections after {MEASUREMENTS!r}: {later}"


@pytest.mark.parametrize("name", sorted(RESULTS))
def test_a_results_page_says_first_which_command_reproduces_it(name):
    lines = (DOCS / name).read_text(encoding="utf-8").split("\n\n")[1]
    commands = re.findall(r"`((?:make|spamkit|python) [^`]+)`", lines)
    assert commands, f"{name}: its first paragraph names no command that reproduces it"
