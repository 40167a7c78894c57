"""Every kind of broken or unusual input gets a clear per-request answer; the server keeps serving.

The table below is the one reported in the reliability note: what each input gets.
"""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from tritonclient.grpc import InferenceServerClient, InferInput
from tritonclient.utils import InferenceServerException

from fashiontag.client import InvalidImageError
from fashiontag.images import DEFAULT_LIMITS
from fashiontag.protocol import ATTRIBUTES_MODEL, ENSEMBLE_MODEL, IMAGE, PIXELS

RED = np.zeros((120, 90, 3), np.uint8)
RED[..., 0] = 230


def _pil(mode: str, fmt: str, image: np.ndarray = RED, **kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).convert(mode).save(buf, fmt, **kwargs)
    return buf.getvalue()


def _png_16bit() -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(RED, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257)
    assert ok
    return buf.tobytes()


def _png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I",
                                                                        zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def _jpeg_claiming(width: int, height: int) -> bytes:
    """A real JPEG whose SOF0 frame header is rewritten to claim width x height."""
    data = bytearray(_pil("RGB", "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


NOISE = (np.random.default_rng(0).random((240, 180, 3)) * 255).astype(np.uint8)
JPEG = _pil("RGB", "JPEG", NOISE, quality=90)  # big scan data, so halving cuts the scan

# name → (payload, None for "tagged", or a regex the per-image error must match)
CASES = {
    "empty bytes": (b"", "empty input"),
    "truncated JPEG": (JPEG[: len(JPEG) // 2], "truncated JPEG"),
    "corrupt JPEG header": (b"\xff\xd8\xff\xe0" + b"\x13" * 300 + b"\xff\xd9",
                            "not a recognised image|unreadable"),
    "text file": (b"name,price\nshirt,12.99\n", "not a recognised image"),
    "decompression bomb PNG 30000x30000": (_png_claiming(30_000, 30_000),
                                           "refused before decoding"),
    "decompression bomb JPEG 30000x30000": (_jpeg_claiming(30_000, 30_000),
                                            "refused before decoding"),
    "above the byte limit": (b"\xff\xd8" + b"\0" * (DEFAULT_LIMITS.max_bytes + 1),
                             "above the limit"),
    "JPEG RGB": (JPEG, None),
    "JPEG greyscale": (_pil("L", "JPEG"), None),
    "JPEG CMYK": (_pil("CMYK", "JPEG"), None),
    "PNG with alpha": (_pil("RGBA", "PNG"), None),
    "PNG 16-bit": (_png_16bit(), None),
    "GIF": (_pil("P", "GIF"), None),
    "WebP": (_pil("RGB", "WEBP"), None),
    "TIFF": (_pil("RGB", "TIFF"), None),
    "BMP": (_pil("RGB", "BMP"), None),
}


@pytest.mark.parametrize("name", list(CASES))
def test_input_gets_attributes_or_its_own_clear_error(name, client, sample_photos):
    payload, error = CASES[name]
    if error is None:
        attrs = client.tag(payload)
        assert set(attrs) == set(client.taxonomy.reported())
    else:
        with pytest.raises(InvalidImageError, match=error):
            client.tag(payload)
    assert client.tag(sample_photos[0].read_bytes())["category"].confidence > 0  # still serving


def test_colour_inputs_keep_their_colour(client):
    """CMYK and palette images must decode to the right colour, not to inverted or grey."""
    for name in ("JPEG CMYK", "GIF", "WebP", "PNG 16-bit", "PNG with alpha"):
        payload = CASES[name][0]
        from fashiontag.images import preprocess_bytes

        centre = preprocess_bytes(payload)[112, 112].astype(int)
        assert centre[0] > 180 and centre[1] < 60 and centre[2] < 60, centre


def _raw_pixels(server, array: np.ndarray, dtype: str):
    with InferenceServerClient(server.grpc_url) as raw:
        tensor = InferInput(PIXELS, list(array.shape), dtype)
        tensor.set_data_from_numpy(array)
        return raw.infer(ATTRIBUTES_MODEL, [tensor])


@pytest.mark.parametrize("array, dtype, message", [
    (np.zeros((1, 224, 224, 3), np.float32), "FP32", "(?i)data-?type"),
    (np.zeros((1, 100, 100, 3), np.uint8), "UINT8", "(?i)shape|dims"),
    (np.zeros((65, 224, 224, 3), np.uint8), "UINT8", "(?i)batch"),
])
def test_wrong_tensors_are_refused_by_triton_before_the_model(server, client, sample_photos,
                                                              array, dtype, message):
    with pytest.raises(InferenceServerException, match=message):
        _raw_pixels(server, array, dtype)
    assert client.tag(sample_photos[0].read_bytes())["category"].confidence > 0


def test_image_bytes_never_reach_the_server_log(server, client):
    marker = b"FASHIONTAG-SECRET-PAYLOAD-7f3a"
    with pytest.raises(InvalidImageError):
        client.tag(marker * 10)
    with pytest.raises(InvalidImageError):
        client.tag(b"\xff\xd8\xff\xe0" + marker)
    assert marker.decode() not in server.log_tail(10_000)


_MAGIC = st.sampled_from([b"", b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"RIFF",
                          b"II*\x00", b"BM"])


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(prefix=_MAGIC, body=st.binary(min_size=0, max_size=4096),
       cut=st.integers(min_value=0, max_value=len(JPEG)))
def test_fuzzed_bytes_never_hurt_the_server(client, prefix, body, cut):
    for payload in (prefix + body, JPEG[:cut] + body):
        try:
            attrs = client.tag(payload)
        except InvalidImageError:
            continue
        assert np.isfinite(attrs.vector).all()


def test_server_is_healthy_after_the_fuzzing(server):
    with InferenceServerClient(server.grpc_url) as raw:
        assert raw.is_server_live() and raw.is_server_ready()
        assert raw.is_model_ready(ENSEMBLE_MODEL)
    # the raw IMAGE tensor name is part of the public protocol
    assert IMAGE == "IMAGE"
