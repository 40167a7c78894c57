"""The device letterbox's resize is OpenCV's INTER_AREA, computed as two matrix products."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from fashiontag.images import letterbox, reduced_decode_factor
from fashiontag.serving.torch_images import area_weights, letterbox_tensors


@pytest.mark.parametrize("src,dst", [(533, 224), (400, 168), (448, 224), (1000, 224), (225, 224)])
def test_area_weights_are_a_partition_of_each_source_pixel(src, dst):
    weights = area_weights(src, dst).double()
    torch.testing.assert_close(weights.sum(1), torch.ones(dst, dtype=torch.float64))
    torch.testing.assert_close(weights.sum(0) * src / dst, torch.ones(src, dtype=torch.float64))


@pytest.mark.parametrize("shape", [(533, 400), (400, 533), (300, 300), (701, 409), (120, 90)])
def test_letterbox_tensors_equals_the_opencv_letterbox(shape):
    rgb = np.random.default_rng(sum(shape)).integers(0, 256, (*shape, 3), dtype=np.uint8)
    expected = letterbox(rgb).astype(int)
    got = letterbox_tensors([torch.from_numpy(rgb).permute(2, 0, 1).contiguous()],
                            jpeg=False)[0].numpy().astype(int)
    if max(shape) > 224:  # shrinking: the same INTER_AREA arithmetic, ties may round apart
        assert np.abs(got - expected).max() <= 1 and (got != expected).mean() < 0.01
    else:  # enlarging (rare in catalogs): OpenCV's bilinear runs in fixed point
        assert np.abs(got - expected).max() <= 2


def test_images_of_several_sizes_come_back_in_input_order():
    images = [torch.full((3, h, w), v, dtype=torch.uint8)
              for h, w, v in ((400, 300, 10), (300, 400, 20), (400, 300, 30))]
    tiles = letterbox_tensors(images, jpeg=False)
    assert tiles.shape == (3, 224, 224, 3)
    assert [int(t[112, 112, 0]) for t in tiles] == [10, 20, 30]


def test_the_reduced_decode_factor_keeps_the_short_side_above_the_tile():
    assert reduced_decode_factor(360, 480) == 1
    assert reduced_decode_factor(1200, 1600) == 4
    assert reduced_decode_factor(3000, 4000) == 8
    assert reduced_decode_factor(448, 1000) == 2
    assert cv2.IMREAD_REDUCED_COLOR_2  # the flags the CPU path maps these factors to exist


def test_bad_tensors_are_refused():
    with pytest.raises(ValueError, match="uint8"):
        letterbox_tensors([torch.zeros(3, 10, 10)])
