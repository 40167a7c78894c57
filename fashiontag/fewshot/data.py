"""Labelled image sets for a new attribute: a folder per value, or a CSV of ``path,value``.

Validation happens here, before any feature is computed, and every error names the file (and
line) at fault. Value order is sorted, so the same data always gives the same attribute.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fashiontag.errors import FashiontagError
from fashiontag.taxonomy import Attribute, TaxonomyError

__all__ = ["LabelledImage", "LabelledSet", "FewShotDataError", "load_labelled", "read_folder",
           "read_csv", "write_csv", "image_files", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


class FewShotDataError(FashiontagError):
    """A labelled set cannot be used as given (missing files, one value only, bad CSV rows...)."""


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    value: str


@dataclass(frozen=True)
class LabelledSet:
    """Images with one value each; ``values`` sorted, ``labels`` index into them."""

    items: tuple[LabelledImage, ...]
    values: tuple[str, ...]
    source: str = ""

    @classmethod
    def of(cls, items: list[LabelledImage], source: str = "") -> LabelledSet:
        if not items:
            raise FewShotDataError(f"{source}: no labelled images")
        seen: dict[Path, str] = {}
        for item in items:
            key = item.path.resolve()
            if seen.get(key, item.value) != item.value:
                raise FewShotDataError(f"{source}: {item.path} is labelled both "
                                       f"{seen[key]!r} and {item.value!r}")
            seen[key] = item.value
        unique = list({i.path.resolve(): i for i in items}.values())
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


def image_files(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (sorted; hidden files skipped)."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower() in IMAGE_SUFFIXES)


def read_folder(root: str | Path) -> LabelledSet:
    """``root/<value>/<image>``: each sub-folder name is a value."""
    return LabelledSet.of(_folder_items(Path(root)), str(root))


def _folder_items(root: Path) -> list[LabelledImage]:
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise FewShotDataError(f"{root}: expected one sub-folder per value (e.g. {root}/striped/"
                               f"*.jpg, {root}/plain/*.jpg), found none")
    items = []
    for folder in folders:
        files = image_files(folder)
        if not files:
            raise FewShotDataError(f"{folder}: no images (expected {sorted(IMAGE_SUFFIXES)})")
        items += [LabelledImage(f, folder.name) for f in files]
    return items


def read_csv(path: str | Path, image_root: str | Path | None = None) -> LabelledSet:
    """Rows ``path,value[,...]`` (optional header; ``#`` comments); paths relative to the CSV's
    folder or ``image_root``. Rows with an empty value are not labelled yet and are skipped (a
    filled-in ``fewshot suggest`` file can be passed as it is)."""
    return LabelledSet.of(_csv_items(Path(path), image_root), str(path))


def _csv_items(path: Path, image_root: str | Path | None = None) -> list[LabelledImage]:
    root = Path(image_root) if image_root is not None else path.parent
    items = []
    with path.open(newline="", encoding="utf-8") as f:
        for line_no, row in enumerate(csv.reader(f), start=1):
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            if line_no == 1 and [c.strip().lower() for c in row[:2]] == ["path", "value"]:
                continue
            where = f"{path}:{line_no}"
            if len(row) < 2:
                raise FewShotDataError(f"{where}: expected 'path,value', got {row!r}")
            image, value = row[0].strip(), row[1].strip()
            if not value:
                continue
            image_path = Path(image) if Path(image).is_absolute() else root / image
            if not image_path.is_file():
                raise FewShotDataError(f"{where}: image {image_path} does not exist")
            items.append(LabelledImage(image_path, value))
    return items


def _items(source: Path) -> list[LabelledImage]:
    if source.is_dir():
        return _folder_items(source)
    if source.is_file() and source.suffix.lower() == ".csv":
        return _csv_items(source)
    raise FewShotDataError(f"{source}: expected a folder with one sub-folder per value, or a "
                           ".csv file of path,value rows")


def load_labelled(*sources: str | Path) -> LabelledSet:
    """Folders of value folders and/or ``.csv`` files, merged (an image labelled twice with
    different values is an error; one source may hold a single value, the union needs two)."""
    if not sources:
        raise FewShotDataError("no labelled images given")
    items = [item for source in sources for item in _items(Path(source))]
    return LabelledSet.of(items, ", ".join(str(s) for s in sources))


def write_csv(labelled: LabelledSet, path: str | Path) -> Path:
    """Export labels as ``path,value`` (absolute paths), readable by :func:`read_csv`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "value"])
        for item in labelled.items:
            writer.writerow([str(item.path.resolve()), item.value])
    tmp.replace(path)
    return path
