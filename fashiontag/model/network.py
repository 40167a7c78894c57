"""The attribute network: input normalisation → EfficientNet-Lite0 → one head per attribute.

Input is the ``uint8 [N, 224, 224, 3]`` RGB tile from :mod:`fashiontag.images`; output is one
flat probability vector per image, each attribute's softmax concatenated in taxonomy order. Keeping
normalisation in the graph means every runtime (onnxruntime, TensorRT, the few-shot trainer) sees
the same pixels-to-tensor mapping, taken from the :class:`~fashiontag.images.PreprocessSpec`.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from fashiontag.model.backbone import FEATURE_DIM, Backbone
from fashiontag.spec import DEFAULT_SPEC, PreprocessSpec
from fashiontag.taxonomy import Taxonomy

__all__ = ["InputNormalization", "AttributeHead", "AttributeHeads", "AttributeModel",
           "FeatureModel"]


class InputNormalization(nn.Module):
    """``uint8 NHWC`` → ``float32 NCHW`` scaled as ``(x - mean) * scale``."""

    def __init__(self, spec: PreprocessSpec = DEFAULT_SPEC) -> None:
        super().__init__()
        if spec.layout != "NHWC" or spec.channels != "RGB":
            raise ValueError(f"unsupported input layout {spec.layout}/{spec.channels}")
        self.mean = float(spec.mean)
        self.scale = float(spec.scale)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.to(torch.float32).permute(0, 3, 1, 2)
        return (x - self.mean) * self.scale


class AttributeHead(nn.Module):
    """Features → logits for one attribute; ``hidden == 0`` is a linear probe."""

    def __init__(self, num_values: int, hidden: int = 0, in_dim: int = FEATURE_DIM,
                 dropout: float = 0.2) -> None:
        super().__init__()
        self.hidden = hidden
        if hidden:
            self.layers = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, hidden), nn.ReLU(),
                                        nn.Dropout(dropout), nn.Linear(hidden, num_values))
        else:
            self.layers = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, num_values))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)


class AttributeHeads(nn.Module):
    """All heads; emits concatenated per-attribute softmax in taxonomy order."""

    def __init__(self, taxonomy: Taxonomy, heads: Mapping[str, AttributeHead]) -> None:
        super().__init__()
        missing = set(taxonomy.names) - set(heads)
        if missing:
            raise ValueError(f"no trained head for attributes {sorted(missing)}")
        self.names = list(taxonomy.names)
        self.heads = nn.ModuleDict({name: heads[name] for name in self.names})

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.softmax(self.heads[n](features), dim=-1) for n in self.names],
                         dim=-1)


class FeatureModel(nn.Module):
    """Pixels → pooled backbone features; exported once to extract training features fast."""

    def __init__(self, backbone: Backbone, spec: PreprocessSpec = DEFAULT_SPEC) -> None:
        super().__init__()
        self.normalize = InputNormalization(spec)
        self.backbone = backbone

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.normalize(pixels))


class AttributeModel(nn.Module):
    """Pixels → concatenated attribute probabilities (what gets exported and served)."""

    def __init__(self, backbone: Backbone, heads: AttributeHeads,
                 spec: PreprocessSpec = DEFAULT_SPEC) -> None:
        super().__init__()
        self.features = FeatureModel(backbone, spec)
        self.heads = heads

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.heads(self.features(pixels))
