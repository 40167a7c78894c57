"""Fitting attribute heads on cached backbone features, and saving/loading them.

Heads are small (a linear probe or one hidden layer) and train in seconds on features, which is
what makes adding an attribute a matter of minutes. ``select_head`` tries both shapes on a
held-out split and keeps the one that measures better.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fashiontag.colour.head import ColourHead
from fashiontag.colour.palette import colour_attribute
from fashiontag.errors import ModelArtifactError
from fashiontag.model.network import AttributeHead, NormalizedLinearHead
from fashiontag.model.weights import load_weights, plain_config, save_weights
from fashiontag.taxonomy import Taxonomy

__all__ = ["HeadFit", "fit_head", "single_thread", "select_head", "select_heads", "run_workers",
           "save_heads", "load_heads", "head_entry", "head_from_entry", "write_jobs", "read_jobs",
           "write_fits", "read_fits", "HEAD_CLASSES", "ensure_colour_head",
           "accuracy", "confusion_matrix", "default_steps", "fewshot_attributes"]


@dataclass
class HeadFit:
    head: AttributeHead
    hidden: int
    validation_accuracy: float | None  # None: one shape given, nothing to choose, no hold-out


def default_steps(examples: int, batch: int = 256) -> int:
    """About 30 epochs, but never fewer than 400 steps (tiny few-shot sets) nor more than 1,500."""
    per_epoch = max(1, -(-examples // batch))
    return int(min(1500, max(400, 30 * per_epoch)))


def fit_head(features: np.ndarray, labels: np.ndarray, num_values: int, *, hidden: int = 0,
             steps: int | None = None, lr: float = 2e-3, weight_decay: float = 1e-4,
             batch: int = 256, seed: int = 0, class_balanced: bool = True) -> AttributeHead:
    """Cross-entropy training of one head on ``features[labels >= 0]``."""
    keep = labels >= 0
    x = torch.from_numpy(np.ascontiguousarray(features[keep], dtype=np.float32))
    y = torch.from_numpy(labels[keep].astype(np.int64))
    if len(y) == 0:
        raise ValueError("no labelled examples to fit a head on")
    torch.manual_seed(seed)
    head = AttributeHead(num_values, hidden=hidden, in_dim=x.shape[1])
    weight = None
    if class_balanced:
        counts = torch.bincount(y, minlength=num_values).float()
        weight = torch.where(counts > 0, counts.sum() / (num_values * counts.clamp(min=1)),
                             torch.zeros_like(counts))
    loss_fn = nn.CrossEntropyLoss(weight=weight, label_smoothing=0.05)
    steps = steps or default_steps(len(y), batch)
    with single_thread():
        return _train(head, x, y, loss_fn, lr, weight_decay, steps, batch, seed)


@contextmanager
def single_thread() -> Iterator[None]:
    """Heads are small matmuls: one thread is nearly as fast, and on a busy machine OpenMP
    barriers across oversubscribed cores make two threads many times slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _train(head: AttributeHead, x: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module, lr: float,
           weight_decay: float, steps: int, batch: int, seed: int) -> AttributeHead:
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    head.train()
    order, cursor = torch.randperm(len(y), generator=gen), 0
    for _ in range(steps):
        if cursor >= len(y):
            order, cursor = torch.randperm(len(y), generator=gen), 0
        idx = order[cursor:cursor + batch]
        cursor += batch
        opt.zero_grad(set_to_none=True)
        loss_fn(head(x[idx]), y[idx]).backward()
        opt.step()
        sched.step()
    return head.eval()


