"""Nothing spamkit ships unpickles data: a pickle can run code when it is loaded.

The source is parsed (ast), and every name is resolved through the module's imports, so
`from torch import load`, `import torch as t`, `loader = torch.load` and nested calls are seen
for what they are."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [p for folder in ("toolkit", "export", "runtime") for p in (ROOT / folder).rglob("*.py")]
# Modules whose only use is (un)pickling: importing them at all is refused.
PICKLERS = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve"}
# Functions that unpickle unless told not to: name -> the keyword and value that make them safe
# (None: never safe).
UNSAFE_UNLESS = {"torch.load": ("weights_only", True), "torch.serialization.load":
                 ("weights_only", True), "numpy.load": ("allow_pickle", False),
                 "pandas.read_pickle": None}
# numpy.load refuses pickles by default: without the keyword it is safe.
SAFE_BY_DEFAULT = {"numpy.load"}


def imported_names(tree: ast.Module) -> dict[str, str]:
    """Local name -> the dotted name it stands for, from every import in the module."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                local = a.asname or a.name.split(".")[0]  # `import a.b` binds `a`
                names[local] = a.name if a.asname else local
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                names[a.asname or a.name] = f"{node.module}.{a.name}"
    return names


def dotted(node: ast.AST, names: dict[str, str]) -> str | None:
    """`t.load` -> "torch.load" when `import torch as t`; None for anything but names."""
    if isinstance(node, ast.Name):
        return names.get(node.id, node.id)
    if isinstance(node, ast.Attribute):
        base = dotted(node.value, names)
        return f"{base}.{node.attr}" if base else None
    return None


def is_safe_call(call: ast.Call, name: str) -> bool:
    rule = UNSAFE_UNLESS[name]
    if rule is None:
        return False
    keyword, safe_value = rule
    given = [k.value for k in call.keywords if k.arg == keyword]
    if not given:
        return name in SAFE_BY_DEFAULT and not any(k.arg is None for k in call.keywords)
    return isinstance(given[0], ast.Constant) and given[0].value is safe_value


def unpickling(source: str) -> list[str]:
    """Each place in `source` that imports a pickler or can unpickle, as "line: what"."""
    tree = ast.parse(source)
    names = imported_names(tree)
    found = []
    checked = set()  # the `func` of calls judged below
    for node in ast.walk(tree):
        modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                   else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        found += [f"{node.lineno}: imports {m}" for m in modules if m.split(".")[0] in PICKLERS]
        if isinstance(node, ast.Call) and dotted(node.func, names) in UNSAFE_UNLESS:
            checked.add(id(node.func))
            if not is_safe_call(node, dotted(node.func, names)):
                found.append(f"{node.lineno}: {ast.unparse(node)}")
    for node in ast.walk(tree):  # a reference that is not a checked call: `f = torch.load`
        if (isinstance(node, (ast.Name, ast.Attribute)) and id(node) not in checked
                and dotted(node, names) in UNSAFE_UNLESS
                and not isinstance(getattr(node, "ctx", None), ast.Store)):
            found.append(f"{node.lineno}: {ast.unparse(node)} used other than in a safe call")
    return found


def test_nothing_spamkit_ships_can_unpickle():
    found = {f"{p.relative_to(ROOT)}:{where}" for p in SOURCES
             for where in unpickling(p.read_text(encoding="utf-8"))}
    assert found == set()
    loads = [p for p in SOURCES if "torch.load" in p.read_text(encoding="utf-8")]
    assert loads, "the pytorch_model.bin loader is expected to exist (and to pass the check)"


@pytest.mark.parametrize("source", [
    "import torch\ntorch.load(path, map_location=pick(a, b), weights_only=False)",
    "import torch\ntorch.load(open(path, 'rb'), map_location=where(x))",  # nested calls
    "from torch import load\nload(path)",
    "from torch import load as read\nread(path, weights_only=True or x)",
    "import torch as t\nt.load(path)",
    "import torch\nloader = torch.load\nloader(path, weights_only=True)",
    "import torch\nfrom functools import partial\npartial(torch.load, weights_only=False)",
    "from torch import serialization\nserialization.load(path)",
    "import torch\ntorch.load(path, **options)",
    "import pickle\npickle.loads(data)",
    "from pickle import loads as parse\nparse(data)",
    "import _pickle",
    "import joblib\njoblib.load(path)",
    "import numpy\nnumpy.load(path, allow_pickle=True)",
    "import numpy as np\nnp.load(path, allow_pickle=flag)",
    "from numpy import load\nload(path, **kwargs)",
    "import pandas as pd\npd.read_pickle(path)",
])
def test_the_check_sees_unpickling_however_it_is_spelled(source):
    assert unpickling(source)


@pytest.mark.parametrize("source", [
    "import torch\ntorch.load(path, map_location=pick(a, b), weights_only=True)",
    "import numpy as np\nnp.load(path)\nnp.load(path, allow_pickle=False)",
    "import json\njson.loads(text)",
    "from safetensors.torch import load_file\nload_file(path)",
])
def test_the_check_passes_code_that_cannot_unpickle(source):
    assert unpickling(source) == []
