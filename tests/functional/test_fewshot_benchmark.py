"""The few-shot benchmark's smoke mode runs end to end (full size: see benchmarks/fewshot.py)."""

from __future__ import annotations

import json

import pytest


# ~40-50 s on 2 cores: part of `make bench` (pytest -m slow), keeping `make test` under 12 min
@pytest.mark.slow
def test_fewshot_benchmark_smoke_reports_accuracy_side_by_side_and_a_clean_reload(tmp_path,
                                                                                  built_model):
    from benchmarks.fewshot import main

    out = tmp_path / "fewshot.json"
    result = main(["--smoke", "--out", str(out)])
    assert json.loads(out.read_text()) == result
    for shots, row in result["accuracy"].items():
        for method in ("baseline", "fewshot", "fewshot_pool"):
            assert len(row[method]["runs"]) == result["draws"]
            assert row[method]["mean"] > 1.5 / 10, f"{method} at {shots} shots is near chance"
    t = result["time_to_model"]
    assert t["launch_to_new_version_answering_s"] is not None, "the new version never answered"
    assert t["requests_total"]["failed"] == 0, t["errors"]
    assert t["requests_during_add"]["ok"] > 0 and t["rollback_ok"]
