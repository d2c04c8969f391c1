"""Nothing a user owns is deleted or overwritten by `spamkit train`, `export`, `score` or
`calibrate`: an output that exists and is not a spamkit artifact of the kind being written is
refused in one line before any work starts, `--force` replaces only such an artifact, and an
output that is (or holds) an input is refused even with `--force`. Every command runs the real
CLI in its own process; after each refusal the user's files are compared byte for byte."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import SMS_FILE, assert_clean_failure, spamkit_cli

from spamkit.errors import SpamkitError
from spamkit.export.bundle import ExportConfig, export_bundle
from spamkit.runtime import Classifier

TRAIN = ("train", "--preset", "tiny", "--no-compile", "--precision", "fp32", "--device", "cpu",
         "--epochs", "1", "--max-steps", "2", "--data", SMS_FILE)
SMS_LINES = [line.split("\t", 1)[1] for line in SMS_FILE.read_text("utf-8").split("\n") if line]


def snapshot(path: Path) -> dict[str, bytes]:
    """Every file under `path` (or the file itself), by relative name, with its bytes."""
    if path.is_file():
        return {".": path.read_bytes()}
    return {p.relative_to(path).as_posix(): p.read_bytes()
            for p in sorted(path.rglob("*")) if p.is_file()}


def users_folder(path: Path) -> Path:
    """A folder of the user's own: notes, a spreadsheet, a subfolder."""
    (path / "photos").mkdir(parents=True)
    (path / "notes.txt").write_text("call mum\n")
    (path / "budget.csv").write_text("month,amount\njan,100\n")
    (path / "photos" / "cat.jpg").write_bytes(bytes(range(256)) * 4)
    return path


def refused(result, *words) -> str:
    line = assert_clean_failure(result, *words)
    assert result.returncode == 1, result.returncode
    return line


