"""The deployment files say what the processes need: probes on grpc.health.v1, grace
periods longer than the processes' own, non-root, resource requests, secrets only by
reference — and every command line in them is one the real `batchyard` parser accepts.

The Kubernetes base is rendered offline with `kubectl kustomize` (no cluster is used);
the image and compose files are read as written (no registry is reachable to build or
pull images here)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from batchyard.client.cli.main import build_parser
from batchyard.config import parse_duration

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SECRET_NAMES = re.compile(r"TOKEN|SECRET|PASSWORD|DATABASE_URL|DSN|SQL_TARGET")


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        if os.environ.get("CI") == "true":
            pytest.fail("kubectl is needed to render deploy/k8s in CI")
        pytest.skip("kubectl not installed: the Kubernetes manifests are not rendered")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY / "k8s" / "base")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def flag_value(args: list[str], flag: str) -> str:
    for i, arg in enumerate(args):
        if arg == flag:
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{flag} not in {args}")


def parses(args: list[str]) -> None:
    """The real parser takes the command line (argparse exits on an unknown flag)."""
    parsed = build_parser().parse_args(args)
    assert getattr(parsed, "handler", None) is not None, args


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def test_server_has_grpc_health_probes_on_its_port(manifests: list[dict[str, Any]]) -> None:
    server = one(manifests, "Deployment", "batchyard-server")
    main = container(server)
    parses(main["args"])
    port = int(flag_value(main["args"], "--listen").rsplit(":", 1)[1])
    assert port in [p["containerPort"] for p in main["ports"]]
    for probe in ("readinessProbe", "livenessProbe"):
        assert main[probe]["grpc"]["port"] == port, probe
    assert server["spec"]["replicas"] >= 2
    assert server["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_server_pods_have_a_disruption_budget(manifests: list[dict[str, Any]]) -> None:
    server = one(manifests, "Deployment", "batchyard-server")
    budget = one(manifests, "PodDisruptionBudget", "batchyard-server")
    labels = server["spec"]["template"]["metadata"]["labels"]
    selector = budget["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()
    assert 1 <= budget["spec"]["minAvailable"] < server["spec"]["replicas"]
    service = one(manifests, "Service", "batchyard-server")
    assert service["spec"]["selector"].items() <= labels.items()


def test_termination_grace_exceeds_the_processes_grace(manifests: list[dict[str, Any]]) -> None:
    worker = one(manifests, "Deployment", "batchyard-worker")
    args = container(worker)["args"]
    parses(args)
    needed = parse_duration(flag_value(args, "--grace")) + parse_duration(
        flag_value(args, "--kill-grace")
    )
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > needed
    server = one(manifests, "Deployment", "batchyard-server")
    server_grace = parse_duration(flag_value(container(server)["args"], "--grace"))
    assert server["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > server_grace


@pytest.mark.parametrize("name", ["batchyard-server", "batchyard-worker"])
def test_pods_are_unprivileged_with_requests(manifests: list[dict[str, Any]], name: str) -> None:
    pod = one(manifests, "Deployment", name)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    main = container({"spec": {"template": {"spec": pod}}})
    assert {"cpu", "memory"} <= main["resources"]["requests"].keys()
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    assert main["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_secrets_are_only_referenced(manifests: list[dict[str, Any]]) -> None:
    for doc in manifests:
        if doc["kind"] == "ConfigMap":
            assert not any(SECRET_NAMES.search(key) for key in doc["data"])
        if doc["kind"] != "Deployment":
            continue
        for entry in container(doc).get("env", []):
            if SECRET_NAMES.search(entry["name"]):
                assert "secretKeyRef" in entry["valueFrom"], entry["name"]


def test_image_is_multi_stage_non_root_with_one_entrypoint() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+(?: AS (\w+))?", text, flags=re.MULTILINE)
    assert len(stages) >= 2
    final = text.rsplit("\nFROM ", 1)[1]
    user = re.search(r"^USER (\d+)", final, flags=re.MULTILINE)
    assert user is not None and int(user.group(1)) != 0
    assert 'ENTRYPOINT ["batchyard"]' in final
    assert "uv sync --frozen --no-dev" in text
    cmd = re.search(r"^CMD (\[.*\])", final, flags=re.MULTILINE)
    assert cmd is not None
    parses(yaml.safe_load(cmd.group(1)))


def test_compose_waits_for_health_and_outlasts_the_worker_grace() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "server", "init", "worker"} <= services.keys()
    parses(services["server"]["command"])
    assert "healthcheck" in services["server"]
    assert services["init"]["depends_on"]["server"]["condition"] == "service_healthy"
    script = services["worker"]["command"][0]
    args = script.split("exec batchyard ", 1)[1].replace("\\\n", " ").split()
    parses(args)
    grace = parse_duration(flag_value(args, "--grace"))
    assert parse_duration(services["worker"]["stop_grace_period"]) > grace
    for service in services.values():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), port


def test_autoscaling_example_scales_workers_on_the_pending_depth() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        if os.environ.get("CI") == "true":
            pytest.fail("kubectl is needed to render deploy/k8s in CI")
        pytest.skip("kubectl not installed: the Kubernetes manifests are not rendered")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY / "k8s" / "autoscaling")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    docs = [doc for doc in yaml.safe_load_all(rendered) if doc]
    scaled = one(docs, "ScaledObject", "batchyard-worker")
    one(docs, "Deployment", scaled["spec"]["scaleTargetRef"]["name"])
    [trigger] = scaled["spec"]["triggers"]
    assert "batchyard_queue_pending_runs" in trigger["metadata"]["query"]
    from batchyard.server.metrics import server_metrics

    source = Path(server_metrics.__file__).read_text()
    assert '"batchyard_queue_pending_runs"' in source  # a metric the server exports
    server = one(docs, "Deployment", "batchyard-server")["spec"]["template"]
    [main] = server["spec"]["containers"]
    parses(main["args"])
    port = flag_value(main["args"], "--http-listen").rsplit(":", 1)[1]
    assert server["metadata"]["annotations"]["prometheus.io/port"] == port
    assert {"name": "http", "containerPort": int(port)} in main["ports"]
