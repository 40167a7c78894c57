"""tag_stream on both client twins against the real server: order, back-pressure, flat memory,
several endpoints, and both places of decoding giving the same answers."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import numpy as np
import pytest

from fashiontag.client import AsyncTagClient, TagClient
from fashiontag.serving.server import find_free_port


class CountingItems:
    """A lazy stream that records how far the client has read ahead of what it gave back."""

    def __init__(self, items):
        self._items = iter(items)
        self.pulled = 0
        self.yielded = 0
        self.max_ahead = 0

    def __iter__(self):
        for item in self._items:
            self.pulled += 1
            self.max_ahead = max(self.max_ahead, self.pulled - self.yielded)
            yield item

    def took(self, n: int = 1) -> None:
        self.yielded += n


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS")


@pytest.mark.parametrize("decode", ["server", "client"])
def test_both_decode_placements_give_the_same_probabilities(server, decode, sample_photos,
                                                            garment_samples):
    paths = sample_photos + garment_samples[:8]
    with TagClient(server.grpc_url, decode=decode, timeout_s=60) as c, \
            TagClient(server.grpc_url, decode="server", timeout_s=60) as reference:
        results = list(c.tag_stream([(p.name, p) for p in paths], concurrency=8))
        expected = [reference.tag(p.read_bytes()).vector for p in paths]
    assert [r.id for r in results] == [p.name for p in paths]
    assert all(r.ok for r in results)
    assert np.abs(np.stack([r.attributes.vector for r in results]) - np.stack(expected)).max() \
        < 1e-5


@pytest.mark.parametrize("ordered", [True, False])
def test_stream_yields_one_result_per_item_and_never_reads_far_ahead(client, ordered,
                                                                     garment_samples):
    concurrency = 4
    source = CountingItems((f"{i}", p) for i, p in
                           enumerate(garment_samples * 3))
    ids = []
    for result in client.tag_stream(source, concurrency=concurrency, ordered=ordered):
        source.took()
        assert result.ok, result.error
        ids.append(result.id)
    expected = [str(i) for i in range(len(garment_samples) * 3)]
    assert (ids if ordered else sorted(ids, key=int)) == expected
    assert source.max_ahead <= concurrency


def test_client_memory_stays_flat_over_a_long_lazy_stream(client, garment_samples):
    """20,000 requests through the real server; one in 50 is a real photo (the model runs),
    the rest are refused by the server's decoder, which keeps the run short while the client
    goes through exactly the same request/response/retry machinery for every item."""
    photos = [p.read_bytes() for p in garment_samples]
    n, concurrency = 20_000, 32

    def items():
        for i in range(n):
            yield (f"item-{i}", photos[i % len(photos)] if i % 50 == 0
                   else b"GIF89a-not-an-image-" + str(i).encode())

    source = CountingItems(items())
    done = ok = 0
    rss_warm = None
    for result in client.tag_stream(source, concurrency=concurrency, ordered=False):
        source.took()
        done += 1
        ok += result.ok
        if done == 2_000:
            rss_warm = _rss_mb()
    growth = _rss_mb() - rss_warm
    assert done == n and ok == n // 50
    assert source.max_ahead <= concurrency
    assert growth < 25, f"client RSS grew {growth:.1f} MB over {n - 2000} items"


def test_a_dead_endpoint_is_avoided_and_every_image_still_comes_back(server,
                                                                     garment_samples):
    dead = f"127.0.0.1:{find_free_port()}"
    with TagClient([server.grpc_url, dead], timeout_s=60) as c:
        results = list(c.tag_stream(garment_samples, concurrency=4, ordered=False,
                                    retries=6, backoff_s=0.05))
    assert len(results) == len(garment_samples) and all(r.ok for r in results)
    assert any(r.attempts > 1 for r in results), "the dead endpoint was never tried"


def test_async_stream_is_the_twin_of_the_sync_one(server, client, garment_samples):
    items = [(p.stem, p) for p in garment_samples]
    ahead = []

    async def lazy(counter: CountingItems):
        for item in counter:
            await asyncio.sleep(0)
            yield item

    async def run(decode: str):
        counter = CountingItems(items)
        async with AsyncTagClient(server.grpc_url, decode=decode) as aio:
            ordered = []
            async for r in aio.tag_stream(lazy(counter), concurrency=4):
                counter.took()
                ordered.append(r)
            unordered = [r async for r in aio.tag_stream(items, concurrency=4, ordered=False)]
        ahead.append(counter.max_ahead)
        return ordered, unordered

    expected = {r.id: r.attributes.vector for r in client.tag_stream(items, concurrency=4)}
    for decode in ("server", "client"):
        ordered, unordered = asyncio.run(run(decode))
        assert [r.id for r in ordered] == [i for i, _ in items]
        assert sorted(r.id for r in unordered) == sorted(expected)
        for r in itertools.chain(ordered, unordered):
            assert r.ok and np.allclose(r.attributes.vector, expected[r.id], atol=1e-5)
    assert max(ahead) <= 4


def test_bad_items_in_a_stream_are_results_not_exceptions(client, sample_photos):
    good = sample_photos[0].read_bytes()
    items = [("good", good), ("empty", b""), ("junk", b"\x00\x01"), ("truncated", good[:999]),
             ("missing", Path("/nonexistent/x.jpg")), ("good-2", sample_photos[1])]
    results = list(client.tag_stream(items, concurrency=3, retries=2))
    assert [r.id for r in results] == [i for i, _ in items]
    assert [r.ok for r in results] == [True, False, False, False, False, True]
    assert {r.error_type for r in results if not r.ok} == {"InvalidImageError"}
    assert all(r.attempts == 1 for r in results)  # bad input is never retried
