"""What the sync and asyncio ``tag_stream`` share: retry policy, endpoint choice, result order.

Transport-free on purpose: the two clients differ only in how they wait (callbacks and a queue
vs. coroutines), not in when they retry, where they send or in which order they yield.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

from fashiontag.client.results import TagResult

__all__ = ["RetryPolicy", "Balancer", "Reorderer"]


@dataclass(frozen=True)
class RetryPolicy:
    """Retry errors marked ``retryable`` (server unavailable or restarting, queue full,
    deadline exceeded, model not ready) up to ``retries`` times per image, waiting
    ``backoff_s * 2**attempt`` (capped at ``max_backoff_s``) with jitter between tries, so a
    restarting server is not hammered by every client in lock step."""

    retries: int = 8
    backoff_s: float = 0.25
    max_backoff_s: float = 8.0
    jitter: float = 0.5  # fraction of each delay that is random

    def __post_init__(self) -> None:
        if self.retries < 0 or self.backoff_s < 0 or self.max_backoff_s < 0:
            raise ValueError("retries and back-off times must be >= 0")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be within [0, 1]")

    def should_retry(self, error: Exception, attempt: int) -> bool:
        """``attempt`` counts tries already made (1 after the first failure)."""
        return bool(getattr(error, "retryable", False)) and attempt <= self.retries

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before try number ``attempt + 1``."""
        base = min(self.max_backoff_s, self.backoff_s * (2 ** max(0, attempt - 1)))
        r = (rng or random).random()
        return base * (1.0 - self.jitter) + base * self.jitter * r


class Balancer:
    """Picks the endpoint for each request: the one with the fewest requests in flight
    (``least_loaded``) or the next in turn (``round_robin``). An endpoint that just failed with a
    retryable error is avoided for ``cooldown_s`` while another one is healthy. Thread-safe:
    the sync client releases from gRPC callback threads."""

    def __init__(self, endpoints: int, mode: str = "least_loaded", cooldown_s: float = 1.0,
                 start: int = 0) -> None:
        if endpoints < 1:
            raise ValueError("at least one endpoint is needed")
        self.mode = mode
        self.cooldown_s = cooldown_s
        self.in_flight = [0] * endpoints
        self.sent = [0] * endpoints
        self._down_until = [0.0] * endpoints
        self._next = start % endpoints
        self._lock = threading.Lock()

    def acquire(self) -> int:
        n = len(self.in_flight)
        with self._lock:
            if n == 1:
                chosen = 0
            else:
                now = time.monotonic()
                healthy = [i for i in range(n) if self._down_until[i] <= now] or list(range(n))
                order = sorted(healthy, key=lambda i: (i - self._next) % n)  # fair rotation
                if self.mode == "least_loaded":
                    chosen = min(order, key=lambda i: self.in_flight[i])
                else:
                    chosen = order[0]
                self._next = (chosen + 1) % n
            self.in_flight[chosen] += 1
            self.sent[chosen] += 1
            return chosen

    def release(self, endpoint: int, failed: bool = False) -> None:
        with self._lock:
            self.in_flight[endpoint] -= 1
            if failed:
                self._down_until[endpoint] = time.monotonic() + self.cooldown_s


class Reorderer:
    """Holds finished results until every earlier one is out (``ordered=True``). What it holds
    is bounded by the stream's concurrency, because a held result still occupies its slot."""

    def __init__(self) -> None:
        self._held: dict[int, TagResult] = {}
        self._next = 0

    def __len__(self) -> int:
        return len(self._held)

    def push(self, index: int, result: TagResult) -> list[TagResult]:
        """Add one result; return those now releasable, in input order."""
        self._held[index] = result
        ready = []
        while self._next in self._held:
            ready.append(self._held.pop(self._next))
            self._next += 1
        return ready
