"""Train the served model: fine-tune on real garment photos, fit every head, calibrate, report.

1. Real photos (:mod:`fashiontag.model.datasets.clothing`), split by photographer into train,
   validation and test. Each training photo is seen as ``views`` cached views (original, mirror,
   random crops with colour and JPEG jitter); the frozen trunk runs once per view.
2. The backbone's last blocks are fine-tuned on those activations (:mod:`.finetune`) for the
   garment type, with sleeve and pant length from the weak labels garment types carry.
3. Every other head is fitted on the tuned backbone's pooled features: sleeve and pant length on
   real photos (weak labels) plus procedurally rendered garments for the finer values; the
   FashionAI heads with no real labels here on renders only (experimental in the taxonomy), or
   on a real FashionAI ``label.csv`` when one is given.
4. One softmax temperature per head is fitted on the validation photographers (renders for the
   render-only heads) and folded into the weights (:mod:`.temperature`).
5. The report scores the test photographers: accuracy, confusion matrix, calibration error
   before and after, and the short/long checks of sleeve and pant length.

:func:`train` runs these as named stages (:data:`STAGES`: data, fine-tune, features, heads,
calibrate, score, save), each logged as it ends and timed in the report's ``seconds``, so a
slower run says which stage grew.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from fashiontag.artifacts import DEFAULT_ROOT, Artifacts
from fashiontag.images import DEFAULT_SPEC, decode, preprocess_array, preprocess_bytes
from fashiontag.model import heads as heads_lib
from fashiontag.model.backbone import TUNE_FROM, load_backbone, save_tail
from fashiontag.model.datasets import clothing
from fashiontag.model.features import OnnxBackbone, cached_arrays, trunk_extractor
from fashiontag.model.finetune import FinetuneConfig, finetune, tail_features
from fashiontag.model.network import AttributeHead, scale_logits
from fashiontag.model.temperature import expected_calibration_error, fit_temperature, softmax
from fashiontag.taxonomy import DEFAULT_TAXONOMY, FASHIONAI_ATTRIBUTES, Taxonomy

__all__ = ["TrainConfig", "train", "training_signature", "is_current", "quick_config",
           "full_config", "SCHEDULES"]

log = logging.getLogger(__name__)

_CHUNK = 128
#: Renders seeds: training (photometrically augmented), validation (temperatures), test.
RENDER_SEEDS = {"train": 1, "val": 3, "test": 2}


@dataclass
class TrainConfig:
    artifacts: Path = DEFAULT_ROOT
    clothing: Path | None = None  # the photo folder; None = clothing.locate()
    views: int = 4  # cached views per training photo: original, mirror, random crops
    tune_from: int = TUNE_FROM  # blocks from here on (and the head conv) are fine-tuned
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    head_views: int = 2  # views per training photo the heads after fine-tuning see
    rendered: dict = field(default_factory=lambda: {"train": 4000, "val": 600, "test": 1000})
    fashionai_csv: Path | None = None
    fashionai_root: Path | None = None
    seed: int = 0
    # one hidden layer: every head picked it over a linear probe on validation data when both were
    # tried (a third fewer fits to pay for)
    hidden_options: tuple[int, ...] = (512,)
    steps: int | None = None  # optimiser steps per head fit; None = heads.default_steps
    colour: bool = True  # append the fixed colour head (fashiontag.colour)
    limit: int | None = None  # photos per split (smoke runs only)

    @property
    def layout(self) -> Artifacts:
        return Artifacts(self.artifacts)

    @property
    def cache_dir(self) -> Path:
        return self.layout.cache


def quick_config(artifacts: Path) -> TrainConfig:
    """Minutes-long smoke configuration (tests): few photos, one epoch, tiny renders."""
    return TrainConfig(artifacts=artifacts, views=2, limit=96,
                       finetune=FinetuneConfig(epochs=1), hidden_options=(0,), steps=100,
                       rendered={"train": 256, "val": 128, "test": 128})


def full_config(artifacts: Path) -> TrainConfig:
    """``make train-full``: the last six blocks tuned instead of three (112x14x14 activations,
    twice the time per epoch) and 6 views per photo (docs/model-quality.md has both measured)."""
    return TrainConfig(artifacts=artifacts, views=6, tune_from=10)


#: ``fashiontag train --schedule``: fast is what ``make model`` ships.
SCHEDULES = {"fast": lambda artifacts: TrainConfig(artifacts=artifacts), "full": full_config}


# ------------------------------------------------------------------------------ cached inputs
def _photo_tiles(photos: list[clothing.ClothingPhoto], views: int, seed: int
                 ) -> Iterator[np.ndarray]:
    """``[chunk, views, S, S, 3]``: view 0 as served, view 1 mirrored, then random views."""
    from fashiontag.model.augment import photo_view

    rng = np.random.default_rng(seed)
    for start in range(0, len(photos), _CHUNK):
        chunk = []
        for photo in photos[start:start + _CHUNK]:
            data = photo.path.read_bytes()
            tile = preprocess_bytes(data)
            own = [tile, np.ascontiguousarray(tile[:, ::-1])][:views]
            if views > 2:
                rgb = decode(data)
                own += [photo_view(rgb, rng) for _ in range(views - 2)]
            chunk.append(np.stack(own))
        yield np.stack(chunk)


def _photo_activations(cfg: TrainConfig, trunk: OnnxBackbone, part: str,
                       photos: list[clothing.ClothingPhoto], views: int) -> np.ndarray:
    from fashiontag.model import augment

    def compute() -> dict[str, np.ndarray]:
        acts = []
        for tiles in _photo_tiles(photos, views, cfg.seed):
            n = len(tiles)
            flat = trunk(tiles.reshape(n * views, *tiles.shape[2:]))
            acts.append(flat.reshape(n, views, *flat.shape[1:]))
        return {"activations": np.concatenate(acts)}

    ids = hashlib.sha1("\n".join(p.image for p in photos).encode()).hexdigest()
    key = {"photos": ids, "views": views, "seed": cfg.seed, "spec": DEFAULT_SPEC.to_dict(),
           "trunk": trunk.path.name,
           "augment": hashlib.sha1(inspect.getsource(augment).encode()).hexdigest()}
    return cached_arrays(cfg.cache_dir, f"clothing-{part}", key, compute)["activations"]


def _rendered_activations(cfg: TrainConfig, trunk: OnnxBackbone, part: str
                          ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Rendered garments (exact FashionAI labels) through the trunk; training renders are
    photometrically degraded first. Rendered in chunks, pixels never all in memory."""
    from fashiontag.model import augment as augment_lib
    from fashiontag.model.datasets import rendered

    n, seed, augment = cfg.rendered[part], RENDER_SEEDS[part] + cfg.seed, part == "train"

    def compute() -> dict[str, np.ndarray]:
        acts, labels = [], {a.name: [] for a in FASHIONAI_ATTRIBUTES}
        rng = np.random.default_rng(seed)
        for i, start in enumerate(range(0, n, 256)):
            images, chunk_labels = rendered.render_dataset(min(256, n - start),
                                                           seed=seed * 1000 + i)
            if augment:
                images = [augment_lib.photometric(img, rng) for img in images]
            acts.append(trunk(np.stack([preprocess_array(img) for img in images])))
            for name in labels:
                labels[name].append(chunk_labels[name])
        return {"activations": np.concatenate(acts),
                **{f"label:{k}": np.concatenate(v) for k, v in labels.items()}}

    key = {"n": n, "seed": seed, "spec": DEFAULT_SPEC.to_dict(), "augment": augment,
           "trunk": trunk.path.name,
           "renderer": hashlib.sha1(inspect.getsource(rendered).encode()).hexdigest(),
           "augmenter": hashlib.sha1(inspect.getsource(augment_lib).encode()).hexdigest()}
    cached = cached_arrays(cfg.cache_dir, f"rendered-{part}", key, compute)
    labels = {k.split(":", 1)[1]: v for k, v in cached.items() if k.startswith("label:")}
    return cached["activations"], labels


