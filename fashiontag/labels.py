"""Labelled images: the one reader of every label format the product accepts.

Whoever reads labels (``fashiontag evaluate``, ``fewshot add``, the studio, training) gets the
same items: one :class:`LabelledImage` per (image, attribute) label, with the image resolved to
an absolute path. Formats (:func:`read_labels` tells them apart by header and columns):

* a folder of value folders, ``root/<value>/<image>`` (images found recursively);
* ``path,value`` CSV (the studio's and ``fewshot``'s files; extra columns such as those of a
  ``fewshot suggest`` file are ignored);
* ``path,attribute,value`` CSV (several rows per image);
* ``image,attribute,value,unsure`` CSV (the annotation team's ``attributes.csv``: ``image`` is a
  file name, with or without its extension, in the ``images/`` folder next to the CSV;
  ``unsure`` is ``?`` or empty);
* FashionAI's ``Annotations/label.csv``: ``image_path,attribute_key,label`` with one ``n``/``y``
  /``m`` character per value, exactly one ``y`` (an ``m``, "maybe", marks the label unsure).

The formats without an attribute column give their values to ``attribute`` (default: the CSV's
file stem, as in the studio's ``labels/<attribute>.csv``, or the folder's name). Rows with an
empty value are not labelled yet and are skipped; ``#`` lines are comments. Paths are relative
to the CSV's folder unless ``images`` says otherwise. A file that does not parse raises
:class:`LabelError`, one line naming the file and line. Attribute names and values are checked by
the consumer against its taxonomy (few-shot attributes are new names by design).
"""

from __future__ import annotations

import csv
import os
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from fashiontag.errors import FashiontagError
from fashiontag.taxonomy import DEFAULT_TAXONOMY, Taxonomy, TaxonomyError

__all__ = ["IMAGE_SUFFIXES", "LabelError", "LabelledImage", "read_labels", "read_folders",
           "read_csv", "read_fashionai_csv", "by_image", "first_images", "image_files",
           "csv_text", "write_csv"]

#: The image files the product reads from folders (what OpenCV decodes; the first is tried
#: first for a file name written without its extension).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")

_UNSURE = {"": False, "?": True}
_FASHIONAI_LABEL = re.compile(r"[nym]+")


class LabelError(FashiontagError):
    """A label source cannot be read as given (missing file, malformed row, conflicting labels)."""


@dataclass(frozen=True)
class LabelledImage:
    """One label: the photo at ``path`` has ``value`` for ``attribute``; ``unsure`` when the
    annotator hesitated (the value is still their best guess)."""

    path: Path
    attribute: str
    value: str
    unsure: bool = False


# ------------------------------------------------------------------------------- images
def image_files(folder: str | Path, recursive: bool = True) -> list[Path]:
    """Image files in ``folder`` (and its sub-folders), sorted; hidden files and folders
    skipped."""
    folder = Path(folder)
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


class _Resolver:
    """Image names of one source → absolute paths, each checked once."""

    def __init__(self, base: Path, must_exist: bool, bare_names: bool = False) -> None:
        self.base, self.must_exist, self.bare_names = base, must_exist, bare_names
        self._done: dict[str, Path | None] = {}

    def __call__(self, name: str, where: str) -> Path:
        if not name:
            raise LabelError(f"{where}: the image column is empty")
        if name not in self._done:
            self._done[name] = self._find(name)
        path = self._done[name]
        if path is None:
            missing = self._candidate(name)
            if self._bare(missing):
                raise LabelError(f"{where}: no image {missing.name}.* in {missing.parent} "
                                 f"(looked for {', '.join(IMAGE_SUFFIXES)})")
            raise LabelError(f"{where}: image {missing} does not exist")
        return path

    def _bare(self, path: Path) -> bool:
        return self.bare_names and path.suffix.lower() not in IMAGE_SUFFIXES

    def _candidate(self, name: str) -> Path:
        path = Path(name).expanduser()
        return (path if path.is_absolute() else self.base / path).resolve()

    def _find(self, name: str) -> Path | None:
        path = self._candidate(name)
        if self._bare(path):
            for suffix in IMAGE_SUFFIXES:  # attributes.csv names images by their uuid only
                if (found := path.with_name(path.name + suffix)).is_file():
                    return found
            return None if self.must_exist else path.with_name(path.name + IMAGE_SUFFIXES[0])
        return path if not self.must_exist or path.is_file() else None


