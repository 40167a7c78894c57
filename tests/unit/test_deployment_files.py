"""docker/ and Kubernetes files: parsed and checked here, because docker cannot run on this machine.

What is checked is what breaks a deployment silently: unpinned images, ports that do not meet,
probes on the wrong path, a GPU limit missing, an HPA metric no adapter rule produces, a
Dockerfile that copies a path the repository does not have, an engine profile that differs from
the generated Triton config.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from fashiontag.serving.repository import ServingSettings
from tests.conftest import MODEL, ROOT

yaml = pytest.importorskip("yaml")

DOCKER = ROOT / "docker"
K8S = DOCKER / "k8s"
YAML_FILES = sorted(p for p in DOCKER.rglob("*") if p.suffix in (".yaml", ".yml"))
DOCKERFILES = sorted(DOCKER.glob("Dockerfile*"))
TRITON_PORTS = {"http": 8000, "grpc": 8001, "metrics": 8002}


def _docs(path: Path) -> list:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _k8s(kind: str) -> dict:
    found = [d for p in K8S.glob("*.yaml") for d in _docs(p) if d.get("kind") == kind]
    assert len(found) == 1, f"expected one {kind} in docker/k8s, found {len(found)}"
    return found[0]


def _compose() -> dict:
    return _docs(DOCKER / "compose.yaml")[0]


def _pinned(image: str) -> bool:
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest")


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(DOCKER)))
def test_every_yaml_file_parses(path):
    assert _docs(path), f"{path} is empty"


def test_deployment_files_exist():
    for name in ("Dockerfile", "Dockerfile.engine-builder", "compose.yaml", "README.md",
                 "prometheus/prometheus.yml", "k8s/deployment.yaml", "k8s/service.yaml",
                 "k8s/hpa.yaml", "k8s/prometheus-adapter-rules.yaml"):
        assert (DOCKER / name).is_file(), name


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def _base_image(dockerfile: Path) -> str:
    ins = _instructions(dockerfile)
    args = dict(rest.split("=", 1) for op, rest in ins if op == "ARG" and "=" in rest)
    base = next(rest for op, rest in ins if op == "FROM").split()[0]
    return re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)


def test_server_image_is_the_official_triton_image_at_a_pinned_release():
    base = _base_image(DOCKER / "Dockerfile")
    assert base.startswith("nvcr.io/nvidia/tritonserver:") and _pinned(base)
    assert re.fullmatch(r".*:\d\d\.\d\d-py3", base), base


def test_engine_builder_uses_the_same_release_as_the_server():
    """An engine must be built by the TensorRT version that serves it: same NGC release."""
    server = _base_image(DOCKER / "Dockerfile").rsplit(":", 1)[1]
    builder = _base_image(DOCKER / "Dockerfile.engine-builder")
    assert builder.startswith("nvcr.io/nvidia/tensorrt:")
    assert builder.rsplit(":", 1)[1] == server


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_copies_only_paths_that_exist(dockerfile):
    """Build context = repository root. Under artifacts/ only what `make model` writes."""
    built = str(MODEL.relative_to(ROOT))
    for op, rest in _instructions(dockerfile):
        if op != "COPY" or rest.startswith("--from"):
            continue
        *sources, _dest = shlex.split(rest)
        for src in sources:
            if src.startswith("--"):
                continue
            if src.startswith("artifacts/"):
                assert src == built, f"{dockerfile.name}: COPY {src} is not built by make model"
            else:
                assert (ROOT / src).exists(), f"{dockerfile.name}: COPY {src} does not exist"


def test_engine_builder_script_exists_and_matches_the_served_profile():
    """trtexec's profile (min/opt/max) must match the Triton config's batch sizes."""
    settings = ServingSettings(target="gpu", gpu_platform="tensorrt_plan")
    env = dict(rest.split("=", 1) for op, rest in _instructions(
        DOCKER / "Dockerfile.engine-builder") if op == "ENV" for rest in rest.split())
    assert int(env["MAX_BATCH"]) == settings.max_batch_size
    assert int(env["OPT_BATCH"]) == settings.gpu_opt_batch
    assert int(env["OPT_BATCH"]) in settings.gpu_preferred_batch_sizes()
    script = DOCKER / "engine-builder" / "build_engine.sh"
    assert "model_sm${cc/./}.plan" in script.read_text()
    compose_env = _compose()["services"]["engine-builder"]["environment"]
    assert int(compose_env["MAX_BATCH"]) == settings.max_batch_size
    init = _k8s("Deployment")["spec"]["template"]["spec"]["initContainers"][0]
    k8s_env = {e["name"]: e["value"] for e in init["env"]}
    assert int(k8s_env["MAX_BATCH"]) == settings.max_batch_size
    assert int(k8s_env["OPT_BATCH"]) == settings.gpu_opt_batch


def test_compose_runs_triton_after_the_engine_builder_with_prometheus_and_optional_grafana():
    services = _compose()["services"]
    assert {"engine-builder", "triton", "prometheus", "grafana"} <= set(services)
    triton = services["triton"]
    assert triton["depends_on"]["engine-builder"]["condition"] == \
        "service_completed_successfully"
    published = {int(p.split(":")[1]) for p in triton["ports"]}
    assert published == set(TRITON_PORTS.values())
    gpus = triton["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpus["driver"] == "nvidia" and "gpu" in gpus["capabilities"]
    assert services["grafana"]["profiles"] == ["grafana"]
    assert "profiles" not in services["prometheus"]
    for name, service in services.items():
        if "image" in service and "build" not in service:
            assert _pinned(service["image"]), f"{name}: image {service['image']} is not pinned"


def test_prometheus_scrapes_tritons_metrics_port():
    config = _docs(DOCKER / "prometheus" / "prometheus.yml")[0]
    targets = [t for job in config["scrape_configs"] for sc in job["static_configs"]
               for t in sc["targets"]]
    assert f"triton:{TRITON_PORTS['metrics']}" in targets


def test_deployment_requests_a_gpu_and_probes_tritons_health_endpoints():
    pod = _k8s("Deployment")["spec"]["template"]["spec"]
    triton = next(c for c in pod["containers"] if c["name"] == "triton")
    assert int(triton["resources"]["limits"]["nvidia.com/gpu"]) == 1
    assert int(pod["initContainers"][0]["resources"]["limits"]["nvidia.com/gpu"]) == 1
    assert triton["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert triton["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    ports = {p["name"]: p["containerPort"] for p in triton["ports"]}
    assert ports == TRITON_PORTS
    assert triton["readinessProbe"]["httpGet"]["port"] == "http"
    for container in pod["containers"] + pod["initContainers"]:
        assert _pinned(container["image"]), container["image"]
    # the engine the init container builds is the directory Triton serves the model from
    init_mount = pod["initContainers"][0]["volumeMounts"][0]
    served = next(m for m in triton["volumeMounts"] if m["name"] == init_mount["name"])
    assert served["mountPath"] == "/models/fashiontag_attributes/1"
    assert pod["terminationGracePeriodSeconds"] > 30  # tritonserver --exit-timeout-secs=30


def test_service_exposes_grpc_and_metrics_of_the_deployments_pods():
    service, deployment = _k8s("Service"), _k8s("Deployment")
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    assert ports["grpc"] == TRITON_PORTS["grpc"] and ports["metrics"] == TRITON_PORTS["metrics"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()


def test_hpa_scales_the_deployment_on_a_metric_the_adapter_rules_define():
    hpa, deployment = _k8s("HorizontalPodAutoscaler"), _k8s("Deployment")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    metric = hpa["spec"]["metrics"][0]
    assert metric["type"] == "Pods"
    name = metric["pods"]["metric"]["name"]
    assert float(metric["pods"]["target"]["averageValue"]) > 0
    rules = yaml.safe_load(_k8s("ConfigMap")["data"]["config.yaml"])["rules"]
    assert name in {r["name"]["as"] for r in rules}
    rule = next(r for r in rules if r["name"]["as"] == name)
    assert "nv_inference_queue_duration_us" in rule["metricsQuery"]


def test_network_policy_admits_only_labelled_clients_to_the_triton_pods():
    policy = _k8s("NetworkPolicy")
    pods = _k8s("Deployment")["spec"]["template"]["metadata"]["labels"]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= pods.items()
    inference, metrics = policy["spec"]["ingress"]
    assert {p["port"] for p in inference["ports"]} == {8000, 8001}
    assert inference["from"][0]["podSelector"]["matchLabels"] == {"fashiontag.io/client": "true"}
    assert [p["port"] for p in metrics["ports"]] == [8002]
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert "networkpolicy.yaml" in kustomization["resources"]
