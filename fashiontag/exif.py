"""EXIF orientation: read from the image container, applied to the decoded pixels.

A phone stores a photo as the sensor saw it and records how to turn it upright in EXIF tag
0x0112. Decoders differ in whether they honour it (OpenCV does for JPEG only, and not with
``IMREAD_UNCHANGED``; nvJPEG never), so fashiontag reads the tag itself, from every container that
carries one, and applies it to the pixels in one place per decode path: a photo tags the same
whatever format it was saved in and whichever device decoded it.

The reader only walks the container's structure (markers, chunks, one IFD) within the input's
bounds; anything malformed or absent means "as stored" (1), never an error: orientation is
metadata, and the decoder proper reports broken images.
"""

from __future__ import annotations

import struct

import numpy as np

__all__ = ["ORIENTATION_TAG", "orientation", "orientation_from_tiff", "tiff_as_stored",
           "apply_orientation"]

ORIENTATION_TAG = 0x0112
_EXIF_PREFIX = b"Exif\x00\x00"  # the JPEG APP1 header; some writers also put it in WebP/PNG
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def orientation(data: bytes) -> int:
    """EXIF orientation (1–8) of encoded JPEG, PNG, WebP or TIFF bytes; 1 when there is none."""
    head = bytes(data[:12])
    if head[:2] == b"\xff\xd8":
        tiff = _jpeg_exif(data)
    elif head[:8] == _PNG_SIGNATURE:
        tiff = _png_exif(data)
    elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        tiff = _webp_exif(data)
    elif head[:4] in (b"II*\x00", b"MM\x00*"):
        tiff = data
    else:
        return 1
    return orientation_from_tiff(tiff) if tiff is not None else 1


def _strip_prefix(payload):
    return payload[len(_EXIF_PREFIX):] if bytes(payload[:6]) == _EXIF_PREFIX else payload


def _jpeg_exif(data):
    """The first APP1 ``Exif`` segment's TIFF structure, looked for up to the image data (SOS)."""
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan / end of image: no metadata after this
            return None
        length = (data[i + 2] << 8) | data[i + 3]
        if length < 2:
            return None
        if marker == 0xE1 and bytes(data[i + 4:i + 10]) == _EXIF_PREFIX:
            return data[i + 10:i + 2 + length]
        i += 2 + length
    return None


def _png_exif(data):
    """The ``eXIf`` chunk (before or, as some writers put it, after the image data)."""
    i, n = len(_PNG_SIGNATURE), len(data)
    while i + 8 <= n:
        length, kind = struct.unpack_from(">I4s", data, i)
        if kind == b"eXIf":
            return _strip_prefix(data[i + 8:i + 8 + length])
        if kind == b"IEND":
            return None
        i += 12 + length  # length, type, data, CRC
    return None


def _webp_exif(data):
    """The ``EXIF`` chunk of an extended (VP8X) WebP's RIFF container."""
    i, n = 12, len(data)
    while i + 8 <= n:
        kind, length = struct.unpack_from("<4sI", data, i)
        if kind == b"EXIF":
            return _strip_prefix(data[i + 8:i + 8 + length])
        i += 8 + length + (length & 1)  # chunks are padded to an even size
    return None


def orientation_from_tiff(tiff) -> int:
    """Tag 0x0112 of IFD0 of a TIFF structure (a TIFF file, or the body of an EXIF block)."""
    found = _orientation_field(tiff)
    return found[0] if found else 1


def _orientation_field(tiff) -> tuple[int, int, str] | None:
    """``(value, offset of the value, struct format)`` of a valid orientation entry in IFD0."""
    n = len(tiff)
    if n < 8:
        return None
    order = bytes(tiff[:2])
    if order == b"II":
        e = "<"
    elif order == b"MM":
        e = ">"
    else:
        return None
    magic, ifd = struct.unpack_from(e + "HI", tiff, 2)
    if magic != 42 or ifd + 2 > n:
        return None
    (count,) = struct.unpack_from(e + "H", tiff, ifd)
    for k in range(count):
        at = ifd + 2 + 12 * k
        if at + 12 > n:
            return None
        tag, kind, number = struct.unpack_from(e + "HHI", tiff, at)
        if tag != ORIENTATION_TAG:
            continue
        if number < 1 or kind not in (3, 4):  # SHORT as the standard says; LONG from some writers
            return None
        fmt = e + ("H" if kind == 3 else "I")
        (value,) = struct.unpack_from(fmt, tiff, at + 8)
        return (value, at + 8, fmt) if 1 <= value <= 8 else None
    return None


def tiff_as_stored(data: bytes) -> bytes:
    """A TIFF file whose orientation tag says 1, so that a decoder gives the stored pixels.

    libtiff-based decoders (OpenCV's, even with ``IMREAD_UNCHANGED`` or
    ``IMREAD_IGNORE_ORIENTATION``, and Pillow's) turn a TIFF themselves; neutralising the tag
    keeps :func:`apply_orientation` the one place that turns pixels, for every format. Other
    input, or a TIFF without a turn, comes back as it is (no copy).
    """
    if bytes(data[:4]) not in (b"II*\x00", b"MM\x00*"):
        return data
    found = _orientation_field(data)
    if not found or found[0] == 1:
        return data
    _, at, fmt = found
    copy = bytearray(data)
    struct.pack_into(fmt, copy, at, 1)
    return bytes(copy)


def apply_orientation(image: np.ndarray, value: int) -> np.ndarray:
    """Stored ``[H, W, ...]`` pixels → upright, for EXIF orientation ``value`` (a view; 1 and
    unknown values return the input). 2/4 mirror, 3 turns 180°, 5/7 transpose about the main/anti
    diagonal, 6 turns 90° clockwise, 8 counter-clockwise."""
    if value in (5, 6, 7, 8):
        image = image.swapaxes(0, 1)  # now out[i, j] = stored[j, i]
        value = {5: 1, 6: 2, 7: 3, 8: 4}[value]  # what remains is a mirror of the transpose
    if value == 2:
        return image[:, ::-1]
    if value == 3:
        return image[::-1, ::-1]
    if value == 4:
        return image[::-1]
    return image
