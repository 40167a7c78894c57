"""The labels module: every accepted format reads to the same items; malformed files are refused
with one line naming the file and row."""

from __future__ import annotations

import csv
import shutil

import cv2
import pytest

from fashiontag.errors import FashiontagError
from fashiontag.evaluation import read_labelled, score
from fashiontag.labels import (
    IMAGE_SUFFIXES,
    LabelError,
    LabelledImage,
    by_image,
    first_images,
    image_files,
    read_fashionai_csv,
    read_labels,
    write_csv,
)
from fashiontag.model.datasets import clothing
from fashiontag.taxonomy import DEFAULT_TAXONOMY
from tests.conftest import SAMPLES

#: four real photos and their sleeve length (as FashionAI's annotators would mark it)
PHOTOS = {"T-Shirt_0285f2a0": "Short Sleeves", "Polo_0433a5db": "Short Sleeves",
          "Longsleeve_09c08576": "Long Sleeves", "Hoodie_003f4cab": "Long Sleeves"}
ATTRIBUTE = "sleeve_length"


@pytest.fixture
def images(tmp_path):
    """``tmp/images/<name>.jpg``, the hoodie as a TIFF (a suffix evaluate used to skip)."""
    folder = tmp_path / "images"
    folder.mkdir()
    for name in PHOTOS:
        source = SAMPLES / "clothing" / f"{name}.jpg"
        if name.startswith("Hoodie"):
            cv2.imwrite(str(folder / f"{name}.tif"), cv2.imread(str(source)))
        else:
            shutil.copy2(source, folder / f"{name}.jpg")
    return folder


def _file(images, name: str):
    return next(images.glob(f"{name}.*"))


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def _sources(tmp_path, images) -> dict[str, object]:
    """The same labels in each format the product accepts."""
    folders = tmp_path / ATTRIBUTE
    for name, value in PHOTOS.items():
        (folders / value).mkdir(parents=True, exist_ok=True)
        shutil.copy2(_file(images, name), folders / value / _file(images, name).name)
    (folders / "Short Sleeves" / ".hidden.jpg").write_bytes(b"")  # editors' leftovers are
    (folders / "Short Sleeves" / "notes.txt").write_text("x")  # not images
    files = {name: _file(images, name).name for name in PHOTOS}
    key = DEFAULT_TAXONOMY[ATTRIBUTE].fashionai_key
    values = DEFAULT_TAXONOMY[ATTRIBUTE].values
    return {
        "folders": folders,
        "path,value": _write(tmp_path / f"{ATTRIBUTE}.csv", [["path", "value"]] + [
            [f"images/{files[n]}", v] for n, v in PHOTOS.items()]),
        "path,value without header": _write(tmp_path / "plain" / f"{ATTRIBUTE}.csv", [
            [str(_file(images, n)), v] for n, v in PHOTOS.items()]),
        "path,attribute,value": _write(tmp_path / "fine.csv", [["path", "attribute", "value"]] + [
            [f"images/{files[n]}", ATTRIBUTE, v] for n, v in PHOTOS.items()]),
        "image,attribute,value,unsure": _write(tmp_path / "attributes.csv", [
            ["image", "attribute", "value", "unsure"]] + [[n, ATTRIBUTE, v, ""]
                                                          for n, v in PHOTOS.items()]),
        "fashionai": _write(tmp_path / "Annotations" / "label.csv", [
            [f"images/{files[n]}", key, "".join("y" if x == v else "n" for x in values)]
            for n, v in PHOTOS.items()]),
    }


def test_every_format_reads_to_the_same_items(tmp_path, images):
    expected = {LabelledImage(_file(images, n).resolve(), ATTRIBUTE, v) for n, v in PHOTOS.items()}
    for kind, source in _sources(tmp_path, images).items():
        items = read_labels(source)
        got = {(i.path.name, i.attribute, i.value, i.unsure) for i in items}
        assert got == {(i.path.name, i.attribute, i.value, i.unsure) for i in expected}, kind
        assert len(items) == len(PHOTOS) and all(i.path.is_file() and i.path.is_absolute()
                                                 for i in items), kind
        if kind != "folders":  # the CSVs point at the very same files
            assert set(items) == expected, kind


def test_unsure_marks_and_bare_image_names_resolve(tmp_path, images):
    path = _write(tmp_path / "attributes.csv", [
        ["image", "attribute", "value", "unsure"],
        ["Hoodie_003f4cab", "category", "Hoodie", ""],
        ["Hoodie_003f4cab", "sleeve_length", "Long Sleeves", "?"],
        ["# a comment row"], [],
        ["Polo_0433a5db", "collar_design", "Rib Collar"]])  # unsure column left out
    items = read_labels(path)
    assert [i.path.name for i in items] == ["Hoodie_003f4cab.tif"] * 2 + ["Polo_0433a5db.jpg"]
    assert [i.unsure for i in items] == [False, True, False]
    assert by_image(items)[items[0].path]["category"].value == "Hoodie"
    maybe = _write(tmp_path / "Annotations" / "label.csv", [
        ["images/Polo_0433a5db.jpg", "collar_design_labels", "nnynm"]])
    [item] = read_labels(maybe)
    assert (item.attribute, item.value, item.unsure) == ("collar_design", "Peter Pan", True)


