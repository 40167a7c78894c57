"""Run an exported model file in-process: onnxruntime or OpenVINO behind one small interface.

The served attribute model (:class:`fashiontag.serving.python_models.AttributesModel`), the
INT8 accuracy check and the runtime benchmark all open models here, so what is measured is what
is served. Both runtimes read the same ONNX file (FP32 or the QDQ INT8 file): onnxruntime runs
QDQ through its own INT8 kernels; OpenVINO turns QDQ pairs into its low-precision graph, which
measured faster on these AVX-512/VNNI CPUs (see benchmarks/runtimes.py).

OpenVINO compiles for static shapes fastest, so :class:`OpenVinoModel` keeps one compiled model
per batch *bucket* and splits a batch into buckets (13 = 8 + 4 + 1) rather than padding it, so
no compute is wasted on padding; ``batch_buckets=()`` compiles one dynamic-batch model instead.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Protocol

import numpy as np

from fashiontag.protocol import PIXELS, PROBABILITIES, TAXONOMY_ID

__all__ = ["RUNTIMES", "PRECISION_HINTS", "RuntimeOptions", "InferenceModel", "OnnxRuntimeModel",
           "OpenVinoModel", "load_model", "split_into_buckets", "openvino_cache_dir",
           "onnx_session"]

RUNTIMES = ("onnxruntime", "openvino")
PRECISION_HINTS = ("f32", "bf16")
_ORT_LEVEL_NAMES = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC",
                    "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}


@dataclass(frozen=True)
class RuntimeOptions:
    """How to run a model file; serialised into the Triton config's parameters.

    ``threads`` = intra-op threads per model instance (0 = the runtime's default, all cores).
    ``spinning`` lets onnxruntime busy-wait between ops (it burns cores that decode needs).
    ``graph_optimization`` is onnxruntime's level; OpenVINO always optimises its graph.
    ``batch_buckets`` are OpenVINO's statically compiled batch sizes (``()`` = one dynamic model).
    ``precision_hint`` is OpenVINO's inference precision for the parts of the graph that are not
    quantized: ``f32`` (exact; what FP32 means here) or ``bf16``. OpenVINO's own default on CPUs
    with AMX is bf16, which is 1.8x faster there but moved 1-1.4 % of garment-type decisions, so
    bf16 is a reduced precision like INT8: asked for explicitly, and gated before it is served.
    """

    runtime: str = "onnxruntime"
    threads: int = 0
    spinning: bool = False
    graph_optimization: str = "all"
    batch_buckets: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    precision_hint: str = "f32"

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {RUNTIMES}, got {self.runtime!r}")
        if self.graph_optimization not in _ORT_LEVEL_NAMES:
            raise ValueError(f"graph_optimization must be one of {tuple(_ORT_LEVEL_NAMES)}, "
                             f"got {self.graph_optimization!r}")
        if self.threads < 0:
            raise ValueError("threads must be >= 0")
        if any(b < 1 for b in self.batch_buckets) or list(self.batch_buckets) != sorted(
                set(self.batch_buckets)):
            raise ValueError(f"batch_buckets must be increasing positive sizes, got "
                             f"{self.batch_buckets}")
        if self.batch_buckets and self.batch_buckets[0] != 1:
            raise ValueError("batch_buckets must start at 1 so that every batch can be split")
        if self.precision_hint not in PRECISION_HINTS:
            raise ValueError(f"precision_hint must be one of {PRECISION_HINTS}, got "
                             f"{self.precision_hint!r}")

    def to_parameters(self) -> dict[str, str]:
        """Flat strings for ``config.pbtxt`` parameters (read back by :meth:`from_parameters`)."""
        return {"runtime": self.runtime, "intra_op_threads": str(self.threads),
                "allow_spinning": "1" if self.spinning else "0",
                "graph_optimization": self.graph_optimization,
                "batch_buckets": ",".join(str(b) for b in self.batch_buckets),
                "precision_hint": self.precision_hint}

    @classmethod
    def from_parameters(cls, params: dict[str, str]) -> RuntimeOptions:
        defaults = {f.name: f.default for f in fields(cls)}
        buckets = params.get("batch_buckets")
        return cls(
            runtime=params.get("runtime", defaults["runtime"]),
            threads=int(params.get("intra_op_threads", defaults["threads"])),
            spinning=params.get("allow_spinning", "0") == "1",
            graph_optimization=params.get("graph_optimization", defaults["graph_optimization"]),
            precision_hint=params.get("precision_hint", defaults["precision_hint"]),
            batch_buckets=defaults["batch_buckets"] if buckets is None else tuple(
                int(b) for b in buckets.split(",") if b.strip()),
        )


class InferenceModel(Protocol):
    """``uint8 [N, S, S, 3]`` pixels → ``float32 [N, total_values]`` probabilities; ``run_all``
    also returns the graph's other served outputs (``TAXONOMY_ID`` where the model has it)."""

    path: Path
    options: RuntimeOptions
    output_names: list[str]

    def run(self, pixels: np.ndarray) -> np.ndarray: ...

    def run_all(self, pixels: np.ndarray) -> dict[str, np.ndarray]: ...


_SERVED_OUTPUTS = (PROBABILITIES, TAXONOMY_ID)


def onnx_session(path: str | Path, threads: int = 0, spinning: bool = False,
                 graph_optimization: str = "all"):
    """The one place an onnxruntime CPU session is opened, configured the way every caller here
    uses it (served model, feature extraction, parity checks, benchmarks, peer servers): one
    inter-op thread, ``threads`` intra-op threads (0 = all cores), no busy-waiting by default."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel,
                                            _ORT_LEVEL_NAMES[graph_optimization])
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.inter_op_num_threads = 1
    if threads:
        opts.intra_op_num_threads = threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


class OnnxRuntimeModel:
    """onnxruntime's CPU execution provider; one ``run`` per batch."""

    def __init__(self, path: str | Path, options: RuntimeOptions = RuntimeOptions()) -> None:
        self.path, self.options = Path(path), options
        self.session = onnx_session(self.path, options.threads, options.spinning,
                                    options.graph_optimization)
        graph_outputs = {o.name for o in self.session.get_outputs()}
        self.output_names = [n for n in _SERVED_OUTPUTS if n in graph_outputs]

    def run(self, pixels: np.ndarray) -> np.ndarray:
        return self.session.run([PROBABILITIES], {PIXELS: np.ascontiguousarray(pixels)})[0]

    def run_all(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        results = self.session.run(self.output_names, {PIXELS: np.ascontiguousarray(pixels)})
        return dict(zip(self.output_names, results, strict=True))


def split_into_buckets(n: int, buckets: tuple[int, ...]) -> list[int]:
    """Largest buckets first: 13 with (1, 2, 4, 8) → [8, 4, 1]; sums to ``n`` exactly."""
    parts, left = [], n
    for bucket in sorted(buckets, reverse=True):
        while left >= bucket:
            parts.append(bucket)
            left -= bucket
    return parts


def openvino_cache_dir() -> Path:
    """Where OpenVINO keeps compiled models (keyed by model and device by OpenVINO itself), so a
    restarted server compiles its batch buckets in a fraction of the time."""
    default = Path.home() / ".cache" / "fashiontag" / "openvino"
    return Path(os.environ.get("FASHIONTAG_OPENVINO_CACHE", default))


class OpenVinoModel:
    """OpenVINO's CPU plugin reading the ONNX file (FP32, or QDQ INT8 as low precision)."""

    def __init__(self, path: str | Path, options: RuntimeOptions = RuntimeOptions(
            runtime="openvino")) -> None:
        try:
            import openvino as ov
        except ImportError:
            from fashiontag.errors import ModelArtifactError

            raise ModelArtifactError(
                "runtime 'openvino' needs the openvino package: pip install 'fashiontag[openvino]'"
            ) from None
        self.path, self.options = Path(path), options
        self._core = ov.Core()
        self._model = self._core.read_model(str(self.path))
        self._config = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1",
                        "INFERENCE_PRECISION_HINT": options.precision_hint,
                        "CACHE_DIR": str(openvino_cache_dir())}
        if options.threads:
            self._config["INFERENCE_NUM_THREADS"] = str(options.threads)
        self._compiled: dict[int, object] = {}
        self._lock = threading.Lock()
        graph_outputs = {name for o in self._model.outputs for name in o.get_names()}
        self.output_names = [n for n in _SERVED_OUTPUTS if n in graph_outputs]
        if not options.batch_buckets:
            self._compiled[0] = self._compile(None)

    def _compile(self, batch: int | None):
        model = self._model.clone()
        if batch is not None:
            model.reshape({model.input(0).any_name: [batch, *self._tile_shape()]})
        compiled = self._core.compile_model(model, "CPU", self._config)
        return compiled.create_infer_request()

    def _tile_shape(self) -> list[int]:
        dims = self._model.input(0).get_partial_shape()
        return [int(d.get_length()) for d in list(dims)[1:]]

    def compile_buckets(self, up_to: int | None = None) -> None:
        """Compile every bucket (≤ ``up_to``) now rather than on first use (server start-up)."""
        for bucket in self.options.batch_buckets:
            if up_to is None or bucket <= up_to:
                self._request(bucket)

    def _request(self, batch: int):
        key = batch if self.options.batch_buckets else 0
        with self._lock:
            if key not in self._compiled:
                self._compiled[key] = self._compile(batch)
            return self._compiled[key]

    def run(self, pixels: np.ndarray) -> np.ndarray:
        return self.run_all(pixels)[PROBABILITIES]

    def run_all(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        pixels = np.ascontiguousarray(pixels)
        if not self.options.batch_buckets:
            return self._infer(self._request(len(pixels)), pixels)
        parts, start = [], 0
        for size in split_into_buckets(len(pixels), self.options.batch_buckets):
            parts.append(self._infer(self._request(size), pixels[start:start + size]))
            start += size
        return {name: np.concatenate([p[name] for p in parts]) for name in self.output_names}

    def _infer(self, request, pixels: np.ndarray) -> dict[str, np.ndarray]:
        request.infer({0: pixels})
        return {name: np.array(request.get_tensor(name).data, copy=True)
                for name in self.output_names}


def load_model(path: str | Path, options: RuntimeOptions = RuntimeOptions()) -> InferenceModel:
    """Open ``path`` with the runtime ``options.runtime`` names."""
    if options.runtime == "openvino":
        return OpenVinoModel(path, options)
    return OnnxRuntimeModel(path, options)
