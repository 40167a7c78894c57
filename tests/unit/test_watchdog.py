"""The watchdog's decision rule, with the process table and server replies scripted."""

import time

import pytest

from fashiontag.serving import watchdog
from fashiontag.serving.watchdog import Stub, StubWatchdog, _stub_of

ATT_1 = Stub("fashiontag_attributes", "1", "fashiontag_attributes_0_0")
ATT_2 = Stub("fashiontag_attributes", "2", "fashiontag_attributes_0_0")


def _dog(monkeypatch, tables: list[dict], ready: dict) -> StubWatchdog:
    snapshots = iter(tables)
    monkeypatch.setattr(watchdog, "stub_processes", lambda pgid: next(snapshots))
    return StubWatchdog(lambda: 1, heal=lambda models: None,
                        is_ready=lambda model, version: ready.get((model, version), False))


def test_a_stub_that_vanished_while_its_version_is_ready_is_dead_on_the_second_look(monkeypatch):
    dog = _dog(monkeypatch, [{10: ATT_1}, {}, {}], {("fashiontag_attributes", "1"): True})
    dog.rebaseline()
    assert dog.check() == set()  # first look: a suspect only
    assert dog.check() == {ATT_1}


def test_a_version_retired_by_a_hot_reload_is_not_a_death(monkeypatch):
    ready = {("fashiontag_attributes", "2"): True}  # version 1 was unloaded
    dog = _dog(monkeypatch, [{10: ATT_1}, {11: ATT_2}, {11: ATT_2}, {11: ATT_2}], ready)
    dog.rebaseline()
    assert dog.check() == set() and dog.check() == set() and dog.check() == set()


def test_an_instance_restarted_under_a_new_pid_is_not_a_death(monkeypatch):
    ready = {("fashiontag_attributes", "1"): True}
    dog = _dog(monkeypatch, [{10: ATT_1}, {12: ATT_1}, {12: ATT_1}], ready)
    dog.rebaseline()
    assert dog.check() == set() and dog.check() == set()


@pytest.mark.parametrize("instance, expected", [
    (b"fashiontag_preprocess_0_1", Stub("fashiontag_preprocess", "1", "fashiontag_preprocess_0_1")),
    (b"AUTOCOMPLETE_STUB", None),
    (b"fashiontag_preprocess", None),  # a model-level helper while loading, not an instance
])
def test_stub_command_lines_are_read_as_model_version_and_instance(instance, expected):
    argv = [b"/x/backends/python/triton_python_backend_stub",
            b"/repo/fashiontag_preprocess/1/model.py", b"shm", b"1", b"1", b"9", b"/x", b"336",
            instance, b"DEFAULT", b""]
    assert _stub_of(argv) == expected


def _run_briefly(dog: StubWatchdog, seconds: float) -> None:
    dog.start()
    time.sleep(seconds)
    dog.stop()
    dog.join(5)


def test_a_server_gone_on_its_own_is_revived_not_healed():
    revived, healed = [], []
    dog = StubWatchdog(lambda: None, heal=healed.append, is_ready=lambda m, v: True,
                       interval_s=0.01, revive=lambda: revived.append(1))
    _run_briefly(dog, 0.2)
    assert revived and not healed


def test_failed_revivals_back_off_instead_of_spinning():
    calls = []

    def revive() -> None:
        calls.append(time.monotonic())
        raise RuntimeError("tritonserver exited with code 1")

    dog = StubWatchdog(lambda: None, heal=lambda models: None, is_ready=lambda m, v: True,
                       interval_s=0.01, revive=revive)
    _run_briefly(dog, 0.5)
    assert len(calls) == 1  # the next try waits 2 s, then 4, 8, ... up to a minute


@pytest.mark.parametrize("model_py", [
    b"model.py",  # a relative path: no model or version folder (the IndexError seen in CI)
    b"/model.py",
    b"",
    b"/repo/fashiontag_attributes/model.py",  # no version folder
])
def test_stub_command_lines_without_a_model_and_version_are_not_read_as_a_stub(model_py):
    argv = [b"/x/backends/python/triton_python_backend_stub", model_py, b"shm", b"1", b"1",
            b"9", b"/x", b"336", b"fashiontag_attributes_0_0", b"DEFAULT", b""]
    assert _stub_of(argv) is None


def test_a_short_stub_command_line_is_not_read_as_a_stub():
    argv = [b"/x/backends/python/triton_python_backend_stub",
            b"/repo/fashiontag_attributes/1/model.py", b"shm"]
    assert _stub_of(argv) is None


def test_a_look_that_raises_is_counted_and_the_watchdog_still_heals(monkeypatch):
    """An exception in one look must not end the thread: the next looks still find and heal
    a dead stub."""
    tables = iter([{10: ATT_1}])

    def processes(pgid):
        table = next(tables, None)
        if table is None:
            processes.calls += 1
            if processes.calls == 1:
                raise RuntimeError("injected: /proc read failed")
            return {}
        return table

    processes.calls = 0
    monkeypatch.setattr(watchdog, "stub_processes", processes)
    healed = []
    dog = StubWatchdog(lambda: 1, heal=healed.append, interval_s=0.01,
                       is_ready=lambda model, version: True)
    dog.rebaseline()
    dog.start()
    deadline = time.monotonic() + 30
    while not healed and time.monotonic() < deadline:
        time.sleep(0.01)
    dog.stop()
    dog.join(5)
    assert dog.errors == 1
    assert healed and healed[0] == {"fashiontag_attributes"}
    assert not dog.is_alive()