def no_leftovers(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


# -----------------------------------------------------------------------------
# export


@pytest.mark.parametrize("force", [(), ("--force",)], ids=["plain", "force"])
def test_export_into_a_users_folder_is_refused_and_keeps_every_file(tmp_path, tiny_checkpoint,
                                                                     force):
    folder = users_folder(tmp_path / "work")
    before = snapshot(folder)

    result = spamkit_cli("export", tiny_checkpoint, "--out", folder, *force)

    refused(result, str(folder), "not a spamkit bundle")
    assert snapshot(folder) == before
    no_leftovers(tmp_path)


@pytest.mark.parametrize("how", ["same", "symlink", "relative", "parent"])
def test_export_over_its_own_checkpoint_is_refused_even_with_force(tmp_path, tiny_checkpoint,
                                                                   how):
    ckpt = tmp_path / "runs" / "ckpt"
    shutil.copytree(tiny_checkpoint, ckpt)
    before = snapshot(ckpt)
    out = {"same": ckpt, "symlink": tmp_path / "link", "relative": Path("runs/./ckpt"),
           "parent": tmp_path / "runs"}[how]
    if how == "symlink":
        out.symlink_to(ckpt)

    result = spamkit_cli("export", ckpt, "--out", out, "--force", cwd=tmp_path)

    refused(result, "would overwrite the input")
    assert snapshot(ckpt) == before


def test_export_over_a_bundle_needs_force_then_replaces_it(tmp_path, tiny_checkpoint,
                                                           tiny_bundle):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    before = snapshot(bundle)

    refused(spamkit_cli("export", tiny_checkpoint, "--out", bundle), "already holds a spamkit "
            "bundle", "--force")
    assert snapshot(bundle) == before

    result = spamkit_cli("export", tiny_checkpoint, "--out", bundle, "--force", "--data",
                         SMS_FILE)
    assert result.returncode == 0, result.stderr
    assert Classifier.load(bundle).precision == "fp32"  # the new fp32-only bundle, not the old
    assert "model.int8.onnx" not in snapshot(bundle)
    no_leftovers(tmp_path)


def claim_or_copy(path: Path, what: str, marker: str, fmt: str, artifact: Path) -> Path:
    """A user's folder whose `marker` file merely claims `fmt` ("a bare claim"), or a copy of
    `artifact` holding one note of the user's besides."""
    folder = users_folder(path)
    if what == "a bare claim":
        (folder / marker).write_text(f'{{"format": "{fmt}"}}\n')
    else:
        shutil.copytree(artifact, folder, dirs_exist_ok=True)
        shutil.rmtree(folder / "photos")
        (folder / "budget.csv").unlink()
    return folder


@pytest.mark.parametrize("what", ["a bare claim", "a bundle and a note"])
def test_force_never_takes_a_users_folder_for_a_bundle(tmp_path, tiny_checkpoint, tiny_bundle,
                                                       what):
    """A folder is a bundle only when its manifest reads as one and it holds what that
    manifest lists, nothing more: the format's name alone, or a bundle the user has put a file
    of their own into, is not one --force may delete."""
    folder = claim_or_copy(tmp_path / "work", what, "manifest.json", "spamkit-bundle",
                           tiny_bundle)
    before = snapshot(folder)

    result = spamkit_cli("export", tiny_checkpoint, "--out", folder, "--force")

    refused(result, str(folder), "not a spamkit bundle")
    assert snapshot(folder) == before
    no_leftovers(tmp_path)


def test_export_into_an_empty_folder(tmp_path, tiny_checkpoint):
    out = tmp_path / "empty"
    out.mkdir()
    result = spamkit_cli("export", tiny_checkpoint, "--out", out, "--data", SMS_FILE)
    assert result.returncode == 0, result.stderr
    assert Classifier.load(out).labels == ["ham", "spam"]


def test_export_over_a_file_is_refused(tmp_path, tiny_checkpoint):
    out = tmp_path / "report.pdf"
    out.write_bytes(b"%PDF-1.4 the user's report")
    refused(spamkit_cli("export", tiny_checkpoint, "--out", out, "--force"), "is a file")
    assert out.read_bytes() == b"%PDF-1.4 the user's report"


def test_the_python_api_refuses_too(tmp_path, tiny_checkpoint):
    folder = users_folder(tmp_path / "work")
    before = snapshot(folder)
    with pytest.raises(SpamkitError, match="not a spamkit bundle"):
        export_bundle(tiny_checkpoint, folder, ExportConfig(force=True))
    assert snapshot(folder) == before


# -----------------------------------------------------------------------------
# train


@pytest.mark.parametrize("extra", [(), ("--force",), ("--nproc", "2")],
                         ids=["plain", "force", "nproc"])
def test_train_into_a_users_folder_is_refused_before_training(tmp_path, extra):
    folder = users_folder(tmp_path / "work")
    before = snapshot(folder)

    result = spamkit_cli(*TRAIN, "--out", folder, *extra)

    refused(result, str(folder), "not a spamkit checkpoint")
    assert "training" not in result.stdout  # refused before any work
    assert snapshot(folder) == before
    no_leftovers(tmp_path)


@pytest.mark.parametrize("what", ["a bare claim", "a checkpoint and a note"])
def test_force_never_takes_a_users_folder_for_a_checkpoint(tmp_path, tiny_checkpoint, what):
    folder = claim_or_copy(tmp_path / "work", what, "config.json", "spamkit-checkpoint",
                           tiny_checkpoint)
    before = snapshot(folder)

    result = spamkit_cli(*TRAIN, "--out", folder, "--force")

    refused(result, str(folder), "not a spamkit checkpoint")
    assert snapshot(folder) == before


def test_train_over_its_data_or_weights_is_refused(tmp_path):
    data = tmp_path / "data" / "sms.csv"
    data.parent.mkdir()
    data.write_text("text,label\n" + "".join(f"m{i},{'ab'[i % 2]}\n" for i in range(40)))
    before = data.read_bytes()
    refused(spamkit_cli(*TRAIN[:-2], "--data", data, "--out", data, "--force"),
            "would overwrite the input")
    refused(spamkit_cli(*TRAIN[:-2], "--data", data, "--out", data.parent, "--force"),
            "would overwrite the input")
    assert data.read_bytes() == before


def test_train_over_a_checkpoint_needs_force_then_replaces_it(tmp_path, tiny_checkpoint):
    out = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, out)
    before = snapshot(out)

    refused(spamkit_cli(*TRAIN, "--out", out), "already holds a spamkit checkpoint", "--force")
    assert snapshot(out) == before

    result = spamkit_cli(*TRAIN, "--out", out, "--force")
    assert result.returncode == 0, result.stderr
    assert snapshot(out)["model.safetensors"] != before["model.safetensors"]
    no_leftovers(tmp_path)


