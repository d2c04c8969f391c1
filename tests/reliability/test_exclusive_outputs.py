"""An output is one run's alone, and its final rename deletes nothing it did not check.

Two `spamkit` runs given the same `--out` (export, score, train) never both write it: the
second is refused in one line while the first holds the output's lock, and the first ends
intact. A file a user drops into an output while a run writes it is kept: the commit checks,
after swapping the old entry out, that it deletes only an empty folder or a spamkit artifact
holding nothing else, and otherwise swaps it back and refuses.

Every race is driven at a fixed point, never by sleeping: the first run stops itself with
SIGSTOP at an exact call (tests/faults.py's hook in its `sitecustomize`), the test acts
while it is stopped, then sends SIGCONT.
"""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import pytest
from conftest import SCORE_FP32, SMS_FILE, spamkit_cli
from test_interrupts import (  # noqa: F401 - hook_dir and spamkit are fixtures used here
    TIMEOUT,
    Spamkit,
    hook_dir,
    one_error_line,
    spamkit,
)

from spamkit.atomic import atomic_dir
from spamkit.errors import SpamkitError
from spamkit.runtime import Classifier
from spamkit.runtime.bundle import open_manifest

pytestmark = pytest.mark.slow  # `make test-slow`

EXPORT = ("--int8", "--data", str(SMS_FILE))
TRAIN = ("train", "--preset", "tiny", "--no-compile", "--precision", "fp32", "--device", "cpu",
         "--epochs", "1", "--max-steps", "2", "--data", str(SMS_FILE))
SMS_LINES = [line.split("\t", 1)[1] for line in SMS_FILE.read_text("utf-8").split("\n") if line]


@pytest.fixture
def start(spamkit, hook_dir):  # noqa: F811 - the imported fixtures
    """Start `spamkit ARGS` as test_interrupts' `spamkit` does, stopped at `stop` (a
    tests/faults.py spec without its signal) if given."""
    def run(*args, stop: str | None = None) -> Spamkit:
        if stop is None:
            return spamkit(*args)
        where, nth = stop.rsplit(":", 1)
        child = spamkit(*args, fault=f"{where}:SIGSTOP:{nth}", hook=hook_dir)
        wait_until_stopped(child)
        return child

    return run


def wait_until_stopped(run: Spamkit) -> None:
    """Until the child has stopped itself (its state in /proc is T)."""
    deadline = time.monotonic() + TIMEOUT
    stat = Path(f"/proc/{run.proc.pid}/stat")
    while stat.read_text().rsplit(") ", 1)[1][0] != "T":
        if run.proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"never stopped at its fault: {run.describe()}")
        time.sleep(0.02)


def carry_on(run: Spamkit) -> int:
    run.signal(signal.SIGCONT)
    return run.finish()


def listing(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def only_these_beside(folder: Path, *names: str) -> None:
    """Nothing but `names` in `folder`: no temporary directory, no lock left."""
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)


# -----------------------------------------------------------------------------
# A user's file, dropped into an output while a run writes it


def test_a_file_put_in_an_empty_out_during_export_is_kept(start, tmp_path, tiny_checkpoint):
    out = tmp_path / "runs" / "E"
    out.mkdir(parents=True)
    run = start("export", tiny_checkpoint, "--out", out, *EXPORT, stop="write:tokenizer.json:1")
    assert list(out.parent.glob(".E.tmp-*")), "export is not writing yet"
    (out / "thesis.txt").write_text("draft\n")

    assert carry_on(run) == 1, run.describe()
    line = one_error_line(run)
    assert f"{out} changed while this run was writing it" in line, line
    assert listing(out) == {"thesis.txt": b"draft\n"}
    only_these_beside(out.parent, "E")


def test_a_file_put_in_a_bundle_being_replaced_is_kept_with_the_bundle(start, tmp_path,
                                                                      tiny_checkpoint,
                                                                      tiny_bundle):
    out = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, out)
    run = start("export", tiny_checkpoint, "--out", out, *EXPORT, "--force",
                stop="write:tokenizer.json:1")
    (out / "notes.txt").write_text("mine\n")
    before = listing(out)

    assert carry_on(run) == 1, run.describe()
    assert "changed while this run was writing it" in one_error_line(run)
    assert listing(out) == before
    assert not list(tmp_path.glob(".bundle*"))


@pytest.mark.parametrize("change", ["file in it", "file instead", "nothing"])
def test_atomic_dir_replaces_only_an_empty_folder_it_finds_still_empty(tmp_path, change):
    target = tmp_path / "out"
    target.mkdir()

    def write_while_the_user_acts() -> None:
        with atomic_dir(target) as tmp:
            (tmp / "result.txt").write_text("new\n")
            if change == "file in it":
                (target / "thesis.txt").write_text("draft\n")
            elif change == "file instead":
                target.rmdir()
                target.write_text("draft\n")

    if change == "nothing":
        write_while_the_user_acts()
        assert listing(target) == {"result.txt": b"new\n"}
    else:
        with pytest.raises(SpamkitError, match="changed while this run was writing it"):
            write_while_the_user_acts()
        kept = target.read_text() if target.is_file() else listing(target)
        assert kept == ("draft\n" if change == "file instead" else {"thesis.txt": b"draft\n"})
    only_these_beside(tmp_path, "out")


def test_atomic_dir_replaces_a_bundle_file_by_file(tmp_path, tiny_bundle):
    target = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, target)
    with atomic_dir(target) as tmp:
        (tmp / "result.txt").write_text("new\n")
    assert listing(target) == {"result.txt": b"new\n"}
    only_these_beside(tmp_path, "bundle")


# -----------------------------------------------------------------------------
# Two runs, one output


