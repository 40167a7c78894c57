"""Where a catalog comes from: a directory tree, a text file of paths, a CSV with id and path
columns, or plain image files. Every source is a lazy, deterministic iterator of
:class:`SourceItem` ``(id, path)``, so millions of entries never sit in memory and a resumed run
sees the same ids in the same order.

Ids are what ``--resume`` keys on: a directory's files are identified by their path relative to
the directory, a list's and plain files' by the path as written, a CSV's by its id column.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from fashiontag.errors import FashiontagError

__all__ = ["SourceItem", "SourceError", "SOURCE_KINDS", "iter_directory", "iter_list", "iter_csv",
           "iter_files", "open_sources", "count_items", "skip_done"]

SOURCE_KINDS = ("auto", "dir", "list", "csv", "files")
LIST_SUFFIXES = {".txt", ".lst", ".list"}


class SourceError(FashiontagError):
    """A catalog source is missing or malformed (not a per-image problem)."""


class SourceItem(NamedTuple):
    """One catalog entry. A plain tuple, so clients accept it as an ``(id, path)`` item."""

    id: str
    path: Path


def iter_directory(root: str | Path) -> Iterator[SourceItem]:
    """Every regular file below ``root`` (hidden ones excluded), sorted, ids relative to ``root``.

    Not filtered by suffix on purpose: a stray non-image file gets an error record instead of
    silently going missing from the output.
    """
    root = Path(root)
    if not root.is_dir():
        raise SourceError(f"{root} is not a directory")
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(folder) / name
            if path.is_file():
                yield SourceItem(path.relative_to(root).as_posix(), path)


def iter_list(list_file: str | Path) -> Iterator[SourceItem]:
    """One path per line (blank lines and ``#`` comments skipped); relative paths are relative
    to the list file's folder; the id is the path as written."""
    list_file = Path(list_file)
    base = list_file.parent
    with _open_text(list_file) as f:
        for line in f:
            entry = line.strip()
            if entry and not entry.startswith("#"):
                yield SourceItem(entry, _resolve(base, entry))


def iter_csv(csv_file: str | Path, id_column: str = "id",
             path_column: str = "path") -> Iterator[SourceItem]:
    """Rows of a CSV with a header naming ``id_column`` and ``path_column``; relative paths are
    relative to the CSV's folder."""
    csv_file = Path(csv_file)
    base = csv_file.parent
    with _open_text(csv_file) as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [c for c in (id_column, path_column) if c not in header]
        if missing:
            raise SourceError(f"{csv_file}: no column {', '.join(map(repr, missing))} in the "
                              f"header {header}; choose with --id-column/--path-column")
        for row in reader:
            item_id, path = (row.get(id_column) or "").strip(), (row.get(path_column) or "").strip()
            if not item_id:
                raise SourceError(f"{csv_file}, line {reader.line_num}: empty {id_column!r}")
            yield SourceItem(item_id, _resolve(base, path) if path else Path(""))


def iter_files(paths: Iterable[str | Path]) -> Iterator[SourceItem]:
    """Plain image files; the id is the path as given."""
    for path in paths:
        yield SourceItem(str(path), Path(path))


def open_sources(specs: Sequence[str | Path], kind: str = "auto", id_column: str = "id",
                 path_column: str = "path") -> Iterator[SourceItem]:
    """All ``specs`` in order. ``auto``: a directory is walked, ``*.csv`` is a CSV,
    ``*.txt``/``*.lst``/``*.list`` is a list of paths, anything else is an image file."""
    if kind not in SOURCE_KINDS:
        raise SourceError(f"unknown source kind {kind!r}; one of {SOURCE_KINDS}")
    for spec in specs:
        path = Path(spec)
        if not path.exists():  # a typo on the command line; files inside lists/CSVs that are
            raise SourceError(f"source {spec} does not exist")  # missing get error records
        chosen = kind if kind != "auto" else _guess(path)
        if chosen == "dir":
            yield from iter_directory(path)
        elif chosen == "csv":
            yield from iter_csv(path, id_column, path_column)
        elif chosen == "list":
            yield from iter_list(path)
        else:
            yield from iter_files([spec])


def count_items(specs: Sequence[str | Path], kind: str = "auto", id_column: str = "id",
                path_column: str = "path") -> int:
    """How many entries the sources hold (one cheap pass; also validates them up front)."""
    return sum(1 for _ in open_sources(specs, kind, id_column, path_column))


def skip_done(items: Iterable[SourceItem], done: set[str] | frozenset[str],
              on_skip: Callable[[SourceItem, bool], None] | None = None
              ) -> Iterator[SourceItem]:
    """Items whose id is neither in ``done`` (already in the output) nor seen earlier in this
    run, so every id is tagged once. ``on_skip(item, repeated)`` hears about each skipped item
    (``repeated``: the id came twice in the source)."""
    seen: set[str] = set()
    for item in items:
        if item.id in done or item.id in seen:
            if on_skip is not None:
                on_skip(item, item.id in seen)
            continue
        seen.add(item.id)
        yield item


def _guess(path: Path) -> str:
    if path.is_dir():
        return "dir"
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in LIST_SUFFIXES:
        return "list"
    return "files"


def _resolve(base: Path, entry: str) -> Path:
    path = Path(entry).expanduser()
    return path if path.is_absolute() else base / path


def _open_text(path: Path):
    try:
        return path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None
