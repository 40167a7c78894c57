"""Catalog sources: directory, list, CSV, plain files; resume skipping."""

from __future__ import annotations

import pytest

from fashiontag.tagging.sources import (
    SourceError,
    SourceItem,
    count_items,
    iter_csv,
    iter_directory,
    iter_list,
    open_sources,
    skip_done,
)


@pytest.fixture
def tree(tmp_path):
    for rel in ("b/2.jpg", "a/1.png", "a/z/3.jpg", "top.jpg", ".hidden.jpg", ".git/x.jpg",
                "notes.txt"):
        path = tmp_path / "cat" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    return tmp_path / "cat"


def test_directory_is_walked_recursively_in_sorted_order_with_relative_ids(tree):
    items = list(iter_directory(tree))
    assert [i.id for i in items] == ["notes.txt", "top.jpg", "a/1.png", "a/z/3.jpg", "b/2.jpg"]
    assert all(i.path == tree / i.id for i in items)


def test_directory_keeps_non_image_files_so_they_get_an_error_record(tree):
    assert "notes.txt" in {i.id for i in iter_directory(tree)}


def test_list_file_resolves_relative_paths_against_its_folder(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("# catalog\nimgs/a.jpg\n\n/abs/b.jpg\n  imgs/c.jpg  \n")
    items = list(iter_list(listing))
    assert items == [SourceItem("imgs/a.jpg", tmp_path / "imgs/a.jpg"),
                     SourceItem("/abs/b.jpg", tmp_path / "/abs/b.jpg"),
                     SourceItem("imgs/c.jpg", tmp_path / "imgs/c.jpg")]


def test_csv_takes_ids_and_paths_from_the_named_columns(tmp_path):
    table = tmp_path / "catalog.csv"
    table.write_text("sku,file,price\nA1,img/a.jpg,10\nB2,/data/b.jpg,12\n")
    items = list(iter_csv(table, id_column="sku", path_column="file"))
    assert items == [SourceItem("A1", tmp_path / "img/a.jpg"), SourceItem("B2", tmp_path /
                                                                           "/data/b.jpg")]


def test_csv_without_the_columns_is_a_clear_error(tmp_path):
    table = tmp_path / "catalog.csv"
    table.write_text("sku,file\nA1,a.jpg\n")
    with pytest.raises(SourceError, match="no column 'id', 'path'"):
        list(iter_csv(table))


def test_csv_row_without_an_id_names_its_line(tmp_path):
    table = tmp_path / "catalog.csv"
    table.write_text("id,path\nA1,a.jpg\n,b.jpg\n")
    with pytest.raises(SourceError, match="line 3"):
        list(iter_csv(table))


def test_auto_detects_each_kind_and_chains_them(tree, tmp_path):
    (tmp_path / "l.txt").write_text("x.jpg\n")
    (tmp_path / "c.csv").write_text("id,path\nc1,y.jpg\n")
    ids = [i.id for i in open_sources([tree, tmp_path / "l.txt", tmp_path / "c.csv",
                                       tree / "top.jpg"])]
    assert ids == ["notes.txt", "top.jpg", "a/1.png", "a/z/3.jpg", "b/2.jpg", "x.jpg", "c1",
                   str(tree / "top.jpg")]
    assert count_items([tree]) == 5


def test_a_missing_source_on_the_command_line_is_an_error_not_a_record(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        list(open_sources([tmp_path / "typo"]))


def test_skip_done_skips_resumed_and_repeated_ids_and_says_which(tmp_path):
    items = [SourceItem(i, tmp_path / i) for i in ("a", "b", "a", "c", "d")]
    skipped = []
    kept = list(skip_done(items, {"c"}, lambda item, repeated: skipped.append((item.id,
                                                                               repeated))))
    assert [i.id for i in kept] == ["a", "b", "d"]
    assert skipped == [("a", True), ("c", False)]
