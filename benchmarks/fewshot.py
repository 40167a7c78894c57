"""Few-shot attributes: accuracy vs the logistic-regression baseline, time to model, reload.

1. Accuracy (no server). Fashion-MNIST, k = 1/5/10/30 labelled images per class, 10 random draws
   each, scored on the full 10,000-image test set, side by side in one run:
   - baseline: multinomial logistic regression (L2, C=1, L-BFGS) on raw EfficientNet-Lite0
     features of the labelled images (the reference numbers: 0.535 / 0.732 / 0.780 at 1/5/10);
   - fewshot: what ``fashiontag fewshot add`` does (mirror views, prototype / logistic / linear
     heads picked by cross-validation; logistic when there is one image per class);
   - fewshot + pool: the same with an unlabelled pool (other Fashion-MNIST *training* images, never
     test images) for feature centring and label propagation. Semi-supervised, not transductive:
     the served head still scores each test image on its own.
2. Time to model: ``fashiontag fewshot add`` (a subprocess, 30 images per value, features not
   cached) against a running server in explicit model-control mode, from launch until the new
   version answers a client; with a client tagging at concurrency 8 all along, then a rollback.
   Failed requests are counted (the goal is zero).

    python benchmarks/fewshot.py                  # full: ~30-45 min on 2 busy cores
    python benchmarks/fewshot.py --skip-accuracy  # time to model + reload only (~2 min)
    python benchmarks/fewshot.py --smoke          # ~2 min; run by the test suite
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from fashiontag.artifacts import (  # noqa: E402
    SAMPLES_DIR,
    SOURCE_REPOSITORY,
    Artifacts,
    checkout_artifacts,
)
from fashiontag.fewshot.features import image_views  # noqa: E402
from fashiontag.fewshot.heads import (  # noqa: E402
    fewshot_probabilities,
    fit_logistic,
    select_fewshot_head,
)
from fashiontag.images import DEFAULT_SPEC, encode_png  # noqa: E402
from fashiontag.model.datasets import fashion_mnist  # noqa: E402
from fashiontag.model.heads import single_thread  # noqa: E402

ARTIFACTS = checkout_artifacts()

VIEWS = ("original", "flip")
REFERENCE_BASELINE = {1: 0.535, 5: 0.732, 10: 0.780}


class _LazyExtractor:
    """The served (fine-tuned) backbone as ONNX, opened only if some features are not cached."""

    def __init__(self, artifacts: Artifacts) -> None:
        self.artifacts, self._extractor = artifacts, None

    def __call__(self, tiles: np.ndarray) -> np.ndarray:
        if self._extractor is None:
            from fashiontag.model.features import feature_extractor

            self._extractor = feature_extractor(self.artifacts.cache, self.artifacts.backbone)
        return self._extractor(tiles)

    def over(self, chunks) -> np.ndarray:
        return np.concatenate([self(c) for c in chunks])


def _features(extractor: _LazyExtractor, split: str, index: np.ndarray | None, view: str
              ) -> tuple[np.ndarray, np.ndarray]:
    """Features of Fashion-MNIST ``split`` (rows ``index``) in one view, cached per backbone."""
    from fashiontag.model.backbone import backbone_fingerprint
    from fashiontag.model.features import cached_arrays

    images, labels = fashion_mnist.load(split)
    if index is not None:
        images, labels = images[index], labels[index]

    def compute() -> dict:
        chunks = (np.concatenate([image_views(img, (view,)) for img in images[i:i + 256]])
                  for i in range(0, len(images), 256))
        return {"features": extractor.over(chunks)}

    key = {"split": split, "n": len(images), "view": view, "spec": DEFAULT_SPEC.to_dict(),
           "backbone": backbone_fingerprint(extractor.artifacts.backbone),
           "index_sha": hashlib.sha1(b"" if index is None else index.tobytes()).hexdigest()}
    cache = cached_arrays(extractor.artifacts.cache, f"fmnist-{split}-{view}", key, compute)
    return cache["features"], labels


def load_features(artifacts: Path, per_class: int, test_images: int):
    """Candidates (``per_class`` per class, original + mirrored) and test features, from the
    backbone the model serves (few-shot heads learn on the features they are served on)."""
    extractor = _LazyExtractor(Artifacts(artifacts))
    _, train_labels = fashion_mnist.load("train")
    index = fashion_mnist.balanced_subset(train_labels, per_class, seed=0)
    original, labels = _features(extractor, "train", index, "original")
    flipped, _ = _features(extractor, "train", index, "flip")
    test_index = None if test_images >= 10_000 else np.arange(test_images)
    test, test_labels = _features(extractor, "test", test_index, "original")
    return np.stack([original, flipped], axis=1), labels, test, test_labels


def accuracy_study(views, labels, test, test_labels, shots: list[int], draws: int,
                   pool_size: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    out: dict = {}
    for k in shots:
        rows = {"baseline": [], "fewshot": [], "fewshot_pool": []}
        kinds = {"fewshot": [], "fewshot_pool": []}
        for draw in range(draws):
            support = np.concatenate([rng.choice(np.flatnonzero(labels == c), k, replace=False)
                                      for c in range(10)])
            rest = np.setdiff1d(np.arange(len(labels)), support)
            pool = views[rng.choice(rest, min(pool_size, len(rest)), replace=False), 0]
            x, y = views[support], labels[support]
            with single_thread():
                w, b = fit_logistic(x[:, 0], y, 10, c=1.0)
            rows["baseline"].append(float(((test @ w.T + b).argmax(1) == test_labels).mean()))
            for name, extra in (("fewshot", None), ("fewshot_pool", pool)):
                fit = select_fewshot_head(x, y, 10, pool=extra)
                predicted = fewshot_probabilities(fit.head, test).argmax(1)
                rows[name].append(float((predicted == test_labels).mean()))
                kinds[name].append(fit.kind)
            print(f"  {k:>2} shots, draw {draw + 1}/{draws}: " + ", ".join(
                f"{n} {v[-1]:.3f}" for n, v in rows.items()), flush=True)
        out[str(k)] = {
            **{n: {"mean": float(np.mean(v)), "sd": float(np.std(v)), "runs": v}
               for n, v in rows.items()},
            "kinds": kinds,
            "reference_baseline": REFERENCE_BASELINE.get(k),
        }
        for n in ("fewshot", "fewshot_pool"):
            out[str(k)][n]["minus_baseline"] = out[str(k)][n]["mean"] - \
                out[str(k)]["baseline"]["mean"]
    return out


# --------------------------------------------------------------------------- time to model
def _labelled_folder(root: Path, per_value: int, seed: int = 7) -> Path:
    """Footwear photos from Fashion-MNIST's training split, dark on light, a folder per value."""
    images, labels = fashion_mnist.load("train")
    rng = np.random.default_rng(seed)
    for value, cls in {"sandal": 5, "sneaker": 7, "boot": 9}.items():
        folder = root / "images" / value
        folder.mkdir(parents=True)
        for index in rng.choice(np.flatnonzero(labels == cls), per_value, replace=False):
            rgb = np.repeat(255 - images[index][:, :, None], 3, axis=2)
            (folder / f"{index}.png").write_bytes(encode_png(rgb))
    return root / "images"


