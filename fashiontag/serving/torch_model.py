"""The attribute model in PyTorch: the runtime for GPUs that have no TensorRT or onnxruntime-gpu.

The pip-shipped ``tritonserver`` runs python-backend models on ``KIND_GPU`` instances (measured
on an H200: benchmarks/README.md, GPU): there the project's own network (the
pretrained EfficientNet-Lite0 from its PyPI package, the fine-tuned tail ``backbone.pt`` and the
heads ``heads.pt``) runs in PyTorch, FP16 with channels_last on CUDA, FP32 on CPU (where CI
runs it inside a real tritonserver). The ONNX file in the same version folder stays the source
of the served taxonomy and metadata; :func:`check_torch_files` refuses weights that are not the
ones that ONNX file was exported from.

Tensors cross the python-backend stub by DLPack (:func:`from_triton`, :func:`to_triton`): the
GPU machine's numpy 2 breaks the stub's numpy paths, DLPack works under numpy 1 and 2.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fashiontag.errors import ModelArtifactError
from fashiontag.protocol import PROBABILITIES, TAXONOMY_ID

__all__ = ["HEADS_FILE", "BACKBONE_FILE", "TorchOptions", "TorchAttributeModel",
           "check_torch_files", "from_triton", "to_triton"]

log = logging.getLogger(__name__)

HEADS_FILE = "heads.pt"
BACKBONE_FILE = "backbone.pt"


@dataclass(frozen=True)
class TorchOptions:
    """``device``: ``auto`` = the GPU Triton gave the instance, else CPU. ``half``: FP16 on CUDA
    (None = on CUDA only). ``threads``: CPU intra-op threads (0 = torch's default)."""

    device: str = "auto"
    half: bool | None = None
    channels_last: bool = True
    threads: int = 0

    def to_parameters(self) -> dict[str, str]:
        return {"runtime": "torch", "torch_device": self.device,
                "torch_half": "auto" if self.half is None else str(int(self.half)),
                "torch_channels_last": str(int(self.channels_last)),
                "intra_op_threads": str(self.threads)}

    @classmethod
    def from_parameters(cls, params: dict[str, str]) -> TorchOptions:
        half = params.get("torch_half", "auto")
        return cls(device=params.get("torch_device", "auto"),
                   half=None if half == "auto" else half == "1",
                   channels_last=params.get("torch_channels_last", "1") == "1",
                   threads=int(params.get("intra_op_threads", "0")))


def check_torch_files(onnx_path: str | Path, heads_path: str | Path,
                      backbone_path: str | Path | None) -> None:
    """Refuse weights that are not the ones ``onnx_path`` was exported from (same taxonomy, same
    backbone fingerprint): a GPU and a CPU server must tag alike."""
    from fashiontag.model.backbone import backbone_fingerprint
    from fashiontag.model.heads import load_heads
    from fashiontag.onnxio.metadata import read_metadata

    meta = read_metadata(onnx_path)
    taxonomy, _ = load_heads(heads_path)
    if taxonomy.fingerprint != meta.taxonomy.fingerprint:
        raise ModelArtifactError(f"{heads_path} holds taxonomy {taxonomy.fingerprint}, "
                                 f"{onnx_path} serves {meta.taxonomy.fingerprint}")
    expected = meta.info.get("backbone_weights")
    actual = backbone_fingerprint(backbone_path)
    if expected is not None and expected != actual:
        raise ModelArtifactError(f"backbone weights {actual} are not the ones {onnx_path} was "
                                 f"exported from ({expected})")


class TorchAttributeModel:
    """``uint8 [N, S, S, 3]`` pixels → probabilities (+ taxonomy id), the served graph in PyTorch.

    Same network and weights as the ONNX export (``fashiontag.model.network.ServedModel``), so
    FP32 on CPU matches onnxruntime to rounding and FP16 on CUDA within FP16 tolerance.
    """

    def __init__(self, heads_path: str | Path, backbone_path: str | Path | None = None,
                 options: TorchOptions = TorchOptions(), device_id: int | None = None) -> None:
        import torch

        from fashiontag.model.backbone import load_backbone
        from fashiontag.model.heads import load_heads
        from fashiontag.model.network import AttributeHeads, AttributeModel, ServedModel
        from fashiontag.spec import DEFAULT_SPEC

        self.path = Path(heads_path)
        self.options = options
        self.device = self._device(options.device, device_id)
        self.half = options.half if options.half is not None else self.device.type == "cuda"
        if self.device.type == "cpu" and options.threads:
            torch.set_num_threads(options.threads)
        taxonomy, heads = load_heads(heads_path)
        model = AttributeModel(load_backbone(backbone_path), AttributeHeads(taxonomy, heads),
                               DEFAULT_SPEC)
        self.model = ServedModel(model, taxonomy.id).eval().to(self.device)
        if options.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.output_names = [PROBABILITIES, TAXONOMY_ID]
        log.info("%s", self.describe())

    def describe(self) -> str:
        return (f"torch on {self.device} ({'fp16' if self.half else 'fp32'}, channels_last="
                f"{self.options.channels_last}, {self.path.name})")

    @staticmethod
    def _device(name: str, device_id: int | None):
        import torch

        if name == "auto":
            if device_id is not None and torch.cuda.is_available():
                return torch.device("cuda", device_id)
            return torch.device("cpu")
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ModelArtifactError(f"torch device {name!r} asked for, but CUDA is not available")
        return device

    def run_tensors(self, pixels) -> dict:
        """Torch in, torch out (on the model's device): what the stub uses with DLPack."""
        import torch

        pixels = pixels.to(self.device, non_blocking=True)
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.float16,
                                                    enabled=self.half):
            probabilities, ids = self.model(pixels)
        return {PROBABILITIES: probabilities.float().contiguous(), TAXONOMY_ID: ids.contiguous()}

    def run_all(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        out = self.run_tensors(torch.from_numpy(np.ascontiguousarray(pixels)))
        return {name: t.cpu().numpy() for name, t in out.items()}

    def run(self, pixels: np.ndarray) -> np.ndarray:
        return self.run_all(pixels)[PROBABILITIES]


def from_triton(tensor):
    """A python-backend input tensor as a torch tensor, without numpy."""
    import torch

    return torch.from_dlpack(tensor.to_dlpack())


def to_triton(pb_utils, name: str, tensor):
    """A torch tensor as a python-backend output tensor, without numpy."""
    from torch.utils.dlpack import to_dlpack

    return pb_utils.Tensor.from_dlpack(name, to_dlpack(tensor.contiguous()))
