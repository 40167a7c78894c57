"""Procedurally rendered garment images whose FashionAI labels are exact by construction.

No real FashionAI data exists on the build machines, so the attribute heads are trained on simple
catalog-style illustrations (a front-view mannequin in flat garments drawn with cv2). Every label is
a geometric fact computed from the same numbers that place the polygons, so it cannot disagree with
the image.

Figure units: y from 0 (head top) to 1 (soles), x = 0 on the midline; landmarks jitter per figure.
Arm coordinate u: 0 shoulder joint, 1 elbow, 2 wrist, 3 fingertip.

attribute        value -> geometry
---------------  ----------------------------------------------------------------------------------
sleeve_length    sleeve end u: Sleeveless none (armhole inside the shoulder), Cup 0.22 (puffed cap),
                 Short 0.5, Elbow 1, 3/4 1.5, Wrist 1.85 (just above the wrist), Long 2.2 (onto the
                 hand), Extra Long 2.6 (bell cuff over the hand). The outermost sleeves count.
neckline_design  Strapless (straight across the armpits, no sleeves), Deep V (below the bust),
                 Straight (wide flat boat line), V (mid chest), Square, Off Shoulder (band across
                 the upper arms, sleeves >= Short), Round, Sweetheart (two bust curves, centre dip),
                 One Shoulder (diagonal, one strap, no sleeves).
collar_design    on a crew neck: Shirt (stand, pointed flaps, placket), Peter Pan (two small round
                 flat lobes), Puritan (one wide flat round collar), Rib (ribbed band, tipping).
neck_design      Turtle (tube up to the chin), Ruffle Semi-High (flared half-height band, scalloped
                 top), Low Turtle (plain tube over the lower half of the neck), Draped (cowl folds).
lapel_design     coat V opening with: Notched (lapel + collar, notch gap), Collarless (bare edge),
                 Shawl (smooth rolled band ~0.035 wide), Plus Size Shawl (the same, ~0.08 wide).
coat_length      hem at High Waist: waist-0.05, Regular: hip, Long: crotch+0.035 (upper thigh),
                 Micro: mid-thigh, Knee, Midi: mid-calf, Ankle&Floor: ankle.
skirt_length     hem at Short: mid-thigh, Knee, Midi: mid-calf, Ankle, Floor: below the soles.
pant_length      hem at Short: crotch+0.05, Mid: knee, 3/4: mid-calf, Cropped: ankle-0.045,
                 Full: ankle+0.035 (onto the shoe).

One neck treatment per top (neckline OR collar OR neck design); a top under a coat gets a plain crew
neck and no neck label. Crops show the figure-y window [y0, y1]: full (head to feet), upper (head to
below the fingertips), lower (above the waist to the feet). For the garments in the outfit:

* neck visible iff y0 is above the chin; else neckline/collar/neck design are ALL Invisible for a
  top without coat (its cropped-away treatment is unknowable), lapel_design Invisible for a coat.
* sleeves visible iff neck and fingertips are both inside, else Invisible (a lower crop shows
  forearms and cuffs but not where the sleeve starts).
* a length is its value iff its hem is >= 0.025 above y1, Invisible iff the hem is below y1 (upper
  windows are nudged off the band in between). A bottom whose hem does not reach 0.04 below a
  coat's hem is hidden and unlabelled. Lower crops never hold a High Waist coat.
"""

from __future__ import annotations

import colorsys
import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from fashiontag.taxonomy import FASHIONAI_ATTRIBUTES, INVISIBLE

__all__ = ["CROPS", "OUTFITS", "Fabric", "Figure", "OutfitSpec", "outfit_labels", "render_dataset",
           "render_outfit", "sample_outfit"]

_ATTR = {a.name: a for a in FASHIONAI_ATTRIBUTES}
OUTFITS = ("top_skirt", "top_pants", "dress", "coat_pants", "coat_skirt")
CROPS = ("full", "upper", "lower")
NECK_ATTRS = ("neckline_design", "collar_design", "neck_design")
HEM_MARGIN, CUT_MARGIN = 0.025, 0.015


def _values(attr: str) -> list[str]:
    """The visible values of an attribute, in taxonomy order."""
    return [v for v in _ATTR[attr].values if v != INVISIBLE]


def _table(attr: str, mapping: dict) -> dict:
    """A geometry table keyed by value strings; fails at import if it drifts from the taxonomy."""
    if set(mapping) != set(_values(attr)):
        raise KeyError(f"{attr}: table keys {sorted(mapping)} != taxonomy {_values(attr)}")
    return mapping


SLEEVE_END = _table("sleeve_length", {
    "Sleeveless": None, "Cup Sleeves": 0.22, "Short Sleeves": 0.5, "Elbow Sleeves": 1.0,
    "3/4 Sleeves": 1.5, "Wrist Length": 1.85, "Long Sleeves": 2.2, "Extra Long Sleeves": 2.6})
NECKLINE_CUT = _table("neckline_design", {
    "Strapless Neck": "strapless", "Deep V Neckline": "deep_v", "Straight Neck": "boat",
    "V Neckline": "v", "Square Neckline": "square", "Off Shoulder": "off_shoulder",
    "Round Neckline": "round", "Sweat Heart Neck": "sweetheart",
    "One Shoulder Neckline": "one_shoulder"})
COLLAR_STYLE = _table("collar_design", {
    "Shirt Collar": "shirt", "Peter Pan": "peter_pan", "Puritan Collar": "puritan",
    "Rib Collar": "rib"})
