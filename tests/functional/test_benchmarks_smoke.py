"""Every benchmark script in its smoke mode (seconds, tiny counts), so none of them can rot.

These check that each tool really measures: requests complete, failures are counted, peers
answer with the same probabilities as in-process onnxruntime, and every process a benchmark
started is gone afterwards. Speed itself is never asserted here (see benchmarks/README.md).
"""

from __future__ import annotations

import http.client
import json
import shutil
from pathlib import Path

import numpy as np
import psutil
import pytest

from benchmarks import (
    batching_study,
    locust_runs,
    perf_sweep,
    profile_server,
    reference,
    run_all,
)
from benchmarks.catalog import make_catalog
from benchmarks.common import catalog_blobs, model_files, process_tree
from benchmarks.loadgen import run_closed_loop
from benchmarks.systems import RayServeSystem, TorchServeSystem
from fashiontag.images import preprocess_bytes
from fashiontag.onnxio.metadata import read_metadata
from fashiontag.protocol import ATTRIBUTES_MODEL, ENSEMBLE_MODEL, PIXELS, PROBABILITIES
from fashiontag.runtimes import onnx_session


@pytest.fixture(scope="module")
def blobs() -> list[bytes]:
    return catalog_blobs(16)


@pytest.fixture(scope="module")
def triton_target(server, built_model):
    """The session server seen through the benchmark's own gRPC target."""
    from benchmarks.loadgen import TritonTarget

    width = read_metadata(built_model).taxonomy.total_values

    def make(model=ENSEMBLE_MODEL):
        return TritonTarget(server.grpc_url, model, "IMAGE" if model == ENSEMBLE_MODEL
                            else PIXELS, PROBABILITIES, width)

    return make


def _in_process(model: Path, blob: bytes) -> np.ndarray:
    return onnx_session(model).run([PROBABILITIES], {PIXELS: preprocess_bytes(blob)[None]})[0][0]


# --------------------------------------------------------------------------- reference limits
def test_flop_count_of_the_served_graph_matches_efficientnet_lite0(built_model):
    macs = reference.model_macs(built_model)
    # EfficientNet-Lite0 is published at ~385 M MACs for 224x224; the heads add a few million
    assert 3.7e8 < macs["macs_per_image"] < 4.1e8, macs
    assert macs["by_op"]["Conv"] > 0.95 * macs["macs_per_image"]


def test_reference_measures_in_process_throughput_and_a_positive_sgemm_peak(built_model, blobs):
    peak = reference.peak_gflops(n=256, repeats=2)
    assert peak["peak"] > 0 and peak["threads"] == 2
    ref = reference.in_process(built_model, blobs[:8], batches=(1, 4))
    assert ref["best_images_per_s"] == max(ref["images_per_s"].values()) > 0
    assert 0 < ref["single_image"]["p50_ms"] <= ref["single_image"]["p99_ms"]
    bound = reference.compute_bound(built_model, peak, {"in-process": ref["best_images_per_s"]})
    assert bound["achieved"]["in-process"]["percent_of_peak"] > 0


# --------------------------------------------------------------------------- load generator
def test_closed_loop_client_measures_the_ensemble_without_errors(triton_target, blobs):
    result = run_closed_loop(triton_target(), blobs, concurrency=2, duration_s=2, warmup_s=0.5)
    assert result.errors == 0, result.error_examples
    assert result.requests > 0 and result.throughput > 0
    assert result.p50_ms <= result.p99_ms <= result.max_ms


def test_closed_loop_client_drives_the_attribute_model_alone_with_real_tiles(triton_target,
                                                                             blobs):
    tiles = [preprocess_bytes(b) for b in blobs[:4]]
    result = run_closed_loop(triton_target(ATTRIBUTES_MODEL), tiles, concurrency=2,
                             duration_s=1.5, warmup_s=0.5)
    assert result.errors == 0 and result.requests > 0


def test_closed_loop_client_counts_failures_instead_of_hiding_them(triton_target):
    result = run_closed_loop(triton_target(), [b"definitely not an image"], concurrency=2,
                             duration_s=1.0, warmup_s=0.2)
    assert result.requests == 0 and result.throughput == 0
    assert result.errors > 0
    assert any("not a recognised image" in e for e in result.error_examples)


# --------------------------------------------------------------------------- perf_analyzer
def test_perf_analyzer_sweeps_the_attribute_model_and_the_ensemble(server, blobs, tmp_path):
    result = perf_sweep.run(server.grpc_url, blobs[:4], tmp_path, [1], request_count=10)
    assert set(result) == {ATTRIBUTES_MODEL, ENSEMBLE_MODEL}
    for model, rows in result.items():
        assert len(rows) == 1 and "error" not in rows[0], rows
        assert rows[0]["concurrency"] == 1 and rows[0]["throughput"] > 0, (model, rows)
        assert rows[0]["p50_ms"] > 0


# --------------------------------------------------------------------------- locust
def test_locust_headless_run_reports_requests(server, tmp_path):
    images = make_catalog(64)[0].parent
    result = locust_runs.run_locust(server.grpc_url, users=2, seconds=3, out=tmp_path,
                                    images=images)
    assert "error" not in result, result.get("error")
    assert result["requests"] > 0 and result["failures"] == 0
    assert (tmp_path / "locust_u2_stats.csv").exists()


def test_locust_counts_failed_calls_as_failures(server, tmp_path):
    # the preprocess model has no PROBABILITIES output: every call must show up as a failure
    images = make_catalog(64)[0].parent
    result = locust_runs.run_locust(server.grpc_url, users=1, seconds=2, out=tmp_path,
                                    images=images, extra=["--model-name", "fashiontag_preprocess"])
    assert "error" not in result, result.get("error")
    assert result["failures"] > 0 and result["failures"] == result["requests"]


