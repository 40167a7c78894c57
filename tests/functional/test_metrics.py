"""The metrics operators watch, scraped from the real endpoints of the session's tritonserver
and its launcher: each moves by what a few real photos and two broken images cause."""

from __future__ import annotations

import math
import time
import urllib.request
from collections import Counter

import pytest

from fashiontag.client import ClientError
from fashiontag.protocol import ATTRIBUTES_MODEL, ENSEMBLE_MODEL, PREPROCESS_MODEL
from fashiontag.serving import metrics as m
from fashiontag.serving.model_metrics import FLUSH_INTERVAL_S
from fashiontag.taxonomy import CATEGORY_NAME
from tests.conftest import SAMPLES

Samples = dict[tuple[str, frozenset], float]


def scrape(url: str) -> Samples:
    """Prometheus text format → {(name, labels): value}."""
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    out: Samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, value = line.rsplit(" ", 1)
        name, _, labels = series.partition("{")
        pairs = frozenset(tuple(p.split("=", 1)) for p in labels.rstrip("}").split(",") if p)
        out[(name, frozenset((k, v.strip('"')) for k, v in pairs))] = float(value)
    return out


def settled(url: str) -> Samples:
    """A scrape once the counts of earlier requests have reached Triton (the models add them
    every FLUSH_INTERVAL_S): two scrapes that far apart agree on fashiontag's metrics."""
    deadline = time.monotonic() + 30
    last = scrape(url)
    while True:
        time.sleep(FLUSH_INTERVAL_S + 0.2)
        now = scrape(url)
        ours = {k: v for k, v in now.items() if k[0].startswith("fashiontag_")}
        if ours == {k: v for k, v in last.items() if k[0].startswith("fashiontag_")}:
            return now
        assert time.monotonic() < deadline, "fashiontag's metrics never settled"
        last = now


def total(samples: Samples, name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def by_label(samples: Samples, name: str, label: str, **labels: str) -> Counter:
    want = set(labels.items())
    out: Counter = Counter()
    for (n, ls), v in samples.items():
        if n == name and want <= ls:
            out[dict(ls)[label]] += v
    return out


def test_latency_summaries_and_custom_metrics_move_with_real_requests(server, client,
                                                                     garment_samples):
    photos = [p.read_bytes() for p in garment_samples[:3]]
    broken = {"truncated": (SAMPLES / "broken" / "truncated.jpg").read_bytes(),
              "unknown_format": (SAMPLES / "broken" / "not-an-image.jpg").read_bytes()}
    served_model = {"model": ATTRIBUTES_MODEL}
    before = settled(server.metrics_url)

    answers = [client.tag(photo) for photo in photos]
    for data in broken.values():
        with pytest.raises(ClientError):
            client.tag(data)

    # the models add their counts to Triton's once a second: wait for them, with a deadline
    deadline = time.monotonic() + 30
    while True:
        after = scrape(server.metrics_url)
        moved = (total(after, m.SERVED_VALUES.name, attribute=CATEGORY_NAME, **served_model)
                 - total(before, m.SERVED_VALUES.name, attribute=CATEGORY_NAME, **served_model))
        errors = (total(after, m.DECODE_ERRORS.name) - total(before, m.DECODE_ERRORS.name))
        if (moved >= len(photos) and errors >= len(broken)) or time.monotonic() > deadline:
            break
        time.sleep(0.2)

    # p50 and p99 of the request latency, per model, moving with the requests
    for model in (ENSEMBLE_MODEL, PREPROCESS_MODEL, ATTRIBUTES_MODEL):
        name = "nv_inference_request_summary_us"
        assert total(after, f"{name}_count", model=model) > total(before, f"{name}_count",
                                                                  model=model), model
        for quantile in ("0.5", "0.99"):
            value = total(after, name, model=model, quantile=quantile)
            assert value > 0 and not math.isnan(value), (model, quantile, value)

    # decode errors by reason: exactly the two broken images, each with its own reason
    for reason in broken:
        delta = (total(after, m.DECODE_ERRORS.name, reason=reason)
                 - total(before, m.DECODE_ERRORS.name, reason=reason))
        assert delta == 1, reason
    assert total(after, m.DECODE_ERRORS.name) - total(before, m.DECODE_ERRORS.name) == 2

    # every byte and image the decoder received, broken ones included
    sent = photos + list(broken.values())
    assert (total(after, m.INPUT_BYTES.name) - total(before, m.INPUT_BYTES.name)
            == sum(map(len, sent)))
    assert total(after, m.INPUT_IMAGES.name) - total(before, m.INPUT_IMAGES.name) == len(sent)

    # the served garment types are the ones the client decoded, one count per photo
    served = (by_label(after, m.SERVED_VALUES.name, "value", attribute=CATEGORY_NAME)
              - by_label(before, m.SERVED_VALUES.name, "value", attribute=CATEGORY_NAME))
    assert served == Counter(a[CATEGORY_NAME].value for a in answers)

    # the loaded version's taxonomy, as the client reads it from the model config
    info = [dict(ls) for (n, ls), v in after.items() if n == m.TAXONOMY_INFO.name and v == 1]
    assert [i["taxonomy_id"] for i in info] == [str(client.taxonomy.id)]
    assert info[0]["fingerprint"] == client.taxonomy.fingerprint


def test_the_launcher_serves_its_own_metrics(server):
    samples = scrape(server.launcher_metrics_url)
    assert total(samples, m.SERVER_UP.name) == 1
    assert {n for n, _ in samples} == {s.name for s in m.LAUNCHER_METRICS}
    status = server.status()
    assert total(samples, m.SERVER_RESTARTS.name) == status["restarts"]
    assert total(samples, m.WATCHDOG_HEALS.name) == status["watchdog"]["heals"]