NECK_STYLE = _table("neck_design", {
    "Turtle Neck": "turtle", "Ruffle Semi-High Collar": "ruffle", "Low Turtle Neck": "low_turtle",
    "Draped Collar": "draped"})
LAPEL_STYLE = _table("lapel_design", {
    "Notched": "notched", "Collarless": "collarless", "Shawl Collar": "shawl",
    "Plus Size Shawl": "plus_shawl"})
# hem height = landmark + offset, in figure units
COAT_HEM = _table("coat_length", {
    "High Waist Length": ("waist", -0.05), "Regular Length": ("hip", 0.0),
    "Long Length": ("crotch", 0.035), "Micro Length": ("thigh", 0.0),
    "Knee Length": ("knee", 0.01), "Midi Length": ("calf", 0.0),
    "Ankle&Floor Length": ("ankle", 0.01)})
SKIRT_HEM = _table("skirt_length", {
    "Short Length": ("thigh", 0.0), "Knee Length": ("knee", 0.012), "Midi Length": ("calf", 0.01),
    "Ankle Length": ("ankle", 0.0), "Floor Length": ("sole", 0.006)})
PANT_HEM = _table("pant_length", {
    "Short Pant": ("crotch", 0.05), "Mid Length": ("knee", 0.01), "3/4 Length": ("calf", 0.0),
    "Cropped Pant": ("ankle", -0.045), "Full Length": ("ankle", 0.035)})


@dataclass(frozen=True)
class Fabric:
    """Appearance of one garment: base colour, pattern colour, pattern kind and its geometry."""

    color: tuple[int, int, int]
    color2: tuple[int, int, int] = (255, 255, 255)
    pattern: str = "solid"          # solid | stripes | checks | dots | noise
    period: float = 0.03            # pattern period in figure units
    angle: float = 0.0              # pattern direction, radians


@dataclass(frozen=True)
class Figure:
    """Body proportions and pose (figure units; angles in degrees)."""

    shoulder: float = 0.1     # half shoulder width
    waist: float = 0.06       # half waist width
    hip: float = 0.088        # half hip width
    torso: float = 0.0        # shifts waist/hip/crotch down
    legs: float = 0.0         # shifts knee/calf down
    arm_angle: float = 12.0   # upper arm from vertical, outwards
    stance: float = 0.006     # extra ankle spread
    head: float = 1.0         # head size factor


@dataclass(frozen=True)
class OutfitSpec:
    """Every choice of one image. Label fields hold taxonomy value strings (None = not worn)."""

    outfit: str                      # one of OUTFITS
    crop: str                        # one of CROPS
    sleeve: str                      # sleeve_length of the outermost sleeves
    neck_attr: str | None            # which of NECK_ATTRS the top's neck treatment belongs to
    neck: str | None                 # its value (None under a coat)
    bottom: str                      # skirt_length or pant_length value (dress: skirt)
    coat_length: str | None = None
    lapel: str | None = None
    top: Fabric = Fabric((200, 60, 60))
    bottom_fabric: Fabric = Fabric((40, 50, 90))
    coat: Fabric = Fabric((120, 100, 80))
    accent: tuple[int, int, int] = (250, 250, 250)   # collar / rib colour
    skin: tuple[int, int, int] = (230, 190, 160)
    hair: tuple[int, int, int] | None = (60, 40, 30)
    shoe: tuple[int, int, int] = (30, 30, 30)
    background: str = "white"        # white | grey | flat | gradient | noise
    bg: tuple[tuple[int, int, int], tuple[int, int, int]] = ((255, 255, 255), (255, 255, 255))
    figure: Figure = Figure()
    top_hem: float = 0.0             # untucked top hem offset from the hip
    flare: float = 0.2               # skirt / pant-leg / coat flare
    closure: float = 0.04            # coat closure point below the bust
    sleeve_pad: float = 0.006        # sleeve looseness
    one_side: int = 1                # covered side of a one-shoulder top (+1 / -1)
    frame: float = 0.5               # 0..1 window jitter (zoom / crop edges)
    dx: float = 0.0                  # horizontal offset, fraction of width
    angle: float = 0.0               # rotation, degrees
    seed: int = 0                    # noise textures


