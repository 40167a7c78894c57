"""Few-shot attributes end to end against a real tritonserver in explicit model-control mode.

A labelled set of real Fashion-MNIST photos (written as PNG files, a folder per value) is turned
into a new attribute by the ``fashiontag fewshot`` CLI, hot-loaded into the running server while
a client keeps tagging, rolled back and forward; no request may fail and every response must carry
the labels of the model version that computed it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from fashiontag.artifacts import SOURCE_REPOSITORY, Artifacts
from fashiontag.client import TagClient
from fashiontag.colour.palette import by_name
from fashiontag.images import encode_png
from fashiontag.model.datasets import fashion_mnist
from fashiontag.onnxio.metadata import read_metadata
from fashiontag.serving.server import TritonServer
from tests.conftest import LAYOUT, ROOT, SAMPLES
from tests.functional.conftest import free_port_config

NAME = "footwear"
VALUES = {"sandal": 5, "sneaker": 7, "boot": 9}  # folder name → Fashion-MNIST class
PER_VALUE = 12


#: the operator's key the explicit-mode server locks model control with; the CLI reads it from
#: $FASHIONTAG_ADMIN_KEY
ADMIN_KEY = "fewshot-test-operator-key-0123456789"


def _fashiontag(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "FASHIONTAG_ADMIN_KEY": ADMIN_KEY}
    return subprocess.run([sys.executable, "-m", "fashiontag", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env=env)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, built_model):
    """Labelled + unlabelled real photos, a private copy of the artifacts and the repository."""
    root = tmp_path_factory.mktemp("fewshot")
    images, labels = fashion_mnist.load("train")
    rng = np.random.default_rng(5)
    for value, cls in VALUES.items():
        picks = rng.choice(np.flatnonzero(labels == cls), PER_VALUE + 4, replace=False)
        for i, index in enumerate(picks):
            folder = root / ("images" / Path(value) if i < PER_VALUE else Path("pool"))
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{value}-{index}.png").write_bytes(encode_png(
                np.repeat(255 - images[index][:, :, None], 3, axis=2)))
    LAYOUT.working_copy(root / "artifacts")  # features are computed fresh
    repository = root / "repository"
    shutil.copytree(SOURCE_REPOSITORY, repository,
                    ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.fixture(scope="module")
def explicit_server(workspace, tmp_path_factory):
    server = TritonServer(free_port_config(workspace / "repository", model_control="explicit",
                                           admin_key=ADMIN_KEY,
                                           log_path=workspace / "server.log"))
    server.start()
    yield server
    server.stop()
    assert not server.is_running()
    assert not list(Path("/dev/shm").glob(f"{server.shm_prefix}*")), "shared memory left behind"


class Load:
    """A client tagging real images in a loop (8 in flight) until stopped."""

    def __init__(self, url: str) -> None:
        self.url, self.results = url, []
        self.images = sorted((SAMPLES / "clothing").glob("*.jpg")) + \
            sorted((SAMPLES / "photos").glob("*.jpg"))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with TagClient(self.url, timeout_s=120) as client:
            while not self._stop.is_set():
                for result in client.tag_many(self.images, concurrency=8):
                    self.results.append(result)

    def mark(self, more: int = 16, timeout_s: float = 120) -> int:
        """Current result count, after waiting for ``more`` further results to arrive."""
        start, deadline = len(self.results), time.monotonic() + timeout_s
        while len(self.results) < start + more and time.monotonic() < deadline:
            time.sleep(0.05)
        return start

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=300)

    @property
    def failures(self) -> list[str]:
        return [f"{r.error_type}: {r.error}" for r in self.results if not r.ok]

    def with_attribute(self) -> list[bool]:
        return [NAME in r.attributes for r in self.results if r.ok]


def test_fewshot_add_trains_exports_and_hot_loads_with_no_failed_request(workspace,
                                                                         explicit_server):
    repository, artifacts = workspace / "repository", workspace / "artifacts"
    with Load(explicit_server.grpc_url) as load:
        done = _fashiontag("fewshot", "add", NAME, "--images", str(workspace / "images"),
                           "--serve-url", explicit_server.grpc_url, "--artifacts",
                           str(artifacts), "--repository", str(repository))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cross-validated accuracy by head kind: logistic" in done.stdout
    assert "confusion matrix" in done.stdout and "model version 2 loaded" in done.stdout
    assert load.failures == [] and len(load.results) > 0
    seen = load.with_attribute()
    assert seen[-1], "the new version never answered during the run"

    report = json.loads((Artifacts(artifacts).fewshot(NAME) / "report.json").read_text())
    # well above chance (1/3) and the refusal rule's chance + 0.10; 28-px grey Fashion-MNIST
    # footwear is far from the catalog photos the backbone was tuned on (0.75-0.83 measured)
    assert report["values"] == sorted(VALUES) and report["cv_accuracy"] >= 0.6
    assert np.array(report["confusion"]).sum() == PER_VALUE * len(VALUES)
    meta = read_metadata(repository / "fashiontag_attributes" / "2" / "model.onnx")
    assert meta.taxonomy[NAME].source == "fewshot" and meta.info["fewshot"][NAME]["kind"]
    assert read_metadata(Artifacts(artifacts).model()).taxonomy == meta.taxonomy

    with TagClient(explicit_server.grpc_url) as client:
        boots = sorted((workspace / "images" / "boot").glob("*.png"))
        answers = [client.tag(p.read_bytes())[NAME].value for p in boots]
    assert answers.count("boot") >= len(boots) - 1  # training images: near perfect


def test_jsonl_output_carries_the_new_attribute_without_code_changes(workspace, explicit_server):
    image = sorted((workspace / "images" / "sneaker").glob("*.png"))[0]
    done = _fashiontag("tag", str(image), "--url", explicit_server.grpc_url, "--strict")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout.splitlines()[0])
    assert record["attributes"][NAME]["value"] in VALUES
    assert len(record["attributes"]["colour"]["top"]) == 3


def test_the_json_ensemble_labels_a_hot_loaded_version_with_its_own_taxonomy(workspace,
                                                                              explicit_server):
    """fashiontag's postprocess was loaded before the few-shot version existed."""
    from tritonclient.grpc import InferenceServerClient, InferInput, InferRequestedOutput

    from fashiontag.protocol import ATTRIBUTES_JSON, ENSEMBLE_MODEL, IMAGE

    image = sorted((workspace / "images" / "sneaker").glob("*.png"))[0].read_bytes()
    tensor = InferInput(IMAGE, [1, 1], "BYTES")
    tensor.set_data_from_numpy(np.array([[image]], dtype=np.object_))
    with InferenceServerClient(explicit_server.grpc_url) as raw:
        result = raw.infer(ENSEMBLE_MODEL, [tensor],
                           outputs=[InferRequestedOutput(ATTRIBUTES_JSON)])
    labelled = json.loads(result.as_numpy(ATTRIBUTES_JSON)[0, 0])
    with TagClient(explicit_server.grpc_url) as client:
        expected = client.tag(image).to_dict()
    assert NAME in expected and labelled == expected


