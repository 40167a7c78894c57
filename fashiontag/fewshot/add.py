"""``fewshot add``: labelled images → a new attribute served by the running Triton.

Steps (each timed in the report): validate the labelled set and refuse if it is too small or
unbalanced → backbone features of augmented views (cached) → prototype / logistic / linear heads
cross-validated, the best one kept → refuse a head that is not clearly better than chance → all
heads (existing + new) exported to one ONNX with the grown taxonomy, parity-checked → written as
version N+1 of ``fashiontag_attributes`` → loaded by the running server (explicit model control)
→ artifacts (heads file, exported model, labels, report) updated last, only if all went well.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from fashiontag.artifacts import DEFAULT_ROOT, SOURCE_REPOSITORY, Artifacts
from fashiontag.errors import FashiontagError
from fashiontag.fewshot.data import LabelledSet, load_labelled
from fashiontag.fewshot.features import DEFAULT_VIEWS, FeatureStore
from fashiontag.fewshot.heads import KINDS, FitOptions, select_fewshot_head
from fashiontag.fewshot.reload import publish
from fashiontag.fewshot.report import DataRequirements, check_accuracy, check_counts
from fashiontag.labels import image_files, write_csv
from fashiontag.model.heads import single_thread
from fashiontag.serving.versions import ModelVersions, check_model_control
from fashiontag.taxonomy import TaxonomyError

__all__ = ["AddConfig", "AddResult", "add_attribute", "pool_paths", "refit_attributes"]

log = logging.getLogger(__name__)


@dataclass
class AddConfig:
    name: str
    images: Path | tuple[Path, ...]  # folders with one sub-folder per value and/or CSVs
    artifacts: Path = DEFAULT_ROOT
    repository: Path = SOURCE_REPOSITORY
    serve_url: str | None = None  # a running server with explicit model control: hot-load
    admin_key: str | None = None  # the operator's key that server locks model control with
    pool: Path | None = None  # unlabelled images: centring + label propagation
    views: tuple[str, ...] = DEFAULT_VIEWS
    kinds: tuple[str, ...] = KINDS
    requirements: DataRequirements = field(default_factory=DataRequirements)
    options: FitOptions = field(default_factory=FitOptions)
    force: bool = False  # train and serve even when the checks refuse
    description: str = ""
    applies_to: tuple[str, ...] = ()  # garment types the attribute applies to; () = all
    progress: object = None  # progress(stage, seconds) as each stage ends (the studio shows it)


@dataclass
class AddResult:
    report: dict
    version: int
    loaded: bool
    seconds: dict[str, float]


class _Timer:
    """Seconds per stage; ``progress(stage, seconds)`` hears of each stage as it ends."""

    def __init__(self, progress=None) -> None:
        self.start = self.mark = time.perf_counter()
        self.seconds: dict[str, float] = {}
        self.progress = progress

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self.mark, 2)
        self.mark = now
        if self.progress is not None:
            self.progress(name, self.seconds[name])

    def total(self) -> None:
        self.seconds["total"] = round(time.perf_counter() - self.start, 2)


def pool_paths(pool: Path | None) -> list[Path]:
    """Every image file under ``pool`` (recursively, hidden files skipped), sorted."""
    if pool is None:
        return []
    if not Path(pool).is_dir():
        raise FashiontagError(f"--pool {pool}: not a folder of images")
    return image_files(pool)


def _fewshot_info(artifacts: Artifacts, name: str, report: dict) -> dict:
    """CV results of every few-shot attribute, stored in the exported model's metadata."""
    info = {}
    for path in sorted(artifacts.fewshot_root.glob("*/report.json")):
        other = json.loads(path.read_text())
        info[other["name"]] = {k: other.get(k) for k in ("kind", "cv_accuracy", "images")}
    info[name] = {k: report.get(k) for k in ("kind", "cv_accuracy", "images")}
    return {"fewshot": info}