class _Body:
    """Landmarks of a figure in figure units; every garment is placed relative to these."""

    def __init__(self, f: Figure):
        self.sw, self.ww, self.hw = f.shoulder, f.waist, f.hip
        self.chin = 0.12 * f.head
        self.neck, self.shoulder, self.armpit, self.bust = 0.165, 0.185, 0.25, 0.275
        self.waist, self.hip, self.crotch = 0.37 + f.torso, 0.46 + f.torso, 0.5 + f.torso
        self.knee, self.calf, self.ankle, self.sole = 0.72 + f.legs, 0.81 + f.legs, 0.935, 1.0
        self.thigh = (self.crotch + self.knee) / 2
        # right arm nodes (mirrored by s): shoulder joint, elbow, wrist, fingertip
        d1, d2 = (np.array([math.sin(math.radians(a)), math.cos(math.radians(a))])
                  for a in (f.arm_angle, f.arm_angle + 3))
        s0 = np.array([self.sw - 0.013, self.shoulder + 0.015])
        self.arm = np.array([s0, s0 + 0.155 * d1, s0 + 0.155 * d1 + 0.132 * d2,
                             s0 + 0.155 * d1 + 0.2 * d2])
        self.tip = self.arm[3, 1] + 0.008
        self._ly = np.array([self.hip, self.crotch, self.thigh, self.knee, self.calf, self.ankle])
        self._lcx = self.hw / 2 + 0.002 + f.stance * np.array([0, 0, 0.3, 0.55, 0.8, 1.0])
        self._lw = np.array([self.hw / 2, self.hw / 2, 0.039, 0.028, 0.031, 0.017])

    def hem(self, table: dict, value: str) -> float:
        mark, off = table[value]
        return getattr(self, mark) + off

    def torso_hw(self, y):
        return np.interp(y, [self.armpit, self.bust, self.waist, self.hip, self.crotch],
                         [self.sw - 0.024, self.sw - 0.026, self.ww, self.hw, self.hw])

    def leg(self, y):
        """Right leg centre x and half width at height y."""
        return np.interp(y, self._ly, self._lcx), np.interp(y, self._ly, self._lw)

    def legs_outer(self, y: float) -> float:
        cx, w = self.leg(min(y, self.ankle))
        return cx + w + (0.02 if y > self.ankle else 0.0)

    def shoulder_y(self, x):
        t = np.clip((abs(x) - 0.02) / (self.sw - 0.02), 0, 1)
        return self.neck + (self.shoulder - self.neck) * t ** 1.3

    def arc(self, nx: float, depth: float, n: int = 13) -> np.ndarray:
        """Neck-edge arc from (-nx, shoulder line) through (0, neck + depth) to (nx, ...)."""
        t, ys = np.linspace(0, math.pi, n), self.shoulder_y(nx)
        return np.stack([-nx * np.cos(t), ys + (self.neck + depth - ys) * np.sin(t)], 1)

    def limb(self, s: int, u0: float, u1: float, pad=0.0, bell=0.0) -> np.ndarray:
        """Arm (or sleeve) polygon between arm coordinates u0 and u1, widened by pad."""
        joints = [x for x in (0, 1, 2) if u0 < x < u1]
        u = np.unique(np.concatenate([np.linspace(u0, u1, 9), joints]))
        k = np.clip(np.floor(u), 0, 2).astype(int)
        d = self.arm[k + 1] - self.arm[k]
        p = (self.arm[k] + d * (u - k)[:, None]) * [s, 1]
        n = np.stack([d[:, 1], -d[:, 0]], 1) / np.linalg.norm(d, axis=1)[:, None] * [s, 1]
        w = np.interp(u, [-0.2, 0, 0.5, 1, 1.4, 2, 2.35, 2.8, 3],
                      [0.022, 0.025, 0.021, 0.016, 0.018, 0.012, 0.017, 0.013, 0.008])
        w = (w + pad + bell * np.clip((u - u1 + 0.6) / 0.6, 0, 1))[:, None]
        return np.concatenate([p + n * w, (p - n * w)[::-1]])


def _bottom_attr(spec: OutfitSpec) -> str:
    return "pant_length" if spec.outfit.endswith("pants") else "skirt_length"


def _hems(spec: OutfitSpec, b: _Body) -> tuple[float | None, float, bool]:
    """Coat hem (None without coat), bottom hem, and whether the bottom shows below the coat."""
    coat = b.hem(COAT_HEM, spec.coat_length) if spec.outfit.startswith("coat") else None
    hem = b.hem(PANT_HEM if _bottom_attr(spec) == "pant_length" else SKIRT_HEM, spec.bottom)
    return coat, hem, coat is None or hem >= coat + 0.04


def _window(spec: OutfitSpec, b: _Body) -> tuple[float, float]:
    """Visible figure-y range; upper crops are nudged so no labelled hem sits at the edge."""
    j = spec.frame
    if spec.crop == "full":
        return -0.025 - 0.05 * j, b.sole + 0.04 + 0.05 * j
    if spec.crop == "lower":
        return b.waist - 0.015 - 0.03 * j, b.sole + 0.04 + 0.03 * j
    coat, hem, shown = _hems(spec, b)
    hems = [h for h in (coat, hem if shown else None) if h is not None]
    y1 = b.tip + 0.03 + 0.03 * j
    for _ in range(4):
        bad = [h for h in hems if y1 - HEM_MARGIN < h < y1 + CUT_MARGIN]
        if not bad:
            break
        y1 = max(bad) + CUT_MARGIN + 0.002
    return -0.02 - 0.02 * j, y1


def outfit_labels(spec: OutfitSpec) -> dict[str, str]:
    """Attribute -> value for the attributes this image defines (see the module table)."""
    b = _Body(spec.figure)
    y0, y1 = _window(spec, b)
    neck_vis = y0 < b.chin - 0.03
    arm_vis = neck_vis and b.tip <= y1 - HEM_MARGIN

    def length(h: float, value: str) -> str:
        return value if y0 + HEM_MARGIN <= h <= y1 - HEM_MARGIN else INVISIBLE

    coat_hem, hem, shown = _hems(spec, b)
    out = {"sleeve_length": spec.sleeve if arm_vis else INVISIBLE}
    if coat_hem is not None:
        out["coat_length"] = length(coat_hem, spec.coat_length)
        out["lapel_design"] = spec.lapel if neck_vis else INVISIBLE
    elif neck_vis:
        out[spec.neck_attr] = spec.neck
    else:
        out.update({a: INVISIBLE for a in NECK_ATTRS})
    if shown:
        out[_bottom_attr(spec)] = length(hem, spec.bottom)
    for k, v in out.items():
        _ATTR[k].index(v)   # raises on any value the taxonomy does not know
    return out


# ----------------------------------------------------------------------------------- drawing
_SHIFT = 4
_K3 = np.ones((3, 3), np.uint8)


def _ellipse(cx, cy, rx, ry, a0=0.0, a1=360.0, n=28, tilt=0.0) -> np.ndarray:
    t = np.radians(np.linspace(a0, a1, n))
    x, y = rx * np.cos(t), ry * np.sin(t)
    c, s = math.cos(tilt), math.sin(tilt)
    return np.stack([cx + c * x - s * y, cy + s * x + c * y], 1)