def test_rollback_and_activate_switch_versions_live_with_no_failed_request(workspace,
                                                                           explicit_server):
    repository = str(workspace / "repository")
    with Load(explicit_server.grpc_url) as load:
        load.mark()
        back = _fashiontag("fewshot", "rollback", "--serve-url", explicit_server.grpc_url,
                           "--repository", repository)
        after_back = load.mark(24)
        forward = _fashiontag("fewshot", "activate", "2", "--serve-url",
                              explicit_server.grpc_url, "--repository", repository)
        after_forward = load.mark(24)
    assert back.returncode == 0 and "version 2 → 1" in back.stdout, back.stderr
    assert forward.returncode == 0 and "version 1 → 2" in forward.stdout, forward.stderr
    assert load.failures == []
    seen = load.with_attribute()
    # once the (at most 8) requests in flight at a switch are answered, all follow the switch
    assert not any(seen[after_back + 8:after_back + 24]), "rollback did not take effect"
    assert all(seen[after_forward + 8:after_forward + 24]), "activate did not take effect"
    listing = _fashiontag("fewshot", "versions", "--repository", repository).stdout
    assert "*   2" in listing and NAME in listing


def test_suggest_ranks_unlabelled_images_by_uncertainty_and_labels_export(workspace, tmp_path):
    artifacts = str(workspace / "artifacts")
    out = tmp_path / "next.csv"
    done = _fashiontag("fewshot", "suggest", NAME, "--pool", str(workspace / "pool"),
                       "--count", "5", "--artifacts", artifacts, "--out", str(out))
    assert done.returncode == 0, done.stderr
    rows = [line.split(",") for line in out.read_text().splitlines()[1:]]
    assert len(rows) == 5 and all(r[1] == "" and r[2] in VALUES for r in rows)
    entropies = [float(r[4]) for r in rows]
    assert entropies == sorted(entropies, reverse=True)
    labels = tmp_path / "labels.csv"
    assert _fashiontag("fewshot", "labels", NAME, "--artifacts", artifacts, "--out",
                       str(labels)).returncode == 0
    assert len(labels.read_text().splitlines()) == 1 + PER_VALUE * len(VALUES)


