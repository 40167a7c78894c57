"""Labelled sets, refusals and the human-in-the-loop files (no backbone, no server)."""

from __future__ import annotations

import numpy as np
import pytest

from fashiontag.fewshot.data import FewShotDataError, load_labelled
from fashiontag.fewshot.report import (
    DataRequirements,
    InsufficientDataError,
    check_accuracy,
    check_counts,
    confusion_table,
)
from fashiontag.fewshot.suggest import rank_pool, uncertainty, write_suggestions
from fashiontag.images import encode_png
from fashiontag.labels import LabelError, write_csv


def _write_images(root, counts: dict[str, int]):
    for value, n in counts.items():
        (root / value).mkdir(parents=True)
        for i in range(n):
            pixel = np.full((8, 8, 3), (i * 7) % 256, np.uint8)
            (root / value / f"{i:03d}.png").write_bytes(encode_png(pixel))
    return root


def test_folder_per_value_gives_sorted_values_and_labels(tmp_path):
    labelled = load_labelled("pattern", _write_images(tmp_path / "set", {"plain": 3,
                                                                         "dotted": 2}))
    assert labelled.values == ("dotted", "plain")
    assert labelled.counts() == {"dotted": 2, "plain": 3}
    assert sorted(labelled.labels.tolist()) == [0, 0, 1, 1, 1]
    assert labelled.attribute("pattern").source == "fewshot"


def test_csv_rows_resolve_relative_paths_and_skip_unlabelled_rows(tmp_path):
    _write_images(tmp_path / "img", {"a": 2, "b": 2})
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text("path,value\n# a comment\nimg/a/000.png,red\nimg/a/001.png,red\n"
                        "img/b/000.png,blue\nimg/b/001.png,\n")
    labelled = load_labelled("colour", csv_file)
    assert labelled.counts() == {"blue": 1, "red": 2}


def test_csv_errors_name_the_line_at_fault(tmp_path):
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text("missing.png,red\n")
    with pytest.raises(LabelError, match=r"labels.csv:1: image .*missing.png does not"):
        load_labelled("colour", csv_file)


def test_the_rows_of_the_attribute_are_taken_from_a_file_of_several(tmp_path):
    _write_images(tmp_path / "img", {"a": 2})
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text("path,attribute,value\nimg/a/000.png,colour,red\n"
                        "img/a/001.png,colour,blue\nimg/a/001.png,pattern,dotted\n")
    assert load_labelled("colour", csv_file).counts() == {"blue": 1, "red": 1}
    with pytest.raises(FewShotDataError, match=r"no labels of 'fit' \(it labels \['colour', "):
        load_labelled("fit", csv_file)


@pytest.mark.parametrize("layout, message", [
    ({"only": 3}, "at least two values"),
    ({}, "one sub-folder per value"),
])
def test_unusable_folders_are_refused_clearly(tmp_path, layout, message):
    root = tmp_path / "set"
    root.mkdir()
    _write_images(root, layout) if layout else None
    with pytest.raises((FewShotDataError, LabelError), match=message):
        load_labelled("pattern", root)


def test_an_image_labelled_twice_differently_is_an_error(tmp_path):
    _write_images(tmp_path / "img", {"a": 1, "b": 1})
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    one.write_text("img/a/000.png,red\nimg/b/000.png,blue\n")
    two.write_text("img/a/000.png,blue\nimg/b/000.png,blue\n")
    with pytest.raises(LabelError, match="labelled both"):
        load_labelled("colour", one, two)


def test_exported_labels_read_back_identically(tmp_path):
    labelled = load_labelled("size", _write_images(tmp_path / "set", {"x": 2, "y": 3}))
    again = load_labelled("size", write_csv(labelled.items, tmp_path / "out.csv"))
    assert {(p.resolve(), v) for p, v in zip(again.paths, again.labels, strict=True)} == \
        {(p.resolve(), v) for p, v in zip(labelled.paths, labelled.labels, strict=True)}


def test_too_few_images_are_refused_with_how_many_more_each_value_needs():
    with pytest.raises(InsufficientDataError) as info:
        check_counts("pattern", {"dotted": 3, "plain": 9, "striped": 8})
    text = str(info.value)
    assert "need 5 more images for value 'dotted' (has 3)" in text
    assert "plain" not in text.split("need", 1)[1] and "striped" not in text.split("need", 1)[1]


def test_unbalanced_values_are_refused_even_above_the_minimum():
    with pytest.raises(InsufficientDataError, match="unbalanced") as info:
        check_counts("pattern", {"dotted": 10, "plain": 60})
    assert "need 10 more images for value 'dotted' (has 10)" in str(info.value)


def test_enough_balanced_images_pass():
    check_counts("pattern", {"dotted": 8, "plain": 20}, DataRequirements(min_per_value=8))


def test_a_head_no_better_than_chance_is_refused():
    with pytest.raises(InsufficientDataError, match="not clearly above chance"):
        check_accuracy("pattern", 0.55, 2)
    check_accuracy("pattern", 0.9, 2)
    check_accuracy("pattern", None, 2)  # nothing measured, nothing to refuse on


def test_confusion_table_has_one_row_and_column_per_value():
    table = confusion_table(np.array([[5, 1], [0, 7]]), ("dotted", "plain"))
    lines = table.splitlines()
    assert len(lines) == 3 and lines[1].startswith("[0] dotted") and lines[2].split()[-2:] == \
        ["0", "7"]


def test_uncertainty_ranks_the_closest_call_first(tmp_path):
    probabilities = np.array([[0.98, 0.02], [0.5, 0.5], [0.7, 0.3]])
    for method in ("entropy", "margin"):
        assert np.argsort(-uncertainty(probabilities, method)).tolist() == [1, 2, 0]
    paths = [tmp_path / f"{i}.png" for i in range(3)]
    ranked = rank_pool(probabilities, paths, ("a", "b"), exclude={paths[1]})
    assert [s.path for s in ranked] == [paths[2], paths[0]]  # the labelled one is skipped
    assert ranked[0].predicted == "a" and ranked[0].margin == pytest.approx(0.4)
    out = write_suggestions(ranked, tmp_path / "next.csv").read_text().splitlines()
    assert out[0].startswith("path,value,predicted") and out[1].split(",")[1] == ""


def test_fewshot_add_refuses_too_little_data_before_training(tmp_path):
    import subprocess
    import sys

    images = _write_images(tmp_path / "set", {"dotted": 3, "plain": 10})
    done = subprocess.run([sys.executable, "-m", "fashiontag", "fewshot", "add", "pattern",
                           "--images", str(images), "--artifacts", str(tmp_path / "artifacts"),
                           "--repository", str(tmp_path / "repo")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "need 5 more images for value 'dotted' (has 3)" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "artifacts").exists() and not (tmp_path / "repo").exists()
