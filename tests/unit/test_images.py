import struct
import zlib

import cv2
import numpy as np
import pytest

from fashiontag.errors import ImageDecodeError
from fashiontag.images import (
    DEFAULT_SPEC,
    DecodeLimits,
    decode,
    encode_jpeg,
    encode_png,
    letterbox,
    preprocess_array,
    preprocess_bytes,
    probe,
)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (a decompression bomb's calling card)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
            + chunk(b"IEND", b""))


def test_real_photos_become_224_square_uint8_tiles(sample_photos):
    assert sample_photos, "samples/photos must hold real photos"
    for path in sample_photos:
        tile = preprocess_bytes(path.read_bytes())
        assert tile.shape == (224, 224, 3) and tile.dtype == np.uint8
        assert tile.std() > 10  # an actual picture, not padding


def test_letterbox_keeps_aspect_ratio_and_pads_with_neutral_value():
    tall = np.full((400, 200, 3), 255, np.uint8)
    tile = letterbox(tall)
    assert tile.shape == (224, 224, 3)
    assert (tile[:, :50] == DEFAULT_SPEC.pad_value).all()  # left band is padding
    assert (tile[:, 60:160] == 255).all()  # the image itself, not stretched


def test_png_path_matches_array_path_exactly(garment_samples):
    grey = cv2.imread(str(garment_samples[0]), cv2.IMREAD_GRAYSCALE)
    ok, png = cv2.imencode(".png", grey)
    from_bytes = preprocess_bytes(png.tobytes())
    assert ok and np.array_equal(from_bytes, preprocess_array(grey))


def test_rgb_order_is_preserved_through_encode_and_decode():
    red = np.zeros((64, 64, 3), np.uint8)
    red[..., 0] = 255
    tile = preprocess_bytes(encode_png(red))
    assert tile[112, 112].tolist() == [255, 0, 0]


def test_png_with_alpha_is_composited_on_white():
    rgba = np.zeros((32, 32, 4), np.uint8)  # fully transparent
    ok, buf = cv2.imencode(".png", rgba)
    assert (decode(buf.tobytes()) == 255).all()


def test_16_bit_png_is_scaled_to_8_bit():
    img = np.full((16, 16, 3), 65535, np.uint16)
    ok, buf = cv2.imencode(".png", img)
    out = decode(buf.tobytes())
    assert out.dtype == np.uint8 and (out == 255).all()


def test_large_jpeg_is_decoded_at_reduced_resolution_but_not_below_target():
    big = (np.random.default_rng(0).random((2000, 1600, 3)) * 255).astype(np.uint8)
    out = decode(encode_jpeg(big))
    assert min(out.shape[:2]) >= 224
    assert out.shape[:2] == (500, 400)  # 1/4 scale: 1/8 would make the short side 200 < 224


@pytest.mark.parametrize("payload, message", [
    (b"", "empty input"),
    (b"plain text, not an image", "not a recognised image"),
    (_png_header_only(30_000, 30_000), "refused before decoding"),
    (_png_header_only(0, 10), "invalid header|empty dimension"),
])
def test_bad_inputs_raise_clear_errors(payload, message):
    with pytest.raises(ImageDecodeError, match=message):
        preprocess_bytes(payload)


def test_truncated_jpeg_is_refused(sample_photos):
    data = sample_photos[0].read_bytes()
    with pytest.raises(ImageDecodeError, match="truncated JPEG"):
        preprocess_bytes(data[: len(data) // 2])


def test_byte_limit_applies_before_parsing():
    with pytest.raises(ImageDecodeError, match="above the limit"):
        probe(b"\xff" * 2048, DecodeLimits(max_bytes=1024))


def test_probe_reads_header_only():
    header = probe(_png_header_only(640, 480))
    assert (header.format, header.width, header.height) == ("PNG", 640, 480)