def _mirror(pts) -> np.ndarray:
    return np.asarray(pts, float)[::-1] * [-1, 1]


def _shade(c, f: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(v * f, 0, 255)) for v in c)


def _edge(c) -> tuple[int, int, int]:
    """Outline colour: darker, or lighter for very dark colours so the outline stays visible."""
    return _shade(c, 0.55) if sum(c) > 150 else tuple(min(255, v + 70) for v in c)


@functools.lru_cache(maxsize=4)
def _grid(h: int, w: int) -> np.ndarray:
    """Pixel coordinates (y, x), float32, shared by all pattern textures of one image size."""
    return np.mgrid[0:h, 0:w].astype(np.float32)


def _blend(dst: np.ndarray, src, alpha: np.ndarray) -> None:
    """dst <- src over dst with a uint8 alpha (cv2.blendLinear: ~3x faster than numpy)."""
    full = np.empty_like(dst)
    full[...] = src
    a = alpha.astype(np.float32) * (1 / 255)
    dst[...] = cv2.blendLinear(full, np.ascontiguousarray(dst), a, 1 - a)


class _Canvas:
    """Figure-to-pixel transform plus the few drawing primitives (anti-aliased, subpixel)."""

    def __init__(self, spec: OutfitSpec, size: tuple[int, int], b: _Body):
        self.h, self.w = size
        y0, y1 = _window(spec, b)
        self.scale = self.h / (y1 - y0)
        self.c = np.array([0.0, (y0 + y1) / 2])
        a = math.radians(spec.angle)
        self.rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        self.t = np.array([self.w / 2 + spec.dx * self.w, self.h / 2])
        self.seed = spec.seed
        self.img = self._background(spec)

    def _background(self, spec: OutfitSpec) -> np.ndarray:
        h, w = self.h, self.w
        c1, c2 = (np.array(c, np.float32) for c in spec.bg)
        if spec.background == "gradient":
            t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
            return np.ascontiguousarray(np.broadcast_to(c1 + (c2 - c1) * t, (h, w, 3)), np.uint8)
        img = np.empty((h, w, 3), np.uint8)
        img[:] = spec.bg[0]
        if spec.background == "noise":
            n = np.random.default_rng(spec.seed + 1).normal(0, 5, (h // 2, w // 2))
            n = cv2.resize(n.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
            img = np.clip(img + n[..., None], 0, 255).astype(np.uint8)
        return img

    def px(self, pts) -> np.ndarray:
        p = (np.asarray(pts, float) - self.c) @ self.rot.T * self.scale + self.t
        return np.round(p * (1 << _SHIFT)).astype(np.int32)

    def solid(self, polys, color, outline=True):
        pp = [self.px(p) for p in polys]
        for p in pp:  # one call per polygon: a multi-contour fillPoly XORs the overlaps
            cv2.fillPoly(self.img, [p], color, cv2.LINE_AA, _SHIFT)
        if outline:
            cv2.polylines(self.img, pp, True, _edge(color), 1, cv2.LINE_AA, _SHIFT)

    def line(self, pts, color, thick=1):
        cv2.polylines(self.img, [self.px(pts)], False, color, thick, cv2.LINE_AA, _SHIFT)

    def layer(self, polys, fabric):
        """Fill the union of polys with a texture, then outline the union's silhouette."""
        m = np.zeros((self.h, self.w), np.uint8)
        for p in polys:
            cv2.fillPoly(m, [self.px(p)], 255, cv2.LINE_AA, _SHIFT)
        x, y, w, h = cv2.boundingRect(m)
        if w == 0:
            return
        x0, y0 = max(x - 2, 0), max(y - 2, 0)
        sl = (slice(y0, min(y + h + 2, self.h)), slice(x0, min(x + w + 2, self.w)))
        a = m[sl]
        fab = fabric if isinstance(fabric, Fabric) else Fabric(fabric)
        _blend(self.img[sl], self._texture(fab, a.shape, x0, y0), a)
        _blend(self.img[sl], _edge(fab.color), cv2.subtract(a, cv2.erode(a, _K3)))

    def _texture(self, f: Fabric, shape, x0, y0) -> np.ndarray:
        c1 = np.array(f.color, np.float32)
        if f.pattern == "solid":
            return c1.astype(np.uint8)
        c2 = np.array(f.color2, np.float32)
        p = max(f.period * self.scale, 4.0)
        if f.pattern == "noise":
            rng = np.random.default_rng(self.seed + sum(f.color))
            g = rng.random((max(2, int(shape[0] / p)), max(2, int(shape[1] / p))), np.float32)
            wgt = cv2.resize(g, shape[::-1], interpolation=cv2.INTER_CUBIC) * 0.6
        else:
            yy, xx = _grid(self.h, self.w)[:, y0:y0 + shape[0], x0:x0 + shape[1]]
            ca, sa = math.cos(f.angle), math.sin(f.angle)
            u, v = (xx * ca + yy * sa) / p, (yy * ca - xx * sa) / p
            if f.pattern == "stripes":
                wgt = ((u % 1) < 0.45).astype(np.float32)
            elif f.pattern == "checks":
                wgt = 0.5 * ((u % 1) < 0.5) + 0.5 * ((v % 1) < 0.5)
            else:  # dots on a half-drop grid
                du, dv = u % 1 - 0.5, (v + 0.5 * (np.floor(u) % 2)) % 1 - 0.5
                wgt = (du * du + dv * dv < 0.06).astype(np.float32)
        return np.clip(c1 + (c2 - c1) * wgt[..., None], 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------- garments
def _neck_curve(b: _Body, cut: str) -> tuple[float, np.ndarray]:
    """Half width at the shoulder line and the neck edge, left to right, for a symmetric cut."""
    if cut in ("round", "draped", "crew"):
        nx, depth = {"round": (0.037, 0.04), "draped": (0.045, 0.025), "crew": (0.03, 0.02)}[cut]
        return nx, b.arc(nx, depth)
    if cut in ("v", "deep_v"):
        nx, yb = (0.036, b.neck + 0.085) if cut == "v" else (0.042, b.bust + 0.045)
        return nx, np.array([(-nx, b.shoulder_y(nx)), (0, yb), (nx, b.shoulder_y(nx))])
    if cut == "square":
        nx, yl = 0.05, b.shoulder_y(0.05)
        return nx, np.array([(-nx, yl), (-nx, b.neck + 0.065), (nx, b.neck + 0.065), (nx, yl)])
    if cut == "boat":
        nx = min(0.08, b.sw - 0.02)
        x = np.linspace(-nx, nx, 9)
        return nx, np.stack([x, b.neck + 0.018 - 0.01 * (x / nx) ** 2], 1)
    # sweetheart: straps drop to the bust, two lobes rise and meet in a centre dip
    t = np.linspace(0, 1, 10)
    lobe = np.stack([-0.066 * (1 - t), b.bust - 0.035 + 0.013 * t - 0.022 * np.sin(math.pi * t)], 1)
    left = np.vstack([[(-0.05, b.shoulder_y(0.05))], lobe])
    return 0.05, np.vstack([left, _mirror(left)[1:]])


def _shoulder_seq(b: _Body, nx: float, sleeveless: bool, pad: float) -> list:
    """Right-side top edge from the neck edge outwards and down to the armpit."""
    ax = b.sw - 0.024 + pad
    if sleeveless:
        xo = float(np.clip(nx + 0.03, nx + 0.014, b.sw - 0.02))
        return [(nx, b.shoulder_y(nx)), (xo, b.shoulder_y(xo)), (xo + 0.002, b.shoulder + 0.03),
                (ax - 0.006, b.armpit - 0.018), (ax, b.armpit)]
    mid = [(0.75 * b.sw, b.shoulder_y(0.75 * b.sw))] if nx < 0.7 * b.sw else []
    return [(nx, b.shoulder_y(nx)), *mid, (b.sw + pad, b.shoulder + 0.008),
            (b.sw + pad - 0.004, b.shoulder + 0.04), (ax, b.armpit)]


def _bodice(b: _Body, cut: str, sleeveless: bool, hem: float, pad: float, side: int) -> np.ndarray:
    """Bodice polygon (no sleeves) of a top with the given neckline cut, down to hem."""
    ax = b.sw - 0.024 + pad
    if cut == "strapless":
        top = np.array([(-ax, b.armpit - 0.01), (0, b.armpit - 0.014), (ax, b.armpit - 0.01)])
    elif cut == "off_shoulder":
        yt, xo = b.shoulder + 0.03, b.sw + 0.024
        ya = b.armpit - 0.02
        top = np.array([(-ax - 0.01, ya), (-xo, yt), (xo, yt), (ax + 0.01, ya)])
    elif cut == "one_shoulder":
        top = np.vstack([[(-ax, b.armpit - 0.006)], _shoulder_seq(b, 0.032, True, pad)])
        top = top if side > 0 else _mirror(top)
    else:
        nx, curve = _neck_curve(b, cut)
        right = np.array(_shoulder_seq(b, nx, sleeveless, pad)[1:])
        top = np.vstack([_mirror(right), curve, right])
    ys = np.linspace(b.armpit, hem, 6)[1:]
    side_r = np.stack([b.torso_hw(ys) + pad, ys], 1)
    return np.vstack([top, side_r, _mirror(side_r)])


def _skirt(b: _Body, hem: float, flare: float) -> np.ndarray:
    hw = max(b.hw + 0.012 + 0.45 * flare * max(hem - b.hip, 0), b.legs_outer(hem) + 0.016)
    right = [(b.ww + 0.006, b.waist - 0.004)]
    right += [(b.hw + 0.012, b.hip)] if hem > b.hip + 0.02 else []
    x = np.linspace(hw, -hw, 11)
    return np.vstack([right, np.stack([x, hem + 0.01 * (1 - (x / hw) ** 2)], 1), _mirror(right)])


def _pants(b: _Body, hem: float, flare: float) -> np.ndarray:
    ys = np.linspace(b.hip, hem, 9)
    yi = ys[ys >= b.crotch][::-1]
    (cx, w), (cxi, wi) = b.leg(ys), b.leg(yi)
    pad = 0.008 + flare * 0.15 * np.clip(ys - b.crotch, 0, None)
    outer = np.stack([cx + w + pad, ys], 1)
    inner = np.stack([np.maximum(cxi - wi - 0.008 - flare * 0.15 * (yi - b.crotch), 0.002), yi], 1)
    right = np.vstack([[(b.ww + 0.005, b.waist - 0.004)], outer, inner, [(0, b.crotch + 0.006)]])
    return np.vstack([right, _mirror(right[:-1])])


def _coat(b: _Body, hem: float, yc: float, flare: float) -> np.ndarray:
    """Coat body with the front V opening down to the closure point yc."""
    ys = np.linspace(b.armpit, hem, 10)[1:]
    xs = [max(float(b.torso_hw(min(y, b.hip))) + 0.016 + flare * 0.4 * max(y - b.hip, 0),
              b.legs_outer(y) + 0.016 if y > b.crotch else 0) for y in ys]
    right = np.vstack([_shoulder_seq(b, 0.038, False, 0.016), np.stack([xs, ys], 1)])
    return np.vstack([[(0, yc)], right, _mirror(right)])


def _draw_neck(cv: _Canvas, b: _Body, spec: OutfitSpec):
    """Collar / neck design overlays drawn on top of the bodice."""
    color, accent, n = spec.top.color, spec.accent, b.neck
    styles = {"collar_design": COLLAR_STYLE, "neck_design": NECK_STYLE}
    kind = styles.get(spec.neck_attr, NECKLINE_CUT)[spec.neck]
    if kind == "shirt":
        cv.solid([[(-0.03, n + 0.008), (-0.026, n - 0.024), (0.026, n - 0.024), (0.03, n + 0.008)]],
                 accent)
        flap = np.array([(0.027, n - 0.022), (0.064, n + 0.012), (0.02, n + 0.06), (0, n + 0.012)])
        cv.solid([flap * [s, 1] for s in (-1, 1)], accent)
        cv.line([(0, n + 0.03), (0, b.hip)], _edge(color))
        for y in np.arange(n + 0.075, b.waist, 0.045):
            cv.solid([_ellipse(0.008, y, 0.0045, 0.0045, n=10)], _shade(color, 0.7), False)
    elif kind == "peter_pan":
        for s in (-1, 1):
            cv.solid([_ellipse(s * 0.028, n + 0.014, 0.031, 0.026, tilt=s * 0.3)], accent)
    elif kind == "puritan":
        outer = _ellipse(0, n - 0.005, 0.092, 0.085, 0, 180, 21)
        cv.solid([np.vstack([_neck_curve(b, "crew")[1][::-1], outer])], accent)
        cv.line([(0, n + 0.02), (0, n + 0.08)], _edge(accent))
    elif kind == "rib":
        up, out = _neck_curve(b, "crew")[1] - [0, 0.008], b.arc(0.05, 0.042)
        cv.solid([np.vstack([up, out[::-1]])], accent)
        for f in (0.45, 0.7):
            cv.line(up + (out - up) * f, _shade(color, 0.8), 2)
        for p, q in zip(up[1:-1], out[1:-1], strict=True):
            cv.line([p, q], _edge(accent))
    elif kind in ("turtle", "low_turtle", "ruffle"):
        top = b.chin - 0.004 if kind == "turtle" else n - 0.024
        wt = 0.042 if kind == "ruffle" else 0.027
        x = np.linspace(-wt, wt, 25 if kind == "ruffle" else 2)
        ytop = top + (0.006 * np.abs(np.sin(x / wt * 3.5 * math.pi)) if kind == "ruffle" else 0 * x)
        tube = np.vstack([_ellipse(0, n + 0.002, 0.034, 0.012, 0, 180, 9), np.stack([x, ytop], 1)])
        cv.solid([tube], color)
        if kind == "ruffle":
            for xx in np.linspace(-0.8, 0.8, 6) * wt:
                cv.line([(xx, top + 0.006), (xx * 0.85, n)], _edge(color))
        for f in {"turtle": (0.3, 0.55), "low_turtle": (0.4,)}.get(kind, ()):
            cv.line(_ellipse(0, top + (n - top) * f, 0.028, 0.004, 0, 180, 9), _edge(color))
    elif kind == "draped":
        for k in range(3, 0, -1):
            arc = b.arc(0.045 + 0.012 * k, 0.025 + 0.024 * k)
            cv.solid([arc], _shade(color, 0.85 if k % 2 else 1.12), False)
            cv.line(arc, _edge(color), 2 if k == 1 else 1)
    elif kind == "off_shoulder":
        x = np.linspace(-b.sw - 0.024, b.sw + 0.024, 9)
        cv.line(np.stack([x, np.full(9, b.shoulder + 0.045)], 1), _edge(color))


def _draw_lapel(cv: _Canvas, b: _Body, style: str, yc: float, coat: Fabric):
    """Lapels on the coat's V opening, in a slightly darker (lighter for dark coats) facing."""
    n, face = b.neck, _shade(coat.color, 0.82 if sum(coat.color) > 150 else 1.5)
    top, nk, c = np.array([0.03, n - 0.022]), np.array([0.038, n - 0.004]), np.array([0.0, yc])
    for s in (-1, 1):
        if style == "collarless":
            cv.line(np.array([nk, c]) * [s, 1], _edge(coat.color), 2)
        elif style == "notched":
            g = nk + 0.32 * (c - nk)
            lapel = np.array([c, (0.078, n + 0.072), (0.06, n + 0.052), g])
            collar = np.array([g, (0.056, n + 0.046), (0.07, n + 0.004), top, nk])
            cv.solid([lapel * [s, 1], collar * [s, 1]], face)
        else:
            t, width = np.linspace(0, 1, 14)[:, None], 0.036 if style == "shawl" else 0.082
            w = width * np.sin(math.pi * np.clip(t * 1.05, 0, 1)) ** 0.7
            outer = c + t * (top - c) + w * np.array([1.0, -0.35])
            cv.solid([np.vstack([outer, [nk], [c]]) * [s, 1]], face)


def _draw_mannequin(cv: _Canvas, b: _Body, spec: OutfitSpec):
    hr, hx = 0.06 * spec.figure.head, 0.046 * spec.figure.head
    if spec.hair:
        cv.solid([_ellipse(0, hr * 0.95, hx * 1.18, hr)], spec.hair, False)
    neck = [(-0.021, b.chin - 0.01), (0.021, b.chin - 0.01), (0.027, b.neck + 0.01),
            (-0.027, b.neck + 0.01)]
    ys = np.linspace(b.armpit, b.crotch, 6)
    side = np.stack([b.torso_hw(ys), ys], 1)
    shoulder = [(0.022, b.neck - 0.004), (b.sw - 0.01, b.shoulder), (b.sw, b.shoulder + 0.014)]
    torso = np.vstack([shoulder, side, [(0, b.crotch + 0.006)], _mirror(side), _mirror(shoulder)])
    lys = np.linspace(b.hip, b.ankle + 0.02, 9)
    cx, w = b.leg(lys)
    leg = np.vstack([np.stack([cx + w, lys], 1),
                     np.stack([np.maximum(cx - w, 0.001), lys], 1)[::-1]])
    skin = [_ellipse(0, hr, hx, hr), neck, torso, leg, _mirror(leg)]
    for s in (-1, 1):
        skin += [b.limb(s, -0.06, 2.95), _ellipse(*(b.arm[3] * [s, 1]), 0.009, 0.009, n=10)]
    cv.layer(skin, spec.skin)
    if spec.hair:
        cv.solid([_ellipse(0, hr * 0.7, hx * 1.1, hr * 0.78, 180, 360, 15)], spec.hair, False)
    acx = float(b.leg(b.ankle)[0])
    shoes = [_ellipse(s * (acx + 0.008), b.sole - 0.024, 0.026, 0.026) for s in (-1, 1)]
    cv.solid(shoes, spec.shoe)


def render_outfit(spec: OutfitSpec, size: tuple[int, int] = (288, 224)) -> np.ndarray:
    """Draw the outfit; (H, W, 3) uint8 RGB, a pure function of (spec, size)."""
    b = _Body(spec.figure)
    cv = _Canvas(spec, size, b)
    coat_hem, hem, _ = _hems(spec, b)
    coated, pants = coat_hem is not None, _bottom_attr(spec) == "pant_length"
    _draw_mannequin(cv, b, spec)
    waistband = [(-b.ww - 0.006, b.waist + 0.011), (b.ww + 0.006, b.waist + 0.011)]
    if pants or coated:
        bottom = _pants(b, hem, spec.flare) if pants else _skirt(b, hem, spec.flare)
        cv.layer([bottom], spec.bottom_fabric)
        cv.line(waistband, _edge(spec.bottom_fabric.color))
    cut = "crew" if coated or spec.neck_attr != "neckline_design" else NECKLINE_CUT[spec.neck]
    if spec.neck_attr == "neck_design" and NECK_STYLE[spec.neck] == "draped":
        cut = "draped"
    sleeves = None if coated else SLEEVE_END[spec.sleeve]
    top_hem = b.waist + 0.012 if spec.outfit in ("top_skirt", "dress") else b.hip + spec.top_hem
    bare = sleeves is None and not coated
    polys = [_bodice(b, cut, bare, top_hem, spec.sleeve_pad, spec.one_side)]
    if sleeves is not None:
        pad = spec.sleeve_pad + (0.008 if sleeves < 0.3 else 0)   # cup sleeves are puffed
        u0 = 0.15 if cut == "off_shoulder" else -0.08
        polys += [b.limb(s, u0, sleeves, pad, 0.012 if sleeves > 2.4 else 0) for s in (-1, 1)]
    if spec.outfit == "dress":
        polys.append(_skirt(b, hem, spec.flare))
    cv.layer(polys, spec.top)
    if spec.outfit == "top_skirt":
        cv.layer([_skirt(b, hem, spec.flare)], spec.bottom_fabric)
        cv.line(waistband, _edge(spec.bottom_fabric.color))
    if not coated:
        _draw_neck(cv, b, spec)
        return cv.img
    yc = min(b.bust + spec.closure, coat_hem - 0.04)
    polys, u1 = [_coat(b, coat_hem, yc, spec.flare)], SLEEVE_END[spec.sleeve]
    if u1 is not None:
        polys += [b.limb(s, -0.1, u1, 0.014, 0.01 if u1 > 2.4 else 0) for s in (-1, 1)]
    cv.layer(polys, spec.coat)
    cv.line([(0, yc), (0, coat_hem)], _edge(spec.coat.color))
    for y in np.arange(yc + 0.01, min(coat_hem - 0.02, b.crotch), 0.05):
        cv.solid([_ellipse(0.012, y, 0.006, 0.006, n=10)], _shade(spec.coat.color, 0.6), False)
    _draw_lapel(cv, b, LAPEL_STYLE[spec.lapel], yc, spec.coat)
    return cv.img


# --------------------------------------------------------------------------------- sampling
def _rgb(h, s, v) -> tuple[int, int, int]:
    return tuple(int(round(255 * c)) for c in colorsys.hsv_to_rgb(h, s, v))


def _color(rng: np.random.Generator) -> tuple[int, int, int]:
    """Garment colours: whites, blacks, greys, saturated, pastel and muted dark tones."""
    k, h = rng.random(), rng.random()
    for p, s, v in ((0.12, (0, 0), (0.92, 1)), (0.22, (0, 0), (0.06, 0.16)),
                    (0.34, (0, 0), (0.3, 0.75)), (0.72, (0.55, 1), (0.5, 0.95)),
                    (0.86, (0.15, 0.4), (0.85, 1)), (1, (0.3, 0.7), (0.2, 0.45))):
        if k < p:
            return _rgb(h, rng.uniform(*s), rng.uniform(*v))
    raise AssertionError


def _fabric(rng: np.random.Generator) -> Fabric:
    c = _color(rng)
    pattern = rng.choice(["solid", "stripes", "checks", "dots", "noise"],
                         p=[0.45, 0.15, 0.12, 0.13, 0.15])
    c2 = _color(rng) if rng.random() < 0.6 else _shade(c, 0.6 if sum(c) > 200 else 1.8)
    return Fabric(c, c2, str(pattern), float(rng.uniform(0.015, 0.04)),
                  float(rng.choice([0, math.pi / 2, math.pi / 4, -math.pi / 4])))


def _choice(rng: np.random.Generator, items):
    items = list(items)
    return items[int(rng.integers(len(items)))]


def sample_outfit(rng: np.random.Generator) -> OutfitSpec:
    """Draw one plausible outfit; label choices are near-uniform so every value is well covered."""
    crop = CROPS[int(rng.choice(3, p=[0.4, 0.4, 0.2]))]
    outfit = OUTFITS[int(rng.choice(5, p=[0.22, 0.22, 0.2, 0.18, 0.18]))]
    fig = Figure(*(float(rng.uniform(lo, hi)) for lo, hi in (
        (0.094, 0.108), (0.054, 0.066), (0.082, 0.094), (-0.01, 0.01), (-0.01, 0.01), (10, 17),
        (0, 0.012), (0.93, 1.07))))
    b = _Body(fig)
    bottom_attr = "pant_length" if outfit.endswith("pants") else "skirt_length"
    table = PANT_HEM if bottom_attr == "pant_length" else SKIRT_HEM
    coat_length = lapel = neck_attr = neck = None
    if outfit.startswith("coat"):
        lengths = [v for v in _values("coat_length")
                   if crop != "lower" or b.hem(COAT_HEM, v) > b.waist + 0.04]
        coat_length, lapel = _choice(rng, lengths), _choice(rng, _values("lapel_design"))
        # coats have real sleeves: a sleeveless coat would show the top's sleeves instead
        sleeve = _choice(rng, [v for v in _values("sleeve_length") if (SLEEVE_END[v] or 0) >= 0.5])
        coat_hem = b.hem(COAT_HEM, coat_length)
        ok = [v for v in _values(bottom_attr) if b.hem(table, v) >= coat_hem + 0.05]
        bottom = _choice(rng, ok if ok and rng.random() < 0.9 else _values(bottom_attr))
    else:
        neck_attr = NECK_ATTRS[int(rng.choice(3, p=[0.45, 0.275, 0.275]))]
        neck = _choice(rng, _values(neck_attr))
        cut, sleeves = NECKLINE_CUT.get(neck), _values("sleeve_length")
        if cut in ("strapless", "one_shoulder"):
            sleeves = [v for v in sleeves if SLEEVE_END[v] is None]
        elif cut == "off_shoulder":
            sleeves = [v for v in sleeves if (SLEEVE_END[v] or 0) >= 0.5]
        sleeve, bottom = _choice(rng, sleeves), _choice(rng, _values(bottom_attr))
    t = rng.random()
    skin = tuple(int(np.clip(a + (c - a) * t + rng.uniform(-8, 8), 0, 255))
                 for a, c in zip((250, 222, 196), (88, 56, 38), strict=True))
    bgk = str(rng.choice(["white", "grey", "flat", "gradient", "noise"],
                         p=[0.3, 0.2, 0.2, 0.15, 0.15]))
    light = [_rgb(rng.random(), rng.uniform(0.05, 0.35), rng.uniform(0.75, 1.0)) for _ in range(2)]
    grey = (int(rng.integers(200, 240)),) * 3
    bg = {"white": ((255,) * 3,) * 2, "grey": (grey, grey)}.get(bgk, tuple(light))
    hair = _rgb(rng.uniform(0.02, 0.12), rng.uniform(0.3, 0.8), rng.uniform(0.08, 0.7))
    top = _fabric(rng)
    return OutfitSpec(
        outfit=outfit, crop=crop, sleeve=sleeve, neck_attr=neck_attr, neck=neck, bottom=bottom,
        coat_length=coat_length, lapel=lapel, top=top,
        bottom_fabric=top if outfit == "dress" else _fabric(rng), coat=_fabric(rng),
        accent=top.color if rng.random() < 0.35 else _color(rng), skin=skin,
        hair=None if rng.random() < 0.2 else hair, shoe=_color(rng), background=bgk, bg=bg,
        figure=fig, top_hem=float(rng.uniform(-0.03, 0.02)), flare=float(rng.uniform(0.02, 0.5)),
        closure=float(rng.uniform(0.0, 0.06)), sleeve_pad=float(rng.uniform(0.004, 0.009)),
        one_side=int(rng.choice([-1, 1])), frame=float(rng.random()),
        dx=float(rng.uniform(-0.06, 0.06)), angle=float(rng.uniform(-3, 3)),
        seed=int(rng.integers(2**31)))


def render_dataset(n: int, seed: int, size: tuple[int, int] = (288, 224)
                   ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """n rendered images and per-attribute value indices (-1 = attribute not defined)."""
    rng = np.random.default_rng(seed)
    images = np.empty((n, *size, 3), np.uint8)
    labels = {a.name: np.full(n, -1, np.int64) for a in FASHIONAI_ATTRIBUTES}
    for i in range(n):
        spec = sample_outfit(rng)
        images[i] = render_outfit(spec, size)
        for name, value in outfit_labels(spec).items():
            labels[name][i] = _ATTR[name].index(value)
    return images, labels
