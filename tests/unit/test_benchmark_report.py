"""The benchmark report's arithmetic: medians over rounds, goal checks, the batching pick.

Inputs are small result records in the shape run_all writes; what is tested is how they are
judged, not any measured number.
"""

from __future__ import annotations

from benchmarks import batching_study, report


def _run(c: int, throughput: float, p50: float, p99: float, ratio: float, round_no: int = 0,
         errors: int = 0) -> dict:
    return {"concurrency": c, "throughput": throughput, "p50_ms": p50, "p90_ms": p99,
            "p99_ms": p99, "server_cpu_cores": 1.0, "client_cpu_cores": 0.02,
            "ratio_to_in_process": ratio, "errors": errors, "requests": 100, "round": round_no}


def _results(ft_c16: float, ft_p99: float, ft_c1_p50: float, single_p50: float = 10.0) -> dict:
    return {
        "reference": {"in_process": {"fp32": [{"best_images_per_s": 100.0, "best_batch": 8,
                                               "single_image": {"p50_ms": single_p50}}]}},
        "systems": [
            {"name": "fashiontag", "kind": "fashiontag", "precision": "fp32",
             "runs": [_run(1, 60, ft_c1_p50, 20, 0.6), _run(16, ft_c16, 150, ft_p99,
                                                            ft_c16 / 100)]},
            {"name": "torchserve", "kind": "peer", "precision": "fp32",
             "runs": [_run(1, 40, 25, 40, 0.4), _run(16, 75, 200, 400, 0.75)]},
            {"name": "ray-serve", "kind": "peer", "precision": "fp32",
             "runs": [_run(1, 25, 40, 60, 0.25), _run(16, 45, 300, 570, 0.45)]},
        ],
    }


def _met(checks: list[dict]) -> dict[str, bool | None]:
    return {c["goal"]: c["met"] for c in checks}


def test_goals_are_met_when_fashiontag_beats_every_target():
    met = _met(report.goals(_results(ft_c16=97, ft_p99=240, ft_c1_p50=12)))
    measured = {goal: ok for goal, ok in met.items() if ok is not None}
    assert measured and all(measured.values()), met
    assert met["shipped product (INT8) / best FP32 peer at c16"] is None  # no INT8 system


def test_goals_report_each_miss_separately():
    met = _met(report.goals(_results(ft_c16=90, ft_p99=450, ft_c1_p50=14)))
    assert met["fashiontag FP32 throughput at c16 / in-process best"] is False
    assert met["fashiontag p99 at c16 < torchserve p99"] is False
    assert met["fashiontag p99 at c16 < ray-serve p99"] is True
    assert met["fashiontag p50 at c1 - in-process single-image p50 (ms)"] is False


def test_a_non_fp32_fashiontag_system_is_judged_against_the_best_fp32_peer():
    results = _results(ft_c16=97, ft_p99=240, ft_c1_p50=12)
    results["systems"].append({"name": "fashiontag-int8", "kind": "fashiontag",
                               "precision": "int8", "runs": [_run(16, 160, 100, 200, 1.6)]})
    (check,) = [c for c in report.goals(results) if c["goal"].startswith("fashiontag-int8")]
    assert check["value"] == 160 / 75 and check["met"] is True


def test_by_concurrency_takes_medians_over_rounds_and_sums_errors():
    system = {"runs": [_run(16, t, 100, 200, t / 100, i, errors=1)
                       for i, t in enumerate((80, 100, 90))]}
    row = report.by_concurrency(system)[16]
    assert row["throughput"] == 90 and row["errors"] == 3 and row["rounds"] == 3


def test_markdown_report_has_a_row_per_system_and_the_goal_table():
    results = _results(ft_c16=97, ft_p99=240, ft_c1_p50=12)
    results["goals"] = report.goals(results)
    text = report.markdown(results)
    for name in ("fashiontag", "torchserve", "ray-serve"):
        assert f"| {name} | fp32 |" in text
    assert "| goal | measured | target | met |" in text


def _config(label: str, c1_p50: float, c16: float) -> dict:
    return {"label": label, "settings": {}, "results": {
        "1": {"requests": 10, "p50_ms": c1_p50, "throughput": 1000 / c1_p50},
        "16": {"requests": 10, "p50_ms": 100.0, "throughput": c16}}}


def test_batching_pick_prefers_throughput_only_among_low_latency_configs():
    rows = [_config("no wait", 11.0, 95.0), _config("wait 5 ms", 16.0, 99.0),
            _config("wait 0.5 ms", 11.5, 97.0)]
    assert batching_study.pick(rows)["label"] == "wait 0.5 ms"
