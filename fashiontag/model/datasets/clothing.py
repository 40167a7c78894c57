"""Real garment photos (the CC0 "clothing dataset"): loading, label merges and photographer splits.

Layout: ``labels.csv`` (or upstream's ``images.csv``) with ``image, sender_id, label, kids`` and
``images/<image>.jpg``. One photographer's photos share a room, light and camera, so every split
here is by ``sender_id``: no photographer is on two sides, and accuracy measured on the test side
is accuracy on people and rooms the model never saw.

Where the copy comes from (:func:`locate`): ``$FASHIONTAG_CLOTHING``, else ``data/clothing`` in
the checkout (what ``make data`` links or clones), else the shared copy next to the checkout.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fashiontag.artifacts import CHECKOUT
from fashiontag.errors import FashiontagError

__all__ = ["ClothingPhoto", "ClothingSplits", "load", "locate", "sender_split", "UNLABELLED",
           "ENV_VAR", "UPSTREAM", "UPSTREAM_COMMIT", "WEAK_LABELS", "COARSE_GROUPS", "coarse",
           "targets"]

ENV_VAR = "FASHIONTAG_CLOTHING"
UPSTREAM = "https://github.com/alexeygrigorev/clothing-dataset"
UPSTREAM_COMMIT = "7ed86a9cc56763b6acb35e41cb35184e43a5d218"
#: Labels people gave to photos they could not place: usable as unlabelled images, not a class.
UNLABELLED = frozenset({"Not sure", "Other", "Skip"})
_CANDIDATES = (CHECKOUT / "data" / "clothing", CHECKOUT.parent / "shared" / "datasets" / "clothing")

#: What a garment type says about other attributes: weak labels for training and the real-photo
#: check of those heads (garment type → attribute → value).
WEAK_LABELS: dict[str, dict[str, str]] = {
    "sleeve_length": {"T-Shirt": "Short Sleeves", "Polo": "Short Sleeves",
                      "Longsleeve": "Long Sleeves", "Hoodie": "Long Sleeves"},
    "pant_length": {"Shorts": "Short Pant", "Pants": "Full Length"},
}
#: How a customer reads the fine values against those weak labels: which side of short/long each
#: value falls on (Invisible on neither: a record without a length is a miss).
COARSE_GROUPS: dict[str, dict[str, tuple[str, ...]]] = {
    "sleeve_length": {
        "short": ("Sleeveless", "Cup Sleeves", "Short Sleeves", "Elbow Sleeves"),
        "long": ("3/4 Sleeves", "Wrist Length", "Long Sleeves", "Extra Long Sleeves"),
    },
    "pant_length": {
        "short": ("Short Pant", "Mid Length"),
        "full": ("3/4 Length", "Cropped Pant", "Full Length"),
    },
}


def coarse(attribute: str, value: str | None) -> str | None:
    """The short/long side of a fine value (None for Invisible, no value, or no such grouping)."""
    for group, values in COARSE_GROUPS.get(attribute, {}).items():
        if value in values:
            return group
    return None


@dataclass(frozen=True)
class ClothingPhoto:
    image: str  # uuid, the file stem
    path: Path
    sender: str  # who photographed it: the unit of every split
    label: str  # as people gave it (before any merge); one of UNLABELLED when they could not
    kids: bool

    @property
    def labelled(self) -> bool:
        return self.label not in UNLABELLED


def locate(root: str | Path | None = None) -> Path:
    """The data set folder: ``root`` if given, else the first of ``$FASHIONTAG_CLOTHING``,
    ``data/clothing`` and ``../shared/datasets/clothing`` that holds one."""
    candidates: Iterable[Path]
    if root is not None:
        candidates = (Path(root),)
    elif os.environ.get(ENV_VAR):
        candidates = (Path(os.environ[ENV_VAR]),)
    else:
        candidates = _CANDIDATES
    for folder in candidates:
        if _labels_file(folder) is not None:
            return folder
    raise FashiontagError(
        "the clothing photos are not here (looked in "
        f"{', '.join(str(c) for c in candidates)}): run `make data`, or set ${ENV_VAR} to a "
        "folder with labels.csv and images/")


def _labels_file(folder: Path) -> Path | None:
    for name in ("labels.csv", "images.csv"):  # the shared copy / the public upstream
        if (folder / name).is_file() and (folder / "images").is_dir():
            return folder / name
    return None


def load(root: str | Path | None = None) -> list[ClothingPhoto]:
    """Every photo the labels file lists whose image exists, in file order."""
    folder = locate(root)
    photos = []
    with open(_labels_file(folder), newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            path = folder / "images" / f"{row['image']}.jpg"
            if not path.exists():
                continue
            photos.append(ClothingPhoto(row["image"], path, str(row["sender_id"]),
                                        row["label"].strip(),
                                        str(row.get("kids", "")).strip().lower() == "true"))
    if not photos:
        raise FashiontagError(f"{folder} lists no images that exist")
    return photos


@dataclass(frozen=True)
class ClothingSplits:
    train: list[ClothingPhoto]
    val: list[ClothingPhoto]  # model selection and calibration (temperatures)
    test: list[ClothingPhoto]  # reported accuracy; never trained or calibrated on

    def senders(self, part: str) -> set[str]:
        return {p.sender for p in getattr(self, part)}

    def summary(self) -> dict:
        return {part: {"photos": len(getattr(self, part)),
                       "photographers": len(self.senders(part)),
                       "labelled": sum(p.labelled for p in getattr(self, part))}
                for part in ("train", "val", "test")}


def sender_split(photos: Sequence[ClothingPhoto], test_share: float = 0.2,
                 val_share: float = 0.1, max_sender_share: float = 0.03,
                 salt: str = "fashiontag") -> ClothingSplits:
    """Photographers, in an order fixed by a hash of their id, fill the test side up to
    ``test_share`` of the photos, then validation up to ``val_share``; the rest train.

    A photographer with more than ``max_sender_share`` of all photos always trains: one prolific
    photographer would otherwise make a test set that mostly measures one room. Deterministic:
    the same data gives the same split on every machine.
    """
    counts = Counter(p.sender for p in photos)
    total = len(photos)
    order = sorted(counts, key=lambda s: hashlib.sha1(f"{salt}:{s}".encode()).hexdigest())
    side: dict[str, str] = {}
    filled = {"test": 0, "val": 0}
    for sender in order:
        n = counts[sender]
        if n > max_sender_share * total:
            side[sender] = "train"
        elif filled["test"] < test_share * total:
            side[sender] = "test"
            filled["test"] += n
        elif filled["val"] < val_share * total:
            side[sender] = "val"
            filled["val"] += n
        else:
            side[sender] = "train"
    parts: dict[str, list[ClothingPhoto]] = {"train": [], "val": [], "test": []}
    for photo in photos:
        parts[side[photo.sender]].append(photo)
    return ClothingSplits(**parts)


def targets(photos: Sequence[ClothingPhoto], taxonomy) -> dict[str, np.ndarray]:
    """Training targets: attribute → value index per photo (-1 = no label), for the garment type
    (aliases merged, unlabelled photos -1) and the weak labels it implies."""
    category = taxonomy.category
    out = {category.name: np.array([category.index(p.label) if p.labelled else -1
                                    for p in photos], np.int64)}
    for name, by_type in WEAK_LABELS.items():
        if name in taxonomy:
            attribute = taxonomy[name]
            out[name] = np.array([attribute.index(by_type[category.canonical(p.label)])
                                  if category.canonical(p.label) in by_type else -1
                                  for p in photos], np.int64)
    return out
