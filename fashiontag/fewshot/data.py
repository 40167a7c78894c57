"""Labelled image sets for a new attribute: its labels from any source the labels module reads.

Validation happens here, before any feature is computed (the labels module names the file and
line of a malformed row). Value order is sorted, so the same data always gives the same
attribute.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fashiontag.errors import FashiontagError
from fashiontag.labels import LabelledImage, by_image, read_labels
from fashiontag.taxonomy import Attribute, TaxonomyError

__all__ = ["LabelledSet", "FewShotDataError", "load_labelled"]


class FewShotDataError(FashiontagError):
    """A labelled set cannot be used as given (no labels of the attribute, one value only...)."""


@dataclass(frozen=True)
class LabelledSet:
    """Images with one value each; ``values`` sorted, ``labels`` index into them."""

    items: tuple[LabelledImage, ...]
    values: tuple[str, ...]
    source: str = ""

    @classmethod
    def of(cls, items: list[LabelledImage], source: str = "") -> LabelledSet:
        """One label per image (the same label twice counts once; two values are an error)."""
        if not items:
            raise FewShotDataError(f"{source}: no labelled images")
        unique = [label for labels in by_image(items).values() for label in labels.values()]
        if len({i.attribute for i in unique}) > 1:
            raise FewShotDataError(f"{source}: labels of several attributes "
                                   f"{sorted({i.attribute for i in unique})}; a set has one")
        values = tuple(sorted({i.value for i in unique}))
        if len(values) < 2:
            raise FewShotDataError(f"{source}: a new attribute needs at least two values, "
                                   f"found only {list(values)}")
        return cls(tuple(unique), values, source)

    @property
    def paths(self) -> list[Path]:
        return [i.path for i in self.items]

    @property
    def labels(self) -> np.ndarray:
        index = {v: i for i, v in enumerate(self.values)}
        return np.array([index[i.value] for i in self.items], dtype=np.int64)

    def counts(self) -> dict[str, int]:
        counts = Counter(i.value for i in self.items)
        return {v: counts[v] for v in self.values}

    def attribute(self, name: str, description: str = "",
                  applies_to: tuple[str, ...] = ()) -> Attribute:
        """The taxonomy entry of this set (``source="fewshot"``); ``applies_to`` names the
        garment types it means something for (empty: every garment)."""
        try:
            return Attribute(name=name, values=self.values, source="fewshot",
                             description=description or f"few-shot attribute from {self.source}",
                             applies_to=tuple(applies_to))
        except TaxonomyError as exc:
            raise FewShotDataError(str(exc)) from None


def load_labelled(attribute: str, *sources: str | Path) -> LabelledSet:
    """The labels of ``attribute`` in folders of value folders and/or label files of any
    format, merged (an image labelled twice with different values is an error; one source may
    hold a single value, the union needs two). Folders and ``path,value`` files label
    ``attribute``; files with an attribute column give their rows of it."""
    if not sources:
        raise FewShotDataError("no labelled images given")
    items = []
    for source in sources:
        found = read_labels(source, attribute=attribute)
        mine = [i for i in found if i.attribute == attribute]
        if found and not mine:
            raise FewShotDataError(f"{source}: no labels of {attribute!r} (it labels "
                                   f"{sorted({i.attribute for i in found})})")
        items += mine
    return LabelledSet.of(items, ", ".join(str(s) for s in sources))
