"""``train`` runs named stages, each timed in the report and logged (the training run itself is
`make model`'s; here the clock and the stage list it reports)."""

from __future__ import annotations

import inspect
import logging
import re

from fashiontag.model import train as train_module
from fashiontag.model.train import STAGES, _StageClock


def test_train_runs_exactly_the_named_stages_in_order():
    called = re.findall(r'clock\.run\("([^"]+)"', inspect.getsource(train_module.train))
    assert tuple(called) == STAGES
    assert STAGES[:6] == ("data", "fine-tune", "features", "heads", "calibrate", "score")


def test_each_stage_is_timed_in_order_logged_and_totalled(caplog):
    clock = _StageClock()
    with caplog.at_level(logging.INFO, logger=train_module.__name__):
        assert clock.run("data", sum, [1, 2, 3]) == 6  # a stage's result is passed on
        assert clock.run("fine-tune", sorted, [3, 1, 2]) == [1, 2, 3]
    seconds = clock.report()
    assert list(seconds) == ["data", "fine-tune", "total"]
    assert all(isinstance(s, float) and s >= 0 for s in seconds.values())
    assert seconds["total"] >= seconds["data"] + seconds["fine-tune"] - 0.1  # rounding
    assert re.search(r"training stage 1/\d+: data", caplog.text)
    assert re.search(r"training stage fine-tune done in \d+\.\d s", caplog.text)