def _workspace(root: Path, artifacts: Path) -> tuple[Path, Path]:
    work = Artifacts(artifacts).working_copy(root / "artifacts").root
    repository = root / "repository"
    shutil.copytree(SOURCE_REPOSITORY, repository,
                    ignore=shutil.ignore_patterns("__pycache__"))
    return work, repository


class _Load(threading.Thread):
    """Tags sample images at concurrency 8; notes when the new attribute first answers."""

    def __init__(self, url: str, attribute: str) -> None:
        super().__init__(daemon=True)
        self.url, self.attribute = url, attribute
        self.ok = self.failed = 0
        self.errors: list[str] = []
        self.first_seen: float | None = None
        self.last_seen_with: float | None = None
        self.stop = threading.Event()
        self.images = sorted((SAMPLES_DIR / "clothing").glob("*.jpg")) + \
            sorted((SAMPLES_DIR / "photos").glob("*.jpg"))

    def run(self) -> None:
        from fashiontag.client import TagClient

        with TagClient(self.url, timeout_s=300) as client:
            while not self.stop.is_set():
                for result in client.tag_many(self.images, concurrency=8):
                    if not result.ok:
                        self.failed += 1
                        self.errors.append(f"{result.error_type}: {result.error}")
                        continue
                    self.ok += 1
                    if self.attribute in result.attributes:
                        self.last_seen_with = time.perf_counter()
                        if self.first_seen is None:
                            self.first_seen = self.last_seen_with


