"""Fine-tuning the backbone's last blocks on real garment photos, from cached trunk activations.

The frozen trunk ran once per image view (:func:`fashiontag.model.features.trunk_extractor`);
each epoch the tail (last blocks + head convolution, :class:`~fashiontag.model.backbone.Backbone`)
and one linear head per task see one randomly chosen view of every image. Tasks share the tail
(multi-task, as in the FashionAI system): the garment type, and sleeve and pant length from the
weak labels that garment types carry (T-Shirt → short sleeves, Pants → full length); an image
counts for a task only where it has a label (-1 elsewhere).

Recipe (measured on a sender-disjoint split, see docs/model-quality.md): AdamW, one-cycle
schedule, heads at 3x the tail's learning rate, label smoothing, square-root inverse-frequency
class weights, stochastic depth as the pretrained network had it. ``device="cuda"`` trains the
same way on a GPU.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fashiontag.model.backbone import FEATURE_DIM, Backbone

__all__ = ["FinetuneConfig", "FinetuneResult", "TailModel", "finetune", "tail_features"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinetuneConfig:
    epochs: int = 8
    lr: float = 2e-3  # the tail's peak learning rate; heads get head_lr_factor times it
    head_lr_factor: float = 3.0
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    batch: int = 64
    aux_weight: float = 0.5  # weight of every task but the first (the garment type)
    dropout: float = 0.2
    seed: int = 0
    device: str = "cpu"
    steps: int | None = None  # stop after this many optimiser steps (smoke tests)

    def to_dict(self) -> dict:
        return asdict(self)


class TailModel(nn.Module):
    """Trunk activations → pooled features → logits of each task."""

    def __init__(self, backbone: Backbone, tasks: Mapping[str, int], dropout: float = 0.2
                 ) -> None:
        super().__init__()
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout)
        self.heads = nn.ModuleDict({name: nn.Linear(FEATURE_DIM, n) for name, n in tasks.items()})

    def forward(self, activations: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.dropout(self.backbone.tail(activations))
        return {name: head(features) for name, head in self.heads.items()}


@dataclass
class FinetuneResult:
    heads: dict[str, nn.Linear]
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0


def _class_weights(labels: np.ndarray, num_values: int) -> torch.Tensor:
    """Square-root inverse frequency (full inverse frequency over-predicted the rare types)."""
    counts = np.bincount(labels[labels >= 0], minlength=num_values).astype(np.float64)
    weights = np.where(counts > 0, np.sqrt(counts.sum() / (num_values * np.maximum(counts, 1))),
                       0.0)
    return torch.tensor(weights, dtype=torch.float32)


def finetune(backbone: Backbone, activations: np.ndarray, targets: Mapping[str, np.ndarray],
             num_values: Mapping[str, int], cfg: FinetuneConfig = FinetuneConfig(),
             on_epoch: Callable[[int, TailModel], dict] | None = None) -> FinetuneResult:
    """Train ``backbone``'s tail in place on ``activations [N, V, C, H, W]`` (V cached views per
    image) and ``targets`` (task → ``[N]`` value index, -1 = no label). The first task is the
    main one. ``on_epoch(epoch, model)`` may return validation figures for the history."""
    t0 = time.perf_counter()
    device = torch.device(cfg.device)
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    tasks = list(targets)
    model = TailModel(backbone, {t: num_values[t] for t in tasks}, cfg.dropout).to(device)
    for p in backbone.parameters():
        p.requires_grad_(False)
    tail_params = list(backbone.tail_modules().parameters())
    for p in tail_params:
        p.requires_grad_(True)
    optimiser = torch.optim.AdamW(
        [{"params": tail_params, "lr": cfg.lr},
         {"params": model.heads.parameters(), "lr": cfg.lr * cfg.head_lr_factor}],
        weight_decay=cfg.weight_decay)
    n, views = activations.shape[:2]
    steps_per_epoch = -(-n // cfg.batch)
    total = cfg.steps or cfg.epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=[cfg.lr, cfg.lr * cfg.head_lr_factor], total_steps=total,
        pct_start=0.2)
    labels = {t: torch.from_numpy(np.asarray(targets[t], np.int64)) for t in tasks}
    weights = {t: _class_weights(np.asarray(targets[t]), num_values[t]).to(device)
               for t in tasks}
    result = FinetuneResult(heads={})
    step = 0
    for epoch in range(cfg.epochs):
        model.train()
        order = torch.randperm(n, generator=generator)
        running = 0.0
        for start in range(0, n, cfg.batch):
            if step >= total:
                break
            idx = order[start:start + cfg.batch]
            view = torch.randint(0, views, (len(idx),), generator=generator)
            x = torch.from_numpy(activations[idx.numpy(), view.numpy()].astype(np.float32))
            logits = model(x.to(device))
            loss = torch.zeros((), device=device)
            for i, task in enumerate(tasks):
                y = labels[task][idx].to(device)
                if not bool((y >= 0).any()):
                    continue
                task_loss = F.cross_entropy(logits[task], y, weight=weights[task],
                                            ignore_index=-1,
                                            label_smoothing=cfg.label_smoothing)
                loss = loss + (1.0 if i == 0 else cfg.aux_weight) * task_loss
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            running += loss.item()
            step += 1
        entry = {"epoch": epoch, "loss": round(running / max(1, steps_per_epoch), 4)}
        if on_epoch is not None:
            model.eval()
            entry.update(on_epoch(epoch, model))
        result.history.append(entry)
        log.info("fine-tuning epoch %d: %s", epoch, entry)
        if step >= total:
            break
    model.eval()
    backbone.to("cpu").eval()
    result.heads = {t: model.heads[t].to("cpu") for t in tasks}
    result.seconds = round(time.perf_counter() - t0, 1)
    result.steps = step
    return result


def tail_features(backbone: Backbone, activations: np.ndarray, batch: int = 256,
                  device: str = "cpu") -> np.ndarray:
    """Pooled features ``float32 [N, 1280]`` of cached activations ``[N, C, H, W]`` through the
    (tuned) tail, in eval mode."""
    backbone = backbone.to(device).eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(activations), batch):
            x = torch.from_numpy(activations[start:start + batch].astype(np.float32))
            out.append(backbone.tail(x.to(device)).cpu().numpy())
    backbone.to("cpu")
    return np.concatenate(out) if out else np.zeros((0, FEATURE_DIM), np.float32)
