"""Killing and interrupting `spamkit train`, `spamkit export` and `spamkit score` with real
signals, as a crash, an OOM kill or a user's Ctrl-C would: whatever moment the signal lands, a
directory either is absent, or refuses to load, or is the finished result; an interrupted run
resumes to the same result as an uninterrupted one.

Every command runs in its own process (`python -m spamkit`) on the real SMS data, with the
`tiny` preset, fp32, on the CPU and no torch.compile. Children run with OMP_NUM_THREADS=1: on a
busy 2-core machine a 2-thread torch spins against other processes (an epoch that takes 1.5 s
alone took 80 s), and one thread also makes every run bit-for-bit repeatable, which the resume
comparisons rely on.

Kill points are read off the child's stdout (its per-epoch lines) or, where a moment must be
hit exactly (opening the data, a file write, the gap between two renames, half-way through
writing a file), made by a `sitecustomize` placed on the child's PYTHONPATH: the child sends
itself the real signal at that exact call (see tests/faults.py), so those moments are hit every
time.
No kill is timed by sleeping.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from conftest import SCORE_FP32, SMS_FILE, SMS_ZIP, closed_port_url
from faults import fault_env, install_fault_hook
from safetensors.torch import load_file

from spamkit.errors import SpamkitError
from spamkit.runtime import Classifier
from spamkit.runtime.bundle import read_manifest
from spamkit.training.checkpoint import load_checkpoint

TRAIN = ("train", "--preset", "tiny", "--no-compile", "--precision", "fp32", "--device", "cpu",
         "--data", str(SMS_FILE))
EPOCHS = 4  # the resume comparisons (tests 3 and 5) and their uninterrupted reference
TIMEOUT = 300  # seconds for any one wait: generous, for a loaded 2-core machine
# Resumed and uninterrupted runs do the same single-threaded float operations in the same order
# (weights, AdamW moments and the random generators are restored; the shuffle follows from the
# epoch), so they agree exactly in practice; 1e-6 leaves room for nothing but float noise.
# Accuracies are counts: exact.
LOSS_TOL = 1e-6
MESSAGES = ["WINNER!! You have been selected to receive a £900 prize. Call 09061701461 now",
            "Ok, see you at lunch then"]

def _default_sigint() -> None:
    # A child started from a shell job or CI runner may inherit SIGINT ignored, and Python then
    # installs no KeyboardInterrupt handler: give it the default, as a terminal's Ctrl-C would.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Spamkit:
    """`python -m spamkit ARGS` in its own process; its stdout lines arrive as they are printed."""

    def __init__(self, args, env: dict, cwd: Path) -> None:
        self.args = [str(a) for a in args]
        # preexec_fn beside this process's reader threads is safe here: _default_sigint only
        # makes one sigaction call, and takes no lock another thread could hold at the fork.
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "spamkit", *self.args], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=env, cwd=cwd,
            preexec_fn=_default_sigint,  # noqa: PLW1509
        )
        self.out_lines: list[str] = []
        self.err_lines: list[str] = []
        self._lines: queue.Queue = queue.Queue()
        self._readers = [threading.Thread(target=self._pump, args=(s, o), daemon=True)
                         for s, o in ((self.proc.stdout, True), (self.proc.stderr, False))]
        for t in self._readers:
            t.start()

    def _pump(self, stream, is_stdout: bool) -> None:
        for line in stream:
            (self.out_lines if is_stdout else self.err_lines).append(line.rstrip("\n"))
            if is_stdout:
                self._lines.put(line)
        if is_stdout:
            self._lines.put(None)

    def wait_for(self, prefix: str, timeout: float = TIMEOUT) -> str:
        """Block until the child prints a line starting with `prefix`; return it."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                pytest.fail(f"no line starting {prefix!r} in {timeout}s: {self.describe()}")
            if line is None:
                self.proc.wait(TIMEOUT)
                pytest.fail(f"exited before printing {prefix!r}: {self.describe()}")
            if line.startswith(prefix):
                return line

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)  # a no-op when it has exited already

    def finish(self, timeout: float = TIMEOUT) -> int:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"still running after {timeout}s: {self.describe()}")
        for t in self._readers:
            t.join(10)
        return self.proc.returncode

    def describe(self) -> str:
        return (f"spamkit {' '.join(self.args)} (exit {self.proc.returncode})\n--- stdout\n"
                + "\n".join(self.out_lines) + "\n--- stderr\n" + "\n".join(self.err_lines))


