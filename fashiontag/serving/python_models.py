"""The two python-backend models Triton runs on CPU. ``model_repository/*/1/model.py`` import these.

Contract (python_backend): ``initialize`` parses the config once; ``execute`` turns N requests
into N responses; a bad request gets its own error response (``INVALID_ARG``) and never fails
the other requests of its dynamic batch, nor the server.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from fashiontag.errors import ImageDecodeError
from fashiontag.images import DecodeLimits, PreprocessSpec, preprocess_bytes
from fashiontag.protocol import (
    IMAGE,
    LIMITS_PARAMETER,
    PIXELS,
    PREPROCESS_PARAMETER,
    PROBABILITIES,
    TAXONOMY_PARAMETER,
)
from fashiontag.serving.model_metrics import AttributeMetrics, PreprocessMetrics
from fashiontag.taxonomy import Taxonomy

__all__ = ["PreprocessModel", "AttributesModel"]

log = logging.getLogger(__name__)


def _pb_utils():
    import triton_python_backend_utils as pb_utils  # only importable inside the stub process

    return pb_utils


def _parameters(args: dict) -> dict[str, str]:
    config = json.loads(args["model_config"])
    return {k: v["string_value"] for k, v in config.get("parameters", {}).items()}


def _server_log(pb_utils, message: str) -> None:
    """Into tritonserver's own log (the stub's ``logging`` output goes nowhere an operator
    looks)."""
    log.info(message)
    logger = getattr(pb_utils, "Logger", None)
    if logger is not None:
        logger.log_info(message)


def _error_response(pb_utils, message: str, invalid: bool = True):
    code = pb_utils.TritonError.INVALID_ARG if invalid else pb_utils.TritonError.INTERNAL
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(message, code))


def _as_bytes(item) -> bytes:
    if isinstance(item, (bytes, bytearray)):
        return bytes(item)
    if isinstance(item, str):
        return item.encode("latin-1")
    raise ImageDecodeError(f"IMAGE elements must be bytes, got {type(item).__name__}",
                           "not_bytes")


class PreprocessModel:
    """IMAGE (encoded bytes, ``[B, 1]``) → PIXELS (``uint8 [B, S, S, 3]``)."""

    def initialize(self, args: dict) -> None:
        self.pb = _pb_utils()
        params = _parameters(args)
        self.spec = PreprocessSpec.from_dict(json.loads(params[PREPROCESS_PARAMETER]))
        self.limits = DecodeLimits(**json.loads(params.get(LIMITS_PARAMETER, "{}")))
        self.metrics = PreprocessMetrics(self.pb, args)

    def _tiles(self, images: np.ndarray) -> np.ndarray:
        items = images.reshape(-1)
        return np.stack([preprocess_bytes(_as_bytes(x), self.spec, self.limits) for x in items])

    def execute(self, requests: list) -> list:
        pb = self.pb
        responses = []
        for request in requests:
            try:
                images = pb.get_input_tensor_by_name(request, IMAGE).as_numpy()
                self.metrics.received(images.reshape(-1))
                tiles = self._tiles(images)
                responses.append(pb.InferenceResponse([pb.Tensor(PIXELS, tiles)]))
            except ImageDecodeError as exc:
                self.metrics.decode_error(exc.reason)
                responses.append(_error_response(pb, str(exc)))
            except Exception as exc:  # never let one input take the model down
                log.exception("preprocess failed")
                responses.append(_error_response(pb, f"preprocess failed: {exc}", invalid=False))
        return responses

    def finalize(self) -> None:
        self.metrics.close()


class AttributesModel:
    """PIXELS → PROBABILITIES (+ TAXONOMY_ID when the model has it): all requests of a dynamic
    batch in one call of the runtime the config names (onnxruntime or OpenVINO; FP32 or INT8 is
    whatever the model file is). Each version folder holds its own model file, so Triton can load
    version N+1 while version N still answers."""

    def initialize(self, args: dict) -> None:
        from fashiontag.runtimes import OpenVinoModel, RuntimeOptions, load_model

        self.pb = _pb_utils()
        params = _parameters(args)
        model_dir = Path(args["model_repository"]) / args["model_version"]
        onnx_path = model_dir / params.get("onnx_file", "model.onnx")
        self.torch = params.get("runtime") == "torch"
        self._io = self._tensor_io()
        taxonomy = params.get(TAXONOMY_PARAMETER)
        self.metrics = AttributeMetrics(self.pb, args,
                                        Taxonomy.from_json(taxonomy) if taxonomy else None)
        if self.torch:
            self.model = _torch_model(args, params, model_dir)
            _server_log(self.pb, f"attribute model: {self.model.describe()}")
            return
        options = RuntimeOptions.from_parameters(params)
        self.model = load_model(onnx_path, options)
        if isinstance(self.model, OpenVinoModel):
            # compile every batch bucket now: a first request must not pay for compilation
            max_batch = json.loads(args["model_config"]).get("max_batch_size", 0) or None
            self.model.compile_buckets(up_to=max_batch)
        log.info("attribute model %s (%s, %s)", onnx_path.name, options.runtime,
                 params.get("precision", "fp32"))

    def execute(self, requests: list) -> list:
        pb = self.pb
        read, run, write = self._io
        try:
            inputs = [read(pb.get_input_tensor_by_name(r, PIXELS)) for r in requests]
            results = run(inputs)
            self.metrics.served(results[PROBABILITIES])
        except Exception as exc:
            log.exception("attribute model failed")
            return [_error_response(pb, f"attribute model failed: {exc}", invalid=False)
                    for _ in requests]
        responses, start = [], 0
        for tensor in inputs:
            end = start + len(tensor)
            responses.append(pb.InferenceResponse(
                [write(name, result[start:end]) for name, result in results.items()]))
            start = end
        return responses

    def _tensor_io(self):
        """How tensors cross the stub: numpy for onnxruntime/OpenVINO; DLPack for the torch
        runtime (no numpy: the GPU machine's numpy 2 breaks the stub's numpy paths)."""
        pb = self.pb
        if not self.torch:
            def run(arrays):
                return self.model.run_all(arrays[0] if len(arrays) == 1 else np.concatenate(arrays))

            return (lambda t: t.as_numpy()), run, pb.Tensor
        import torch

        from fashiontag.serving.torch_model import from_triton, to_triton

        def run_torch(tensors):
            batch = tensors[0] if len(tensors) == 1 else torch.cat(tensors)
            return {k: v.cpu() for k, v in self.model.run_tensors(batch).items()}

        return from_triton, run_torch, (lambda name, t: to_triton(pb, name, t))

    def finalize(self) -> None:
        self.metrics.close()
        self.model = None


def _torch_model(args: dict, params: dict[str, str], model_dir: Path):
    from fashiontag.serving.torch_model import (
        BACKBONE_FILE,
        HEADS_FILE,
        TorchAttributeModel,
        TorchOptions,
    )

    options = TorchOptions.from_parameters(params)
    gpu = args.get("model_instance_kind") == "GPU"
    device_id = int(args.get("model_instance_device_id", 0)) if gpu else None
    backbone = model_dir / BACKBONE_FILE
    return TorchAttributeModel(model_dir / HEADS_FILE, backbone if backbone.exists() else None,
                               options, device_id)
