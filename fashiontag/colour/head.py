"""The colour "head": a fixed (untrained) torch module inside the exported graph.

Pixels in, a distribution over palette names out, so colour travels through ONNX, Triton, the
client and JSONL exactly like a trained attribute, on CPU and GPU alike:

1. the uint8 tile is average-pooled to a ``grid x grid`` map (cheap, denoises JPEG);
2. letterbox padding (whole rows/columns equal to the pad value) is masked out;
3. cells go sRGB → CIELAB and are soft-assigned to the palette (``softmax(-ΔE² / 2σ²)``);
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
from fashiontag.images import DEFAULT_SPEC, PreprocessSpec

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
                 spec: PreprocessSpec | dict = DEFAULT_SPEC, grid: int = 32, sigma: float = 4.0,
                 ring: int = 2, centre_sigma: float = 0.35, epsilon: float = 0.01,
                 skin_damping: float = 0.5) -> None:
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
        self.options = {"grid": grid, "sigma": sigma, "ring": ring,
                        "centre_sigma": centre_sigma, "epsilon": epsilon,
                        "skin_damping": skin_damping}
        self.pool = spec.size // grid
        self.pad_value = float(spec.pad_value)
        self.inv_two_sigma2 = 1.0 / (2.0 * sigma * sigma)
        self.ring = ring
        self.epsilon = epsilon
        self.skin_damping = skin_damping
        rgb = np.array([NamedColour(n, h, "").rgb for n, h in zip(names, hex_values, strict=True)])
        lab = torch.from_numpy(srgb_to_lab(rgb).astype(np.float32))
        self.register_buffer("palette", lab.T.contiguous(), persistent=False)  # [3, K]
        self.register_buffer("xyz_matrix", _xyz_matrix(), persistent=False)
        self.register_buffer("palette_sq", (lab ** 2).sum(-1), persistent=False)  # [K]
        axis = (torch.arange(grid, dtype=torch.float32) + 0.5) / grid - 0.5
        centre = torch.exp(-(axis[:, None] ** 2 + axis[None, :] ** 2) / (2 * centre_sigma ** 2))
        self.register_buffer("centre", centre.reshape(1, grid * grid), persistent=False)
        rows = 1.0 - (torch.arange(grid, dtype=torch.float32) + 0.5) / grid
        top = rows[:, None].expand(grid, grid).reshape(1, 1, grid, grid).clone()
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
        x = pixels.to(torch.float32)  # [N, S, S, 3]
        n = x.shape[0]
        # 2. letterbox padding: whole rows / columns of exactly the pad value
        is_pad = (x == self.pad_value).to(torch.float32).amin(dim=-1)  # [N, S, S]
        pad = torch.maximum(is_pad.amin(dim=2, keepdim=True), is_pad.amin(dim=1, keepdim=True))
        # 1. pooled colours and content mask on the grid
        cells = F.avg_pool2d(x.permute(0, 3, 1, 2), self.pool)  # [N, 3, G, G]
        content = (F.avg_pool2d(pad[:, None], self.pool) < 1e-3).to(torch.float32)  # [N,1,G,G]
        # 3. CIELAB and soft assignment to the palette
        lab = rgb_to_lab(cells.permute(0, 2, 3, 1), self.xyz_matrix).reshape(n, -1, 3)
        d2 = (lab ** 2).sum(-1, keepdim=True) - 2.0 * (lab @ self.palette) + self.palette_sq
        assign = torch.softmax(-d2 * self.inv_two_sigma2, dim=-1)  # [N, G*G, K]
        # 4. background = palette histogram of a ring of content cells along the picture's edge,
        # weighted from 1 at the top to 0 at the bottom: in a model shot the lower edges are
        # often the garment itself, the top rarely is
        outside = F.pad(1.0 - content, (self.ring,) * 4, value=1.0)
        ring = F.max_pool2d(outside, 2 * self.ring + 1, stride=1) * content * self.top_weight
        ring = ring.reshape(n, -1, 1)
        background = (assign * ring).sum(1)  # [N, K], unnormalised ring histogram
        background = background / (background.norm(dim=-1, keepdim=True) + 1e-6)
        unit = assign / (assign.norm(dim=-1, keepdim=True) + 1e-6)
        likelihood = (unit * background[:, None, :]).sum(-1)  # cosine similarity, [N, G*G]
        # 5. foreground weights; an all-padding tile still gets (uniform) weights. Skin (a model's
        # face, arms) is down-weighted, not removed: a nude or tan garment still shows through.
        rgb = cells.permute(0, 2, 3, 1).reshape(n, -1, 3)
        skin = self._skin(rgb)
        weight = (content.reshape(n, -1) + 1e-6) * self.centre \
            * (self.epsilon + (1.0 - likelihood).clamp(min=0.0)) * (1.0 - self.skin_damping * skin)
        # 6. weighted histogram
        hist = (assign * weight[..., None]).sum(1)
        return hist / hist.sum(-1, keepdim=True)


def ensure_colour_head(heads_path) -> bool:
    """Add the (untrained) colour head to a heads file that lacks it, or bring it up to this
    code's palette and settings; True if the file changed.

    Lets ``fashiontag build`` upgrade heads trained before colour existed without retraining.
    """
    from fashiontag.colour.palette import colour_attribute
    from fashiontag.model.heads import load_heads, save_heads

    taxonomy, heads = load_heads(heads_path)
    attribute = colour_attribute()
    fresh = ColourHead(attribute.values)
    current = heads.get(attribute.name)
    if attribute.name in taxonomy and taxonomy[attribute.name] == attribute \
            and current is not None and current.config() == fresh.config():
        return False
    heads[attribute.name] = fresh
    save_heads(heads_path, taxonomy.with_attribute(attribute), heads)
    return True
