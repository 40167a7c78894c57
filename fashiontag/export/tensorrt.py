"""TensorRT engines from the exported ONNX model, one per GPU compute capability.

``fashiontag export --engine tensorrt [--precision fp16|int8]`` calls :func:`build_engine` on
the GPU that will serve: an engine only runs on the GPU family (and TensorRT version) that built
it, so the file is named after the compute capability (``model_sm90.plan``) and the Triton config
lists one file per capability (``cc_model_filenames``, see :mod:`fashiontag.serving.repository`).

* One optimisation profile covers the dynamic batch range: min 1, opt ``opt_batch`` (what
  Triton's preferred batch size asks for), max ``max_batch_size``.
* FP16: TensorRT picks FP16 kernels where they are faster; softmax/normalisation stay accurate.
* INT8 from the FP32 file: implicit quantization with an ``IInt8EntropyCalibrator2`` fed by the
  same real training images as the CPU INT8 model (:mod:`fashiontag.export.calibration`).
  INT8 from the QDQ file (``fashiontag.int8.onnx``): explicit quantization, its scales are used.
* The uint8 NHWC input and in-graph normalisation are kept, so the served interface is the same.

``tensorrt`` and a CUDA GPU are optional: without them every entry point raises
:class:`TensorRTUnavailable` with the reason, and tests skip.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from fashiontag.errors import FashiontagError
from fashiontag.onnxio.metadata import read_metadata
from fashiontag.protocol import PIXELS, PROBABILITIES

__all__ = ["TensorRTUnavailable", "EngineResult", "tensorrt_unavailable_reason",
           "compute_capability", "build_engine", "TensorRTModel", "DEFAULT_OPT_BATCH",
           "engine_filename", "DEFAULT_COMPUTE_CAPABILITIES"]

log = logging.getLogger(__name__)

DEFAULT_OPT_BATCH = 32

#: GPUs the GPU repository lists engines for (T4, A100, A10/A40/RTX 30, L4/L40/RTX 40, H100/H200).
#: Triton loads only the file of the GPU it runs on; the engine builder writes that one file.
DEFAULT_COMPUTE_CAPABILITIES = ("7.5", "8.0", "8.6", "8.9", "9.0")


def engine_filename(compute_capability: str) -> str:
    """``"9.0"`` → ``"model_sm90.plan"``: TensorRT engines only run on the GPU family that built
    them, so each compute capability gets its own file."""
    major, _, minor = compute_capability.partition(".")
    if not (major.isdigit() and minor.isdigit()):
        raise ValueError(f"compute capability must look like '9.0', got {compute_capability!r}")
    return f"model_sm{major}{minor}.plan"


class TensorRTUnavailable(FashiontagError):
    """tensorrt is not installed, or no CUDA GPU is visible: engines cannot be built here."""


def tensorrt_unavailable_reason() -> str | None:
    """None when an engine can be built here; otherwise why not, in words."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return ("the `tensorrt` Python package is not installed (pip install tensorrt, on a "
                "machine with an NVIDIA GPU; the docker/ engine-builder image has it)")
    try:
        import torch
    except ImportError:
        return "torch is needed for CUDA buffers (pip install 'fashiontag[export]')"
    if not torch.cuda.is_available():
        return "no CUDA GPU is visible (TensorRT engines are built on the GPU that runs them)"
    return None


def _require() -> None:
    reason = tensorrt_unavailable_reason()
    if reason:
        raise TensorRTUnavailable(f"cannot build a TensorRT engine: {reason}")


def compute_capability(device: int = 0) -> str:
    """``"9.0"`` for an H100: the key of Triton's ``cc_model_filenames``."""
    import torch

    major, minor = torch.cuda.get_device_capability(device)
    return f"{major}.{minor}"


@dataclass(frozen=True)
class EngineResult:
    path: Path
    compute_capability: str
    precision: str
    profile: tuple[int, int, int]
    tensorrt_version: str
    gpu: str
    seconds: float

    def to_dict(self) -> dict:
        return {**asdict(self), "path": str(self.path)}


def _entropy_calibrator(trt, tiles: np.ndarray, batch: int, cache: Path):
    """An ``IInt8EntropyCalibrator2`` feeding uint8 tiles from a CUDA buffer (torch-allocated)."""
    import torch

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            super().__init__()
            self.cursor = 0
            self.device = torch.empty((batch, *tiles.shape[1:]), dtype=torch.uint8,
                                      device="cuda")

        def get_batch_size(self) -> int:
            return batch

        def get_batch(self, names):  # noqa: ARG002 - one input
            if self.cursor + batch > len(tiles):
                return None
            chunk = torch.from_numpy(np.ascontiguousarray(tiles[self.cursor:self.cursor + batch]))
            self.device.copy_(chunk)
            self.cursor += batch
            return [int(self.device.data_ptr())]

        def read_calibration_cache(self):
            return cache.read_bytes() if cache.exists() else None

        def write_calibration_cache(self, data) -> None:
            cache.write_bytes(bytes(data))

    return EntropyCalibrator()


