"""EXIF orientation: a sideways-stored photo gives the upright photo's tile in every format that
carries the tag, on the CPU decode and on the device path (run here on CPU tensors).

The rotated copies are made the way a camera makes them: the upright pixels of a real photo are
turned by Pillow (an implementation independent of fashiontag's) into what a sideways sensor
stores, and written with the orientation tag that undoes it; Pillow's own ``exif_transpose`` is
checked to agree on every file.
"""

from __future__ import annotations

import io
import struct
import sys
import types
import zlib

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from fashiontag import exif
from fashiontag.exif import apply_orientation, orientation, orientation_from_tiff
from fashiontag.images import decode, encode_png, preprocess_bytes, probe
from fashiontag.serving.torch_images import letterbox_tensors, orient_tensor

T = Image.Transpose
# what a sensor stores for each tag: the inverse of the turn the tag asks a viewer for
STORED = {1: None, 2: T.FLIP_LEFT_RIGHT, 3: T.ROTATE_180, 4: T.FLIP_TOP_BOTTOM, 5: T.TRANSPOSE,
          6: T.ROTATE_90, 7: T.TRANSVERSE, 8: T.ROTATE_270}
ORIENTATIONS = sorted(STORED)
LOSSLESS = {"PNG": {}, "WEBP": {"lossless": True, "method": 0}, "TIFF": {}}


@pytest.fixture(scope="module")
def photos(garment_samples) -> dict[str, np.ndarray]:
    """Two real photos, one portrait and one landscape, upright as decoded."""
    chosen = {}
    for path in garment_samples:
        rgb = decode(path.read_bytes())
        chosen.setdefault("portrait" if rgb.shape[0] > rgb.shape[1] else "landscape", rgb)
    assert set(chosen) == {"portrait", "landscape"}
    return chosen


def _stored(upright: np.ndarray, value: int) -> Image.Image:
    image = Image.fromarray(upright)
    return image if STORED[value] is None else image.transpose(STORED[value])


def _tagged(upright: np.ndarray, value: int, fmt: str, **options) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    out = io.BytesIO()
    _stored(upright, value).save(out, fmt, exif=exif.tobytes(), **options)
    return out.getvalue()


def _tiff_block(value: int, order: str = "MM", kind: int = 3) -> bytes:
    """A minimal EXIF TIFF structure, big-endian by default (as iPhones write it)."""
    e = ">" if order == "MM" else "<"
    body = struct.pack(e + "HHI", 0x010F, 2, 4) + b"abc\0"  # Make: ASCII, 4 bytes inline
    field = struct.pack(e + ("HH" if kind == 3 else "I"), *((value, 0) if kind == 3 else (value,)))
    body += struct.pack(e + "HHI", 0x0112, kind, 1) + field
    return order.encode() + struct.pack(e + "HIH", 42, 8, 2) + body + struct.pack(e + "I", 0)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@pytest.mark.parametrize("fmt", sorted(LOSSLESS))
@pytest.mark.parametrize("value", ORIENTATIONS)
def test_every_orientation_of_a_lossless_file_decodes_to_the_upright_photo(photos, fmt, value):
    upright = photos["portrait"]
    data = _tagged(upright, value, fmt, **LOSSLESS[fmt])
    assert orientation(data) == value
    header = probe(data)
    assert header.orientation == value and header.format == fmt
    oracle = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    np.testing.assert_array_equal(oracle, upright)  # the test file says what it should
    np.testing.assert_array_equal(decode(data), upright)
    np.testing.assert_array_equal(preprocess_bytes(data), preprocess_bytes(encode_png(upright)))


