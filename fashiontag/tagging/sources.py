"""Where a catalog comes from: a directory tree, a text file of paths, a CSV with id and path
columns, or plain image files. Every source is a lazy, deterministic iterator of
:class:`SourceItem` ``(id, path)``, so millions of entries never sit in memory and a resumed run
sees the same ids in the same order.

Ids are what ``--resume`` keys on: a directory's files are identified by their path relative to
the directory, a list's and plain files' by the path as written, a CSV's by its id column.

Remote sources (the ``remote`` extra): an object-store prefix (``s3://bucket/photos/``) is listed
like a directory, a list or CSV may itself be a URL and may name URLs (relative entries resolve
against the list's URL), and a plain URL is one image. Items then carry the URL as a string and
the client reads it (:mod:`fashiontag.client.remote`). HTTP(S) has no listing: give a list.
"""

from __future__ import annotations

import csv
import io
import os
import posixpath
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urljoin

from fashiontag.client.remote import describe_error, filesystem, is_http, is_url, scheme
from fashiontag.errors import FashiontagError

__all__ = ["SourceItem", "SourceError", "SOURCE_KINDS", "iter_directory", "iter_list", "iter_csv",
           "iter_files", "iter_prefix", "open_sources", "count_items", "skip_done"]

SOURCE_KINDS = ("auto", "dir", "list", "csv", "files")
LIST_SUFFIXES = {".txt", ".lst", ".list"}


class SourceError(FashiontagError):
    """A catalog source is missing or malformed (not a per-image problem)."""


class SourceItem(NamedTuple):
    """One catalog entry. A plain tuple, so clients accept it as an ``(id, path)`` item; a
    remote entry's path is its URL, a string."""

    id: str
    path: Path | str


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
    """One path or URL per line (blank lines and ``#`` comments skipped); relative paths are
    relative to the list file's folder (or URL); the id is the entry as written."""
    list_file = list_file if is_url(list_file) else Path(list_file)
    base = _base(list_file)
    with _open_text(list_file) as f:
        for line in f:
            entry = line.strip()
            if entry and not entry.startswith("#"):
                yield SourceItem(entry, _resolve(base, entry))


def iter_csv(csv_file: str | Path, id_column: str = "id",
             path_column: str = "path") -> Iterator[SourceItem]:
    """Rows of a CSV with a header naming ``id_column`` and ``path_column``; relative paths are
    relative to the CSV's folder."""
    csv_file = csv_file if is_url(csv_file) else Path(csv_file)
    base = _base(csv_file)
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
    """Plain image files (or URLs); the id is the path as given."""
    for path in paths:
        yield SourceItem(str(path), path if is_url(path) else Path(path))


def iter_prefix(url: str) -> Iterator[SourceItem]:
    """Every object below an object-store prefix (hidden names excluded), sorted, ids relative
    to the prefix, like :func:`iter_directory`."""
    if is_http(url):
        raise SourceError(f"{url}: an HTTP(S) folder cannot be listed; give a list file of "
                          "image URLs (.txt) or a CSV instead")
    fs, root = filesystem(url)
    root = root.rstrip("/")
    try:
        found = sorted(fs.find(root))
    except Exception as exc:  # a missing bucket, no credentials, an unreachable endpoint
        raise SourceError(f"cannot list {url}: {describe_error(exc)}") from None
    if not found:
        raise SourceError(f"{url}: no objects under this prefix")
    for key in found:
        rel = key[len(root):].lstrip("/") if key.startswith(root) else key
        if rel and not any(part.startswith(".") for part in rel.split("/")):
            yield SourceItem(rel, f"{scheme(url)}://{key}")


def open_sources(specs: Sequence[str | Path], kind: str = "auto", id_column: str = "id",
                 path_column: str = "path") -> Iterator[SourceItem]:
    """All ``specs`` in order. ``auto``: a directory is walked, ``*.csv`` is a CSV,
    ``*.txt``/``*.lst``/``*.list`` is a list of paths, anything else is an image file."""
    if kind not in SOURCE_KINDS:
        raise SourceError(f"unknown source kind {kind!r}; one of {SOURCE_KINDS}")
    for spec in specs:
        if is_url(spec):
            yield from _open_remote(spec, kind, id_column, path_column)
            continue
        path = Path(spec)
        if not path.exists():  # a typo on the command line; files inside lists/CSVs that are
            raise SourceError(f"source {spec} does not exist")  # missing get error records
        yield from _open_kind(kind if kind != "auto" else _guess(path), path, spec,
                              id_column, path_column)


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


def _open_remote(url: str, kind: str, id_column: str, path_column: str
                 ) -> Iterator[SourceItem]:
    """A URL source; a single image URL is not checked here (a 404 gets an error record)."""
    yield from _open_kind(kind if kind != "auto" else _guess_remote(url), url, url,
                          id_column, path_column)


def _open_kind(kind: str, where, spec: str, id_column: str, path_column: str
               ) -> Iterator[SourceItem]:
    """One source of a known kind: a local path or a URL (a remote "dir" is a prefix)."""
    if kind == "dir":
        yield from (iter_prefix(where) if is_url(spec) else iter_directory(where))
    elif kind == "csv":
        yield from iter_csv(where, id_column, path_column)
    elif kind == "list":
        yield from iter_list(where)
    else:
        yield from iter_files([spec])


def _guess_remote(url: str) -> str:
    suffix = posixpath.splitext(url.split("?", 1)[0])[1].lower()
    if suffix == ".csv":
        return "csv"
    if suffix in LIST_SUFFIXES:
        return "list"
    if url.endswith("/"):
        return "dir"
    if not is_http(url):
        fs, path = filesystem(url)
        try:
            if fs.isdir(path):
                return "dir"
        except Exception as exc:
            raise SourceError(f"cannot read {url}: {describe_error(exc)}") from None
    return "files"


def _base(source: str | Path) -> str | Path:
    """What relative entries of a list or CSV resolve against."""
    return source if is_url(source) else source.parent


def _guess(path: Path) -> str:
    if path.is_dir():
        return "dir"
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in LIST_SUFFIXES:
        return "list"
    return "files"


def _resolve(base: Path | str, entry: str) -> Path | str:
    if is_url(entry):
        return entry
    if isinstance(base, str):  # a remote list: relative to its URL, as a browser would
        if is_http(base):
            return urljoin(base, entry)
        protocol, rest = base.split("://", 1)
        bucket, _, key = rest.partition("/")
        joined = entry.lstrip("/") if entry.startswith("/") else \
            posixpath.join(posixpath.dirname(key), entry)
        return f"{protocol}://{bucket}/{posixpath.normpath(joined)}"
    path = Path(entry).expanduser()
    return path if path.is_absolute() else base / path


def _open_text(path: Path | str):
    if is_url(path):
        fs, inner = filesystem(path)
        try:
            return io.TextIOWrapper(fs.open(inner, "rb"), encoding="utf-8-sig", newline="")
        except Exception as exc:
            raise SourceError(f"cannot read {path}: {describe_error(exc)}") from None
    try:
        return path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None