# ------------------------------------------------------------------------------ readers
def read_labels(source: str | Path, attribute: str | None = None,
                images: str | Path | None = None, must_exist: bool = True,
                taxonomy: Taxonomy = DEFAULT_TAXONOMY) -> list[LabelledImage]:
    """Every label of a folder of value folders or of a CSV in any of the formats above.

    ``attribute`` names the attribute of the formats without an attribute column; ``images``
    is the folder image paths are relative to; ``must_exist=False`` keeps labels of images
    that are gone (the studio keeps a label file across catalog changes); ``taxonomy`` maps
    FashionAI keys and label positions to attributes and values.
    """
    path = Path(source)
    if path.is_dir():
        return read_folders(path, attribute or path.name)
    if path.is_file():
        return read_csv(path, attribute, images, must_exist, taxonomy)
    raise LabelError(f"{source}: no such folder or file (expected a folder of value folders or "
                     "a CSV of labels)")


def read_folders(root: str | Path, attribute: str) -> list[LabelledImage]:
    """``root/<value>/<image>``: each sub-folder's name is the value of its images."""
    root = Path(root)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise LabelError(f"{root}: expected one sub-folder per value (e.g. {root}/striped/"
                         f"*.jpg, {root}/plain/*.jpg), found none")
    items = []
    for folder in folders:
        files = image_files(folder)
        if not files:
            raise LabelError(f"{folder}: no images (expected {', '.join(IMAGE_SUFFIXES)} files)")
        items += [LabelledImage(f.resolve(), attribute, folder.name) for f in files]
    return items


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, stripped cells) of the rows that are not blank or comments."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            for line_no, row in enumerate(csv.reader(f), start=1):
                cells = [c.strip() for c in row]
                if any(cells) and not cells[0].startswith("#"):
                    yield line_no, cells
    except UnicodeDecodeError:
        raise LabelError(f"{path}: not a UTF-8 text CSV") from None
    except csv.Error as exc:
        raise LabelError(f"{path}: not a readable CSV ({exc})") from None
    except OSError as exc:
        raise LabelError(f"{path}: cannot read it ({exc.strerror or exc})") from None


_HEADERS = {("path", "value"): "path,value", ("path", "attribute", "value"): "path,attribute,value",
            ("image", "attribute", "value"): "image,attribute,value,unsure",
            ("image_path",): "fashionai"}


def _format(first: list[str], taxonomy: Taxonomy) -> tuple[str, bool]:
    """(format, whether ``first`` is its header) from a CSV's first row."""
    lowered = [c.lower() for c in first]
    for header, name in _HEADERS.items():
        if tuple(lowered[:len(header)]) == header:
            return name, True
    if len(first) == 2:
        return "path,value", False
    if len(first) == 3 and _FASHIONAI_LABEL.fullmatch(first[2]):
        try:
            taxonomy.by_fashionai_key(first[1])
            return "fashionai", False
        except TaxonomyError:
            pass
    if len(first) == 3:
        return "path,attribute,value", False
    raise LabelError(f"cannot tell the format of a row of {len(first)} columns without a header: "
                     "start the file with path,value or path,attribute,value or "
                     "image,attribute,value,unsure")


def read_csv(path: str | Path, attribute: str | None = None, images: str | Path | None = None,
             must_exist: bool = True, taxonomy: Taxonomy = DEFAULT_TAXONOMY
             ) -> list[LabelledImage]:
    """A CSV of labels in any of the CSV formats (see :func:`read_labels`)."""
    path = Path(path)
    rows = _rows(path)
    first = next(rows, None)
    if first is None:
        return []
    try:
        kind, header = _format(first[1], taxonomy)
    except LabelError as exc:
        raise LabelError(f"{path}:{first[0]}: {exc}") from None
    if kind == "fashionai":
        return read_fashionai_csv(path, images, taxonomy, must_exist)
    if not header:
        rows = _chain(first, rows)
    if kind == "image,attribute,value,unsure":
        base = Path(images) if images is not None else (
            path.parent / "images" if (path.parent / "images").is_dir() else path.parent)
        return _attribute_rows(path, rows, _Resolver(base, must_exist, bare_names=True), True)
    resolve = _Resolver(Path(images) if images is not None else path.parent, must_exist)
    if kind == "path,attribute,value":
        return _attribute_rows(path, rows, resolve, False)
    items = []
    for line_no, cells in rows:
        where = f"{path}:{line_no}"
        if len(cells) < 2:
            raise LabelError(f"{where}: expected 'path,value', got {','.join(cells)!r}")
        if cells[1]:
            items.append(LabelledImage(resolve(cells[0], where), attribute or path.stem,
                                       cells[1]))
    return items