def add_attribute(cfg: AddConfig) -> AddResult:
    """Train, export, version and (with ``serve_url``) hot-load a new attribute."""
    from fashiontag.export.attribute_model import export_attribute_model
    from fashiontag.model.heads import load_heads, save_heads

    timer = _Timer(cfg.progress)
    artifacts = Artifacts(cfg.artifacts)
    heads_path = artifacts.heads
    sources = cfg.images if isinstance(cfg.images, (tuple, list)) else (cfg.images,)
    labelled: LabelledSet = load_labelled(cfg.name, *sources)
    counts = labelled.counts()
    if not cfg.force:
        check_counts(cfg.name, counts, cfg.requirements)
    taxonomy, heads = load_heads(heads_path)
    if cfg.name in taxonomy and taxonomy[cfg.name].source != "fewshot":
        raise FashiontagError(f"{cfg.name!r} is a built-in attribute "
                              f"(source {taxonomy[cfg.name].source!r}); pick another name")
    versions = ModelVersions(cfg.repository)
    if cfg.serve_url:
        versions.check_reloadable()
        check_model_control(cfg.serve_url, cfg.admin_key)
    attribute = labelled.attribute(cfg.name, cfg.description, cfg.applies_to)
    try:
        taxonomy.with_attribute(attribute)
    except TaxonomyError as exc:
        raise FashiontagError(f"{cfg.name!r}: {exc}") from None
    timer.lap("validate")

    cache = artifacts.cache
    features = FeatureStore(cache, cfg.views, backbone=artifacts.backbone).features(
        labelled.paths)
    pool_images = pool_paths(cfg.pool)
    pool = FeatureStore(cache, ("original",), backbone=artifacts.backbone).features(
        pool_images)[:, 0] if pool_images else None
    timer.lap("features")

    fit = select_fewshot_head(features, labelled.labels, len(labelled.values), pool, cfg.kinds,
                      cfg.options)
    if not cfg.force:
        check_accuracy(cfg.name, fit.cv_accuracy, len(labelled.values), cfg.requirements)
    timer.lap("fit")
    report = {
        "name": cfg.name, "values": list(labelled.values), "counts": counts,
        "images": len(labelled.items), "views": len(cfg.views), "view_names": list(cfg.views),
        "source": labelled.source, "kind": fit.kind, "cv_accuracy": fit.cv_accuracy,
        "folds": fit.folds, "candidates": fit.candidates,
        "confusion": None if fit.confusion is None else fit.confusion.tolist(),
        "pool_images": len(pool_images), "forced": cfg.force,
    }

    # stage everything next to the artifacts; nothing in use is replaced before it all worked
    workdir = artifacts.fewshot(cfg.name)
    workdir.mkdir(parents=True, exist_ok=True)
    staged_heads, staged_model = workdir / "heads.staging.pt", workdir / "model.staging.onnx"
    heads[cfg.name] = fit.head
    save_heads(staged_heads, taxonomy.with_attribute(attribute), heads)
    with single_thread():  # the server serves on the same cores: don't oversubscribe them
        export = export_attribute_model(staged_heads, staged_model, artifacts.backbone,
                                        artifacts.training_report,
                                        extra_info=_fewshot_info(artifacts, cfg.name, report))
    report["parity"] = export.to_dict()["parity"]
    timer.lap("export")

    version = publish(versions, staged_model, cfg.serve_url, cfg.admin_key)
    timer.lap("load" if cfg.serve_url else "version")

    if heads_path.exists():  # keep the previous heads: `fewshot rollback` serves older versions
        history = artifacts.fewshot_history
        history.mkdir(parents=True, exist_ok=True)
        shutil.copy2(heads_path, history / f"heads-before-v{version}.pt")
    staged_heads.replace(heads_path)
    staged_model.replace(artifacts.model())
    write_csv(labelled.items, artifacts.fewshot_labels(cfg.name))
    timer.total()
    report.update(version=version, loaded=bool(cfg.serve_url), seconds=timer.seconds)
    (workdir / "report.json").write_text(json.dumps(report, indent=2))
    return AddResult(report, version, bool(cfg.serve_url), timer.seconds)


def refit_attributes(artifacts: Artifacts, attributes: list) -> list[str]:
    """Fit few-shot attributes again, on the backbone the artifacts hold now, from the labels
    ``fewshot add`` recorded, and append them to the heads file; returns the names refitted.

    A retrained backbone changes the features every few-shot head was fitted on, so training
    drops those heads and ``fashiontag build`` calls this. An attribute whose labels are gone is
    left out, with a warning naming it.
    """
    from fashiontag.model.heads import load_heads, save_heads

    taxonomy, heads = load_heads(artifacts.heads)
    done = []
    for attribute in attributes:
        labels = artifacts.fewshot_labels(attribute.name)
        if not labels.exists():
            log.warning("few-shot attribute %r dropped: its labels (%s) are gone", attribute.name,
                        labels)
            continue
        labelled = load_labelled(attribute.name, labels)
        recorded = artifacts.fewshot(attribute.name) / "report.json"
        views = tuple(json.loads(recorded.read_text()).get("view_names", DEFAULT_VIEWS)) \
            if recorded.exists() else DEFAULT_VIEWS
        features = FeatureStore(artifacts.cache, views, backbone=artifacts.backbone).features(
            labelled.paths)
        fit = select_fewshot_head(features, labelled.labels, len(labelled.values))
        heads[attribute.name] = fit.head
        taxonomy = taxonomy.with_attribute(attribute)
        done.append(attribute.name)
        log.info("few-shot attribute %r refitted on the new backbone (%s head, CV accuracy %s)",
                 attribute.name, fit.kind, fit.cv_accuracy)
    if done:
        save_heads(artifacts.heads, taxonomy, heads)
    return done
