"""`pip install "spamkit[cpu]"`, as an app that only classifies installs it: pip itself installs
the wheel built from this tree into a fresh venv (from PyPI, or pip's cache). It brings exactly
onnxruntime, numpy, tiktoken and what they require, with spamkit's own files within 5 MB; the
runtime classifies there, and the `spamkit` command, whose libraries are the cli extra, says in
one line what to install. The sizes are printed: `pytest -s tests/test_slim_install.py`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from conftest import assert_clean_failure
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from test_extras import build_wheel

SLIM = ("onnxruntime", "numpy", "tiktoken")  # what classifying needs (spamkit.runtime's imports)
MAX_SPAMKIT_BYTES = 5 * 10**6  # the target of issue 32: at most 5 MB of spamkit's own


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh venv (no pip in it) where pip installed the wheel with its cpu extra alone."""
    root = tmp_path_factory.mktemp("slim")
    wheel = build_wheel(root)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    result = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                             "install", "-q", "--retries", "1", "--timeout", "30",
                             f"{wheel}[cpu]"], capture_output=True, text=True, timeout=600)
    if result.returncode != 0 and not _reachable("pypi.org"):
        pytest.skip("pypi.org cannot be reached and pip's cache cannot install spamkit[cpu]: "
                    "the install is not measured")
    assert result.returncode == 0, result.stderr
    return venv


def _reachable(host: str) -> bool:
    try:
        socket.create_connection((host, 443), timeout=10).close()
    except OSError:
        return False
    return True


def run(venv: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([str(venv / "bin" / args[0]), *map(str, args[1:])], capture_output=True,
                          text=True, timeout=300, env=env, check=False)


def distributions(venv: Path) -> dict[str, metadata.Distribution]:
    """The venv's installed distributions, by canonical name, as its pip metadata says."""
    where = "import sysconfig; print(sysconfig.get_path('purelib'), sysconfig.get_path('platlib'))"
    paths = sorted(set(run(venv, "python", "-c", where).stdout.split()))
    return {canonicalize_name(d.metadata["Name"]): d for d in metadata.distributions(path=paths)}


def required(names: tuple[str, ...], dists: dict[str, metadata.Distribution]) -> set[str]:
    """`names` and what they require, transitively, by their metadata (markers evaluated here,
    no extras)."""
    seen, todo = set(), [canonicalize_name(n) for n in names]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            for req in map(Requirement, dists[name].requires or []):
                if req.marker is None or req.marker.evaluate({"extra": ""}):
                    todo.append(canonicalize_name(req.name))
    return seen


def installed_bytes(dist: metadata.Distribution) -> int:
    """The size of the files pip recorded installing for `dist` (its RECORD)."""
    paths = (Path(dist.locate_file(f)) for f in dist.files or [])
    return sum(p.stat().st_size for p in paths if p.is_file())


def test_the_cpu_install_is_onnxruntime_numpy_tiktoken_and_5_mb_of_spamkit(venv):
    dists = distributions(venv)

    assert set(dists) - {"spamkit"} == required(SLIM, dists)
    sizes = {name: installed_bytes(dist) for name, dist in dists.items()}
    print(f"\nspamkit[cpu]: {len(dists)} distributions, {sum(sizes.values()) / 1e6:.1f} MB "
          f"installed, spamkit's own {sizes['spamkit'] / 1e6:.2f} MB")
    for name, size in sorted(sizes.items(), key=lambda item: -item[1]):
        print(f"  {size / 1e6:8.2f} MB  {name} {dists[name].version}")
    assert sizes["spamkit"] <= MAX_SPAMKIT_BYTES


def test_the_runtime_classifies_there_without_the_clis_libraries(venv, tiny_bundle):
    from spamkit.runtime import Classifier

    texts = ["WINNER!! Claim your £900 prize now", "Ok lar... see you at 6?"]
    code = ("import json, importlib.util as u; from spamkit.runtime import Classifier; "
            f"labels = Classifier.load({str(tiny_bundle)!r}).predict({texts!r}); "
            "cli = [m for m in ('typer', 'rich', 'tqdm', 'platformdirs') if u.find_spec(m)]; "
            "print(json.dumps([labels, cli]))")

    result = run(venv, "python", "-c", code)

    assert result.returncode == 0, result.stderr
    labels, cli_modules = json.loads(result.stdout)
    assert labels == Classifier.load(tiny_bundle).predict(texts)
    assert cli_modules == []


@pytest.mark.parametrize("command", [("spamkit", "--help"), ("python", "-m", "spamkit", "--help"),
                                     ("spamkit", "classify", "BUNDLE", "Win cash now")],
                         ids=["spamkit --help", "python -m spamkit", "spamkit classify"])
def test_the_spamkit_command_without_the_cli_extra_says_what_to_install(venv, command):
    result = run(venv, *command)

    assert_clean_failure(result, "typer", "the spamkit command", 'pip install "spamkit[cli]"')
