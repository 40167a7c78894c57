"""The Ray Data engine: the same tagging as :mod:`fashiontag.tagging.runner`, spread over a pool
of Ray actors that each stream their share of the catalog to one or more Triton servers.

Ray does the distribution (blocks, actor pool, back-pressure, retries of lost tasks); nothing
here schedules work itself. The driver keeps the one sink, so resume and exactly-once work as in
the local engine: ids already in the output are never sent to Ray, and every record that comes
back is written once.

On a real cluster: start Ray on every node (``ray start --head`` / ``ray start --address=...``,
one ``RAY_AUTH_TOKEN`` for all nodes and the driver), install ``fashiontag[client,ray]`` on all
of them, make the catalog readable under the same names on every node (a shared filesystem, or
URLs: ``fashiontag[remote]``), and run
``fashiontag tag SOURCE --out tags.jsonl --engine ray --ray-address auto --url triton-a:8001
--url triton-b:8001 --workers N`` on a node of the cluster.
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from fashiontag.client.remote import is_url
from fashiontag.errors import FashiontagError
from fashiontag.tagging.progress import Progress
from fashiontag.tagging.runner import (
    OutageBreaker,
    TagSettings,
    count_skips,
    record_for,
    write_result,
)
from fashiontag.tagging.sink import RecordSink
from fashiontag.tagging.sources import SourceItem, skip_done
from fashiontag.tagging.stats import RunStats

__all__ = ["tag_catalog_ray", "RayTagger"]

log = logging.getLogger(__name__)


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise FashiontagError("--engine ray needs Ray Data: pip install 'fashiontag[ray]'"
                              ) from None
    return ray


class RayTagger:
    """A Ray Data actor: one streaming client, reused for every batch it is given."""

    def __init__(self, settings: TagSettings) -> None:
        from fashiontag.client import TagClient

        self.settings = settings
        # Start each actor's rotation at a different server, so with round-robin the first
        # requests of all actors do not land on the same one.
        self.client = TagClient(options=settings.client_options(
            rotate=random.randrange(len(settings.urls))))
        import ray

        self.node = ray.get_runtime_context().get_node_id()  # which node did the work

    def __call__(self, batch: dict) -> dict:
        items = [SourceItem(str(i), str(p) if is_url(str(p)) else Path(str(p)))
                 for i, p in zip(batch["id"], batch["path"], strict=True)]
        paths = {item.id: item.path for item in items}
        records, latencies, attempts = [], [], []
        for result in self.client.tag_stream(items, ordered=False,
                                             **self.settings.stream_kwargs()):
            records.append(json.dumps(record_for(result, paths[result.id])))
            latencies.append(result.latency_ms or 0.0)
            attempts.append(result.attempts)
        return {"record": np.array(records, dtype=object),
                "latency_ms": np.array(latencies, dtype=np.float64),
                "attempts": np.array(attempts, dtype=np.int64),
                "node": np.array([self.node] * len(records), dtype=object)}


def tag_catalog_ray(items: Iterable[SourceItem], sink: RecordSink, settings: TagSettings, *,
                    stats: RunStats | None = None, progress: Progress | None = None,
                    workers: int | None = None, address: str | None = None,
                    batch_size: int = 64, cpus_per_worker: float = 0.5) -> RunStats:
    """Tag every item not yet in ``sink`` on a Ray cluster; records are written by this process.
    Ray Data spreads the actors over the cluster's nodes (its default placement, SPREAD);
    ``stats.nodes`` counts what each node did.

    Joins the Ray instance already initialised in this process, else ``address`` (or
    ``$RAY_ADDRESS``), else starts a local one (and shuts it down afterwards). The pending
    ``(id, path)`` list is built on the driver (about 200 bytes per image).
    """
    ray = _ray()
    stats = stats or RunStats()
    started_here = False
    if not ray.is_initialized():
        ray.init(address=address or os.environ.get("RAY_ADDRESS"), include_dashboard=False,
                 logging_level=logging.WARNING, log_to_driver=False)
        started_here = True
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # ours is on the driver, counting written records
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        rows = [{"id": item.id, "path": str(item.path)}
                for item in skip_done(items, sink.done_ids, count_skips(stats))]
        if rows:
            _run(ray, rows, sink, settings, stats, progress, workers, batch_size,
                 cpus_per_worker)
    except ray.exceptions.RayError as exc:  # records written so far stay; --resume goes on
        raise FashiontagError(f"Ray tagging stopped: {str(exc).strip().splitlines()[-1]}"
                              ) from exc
    finally:
        if started_here:
            ray.shutdown()
    return stats.finish()


def _run(ray, rows: list[dict], sink: RecordSink, settings: TagSettings, stats: RunStats,
         progress: Progress | None, workers: int | None, batch_size: int,
         cpus_per_worker: float) -> None:
    workers = workers or max(2, len(settings.urls))
    blocks = max(workers * 2, min(len(rows) // batch_size + 1, 1000))
    dataset = ray.data.from_items(rows, override_num_blocks=min(blocks, len(rows)))
    tagged = dataset.map_batches(RayTagger, fn_constructor_kwargs={"settings": settings},
                                 batch_size=batch_size,
                                 compute=ray.data.ActorPoolStrategy(size=workers),
                                 num_cpus=cpus_per_worker, batch_format="numpy")
    written: set[str] = set()  # a task Ray re-ran after a lost worker must not write twice
    breaker = OutageBreaker(settings.outage_limit)
    for batch in tagged.iter_batches(batch_size=None, batch_format="numpy"):
        for text, latency, attempts, node in zip(batch["record"], batch["latency_ms"],
                                                 batch["attempts"], batch["node"], strict=True):
            record = json.loads(text)
            if record["id"] in written:
                continue
            ok = write_result(sink, record, stats, progress, float(latency), int(attempts))
            if ok:
                written.add(record["id"])
                stats.nodes.setdefault(str(node), {"images": 0})["images"] += 1
            breaker.observe(ok, stats)
    _describe_nodes(ray, stats)


def _describe_nodes(ray, stats: RunStats) -> None:
    """Name each node's custom resources (``ray start --resources``), so a run's stats show
    which machine of the cluster tagged what."""
    standard = ("CPU", "GPU", "memory", "object_store_memory", "node:", "accelerator_type:")
    for node in ray.nodes():
        if node.get("NodeID") in stats.nodes:
            stats.nodes[node["NodeID"]]["resources"] = sorted(
                r for r in node.get("Resources", {}) if not r.startswith(standard))
