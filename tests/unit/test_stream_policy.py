"""The transport-free parts of tag_stream: retry policy, endpoint choice, ordering; run stats."""

from __future__ import annotations

import random

import pytest

from fashiontag.client import InvalidImageError, QueueFullError, ServerUnavailableError
from fashiontag.client._stream import Balancer, Reorderer, RetryPolicy
from fashiontag.client.errors import ModelNotReadyError, RequestTimeoutError
from fashiontag.client.results import TagResult
from fashiontag.tagging.stats import LatencyReservoir, RunStats


@pytest.mark.parametrize("error", [ServerUnavailableError("down"), QueueFullError("full"),
                                   RequestTimeoutError("slow"), ModelNotReadyError("loading")])
def test_unavailable_overloaded_and_timed_out_requests_are_retried(error):
    policy = RetryPolicy(retries=3)
    assert [policy.should_retry(error, a) for a in (1, 2, 3, 4)] == [True, True, True, False]


def test_bad_images_are_never_retried():
    assert not RetryPolicy(retries=5).should_retry(InvalidImageError("truncated JPEG"), 1)


def test_backoff_grows_exponentially_up_to_the_cap_with_jitter():
    policy = RetryPolicy(retries=10, backoff_s=0.1, max_backoff_s=1.0, jitter=0.5)
    rng = random.Random(0)
    for attempt, base in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)]:
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert base * 0.5 <= min(delays) and max(delays) <= base
        assert max(delays) - min(delays) > base * 0.3  # jittered, not in lock step


def test_least_loaded_balancer_prefers_the_endpoint_with_fewer_requests_in_flight():
    b = Balancer(2, "least_loaded")
    first, second = b.acquire(), b.acquire()
    assert {first, second} == {0, 1}
    b.release(first)
    assert b.acquire() == first


def test_round_robin_balancer_takes_turns():
    b = Balancer(3, "round_robin")
    assert [b.acquire() for _ in range(6)] == [0, 1, 2, 0, 1, 2]


def test_an_endpoint_that_just_failed_is_avoided_while_another_is_healthy():
    b = Balancer(2, "round_robin", cooldown_s=60)
    b.release(b.acquire(), failed=True)  # endpoint 0 failed
    assert [b.acquire() for _ in range(3)] == [1, 1, 1]


def test_a_lone_failed_endpoint_is_still_used():
    b = Balancer(2, "least_loaded", cooldown_s=60)
    for _ in range(2):
        b.release(b.acquire(), failed=True)
    assert b.acquire() in (0, 1)


def test_reorderer_releases_results_in_input_order():
    r = Reorderer()
    out = []
    for index in (2, 0, 3, 1, 4):
        out += [x.id for x in r.push(index, TagResult(str(index)))]
    assert out == ["0", "1", "2", "3", "4"] and len(r) == 0


def test_latency_reservoir_is_exact_when_small_and_bounded_when_large():
    small = LatencyReservoir(capacity=1000)
    for v in range(1, 101):
        small.add(float(v))
    assert small.percentile(50) in (50.0, 51.0) and small.percentile(99) == 99.0
    big = LatencyReservoir(capacity=500)
    for v in range(100_000):
        big.add(float(v))
    assert len(big._values) == 500 and 40_000 < big.percentile(50) < 60_000


def test_run_stats_summary_reports_done_failed_rate_and_percentiles():
    stats = RunStats(total=3)
    stats.add(True, 10.0)
    stats.add(True, 20.0, attempts=3)
    stats.add(False, 5.0, "InvalidImageError")
    stats.resumed = 4
    line = stats.finish().summary()
    assert line.startswith("2 done, 1 failed")
    for part in ("images/s", "p50", "p99", "4 resumed", "1 retried", "InvalidImageError 1"):
        assert part in line
