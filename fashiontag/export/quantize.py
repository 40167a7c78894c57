"""Reduced-precision variants of the exported FP32 model: INT8 (QDQ static) for CPU, FP16 for GPU.

INT8 recipe, picked from measurements on this project's CPUs (benchmarks/runtimes.py; results in
docs/serving.md and benchmarks/README.md): onnxruntime static quantization in QDQ format,
per-channel INT8 weights, *uint8* activations (int8 activations ran no faster than FP32 on VNNI),
no ``reduce_range`` (it lost accuracy and gained nothing), MinMax ranges calibrated on real
training images. The uint8 NHWC input and the in-graph normalisation stay as they are (the graph's
first ops are left in FP32), and the attribute heads (Gemm → Softmax → Concat, ~1.5 % of the
compute) stay FP32: quantizing them would cost accuracy on low-margin attributes for no measurable
speed.

The QDQ file is an ordinary ONNX file: onnxruntime runs it with its INT8 kernels and OpenVINO
reads it as a low-precision graph (:mod:`fashiontag.runtimes`).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from fashiontag.export.calibration import CalibrationSet, batches, calibration_tiles
from fashiontag.onnxio.metadata import metadata_props, read_metadata
from fashiontag.protocol import PIXELS

__all__ = ["CalibrationReader", "quantize_int8", "convert_fp16", "fp32_nodes"]

log = logging.getLogger(__name__)



class CalibrationReader(CalibrationDataReader):
    """Feeds calibration tiles to onnxruntime's calibrator in batches; rewindable."""

    def __init__(self, tiles: np.ndarray, batch: int = 16) -> None:
        self.tiles, self.batch = tiles, batch
        self.rewind()

    def get_next(self) -> dict[str, np.ndarray] | None:
        chunk = next(self._chunks, None)
        return None if chunk is None else {PIXELS: chunk}

    def rewind(self) -> None:
        self._chunks = batches(self.tiles, self.batch)

    def __len__(self) -> int:
        return -(-len(self.tiles) // self.batch)


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """onnxruntime's quantizer logs one INFO line per adjusted weight on the root logger."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        root.setLevel(level)


def fp32_nodes(model, heads: bool = True) -> list[str]:
    """Names of nodes to keep in FP32: everything before the first Conv (uint8 → float input
    normalisation) and, with ``heads``, everything after the backbone's feature pooling (heads,
    the colour head, softmax, concat).

    The backbone's pooling is the first reduction after its last Conv: the colour head has
    reductions of its own later in the graph, and quantizing its palette matmuls or the
    attribute heads between would change answers for no speed.
    """
    nodes = list(model.graph.node)
    convs = [i for i, n in enumerate(nodes) if n.op_type == "Conv"]
    keep = nodes[:convs[0]]
    if heads:
        pool = next((i for i, n in enumerate(nodes) if i > convs[-1]
                     and n.op_type in ("ReduceMean", "GlobalAveragePool")), None)
        keep += nodes[pool + 1:] if pool is not None else []
    return [n.name for n in keep if n.name]


def _with_metadata(model, source_meta, precision: str, extra: dict):
    del model.metadata_props[:]
    info = {**source_meta.info, "precision": precision, precision: extra}
    for key, value in metadata_props(source_meta.taxonomy, source_meta.preprocess,
                                     info).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = "fashiontag"
    return model


def quantize_int8(fp32_path: str | Path, out_path: str | Path,
                  calibration: CalibrationSet = CalibrationSet(),
                  tiles: np.ndarray | None = None, quantize_heads: bool = False) -> Path:
    """Static QDQ INT8 from ``fp32_path``; metadata copied with ``precision: int8`` and the
    calibration recipe. ``tiles`` overrides the calibration images (tests)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32_path, out_path = Path(fp32_path), Path(out_path)
    meta = read_metadata(fp32_path)
    if meta.precision != "fp32":
        raise ValueError(f"{fp32_path} is {meta.precision}; quantize the FP32 export")
    t0 = time.perf_counter()
    if tiles is None:
        tiles = calibration_tiles(calibration)
    with tempfile.TemporaryDirectory(prefix="fashiontag-int8-") as tmp, _quiet_root_logger():
        pre = Path(tmp) / "pre.onnx"
        # constant folding + shape inference first: the Lite0 static padding becomes constants
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=False)
        pre_model = onnx.load(str(pre))
        exclude = fp32_nodes(pre_model, heads=not quantize_heads)
        staged = Path(tmp) / "int8.onnx"
        quantize_static(
            str(pre), str(staged), CalibrationReader(tiles),
            quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=False,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=exclude,
        )
        model = onnx.load(str(staged))
    recipe = {"format": "QDQ", "weights": "int8 per-channel", "activations": "uint8",
              "reduce_range": False, "calibration_method": "MinMax",
              "calibration_images": int(len(tiles)), "calibration": calibration.to_dict(),
              "fp32_nodes": len(exclude), "heads_quantized": quantize_heads}
    _with_metadata(model, meta, "int8", recipe)
    onnx.checker.check_model(model)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out_path.with_suffix(".tmp.onnx")
    onnx.save(model, str(tmp_out))
    tmp_out.replace(out_path)
    log.info("INT8 model %s written in %.1f s (%d calibration images)", out_path,
             time.perf_counter() - t0, len(tiles))
    return out_path


def convert_fp16(fp32_path: str | Path, out_path: str | Path) -> Path:
    """FP16 weights and activations for GPU runtimes; uint8 input and FP32 output kept, so the
    served interface is unchanged. CPUs run it slowly (onnxruntime inserts casts)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    fp32_path, out_path = Path(fp32_path), Path(out_path)
    meta = read_metadata(fp32_path)
    # (an op_block_list would keep Softmax in FP32 but leaves the graph unsorted in this
    # converter; FP16 softmax is ample for probabilities that are cast to FP32 on output)
    model = convert_float_to_float16(onnx.load(str(fp32_path)), keep_io_types=True)
    _with_metadata(model, meta, "fp16", {"io": "uint8 in, fp32 out"})
    onnx.checker.check_model(model)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out_path.with_suffix(".tmp.onnx")
    onnx.save(model, str(tmp_out))
    tmp_out.replace(out_path)
    return out_path
