"""The attribute network: input normalisation → EfficientNet-Lite0 → one head per attribute.

Input is the ``uint8 [N, 224, 224, 3]`` RGB tile from :mod:`fashiontag.images`; output is one
flat probability vector per image, each attribute's softmax concatenated in taxonomy order. Keeping
normalisation in the graph means every runtime (onnxruntime, TensorRT, the few-shot trainer) sees
the same pixels-to-tensor mapping, taken from the :class:`~fashiontag.images.PreprocessSpec`.

Three kinds of head share that contract (``kind`` names them in saved head files):
``mlp`` (:class:`AttributeHead`, trained on raw features), ``normalized_linear``
(:class:`NormalizedLinearHead`, the few-shot heads: prototype or logistic on normalised features)
and ``colour`` (:class:`fashiontag.colour.head.ColourHead`, a fixed module that reads pixels and
emits a distribution itself).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from fashiontag.model.backbone import FEATURE_DIM, Backbone
from fashiontag.spec import DEFAULT_SPEC, PreprocessSpec
from fashiontag.taxonomy import Taxonomy

__all__ = ["InputNormalization", "AttributeHead", "NormalizedLinearHead", "AttributeHeads",
           "AttributeModel", "FeatureModel", "TrunkModel", "ServedModel", "normalize_features",
           "scale_logits"]


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

    kind = "mlp"

    def __init__(self, num_values: int, hidden: int = 0, in_dim: int = FEATURE_DIM,
                 dropout: float = 0.2) -> None:
        super().__init__()
        self.num_values, self.in_dim, self.dropout = num_values, in_dim, dropout
        self.hidden = hidden
        if hidden:
            self.layers = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, hidden), nn.ReLU(),
                                        nn.Dropout(dropout), nn.Linear(hidden, num_values))
        else:
            self.layers = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, num_values))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)

    def config(self) -> dict:
        return {"num_values": self.num_values, "hidden": self.hidden, "in_dim": self.in_dim,
                "dropout": self.dropout}


def normalize_features(features: torch.Tensor, mean: torch.Tensor | None = None) -> torch.Tensor:
    """Power transform (square root), L2 normalisation, optional centring and re-normalisation.

    Pooled ReLU6 features are non-negative and heavy-tailed; the square root and unit length make
    cosine geometry meaningful, which is what few-shot heads live on. The numpy twin used while
    fitting is ``fashiontag.fewshot.heads.normalize``.
    """
    x = torch.sqrt(features.clamp(min=0.0))
    x = x / (x.norm(dim=-1, keepdim=True) + 1e-8)
    if mean is not None:
        x = x - mean
        x = x / (x.norm(dim=-1, keepdim=True) + 1e-8)
    return x


class NormalizedLinearHead(nn.Module):
    """Normalised features → ``scale * (x @ W.T) + b``.

    One module for both few-shot head shapes: a prototype head is ``W`` = unit class means and
    ``b = 0`` (cosine similarity to each class centre); a logistic head has ``W, b`` fitted by
    regularised logistic regression on the same normalised features.
    """

    kind = "normalized_linear"
    hidden = 0

    def __init__(self, num_values: int, in_dim: int = FEATURE_DIM, scale: float = 10.0) -> None:
        super().__init__()
        self.num_values, self.in_dim, self.scale = num_values, in_dim, float(scale)
        self.register_buffer("mean", torch.zeros(in_dim))
        self.linear = nn.Linear(in_dim, num_values)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(normalize_features(features, self.mean) * self.scale)

    def config(self) -> dict:
        return {"num_values": self.num_values, "in_dim": self.in_dim, "scale": self.scale}

    @classmethod
    def from_arrays(cls, mean, weight, bias, scale: float) -> NormalizedLinearHead:
        """Build from numpy arrays: ``mean [D]``, ``weight [K, D]``, ``bias [K]``."""
        weight = torch.as_tensor(weight, dtype=torch.float32)
        head = cls(weight.shape[0], weight.shape[1], scale)
        with torch.no_grad():
            head.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
            head.linear.weight.copy_(weight)
            head.linear.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
        return head.eval()


class AttributeHeads(nn.Module):
    """All heads; emits concatenated per-attribute softmax in taxonomy order.

    Heads with ``takes_pixels = True`` (colour) get the input tile and return a distribution
    themselves; all others get the pooled features and return logits.
    """

    def __init__(self, taxonomy: Taxonomy, heads: Mapping[str, AttributeHead]) -> None:
        super().__init__()
        missing = set(taxonomy.names) - set(heads)
        if missing:
            raise ValueError(f"no trained head for attributes {sorted(missing)}")
        self.names = list(taxonomy.names)
        self.heads = nn.ModuleDict({name: heads[name] for name in self.names})

    def forward(self, features: torch.Tensor, pixels: torch.Tensor | None = None) -> torch.Tensor:
        parts = []
        for name in self.names:
            head = self.heads[name]
            if getattr(head, "takes_pixels", False):
                if pixels is None:
                    raise ValueError(f"head {name!r} needs the input pixels")
                parts.append(head(pixels))
            else:
                parts.append(torch.softmax(head(features), dim=-1))
        return torch.cat(parts, dim=-1)


class FeatureModel(nn.Module):
    """Pixels → pooled backbone features; exported once to extract training features fast."""

    def __init__(self, backbone: Backbone, spec: PreprocessSpec = DEFAULT_SPEC) -> None:
        super().__init__()
        self.normalize = InputNormalization(spec)
        self.backbone = backbone

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.normalize(pixels))


class TrunkModel(nn.Module):
    """Pixels → the frozen trunk's activations: what fine-tuning caches once per image view."""

    def __init__(self, backbone: Backbone, spec: PreprocessSpec = DEFAULT_SPEC) -> None:
        super().__init__()
        self.normalize = InputNormalization(spec)
        self.backbone = backbone

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.backbone.trunk(self.normalize(pixels))


class AttributeModel(nn.Module):
    """Pixels → concatenated attribute probabilities (what gets exported and served)."""

    def __init__(self, backbone: Backbone, heads: AttributeHeads,
                 spec: PreprocessSpec = DEFAULT_SPEC) -> None:
        super().__init__()
        self.features = FeatureModel(backbone, spec)
        self.heads = heads

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.heads(self.features(pixels), pixels)


class ServedModel(nn.Module):
    """What gets exported: probabilities plus a constant ``int32 [N, 1]`` taxonomy id per image.

    The id (``Taxonomy.id``) tells a client which taxonomy produced each response, so responses
    from an old and a new model version can be told apart during a hot reload.
    """

    def __init__(self, model: AttributeModel, taxonomy_id: int) -> None:
        super().__init__()
        self.model = model
        self.taxonomy_id = int(taxonomy_id)

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        probabilities = self.model(pixels)
        ids = torch.zeros_like(probabilities[:, :1], dtype=torch.int32) + self.taxonomy_id
        return probabilities, ids


def scale_logits(head: nn.Module, factor: float) -> nn.Module:
    """Multiply a head's logits by ``factor`` by scaling its last linear layer, in place.

    A fitted softmax temperature ``T`` (``factor = 1 / T``) becomes part of the weights: every
    runtime then serves calibrated probabilities with no extra op in the graph.
    """
    last = head.linear if isinstance(head, NormalizedLinearHead) else head.layers[-1]
    with torch.no_grad():
        last.weight.mul_(factor)
        last.bias.mul_(factor)
    return head
