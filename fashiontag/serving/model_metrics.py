"""The python models' custom metrics (names: :mod:`fashiontag.serving.metrics`), on Triton's
``/metrics`` port.

A ``pb_utils`` counter increment is an IPC round trip from the stub to tritonserver (22 µs
measured on the CPU machine, ~10 per image for the served values), far dearer than the
numpy that computes them. So requests only add to counts kept in the stub
(:class:`_Counters`, a few µs per batch) and one thread adds what changed to Triton's counters
every ``interval_s``: a scrape lags by at most that. Nothing here may fail a request: an error
is logged once and the metrics stop.
"""

from __future__ import annotations

import json
import logging
import threading

import numpy as np

from fashiontag.errors import DECODE_ERROR_REASONS
from fashiontag.serving.metrics import (
    DECODE_ERRORS,
    INPUT_BYTES,
    INPUT_IMAGES,
    NOT_APPLICABLE,
    SERVED_VALUES,
    TAXONOMY_INFO,
    MetricSpec,
)
from fashiontag.taxonomy import Taxonomy

__all__ = ["PreprocessMetrics", "AttributeMetrics", "ServedValues", "FLUSH_INTERVAL_S"]

log = logging.getLogger(__name__)
FLUSH_INTERVAL_S = 1.0


def _family(pb, spec: MetricSpec):
    kind = pb.MetricFamily.COUNTER if spec.kind == "counter" else pb.MetricFamily.GAUGE
    return pb.MetricFamily(name=spec.name, description=spec.help, kind=kind)


