"""Exactly-once output: append-only JSONL with torn-line repair on resume; Parquet parts."""

from __future__ import annotations

import json

import pytest

from fashiontag.tagging.sink import JsonlSink, ParquetSink, SinkError, open_sink, read_jsonl_ids


def _record(i: int) -> dict:
    return {"id": f"img{i}", "path": f"/c/img{i}.jpg",
            "attributes": {"category": {"value": "Dress", "confidence": 0.9},
                           "pant_length": {"value": None, "confidence": 0.8, "visible": False}},
            "model": "fashiontag", "model_version": "1"}


def test_each_record_is_one_complete_line(tmp_path):
    out = tmp_path / "tags.jsonl"
    with JsonlSink(out) as sink:
        for i in range(3):
            sink.write(_record(i))
    lines = out.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 4
    assert [json.loads(line)["id"] for line in lines[:-1]] == ["img0", "img1", "img2"]


def test_an_existing_output_is_never_clobbered_by_accident(tmp_path):
    out = tmp_path / "tags.jsonl"
    out.write_text(json.dumps(_record(0)) + "\n")
    with pytest.raises(SinkError, match="--resume"):
        JsonlSink(out)
    JsonlSink(out, overwrite=True).close()
    assert out.read_text() == ""


def test_resume_cuts_a_torn_last_line_and_reads_back_the_ids(tmp_path):
    out = tmp_path / "tags.jsonl"
    whole = "".join(json.dumps(_record(i)) + "\n" for i in range(2))
    torn = json.dumps(_record(2))[:25]  # what a SIGKILL inside write() can leave
    out.write_text(whole + torn)
    with JsonlSink(out, resume=True) as sink:
        assert sink.done_ids == {"img0", "img1"}
        assert sink.torn_bytes == len(torn)
        sink.write(_record(2))
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == \
        ["img0", "img1", "img2"]


def test_resume_refuses_a_file_with_a_malformed_complete_line(tmp_path):
    out = tmp_path / "tags.jsonl"
    out.write_text(json.dumps(_record(0)) + "\nnot json\n" + json.dumps(_record(1)) + "\n")
    with pytest.raises(SinkError, match="line 2"):
        JsonlSink(out, resume=True)


def test_read_ids_without_repair_leaves_the_file_alone(tmp_path):
    out = tmp_path / "tags.jsonl"
    out.write_text(json.dumps(_record(0)) + "\n{\"id\": ")
    before = out.read_bytes()
    ids, torn = read_jsonl_ids(out, repair=False)
    assert ids == {"img0"} and torn == len(b"{\"id\": ") and out.read_bytes() == before


def test_parquet_parts_hold_one_column_per_attribute_and_resume_by_id(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "tags.parquet"
    attributes = ["category", "pant_length"]
    with ParquetSink(out, attributes, rows_per_part=2) as sink:
        for i in range(3):
            sink.write(_record(i))
        sink.write({"id": "bad", "path": "/c/bad.jpg", "error": "empty input: 0 bytes",
                    "error_type": "InvalidImageError", "model": None, "model_version": None})
    table = pq.read_table(out)
    assert len(list(out.glob("part-*.parquet"))) == 2
    assert sorted(table["id"].to_pylist()) == ["bad", "img0", "img1", "img2"]
    rows = {r["id"]: r for r in table.to_pylist()}
    assert rows["img0"]["category"] == "Dress" and rows["img0"]["pant_length"] is None
    assert abs(rows["img0"]["category_confidence"] - 0.9) < 1e-6
    assert rows["bad"]["error_type"] == "InvalidImageError" and rows["bad"]["category"] is None
    (out / ".part-00009.tmp").write_bytes(b"half a part")  # a writer killed before its rename
    resumed = open_sink(out, "parquet", resume=True, attributes=attributes)
    assert resumed.done_ids == {"img0", "img1", "img2", "bad"}
    assert not list(out.glob(".part-*.tmp"))
    resumed.write(_record(7))
    resumed.close()
    assert len(pq.read_table(out)) == 5


def test_a_second_writer_on_the_same_output_is_refused(tmp_path):
    out = tmp_path / "tags.jsonl"
    with JsonlSink(out):
        with pytest.raises(SinkError, match="another process"):
            JsonlSink(out, resume=True)
    JsonlSink(out, resume=True).close()  # free again once the first one closed


def test_a_second_parquet_writer_is_refused_too(tmp_path):
    pytest.importorskip("pyarrow")
    with ParquetSink(tmp_path / "t.parquet", ["category"]):
        with pytest.raises(SinkError, match="another process"):
            ParquetSink(tmp_path / "t.parquet", ["category"], resume=True)
