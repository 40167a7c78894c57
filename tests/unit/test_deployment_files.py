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

import kubernetes_validate  # dev extra: the Kubernetes JSON schemas, bundled (offline)
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


def _k8s(kind: str, name: str | None = None) -> dict:
    found = [d for p in K8S.glob("*.yaml") for d in _docs(p) if d.get("kind") == kind
             and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''} in docker/k8s, found {len(found)}"
    return found[0]


def _engine_builder() -> dict:
    pod = _k8s("Job")["spec"]["template"]["spec"]
    return next(c for c in pod["initContainers"] if c["name"] == "engine-builder")


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
    k8s_env = {e["name"]: e["value"] for e in _engine_builder()["env"]}
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
    targets = [t for job in config["scrape_configs"] for sc in job.get("static_configs", [])
               for t in sc["targets"]]
    assert f"triton:{TRITON_PORTS['metrics']}" in targets


def test_deployment_requests_a_gpu_and_probes_tritons_health_endpoints():
    pod = _k8s("Deployment")["spec"]["template"]["spec"]
    triton = next(c for c in pod["containers"] if c["name"] == "triton")
    assert int(triton["resources"]["limits"]["nvidia.com/gpu"]) == 1
    assert int(_engine_builder()["resources"]["limits"]["nvidia.com/gpu"]) == 1
    assert triton["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert triton["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    ports = {p["name"]: p["containerPort"] for p in triton["ports"]}
    assert ports == TRITON_PORTS
    assert triton["readinessProbe"]["httpGet"]["port"] == "http"
    job = _k8s("Job")["spec"]["template"]["spec"]
    for container in pod["containers"] + job["containers"] + job["initContainers"]:
        assert _pinned(container["image"]), container["image"]
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
    adapter = _k8s("ConfigMap", "fashiontag-prometheus-adapter-rules")
    rules = yaml.safe_load(adapter["data"]["config.yaml"])["rules"]
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


# --------------------------------------------------------------- rendered, schema-validated
KUBERNETES_VERSION = "1.30"  # the oldest Kubernetes release these manifests promise to run on


def _render(**overrides) -> list[dict]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("k8s_render", K8S / "render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.render(K8S, **overrides)


def test_every_manifest_is_rendered_and_the_kustomization_lists_them_all():
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    rendered = _render()
    assert len(rendered) == sum(len(_docs(K8S / name)) for name in listed)
    deployment = next(d for d in rendered if d["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] >= 2  # the kustomization's count, not the file's


@pytest.mark.parametrize("replicas", [2, 5])
def test_rendered_manifests_validate_against_the_kubernetes_schemas(replicas):
    """Strict: an unknown or misspelt field fails, as kubectl's server-side validation would."""
    docs = _render(replicas=replicas, model_repository="gs://bucket/fashiontag",
                   namespace="ml")
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    kinds = {d["kind"]: d for d in docs}
    assert kinds["Deployment"]["spec"]["replicas"] == replicas
    assert kinds["HorizontalPodAutoscaler"]["spec"]["minReplicas"] == replicas
    store = next(d for d in docs if d["metadata"]["name"] == "fashiontag-model-store")
    assert store["data"]["MODEL_REPOSITORY"] == "gs://bucket/fashiontag"
    assert all(d["metadata"]["namespace"] == "ml" for d in docs)


def test_a_misspelt_field_fails_schema_validation():
    deployment = next(d for d in _render() if d["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def _env(container: dict) -> dict:
    return {e["name"]: e["valueFrom"]["configMapKeyRef"] for e in container["env"]
            if "valueFrom" in e}


def test_every_replica_serves_the_repository_the_job_publishes_to_object_storage():
    store = _k8s("ConfigMap", "fashiontag-model-store")
    assert store["data"]["MODEL_REPOSITORY"].startswith(("s3://", "gs://", "as://"))
    triton = _k8s("Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert "--model-repository=$(MODEL_REPOSITORY)" in triton["args"]
    assert "--model-control-mode=poll" in triton["args"]  # versions written there get loaded
    assert _env(triton)["MODEL_REPOSITORY"]["name"] == store["metadata"]["name"]
    assert "volumeMounts" not in triton or all(m["mountPath"] == "/dev/shm"
                                               for m in triton["volumeMounts"])
    job = _k8s("Job")["spec"]["template"]["spec"]
    upload = job["containers"][0]
    assert "$(MODEL_REPOSITORY)" in upload["args"]
    assert _env(upload)["MODEL_REPOSITORY"]["name"] == store["metadata"]["name"]
    # the engine is built into the published repository's version folder
    repository = next(c for c in job["initContainers"] if c["name"] == "repository")
    engine_dir = {e["name"]: e["value"] for e in _engine_builder()["env"]}["ENGINE_DIR"]
    root = repository["volumeMounts"][0]["mountPath"]
    assert engine_dir == f"{root}/fashiontag_attributes/1"
    assert upload["volumeMounts"][0]["mountPath"] == root


def test_clients_balance_per_request_over_a_headless_service():
    """A ClusterIP pins each gRPC connection to one pod; a headless name resolves to all of
    them (the client's round_robin: tests/unit/test_client_balancing.py), and a maximum
    connection age makes connected clients re-resolve and find replicas added since."""
    service = _k8s("Service")
    assert service["spec"]["clusterIP"] == "None"
    triton = _k8s("Deployment")["spec"]["template"]["spec"]["containers"][0]
    age = next(a for a in triton["args"] if a.startswith("--grpc-max-connection-age="))
    assert 0 < int(age.split("=")[1]) <= 300_000
    assert any(a.startswith("--grpc-max-connection-age-grace=") for a in triton["args"])