def _chain(first: tuple[int, list[str]], rest: Iterator[tuple[int, list[str]]]
           ) -> Iterator[tuple[int, list[str]]]:
    yield first
    yield from rest


def _attribute_rows(path: Path, rows: Iterable[tuple[int, list[str]]], resolve: _Resolver,
                    with_unsure: bool) -> list[LabelledImage]:
    columns = "image,attribute,value,unsure" if with_unsure else "path,attribute,value"
    items = []
    for line_no, cells in rows:
        where = f"{path}:{line_no}"
        if len(cells) < 3 or (with_unsure and len(cells) > 4):
            raise LabelError(f"{where}: expected '{columns}', got {','.join(cells)!r}")
        unsure = cells[3] if with_unsure and len(cells) == 4 else ""
        if unsure not in _UNSURE:
            raise LabelError(f"{where}: unsure is '?' or empty, got {unsure!r}")
        if not cells[1]:
            raise LabelError(f"{where}: the attribute column is empty")
        if cells[2]:
            items.append(LabelledImage(resolve(cells[0], where), cells[1], cells[2],
                                       _UNSURE[unsure]))
    return items


def read_fashionai_csv(path: str | Path, images: str | Path | None = None,
                       taxonomy: Taxonomy = DEFAULT_TAXONOMY, must_exist: bool = True
                       ) -> list[LabelledImage]:
    """FashionAI's ``Annotations/label.csv``; image paths are relative to the data set's root
    (the CSV's grandparent) unless ``images`` says otherwise."""
    path = Path(path)
    resolve = _Resolver(Path(images) if images is not None else path.parent.parent, must_exist)
    items = []
    for i, (line_no, cells) in enumerate(_rows(path)):
        if i == 0 and cells[0].lower() == "image_path":  # a header, where someone added one
            continue
        where = f"{path}:{line_no}"
        if len(cells) != 3:
            raise LabelError(f"{where}: expected 3 columns (image_path,attribute_key,label), "
                             f"got {len(cells)}")
        image, key, label = cells
        try:
            attribute = taxonomy.by_fashionai_key(key)
        except TaxonomyError as exc:
            raise LabelError(f"{where}: {exc}") from None
        if len(label) != attribute.num_values or not _FASHIONAI_LABEL.fullmatch(label):
            raise LabelError(f"{where}: label {label!r} must be {attribute.num_values} "
                             f"characters of n/y/m for {key}")
        if label.count("y") != 1:
            raise LabelError(f"{where}: label {label!r} needs exactly one 'y'")
        items.append(LabelledImage(resolve(image, where), attribute.name,
                                   attribute.values[label.index("y")], "m" in label))
    return items


# ------------------------------------------------------------------------------ grouping
def by_image(items: Iterable[LabelledImage]) -> dict[Path, dict[str, LabelledImage]]:
    """image → attribute → its label, images in first-seen order; the same label given twice
    counts once, two different values for one attribute of one image are an error."""
    out: dict[Path, dict[str, LabelledImage]] = {}
    for item in items:
        labels = out.setdefault(item.path, {})
        seen = labels.setdefault(item.attribute, item)
        if seen.value != item.value:
            raise LabelError(f"{item.path} is labelled both {seen.value!r} and {item.value!r} "
                             f"for {item.attribute!r}")
    return out


def first_images(items: Sequence[LabelledImage], count: int) -> list[LabelledImage]:
    """Every label of the first ``count`` images."""
    keep = set(list(by_image(items))[:count])
    return [item for item in items if item.path in keep]


# ------------------------------------------------------------------------------ writing
def csv_text(items: Iterable[LabelledImage]) -> str:
    """``path,value`` rows (absolute paths) of one attribute's labels, readable by
    :func:`read_labels`."""
    import io

    items = list(items)
    if len({i.attribute for i in items}) > 1:
        raise ValueError("a path,value file holds the labels of one attribute")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["path", "value"])
    for item in items:
        writer.writerow([str(item.path.resolve()), item.value])
    return out.getvalue()


def write_csv(items: Iterable[LabelledImage], path: str | Path) -> Path:
    """:func:`csv_text` written to ``path`` atomically (readers never see half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(csv_text(items), encoding="utf-8")
    tmp.replace(path)
    return path
