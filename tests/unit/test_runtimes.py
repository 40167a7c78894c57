"""Runtime options (what the Triton config carries) and how OpenVINO batches are split."""

from __future__ import annotations

import pytest

from fashiontag.runtimes import RUNTIMES, RuntimeOptions, split_into_buckets


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_runtime_options_survive_the_trip_through_config_parameters(runtime):
    options = RuntimeOptions(runtime=runtime, threads=1, spinning=True,
                             graph_optimization="basic", batch_buckets=(1, 4, 16))
    params = options.to_parameters()
    assert all(isinstance(v, str) for v in params.values())
    assert RuntimeOptions.from_parameters(params) == options


def test_configs_written_before_runtimes_existed_still_mean_onnxruntime():
    old = {"onnx_file": "model.onnx", "intra_op_threads": "2", "allow_spinning": "0"}
    assert RuntimeOptions.from_parameters(old) == RuntimeOptions(threads=2)


def test_empty_bucket_list_means_one_dynamic_batch_model():
    params = RuntimeOptions(runtime="openvino", batch_buckets=()).to_parameters()
    assert RuntimeOptions.from_parameters(params).batch_buckets == ()


@pytest.mark.parametrize("n", range(0, 70))
def test_a_batch_splits_into_buckets_that_add_up_exactly(n):
    buckets = RuntimeOptions().batch_buckets
    parts = split_into_buckets(n, buckets)
    assert sum(parts) == n
    assert all(p in buckets for p in parts)
    assert parts == sorted(parts, reverse=True)


def test_largest_buckets_are_used_first():
    assert split_into_buckets(13, (1, 2, 4, 8)) == [8, 4, 1]
    assert split_into_buckets(40, (1, 2, 4, 8, 16, 32)) == [32, 8]


@pytest.mark.parametrize("kwargs", [{"runtime": "tensorflow"}, {"graph_optimization": "max"},
                                    {"threads": -1}, {"batch_buckets": (2, 4)},
                                    {"batch_buckets": (1, 8, 4)}, {"batch_buckets": (0, 1)}])
def test_invalid_runtime_options_are_rejected(kwargs):
    with pytest.raises(ValueError):
        RuntimeOptions(**kwargs)
