"""Every user error of the command line: exit 2, one line on stderr, no traceback.

The flags are found by walking the argparse tree, so a new sub-command or flag is covered
without editing this file; numeric flags must use a bounded :class:`Number` (a bare ``int`` or
``float`` type fails here). Runs ``main`` in-process: nothing connects, loads or trains.
"""

from __future__ import annotations

import argparse

import pytest

from fashiontag.cli import build_parser, main
from fashiontag.cli._common import Number, NumberList


def _leaf_commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix, parser
    for action in subs:
        for name, sub in action.choices.items():
            yield from _leaf_commands(sub, (*prefix, name))


def _number_bad_values(number: Number) -> list[str]:
    bad = ["x", "1.5"] if number.kind is int else ["x", "nan", "inf"]
    step = 1 if number.kind is int else 0.5
    if number.minimum is not None:
        bad.append(str(number.minimum - step))
    if number.above is not None:
        bad.append(str(number.kind(number.above)))
    if number.maximum is not None:
        bad.append(str(number.maximum + step))
    return bad


def _bad_values(action: argparse.Action) -> list[str]:
    if action.choices is not None:
        return ["not-a-choice"]
    if isinstance(action.type, Number):
        return _number_bad_values(action.type)
    if isinstance(action.type, NumberList):
        return [",", "1,,2", *(f"1,{b}" for b in _number_bad_values(action.type.item))]
    return []


def _good_value(action: argparse.Action) -> str:
    if action.choices is not None:
        return str(next(iter(action.choices)))
    if isinstance(action.type, Number):
        low = action.type.minimum if action.type.minimum is not None else 1
        return str(action.type.kind(max(low, 1)))
    return "x"


def _cases():
    for command, parser in _leaf_commands(build_parser()):
        for action in parser._actions:
            if action.type in (int, float):
                yield pytest.param(command, parser, action, None, id=f"{' '.join(command)} "
                                   f"{action.option_strings or action.dest}: unbounded")
            for bad in _bad_values(action):
                name = action.option_strings[0] if action.option_strings else action.dest
                yield pytest.param(command, parser, action, bad,
                                   id=f"{' '.join(command)} {name}={bad}")


def _argv(command: tuple[str, ...], parser: argparse.ArgumentParser, target: argparse.Action,
          bad: str) -> list[str]:
    """The command with every required argument given a valid value, and ``target`` the bad."""
    argv, tail = list(command), []
    for action in parser._actions:
        value = bad if action is target else _good_value(action)
        if not action.option_strings:
            argv.append(value)
        elif action is target or action.required:
            tail += [action.option_strings[0], value]
    return argv + tail


CASES = list(_cases())


def test_the_walk_finds_the_flags_that_were_reported():
    ids = {c.id for c in CASES}
    assert "tag --concurrency=0" in ids and "build-repo --preferred-batch-sizes=1,0" in ids
    assert any(i.startswith("fewshot activate version=") for i in ids)
    assert any(i.startswith("serve --grpc-port=") for i in ids)


@pytest.mark.parametrize("command, parser, action, bad", CASES)
def test_a_bad_value_of_a_numeric_or_choice_flag_exits_2_with_one_line(
        command, parser, action, bad, capsys):
    assert bad is not None, "numeric flags need a bounded type (fashiontag.cli._common.Number)"
    argv = _argv(command, parser, action, bad)
    with pytest.raises(SystemExit) as info:
        main(argv)
    captured = capsys.readouterr()
    assert info.value.code == 2, (argv, captured.err)
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0], captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    assert (action.option_strings[0] if action.option_strings else action.dest) in lines[0]


@pytest.mark.parametrize("argv, message", [
    (["build-repo", "--preferred-batch-sizes", "999"], "outside 1..16"),
    (["build-repo", "--target", "gpu", "--max-batch-size", "8", "--preferred-batch-sizes",
      "4,16"], "outside 1..8"),
    (["export", "--engine", "tensorrt", "--max-batch-size", "8", "--opt-batch", "16"],
     "--opt-batch 16 is above --max-batch-size 8"),
    (["tag", "x.jpg", "--shared-memory", "--decode", "server"], "cannot go with"),
    (["tag", "x.jpg", "--url", ","], "--url needs at least one host:port"),
], ids=["preferred-above-cpu-max", "preferred-above-given-max", "opt-above-max",
        "shm-server-decode", "empty-url"])
def test_flags_that_only_clash_together_exit_2_with_one_line_before_any_work(argv, message,
                                                                             capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err


def test_an_unreadable_file_is_one_line_not_a_traceback(tmp_path, capsys):
    from fashiontag.artifacts import Artifacts

    (Artifacts(tmp_path).fewshot("shirt") / "labels.csv").mkdir(parents=True)  # not a file
    assert main(["fewshot", "labels", "shirt", "--artifacts", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "labels.csv" in err
    assert "Traceback" not in err
