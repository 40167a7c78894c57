"""Decode and letterbox on the device that runs the model (nvJPEG on a GPU), in PyTorch.

The CPU path (:mod:`fashiontag.images`) stays the reference: the same letterbox geometry
(:func:`fashiontag.images.letterbox_box`), the same padding value, OpenCV's INTER_AREA when
shrinking, computed exactly as two matrix products (torch's own ``mode="area"`` differs from it
for fractional factors by ~1 grey level on average, which moved 4 % of garment-type decisions of
this noise-sensitive model). What remains is bounded by the tests (grey levels of a tile, top-1
agreement of the model on real photos): nvJPEG's IDCT is not libjpeg's, and the GPU decodes the
full-resolution image where libjpeg's reduced DCT decode of a large JPEG halves it first.

Only what nvJPEG decodes goes there (baseline and progressive JPEG); every input still passes
:func:`fashiontag.images.probe` first (the bomb guard: size, dimensions, pixel count) and anything
else, or a JPEG the device refuses, takes the CPU decode with its per-image errors. nvJPEG ignores
EXIF orientation; the tag the probe read (:mod:`fashiontag.exif`) turns each decoded tensor
upright on the device, as the CPU path turns its arrays, before the letterbox.
"""

from __future__ import annotations

from collections.abc import Sequence

from fashiontag.spec import DEFAULT_SPEC, PreprocessSpec

__all__ = ["letterbox_tensors", "area_weights", "decode_on_device", "orient_tensor"]


def orient_tensor(image, value: int):
    """Stored ``[..., H, W]`` tensor → upright for EXIF orientation ``value``, on its device:
    the same flips and transposes as :func:`fashiontag.exif.apply_orientation` (1 and unknown
    values return the input)."""
    if value in (5, 6, 7, 8):
        image = image.transpose(-2, -1)  # now out[i, j] = stored[j, i]
        value = {5: 1, 6: 2, 7: 3, 8: 4}[value]
    if value == 2:
        image = image.flip(-1)
    elif value == 3:
        image = image.flip(-2, -1)
    elif value == 4:
        image = image.flip(-2)
    return image.contiguous()


def area_weights(src: int, dst: int, device=None):
    """``[dst, src]`` matrix of OpenCV's INTER_AREA when shrinking: output pixel ``i`` averages
    the source interval ``[i * src / dst, (i + 1) * src / dst)``, partial pixels weighted by
    their overlap. Separable, so a resize is two matrix products (what a GPU does best)."""
    import torch

    scale = src / dst
    starts = torch.arange(dst, dtype=torch.float64) * scale
    ends = starts + scale
    left = torch.arange(src, dtype=torch.float64)
    overlap = (torch.minimum(ends[:, None], left[None, :] + 1)
               - torch.maximum(starts[:, None], left[None, :])).clamp_(min=0)
    return (overlap / scale).to(device=device, dtype=torch.float32)


def _resize(batch, nh: int, nw: int):
    """``uint8 [N, 3, H, W]`` → ``uint8 [N, 3, nh, nw]`` as :func:`fashiontag.images.letterbox`
    resizes: INTER_AREA when shrinking (exactly, by :func:`area_weights`), bilinear else."""
    import torch
    import torch.nn.functional as F

    h, w = batch.shape[-2:]
    x = batch.float()
    if nh < h and nw < w:
        x = torch.matmul(area_weights(h, nh, x.device), x)  # rows
        x = torch.matmul(x, area_weights(w, nw, x.device).T)  # columns
    else:
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False)
    return x.round_().clamp_(0, 255).to(torch.uint8)


def letterbox_tensors(images: Sequence, spec: PreprocessSpec = DEFAULT_SPEC, device=None,
                      jpeg: bool = True):
    """``uint8 [3, H, W]`` RGB tensors (any sizes) → ``uint8 [N, S, S, 3]`` tiles on ``device``.

    ``jpeg``: the images are full-resolution decodes of JPEGs, which the CPU path decodes at
    reduced resolution (:func:`fashiontag.images.reduced_decode_factor`); a box average by the
    same factor comes first (measured on 1600x1200 photos: mean tile difference 0.73 → 0.12
    grey levels). Images of the same size are resized in one call (a catalog's images mostly
    share a few sizes), so the cost is per size, not per image.
    """
    import torch

    from fashiontag.images import letterbox_box, reduced_decode_factor

    size = spec.size
    device = device or (images[0].device if len(images) else "cpu")
    out = torch.full((len(images), 3, size, size), spec.pad_value, dtype=torch.uint8,
                     device=device)
    by_shape: dict[tuple[int, int], list[int]] = {}
    for index, image in enumerate(images):
        if image.ndim != 3 or image.shape[0] != 3 or image.dtype != torch.uint8:
            raise ValueError(f"expected uint8 [3, H, W], got {image.dtype} {tuple(image.shape)}")
        by_shape.setdefault((int(image.shape[1]), int(image.shape[2])), []).append(index)
    for (h, w), indices in by_shape.items():
        top, left, nh, nw = letterbox_box(h, w, spec)
        batch = torch.stack([images[i] for i in indices]).to(device, non_blocking=True)
        factor = reduced_decode_factor(h, w, size) if jpeg else 1
        if factor > 1:
            h, w = -(-h // factor), -(-w // factor)  # libjpeg rounds the scaled size up
            batch = _resize(batch, h, w)
            top, left, nh, nw = letterbox_box(h, w, spec)
        if (nh, nw) != (h, w):
            batch = _resize(batch, nh, nw)
        out[indices, :, top:top + nh, left:left + nw] = batch
    return out.permute(0, 2, 3, 1).contiguous()


def decode_on_device(blobs: Sequence[bytes], device, limits=None) -> tuple[list, list[str | None]]:
    """Decode JPEGs on ``device`` (nvJPEG, one batched call); returns ``(images, errors)``: an
    upright (EXIF-oriented) ``uint8 [3, H, W]`` tensor per input, or None with the reason where
    it failed the bomb guard or the device decode (the caller sends those to the CPU path or
    reports them)."""
    import torch

    from fashiontag.errors import ImageDecodeError
    from fashiontag.images import DEFAULT_LIMITS, probe

    limits = limits or DEFAULT_LIMITS
    images: list = [None] * len(blobs)
    errors: list[str | None] = [None] * len(blobs)
    jpegs = []
    orientations = [1] * len(blobs)
    for index, blob in enumerate(blobs):
        try:
            header = probe(blob, limits)  # refuses bombs before any decode
        except ImageDecodeError as exc:
            errors[index] = str(exc)
            continue
        if header.format == "JPEG" and header.mode in ("RGB", "L", "YCbCr"):
            jpegs.append(index)
            orientations[index] = header.orientation
        else:
            errors[index] = f"{header.format}/{header.mode}: decoded on the CPU"
    if not jpegs:
        return images, errors
    from torchvision.io import ImageReadMode, decode_jpeg

    data = [torch.frombuffer(bytearray(blobs[i]), dtype=torch.uint8) for i in jpegs]
    try:
        decoded = decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
    except RuntimeError as exc:  # one bad stream fails the batch: retry one by one
        decoded = []
        for tensor in data:
            try:
                decoded.append(decode_jpeg(tensor, mode=ImageReadMode.RGB, device=device))
            except RuntimeError:
                decoded.append(None)
        reason = str(exc)[:120]
    else:
        reason = ""
    for index, image in zip(jpegs, decoded, strict=True):
        if image is None:
            errors[index] = f"device JPEG decode failed: {reason}"
        else:
            images[index] = orient_tensor(image, orientations[index])
    return images, errors
