"""The named palette and the fixed colour head: CIELAB maths, background handling, exact names."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from fashiontag.colour.head import ColourHead, rgb_to_lab
from fashiontag.colour.palette import (
    FAMILIES,
    MIN_DELTA_E,
    PALETTE,
    by_name,
    colour_attribute,
    palette_lab,
    srgb_to_lab,
)
from fashiontag.images import DEFAULT_SPEC, preprocess_array

NAMES = tuple(c.name for c in PALETTE)
BACKGROUNDS = {"white": (255, 255, 255), "light grey": (230, 230, 230),
               "beige": (245, 240, 225), "near black": (12, 12, 12), "wood": (150, 110, 70)}


@pytest.fixture(scope="module")
def head() -> ColourHead:
    return ColourHead(NAMES).eval()


def _garment(colour, background, width=360, height=480) -> np.ndarray:
    """A T-shirt silhouette filled with ``colour`` on ``background`` (RGB, catalog-sized)."""
    img = np.full((height, width, 3), background, np.uint8)
    outline = np.array([[0.3, 0.15], [0.7, 0.15], [0.95, 0.3], [0.85, 0.42], [0.75, 0.36],
                        [0.75, 0.88], [0.25, 0.88], [0.25, 0.36], [0.15, 0.42], [0.05, 0.3]])
    cv2.fillPoly(img, [(outline * [width, height]).astype(np.int32)], tuple(int(c) for c in colour))
    return img


def _shares(head: ColourHead, images: list[np.ndarray]) -> np.ndarray:
    tiles = np.stack([preprocess_array(img) for img in images])
    with torch.no_grad():
        return head(torch.from_numpy(tiles)).numpy()


def test_palette_is_fine_grained_and_every_name_is_a_distinct_colour():
    assert len(PALETTE) > 100 and len(set(NAMES)) == len(NAMES)
    lab = palette_lab()
    distances = np.linalg.norm(lab[:, None] - lab[None], axis=-1) + np.eye(len(lab)) * 1e9
    assert distances.min() >= MIN_DELTA_E
    assert {c.family for c in PALETTE} == set(FAMILIES)


def test_cielab_conversion_matches_reference_values_and_its_torch_twin():
    rgb = np.array([[255, 255, 255], [255, 0, 0], [0, 0, 0], [0, 0, 255]])
    expected = np.array([[100.0, 0.0, 0.0], [53.2408, 80.0925, 67.2032], [0.0, 0.0, 0.0],
                         [32.2970, 79.1875, -107.8602]])
    assert np.allclose(srgb_to_lab(rgb), expected, atol=1e-3)
    random = np.random.default_rng(0).integers(0, 256, (500, 3))
    twin = rgb_to_lab(torch.tensor(random, dtype=torch.float32)).numpy()
    assert np.abs(twin - srgb_to_lab(random)).max() < 1e-3


def test_colour_attribute_lists_the_palette_and_reports_three_dominant_colours():
    attribute = colour_attribute()
    assert attribute.values == NAMES and attribute.source == "colour"
    assert attribute.report_top == 3 and attribute.invisible_value is None


@pytest.mark.parametrize("background", list(BACKGROUNDS), ids=str)
def test_every_palette_colour_is_named_exactly_on_a_plain_background(head, background):
    shares = _shares(head, [_garment(c.rgb, BACKGROUNDS[background]) for c in PALETTE])
    assert np.allclose(shares.sum(1), 1.0, atol=1e-5)
    wrong = [(c.name, NAMES[i]) for c, i in zip(PALETTE, shares.argmax(1), strict=True)
             if NAMES[i] != c.name]
    assert not wrong, f"{len(wrong)} colours misnamed on {background}: {wrong[:10]}"


def test_background_larger_than_the_garment_does_not_win(head):
    small = np.full((480, 360, 3), 255, np.uint8)
    cv2.rectangle(small, (140, 190), (220, 290), by_name("Navy").rgb, -1)  # ~4 % of the image
    top = _shares(head, [small])[0]
    assert NAMES[top.argmax()] == "Navy"


def test_white_garment_on_white_is_still_white_not_nothing(head):
    shares = _shares(head, [_garment((255, 255, 255), (255, 255, 255))])[0]
    assert NAMES[shares.argmax()] == "White" and np.isfinite(shares).all()


def test_letterbox_padding_is_ignored(head):
    wide = _garment(by_name("Burgundy").rgb, (255, 255, 255), width=900, height=300)
    shares = _shares(head, [wide])[0]
    assert NAMES[shares.argmax()] == "Burgundy"
    assert shares[NAMES.index("Grey")] < 0.01  # the pad value (127, 127, 127) is "Grey"


def test_a_tile_that_is_all_padding_still_gives_a_distribution(head):
    tile = np.full((1, DEFAULT_SPEC.size, DEFAULT_SPEC.size, 3), DEFAULT_SPEC.pad_value, np.uint8)
    with torch.no_grad():
        shares = head(torch.from_numpy(tile)).numpy()[0]
    assert np.isfinite(shares).all() and shares.sum() == pytest.approx(1.0, abs=1e-5)
    assert NAMES[shares.argmax()] == "Grey"


def test_two_colour_garment_reports_both_among_its_top_colours(head):
    img = _garment(by_name("Red").rgb, (255, 255, 255))
    img[240:430] = np.where(img[240:430] == by_name("Red").rgb, by_name("Navy").rgb, img[240:430])
    top3 = {NAMES[i] for i in np.argsort(-_shares(head, [img])[0])[:3]}
    assert {"Red", "Navy"} <= top3


def test_colour_head_rebuilds_from_its_config_alone(head):
    again = ColourHead(**head.config()).eval()
    tiles = torch.from_numpy(np.stack([preprocess_array(_garment((10, 120, 200), (255,) * 3))]))
    with torch.no_grad():
        assert torch.equal(again(tiles), head(tiles))
    assert head.state_dict() == {}  # nothing learnt, nothing saved
