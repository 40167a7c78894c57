"""Flags of ``fashiontag tag`` (no server needed)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fashiontag.cli import build_parser
from fashiontag.cli.tag_commands import _settings, _urls
from fashiontag.errors import FashiontagError
from fashiontag.tagging.runner import DEFAULT_DECODE


def test_urls_may_be_repeated_or_comma_separated():
    assert _urls(["a:1,b:2", "c:3"]) == ("a:1", "b:2", "c:3")
    assert _urls(None) == ("127.0.0.1:8001",)
    with pytest.raises(FashiontagError):
        _urls([","])


def test_defaults_decode_where_it_was_measured_faster_and_balance_by_load():
    args = build_parser().parse_args(["tag", "catalog/", "--url", "x:1", "--url", "y:2"])
    settings = _settings(args)
    assert settings.decode == DEFAULT_DECODE
    assert settings.urls == ("x:1", "y:2") and settings.balance == "least_loaded"
    assert args.engine == "local" and args.format == "jsonl"


def test_the_cli_the_runner_and_both_clients_share_one_default_per_concept():
    from fashiontag.client import DEFAULT_TIMEOUT_S, ClientOptions
    from fashiontag.tagging.runner import TagSettings

    args = build_parser().parse_args(["tag", "catalog/"])
    options, settings = ClientOptions(), TagSettings()  # what TagClient/AsyncTagClient use
    assert args.decode == settings.decode == options.decode == DEFAULT_DECODE == "client"
    assert args.timeout == settings.timeout_s == options.timeout_s == DEFAULT_TIMEOUT_S
    assert _settings(args).client_options() == ClientOptions(url=("127.0.0.1:8001",))


def test_resume_and_overwrite_exclude_each_other():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["tag", "c/", "--out", "t.jsonl", "--resume", "--overwrite"])


def test_resume_without_an_output_file_is_a_clear_error(tmp_path):
    done = subprocess.run([sys.executable, "-m", "fashiontag", "tag", str(tmp_path), "--resume"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--resume needs --out" in done.stderr