@pytest.mark.parametrize("value", [2, 6, 7])
def test_a_tiff_is_turned_once_though_libtiff_turns_it_too(photos, value):
    """OpenCV's TIFF decoder turns by the tag whatever the flags; decode neutralises the tag
    (a copy) so that the turn is fashiontag's own, as for the other formats."""
    upright = photos["landscape"]
    data = _tagged(upright, value, "TIFF", compression="tiff_lzw")
    stored = exif.tiff_as_stored(data)
    assert orientation(stored) == 1 and orientation(data) == value and len(stored) == len(data)
    as_stored = cv2.cvtColor(cv2.imdecode(np.frombuffer(stored, np.uint8), cv2.IMREAD_UNCHANGED),
                             cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(as_stored, np.asarray(_stored(upright, value)))
    np.testing.assert_array_equal(decode(data), upright)
    png = encode_png(upright)
    assert exif.tiff_as_stored(png) is png


@pytest.mark.parametrize("value", ORIENTATIONS)
def test_every_orientation_of_a_jpeg_gives_the_upright_tile(photos, value):
    upright = photos["landscape"]
    tagged = _tagged(upright, value, "JPEG", quality=95)
    plain = io.BytesIO()
    _stored(upright, value).save(plain, "JPEG", quality=95)  # the same scan, no tag
    assert orientation(tagged) == value and orientation(plain.getvalue()) == 1
    # exactly the stored pixels, turned: the tag is the only thing that differs
    turned = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(tagged))).convert("RGB"))
    as_stored = decode(plain.getvalue())
    np.testing.assert_array_equal(decode(tagged), apply_orientation(as_stored, value))
    assert np.abs(decode(tagged).astype(int) - turned).mean() < 1.0  # libjpeg vs Pillow's build
    # and the upright photo's tile up to JPEG's re-encoding of the turned pixels
    expected = preprocess_bytes(encode_png(upright)).astype(int)
    diff = np.abs(preprocess_bytes(tagged).astype(int) - expected)
    assert diff.mean() < 1.5
    if value != 1:  # ignoring the tag would be far off: the comparison can tell
        wrong = np.abs(preprocess_bytes(plain.getvalue()).astype(int) - expected)
        assert wrong.mean() > 10 * diff.mean()