def test_a_retrained_backbone_gets_the_few_shot_attribute_refitted_from_its_labels(workspace,
                                                                                  tmp_path):
    """Retraining drops few-shot heads (their features changed); the build refits them from
    the labels ``fewshot add`` recorded."""
    from fashiontag.fewshot.add import refit_attributes
    from fashiontag.model.heads import fewshot_attributes, load_heads, save_heads

    source = Artifacts(workspace / "artifacts")
    copy = source.working_copy(tmp_path / "artifacts")
    shutil.copytree(source.fewshot(NAME), copy.fewshot(NAME))
    attribute = fewshot_attributes(copy.heads)[0]
    taxonomy, heads = load_heads(copy.heads)
    before = heads.pop(NAME)
    save_heads(copy.heads, taxonomy.subset([n for n in taxonomy.names if n != NAME]), heads)
    assert fewshot_attributes(copy.heads) == []
    assert refit_attributes(copy, [attribute, attribute.__class__(
        "lost", ("a", "b"), source="fewshot")]) == [NAME]  # "lost" has no labels: left out
    taxonomy, heads = load_heads(copy.heads)
    assert taxonomy[NAME] == attribute and "lost" not in taxonomy
    state, again = before.state_dict(), heads[NAME].state_dict()
    assert all(np.allclose(state[k], again[k], atol=1e-4) for k in state)  # same backbone


def test_hot_load_is_refused_clearly_when_model_control_is_off(server, workspace):
    """The session server runs with model control disabled (the default)."""
    repository = workspace / "repository"
    config_before = (repository / "fashiontag_attributes" / "config.pbtxt").read_text()
    done = _fashiontag("fewshot", "activate", "1", "--serve-url", server.grpc_url,
                       "--repository", str(repository))
    assert done.returncode == 2 and "--model-control explicit" in done.stderr, done.stderr
    assert (repository / "fashiontag_attributes" / "config.pbtxt").read_text() == config_before


def test_fewshot_add_fails_fast_against_a_server_without_model_control(server, workspace):
    repository = workspace / "repository"
    before = sorted(p.name for p in (repository / "fashiontag_attributes").iterdir())
    done = _fashiontag("fewshot", "add", "other", "--images", str(workspace / "images"),
                       "--serve-url", server.grpc_url, "--artifacts",
                       str(workspace / "artifacts"), "--repository", str(repository))
    assert done.returncode == 2 and "--model-control explicit" in done.stderr, done.stderr
    assert "cross-validated" not in done.stdout  # refused before any training
    assert sorted(p.name for p in (repository / "fashiontag_attributes").iterdir()) == before


def _garment_jpeg(colour, background) -> bytes:
    import cv2

    from fashiontag.images import encode_jpeg

    img = np.full((480, 360, 3), background, np.uint8)
    cv2.ellipse(img, (180, 250), (110, 170), 0, 0, 360, colour, -1)
    return encode_jpeg(img, quality=95)


@pytest.mark.parametrize("name, background", [("Navy", (255, 255, 255)),
                                              ("Red", (235, 235, 235)),
                                              ("Mustard", (40, 40, 40)),
                                              ("Emerald", (245, 240, 225))])
def test_served_colour_names_synthetic_garments_on_plain_backgrounds(client, name, background):
    colour = client.tag(_garment_jpeg(by_name(name).rgb, background))["colour"]
    assert colour.value == name and len(colour.top) == 3


def test_served_colour_of_real_photos_ignores_the_backdrop(client, sample_photos):
    photos = {p.stem: p for p in sample_photos}
    hopper = client.tag(photos["grace_hopper"].read_bytes())["colour"]
    assert hopper.value == "Black"  # navy uniform, photographed almost black; blue backdrop
    astronaut = client.tag(photos["astronaut"].read_bytes())["colour"]
    assert any(by_name(value).family == "orange" for value, _ in astronaut.top)  # orange suit
