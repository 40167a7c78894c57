"""Client-side request preparation: ids, file reading limits, client-side decoding."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fashiontag.client import ClientOptions, InvalidImageError
from fashiontag.client._common import Preparer, item_id, preparer_from_config
from fashiontag.images import DEFAULT_SPEC, DecodeLimits, preprocess_bytes
from fashiontag.protocol import ATTRIBUTES_MODEL, ENSEMBLE_MODEL


def test_several_urls_can_be_given_as_a_list_or_comma_separated():
    assert ClientOptions(url="a:1, b:2").urls == ("a:1", "b:2")
    assert ClientOptions(url=["a:1", "b:2"]).urls == ("a:1", "b:2")
    with pytest.raises(ValueError):
        ClientOptions(url=" , ")


def test_decode_mode_picks_the_model_requests_go_to():
    assert ClientOptions(decode="server").served_model == ENSEMBLE_MODEL
    assert ClientOptions(decode="client").served_model == ATTRIBUTES_MODEL
    with pytest.raises(ValueError, match="decode"):
        ClientOptions(decode="gpu")


def test_item_ids_come_from_pairs_paths_or_positions(tmp_path):
    assert item_id(("sku-1", b"..."), 7) == "sku-1"
    assert item_id(tmp_path / "a.jpg", 7) == str(tmp_path / "a.jpg")
    assert item_id(b"...", 7) == "7"


def test_client_decode_makes_the_same_tile_as_the_server_code(sample_photos):
    data = sample_photos[0].read_bytes()
    identity, tile = Preparer("client")(("p", data), 0)
    assert identity == "p" and tile.dtype == np.uint8
    assert np.array_equal(tile, preprocess_bytes(data))


@pytest.mark.parametrize("decode", ["server", "client"])
def test_unreadable_inputs_raise_invalid_image_before_any_request(decode, tmp_path):
    prepare = Preparer(decode)
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(InvalidImageError, match="empty input"):
        prepare(("e", tmp_path / "empty.jpg"), 0)
    with pytest.raises(InvalidImageError, match="cannot read"):
        prepare(("m", tmp_path / "missing.jpg"), 0)


def test_client_decode_reports_corrupt_images_with_the_server_message(sample_photos):
    data = sample_photos[0].read_bytes()
    with pytest.raises(InvalidImageError, match="truncated JPEG"):
        Preparer("client")(("t", data[: len(data) // 2]), 0)


def test_files_over_the_byte_limit_are_refused_without_reading_them(tmp_path):
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff\xd8" + b"\0" * 2000)
    with pytest.raises(InvalidImageError, match="above the limit of 1000"):
        Preparer("server", limits=DecodeLimits(max_bytes=1000))(("b", big), 0)


def test_preprocessing_spec_and_limits_are_read_from_the_server_config():
    config = {"parameters": {
        "preprocess": {"string_value": json.dumps({**DEFAULT_SPEC.to_dict(), "pad_value": 0})},
        "limits": {"string_value": json.dumps({"max_bytes": 123})}}}
    prepare = preparer_from_config("client", config)
    assert prepare.spec.pad_value == 0 and prepare.limits.max_bytes == 123
    assert preparer_from_config("server", None).decode == "server"
    with pytest.raises(Exception, match="preprocessing spec"):
        preparer_from_config("client", None)
