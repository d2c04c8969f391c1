"""The container and its Kubernetes example as an operator takes them: hadolint on the
Dockerfile, deploy/kubernetes.yaml checked offline against the Kubernetes schemas
(kubernetes-validate), and what the manifest promises read from the parsed YAML: probes on
/readyz and /healthz, a non-root user, ONNX Runtime threads equal to the pod's CPUs, and a grace
period that lets the graceful stop finish."""

from __future__ import annotations

import json
import subprocess
import sysconfig
from pathlib import Path

import pytest
import typer
import yaml
from conftest import ROOT

from spamkit.cli import app

DOCKERFILE = ROOT / "Dockerfile"
MANIFEST = ROOT / "deploy" / "kubernetes.yaml"
# After SIGTERM, spamkit serve answers what is in flight within --request-timeout-s and exits
# within this much more (docs/serving.md, "Stopping").
STOP_MARGIN_S = 2
# The oldest Kubernetes the example is for: preStop's `sleep` action is on by default from 1.30.
OLDEST_KUBERNETES = "1.30.0"


def dev_tool(name: str) -> str:
    """A command of the dev extra's packages, beside this Python."""
    path = Path(sysconfig.get_path("scripts")) / name
    assert path.exists(), f'{name} is missing: pip install -e ".[dev]"'
    return str(path)


def dockerfile(instruction: str) -> str:
    """The arguments of the Dockerfile's last `instruction` line."""
    lines = [line.split(None, 1)[1] for line in DOCKERFILE.read_text().splitlines()
             if line.startswith(f"{instruction} ")]
    assert lines, f"the Dockerfile has no {instruction}"
    return lines[-1]


def resources() -> dict[str, dict]:
    """The manifest's documents by kind."""
    docs = list(yaml.safe_load_all(MANIFEST.read_text()))
    assert len({d["kind"] for d in docs}) == len(docs)
    return {d["kind"]: d for d in docs}


def pod_and_container() -> tuple[dict, dict]:
    pod = resources()["Deployment"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    return pod, container


def serve_options(container: dict) -> dict:
    """What `spamkit serve` makes of the image's ENTRYPOINT followed by the container's args."""
    entrypoint = json.loads(dockerfile("ENTRYPOINT"))
    assert entrypoint[:2] == ["spamkit", "serve"]
    command = typer.main.get_command(app).get_command(None, "serve")
    return command.make_context("serve", [*entrypoint[2:], *container["args"]]).params


def cpus(quantity: str) -> float:
    """A Kubernetes CPU quantity ("2", "1500m") in CPUs."""
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def test_hadolint_finds_nothing_to_say_about_the_dockerfile():
    result = subprocess.run([dev_tool("hadolint"), "--no-color", DOCKERFILE], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=False)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@pytest.mark.parametrize("version", [OLDEST_KUBERNETES, "newest known"])
def test_the_kubernetes_example_is_valid_against_the_kubernetes_schemas(version):
    """--strict: a misspelt field (`readinesProbe`) is an error, not a field ignored."""
    pinned = [] if version == "newest known" else ["--kubernetes-version", version]
    result = subprocess.run([dev_tool("kubernetes-validate"), "--strict", *pinned, MANIFEST],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    for kind, resource in resources().items():
        assert f" {kind.lower()}/{resource['metadata']['name']} " in result.stdout


def test_replicas_behind_a_service_are_ready_on_readyz_and_alive_on_healthz():
    deployment, service = resources()["Deployment"], resources()["Service"]
    pod, container = pod_and_container()
    assert deployment["spec"]["replicas"] >= 2
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    assert service["spec"]["selector"] == labels
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    [port] = container["ports"]
    assert port == {"name": "http", "containerPort": serve_options(container)["port"]}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}


def test_the_pod_runs_as_the_images_non_root_user_with_a_read_only_root():
    pod, container = pod_and_container()
    user, _, group = dockerfile("USER").partition(":")
    assert user.isdigit() and int(user) != 0, "a numeric USER lets the kubelet check non-root"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == \
        (int(user), int(group))
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_each_pod_runs_as_many_onnx_runtime_threads_as_it_has_whole_cpus():
    _, container = pod_and_container()
    requests, limits = container["resources"]["requests"], container["resources"]["limits"]
    assert requests == limits  # Guaranteed: the CPU manager may give the pod cores of its own
    cores = cpus(limits["cpu"])
    assert cores == int(cores) >= 1
    assert serve_options(container)["threads"] == cores


def test_the_grace_period_lets_prestop_and_the_graceful_stop_finish():
    pod, container = pod_and_container()
    wait = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    stop = serve_options(container)["request_timeout_s"] + STOP_MARGIN_S
    assert pod["terminationGracePeriodSeconds"] >= wait + stop
