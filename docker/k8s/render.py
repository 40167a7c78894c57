"""Render docker/k8s the way ``kubectl apply -k`` would, without kustomize: the resources the
kustomization lists, its image tags and replica counts applied, plus the overrides an operator
sets per cluster (replicas, model repository URL, namespace). ``make test`` validates what this
renders against the Kubernetes schemas (tests/unit/test_deployment_files.py).

    python docker/k8s/render.py --replicas 3 --model-repository s3://bucket/repo > fashiontag.yaml

Implements only the kustomization fields used here (resources, images, replicas) and refuses
any other, so the two cannot silently disagree.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
SUPPORTED = {"apiVersion", "kind", "resources", "images", "replicas"}
MODEL_STORE = "fashiontag-model-store"  # the ConfigMap naming the model repository


class RenderError(ValueError):
    """The kustomization or an override cannot be rendered."""


def _pod_spec(doc: dict) -> dict | None:
    template = doc.get("spec", {}).get("template")
    return template.get("spec") if template else None


def _set_images(doc: dict, images: list[dict]) -> None:
    pod = _pod_spec(doc)
    if pod is None:
        return
    for container in pod.get("containers", []) + pod.get("initContainers", []):
        name, _, _ = container["image"].rpartition(":")
        for image in images:
            if image["name"] == name:
                container["image"] = f"{image.get('newName', name)}:{image['newTag']}"


def render(directory: Path = HERE, replicas: int | None = None,
           model_repository: str | None = None, namespace: str | None = None) -> list[dict]:
    """The documents ``kubectl apply -k directory`` would send, with the given overrides."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - SUPPORTED
    if unknown:
        raise RenderError(f"kustomization fields this renderer does not implement: {unknown}")
    if replicas is not None and replicas < 1:
        raise RenderError(f"replicas must be at least 1, got {replicas}")
    counts = {r["name"]: r["count"] for r in kustomization.get("replicas", [])}
    docs = []
    for resource in kustomization["resources"]:
        path = directory / resource
        if not path.is_file():
            raise RenderError(f"kustomization lists {resource}, which does not exist")
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is None:
                continue
            doc = copy.deepcopy(doc)
            name = doc["metadata"]["name"]
            _set_images(doc, kustomization.get("images", []))
            if doc["kind"] == "Deployment":
                count = replicas if replicas is not None else counts.get(name)
                if count is not None:
                    doc["spec"]["replicas"] = count
            if doc["kind"] == "HorizontalPodAutoscaler" and replicas is not None:
                spec = doc["spec"]
                spec["minReplicas"] = replicas
                spec["maxReplicas"] = max(spec["maxReplicas"], replicas)
            if doc["kind"] == "ConfigMap" and name == MODEL_STORE and model_repository:
                doc["data"]["MODEL_REPOSITORY"] = model_repository
            if namespace:
                doc["metadata"]["namespace"] = namespace
            docs.append(doc)
    return docs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, help="Deployment replicas (and HPA minimum)")
    parser.add_argument("--model-repository", help="s3:// (or gs://) URL of the repository")
    parser.add_argument("--namespace")
    args = parser.parse_args(argv)
    try:
        docs = render(HERE, args.replicas, args.model_repository, args.namespace)
    except (RenderError, OSError, yaml.YAMLError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    yaml.safe_dump_all(docs, sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