def test_an_unfinished_run_is_resumed_or_forced_never_silently_restarted(tmp_path):
    out = tmp_path / "run"
    (out / "training-state").mkdir(parents=True)
    (out / "training-state" / "state.json").write_text("{}")
    before = snapshot(out)

    line = refused(spamkit_cli(*TRAIN, "--out", out), "--force", "--resume")
    assert "checkpoint" in line
    assert snapshot(out) == before


def test_train_over_a_file_is_refused(tmp_path):
    out = tmp_path / "notes.txt"
    out.write_text("mine\n")
    refused(spamkit_cli(*TRAIN, "--out", out, "--force"), "is a file")
    assert out.read_text() == "mine\n"


# -----------------------------------------------------------------------------
# score


@pytest.fixture
def inbox(tmp_path) -> Path:
    path = tmp_path / "in.csv"
    path.write_text("text\n" + "\n".join(f'"{t}"' for t in SMS_LINES[:5]
                                         if '"' not in t) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("how", ["same", "relative", "symlink", "hardlink"])
def test_score_over_its_input_is_refused_even_with_force(tmp_path, tiny_bundle, inbox, how):
    before = inbox.read_bytes()
    out = {"same": inbox, "relative": Path("./sub/../in.csv"), "symlink": tmp_path / "link.csv",
           "hardlink": tmp_path / "hard.csv"}[how]
    (tmp_path / "sub").mkdir()
    if how == "symlink":
        out.symlink_to(inbox)
    elif how == "hardlink":
        os.link(inbox, out)

    for force in ((), ("--force",)):
        result = spamkit_cli("score", tiny_bundle, inbox, "--out", out, *force, cwd=tmp_path)
        refused(result, "would overwrite the input")
    assert inbox.read_bytes() == before
    assert not list(tmp_path.glob("*.partial*"))


def test_score_over_a_users_file_is_refused_even_with_force(tmp_path, tiny_bundle, inbox):
    other = tmp_path / "budget.csv"
    other.write_text("month,amount\njan,100\n")
    for force in ((), ("--force",)):
        refused(spamkit_cli("score", tiny_bundle, inbox, "--out", other, *force),
                "not a spamkit scores file")
    assert other.read_text() == "month,amount\njan,100\n"
    folder = users_folder(tmp_path / "results.csv")
    before = snapshot(folder)
    refused(spamkit_cli("score", tiny_bundle, inbox, "--out", folder, "--force"), "directory")
    assert snapshot(folder) == before


def test_a_users_file_that_looks_like_hostile_json_is_refused_in_one_line(tmp_path, tiny_bundle,
                                                                         inbox):
    """Telling whether --out is a scores file reads its first line, which may be anything."""
    other = tmp_path / "notes.jsonl"
    other.write_text('{"id": ' + "[" * 60_000 + "\n", encoding="utf-8")
    before = other.read_bytes()
    refused(spamkit_cli("score", tiny_bundle, inbox, "--out", other, "--force"),
            "not a spamkit scores file")
    assert other.read_bytes() == before


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_score_over_its_own_output_needs_force(tmp_path, tiny_bundle, inbox, suffix):
    out = tmp_path / f"scores{suffix}"
    assert spamkit_cli("score", tiny_bundle, inbox, "--out", out).returncode == 0
    first = out.read_bytes()

    refused(spamkit_cli("score", tiny_bundle, inbox, "--out", out), "already holds a spamkit "
            "scores file", "--force")
    assert out.read_bytes() == first

    result = spamkit_cli("score", tiny_bundle, inbox, "--out", out, "--force", "--precision",
                         "fp32")
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() != first  # the fp32 graph's probabilities, not the int8 one's
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["in.csv", out.name])


# -----------------------------------------------------------------------------
# calibrate


def test_calibrate_refuses_a_checkpoint_before_scoring(tmp_path, tiny_checkpoint):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, ckpt)
    before = snapshot(ckpt)
    refused(spamkit_cli("calibrate", ckpt, "--target-precision", "0.9"),
            "not a spamkit bundle")
    assert snapshot(ckpt) == before


def test_score_never_overwrites_a_file_named_like_its_run_record(tmp_path, tiny_bundle, inbox):
    record = tmp_path / "scores.csv.partial.json"
    record.write_text('{"mine": true}\n')
    refused(spamkit_cli("score", tiny_bundle, inbox, "--out", tmp_path / "scores.csv"),
            "scores.csv.partial.json is not a record spamkit score wrote")
    assert record.read_text() == '{"mine": true}\n'
    assert not (tmp_path / "scores.csv").exists()
