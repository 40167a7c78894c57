"""The runtime benchmark's smoke mode: every path it measures runs, and its report is complete.

Timing is never asserted (the machine is shared); what is asserted is that each configuration
produced a measurement, that ratios are computed against the same round's FP32 baseline, and
that the served INT8 pipeline answered every request.
"""

from __future__ import annotations

import json

import pytest

from benchmarks import runtimes


# ~40-50 s on 2 cores: part of `make bench` (pytest -m slow), keeping `make test` under 12 min
@pytest.mark.slow
def test_runtime_benchmark_smoke_measures_every_configuration(tmp_path, built_model):
    out = tmp_path / "runtimes.json"
    result = runtimes.main(["--smoke", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    batch8 = result["model_only"]["batch_8"]
    assert batch8[runtimes.BASELINE]["x_onnxruntime_fp32"] == pytest.approx(1.0)
    assert set(batch8) == set(runtimes.configs(2, result["openvino"]))
    assert all(v["images_per_s"] > 0 for v in batch8.values())
    for name, per_head in result["int8_agreement_rendered_all_images"].items():
        assert "int8" in name and all(0.0 <= a <= 1.0 for a in per_head.values())
    decode = result["decode_4000x3000"]
    assert decode["size"] == "4000x3000"
    for kind in ("smooth", "camera_grain"):
        assert decode[kind]["fashiontag_preprocess"]["cpu_ms"] > 0
        assert decode[kind]["full_decode_and_resize"]["cpu_ms"] > 0
    if result["openvino"]:
        served = result["served_concurrency_16"]
        assert set(served) == {"fp32 onnxruntime", "fp32 openvino", "bf16 openvino",
                               "int8 openvino"}
        assert all(v["errors"] == 0 and v["images_per_s"] > 0 for v in served.values())
    assert result["summary"]["fastest_int8_model_only_batch_8"] in batch8
    assert result["int8_passed_its_gate"] is runtimes.ARTIFACTS.model("int8").exists()