@pytest.fixture(scope="module")
def hook_dir(tmp_path_factory) -> Path:
    return install_fault_hook(tmp_path_factory.mktemp("fault-hook"))


def child_env(cache: Path, *, unbuffered: bool = True, fault: str | None = None,
              hook: Path | None = None) -> dict:
    """The child's environment: isolated like conftest's (no user cache or data, no network),
    one torch thread. `unbuffered` lets lines that train and export print without flushing
    (the "training ..." and "kept epoch" lines, export's progress) arrive as they happen; the
    SIGINT and resume tests leave it off and rely on train's own per-epoch flush."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("SPAMKIT_DATA", "PYTHONUNBUFFERED", "SPAMKIT_TEST_FAULT")}
    env.update(SPAMKIT_CACHE=str(cache), SPAMKIT_DATA_URL=closed_port_url(),
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    if fault:
        env.update(fault_env(hook, fault))
    return env


@pytest.fixture
def spamkit(tmp_path):
    """Start `spamkit ARGS` in tmp_path; anything still running at teardown is killed."""
    started: list[Spamkit] = []

    def start(*args, **env_options) -> Spamkit:
        run = Spamkit(args, child_env(tmp_path / "cache", **env_options), tmp_path)
        started.append(run)
        return run

    yield start
    for run in started:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()


def run_to_end(start, *args, **env_options) -> Spamkit:
    run = start(*args, **env_options)
    run.finish()
    return run


def one_error_line(run: Spamkit) -> str:
    """The CLI's contract: one `spamkit: error:` line on stderr, no traceback."""
    lines = [line for line in run.err_lines if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("spamkit: error: "), run.describe()
    return lines[0]


def leftovers(root: Path) -> list[Path]:
    """Temporary directories atomic_dir leaves behind when killed (`.NAME.tmp-*`, and
    `.NAME.old-*/NAME`), anywhere under root."""
    found = [p for p in root.rglob(".*.tmp-*") if p.is_dir()]
    found += [child for p in root.rglob(".*.old-*") if p.is_dir()
              for child in p.iterdir() if child.is_dir()]
    return found


def loads_as_checkpoint(path: Path) -> bool:
    try:
        load_checkpoint(path)
    except SpamkitError:
        return False
    return True


def assert_complete_checkpoint(out: Path, epochs: int) -> None:
    """A finished run's directory: loads, has its metrics and curves, no training state."""
    ckpt = load_checkpoint(out)
    assert ckpt.preset == "tiny" and ckpt.labels == ["ham", "spam"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["final"]) == {"train", "val", "test"}
    assert [h["epoch"] for h in metrics["history"]] == list(range(1, epochs + 1))
    assert not (out / "training-state").exists()
    assert (out / "curves.png").is_file()


def assert_complete_bundle(bundle: Path) -> None:
    """A whole int8 export: every graph it lists loads and classifies, and the manifest holds
    the int8 comparison that export writes last. (The test fixture's bundle keeps its fp32
    graph; `spamkit export --int8` alone ships the int8 graph only.)"""
    manifest = read_manifest(bundle)  # verifies every file's sha256
    assert "int8" in manifest.graphs and set(manifest.graphs) <= {"fp32", "int8"}
    assert "test_int8_label_agreement" in manifest.verification
    for precision in manifest.graphs:
        clf = Classifier.load(bundle, precision=precision)
        assert set(clf.predict(MESSAGES)) <= {"ham", "spam"}


def same_results(reference: Path, other: Path) -> None:
    """Final and per-epoch metrics and the weights of two runs agree (see LOSS_TOL)."""
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (reference, other))
    assert b["kept_epoch"] == a["kept_epoch"]
    for split in ("train", "val", "test"):
        assert b["final"][split]["accuracy"] == a["final"][split]["accuracy"], split
        assert b["final"][split]["loss"] == pytest.approx(a["final"][split]["loss"],
                                                          abs=LOSS_TOL), split
    for ha, hb in zip(a["history"], b["history"], strict=True):
        assert (hb["epoch"], hb["step"], hb["examples_seen"]) == (
            ha["epoch"], ha["step"], ha["examples_seen"])
        assert (hb["train_accuracy"], hb["val_accuracy"]) == (
            ha["train_accuracy"], ha["val_accuracy"])
        for key in ("train_loss", "val_loss"):
            assert hb[key] == pytest.approx(ha[key], abs=LOSS_TOL), (hb["epoch"], key)
    wa, wb = (load_file(str(d / "model.safetensors")) for d in (reference, other))
    assert wa.keys() == wb.keys()
    assert max((wa[k] - wb[k]).abs().max().item() for k in wa) <= LOSS_TOL


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """This process trains and exports the shared fixtures while children train beside it: one
    thread each keeps two cores from being oversubscribed (restored after this module)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", autouse=True)
def _reference_run(tmp_path_factory):
    """Starts the uninterrupted reference run with the module, so that it trains on the second
    core while the first tests run; `reference` waits for it."""
    tmp = tmp_path_factory.mktemp("reference")
    run = Spamkit([*TRAIN, "--epochs", EPOCHS, "--out", tmp / "A"],
                  child_env(tmp / "cache", unbuffered=False), tmp)
    yield tmp / "A", run
    if run.proc.poll() is None:
        run.proc.kill()
        run.proc.wait()


@pytest.fixture
def reference(_reference_run) -> Path:
    """`spamkit train --epochs 4`, never interrupted: what the resumed runs must reproduce."""
    out, run = _reference_run
    assert run.finish() == 0, run.describe()
    assert_complete_checkpoint(out, EPOCHS)
    return out


# 1. SIGKILL during `spamkit train` ------------------------------------------------------------

# Where the kill lands: a fault (see tests/faults.py), or right after a line the child prints.
TRAIN_KILLS = {
    "reading-the-data": ("open:SMSSpamCollection:SIGKILL:1", None),  # nothing written yet
    "first-state-save": ("write:state.json:SIGKILL:1", None),  # the resume point before epoch 1
    "epoch-1": (None, "training "),  # printed after that resume point is saved
    "epoch-1-state-save": ("write:state.json:SIGKILL:2", None),
    "final-checkpoint-write": ("write:metrics.json:SIGKILL:1", None),
}


@pytest.mark.parametrize("where", TRAIN_KILLS)
def test_sigkill_during_train_never_leaves_a_loadable_partial_checkpoint(spamkit, tmp_path,
                                                                        hook_dir, where):
    fault, line = TRAIN_KILLS[where]
    out = tmp_path / "run"
    run = spamkit(*TRAIN, "--epochs", 2, "--out", out, fault=fault, hook=hook_dir)
    if line:
        run.wait_for(line)
        run.signal(signal.SIGKILL)
    assert run.finish() == -signal.SIGKILL, run.describe()
    if where == "reading-the-data":
        assert not out.exists()
    assert not loads_as_checkpoint(out)
    for tmp in leftovers(tmp_path):
        assert not loads_as_checkpoint(tmp), f"{tmp} loads as a checkpoint"


def test_sigkill_while_the_final_checkpoint_is_written(spamkit, tmp_path, hook_dir):
    """Killed inside save_checkpoint (weights written, config.json not yet): the directory
    still holds only the training state, which refuses to load and resumes."""
    out = tmp_path / "run"
    run = run_to_end(spamkit, *TRAIN, "--epochs", 1, "--out", out,
                     fault="write:config.json:SIGKILL:1", hook=hook_dir)
    assert run.proc.returncode == -signal.SIGKILL, run.describe()
    with pytest.raises(SpamkitError, match="unfinished training run"):
        load_checkpoint(out)
    for tmp in leftovers(tmp_path):
        assert not loads_as_checkpoint(tmp), f"{tmp} loads as a checkpoint"
    resumed = run_to_end(spamkit, "train", "--resume", "--out", out)
    assert resumed.proc.returncode == 0, resumed.describe()
    assert f"resuming {out} after epoch 1" in resumed.out_lines
    assert_complete_checkpoint(out, epochs=1)


# 2. SIGKILL during `spamkit export` -----------------------------------------------------------

EXPORT = ("--int8", "--data", str(SMS_FILE))


EXPORT_KILLS = {
    "reading-the-data": "open:SMSSpamCollection:SIGKILL:1",  # nothing written yet
    "fp32-graph-checked": "write:tokenizer.json:SIGKILL:1",  # next: the tokenizer, int8
    "manifest-commit": "replace:manifest.json:SIGKILL:1",  # all written but the manifest
}


@pytest.mark.parametrize("where", EXPORT_KILLS)
def test_sigkill_during_export_leaves_no_bundle(spamkit, tmp_path, tiny_checkpoint, hook_dir,
                                                where):
    bundle = tmp_path / "bundle"
    run = run_to_end(spamkit, "export", tiny_checkpoint, "--out", bundle, *EXPORT,
                     fault=EXPORT_KILLS[where], hook=hook_dir)
    assert run.proc.returncode == -signal.SIGKILL, run.describe()
    with pytest.raises(SpamkitError, match="bundle not found"):
        Classifier.load(bundle)
    for tmp in leftovers(tmp_path):
        with pytest.raises(SpamkitError):
            Classifier.load(tmp)


def test_sigkill_while_replacing_a_bundle_keeps_a_whole_one(spamkit, tmp_path, tiny_checkpoint,
                                                            tiny_bundle):
    """Re-export over an existing bundle, killed after the last comparison line (while the final
    manifest is hashed and written, right before the directory is swapped in)."""
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    assert_complete_bundle(bundle)
    run = spamkit("export", tiny_checkpoint, "--out", bundle, *EXPORT, "--force")
    run.wait_for("test split")
    run.signal(signal.SIGKILL)
    assert run.finish() in (-signal.SIGKILL, 0), run.describe()
    assert_complete_bundle(bundle)  # the old bundle or the new one, whole either way


def test_sigkill_at_the_last_moment_before_a_bundle_is_replaced(spamkit, tmp_path,
                                                                tiny_checkpoint, tiny_bundle,
                                                                hook_dir):
    # The new bundle is complete but for its manifest; the swap with the old one is a single
    # renameat2(RENAME_EXCHANGE), so there is no moment with no bundle at B.
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    run = run_to_end(spamkit, "export", tiny_checkpoint, "--out", bundle, *EXPORT, "--force",
                     fault="replace:manifest.json:SIGKILL:1", hook=hook_dir)
    assert run.proc.returncode == -signal.SIGKILL, run.describe()
    assert_complete_bundle(bundle)


@pytest.mark.parametrize("what", ["checkpoint", "bundle"])
def test_leftover_tmp_dir_never_loads(spamkit, tmp_path, tiny_checkpoint, hook_dir, what):
    if what == "checkpoint":
        run = run_to_end(spamkit, *TRAIN, "--epochs", 1, "--out", tmp_path / "run",
                         fault="write:metrics.json:SIGKILL:1", hook=hook_dir)
        load = load_checkpoint
    else:
        run = run_to_end(spamkit, "export", tiny_checkpoint, "--out", tmp_path / "bundle",
                         *EXPORT, fault="replace:manifest.json:SIGKILL:1", hook=hook_dir)
        load = Classifier.load
    assert run.proc.returncode == -signal.SIGKILL, run.describe()
    found = leftovers(tmp_path)
    assert found
    for tmp in found:
        with pytest.raises(SpamkitError):
            load(tmp)


@pytest.mark.parametrize("before", ["new", "bundle"])
def test_ctrl_c_during_export_says_what_out_holds(spamkit, tmp_path, tiny_checkpoint,
                                                  tiny_bundle, hook_dir, before):
    """Ctrl-C while the graphs are written (right after the fp32 check): exit 130 and one line
    saying that nothing was written, or that the bundle already there is untouched."""
    bundle = tmp_path / "bundle"
    force = ()
    if before == "bundle":
        shutil.copytree(tiny_bundle, bundle)
        force = ("--force",)
    files = {p.name: p.read_bytes() for p in bundle.iterdir()} if bundle.exists() else None
    run = run_to_end(spamkit, "export", tiny_checkpoint, "--out", bundle, *EXPORT, *force,
                     fault="write:tokenizer.json:SIGINT:1", hook=hook_dir)
    assert run.proc.returncode == 130, run.describe()
    kept = (f"the bundle in {bundle} is untouched" if files
            else f"nothing was written to {bundle}")
    assert one_error_line(run) == ("spamkit: error: interrupted before the bundle was "
                                   f"complete: {kept}")
    assert ({p.name: p.read_bytes() for p in bundle.iterdir()} if bundle.exists() else None
            ) == files
    assert not leftovers(tmp_path)


# 3. Ctrl-C, then --resume: the same result as never stopping ----------------------------------

def resume_to_the_reference(spamkit, out: Path, reference: Path, first_epoch: int,
                            last_epoch: int = EPOCHS - 1) -> None:
    """`--resume` finishes the run (after an epoch from first_epoch to last_epoch), and it
    ends where the uninterrupted run did."""
    resumed = run_to_end(spamkit, "train", "--resume", "--out", out, unbuffered=False)
    assert resumed.proc.returncode == 0, resumed.describe()
    pattern = rf"resuming {re.escape(str(out))} after epoch [{first_epoch}-{last_epoch}]"
    assert any(re.fullmatch(pattern, line) for line in resumed.out_lines), resumed.describe()
    assert_complete_checkpoint(out, EPOCHS)
    same_results(reference, out)


def test_sigint_then_resume_gives_the_uninterrupted_result(spamkit, tmp_path, reference):
    out = tmp_path / "B"
    run = spamkit(*TRAIN, "--epochs", EPOCHS, "--out", out, unbuffered=False)
    run.wait_for("epoch 2:")  # train flushes each epoch line itself
    run.signal(signal.SIGINT)
    assert run.finish() == 130, run.describe()
    message = one_error_line(run)
    assert message.startswith("spamkit: error: interrupted"), message
    assert f"--resume --out {out}" in message
    # The SIGINT lands in epoch 2's state save or just after it (epoch 3 on a slow machine).
    said = int(re.search(r"resume after epoch (\d+)", message).group(1))
    assert 1 <= said < EPOCHS, message
    with pytest.raises(SpamkitError, match="unfinished training run"):
        load_checkpoint(out)

    resume_to_the_reference(spamkit, out, reference, first_epoch=1)


def test_sigint_during_the_state_save_reports_the_epoch_that_was_saved(spamkit, tmp_path,
                                                                      hook_dir):
    out = tmp_path / "run"
    # The 2nd state save is epoch 1's (the 1st is the resume point before training).
    run = run_to_end(spamkit, *TRAIN, "--epochs", 2, "--out", out,
                     fault="write:state.json:SIGINT:2", hook=hook_dir)
    assert run.proc.returncode == 130, run.describe()
    said = int(re.search(r"resume after epoch (\d+)", one_error_line(run)).group(1))
    saved = json.loads((out / "training-state" / "state.json").read_text())["epoch"]
    assert said == saved


# 4. --resume with nothing to resume -----------------------------------------------------------

def test_resume_with_nothing_to_resume_is_one_line_error(spamkit, tmp_path, tiny_checkpoint):
    missing = tmp_path / "missing"
    run = run_to_end(spamkit, "train", "--resume", "--out", missing)
    assert run.proc.returncode == 1, run.describe()
    assert "nothing to resume" in one_error_line(run)
    assert not missing.exists()

    finished = tmp_path / "finished"  # a finished run's checkpoint: nothing to resume either
    shutil.copytree(tiny_checkpoint, finished)
    before = {p.name: p.read_bytes() for p in finished.iterdir()}
    run = run_to_end(spamkit, "train", "--resume", "--out", finished)
    assert run.proc.returncode == 1, run.describe()
    assert "nothing to resume" in one_error_line(run)
    assert {p.name: p.read_bytes() for p in finished.iterdir()} == before


# 5. SIGKILL, then --resume ---------------------------------------------------------------------

def test_resume_after_sigkill_finishes_the_run(spamkit, tmp_path, reference, hook_dir):
    out = tmp_path / "C"
    # Killed while saving epoch 2's state (the 3rd save, after the resume point and epoch 1's):
    # epoch 2 ran, but only epoch 1 is on disk.
    run = run_to_end(spamkit, *TRAIN, "--epochs", EPOCHS, "--out", out, unbuffered=False,
                     fault="write:state.json:SIGKILL:3", hook=hook_dir)
    assert run.proc.returncode == -signal.SIGKILL, run.describe()
    assert any(line.startswith("epoch 2:") for line in run.out_lines), run.describe()
    with pytest.raises(SpamkitError, match="unfinished training run"):
        load_checkpoint(out)

    resume_to_the_reference(spamkit, out, reference, first_epoch=1, last_epoch=1)


# 6. Ctrl-C and SIGKILL during `spamkit score`, then --resume ----------------------------------

def rows_in(partial: Path) -> int:
    """Complete rows in a partial CSV output (each ends in CRLF; the first is the header)."""
    return max(partial.read_bytes().count(b"\r\n") - 1, 0) if partial.exists() else 0


def wait_for_rows(run: Spamkit, partial: Path, n: int) -> None:
    deadline = time.monotonic() + TIMEOUT
    while rows_in(partial) < n:
        if run.proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{partial} never reached {n} rows: {run.describe()}")
        time.sleep(0.02)


def test_score_stopped_twice_resumes_to_the_uninterrupted_file(spamkit, tmp_path, tiny_bundle,
                                                               sms_20k, sms_20k_scored):
    out = tmp_path / "scores.csv"
    partial = tmp_path / "scores.csv.partial"
    score = ("score", tiny_bundle, sms_20k, "--out", out, *SCORE_FP32, "--batch-size", 256)

    run = spamkit(*score)
    wait_for_rows(run, partial, 2000)
    run.signal(signal.SIGINT)
    assert run.finish() == 130, run.describe()
    message = one_error_line(run)
    kept = int(re.search(r"interrupted after (\d+) of 20000 messages", message).group(1))
    assert f"which {partial} keeps: add --resume" in message
    assert rows_in(partial) == kept and not out.exists()

    run = spamkit(*score, "--resume")
    assert run.wait_for("resuming ") == f"resuming {out} after {kept} of 20000 messages\n"
    wait_for_rows(run, partial, kept + 4000)
    run.signal(signal.SIGKILL)
    assert run.finish() == -signal.SIGKILL, run.describe()
    assert not out.exists()
    kept = rows_in(partial)
    # A kill can land in the middle of writing a row: leave one torn for certain.
    with open(partial, "ab") as f:
        f.write(b"12345,sp")

    run = run_to_end(spamkit, *score, "--resume")
    assert run.proc.returncode == 0, run.describe()
    assert run.out_lines[0] == f"resuming {out} after {kept} of 20000 messages"
    assert out.read_bytes() == sms_20k_scored.read_bytes()
    assert not partial.exists()


def test_score_interrupted_inside_a_batch_says_how_many_rows_its_file_keeps(
        spamkit, tmp_path, tiny_bundle, sms_20k, sms_20k_scored, hook_dir):
    """Ctrl-C while a batch's rows are being written (here half-way through the 400th write
    into the output's folder: the second batch's 142nd row or so): the message counts the
    complete rows the partial file holds, that batch's first rows among them, and --resume
    continues after exactly those."""
    out = tmp_path / "scores" / "scores.csv"
    out.parent.mkdir()
    partial = out.with_name("scores.csv.partial")
    score = ("score", tiny_bundle, sms_20k, "--out", out, *SCORE_FP32, "--batch-size", 256)

    run = run_to_end(spamkit, *score, fault=f"torn:{out.parent}:SIGINT:400", hook=hook_dir)
    assert run.proc.returncode == 130, run.describe()
    message = one_error_line(run)
    kept = int(re.search(r"interrupted after (\d+) of 20000 messages", message).group(1))
    assert 256 < kept < 512 and rows_in(partial) == kept

    run = run_to_end(spamkit, *score, "--resume")
    assert run.proc.returncode == 0, run.describe()
    assert run.out_lines[0] == f"resuming {out} after {kept} of 20000 messages"
    assert out.read_bytes() == sms_20k_scored.read_bytes()


# 7. Killed half-way through writing the data cache or a manifest -------------------------------

def test_a_kill_while_the_data_is_cached_leaves_nothing_half_written(spamkit, tmp_path,
                                                                     hook_dir):
    """`spamkit data --data the UCI zip` copies SMSSpamCollection into the cache; killed with
    half of it written, the cache holds nothing a later run would read: that run asks for the
    data again (no network here), and the next copy completes."""
    cache = tmp_path / "cache"
    run = run_to_end(spamkit, "data", "--data", SMS_ZIP, fault=f"torn:{cache}:SIGKILL:1",
                     hook=hook_dir)
    assert run.proc.returncode == -signal.SIGKILL, run.describe()

    after = run_to_end(spamkit, "data")  # from the cache, or a download that cannot happen
    assert after.proc.returncode == 1, after.describe()
    assert "could not download the SMS Spam Collection" in one_error_line(after)

    assert run_to_end(spamkit, "data", "--data", SMS_ZIP).proc.returncode == 0
    cached = run_to_end(spamkit, "data")
    assert cached.proc.returncode == 0, cached.describe()
    assert cached.out_lines[0].startswith(f"{cache / 'SMSSpamCollection'}: 5574 messages")


def test_a_kill_while_calibrate_writes_the_manifest_keeps_a_loadable_bundle(
        spamkit, tmp_path, tiny_bundle, hook_dir):
    """`spamkit calibrate` rewrites the bundle's manifest; killed with half of it written, the
    bundle still loads and answers as before, and calibrating again works."""
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    before = Classifier.load(bundle).predict_proba(MESSAGES)
    run = run_to_end(spamkit, "calibrate", bundle, "--data", SMS_FILE, "--target-precision",
                     "0.9", fault=f"torn:{bundle}:SIGKILL:1", hook=hook_dir)
    assert run.proc.returncode == -signal.SIGKILL, run.describe()

    clf = Classifier.load(bundle)  # the old manifest: every checksum verifies
    assert clf.threshold is None
    assert clf.predict_proba(MESSAGES).tolist() == before.tolist()

    again = run_to_end(spamkit, "calibrate", bundle, "--data", SMS_FILE, "--target-precision",
                       "0.9")
    assert again.proc.returncode == 0, again.describe()
    assert Classifier.load(bundle).threshold == read_manifest(bundle).threshold["value"]


def test_resume_refuses_settings_other_than_the_runs_own(spamkit, tmp_path, hook_dir):
    """Options given with --resume are never ignored: another value is refused, naming it; the
    run's own command with --resume added (as the Ctrl-C message says) continues."""
    out = tmp_path / "run"
    original = (*TRAIN, "--epochs", 2, "--out", out)
    run = run_to_end(spamkit, *original, fault="write:state.json:SIGINT:2", hook=hook_dir)
    assert run.proc.returncode == 130, run.describe()
    state = {p.name: p.read_bytes() for p in (out / "training-state").iterdir()}

    other = tmp_path / "other.tsv"
    shutil.copy(SMS_FILE, other)
    for option, value, saved in [("--epochs", 3, 2), ("--lr", 0.01, 0.0005),
                                 ("--data", other, SMS_FILE)]:
        run = run_to_end(spamkit, "train", "--resume", "--out", out, option, value)
        assert run.proc.returncode == 1, run.describe()
        line = one_error_line(run)
        assert f"{option} {value} (it has {saved})" in line, line
    assert {p.name: p.read_bytes() for p in (out / "training-state").iterdir()} == state

    resumed = run_to_end(spamkit, *original, "--resume")
    assert resumed.proc.returncode == 0, resumed.describe()
    assert_complete_checkpoint(out, 2)


def test_resume_refuses_a_data_file_changed_since_the_run_started(spamkit, tmp_path, hook_dir):
    """The run's file, edited between Ctrl-C and --resume, would be split anew: the resumed
    model would train on other messages and be tested on some it saw. Refused; restored, the
    run continues."""
    data, out = tmp_path / "sms.txt", tmp_path / "run"
    original = SMS_FILE.read_bytes()
    data.write_bytes(original)
    command = (*TRAIN[:-1], data, "--epochs", 2, "--out", out)
    run = run_to_end(spamkit, *command, fault="write:state.json:SIGINT:2", hook=hook_dir)
    assert run.proc.returncode == 130, run.describe()

    data.write_bytes(original.replace(b"Ok lar...", b"OK lar..."))
    run = run_to_end(spamkit, *command, "--resume")
    assert run.proc.returncode == 1, run.describe()
    assert "not the data file the model was trained on" in one_error_line(run)

    data.write_bytes(original)
    resumed = run_to_end(spamkit, *command, "--resume")
    assert resumed.proc.returncode == 0, resumed.describe()
    assert_complete_checkpoint(out, 2)