def _fashionai_csv_activations(cfg: TrainConfig, trunk: OnnxBackbone
                               ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    from fashiontag.labels import read_fashionai_csv

    records = read_fashionai_csv(cfg.fashionai_csv, cfg.fashionai_root)

    def compute() -> dict[str, np.ndarray]:
        return {"activations": trunk.over(
            np.stack([preprocess_bytes(r.path.read_bytes()) for r in records[s:s + _CHUNK]])
            for s in range(0, len(records), _CHUNK))}

    key = {"csv": str(cfg.fashionai_csv), "rows": len(records), "trunk": trunk.path.name,
           "mtime": Path(cfg.fashionai_csv).stat().st_mtime}
    acts = cached_arrays(cfg.cache_dir, "fashionai-csv", key, compute)["activations"]
    labels = {a.name: np.full(len(records), -1, np.int64) for a in FASHIONAI_ATTRIBUTES}
    for i, r in enumerate(records):
        labels[r.attribute][i] = DEFAULT_TAXONOMY[r.attribute].index(r.value)
    return acts, labels


# ------------------------------------------------------------------------------ scoring
def _logits(head, features: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return head.eval()(torch.from_numpy(np.ascontiguousarray(features, np.float32))).numpy()


def _score(head, features: np.ndarray, labels: np.ndarray, num_values: int,
           temperature: float) -> dict:
    """Accuracy, confusion matrix and ECE (before/after the temperature) where labelled."""
    keep = labels >= 0
    logits, y = _logits(head, features[keep]), labels[keep]
    raw, calibrated = softmax(logits), softmax(logits, temperature)
    confusion = np.zeros((num_values, num_values), np.int64)
    np.add.at(confusion, (y, logits.argmax(1)), 1)
    return {"examples": int(keep.sum()),
            "accuracy": round(float((logits.argmax(1) == y).mean()), 4) if len(y) else None,
            "ece_before": round(expected_calibration_error(raw, y), 4),
            "ece": round(expected_calibration_error(calibrated, y), 4),
            "confusion": confusion.tolist()}


def _coarse_accuracy(name: str, attribute, head, features: np.ndarray, labels: np.ndarray
                     ) -> float | None:
    """Share of weak-labelled photos whose predicted fine value lands on the right side
    (short/long): how a customer scores sleeve and pant length on real photos."""
    keep = labels >= 0
    if not keep.any():
        return None
    predicted = _logits(head, features[keep]).argmax(1)
    hits = [clothing.coarse(name, attribute.values[p]) == clothing.coarse(name, attribute.values[t])
            for p, t in zip(predicted, labels[keep], strict=True)]
    return round(float(np.mean(hits)), 4)


# ------------------------------------------------------------------------------ training
def _correction_files(layout: Artifacts, taxonomy: Taxonomy = DEFAULT_TAXONOMY) -> list[Path]:
    """The studio's label files for the heads trained on real photos (``fashiontag studio``
    saves a corrected tag there, for the next training of that head)."""
    names = [taxonomy.category.name, *clothing.WEAK_LABELS]
    return [p for p in (layout.studio_label_file(n) for n in names) if p.exists()]


def _corrections(layout: Artifacts, taxonomy: Taxonomy, held_out: set[Path]
                 ) -> tuple[list[clothing.ClothingPhoto], dict[str, np.ndarray]]:
    """Photos people labelled or corrected in the studio, as extra training photos: their
    garment type (weak sleeve/pant labels follow from it) and any sleeve or pant length they
    set. Photos of the validation and test photographers are left out: they stay the judges."""
    from fashiontag.labels import read_labels

    by_path: dict[Path, dict[str, str]] = {}
    for path in _correction_files(layout, taxonomy):
        for item in read_labels(path, attribute=path.stem, must_exist=False):
            by_path.setdefault(item.path, {})[item.attribute] = item.value
    category = taxonomy.category.name
    chosen = [(p, labels) for p, labels in sorted(by_path.items())
              if p not in held_out and p.exists()]
    photos = [clothing.ClothingPhoto(hashlib.sha1(str(p).encode()).hexdigest(), p, "studio",
                                     labels.get(category, "Not sure"), False)
              for p, labels in chosen]
    targets = clothing.targets(photos, taxonomy)
    for name, values in targets.items():
        for i, (_, labels) in enumerate(chosen):
            if name in labels:
                values[i] = taxonomy[name].index(labels[name])
    return photos, targets


def training_signature(cfg: TrainConfig) -> str:
    """Hash of what the model depends on: the training code, the configuration and the labels
    people corrected in the studio.

    ``fashiontag build`` retrains when it changes, so a checkout with new training code never
    serves a model made by the old code.
    """
    from fashiontag import labels, taxonomy
    from fashiontag.model import augment, backbone, finetune, heads, network, temperature
    from fashiontag.model.datasets import rendered

    modules = (sys.modules[__name__], augment, backbone, finetune, heads, network, temperature,
               rendered, clothing, labels, taxonomy)
    digest = hashlib.sha256()
    for module in modules:
        digest.update(inspect.getsource(module).encode())
    config = {k: str(v) for k, v in asdict(cfg).items() if k != "artifacts"}
    digest.update(json.dumps(config, sort_keys=True).encode())
    for path in _correction_files(cfg.layout):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def is_current(cfg: TrainConfig) -> bool:
    """True when the model files exist and were trained by this code with this configuration."""
    layout = cfg.layout
    try:
        report = json.loads(layout.training_report.read_text())
    except (OSError, ValueError):
        return False
    return (layout.heads.exists() and layout.backbone.exists()
            and report.get("signature") == training_signature(cfg))


def _subset(photos: list, limit: int | None) -> list:
    return photos if limit is None else photos[:limit]


# ------------------------------------------------------------------------------ stages
#: What ``train`` runs, in order; each stage's wall time goes to the report's ``seconds``.
STAGES = ("data", "fine-tune", "features", "heads", "calibrate", "score", "save")


class _StageClock:
    """Times the named stages of one training run and logs each as it starts and ends."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def run(self, name: str, stage: Callable, *args):
        """``stage(*args)`` as the stage ``name``; its result."""
        log.info("training stage %d/%d: %s", len(self.seconds) + 1, len(STAGES), name)
        began = time.perf_counter()
        result = stage(*args)
        self.seconds[name] = round(time.perf_counter() - began, 1)
        log.info("training stage %s done in %.1f s", name, self.seconds[name])
        return result

    def report(self) -> dict[str, float]:
        return {**self.seconds, "total": round(time.perf_counter() - self.start, 1)}


@dataclass
class _Data:
    """Trunk activations and labels of every split: the photos (plus the studio's corrections
    in train) and the rendered garments."""

    splits: clothing.ClothingSplits
    acts: dict[str, np.ndarray]  # part → [photos, views, C, H, W]
    targets: dict[str, dict[str, np.ndarray]]  # part → attribute → value index (-1: unknown)
    renders: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]]  # part → (acts, labels)
    summary: dict  # the report's "data"


@dataclass
class _Features:
    """Pooled features of the tuned backbone, for the heads, the temperatures and the scores."""

    photos: dict[str, np.ndarray]  # train: ``head_views`` views per photo; val, test: view 0
    view_targets: dict[str, np.ndarray]  # train targets repeated per view
    renders: dict[str, np.ndarray]
    render_labels: dict[str, dict[str, np.ndarray]]


def _data_stage(cfg: TrainConfig, taxonomy: Taxonomy) -> _Data:
    """Photos split by photographer, studio corrections, renders (and a FashionAI CSV) through
    the frozen trunk (cached)."""
    layout = cfg.layout
    photos = clothing.load(cfg.clothing)
    splits = clothing.sender_split(photos)
    parts = {part: [p for p in _subset(getattr(splits, part), cfg.limit) if p.labelled]
             for part in ("train", "val", "test")}
    summary: dict = {"clothing": splits.summary(), "used": {k: len(v) for k, v in parts.items()}}
    trunk = trunk_extractor(layout.cache, tune_from=cfg.tune_from)
    acts = {part: _photo_activations(cfg, trunk, part, ps, cfg.views if part == "train" else 1)
            for part, ps in parts.items()}
    targets = {part: clothing.targets(ps, taxonomy) for part, ps in parts.items()}
    held_out = {p.path.resolve() for p in splits.val + splits.test}
    extra, extra_targets = _corrections(layout, taxonomy, held_out)
    if extra:  # the studio's corrections join the training photos
        extra_acts = _photo_activations(cfg, trunk, "studio", extra, cfg.views)
        acts["train"] = np.concatenate([acts["train"], extra_acts])
        targets["train"] = {k: np.concatenate([v, extra_targets[k]])
                            for k, v in targets["train"].items()}
        summary["studio_corrections"] = len(extra)
    renders = {part: _rendered_activations(cfg, trunk, part) for part in RENDER_SEEDS}
    if cfg.fashionai_csv:
        csv_acts, csv_labels = _fashionai_csv_activations(cfg, trunk)
        train_acts, train_labels = renders["train"]
        renders["train"] = (np.concatenate([train_acts, csv_acts]),
                            {k: np.concatenate([train_labels[k], csv_labels[k]])
                             for k in train_labels})
    return _Data(splits, acts, targets, renders, summary)


def _finetune_stage(cfg: TrainConfig, taxonomy: Taxonomy, data: _Data):
    """The backbone's tail tuned on real photos (garment type + weak sleeve/pant labels),
    validated per epoch on the validation photographers; written to ``backbone.pt``."""
    category = taxonomy.category
    backbone = load_backbone(tune_from=cfg.tune_from)
    num_values = {name: taxonomy[name].num_values for name in data.targets["train"]}

    def validate(epoch: int, model) -> dict:
        import torch

        with torch.no_grad():
            logits = model(torch.from_numpy(data.acts["val"][:, 0].astype(np.float32)))
        y = data.targets["val"][category.name]
        return {"val_category_accuracy": round(float(
            (logits[category.name].numpy().argmax(1) == y).mean()), 4)}

    tuned = finetune(backbone, data.acts["train"], data.targets["train"], num_values,
                     cfg.finetune, on_epoch=validate)
    save_tail(backbone, cfg.layout.backbone)
    return backbone, tuned


def _features_stage(cfg: TrainConfig, backbone, data: _Data) -> _Features:
    """Pooled features of everything through the tuned backbone."""
    device = cfg.finetune.device
    train_views = data.acts["train"][:, :cfg.head_views]
    n, v = train_views.shape[:2]
    photos = {"train": tail_features(backbone, train_views.reshape(n * v, *train_views.shape[2:]),
                                     device=device),
              "val": tail_features(backbone, data.acts["val"][:, 0], device=device),
              "test": tail_features(backbone, data.acts["test"][:, 0], device=device)}
    return _Features(photos, {k: np.repeat(t, v) for k, t in data.targets["train"].items()},
                     {part: tail_features(backbone, a, device=device)
                      for part, (a, _) in data.renders.items()},
                     {part: labels for part, (_, labels) in data.renders.items()})


def _heads_stage(cfg: TrainConfig, taxonomy: Taxonomy, tuned, feats: _Features
                 ) -> tuple[dict, dict[str, heads_lib.HeadFit]]:
    """The garment type's head from fine-tuning; every FashionAI head fitted on the tuned
    features (real photos' weak labels, every view, plus renders), one worker per core."""
    category = taxonomy.category
    heads: dict = {}
    linear = tuned.heads[category.name]
    head = AttributeHead(category.num_values, hidden=0, dropout=cfg.finetune.dropout)
    head.layers[-1].load_state_dict(linear.state_dict())
    heads[category.name] = head.eval()
    jobs = {}
    for attribute in FASHIONAI_ATTRIBUTES:
        if attribute.name not in taxonomy:
            continue
        x, y = feats.renders["train"], feats.render_labels["train"][attribute.name]
        if attribute.name in feats.view_targets:  # real photos with weak labels, every view
            x = np.concatenate([feats.photos["train"], x])
            y = np.concatenate([feats.view_targets[attribute.name], y])
        jobs[attribute.name] = (x, y, attribute.num_values)
    fits = heads_lib.select_heads(jobs, hidden_options=cfg.hidden_options, seed=cfg.seed,
                                  steps=cfg.steps)
    for name, fit in fits.items():
        heads[name] = fit.head
    return heads, fits


def _calibrate_stage(taxonomy: Taxonomy, heads: dict, data: _Data, feats: _Features
                     ) -> dict[str, float]:
    """One softmax temperature per head, fitted on the validation photographers (plus renders
    for the weak-label heads; renders alone for the render-only ones)."""
    temperatures = {}
    for name, head in heads.items():
        real = name in data.targets["val"]
        val_x, val_y = (feats.photos["val"], data.targets["val"][name]) if real else \
            (feats.renders["val"], feats.render_labels["val"][name])
        if real and name != taxonomy.category.name:  # weak labels are few: renders join the fit
            val_x = np.concatenate([val_x, feats.renders["val"]])
            val_y = np.concatenate([val_y, feats.render_labels["val"][name]])
        temperatures[name] = fit_temperature(_logits(head, val_x), val_y)
    return temperatures


def _score_stage(taxonomy: Taxonomy, heads: dict, fits: dict, temperatures: dict[str, float],
                 data: _Data, feats: _Features) -> dict[str, dict]:
    """The report's entry per head: test photographers (and the short/long check) where there
    are real labels, held-out renders where there are rendered ones."""
    category = taxonomy.category
    entries = {}
    for name, head in heads.items():
        attribute, temperature = taxonomy[name], temperatures[name]
        real = name in data.targets["val"]
        entry: dict = {"attribute": name, "temperature": round(temperature, 4),
                       "experimental": attribute.experimental}
        if isinstance(head, AttributeHead) and name in fits:
            entry["head_hidden"] = fits[name].hidden
        if real:
            entry["real_photos"] = _score(head, feats.photos["test"], data.targets["test"][name],
                                          attribute.num_values, temperature)
            if name != category.name:
                entry["real_photos"]["short_long_accuracy"] = _coarse_accuracy(
                    name, attribute, head, feats.photos["test"], data.targets["test"][name])
            entry["test_set"] = f"clothing photos of {len(data.splits.senders('test'))} " \
                                "photographers never trained on"
        if name in feats.render_labels["test"]:
            entry["renders"] = _score(head, feats.renders["test"],
                                      feats.render_labels["test"][name], attribute.num_values,
                                      temperature)
            entry.setdefault("test_set", "procedurally rendered garments (held-out seed)")
        scored = entry.get("real_photos") or entry.get("renders")
        entry["test_accuracy"] = scored["accuracy"]
        entry["test_examples"] = scored["examples"]
        entries[name] = entry
    return entries


def _save_stage(cfg: TrainConfig, taxonomy: Taxonomy, heads: dict,
                temperatures: dict[str, float], report: dict) -> None:
    """Temperatures folded into the weights (after scoring, which needs the raw logits), the
    fixed colour head added, ``heads.pt`` written."""
    for name, head in heads.items():
        scale_logits(head, 1.0 / temperatures[name])
    if cfg.colour:  # fixed, untrained: pixels → named-colour shares (fashiontag.colour)
        from fashiontag.colour.head import ColourHead
        from fashiontag.colour.palette import colour_attribute

        colour = colour_attribute()
        taxonomy = taxonomy.with_attribute(colour)
        heads[colour.name] = ColourHead(colour.values)
        report["fixed_heads"] = {colour.name: colour.description}
    # few-shot heads learned on the previous backbone's features do not fit the new one: they
    # are not kept, and `fashiontag build` refits them from their recorded labels
    dropped = heads_lib.fewshot_attributes(cfg.layout.heads)
    if dropped:
        report["dropped_fewshot_attributes"] = [a.to_dict() for a in dropped]
    heads_lib.save_heads(cfg.layout.heads, taxonomy, heads)


def train(cfg: TrainConfig, taxonomy: Taxonomy = DEFAULT_TAXONOMY) -> dict:
    """Run the :data:`STAGES`; write ``backbone.pt``, ``heads.pt`` and
    ``training_report.json`` (with each stage's seconds) under ``cfg.artifacts``; return the
    report."""
    clock = _StageClock()
    report: dict = {"config": {k: str(v) for k, v in asdict(cfg).items()},
                    "signature": training_signature(cfg), "heads": {}}
    data = clock.run("data", _data_stage, cfg, taxonomy)
    report["data"] = data.summary
    backbone, tuned = clock.run("fine-tune", _finetune_stage, cfg, taxonomy, data)
    report["finetune"] = {**cfg.finetune.to_dict(), "history": tuned.history,
                          "seconds": tuned.seconds, "steps": tuned.steps}
    feats = clock.run("features", _features_stage, cfg, backbone, data)
    heads, fits = clock.run("heads", _heads_stage, cfg, taxonomy, tuned, feats)
    temperatures = clock.run("calibrate", _calibrate_stage, taxonomy, heads, data, feats)
    report["heads"] = clock.run("score", _score_stage, taxonomy, heads, fits, temperatures,
                                data, feats)
    clock.run("save", _save_stage, cfg, taxonomy, heads, temperatures, report)
    report["seconds"] = clock.report()
    log.info("training stages (s): %s",
             ", ".join(f"{k} {v}" for k, v in report["seconds"].items()))
    cfg.layout.training_report.write_text(json.dumps(report, indent=2))
    return report
