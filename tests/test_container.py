"""The Dockerfile built and run as a user would run it: ready on /readyz, the Classifier's
answers, a non-root user on a read-only root filesystem, exit 0 on `stop` (SIGTERM). Needs
docker or podman that can run the base image, and the network for PyPI. Where no registry can
be pulled from, tests/container/debian_base.sh makes a base image from Debian's packages and
SPAMKIT_TEST_BASE_IMAGE names it (.ci/run does both)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import time

import pytest
from conftest import ROOT, SMS_FILE

from spamkit.data import read_messages
from spamkit.runtime import Classifier

pytestmark = pytest.mark.slow  # `make test-slow`

BASE_IMAGE = os.environ.get("SPAMKIT_TEST_BASE_IMAGE", "python:3.12-slim")
IMAGE = "localhost/spamkit-serve-test"
# podman's settings for this test (the machines' limits); docker ignores it.
CONTAINERS_CONF = ROOT / "tests" / "container" / "containers.conf"
DEBIAN_PACKAGES = "podman runc debootstrap"


def engine(name: str, *args: object, timeout: float = 120,
           check: bool = True) -> subprocess.CompletedProcess:
    """`name args`, run; with check, a failure shows the command and the end of its stderr."""
    command = [name, *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                            check=False,
                            env=os.environ | {"CONTAINERS_CONF": str(CONTAINERS_CONF)})
    assert not check or result.returncode == 0, f"{command}: {result.stderr[-3000:]}"
    return result


def last_line(text: str) -> str:
    return (text.strip().splitlines() or ["(nothing on stderr)"])[-1]


def working_engine() -> tuple[str | None, str]:
    """docker or podman where it runs the base image (pulled if need be), else None and why."""
    why = (f"needs docker or podman (Debian: {DEBIAN_PACKAGES}) that runs {BASE_IMAGE} "
           "(SPAMKIT_TEST_BASE_IMAGE; tests/container/debian_base.sh makes one)")
    for name in ("docker", "podman"):
        if shutil.which(name) is None:
            continue
        if engine(name, "image", "inspect", BASE_IMAGE, check=False).returncode != 0:
            pulled = engine(name, "pull", BASE_IMAGE, check=False, timeout=600)
            if pulled.returncode != 0:
                why += f"; {name} pull: {last_line(pulled.stderr)}"
                continue
        ran = engine(name, "run", "--rm", BASE_IMAGE, "true", check=False)
        if ran.returncode == 0:
            return name, ""
        why += f"; {name} run: {last_line(ran.stderr)}"
    return None, why


def wait_ready(name: str, container: str, port: int) -> None:
    """Until /readyz answers 200, as a readiness probe waits; fail with the logs after 180 s."""
    deadline = time.monotonic() + 180
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, engine(name, "logs", container).stderr
        time.sleep(1)


@pytest.mark.container
def test_the_image_serves_a_mounted_bundle_and_stops_cleanly(tiny_bundle, capsys):
    name, why = working_engine()
    if name is None:
        pytest.skip(why)
    keep_healthcheck = ["--format", "docker"] if name == "podman" else []  # OCI has none
    engine(name, "build", *keep_healthcheck, "--network", "host", "--build-arg",
           f"BASE_IMAGE={BASE_IMAGE}", "-t", IMAGE, ROOT, timeout=1200)
    size = int(engine(name, "image", "inspect", "-f", "{{.Size}}", IMAGE).stdout)
    with capsys.disabled():
        print(f"\n{IMAGE} (FROM {BASE_IMAGE}, {name}): {size / 1e6:.0f} MB")
    container = f"spamkit-serve-test-{os.getpid()}"
    engine(name, "run", "-d", "--read-only", "--name", container, "-p", "127.0.0.1::8000",
           "-v", f"{tiny_bundle}:/bundle:ro", IMAGE)
    try:
        port = int(engine(name, "port", container, "8000").stdout.split(":")[-1])
        wait_ready(name, container, port)
        texts = read_messages(SMS_FILE)[0][:5]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/v1/classify", json.dumps({"texts": texts}),
                     {"Content-Type": "application/json"})
        answer = json.loads(conn.getresponse().read())
        assert [a["label"] for a in answer["results"]] == Classifier.load(tiny_bundle).predict(
            texts)
        assert engine(name, "exec", container, "id", "-u").stdout.strip() == "10001"
        engine(name, "stop", container, timeout=60)
        assert engine(name, "inspect", "-f", "{{.State.ExitCode}}", container).stdout.strip() \
            == "0", engine(name, "logs", container).stderr
    finally:
        engine(name, "rm", "-f", container, check=False)
