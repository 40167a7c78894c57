"""``fashiontag evaluate``: how right the tags are on labelled real photos, scored as served.

Predictions go through the same decoding a customer's records do (hierarchy included: an
attribute the predicted garment type rules out counts as a miss when the photo has a label for
it), either from a running server (gRPC) or from an exported model file in-process.

Labelled sources: whatever :func:`fashiontag.labels.read_labels` reads (a folder of value
folders is one sub-folder per garment type here: ``T-Shirt/``, ``Pants/`` ...; merged labels such
as ``Blouse`` count as the type they were merged into; a ``path,value`` CSV such as a studio
export scores the attribute it is named after), or a split of the clothing photos
(``clothing:test``): photographers the model never saw.

Garment types also score sleeve and pant length the way a catalog team checks them: a T-Shirt
or Polo must get a short sleeve value, a Longsleeve or Hoodie a long one, Shorts a short and
Pants a full pant length (:data:`fashiontag.model.datasets.clothing.WEAK_LABELS`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fashiontag.client.results import AttributeSet, decode_probabilities
from fashiontag.errors import FashiontagError
from fashiontag.labels import LabelledImage, by_image, read_labels
from fashiontag.model.datasets import clothing
from fashiontag.model.temperature import expected_calibration_error
from fashiontag.taxonomy import CATEGORY_NAME, Taxonomy

__all__ = ["read_labelled", "score", "Evaluation", "evaluate_model", "evaluate_server",
           "format_evaluation"]

CLOTHING_PREFIX = "clothing:"


def read_labelled(source: str | Path) -> list[LabelledImage]:
    """The labels of ``clothing:<split>``, or of a folder of garment-type folders or a label
    file in any format :func:`~fashiontag.labels.read_labels` reads."""
    text = str(source)
    if text.startswith(CLOTHING_PREFIX):
        part = text[len(CLOTHING_PREFIX):]
        if part not in ("train", "val", "test"):
            raise FashiontagError(f"{text}: the clothing splits are train, val and test")
        photos = getattr(clothing.sender_split(clothing.load()), part)
        return [LabelledImage(p.path, CATEGORY_NAME, p.label) for p in photos if p.labelled]
    path = Path(source)
    items = read_labels(path, attribute=CATEGORY_NAME if path.is_dir() else None)
    if not items:
        raise FashiontagError(f"{source}: no labelled images found")
    return items


@dataclass
class AttributeScore:
    name: str
    images: int = 0  # labelled for this attribute
    correct: int = 0
    applicable: int = 0  # records that gave the attribute a value
    coarse: bool = False  # scored short/long from garment types
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)  # true → predicted → n
    ece: float | None = None

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.images if self.images else None

    def to_dict(self) -> dict:
        return {"images": self.images, "accuracy": None if self.accuracy is None else round(
            self.accuracy, 4), "with_value": self.applicable, "short_long": self.coarse,
            "ece": None if self.ece is None else round(self.ece, 4),
            "confusion": self.confusion}


@dataclass
class Evaluation:
    source: str
    predictor: str
    images: int
    failed: list[str] = field(default_factory=list)
    attributes: dict[str, AttributeScore] = field(default_factory=dict)
    category_values: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"source": self.source, "predictor": self.predictor, "images": self.images,
                "failed": self.failed, "category_values": list(self.category_values),
                "attributes": {k: v.to_dict() for k, v in self.attributes.items()}}


def _targets(path: Path, labels: Mapping[str, LabelledImage], taxonomy: Taxonomy
             ) -> dict[str, tuple[str, bool]]:
    """attribute → (expected value or short/long side, coarse?) for one image."""
    out: dict[str, tuple[str, bool]] = {}
    category = taxonomy.category
    for name, item in labels.items():
        label = item.value
        if name not in taxonomy:
            raise FashiontagError(f"{path}: unknown attribute {name!r} (a path,value CSV is "
                                  "scored as the attribute its file is named after)")
        value = taxonomy[name].canonical(label)
        if value not in taxonomy[name].values:
            if name == category.name and label in clothing.UNLABELLED:
                continue
            raise FashiontagError(f"{path}: {label!r} is not a value of {name!r}")
        out[name] = (value, False)
    if category is not None and category.name in out:
        garment = out[category.name][0]
        for name, by_type in clothing.WEAK_LABELS.items():
            if name in taxonomy and name not in out and garment in by_type:
                out[name] = (clothing.coarse(name, by_type[garment]), True)
    return out


def score(items: Sequence[LabelledImage], predictions: Mapping[Path, AttributeSet | None],
          taxonomy: Taxonomy, source: str = "", predictor: str = "") -> Evaluation:
    """Score decoded predictions, image path → record (None = the image failed), against the
    labels."""
    images = by_image(items)
    missing = set(images) - set(predictions)
    if missing:
        raise ValueError(f"no prediction for {len(missing)} labelled images")
    result = Evaluation(str(source), predictor, len(images),
                        category_values=taxonomy.category.values if taxonomy.category else ())
    probabilities: dict[str, list[tuple[np.ndarray, int]]] = {}
    for path, labels in images.items():
        targets = _targets(path, labels, taxonomy)  # a bad label is an error even if it failed
        attrs = predictions[path]
        if attrs is None:
            result.failed.append(str(path))
            continue
        for name, (expected, is_coarse) in targets.items():
            s = result.attributes.setdefault(name, AttributeScore(name, coarse=is_coarse))
            got = attrs.get(name)
            value = got.value if got is not None and got.applicable else None
            predicted = clothing.coarse(name, value) if is_coarse else value
            s.images += 1
            s.applicable += value is not None
            s.correct += predicted == expected
            row = s.confusion.setdefault(expected, {})
            row[str(predicted)] = row.get(str(predicted), 0) + 1
            if not is_coarse:
                p = np.asarray(list(attrs.probabilities(name).values()))
                probabilities.setdefault(name, []).append((p, taxonomy[name].index(expected)))
    for name, pairs in probabilities.items():
        p = np.stack([a for a, _ in pairs])
        result.attributes[name].ece = expected_calibration_error(p, np.array([y for _, y in pairs]))
    return result


def _batched(paths: Sequence[Path], predict: Callable[[list[bytes]], list],
             batch: int = 32) -> dict[Path, AttributeSet | None]:
    out: list[AttributeSet | None] = []
    for start in range(0, len(paths), batch):
        out += predict([path.read_bytes() for path in paths[start:start + batch]])
    return dict(zip(paths, out, strict=True))


def evaluate_model(items: Sequence[LabelledImage], model_path: str | Path,
                   runtime: str = "onnxruntime", source: str = "", options=None) -> Evaluation:
    """Score an exported model file in-process (the served preprocessing and decoding);
    ``options`` (:class:`~fashiontag.runtimes.RuntimeOptions`) overrides ``runtime``."""
    from fashiontag.images import preprocess_bytes
    from fashiontag.onnxio.metadata import read_metadata
    from fashiontag.runtimes import RuntimeOptions, load_model

    meta = read_metadata(model_path)
    options = options or RuntimeOptions(runtime=runtime)
    model = load_model(model_path, options)

    def predict(blobs: list[bytes]) -> list:
        out: list = []
        tiles, index = [], []
        for i, blob in enumerate(blobs):
            try:
                tiles.append(preprocess_bytes(blob, meta.preprocess))
                index.append(i)
            except FashiontagError:
                pass
        decoded = decode_probabilities(meta.taxonomy, model.run(np.stack(tiles)),
                                       experimental=True) if tiles else []
        out = [None] * len(blobs)
        for i, attrs in zip(index, decoded, strict=True):
            out[i] = attrs
        return out

    hint = f" {options.precision_hint}" if options.runtime == "openvino" else ""
    name = f"{Path(model_path).name} ({meta.precision}, {options.runtime}{hint}, in-process)"
    return score(items, _batched(list(by_image(items)), predict), meta.taxonomy, source, name)


def evaluate_server(items: Sequence[LabelledImage], url: str, source: str = "",
                    concurrency: int = 8) -> Evaluation:
    """Score what a running server answers (over gRPC, as ``fashiontag tag`` would)."""
    from fashiontag.client import TagClient

    paths = list(by_image(items))
    with TagClient(url, experimental=True) as client:
        taxonomy = client.taxonomy
        results = list(client.tag_many([(str(i), path) for i, path in enumerate(paths)],
                                       concurrency=concurrency))
    predictions = {path: r.attributes if r.ok else None
                   for path, r in zip(paths, results, strict=True)}
    return score(items, predictions, taxonomy, source, f"server at {url}")


def format_evaluation(result: Evaluation) -> str:
    """Accuracy per attribute, the garment-type confusion matrix and calibration, as text."""
    lines = [f"{result.images} labelled images from {result.source}; predictions: "
             f"{result.predictor}"]
    if result.failed:
        lines.append(f"{len(result.failed)} images failed to decode or to be tagged")
    lines.append(f"{'attribute':18s} {'images':>6s} {'accuracy':>8s} {'with value':>10s} "
                 f"{'ECE':>6s}")
    for name, s in result.attributes.items():
        kind = " (short/long)" if s.coarse else ""
        ece = "" if s.ece is None else f"{s.ece:.3f}"
        lines.append(f"{name + kind:18s} {s.images:6d} {s.accuracy:8.4f} {s.applicable:10d} "
                     f"{ece:>6s}")
    category = result.attributes.get("category")
    if category is not None:
        values = [v for v in result.category_values if v in category.confusion]
        columns = values + sorted({p for row in category.confusion.values() for p in row}
                                  - set(values))
        lines.append("\nconfusion matrix (rows: true garment type, columns: predicted)")
        lines.append(" " * 12 + " ".join(f"{c[:5]:>5s}" for c in columns) + "  accuracy")
        for value in values:
            row = category.confusion[value]
            total = sum(row.values())
            lines.append(f"{value[:11]:11s} " + " ".join(f"{row.get(c, 0):5d}" for c in columns)
                         + f"  {row.get(value, 0) / total:.2f}")
    return "\n".join(lines)


def write_evaluation(result: Evaluation, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_dict(), indent=2))
    return path