def predict(head: AttributeHead, features: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return head(torch.from_numpy(np.ascontiguousarray(features, np.float32))).argmax(-1).numpy()


def accuracy(head: AttributeHead, features: np.ndarray, labels: np.ndarray) -> float:
    keep = labels >= 0
    if not keep.any():
        return float("nan")
    return float((predict(head, features[keep]) == labels[keep]).mean())


def confusion_matrix(head: AttributeHead, features: np.ndarray, labels: np.ndarray,
                     num_values: int) -> np.ndarray:
    keep = labels >= 0
    out = np.zeros((num_values, num_values), dtype=np.int64)
    np.add.at(out, (labels[keep], predict(head, features[keep])), 1)
    return out


def select_head(features: np.ndarray, labels: np.ndarray, num_values: int, *,
                hidden_options: tuple[int, ...] = (0, 512), seed: int = 0,
                validation_share: float = 0.15, steps: int | None = None) -> HeadFit:
    """Pick the head shape on a held-out split, then refit the winner on all the data (with one
    shape there is nothing to pick: a single fit on all the data)."""
    labelled = np.flatnonzero(labels >= 0)
    if len(labelled) == 0:
        raise ValueError("no labelled examples to fit a head on")
    if len(hidden_options) == 1:
        head = fit_head(features, labels, num_values, hidden=hidden_options[0], seed=seed,
                        steps=steps)
        return HeadFit(head, hidden_options[0], None)
    rng = np.random.default_rng(seed)
    val = rng.choice(labelled, max(1, int(len(labelled) * validation_share)), replace=False)
    train_labels = labels.copy()
    train_labels[val] = -1
    val_labels = np.full_like(labels, -1)
    val_labels[val] = labels[val]
    best_hidden, best_acc = hidden_options[0], -1.0
    for hidden in hidden_options:
        head = fit_head(features, train_labels, num_values, hidden=hidden, seed=seed, steps=steps)
        acc = accuracy(head, features, val_labels)
        if acc > best_acc:
            best_hidden, best_acc = hidden, acc
    head = fit_head(features, labels, num_values, hidden=best_hidden, seed=seed, steps=steps)
    return HeadFit(head, best_hidden, best_acc)


def select_heads(jobs: Mapping[str, tuple[np.ndarray, np.ndarray, int]], *,
                 workers: int | None = None, **kwargs) -> dict[str, HeadFit]:
    """``select_head`` for independent attributes, spread over one worker process per core.

    Each fit is single-threaded and seeds itself, so the heads are bit-identical to fitting them
    one after another. Processes rather than threads because dropout and initialisation draw from
    torch's process-wide generator; plain ``python -m`` workers (``fit_worker``) rather than
    multiprocessing, which would re-run an unguarded ``__main__`` in every child.
    """
    if workers is None:
        workers = len(os.sched_getaffinity(0))
    workers = max(1, min(workers, len(jobs)))
    if workers == 1:
        return {name: select_head(f, y, n, **kwargs) for name, (f, y, n) in jobs.items()}
    # every fit runs the same shapes, so optimiser steps rank the jobs by cost
    cost = {name: kwargs.get("steps") or default_steps(int((y >= 0).sum()))
            for name, (_, y, _) in jobs.items()}
    bins: list[list[str]] = [[] for _ in range(workers)]
    load = [0] * workers
    for name in sorted(jobs, key=cost.__getitem__, reverse=True):  # longest first, least loaded
        i = load.index(min(load))
        bins[i].append(name)
        load[i] += cost[name]
    groups = [[(name, *jobs[name], kwargs) for name in group] for group in bins if group]
    fits = run_workers(groups)
    return {name: fits[name] for name in jobs}


def run_workers(groups: list[list[tuple]]) -> dict[str, HeadFit]:
    """One ``fit_worker`` process per group, all at once; the union of their fits, or the first
    failure. Jobs and fits travel in files, not pipes, so nothing a library prints can corrupt
    them; as tensors and plain values (``write_jobs``, ``write_fits``), never pickled objects."""
    with tempfile.TemporaryDirectory(prefix="fashiontag-fit-") as tmp:
        procs = []
        for i, group in enumerate(groups):
            jobs, results = Path(tmp) / f"jobs-{i}.pt", Path(tmp) / f"fits-{i}.pt"
            write_jobs(group, jobs)
            cmd = [sys.executable, "-m", "fashiontag.model.fit_worker", str(jobs), str(results)]
            procs.append((subprocess.Popen(cmd, stderr=subprocess.PIPE), results, group))
        fits, errors = {}, []
        for proc, results, group in procs:
            _, stderr = proc.communicate()
            if proc.returncode != 0:
                names = [job[0] for job in group]
                errors.append(f"fitting {names} failed (exit {proc.returncode}):\n"
                              f"{stderr.decode(errors='replace')[-2000:]}")
                continue
            fits.update(read_fits(results))
        if errors:
            raise RuntimeError("\n".join(errors))
        return fits


#: Saved ``kind`` → module class; every head class has ``kind`` and ``config()``.
HEAD_CLASSES: dict[str, type[nn.Module]] = {
    cls.kind: cls for cls in (AttributeHead, NormalizedLinearHead, ColourHead)}


def _head_class(kind: str) -> type[nn.Module]:
    try:
        return HEAD_CLASSES[kind]
    except KeyError:
        raise ValueError(f"unknown head kind {kind!r}; known: {sorted(HEAD_CLASSES)}") from None


def head_entry(head: nn.Module) -> dict:
    """One head as tensors and plain values: its ``kind``, constructor ``config`` and weights."""
    return {"kind": head.kind, "config": plain_config(head.config()),
            "state_dict": dict(head.state_dict())}


def head_from_entry(entry: dict) -> nn.Module:
    """The head a :func:`head_entry` describes, in eval mode; only known kinds are built."""
    head = _head_class(entry["kind"])(**entry["config"])
    head.load_state_dict(entry["state_dict"])
    return head.eval()


def save_heads(path: str | Path, taxonomy: Taxonomy, heads: Mapping[str, nn.Module]) -> None:
    """Write every head (any kind) with the taxonomy they answer to; atomic replace.

    Tensors, plain values and the taxonomy as JSON only, so :func:`load_heads` reads the file
    with ``weights_only=True`` (:mod:`fashiontag.model.weights`)."""
    missing = set(taxonomy.names) - set(heads)
    if missing:
        raise ValueError(f"no head for attributes {sorted(missing)}")
    save_weights({"format": 2, "taxonomy": taxonomy.to_json(),
                  "heads": {name: head_entry(h) for name, h in heads.items() if name in taxonomy}},
                 path)


def load_heads(path: str | Path) -> tuple[Taxonomy, dict[str, nn.Module]]:
    """Read a heads file (format 1, MLP heads only, or format 2, any kind) without unpickling
    code: ModelArtifactError for a file that carries anything but tensors and plain values."""
    payload = load_weights(path, "heads file")
    try:
        taxonomy = Taxonomy.from_json(payload["taxonomy"])
        entries = payload["heads"]
    except KeyError as exc:
        raise ModelArtifactError(f"heads file {path} has no {exc.args[0]!r}") from None
    heads = {}
    for name, entry in entries.items():
        if "kind" not in entry:  # format 1
            entry = {"kind": AttributeHead.kind, "state_dict": entry["state_dict"],
                     "config": {"num_values": taxonomy[name].num_values,
                                "hidden": entry["hidden"], "in_dim": entry["in_dim"]}}
        heads[name] = head_from_entry(entry)
    return taxonomy, heads


def write_jobs(group: list[tuple], path: str | Path) -> None:
    """``fit_worker``'s input: ``[(name, features, labels, num_values, select_head kwargs)]``
    with the arrays as tensors (kwargs are plain values)."""
    save_weights({"jobs": [(name, torch.from_numpy(np.ascontiguousarray(features)),
                            torch.from_numpy(np.ascontiguousarray(labels)), int(num_values),
                            dict(kwargs))
                           for name, features, labels, num_values, kwargs in group]}, path)


def read_jobs(path: str | Path) -> list[tuple]:
    """What :func:`write_jobs` wrote, the arrays as numpy again."""
    return [(name, features.numpy(), labels.numpy(), num_values, kwargs)
            for name, features, labels, num_values, kwargs
            in load_weights(path, "head-fit jobs")["jobs"]]


def write_fits(fits: Mapping[str, HeadFit], path: str | Path) -> None:
    """``fit_worker``'s output: each :class:`HeadFit` as a head entry and plain values."""
    save_weights({"fits": {name: {"head": head_entry(fit.head), "hidden": fit.hidden,
                                  "validation_accuracy": fit.validation_accuracy}
                           for name, fit in fits.items()}}, path)


def read_fits(path: str | Path) -> dict[str, HeadFit]:
    """What :func:`write_fits` wrote."""
    return {name: HeadFit(head_from_entry(fit["head"]), fit["hidden"], fit["validation_accuracy"])
            for name, fit in load_weights(path, "head fits")["fits"].items()}


def fewshot_attributes(path: str | Path) -> list:
    """The few-shot attributes (``source == "fewshot"``) a heads file holds, in order."""
    if not Path(path).exists():
        return []
    taxonomy, _ = load_heads(path)
    return [a for a in taxonomy if a.source == "fewshot"]


def ensure_colour_head(heads_path: str | Path) -> bool:
    """Add the (untrained) colour head to a heads file that lacks it, or bring it up to this
    code's palette and settings; True if the file changed.

    Lets ``fashiontag build`` upgrade heads trained before colour existed without retraining.
    """
    taxonomy, heads = load_heads(heads_path)
    attribute = colour_attribute()
    fresh = ColourHead(attribute.values)
    current = heads.get(attribute.name)
    if attribute.name in taxonomy and taxonomy[attribute.name] == attribute \
            and current is not None and current.config() == fresh.config():
        return False
    heads[attribute.name] = fresh
    save_heads(heads_path, taxonomy.with_attribute(attribute), heads)
    return True