@pytest.mark.parametrize("value", [6, 8, 3])
def test_a_large_jpeg_decoded_at_reduced_resolution_is_turned_too(photos, value):
    upright = cv2.resize(photos["portrait"], None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    tagged = _tagged(upright, value, "JPEG", quality=95)
    rgb = decode(tagged)
    assert rgb.shape[:2] == (upright.shape[0] // 2, upright.shape[1] // 2)  # DCT-scaled by 2
    expected = preprocess_bytes(encode_png(upright)).astype(int)
    assert np.abs(preprocess_bytes(tagged).astype(int) - expected).mean() < 1.5


def test_tags_where_real_writers_put_them(photos):
    """Big-endian EXIF in an APP1 after JFIF's APP0; PNG's eXIf after the image data; a WebP
    EXIF chunk with the JPEG-style ``Exif`` prefix; a LONG instead of a SHORT."""
    upright = photos["portrait"]
    stored = _stored(upright, 6)
    jpeg = io.BytesIO()
    stored.save(jpeg, "JPEG", quality=95)
    jpeg = jpeg.getvalue()
    assert jpeg[2:4] == b"\xff\xe0"  # APP0 (JFIF) first
    app0_end = 4 + int.from_bytes(jpeg[4:6], "big")
    app1 = b"Exif\0\0" + _tiff_block(6)
    jpeg = jpeg[:app0_end] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[app0_end:]
    png = encode_png(np.asarray(stored))
    png = png[:-12] + _png_chunk(b"eXIf", _tiff_block(6, "II", kind=4)) + png[-12:]
    webp = io.BytesIO()
    stored.save(webp, "WEBP", lossless=True, method=0, exif=b"Exif\0\0" + _tiff_block(6, "II"))
    for data in (jpeg, png, webp.getvalue()):
        assert orientation(data) == 6
        oracle = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
        assert np.abs(decode(data).astype(int) - oracle).mean() < 1.0
    np.testing.assert_array_equal(decode(png), upright)
    np.testing.assert_array_equal(decode(webp.getvalue()), upright)


@pytest.mark.parametrize("data", [
    b"", b"\xff\xd8", b"\x89PNG\r\n\x1a\n", b"RIFF\0\0\0\0WEBP", b"II*\0\xff\xff\xff\xff",
    b"MM\0*\0\0\0\x08\0\x01", b"GIF89a" + bytes(20), bytes(range(256)),
], ids=["empty", "jpeg-soi-only", "png-signature-only", "webp-no-chunks", "tiff-ifd-outside",
        "tiff-entry-cut", "gif", "garbage"])
def test_missing_or_malformed_metadata_means_as_stored(data):
    assert orientation(data) == 1


@pytest.mark.parametrize("block", [
    _tiff_block(0), _tiff_block(9), _tiff_block(6)[:20], b"XX" + _tiff_block(6)[2:],
    _tiff_block(6)[:2] + b"\0\x2b" + _tiff_block(6)[4:],
], ids=["zero", "nine", "cut-short", "bad-byte-order", "bad-magic"])
def test_a_bad_orientation_tag_is_ignored_and_the_image_still_decodes(photos, block):
    assert orientation_from_tiff(block) == 1
    png = encode_png(photos["portrait"])
    png = png[:33] + _png_chunk(b"eXIf", block) + png[33:]  # right after IHDR
    np.testing.assert_array_equal(decode(png), photos["portrait"])


def test_the_device_turns_tensors_as_the_cpu_turns_arrays():
    stored = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    tensor = torch.from_numpy(stored).permute(2, 0, 1)
    for value in range(0, 10):
        expected = apply_orientation(stored, value)
        got = orient_tensor(tensor, value).permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(got, expected)
        assert orient_tensor(tensor, value).is_contiguous()


def test_the_device_path_gives_the_upright_tile(photos):
    """What nvJPEG gives (the stored pixels, full size, tag ignored), turned by the probe's
    tag and letterboxed on the device, for every orientation: exactly the upright photo's device
    tile, and the CPU tile up to the rounding the device letterbox is allowed
    (tests/unit/test_torch_images.py)."""
    upright = photos["landscape"]
    tagged = [_tagged(upright, value, "JPEG", quality=95) for value in ORIENTATIONS]
    turned = []
    for data in tagged:
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8),
                           cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        as_stored = torch.from_numpy(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).permute(2, 0, 1)
        turned.append(orient_tensor(as_stored, probe(data).orientation))
    tiles = letterbox_tensors(turned).numpy().astype(int)
    cpu = np.stack([preprocess_bytes(data) for data in tagged]).astype(int)
    diff = np.abs(tiles - cpu)
    assert diff.max() <= 1 and diff.mean() < 0.01
    lossless = [orient_tensor(torch.from_numpy(np.array(_stored(upright, value))).permute(2, 0, 1),
                              value) for value in ORIENTATIONS]
    upright_tile = letterbox_tensors([torch.from_numpy(upright).permute(2, 0, 1)], jpeg=False)
    for tile in letterbox_tensors(lossless, jpeg=False):
        np.testing.assert_array_equal(tile.numpy(), upright_tile[0].numpy())


def _libjpeg_as_nvjpeg():
    """A ``torchvision.io`` whose ``decode_jpeg`` gives what nvJPEG gives (full size, RGB, the
    stored pixels: no EXIF turn), decoded by libjpeg, so that :func:`decode_on_device` itself
    runs where torchvision is not installed."""
    def decode_jpeg(data, mode=None, device=None):
        if isinstance(data, list):
            return [decode_jpeg(tensor, mode, device) for tensor in data]
        bgr = cv2.imdecode(data.numpy(), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        return torch.from_numpy(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).permute(2, 0, 1).to(device)

    module = types.ModuleType("torchvision.io")
    module.ImageReadMode = types.SimpleNamespace(RGB="RGB")
    module.decode_jpeg = decode_jpeg
    return module


def test_decode_on_device_turns_each_decoded_jpeg_by_its_tag(photos, monkeypatch):
    from fashiontag.serving.torch_images import decode_on_device

    io_module = _libjpeg_as_nvjpeg()
    monkeypatch.setitem(sys.modules, "torchvision", types.ModuleType("torchvision"))
    monkeypatch.setitem(sys.modules, "torchvision.io", io_module)
    upright = photos["portrait"]
    blobs = [_tagged(upright, value, "JPEG", quality=95) for value in ORIENTATIONS]
    blobs.append(_tagged(upright, 6, "PNG"))  # not for nvJPEG: the CPU path turns it
    images, errors = decode_on_device(blobs, "cpu")
    assert errors[:-1] == [None] * len(ORIENTATIONS) and errors[-1] == "PNG/RGB: decoded on the CPU"
    tiles = letterbox_tensors(images[:-1]).numpy().astype(int)
    cpu = np.stack([preprocess_bytes(b) for b in blobs[:-1]]).astype(int)
    diff = np.abs(tiles - cpu)
    assert diff.max() <= 1 and diff.mean() < 0.01


def test_decode_on_device_turns_what_it_decodes(photos):
    pytest.importorskip("torchvision", reason="torchvision (nvJPEG's decode_jpeg) is not here")
    from fashiontag.serving.torch_images import decode_on_device

    upright = photos["landscape"]
    blobs = [_tagged(upright, value, "JPEG", quality=95) for value in ORIENTATIONS]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    images, errors = decode_on_device(blobs, device)
    assert errors == [None] * len(blobs)
    tiles = letterbox_tensors(images, device=device).cpu().numpy().astype(int)
    cpu = np.stack([preprocess_bytes(b) for b in blobs]).astype(int)
    assert np.abs(tiles - cpu).mean() < 0.5  # nvJPEG's IDCT is not libjpeg's
