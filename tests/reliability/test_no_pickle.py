"""Nothing spamkit ships unpickles data: a pickle can run code when it is loaded."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [p for folder in ("toolkit", "export", "runtime") for p in (ROOT / folder).rglob("*.py")]


def test_the_only_torch_load_is_weights_only_and_nothing_else_unpickles():
    torch_loads = []
    for path in SOURCES:
        text = path.read_text()
        assert not re.search(r"\bpickle\.loads?\(|\bdill\.|\bjoblib\.load|allow_pickle=True",
                             text), path
        torch_loads += [(path.name, call) for call in re.findall(r"torch\.load\([^)]*\)", text)]
    assert torch_loads, "the pytorch_model.bin loader is expected to exist"
    for name, call in torch_loads:
        assert "weights_only=True" in call, f"{name}: {call}"
