"""The shape of the code: which part may import which, and functions a reader can hold.

Every module's imports are read from its source (ast), inside functions too, relative ones
resolved, and each arrow between spamkit's parts is checked against ALLOWED. The runtime is
what apps install: it imports nothing of spamkit outside itself.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The import package's folders (pyproject.toml's package-dir).
FOLDERS = {"spamkit": ROOT / "toolkit", "spamkit.export": ROOT / "export",
           "spamkit.runtime": ROOT / "runtime"}

# The parts of the package: runtime/, export/, toolkit/training/ and toolkit/jobs/ by folder;
# the rest of toolkit/ is the CLI and the helpers every part shares.
FOLDER_PARTS = {"spamkit.runtime": "runtime", "spamkit.export": "export",
                "spamkit.training": "training", "spamkit.jobs": "jobs", "spamkit.serve": "serve",
                "spamkit.web": "web"}
CLI = {"spamkit.cli", "spamkit.__main__"}

# part -> the parts it may import. runtime <- export, runtime <- training, runtime <- jobs on
# bundles; nothing but the CLI imports the CLI, and export imports no job.
ALLOWED = {
    "runtime": {"runtime"},
    "common": {"common", "runtime"},
    "training": {"training", "common", "runtime"},
    "export": {"export", "training", "common", "runtime"},
    "jobs": {"jobs", "export", "training", "common", "runtime"},
    "serve": {"serve", "common", "runtime"},
    "web": {"web", "common", "runtime"},
    "cli": {"cli", "jobs", "web", "export", "training", "serve", "common", "runtime"},
}
# Imported only inside the commands that need them, so `spamkit classify` starts fast (and
# the CLI runs without the serve extra).
HEAVY = {"torch", "onnxruntime", "fastapi", "starlette", "uvicorn"}
MAX_FUNCTION_LINES = 60


def module_files() -> dict[str, Path]:
    """Module name -> source file, for every module of the package."""
    modules = {}
    for package, folder in FOLDERS.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            names = parts[:-1] if parts[-1] == "__init__" else parts
            name = ".".join((package, *names))
            modules[name] = path
    return modules


MODULES = module_files()


def part_of(module: str) -> str:
    for package, part in FOLDER_PARTS.items():
        if module == package or module.startswith(package + "."):
            return part
    return "cli" if module in CLI else "common"


def imports(module: str, top_level_only: bool = False) -> list[tuple[int, str]]:
    """(line, module imported) for each import statement of `module`: spamkit's modules by
    their full name (`from spamkit import x` names spamkit.x when x is a module), others by
    their top-level package. With top_level_only, only what runs on import (not inside
    functions, not under `if TYPE_CHECKING:`)."""
    path = MODULES[module]
    package = module if path.stem == "__init__" else module.rpartition(".")[0]
    found = []
    for node in _statements(ast.parse(path.read_text(), str(path)), top_level_only):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((node.lineno, sub if sub in MODULES else base))
    return [(line, name if name.startswith("spamkit") else name.split(".")[0])
            for line, name in found]


def _statements(tree: ast.AST, top_level_only: bool):
    if not top_level_only:
        yield from ast.walk(tree)
        return
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        yield node
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            pending += node.orelse
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            pending += [c for c in ast.iter_child_nodes(node) if isinstance(c, ast.stmt)]
            pending += [s for h in getattr(node, "handlers", []) for s in h.body]


def loaded_on_import(module: str) -> set[str]:
    """Every module that importing `module` runs, spamkit's followed through their top-level
    imports and parent packages; third-party ones by their top-level package."""
    seen, pending = set(), [module]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in MODULES:
            parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
            pending += parents + [n for _, n in imports(name, top_level_only=True)]
    return seen


def wrong_arrows() -> list[str]:
    wrong = []
    for module in MODULES:
        for line, target in imports(module):
            if not target.startswith("spamkit") or target not in MODULES:
                continue
            if part_of(target) not in ALLOWED[part_of(module)]:
                wrong.append(f"{module}:{line}: {module} ({part_of(module)}) imports {target} "
                             f"({part_of(target)})")
    return wrong


def test_every_import_points_the_allowed_way():
    assert wrong_arrows() == []


def test_the_runtime_imports_nothing_of_spamkit_outside_itself():
    outside = [f"{m} imports {t}" for m in MODULES if part_of(m) == "runtime"
               for _, t in imports(m) if t.startswith("spamkit") and part_of(t) != "runtime"]
    assert outside == []
    assert MODULES["spamkit.runtime.classifier"]  # the runtime was found at all


def test_the_layout_check_sees_an_import_inside_a_function(tmp_path, monkeypatch):
    """An arrow the wrong way, hidden in a function of the runtime, is reported."""
    bad = tmp_path / "sneaky.py"
    bad.write_text("def f():\n    from ..jobs.bench import run_bench\n"
                   "    import spamkit.training.train\n")
    monkeypatch.setitem(MODULES, "spamkit.runtime.sneaky", bad)
    assert [w.split(": ", 1)[1] for w in wrong_arrows()] == [
        "spamkit.runtime.sneaky (runtime) imports spamkit.jobs.bench (jobs)",
        "spamkit.runtime.sneaky (runtime) imports spamkit.training.train (training)",
    ]


def test_the_cli_loads_neither_torch_nor_onnxruntime_on_import():
    assert loaded_on_import("spamkit.cli") & HEAVY == set()
    # The check follows imports: the trainer does load torch.
    assert "torch" in loaded_on_import("spamkit.training.train")


def test_the_cli_and_the_errors_import_where_neither_torch_nor_onnxruntime_can():
    """What the static check above promises, in a real interpreter: any import of either
    raises there."""
    code = ("import sys\n"
            "sys.modules['torch'] = sys.modules['onnxruntime'] = None\n"
            "import spamkit.cli, spamkit.errors, spamkit.runtime.bundle, spamkit.export.manifest\n"
            "from spamkit.runtime import BundleError\n"
            "assert issubclass(BundleError, spamkit.errors.SpamkitError)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr


def test_no_function_is_longer_than_a_reader_can_hold():
    long = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {lines}")
    assert long == [], f"functions over {MAX_FUNCTION_LINES} lines"


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_every_part_has_modules(part):
    """A part without modules means the table went stale (a module renamed or moved)."""
    assert any(part_of(m) == part for m in MODULES)