# --------------------------------------------------------------------------- peers
def _peer_round_trip(system, model: Path, blob: bytes) -> None:
    """One real request: the peer's probabilities equal in-process onnxruntime's."""
    target = system.target()
    conn = http.client.HTTPConnection(target.host, target.port, timeout=60)
    conn.request("POST", target.path, body=blob,
                 headers={"Content-Type": "application/octet-stream"})
    response = conn.getresponse()
    body = response.read()
    assert response.status == 200, body[:300]
    served = np.frombuffer(body, dtype=np.float32)
    assert np.abs(served - _in_process(model, blob)).max() < 1e-5
    conn.request("POST", target.path, body=b"garbage", headers={
        "Content-Type": "application/octet-stream"})
    bad = conn.getresponse()
    bad.read()
    assert bad.status >= 400  # a bad image is an error, and the server keeps serving
    conn.close()


def _check_peer(system, model: Path, blobs) -> None:
    with system:
        tree = [p.pid for pid in system.pids() for p in process_tree(pid)]
        assert tree, "the peer's processes should be visible while it runs"
        _peer_round_trip(system, model, blobs[0])
        result = run_closed_loop(system.target(), blobs, concurrency=4, duration_s=2,
                                 warmup_s=1)
        assert result.errors == 0, result.error_examples
        assert result.requests > 0
    alive = [pid for pid in tree if psutil.pid_exists(pid)
             and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"processes left behind: {alive}"
    assert system.workdir is None


# The peers live in their own venv (torch + Ray Serve + TorchServe + Java): minutes to install,
# so their smoke checks run with `make bench`, which builds that venv first.
@pytest.mark.slow
def test_ray_serve_peer_serves_the_same_model_and_stops_completely(built_model, blobs):
    _check_peer(RayServeSystem(built_model), built_model, blobs)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("java") is None,
                    reason="TorchServe needs Java (apt-get install openjdk-17-jre-headless; "
                           "`make bench-venvs` installs it)")
def test_torchserve_peer_serves_the_same_model_and_stops_completely(built_model, blobs):
    _check_peer(TorchServeSystem(built_model), built_model, blobs)


# --------------------------------------------------------------------------- batching study
def test_batching_study_measures_a_generated_configuration_and_picks_one(built_model, blobs):
    study = batching_study.run(built_model, blobs, delays=[500], layouts=[(2, 1)],
                               concurrencies=(1, 4), seconds=1.5, warmup_s=0.5)
    (row,) = study["configs"]
    assert row["settings"]["max_queue_delay_us"] == 500
    assert row["settings"]["attribute_instances"] == 2
    assert row["settings"]["attribute_threads"] == 1
    assert all(r["requests"] > 0 and r["errors"] == 0 for r in row["results"].values())
    assert row["results"]["4"]["mean_batch"]["fashiontag_attributes"] >= 1.0
    assert study["pick"]["label"] == row["label"]
    assert row["label"] in batching_study.table(study)


# --------------------------------------------------------------------------- profile
def test_profile_splits_server_cpu_per_image_by_process_and_samples_the_stubs(built_model,
                                                                              tmp_path):
    result = profile_server.profile(built_model, concurrency=4, seconds=3, use_py_spy=True,
                                    out=tmp_path)
    assert result["errors"] == 0 and result["throughput"] > 0
    cpu = result["cpu_ms_per_image"]
    for role in ("tritonserver", "stub:fashiontag_preprocess", "stub:fashiontag_attributes"):
        assert cpu[role] > 0, cpu
    assert result["in_process_cpu_ms_per_image"]["model"] > 0
    samples = result["py_spy_top_self"]
    assert samples and all("frame" in top[0] for top in samples.values()), samples
    # the attribute stub's python time is onnxruntime's run
    attributes = next(top for role, top in samples.items() if "fashiontag_attributes" in role)
    assert "Session.run" in attributes[0]["frame"]


# --------------------------------------------------------------------------- the whole suite
def test_run_all_smoke_writes_results_a_report_and_a_plot(tmp_path):
    run_all.main(["--smoke", "--parts", "reference,systems", "--peers", "",
                  "--out", str(tmp_path)])
    results = json.loads((tmp_path / "results.json").read_text())
    systems = {s["name"]: s for s in results["systems"]}
    assert set(systems) <= {"fashiontag", "fashiontag-int8"}  # INT8 joins when it was built
    for system in systems.values():
        assert {r["concurrency"] for r in system["runs"]} == {1, 16}
        assert all(r["errors"] == 0 and r["ratio_to_in_process"] > 0 for r in system["runs"])
    assert "fashiontag" in systems
    assert results["reference"]["compute_bound"]["macs_per_image"] > 0
    report_text = (tmp_path / "report.md").read_text()
    assert "| fashiontag | fp32 |" in report_text and "| goal |" in report_text
    assert (tmp_path / "throughput_vs_p99.png").stat().st_size > 10_000


def test_a_second_model_file_becomes_another_system_labelled_by_its_metadata(built_model,
                                                                              tmp_path):
    import onnx

    proto = onnx.load(str(built_model))
    for prop in proto.metadata_props:
        if prop.key == "fashiontag.model":
            info = json.loads(prop.value)
            prop.value = json.dumps({**info, "precision": "int8-test"})
    copy = tmp_path / "other.onnx"
    onnx.save(proto, str(copy))
    models = model_files([str(copy)])
    assert models["int8-test"] == copy and models["fp32"].name == built_model.name
    systems = run_all.make_systems(models, peers=[])
    # the built INT8 model (if any) sits between the FP32 model and the extra file
    assert systems[0].name == "fashiontag" and systems[0].precision == "fp32"
    assert systems[-1].name == "fashiontag-int8-test" and systems[-1].precision == "int8-test"
