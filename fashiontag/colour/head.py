"""The colour "head": a fixed (untrained) torch module inside the exported graph.

Pixels in, a distribution over palette names out, so colour travels through ONNX, Triton, the
client and JSONL exactly like a trained attribute, on CPU and GPU alike:

1. the uint8 tile is average-pooled (every other pixel) to a ``grid x grid`` map of 16 x 16
   cells of 14 px; cells straddling an edge (high colour spread: their average is a blend in
   neither object) count less;
2. letterbox padding (cells exactly of the pad value throughout) is masked out;
3. cells go sRGB → CIELAB and take the nearest palette colour (CIE76 ΔE). A soft assignment
   (``softmax(-ΔE² / 2σ²)``, σ = 4) named the same colours in every test but cost ~9 % of the
   backbone's time against ~3 % (measured side by side), so assignment is hard;
4. the background is what the border of the picture shows: the palette histogram of a ring of
   cells along the image's edge (weighted towards the top: in a model shot the lower edges are
   often the garment); a cell's background likelihood is the cosine similarity of its palette
   assignment with that histogram, so a cell of the border's dominant colour counts as
   background while a garment that touches the edge in a few places mostly does not;
5. foreground weight = centre weighting x (ε + 1 − background likelihood); ε keeps a garment that
   has the background's colour (white on white) visible through the centre weighting;
6. the weighted palette histogram, normalised to sum to one, is the output: the share of the
   garment in each named colour. The top values are the dominant colours.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fashiontag.colour.palette import PALETTE, NamedColour, by_name, srgb_to_lab
from fashiontag.spec import DEFAULT_SPEC, PreprocessSpec

__all__ = ["ColourHead", "rgb_to_lab"]

_RGB_TO_XYZ = ((0.4124564, 0.3575761, 0.1804375),
               (0.2126729, 0.7151522, 0.0721750),
               (0.0193339, 0.1191920, 0.9503041))
_WHITE = (0.95047, 1.0, 1.08883)
_EPS, _KAPPA = 216 / 24389, 24389 / 27


def _xyz_matrix() -> torch.Tensor:
    """sRGB-linear → XYZ scaled by the D65 white point, transposed for ``rgb @ matrix``."""
    return (torch.tensor(_RGB_TO_XYZ) / torch.tensor(_WHITE)[:, None]).T.contiguous()


def rgb_to_lab(rgb: torch.Tensor, matrix: torch.Tensor | None = None) -> torch.Tensor:
    """``[..., 3]`` float sRGB in 0..255 → CIELAB (D65); twin of ``palette.srgb_to_lab``."""
    c = rgb / 255.0
    linear = torch.where(c <= 0.04045, c / 12.92, ((c.clamp(min=0.0) + 0.055) / 1.055) ** 2.4)
    xyz = linear @ (_xyz_matrix() if matrix is None else matrix)
    f = torch.where(xyz > _EPS, xyz.clamp(min=_EPS) ** (1.0 / 3.0), (_KAPPA * xyz + 16) / 116)
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=-1)


class ColourHead(nn.Module):
    """``uint8 [N, S, S, 3]`` → ``float32 [N, K]``: share of garment pixels per palette colour.

    Nothing is learnt: every buffer derives from :meth:`config`, so none is saved.
    """

    takes_pixels = True  # AttributeHeads feeds it pixels, not backbone features
    kind = "colour"
    hidden = 0

    def __init__(self, names: tuple[str, ...] | list[str] | None = None,
                 hex_values: tuple[str, ...] | list[str] | None = None,
                 spec: PreprocessSpec | dict = DEFAULT_SPEC, grid: int = 16, ring: int = 1,
                 centre_sigma: float = 0.35, epsilon: float = 0.01,
                 skin_damping: float = 0.5, uniformity: float = 40.0, **retired) -> None:
        """``retired``: options of earlier versions found in old heads files (e.g. ``sigma``);
        ignored, and ``ensure_colour_head`` replaces such a head with the current one."""
        super().__init__()
        spec = PreprocessSpec.from_dict(spec) if isinstance(spec, dict) else spec
        if spec.size % grid:
            raise ValueError(f"grid {grid} must divide the tile size {spec.size}")
        if names is None:
            names = [c.name for c in PALETTE]
        if hex_values is None:
            hex_values = [by_name(n).hex for n in names]
        if len(hex_values) != len(names):
            raise ValueError("one hex value per colour name")
        self.names, self.hex_values, self.spec = tuple(names), tuple(hex_values), spec
        self.options = {"grid": grid, "ring": ring,
                        "centre_sigma": centre_sigma, "epsilon": epsilon,
                        "skin_damping": skin_damping, "uniformity": uniformity}
        self.grid, self.pool = grid, spec.size // grid
        self.stride = 2 if self.pool % 2 == 0 else 1
        self.pad_value = float(spec.pad_value)
        self.ring = ring
        self.epsilon = epsilon
        self.skin_damping = skin_damping
        self.uniformity = uniformity  # RGB standard deviation at which a cell counts half
        rgb = np.array([NamedColour(n, h, "").rgb for n, h in zip(names, hex_values, strict=True)])
        lab = torch.from_numpy(srgb_to_lab(rgb).astype(np.float32))
        # -|lab - P|^2 / 2 = lab @ P.T - |P|^2 / 2 - |lab|^2 / 2; the last term is the same for
        # every colour, so the nearest colour is the argmax of the first two
        self.register_buffer("assign_weight", lab.T.contiguous(), persistent=False)
        self.register_buffer("assign_bias", -(lab ** 2).sum(-1) / 2, persistent=False)
        self.register_buffer("xyz_matrix", _xyz_matrix(), persistent=False)
        axis = (torch.arange(grid, dtype=torch.float32) + 0.5) / grid - 0.5
        centre = torch.exp(-(axis[:, None] ** 2 + axis[None, :] ** 2) / (2 * centre_sigma ** 2))
        self.register_buffer("centre", centre.reshape(1, grid * grid), persistent=False)
        rows = 1.0 - (torch.arange(grid, dtype=torch.float32) + 0.5) / grid
        top = rows[:, None].expand(grid, grid).reshape(1, grid, grid).clone()
        self.register_buffer("top_weight", top, persistent=False)

    def config(self) -> dict:
        return {"names": list(self.names), "hex_values": list(self.hex_values),
                "spec": self.spec.to_dict(), **self.options}

    @staticmethod
    def _skin(rgb: torch.Tensor) -> torch.Tensor:
        """1.0 where a cell has a skin tone (YCrCb box of Chai & Ngan, 1999), else 0.0."""
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        y = 0.299 * r + 0.587 * g + 0.114 * b
        cr = (r - y) * 0.713 + 128.0
        cb = (b - y) * 0.564 + 128.0
        inside = (cr >= 133.0) & (cr <= 173.0) & (cb >= 77.0) & (cb <= 127.0) & (y >= 60.0)
        return inside.to(torch.float32)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        # Written for speed in ONNX runtimes: full-resolution work is one cast, one pooling and
        # two reductions; everything over (cells x colours) is a matmul, a softmax or a norm.
        n, g, p, s = pixels.shape[0], self.grid, self.pool, self.stride
        # 1. pooled colours from every ``stride``-th pixel, NHWC (no transpose of the tile)
        x = pixels[:, ::s, ::s].to(torch.float32).reshape(n, g, p // s, g, p // s, 3)
        cells = x.mean(dim=(2, 4)).reshape(n, g * g, 3)
        # a cell straddling an edge averages to a colour that is in neither object (navy + white
        # = "Light Steel Blue"): weight cells by how uniform they are
        spread = ((x * x).mean(dim=(2, 4)).reshape(n, g * g, 3) - cells * cells).sum(-1)
        uniform = 1.0 / (1.0 + spread.clamp(min=0.0) / self.uniformity ** 2)
        # 2. letterbox padding: cells that are exactly the pad value throughout (a flat region of
        # exactly that grey inside the picture is masked too: it is background anyway)
        flat_pad = ((cells - self.pad_value).abs().amax(-1) < 0.5) & (spread < 0.5)
        content = 1.0 - flat_pad.to(torch.float32).reshape(n, g, g)  # [N, G, G]
        # 3. CIELAB; each cell takes the nearest palette colour (argmin |lab - P|^2, i.e. argmax
        # of lab @ P.T - |P|^2 / 2) as a one-hot row
        lab = rgb_to_lab(cells, self.xyz_matrix)  # [N, C, 3]
        score = lab @ self.assign_weight + self.assign_bias
        assign = (score >= score.amax(-1, keepdim=True)).to(torch.float32)  # [N, C, K]
        # 4. background = palette histogram of a ring of content cells along the picture's edge,
        # weighted from 1 at the top to 0 at the bottom: in a model shot the lower edges are
        # often the garment itself, the top rarely is
        outside = F.pad(1.0 - content[:, None], (self.ring,) * 4, value=1.0)
        ring = F.max_pool2d(outside, 2 * self.ring + 1, stride=1)[:, 0] * content * self.top_weight
        background = ring.reshape(n, 1, -1) @ assign  # [N, 1, K]
        background = background / (background.norm(dim=-1, keepdim=True) + 1e-6)
        likelihood = (assign @ background.transpose(1, 2))[..., 0]  # cosine similarity, [N, C]
        # 5. foreground weights; an all-padding tile still gets (uniform) weights. Skin (a model's
        # face, arms) is down-weighted, not removed: a nude or tan garment still shows through.
        weight = (content.reshape(n, -1) + 1e-6) * self.centre \
            * (self.epsilon + (1.0 - likelihood).clamp(min=0.0)) \
            * (1.0 - self.skin_damping * self._skin(cells)) * uniform
        # 6. weighted histogram
        hist = (weight[:, None, :] @ assign)[:, 0]  # [N, K]
        return hist / hist.sum(-1, keepdim=True)
