"""Send tiles through Triton's system shared memory instead of the gRPC payload (same host only).

A client on the server's host that decodes images itself (``decode="client"``) otherwise copies
every 150 KB tile through protobuf and the socket; with shared memory only the region's name
crosses gRPC. The GPU probe found this path stable where large gRPC payloads were not
(benchmarks/README.md). One fixed-size region per request in flight, registered with every
endpoint once per stream, reused request after request, and unregistered and unlinked when the
stream ends, so nothing is left in ``/dev/shm``.
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
from dataclasses import dataclass

import numpy as np

from fashiontag.client.errors import ClientError, translate
from fashiontag.protocol import PIXELS

__all__ = ["SharedMemoryPool", "SHM_PREFIX"]

#: ``/dev/shm`` names of client regions start with this (tests check none is left behind).
SHM_PREFIX = "fashiontag-client"
_POOLS = itertools.count()


@dataclass
class _Region:
    name: str
    key: str
    handle: object


class SharedMemoryPool:
    """``count`` regions of ``byte_size`` bytes, each holding one request's input at a time."""

    def __init__(self, clients: list, count: int, byte_size: int) -> None:
        import tritonclient.utils.shared_memory as shm

        self._shm, self._clients, self.byte_size = shm, list(clients), int(byte_size)
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        self._regions: list[_Region] = []
        self._registered: list[tuple[object, str]] = []
        self._lock = threading.Lock()
        self._returned = threading.Condition()
        self._out = 0  # regions acquired and not yet released (requests in flight)
        base = f"{SHM_PREFIX}-{os.getpid()}-{next(_POOLS)}"
        try:
            for i in range(count):
                name = f"{base}-{i}"
                region = _Region(name, f"/{name}", shm.create_shared_memory_region(
                    name, f"/{name}", self.byte_size))
                self._regions.append(region)
                for client in self._clients:
                    client.register_system_shared_memory(name, region.key, self.byte_size)
                    self._registered.append((client, name))
                self._free.put(region)
        except Exception as exc:
            self.close()
            error = translate(exc)
            raise ClientError(f"could not set up shared memory with the server (it must run on "
                              f"this host): {error}") from None

    def acquire(self) -> _Region:
        """A free region; never waits while callers hold at most ``count`` regions."""
        try:
            region = self._free.get(timeout=60.0)
        except queue.Empty:
            raise ClientError("no free shared-memory region after 60 s (more requests in "
                              "flight than regions)") from None
        with self._returned:
            self._out += 1
        return region

    def release(self, region: _Region) -> None:
        self._free.put(region)
        with self._returned:
            self._out -= 1
            self._returned.notify_all()

    def inputs(self, region: _Region, tiles: np.ndarray) -> list:
        """Write ``tiles`` (``uint8 [N, S, S, 3]`` or one ``[S, S, 3]`` tile) into ``region`` and
        return the request inputs that point at it."""
        from tritonclient.grpc import InferInput

        batch = np.ascontiguousarray(tiles if tiles.ndim == 4 else tiles[None], dtype=np.uint8)
        if batch.nbytes > self.byte_size:
            raise ClientError(f"{batch.nbytes} bytes of tiles do not fit a {self.byte_size}-byte "
                              "shared-memory region")
        self._shm.set_shared_memory_region(region.handle, [batch])
        tensor = InferInput(PIXELS, list(batch.shape), "UINT8")
        tensor.set_shared_memory(region.name, batch.nbytes)
        return [tensor]

    def close(self, drain_timeout_s: float = 120.0) -> None:
        """Wait for the requests in flight (Triton refuses to unregister a region a request still
        uses), then unregister from every endpoint and unlink every region. Idempotent; a server
        that is gone has dropped its registrations with it."""
        with self._returned:
            self._returned.wait_for(lambda: self._out <= 0, timeout=drain_timeout_s)
        with self._lock:
            registered, self._registered = self._registered, []
            regions, self._regions = self._regions, []
        for client, name in registered:
            try:
                client.unregister_system_shared_memory(name)
            except Exception:
                pass
        for region in regions:
            try:
                self._shm.destroy_shared_memory_region(region.handle)
            except Exception:
                pass

    def __enter__(self) -> SharedMemoryPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
