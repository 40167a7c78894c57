"""Loader for the FashionAI attribute data set's CSV (``Annotations/label.csv``).

Rows are ``image_path,attribute_key,label`` where ``label`` has one ``n``/``y``/``m`` character per
value of that attribute, in taxonomy order, with exactly one ``y``. Each image is labelled for one
attribute only; the trainer masks the others.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from fashiontag.errors import FashiontagError
from fashiontag.taxonomy import DEFAULT_TAXONOMY, Taxonomy

__all__ = ["FashionAIRecord", "FashionAICsvError", "read_label_csv"]


class FashionAICsvError(FashiontagError):
    """A row of a FashionAI label CSV does not match the taxonomy."""


@dataclass(frozen=True)
class FashionAIRecord:
    path: Path
    attribute: str  # taxonomy name, e.g. "sleeve_length"
    value_index: int
    maybe: tuple[int, ...]  # indices marked "m": plausible alternatives, not used as targets


def read_label_csv(csv_path: str | Path, image_root: str | Path | None = None,
                   taxonomy: Taxonomy = DEFAULT_TAXONOMY) -> list[FashionAIRecord]:
    """Parse and validate every row; errors name the file, line and what was expected."""
    csv_path = Path(csv_path)
    root = Path(image_root) if image_root is not None else csv_path.parent.parent
    records = []
    with csv_path.open(newline="", encoding="utf-8") as f:
        for line_no, row in enumerate(csv.reader(f), start=1):
            if not row or row[0].startswith("#") or row[0] == "image_path":
                continue
            where = f"{csv_path}:{line_no}"
            if len(row) != 3:
                raise FashionAICsvError(f"{where}: expected 3 columns, got {len(row)}")
            image, key, label = (c.strip() for c in row)
            try:
                attribute = taxonomy.by_fashionai_key(key)
            except ValueError as exc:
                raise FashionAICsvError(f"{where}: {exc}") from None
            if len(label) != attribute.num_values or set(label) - set("nym"):
                raise FashionAICsvError(
                    f"{where}: label {label!r} must be {attribute.num_values} characters of n/y/m "
                    f"for {key}"
                )
            if label.count("y") != 1:
                raise FashionAICsvError(f"{where}: label {label!r} needs exactly one 'y'")
            records.append(FashionAIRecord(
                path=root / image,
                attribute=attribute.name,
                value_index=label.index("y"),
                maybe=tuple(i for i, c in enumerate(label) if c == "m"),
            ))
    if not records:
        raise FashionAICsvError(f"{csv_path}: no labelled rows")
    return records
