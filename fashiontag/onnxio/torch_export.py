"""PyTorch → ONNX with a dynamic batch axis, metadata, and a numeric parity check on real images.

torch is imported inside the functions: importing this module costs nothing where torch is absent.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fashiontag import __version__
from fashiontag.errors import ModelArtifactError
from fashiontag.onnxio.metadata import metadata_props
from fashiontag.protocol import PIXELS, PROBABILITIES
from fashiontag.runtimes import onnx_session
from fashiontag.spec import PreprocessSpec
from fashiontag.taxonomy import Taxonomy

if TYPE_CHECKING:
    from torch import nn

__all__ = ["OPSET", "export_onnx", "ParityReport", "check_parity"]

OPSET = 17


def export_onnx(module: nn.Module, path: str | Path, spec: PreprocessSpec, *,
                output_name: str = PROBABILITIES, taxonomy: Taxonomy | None = None,
                info: dict | None = None, output_names: Sequence[str] | None = None) -> Path:
    """Export ``module`` (pixels → one output, or several named by ``output_names``) with a
    dynamic batch axis and fashiontag metadata."""
    names = list(output_names or [output_name])
    import onnx
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    dummy = torch.zeros((2, spec.size, spec.size, 3), dtype=torch.uint8)
    tmp = path.with_suffix(".tmp.onnx")
    with torch.no_grad(), warnings.catch_warnings():
        # the Lite0 graph's static padding uses Slice ops that cannot be constant-folded; harmless
        warnings.filterwarnings("ignore", message="Constant folding")
        torch.onnx.export(
            module, (dummy,), str(tmp), dynamo=False, opset_version=OPSET,
            input_names=[PIXELS], output_names=names,
            dynamic_axes={PIXELS: {0: "batch"}, **{n: {0: "batch"} for n in names}},
        )
    model = onnx.load(str(tmp))
    onnx.checker.check_model(model, full_check=True)
    if taxonomy is not None:
        full_info = {"fashiontag_version": __version__, "exported_at": time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "precision": "fp32", **(info or {})}
        for key, value in metadata_props(taxonomy, spec, full_info).items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
    model.producer_name = "fashiontag"
    model.producer_version = __version__
    onnx.save(model, str(tmp))
    tmp.replace(path)  # atomic: a reader never sees a half-written model
    return path


@dataclass(frozen=True)
class ParityReport:
    images: int
    max_abs_diff: float
    mean_abs_diff: float
    argmax_agreement: float  # share of (image, attribute) pairs with the same top value

    def ok(self, tolerance: float) -> bool:
        return self.max_abs_diff <= tolerance and self.argmax_agreement == 1.0


def check_parity(module: nn.Module, path: str | Path, tiles: np.ndarray,
                 taxonomy: Taxonomy | None = None, batch: int = 16) -> ParityReport:
    """Compare PyTorch and onnxruntime outputs on real preprocessed images.

    The first output is compared numerically; further outputs the module returns (the taxonomy
    id) must be equal, else the maximum difference reported is infinite.
    """
    if len(tiles) == 0:
        raise ModelArtifactError("parity check needs at least one image")
    import torch

    session = onnx_session(path)
    diffs, agree, total = [], 0, 0
    module = module.eval()
    for start in range(0, len(tiles), batch):
        chunk = np.ascontiguousarray(tiles[start:start + batch])
        with torch.no_grad():
            outputs = module(torch.from_numpy(chunk))
        outputs = [o.numpy() for o in (outputs if isinstance(outputs, tuple) else (outputs,))]
        got_all = session.run(None, {PIXELS: chunk})
        expected, got = outputs[0], got_all[0]
        if len(got_all) < len(outputs) or any(
                not np.array_equal(e, g) for e, g in zip(outputs[1:], got_all[1:], strict=False)):
            diffs.append(np.array([np.inf]))
        diffs.append(np.abs(expected - got).ravel())
        groups = taxonomy.slices.values() if taxonomy else [slice(None)]
        for s in groups:
            agree += int((expected[:, s].argmax(-1) == got[:, s].argmax(-1)).sum())
            total += len(chunk)
    d = np.concatenate(diffs)
    return ParityReport(len(tiles), float(d.max()), float(d.mean()), agree / total)

