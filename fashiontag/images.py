"""Image decoding and preprocessing: the one copy used everywhere.

Training, the export parity check, the Triton preprocess model, the client-side decode path and
the in-process baseline all call :func:`preprocess_bytes` / :func:`letterbox`. Normalisation
((pixel - 127) / 128, the scaling EfficientNet-Lite was trained with) lives inside the exported
model graph, so what crosses process boundaries is a compact ``uint8`` RGB ``[224, 224, 3]`` tile.

Decoding is guarded: the header is read first and files that are too large in bytes or pixels
are refused before a single pixel is decoded (decompression bombs), and large JPEGs are decoded at
reduced resolution (libjpeg's DCT scaling), which is several times faster than decoding full size
and then shrinking. Every format's EXIF orientation is applied after decoding
(:mod:`fashiontag.exif`), so a rotated phone photo is upright whatever it was saved as.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from fashiontag.errors import ImageDecodeError
from fashiontag.exif import apply_orientation, orientation, tiff_as_stored
from fashiontag.spec import DEFAULT_SPEC, ONNX_METADATA_KEY, PreprocessSpec

__all__ = [
    "letterbox_box",
    "PreprocessSpec",
    "DecodeLimits",
    "ImageHeader",
    "DEFAULT_SPEC",
    "DEFAULT_LIMITS",
    "probe",
    "decode",
    "letterbox",
    "preprocess_bytes",
    "preprocess_array",
    "ONNX_METADATA_KEY",
]

cv2.setNumThreads(1)  # decode runs in many processes at once; OpenCV's own pool only contends.


@dataclass(frozen=True)
class DecodeLimits:
    """Refuse inputs before decoding them; a catalog service must not be taken down by one file."""

    max_bytes: int = 32 * 1024 * 1024
    max_pixels: int = 100_000_000  # e.g. 10,000 x 10,000
    max_side: int = 30_000
    min_side: int = 1


@dataclass(frozen=True)
class ImageHeader:
    """What :func:`probe` read; ``orientation`` (EXIF 0x0112, 1-8) is still to be applied to the
    decoded pixels."""

    format: str
    width: int
    height: int
    mode: str
    orientation: int = 1


DEFAULT_LIMITS = DecodeLimits()

# Pillow's own bomb check would raise its own exception type at a different threshold; ours is
# the one that applies (DecodeLimits.max_pixels), so silence Pillow's.
Image.MAX_IMAGE_PIXELS = None
_REDUCED_FLAGS = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4),
                  (2, cv2.IMREAD_REDUCED_COLOR_2))


def probe(data: bytes, limits: DecodeLimits = DEFAULT_LIMITS) -> ImageHeader:
    """Read only the header; raise :class:`ImageDecodeError` for empty, unknown or huge input."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageDecodeError(f"expected encoded image bytes, got {type(data).__name__}",
                               "not_bytes")
    size = len(data)
    if size == 0:
        raise ImageDecodeError("empty input: 0 bytes", "empty")
    if size > limits.max_bytes:
        raise ImageDecodeError(f"input is {size} bytes, above the limit of {limits.max_bytes}",
                               "too_many_bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as img:
                header = ImageHeader(img.format or "unknown", img.width, img.height, img.mode)
    except UnidentifiedImageError:
        # the message never quotes input bytes: errors end up in logs
        raise ImageDecodeError(
            f"not a recognised image: unknown format or invalid header ({size} bytes)",
            "unknown_format") from None
    except Exception as exc:  # Pillow raises many types for garbage; all mean "not an image"
        reason = str(exc)[:120] or type(exc).__name__  # Pillow's messages describe, not quote
        raise ImageDecodeError(f"unreadable image header ({size} bytes): {reason}",
                               "unreadable_header") from None
    w, h = header.width, header.height
    if min(w, h) < limits.min_side:
        raise ImageDecodeError(f"image has an empty dimension ({w}x{h})", "empty_dimension")
    if max(w, h) > limits.max_side or w * h > limits.max_pixels:
        raise ImageDecodeError(
            f"image is {w}x{h} = {w * h} pixels, above the limit of {limits.max_pixels} pixels "
            f"or {limits.max_side} per side; refused before decoding", "too_many_pixels"
        )
    return ImageHeader(header.format, w, h, header.mode, orientation(data))


def reduced_decode_factor(height: int, width: int, target: int = DEFAULT_SPEC.size) -> int:
    """By how much libjpeg's DCT scaling shrinks a JPEG while decoding it (8, 4, 2 or 1): the
    most that keeps the short side at least ``target``. The GPU path mimics it
    (:mod:`fashiontag.serving.torch_images`) so both paths see the same pixels."""
    short = min(height, width)
    for factor, _ in _REDUCED_FLAGS:
        if short // factor >= target:
            return factor
    return 1


def _reduced_jpeg_flag(header: ImageHeader, target: int) -> int:
    factor = reduced_decode_factor(header.height, header.width, target)
    return dict(_REDUCED_FLAGS).get(factor, cv2.IMREAD_COLOR)


def _to_rgb8(img: np.ndarray) -> np.ndarray:
    """Any OpenCV decode result (grey, BGRA, 16-bit) → 3-channel uint8 RGB."""
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:  # composite transparency onto white, as catalog pages show it
        alpha = img[:, :, 3:4].astype(np.float32) / 255.0
        bgr = img[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        return cv2.cvtColor(bgr.astype(np.uint8), cv2.COLOR_BGR2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def decode(data: bytes, limits: DecodeLimits = DEFAULT_LIMITS, target: int = DEFAULT_SPEC.size
           ) -> np.ndarray:
    """Decode to upright ``uint8`` RGB ``[H, W, 3]``, at reduced resolution where the JPEG
    allows it. The decoders' own orientation handling is off (OpenCV's applies to some formats
    and some flags only, nvJPEG's to none): the EXIF tag is applied here, for every format."""
    header = probe(data, limits)
    if header.format == "JPEG":
        # libjpeg fills a truncated image with grey and reports success; the end-of-image marker
        # (FF D9, which byte stuffing keeps out of entropy-coded data) tells truncation apart.
        if b"\xff\xd9" not in bytes(data[-1024:]):
            raise ImageDecodeError(
                f"truncated JPEG ({len(data)} bytes, {header.width}x{header.height}): "
                "no end-of-image marker", "truncated"
            )
        flags = _reduced_jpeg_flag(header, target) | cv2.IMREAD_IGNORE_ORIENTATION
        img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    else:  # keeps alpha and 16 bits; ignores orientation, except libtiff's: neutralise the tag
        data = tiff_as_stored(data) if header.format == "TIFF" else data
        img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        img = _decode_with_pillow(data)
    if img is None or img.size == 0:
        raise ImageDecodeError(
            f"could not decode {header.format} image {header.width}x{header.height} "
            f"({len(data)} bytes): truncated or corrupt data", "corrupt"
        )
    return np.ascontiguousarray(apply_orientation(_to_rgb8(img), header.orientation))


def _decode_with_pillow(data: bytes) -> np.ndarray | None:
    """Fallback for formats OpenCV lacks (e.g. GIF on some builds); returns BGR(A) like OpenCV."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.seek(0)
            rgba = np.asarray(img.convert("RGBA"))
    except Exception:
        return None
    return cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA)


def letterbox_box(height: int, width: int, spec: PreprocessSpec = DEFAULT_SPEC
                  ) -> tuple[int, int, int, int]:
    """Where an ``height`` x ``width`` image lands in its tile: ``(top, left, h, w)``."""
    size = spec.size
    scale = size / max(height, width)
    nh, nw = max(1, round(height * scale)), max(1, round(width * scale))
    return (size - nh) // 2, (size - nw) // 2, nh, nw


def letterbox(rgb: np.ndarray, spec: PreprocessSpec = DEFAULT_SPEC) -> np.ndarray:
    """Fit the whole image into a square without distorting it.

    Attribute labels such as "knee length" are proportions of the garment, so squashing the image
    would change them; cropping could cut the part being judged.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ImageDecodeError(f"expected uint8 RGB [H, W, 3], got {rgb.dtype} {rgb.shape}")
    h, w = rgb.shape[:2]
    size = spec.size
    top, left, nh, nw = letterbox_box(h, w, spec)
    if (nh, nw) != (h, w):
        interp = cv2.INTER_AREA if size < max(h, w) else cv2.INTER_LINEAR
        rgb = cv2.resize(rgb, (nw, nh), interpolation=interp)
    if (nh, nw) == (size, size):
        return np.ascontiguousarray(rgb)
    out = np.full((size, size, 3), spec.pad_value, dtype=np.uint8)
    out[top:top + nh, left:left + nw] = rgb
    return out


def preprocess_array(rgb: np.ndarray, spec: PreprocessSpec = DEFAULT_SPEC) -> np.ndarray:
    """Decoded RGB (or greyscale ``[H, W]``) → model input tile ``uint8 [size, size, 3]``."""
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    return letterbox(np.ascontiguousarray(rgb, dtype=np.uint8), spec)


def preprocess_bytes(data: bytes, spec: PreprocessSpec = DEFAULT_SPEC,
                     limits: DecodeLimits = DEFAULT_LIMITS) -> np.ndarray:
    """Encoded image → model input tile ``uint8 [size, size, 3]``."""
    return letterbox(decode(data, limits, spec.size), spec)


def encode_jpeg(rgb: np.ndarray, quality: int = 92) -> bytes:
    """RGB array → JPEG bytes (used to make sample catalogs and test inputs)."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ImageDecodeError("JPEG encoding failed")
    return buf.tobytes()


def encode_png(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ImageDecodeError("PNG encoding failed")
    return buf.tobytes()
