"""Is the labelled set big and balanced enough to trust, and how well did the head do?

The refusal rules are deliberately simple and say exactly what is missing, in images per value:
at least ``min_per_value`` images of every value, and no value with fewer than
``1 / max_imbalance`` of the most frequent one. After cross-validation, a head that does not beat
chance by ``min_gain`` is refused too (the values may not be visible in the pictures).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fashiontag.errors import FashiontagError

__all__ = ["DataRequirements", "InsufficientDataError", "check_counts", "check_accuracy",
           "format_report", "confusion_table"]


class InsufficientDataError(FashiontagError):
    """Too few or too unbalanced labelled images to trust a head trained on them."""


@dataclass(frozen=True)
class DataRequirements:
    min_per_value: int = 8
    max_imbalance: float = 3.0  # largest value count / smallest value count
    min_gain: float = 0.10  # CV accuracy must exceed chance (1 / values) by this much

    def needed(self, counts: dict[str, int]) -> dict[str, int]:
        """value → how many more images it needs (values that need none are left out)."""
        floor = max(self.min_per_value, math.ceil(max(counts.values()) / self.max_imbalance))
        return {v: floor - n for v, n in counts.items() if n < floor}


def check_counts(name: str, counts: dict[str, int],
                 requirements: DataRequirements = DataRequirements()) -> None:
    """Raise :class:`InsufficientDataError` naming how many more images each value needs."""
    needed = requirements.needed(counts)
    if not needed:
        return
    largest = max(counts, key=counts.get)
    too_few = [v for v in needed if counts[v] < requirements.min_per_value]
    lines = [f"refusing to train {name!r}: not enough labelled images to trust the result."]
    if too_few:
        lines.append(f"Every value needs at least {requirements.min_per_value} images.")
    if len(too_few) < len(needed) or counts[largest] > requirements.max_imbalance * min(
            counts.values()):
        lines.append(f"The values are unbalanced: {largest!r} has {counts[largest]} images and "
                     f"no value may have fewer than 1/{requirements.max_imbalance:g} of that.")
    for value, more in sorted(needed.items(), key=lambda kv: -kv[1]):
        lines.append(f"  need {more} more image{'s' if more != 1 else ''} for value {value!r} "
                     f"(has {counts[value]})")
    raise InsufficientDataError("\n".join(lines))


def check_accuracy(name: str, cv_accuracy: float | None, values: int,
                   requirements: DataRequirements = DataRequirements()) -> None:
    if cv_accuracy is None:
        return
    chance = 1.0 / values
    if cv_accuracy < chance + requirements.min_gain:
        raise InsufficientDataError(
            f"refusing to serve {name!r}: cross-validated accuracy {cv_accuracy:.3f} is not "
            f"clearly above chance ({chance:.3f}). The values may not be visible in the images, "
            "or the labels may be noisy; label more (see `fashiontag fewshot suggest`) or check "
            "them. --force serves it anyway.")


def confusion_table(confusion: np.ndarray, values: tuple[str, ...]) -> str:
    """Rows = true value, columns = predicted value (columns numbered to stay narrow)."""
    labels = [f"[{i}] {v}" for i, v in enumerate(values)]
    width = max(len(label) for label in labels) + 1
    cell = max(5, len(str(int(confusion.max()))) + 1)
    head = " " * width + "".join(f"{f'[{j}]':>{cell}}" for j in range(len(values)))
    rows = [f"{label:<{width}}" + "".join(f"{int(n):>{cell}}" for n in confusion[i])
            for i, label in enumerate(labels)]
    return "\n".join([head, *rows])


def format_report(report: dict) -> str:
    """The human-readable summary ``fashiontag fewshot add`` prints."""
    lines = [f"attribute {report['name']!r}: {len(report['values'])} values, "
             f"{report['images']} labelled images ({report['views']} views each)"]
    for value, n in report["counts"].items():
        lines.append(f"  {value}: {n}")
    if report.get("cv_accuracy") is not None:
        lines.append(f"{report['folds']}-fold cross-validated accuracy by head kind: " + ", ".join(
            f"{k} {v:.3f}" for k, v in report["candidates"].items()))
        lines.append(f"kept: {report['kind']} (CV accuracy {report['cv_accuracy']:.3f}, "
                     f"chance {1 / len(report['values']):.3f})")
        lines.append("confusion matrix (rows: true value, columns: predicted):")
        lines.append(confusion_table(np.array(report["confusion"]), tuple(report["values"])))
    else:
        lines.append(f"kept: {report['kind']} (too few images to cross-validate)")
    if report.get("pool_images"):
        lines.append(f"unlabelled pool used: {report['pool_images']} images")
    return "\n".join(lines)
