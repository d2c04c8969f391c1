"""`spamkit train --threads`: PyTorch's CPU threads in each training process, said in the run's
opening line. By default $OMP_NUM_THREADS when set, else the CPUs this process may use, shared
among the `--nproc` processes; it is where the run runs, not what it computes, so `--resume`
may change it. Every run here is a real `spamkit train` of the tiny preset."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SMS_FILE

pytestmark = pytest.mark.slow  # `make test-slow`

TINY = ("--preset", "tiny", "--no-compile", "--device", "cpu", "--precision", "fp32",
        "--data", SMS_FILE)
SHORT = ("--epochs", "1", "--max-steps", "2")


def user_env(omp: str | None) -> dict:
    """This environment, with OMP_NUM_THREADS set to `omp` (or unset), and a pipe's buffering."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "PYTHONUNBUFFERED")}
    return {**env, **({"OMP_NUM_THREADS": omp} if omp else {})}


def spamkit_train(*args: object, omp: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spamkit", "train", *map(str, args)],
                          capture_output=True, text=True, timeout=600, env=user_env(omp),
                          check=False)


def opening_line(stdout: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith("training "))


@pytest.mark.parametrize("args, omp, said", [
    (("--threads", "1"), "2", ", 1 CPU thread, "),
    ((), "3", ", 3 CPU threads, "),
], ids=["--threads", "OMP_NUM_THREADS"])
def test_train_runs_torch_on_the_threads_asked_for(tmp_path, args, omp, said):
    out = tmp_path / "ckpt"

    result = spamkit_train(*TINY, *SHORT, "--out", out, *args, omp=omp)

    assert result.returncode == 0, result.stderr
    assert said in opening_line(result.stdout)
    assert (out / "model.safetensors").is_file()
    assert "threads" not in (out / "config.json").read_text()  # not part of the recipe


def test_under_nproc_each_process_gets_its_share_of_the_cpus(tmp_path):
    share = max(1, len(os.sched_getaffinity(0)) // 2)

    result = spamkit_train(*TINY, *SHORT, "--nproc", "2", "--out", tmp_path / "ckpt")

    assert result.returncode == 0, result.stderr
    line = opening_line(result.stdout)
    assert f", {share} CPU thread{'s' if share > 1 else ''} per process, " in line, line
    assert line.endswith(", 2 processes")
    assert "OMP_NUM_THREADS" not in result.stderr  # torchrun's notice: it was set for it


class Training:
    """A `spamkit train` in the background, stopped with Ctrl-C once it has started training."""

    def __init__(self, *args: object) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "spamkit", "train", *map(str, args)], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=user_env("1"),
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def interrupt_once_training(self) -> str:
        """The opening line, once printed; then Ctrl-C, and the run's exit status checked."""
        for line in self.proc.stdout:
            if line.startswith("training "):
                self.proc.send_signal(signal.SIGINT)
                break
        else:
            line = ""
        _, err = self.proc.communicate(timeout=300)
        assert self.proc.returncode == 130, err
        return line


def test_resume_may_run_on_other_threads(tmp_path):
    out: Path = tmp_path / "run"
    started = Training(*TINY, "--epochs", "50", "--threads", "2", "--out", out)
    assert ", 2 CPU threads, " in started.interrupt_once_training()
    assert (out / "training-state").is_dir()

    resumed = Training(*TINY, "--epochs", "50", "--threads", "1", "--out", out, "--resume")

    assert ", 1 CPU thread, " in resumed.interrupt_once_training()