def build_engine(onnx_path: str | Path, out_dir: str | Path, precision: str = "fp16", *,
                 max_batch_size: int = 64, opt_batch: int = DEFAULT_OPT_BATCH,
                 calibration_tiles: np.ndarray | None = None,
                 workspace_bytes: int = 2 << 30) -> EngineResult:
    """Build ``out_dir/model_smXY.plan`` for this GPU and write a JSON report beside it."""
    _require()
    import tensorrt as trt
    import torch

    if precision not in ("fp16", "int8", "fp32"):
        raise ValueError(f"TensorRT precision must be fp16, int8 or fp32, got {precision!r}")
    if not 1 <= opt_batch <= max_batch_size:
        raise ValueError(f"opt_batch {opt_batch} outside 1..{max_batch_size}")
    onnx_path, out_dir = Path(onnx_path), Path(out_dir)
    meta = read_metadata(onnx_path)
    size = meta.preprocess.size
    t0 = time.perf_counter()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch (the only mode in TensorRT 10)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise FashiontagError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    profile = builder.create_optimization_profile()
    profile.set_shape(PIXELS, (1, size, size, 3), (opt_batch, size, size, 3),
                      (max_batch_size, size, size, 3))
    config.add_optimization_profile(profile)
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        if meta.precision != "int8":  # FP32 file: calibrate (implicit quantization)
            if calibration_tiles is None:
                from fashiontag.export.calibration import calibration_tiles as make_tiles

                calibration_tiles = make_tiles()
            out_dir.mkdir(parents=True, exist_ok=True)
            # calibration runs at the calibration profile's opt shape: give it the batch the
            # calibrator feeds (min = opt = max)
            calib_batch = min(16, len(calibration_tiles))
            calib_profile = builder.create_optimization_profile()
            shape = (calib_batch, size, size, 3)
            calib_profile.set_shape(PIXELS, shape, shape, shape)
            config.int8_calibrator = _entropy_calibrator(
                trt, calibration_tiles, calib_batch, out_dir / "calibration.cache")
            config.set_calibration_profile(calib_profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise FashiontagError("TensorRT failed to build the engine (see its log above)")
    cc = compute_capability()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / engine_filename(cc)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(bytes(serialized))
    tmp.replace(path)
    result = EngineResult(path, cc, precision, (1, opt_batch, max_batch_size), trt.__version__,
                          torch.cuda.get_device_name(0), round(time.perf_counter() - t0, 1))
    path.with_suffix(".json").write_text(json.dumps(
        {**result.to_dict(), "source": str(onnx_path), "source_precision": meta.precision},
        indent=2))
    log.info("TensorRT %s engine for sm%s: %s (%.0f s)", precision, cc, path, result.seconds)
    return result


class TensorRTModel:
    """Run a built engine on the GPU (parity checks and the GPU benchmark); torch holds buffers."""

    def __init__(self, plan: str | Path) -> None:
        _require()
        import tensorrt as trt
        import torch

        self._torch = torch
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(Path(plan).read_bytes())
        if self.engine is None:
            raise FashiontagError(f"{plan} is not an engine this GPU/TensorRT can load")
        self.context = self.engine.create_execution_context()

    def run_device(self, pixels):
        """uint8 CUDA tensor ``[N, S, S, 3]`` → float32 CUDA tensor (no host copies)."""
        torch = self._torch
        self.context.set_input_shape(PIXELS, tuple(pixels.shape))
        out = torch.empty(tuple(self.context.get_tensor_shape(PROBABILITIES)),
                          dtype=torch.float32, device="cuda")
        self.context.set_tensor_address(PIXELS, int(pixels.data_ptr()))
        self.context.set_tensor_address(PROBABILITIES, int(out.data_ptr()))
        stream = torch.cuda.current_stream()  # same stream as the copies that filled ``pixels``
        self.context.execute_async_v3(stream.cuda_stream)
        stream.synchronize()
        return out

    def run(self, pixels: np.ndarray) -> np.ndarray:
        torch = self._torch
        device = torch.from_numpy(np.ascontiguousarray(pixels)).cuda()
        return self.run_device(device).cpu().numpy()
