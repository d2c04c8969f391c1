"""`spamkit score --engine ray`: the same file the local engine writes, from Ray Data actors.

One local Ray cluster serves the module (starting one takes several seconds on 2 cores); the
CLI joins it with --address, as it would join a cluster of many machines. Ray must be
installed (`make setup` installs the `ray` extra), so these tests are never skipped in CI.
"""

from __future__ import annotations

import json
import os

import pytest
import ray
from conftest import SCORE_FP32, spamkit_cli

from spamkit.jobs.score import run_identity
from spamkit.records import Source
from spamkit.runtime.bundle import open_manifest

pytestmark = pytest.mark.slow  # `make test-slow`

RAY = ("--engine", "ray", "--actors", "2", "--batch-size", "512")


@pytest.fixture(scope="module")
def cluster():
    """A Ray cluster on this machine, started by this process and stopped with the module.
    Ray turns on token authentication for it (the token lands in ~/.ray/auth_token); a
    driver joining with --address sends the token when RAY_AUTH_MODE=token."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    env = {"RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "token")}
    yield ray.get_runtime_context().gcs_address, env
    ray.shutdown()


def test_ray_writes_the_local_engines_file(tmp_path, tiny_bundle, sms_20k, sms_20k_scored,
                                           cluster):
    address, env = cluster
    out = tmp_path / "scores.csv"

    result = spamkit_cli("score", tiny_bundle, sms_20k, "--out", out, *RAY, "--address", address,
                         *SCORE_FP32, env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"20000 messages scored into {out}\n"
    assert out.read_bytes() == sms_20k_scored.read_bytes()
    assert not out.with_name("scores.csv.partial").exists()


def test_ray_resumes_a_partial_file(tmp_path, tiny_bundle, sms_20k, sms_20k_scored, cluster):
    """A run stopped after 15,000 rows and in the middle of the next one, continued on Ray:
    reading starts inside a piece of the input, after the last complete row."""
    address, env = cluster
    out = tmp_path / "scores.csv"
    rows = sms_20k_scored.read_bytes().split(b"\r\n")  # the header, then one row per message
    out.with_name("scores.csv.partial").write_bytes(b"\r\n".join(rows[:15_001]) + b"\r\n15001,s")
    # What that run recorded when it started: --resume continues only the same run.
    record = run_identity(open_manifest(tiny_bundle)[1], Source.of(sms_20k), "fp32")
    out.with_name("scores.csv.partial.json").write_text(json.dumps(record))

    result = spamkit_cli("score", tiny_bundle, sms_20k, "--out", out, *RAY, "--address", address,
                         *SCORE_FP32, "--resume", env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"resuming {out} after 15000 of 20000 messages\n")
    assert out.read_bytes() == sms_20k_scored.read_bytes()


def test_without_an_address_the_command_starts_and_stops_its_own_ray(tmp_path, tiny_bundle,
                                                                    sms_20k, sms_20k_scored):
    head = tmp_path / "head.txt"
    head.write_bytes(b"".join(sms_20k.read_bytes().splitlines(keepends=True)[:300]))
    out = tmp_path / "scores.csv"

    result = spamkit_cli("score", tiny_bundle, head, "--out", out, "--engine", "ray",
                         "--batch-size", "64", *SCORE_FP32)

    assert result.returncode == 0, result.stderr
    expected = sms_20k_scored.read_bytes().split(b"\r\n")[:301]
    assert out.read_bytes() == b"\r\n".join(expected) + b"\r\n"