class _Counters:
    """Counts for a fixed list of Triton counters, added to them by a flush thread."""

    def __init__(self, metrics: list, interval_s: float = FLUSH_INTERVAL_S) -> None:
        self._metrics = metrics
        self._pending = np.zeros(len(metrics), dtype=np.float64)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._broken = False
        self._thread = threading.Thread(target=self._run, args=(interval_s,), daemon=True,
                                        name="fashiontag-metrics-flush")
        self._thread.start()

    def add(self, index: int, amount: float = 1.0) -> None:
        with self._lock:
            self._pending[index] += amount

    def add_counts(self, counts: np.ndarray) -> None:
        """``counts[i]`` more for metric ``i`` (an array as long as the metric list)."""
        with self._lock:
            self._pending += counts

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, np.zeros_like(self._pending)
        if self._broken:
            return
        try:
            for i in np.flatnonzero(pending):
                self._metrics[i].increment(float(pending[i]))
        except Exception:  # a metric must never take a model down
            self._broken = True
            log.exception("custom metrics failed; they stop for this model instance")

    def _run(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.flush()
        self._metrics = []


def _warmup_rows(args: dict) -> int:
    """Rows Triton's model warmup sends each instance before it is ready: zeros, not traffic."""
    warmups = json.loads(args["model_config"]).get("model_warmup", [])
    return sum(int(w.get("batch_size", 1)) * max(1, int(w.get("count", 1))) for w in warmups)


def _labels(args: dict) -> dict[str, str]:
    return {"model": args["model_name"], "version": str(args["model_version"])}


class PreprocessMetrics:
    """Bytes and images received; decode errors by ``ImageDecodeError.reason``."""

    def __init__(self, pb, args: dict, interval_s: float = FLUSH_INTERVAL_S) -> None:
        labels = _labels(args)
        self._families = [_family(pb, s) for s in (INPUT_BYTES, INPUT_IMAGES, DECODE_ERRORS)]
        received = [f.Metric(labels=labels) for f in self._families[:2]]
        errors = [self._families[2].Metric(labels={**labels, "reason": r})
                  for r in DECODE_ERROR_REASONS]
        self._counters = _Counters(received + errors, interval_s)

    def received(self, items) -> None:
        """``items``: the request's encoded images (bytes-like objects)."""
        self._counters.add(0, float(sum(len(x) for x in items)))
        self._counters.add(1, float(len(items)))

    def decode_error(self, reason: str) -> None:
        self._counters.add(2 + DECODE_ERROR_REASONS.index(reason))

    def close(self) -> None:
        self._counters.close()
        self._families = []


class ServedValues:
    """Top value per attribute of ``[N, total_values]`` probabilities, as counts over the slots
    ``(attribute, value)`` then ``(attribute, not_applicable)``: one gather, one argmax and one
    bincount per batch, whatever its size (the taxonomy's hierarchy decides applicability, as
    the client's decoding does)."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        attributes = list(taxonomy)
        widest = max(a.num_values for a in attributes)
        slices = taxonomy.slices
        total = taxonomy.total_values
        # [A, widest] indices into the row, padded with the attribute's first value: argmax
        # returns the first of equal maxima, so a padding column never wins
        gather = np.zeros((len(attributes), widest), dtype=np.intp)
        for i, a in enumerate(attributes):
            gather[i] = slices[a.name].start
            gather[i, :a.num_values] = np.arange(slices[a.name].start, slices[a.name].stop)
        self.total = total
        self._gather = gather
        self._offsets = np.array([slices[a.name].start for a in attributes], dtype=np.intp)
        self._slots = total + len(attributes)
        self.labels = ([(a.name, v) for a in attributes for v in a.values]
                       + [(a.name, NOT_APPLICABLE) for a in attributes])
        category = taxonomy.category
        self._category = None
        if category is not None and any(a.applies_to for a in attributes):
            self._category = (attributes.index(category), np.array(
                [[a.applies(garment) for a in attributes] for garment in category.values]))
        self._not_applicable = total + np.arange(len(attributes), dtype=np.intp)

    def counts(self, probabilities: np.ndarray) -> np.ndarray | None:
        """Counts per slot, or None when the rows do not match the taxonomy."""
        p = np.asarray(probabilities)
        if p.ndim != 2 or p.shape[1] != self.total or not len(p):
            return None
        best = p[:, self._gather].argmax(axis=2)  # [N, A]
        slots = best + self._offsets
        if self._category is not None:
            column, applies = self._category
            slots = np.where(applies[best[:, column]], slots, self._not_applicable)
        return np.bincount(slots.ravel(), minlength=self._slots)


class AttributeMetrics:
    """Served top values per attribute and the taxonomy of the loaded version."""

    def __init__(self, pb, args: dict, taxonomy: Taxonomy | None,
                 interval_s: float = FLUSH_INTERVAL_S) -> None:
        labels = _labels(args)
        self._families, self._info, self._counters, self._values = [], None, None, None
        self._skip = _warmup_rows(args)
        if taxonomy is None:
            return
        info_family, served_family = _family(pb, TAXONOMY_INFO), _family(pb, SERVED_VALUES)
        self._families = [info_family, served_family]
        self._info = info_family.Metric(labels={**labels, "taxonomy_id": str(taxonomy.id),
                                                "fingerprint": taxonomy.fingerprint})
        self._info.set(1.0)
        self._values = ServedValues(taxonomy)
        self._counters = _Counters(
            [served_family.Metric(labels={**labels, "attribute": a, "value": v})
             for a, v in self._values.labels], interval_s)

    def served(self, probabilities) -> None:
        """``probabilities``: the batch's ``[N, total_values]`` output (numpy, or a CPU torch
        tensor on the torch runtime)."""
        if self._values is None:
            return
        try:
            if hasattr(probabilities, "detach"):  # torch: no numpy interop on the GPU machine
                probabilities = np.array(probabilities.detach().float().tolist(), np.float32)
            if self._skip:  # the warmup's rows come first: leave them out of the shares
                skipped = min(self._skip, len(probabilities))
                self._skip -= skipped
                probabilities = probabilities[skipped:]
            counts = self._values.counts(probabilities)
        except Exception:  # a metric must never fail a request
            log.exception("served-value metrics failed; they stop for this model instance")
            self._values = None
            return
        if counts is not None:
            self._counters.add_counts(counts)

    def close(self) -> None:
        if self._counters is not None:
            self._counters.close()
        self._info = self._counters = None
        self._families = []