def test_a_second_export_to_the_same_out_is_refused_while_the_first_runs(start, tmp_path,
                                                                         tiny_checkpoint):
    out = tmp_path / "runs" / "E"
    first = start("export", tiny_checkpoint, "--out", out, *EXPORT,
                  stop="write:tokenizer.json:1")
    second = start("export", tiny_checkpoint, "--out", out, *EXPORT)
    assert second.finish() == 1, second.describe()
    line = one_error_line(second)
    assert f"--out {out} is being written by another spamkit run" in line, line

    assert carry_on(first) == 0, first.describe()
    _, digest = open_manifest(out)
    assert f"digest {digest} (pin this bundle with --digest)" in first.out_lines
    assert set(Classifier.load(out).predict(["WINNER!! Call now", "see you at 6"])) <= {
        "ham", "spam"}
    only_these_beside(out.parent, "E")


@pytest.fixture
def two_inputs(tmp_path) -> tuple[Path, Path]:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("\n".join(SMS_LINES[:300]) + "\n", encoding="utf-8")
    b.write_text("\n".join(SMS_LINES[300:700]) + "\n", encoding="utf-8")
    return a, b


def test_a_second_score_to_the_same_out_is_refused_and_the_first_ends_intact(
        start, tmp_path, tiny_bundle, two_inputs):
    a, b = two_inputs
    reference = tmp_path / "reference" / "a.csv"
    assert spamkit_cli("score", tiny_bundle, a, "--out", reference, *SCORE_FP32).returncode == 0
    out = tmp_path / "runs" / "r.csv"
    # Stopped with the run's record written, just before it opens r.csv.partial.
    first = start("score", tiny_bundle, a, "--out", out, *SCORE_FP32,
                  stop="open:r.csv.partial:1")
    for extra in [(), ("--resume",), ("--force",)]:
        second = start("score", tiny_bundle, b, "--out", out, *SCORE_FP32, *extra)
        assert second.finish() == 1, second.describe()
        line = one_error_line(second)
        assert f"--out {out} is being written by another spamkit run" in line, line

    assert carry_on(first) == 0, first.describe()
    assert first.out_lines[-1] == f"300 messages scored into {out}"
    assert out.read_bytes() == reference.read_bytes()
    only_these_beside(out.parent, "r.csv")


def test_a_file_put_at_out_while_score_runs_is_kept_and_so_are_the_rows(
        start, tmp_path, tiny_bundle, two_inputs):
    """The rows are renamed to --out only if nothing has appeared there meanwhile (or, with
    --force, only over a scores file); the refusal says where they are, and --resume finishes
    once the user's file is moved away."""
    a, _ = two_inputs
    reference = tmp_path / "reference" / "a.csv"
    assert spamkit_cli("score", tiny_bundle, a, "--out", reference, *SCORE_FP32).returncode == 0
    out = tmp_path / "r.csv"
    partial = tmp_path / "r.csv.partial"
    for force in [(), ("--force",)]:
        run = start("score", tiny_bundle, a, "--out", out, *SCORE_FP32, *force,
                    stop="open:r.csv.partial:1")
        out.write_text("month,amount\njan,100\n")
        assert carry_on(run) == 1, run.describe()
        line = one_error_line(run)
        assert f"--out {out} changed while this run was scoring" in line, line
        assert f"all 300 rows are in {partial}" in line, line
        assert out.read_text() == "month,amount\njan,100\n"
        out.rename(tmp_path / "mine.csv")
        finish = start("score", tiny_bundle, a, "--out", out, *SCORE_FP32, "--resume")
        assert finish.finish() == 0, finish.describe()
        assert out.read_bytes() == reference.read_bytes() and not partial.exists()
        out.unlink()


def test_a_killed_run_leaves_its_output_free_for_the_next(start, tmp_path, tiny_bundle,
                                                          two_inputs):
    """The kernel lets go of a lock when its process dies, so a kill never leaves --out
    locked: the next run takes over the lock file the killed one left."""
    a, _ = two_inputs
    out = tmp_path / "runs" / "r.csv"
    first = start("score", tiny_bundle, a, "--out", out, *SCORE_FP32,
                  stop="open:r.csv.partial:1")
    first.signal(signal.SIGKILL)
    assert first.finish() == -signal.SIGKILL
    assert (out.parent / ".r.csv.spamkit-lock").exists()

    again = start("score", tiny_bundle, a, "--out", out, *SCORE_FP32)
    assert again.finish() == 0, again.describe()
    only_these_beside(out.parent, "r.csv")


def test_a_second_train_cannot_resume_the_run_a_first_is_training(start, tmp_path):
    out = tmp_path / "run"
    # Stopped in epoch 1's state save (the 2nd: the 1st is the resume point before epoch 1).
    first = start(*TRAIN, "--out", out, stop="write:state.json:2")
    assert (out / "training-state").is_dir()
    second = start("train", "--resume", "--out", out)
    assert second.finish() == 1, second.describe()
    line = one_error_line(second)
    assert f"--out {out} is being written by another spamkit run" in line, line

    assert carry_on(first) == 0, first.describe()
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", "curves.png", "metrics.json", "model.safetensors"]


# -----------------------------------------------------------------------------
# OUTPUT.partial


@pytest.mark.parametrize("resume", [(), ("--resume",)], ids=["new", "resume"])
def test_score_refuses_a_link_at_its_partial_name(tmp_path, tiny_bundle, two_inputs, resume):
    a, _ = two_inputs
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "r.csv"
    partial = tmp_path / "r.csv.partial"
    partial.symlink_to(elsewhere / "x.csv")  # dangling

    result = spamkit_cli("score", tiny_bundle, a, "--out", out, *resume)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{partial} is a link" in lines[0], result.stderr
    assert list(elsewhere.iterdir()) == [] and not out.exists()
    assert partial.is_symlink()