def test_the_shared_attributes_file_reads_and_scores_without_error():
    source = clothing.locate() / "attributes.csv"
    if not source.exists():
        pytest.skip(f"{source} is not here")
    items = read_labelled(source)
    images = by_image(items)
    assert len(items) == 12300 and len(images) == 2199
    assert sum(i.unsure for i in items) == 831
    assert sum("category" in labels for labels in images.values()) == 2199 - 60
    # every label is a value of the taxonomy (or "Other", a photo nobody could place)
    result = score(items, dict.fromkeys(images), DEFAULT_TAXONOMY)
    assert result.images == 2199 and len(result.failed) == 2199


def test_a_studio_export_is_scored_as_the_attribute_it_is_named_after(tmp_path, images):
    items = [LabelledImage(_file(images, n), "category", n.split("_")[0]) for n in PHOTOS]
    exported = write_csv(items, tmp_path / "labels" / "category.csv")
    assert exported.read_text().splitlines()[0] == "path,value"
    assert set(read_labelled(exported)) == {LabelledImage(i.path.resolve(), i.attribute,
                                                          i.value) for i in items}
    assert read_labels(exported, attribute="garment")[0].attribute == "garment"


def test_first_images_keeps_every_label_of_each(tmp_path, images):
    path = _write(tmp_path / "fine.csv", [["path", "attribute", "value"]] + [
        [str(_file(images, n)), a, v] for n in PHOTOS
        for a, v in (("category", n.split("_")[0]), (ATTRIBUTE, PHOTOS[n]))])
    items = read_labels(path)
    kept = first_images(items, 3)
    assert len(kept) == 6 and len(by_image(kept)) == 3


def test_image_files_know_every_suffix_and_skip_hidden_ones(tmp_path, images):
    (images / ".thumbs").mkdir()
    (images / ".thumbs" / "a.jpg").write_bytes(b"")
    (images / "readme.md").write_text("x")
    assert [p.name for p in image_files(images)] == sorted(f"{n}.tif" if n.startswith("Hoodie")
                                                           else f"{n}.jpg" for n in PHOTOS)
    assert {".gif", ".tif", ".tiff", ".webp"} <= set(IMAGE_SUFFIXES)


@pytest.mark.parametrize("text, message", [
    ("path,value\na.jpg\n", r"x.csv:2: expected 'path,value'"),
    ("path,value\nmissing.jpg,red\n", r"x.csv:2: image .*missing.jpg does not exist"),
    ("path,attribute,value\nimages/Polo_0433a5db.jpg,,Rib Collar\n",
     r"x.csv:2: the attribute column is empty"),
    ("image,attribute,value,unsure\nPolo_0433a5db,category,Polo,maybe\n",
     r"x.csv:2: unsure is '\?' or empty, got 'maybe'"),
    ("image,attribute,value,unsure\nno-such-uuid,category,Polo,\n",
     r"x.csv:2: no image no-such-uuid\.\* in .* \(looked for \.jpg, "),
    ("a.jpg,category,Polo,?,extra\n", r"x.csv:1: cannot tell the format"),
    ("a.jpg,hat_labels,ny\n", r"x.csv:1: .*no attribute maps"),
    ("a.jpg,collar_design_labels,nny\n", r"x.csv:1: label 'nny' must be 5 characters"),
    ("a.jpg,collar_design_labels,nyynn\n", r"x.csv:1: label 'nyynn' needs exactly one 'y'"),
    ("a.jpg,collar_design_labels\n", r"x.csv:1: expected 3 columns"),
])
def test_malformed_files_are_refused_in_one_line_naming_file_and_row(tmp_path, images, text,
                                                                    message):
    path = tmp_path / "x.csv"
    path.write_text(text)
    reader = read_fashionai_csv if "_labels" in text else read_labels
    with pytest.raises(LabelError, match=message) as info:
        reader(path, images=tmp_path)
    assert "\n" not in str(info.value) and isinstance(info.value, FashiontagError)


def test_unreadable_sources_and_conflicts_are_refused(tmp_path, images):
    binary = tmp_path / "x.csv"
    binary.write_bytes(b"\xff\xfe\x00path")
    with pytest.raises(LabelError, match="not a UTF-8"):
        read_labels(binary)
    with pytest.raises(LabelError, match="no such folder or file"):
        read_labels(tmp_path / "nowhere")
    (tmp_path / "set" / "empty").mkdir(parents=True)
    with pytest.raises(LabelError, match=r"set/empty: no images"):
        read_labels(tmp_path / "set")
    with pytest.raises(LabelError, match="one sub-folder per value"):
        read_labels(images)
    path = _write(tmp_path / "twice.csv", [["images/Polo_0433a5db.jpg", "red"],
                                           ["images/Polo_0433a5db.jpg", "blue"]])
    with pytest.raises(LabelError, match=r"Polo_0433a5db.jpg is labelled both 'red' and 'blue'"):
        by_image(read_labels(path))


def test_missing_images_are_kept_where_asked(tmp_path):
    path = _write(tmp_path / "category.csv", [["path", "value"], ["/gone/a.jpg", "Hoodie"]])
    [item] = read_labels(path, must_exist=False)
    assert (str(item.path), item.attribute, item.value) == ("/gone/a.jpg", "category", "Hoodie")