def time_to_model(artifacts: Path, per_value: int) -> dict:
    from fashiontag.serving.server import ServerConfig, TritonServer

    name = "footwear"
    with tempfile.TemporaryDirectory(prefix="fewshot-bench-") as tmp:
        root = Path(tmp)
        images = _labelled_folder(root, per_value)
        work, repository = _workspace(root, artifacts)
        config = ServerConfig(repository=repository, grpc_port=0, http_port=0, metrics_port=0,
                              model_control="explicit", log_path=root / "server.log")
        env = {**os.environ, "FASHIONTAG_ADMIN_KEY": config.admin_key}  # the operator's key
        with TritonServer(config) as server:
            load = _Load(server.grpc_url, name)
            load.start()
            time.sleep(2.0)
            before = load.ok
            started = time.perf_counter()
            add = subprocess.run(
                [sys.executable, "-m", "fashiontag", "fewshot", "add", name, "--images",
                 str(images), "--serve-url", server.grpc_url, "--artifacts", str(work),
                 "--repository", str(repository)], capture_output=True, text=True, cwd=ROOT,
                env=env)
            add_s = time.perf_counter() - started
            if add.returncode != 0:
                load.stop.set()
                raise RuntimeError(f"fewshot add failed:\n{add.stdout}\n{add.stderr}")
            while load.first_seen is None and time.perf_counter() - started < add_s + 60:
                time.sleep(0.05)
            answered_s = (load.first_seen - started) if load.first_seen else None
            during_add = {"ok": load.ok - before, "failed": load.failed}
            started = time.perf_counter()
            back = subprocess.run(
                [sys.executable, "-m", "fashiontag", "fewshot", "rollback", "--serve-url",
                 server.grpc_url, "--repository", str(repository)],
                capture_output=True, text=True, cwd=ROOT, env=env)
            rollback_s = time.perf_counter() - started
            time.sleep(2.0)
            load.stop.set()
            load.join(timeout=300)
        report = json.loads((Artifacts(work).fewshot(name) / "report.json").read_text())
    return {
        "images_per_value": per_value, "values": 3,
        "fewshot_add_wall_s": round(add_s, 2),
        "launch_to_new_version_answering_s": None if answered_s is None else round(answered_s, 2),
        "stages_s": report["seconds"], "head": report["kind"],
        "cv_accuracy": report["cv_accuracy"],
        "rollback_ok": back.returncode == 0, "rollback_wall_s": round(rollback_s, 2),
        "requests_during_add": during_add,
        "requests_total": {"ok": load.ok, "failed": load.failed}, "errors": load.errors[:5],
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--shots", default="1,5,10,30")
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--candidates-per-class", type=int, default=600)
    parser.add_argument("--pool", type=int, default=5000, help="unlabelled pool size")
    parser.add_argument("--test-images", type=int, default=10_000)
    parser.add_argument("--images-per-value", type=int, default=30)
    parser.add_argument("--artifacts", type=Path, default=ARTIFACTS.root)
    parser.add_argument("--skip-server", action="store_true", help="accuracy study only")
    parser.add_argument("--skip-accuracy", action="store_true", help="time to model only")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.smoke:
        args.shots, args.draws, args.candidates_per_class = "1,5", 2, 40
        args.pool, args.test_images, args.images_per_value = 100, 500, 8
    shots = [int(s) for s in args.shots.split(",")]

    t0 = time.perf_counter()
    result: dict = {"smoke": args.smoke, "draws": args.draws, "test_images": args.test_images,
                    "candidates_per_class": args.candidates_per_class, "pool": args.pool,
                    "views": list(VIEWS), "accuracy": {}}
    if not args.skip_accuracy:
        views, labels, test, test_labels = load_features(
            args.artifacts, args.candidates_per_class, args.test_images)
        result["features_s"] = round(time.perf_counter() - t0, 1)
        result["accuracy"] = accuracy_study(views, labels, test, test_labels, shots, args.draws,
                                            args.pool)
    if not args.skip_server:
        result["time_to_model"] = time_to_model(args.artifacts, args.images_per_value)
    result["seconds"] = round(time.perf_counter() - t0, 1)

    print(f"\n{'shots':>5} {'baseline':>15} {'fewshot':>15} {'fewshot+pool':>15}  (mean ± sd, "
          f"{args.draws} draws, {args.test_images} test images)")
    for k, row in result["accuracy"].items():
        print(f"{k:>5} " + " ".join(f"{row[n]['mean']:.3f} ± {row[n]['sd']:.3f}".rjust(15)
                                    for n in ("baseline", "fewshot", "fewshot_pool")))
    if "time_to_model" in result:
        t = result["time_to_model"]
        print(f"\ntime to model ({t['images_per_value']} images x 3 values): launch → new version "
              f"answering {t['launch_to_new_version_answering_s']} s; stages {t['stages_s']}")
        print(f"requests during add + rollback: {t['requests_total']}")
    out = args.out or ROOT / "benchmarks" / "results" / time.strftime("%Y%m%d-%H%M%S") / \
        "fewshot.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"results in {out}")
    return result


if __name__ == "__main__":
    main()
