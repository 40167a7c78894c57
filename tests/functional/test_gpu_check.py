"""The GPU check's CPU side: its prepare step, and its run step as a dry run on CPU.

The GPU machine gets only what ``prepare`` writes plus the weights; if either step rotted here,
a rare GPU loan would be spent finding out.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from tests.conftest import ROOT


def _check(*args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), *args],
                   check=True, cwd=ROOT, timeout=600)


def test_prepare_then_a_cpu_dry_run_agree_with_the_served_onnx_model(tmp_path, built_model):
    reference = tmp_path / "reference.npz"
    _check("prepare", "--photos", "12", "--reference", str(reference))
    with np.load(reference) as data:
        assert data["tiles"].shape == (12, 224, 224, 3) and data["tiles"].dtype == np.uint8
        assert len(data["reference"]) == 12 and len(data["labels"]) == 12
    out = tmp_path / "gpu_check.json"
    _check("run", "--device", "cpu", "--batches", "1", "--reference", str(reference),
           "--out", str(out))
    result = json.loads(out.read_text())
    torch_fp32 = result["pytorch_cpu"]["torch fp32"]
    assert torch_fp32["parity_vs_onnx_cpu"]["max_abs_diff"] < 1e-4
    assert torch_fp32["parity_vs_onnx_cpu"]["min_top1_agreement"] == 1.0
    assert torch_fp32["category_accuracy"] == result["pytorch_cpu"]["category_accuracy_onnx_cpu"]
    assert torch_fp32["images_per_s"]["1"] > 0
    assert result["tensorrt"].get("skipped") or "tensorrt fp16" in result["tensorrt"]
    pipeline = result["pipeline_jpeg_cpu"]  # torchvision (nvJPEG) exists on the GPU machine only
    assert pipeline.get("skipped") or pipeline["parity_vs_onnx_cpu"]["min_top1_agreement"] > 0.9
