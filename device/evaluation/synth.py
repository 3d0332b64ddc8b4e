"""Synthetic camera frames: an MNIST digit photographed on paper, and the same paper with
nothing on it (numpy + Pillow only).

One page generator serves both, so an empty frame is exactly a photo minus its digit: the
"no digit" rate and the photo accuracy are measured on the same kinds of paper and light.
The robust training recipe draws its "none" examples and photo-pipeline digits from here
with the *train* split and its own seeds; `mnist-edge robustness` measures with the *test*
split and other seeds.

Each style stands for something a camera meets on a desk:
  plain     off-white paper, gentle light falloff, sensor noise
  uneven    a strong light gradient across the page (a desk lamp to one side)
  ruled     ruled notebook paper (lines every 15-30 px, sometimes a margin line)
  squared   squared (graph) paper
  shadow    a hard shadow edge across the page (a hand or the phone itself)
  specks    dust and small dirt specks on the paper
  textured  recycled or grainy paper: low-frequency blotches
  desk      a sheet lying on a darker desk, the desk showing around it
  faint     low contrast: pencil, or an overexposed frame
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

STYLES = ("plain", "uneven", "ruled", "squared", "shadow", "specks", "textured", "desk", "faint")


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Noise in [-1, 1] that varies over about `cells` cells across the frame."""
    coarse = rng.uniform(-1, 1, (cells, cells)).astype(np.float32)
    return np.asarray(Image.fromarray(coarse, mode="F").resize((w, h), Image.Resampling.BICUBIC))


def page(rng: np.random.Generator, h: int, w: int, style: str) -> np.ndarray:
    """Paper brightness (H, W) in [0, 1] under the style's light, before any ink."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; one of {', '.join(STYLES)}")
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    level = rng.uniform(0.7, 0.95)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xs / w + np.sin(angle) * ys / h)  # about -1..1 across the frame
    strength = rng.uniform(0.2, 0.4) if style == "uneven" else rng.uniform(0.0, 0.08)
    paper = level + strength * (ramp - ramp.mean()) / 2
    if style == "ruled":
        gap = rng.integers(15, 31)
        offset = rng.integers(0, gap)
        darkness = rng.uniform(0.1, 0.35)
        width = rng.integers(1, 3)
        rows = ((ys.astype(int) + offset) % gap) < width
        paper = paper - darkness * rows
        if rng.random() < 0.4:  # the margin line
            x0 = int(rng.integers(w // 10, w // 4))
            paper[:, x0 : x0 + width] -= darkness
    elif style == "squared":
        gap = rng.integers(10, 25)
        darkness = rng.uniform(0.08, 0.25)
        grid = ((ys.astype(int) % gap) == 0) | ((xs.astype(int) % gap) == 0)
        paper = paper - darkness * grid
    elif style == "shadow":
        a = rng.uniform(0, 2 * np.pi)
        cut = rng.uniform(-0.3, 0.3)
        side = np.cos(a) * (xs / w - 0.5) + np.sin(a) * (ys / h - 0.5) - cut
        soft = rng.uniform(0.005, 0.05)
        paper = paper * (1 - rng.uniform(0.25, 0.55) / (1 + np.exp(-side / soft)))
    elif style == "specks":
        for _ in range(int(rng.integers(1, 7))):
            r = rng.uniform(0.6, 2.5)
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            dot = ((ys - cy) ** 2 + (xs - cx) ** 2) <= r * r
            paper = paper - rng.uniform(0.2, 0.6) * dot
    elif style == "textured":
        paper = paper + rng.uniform(0.03, 0.1) * _smooth_noise(rng, h, w, int(rng.integers(8, 24)))
    elif style == "desk":
        desk = rng.uniform(0.1, 0.45)
        y0, x0 = int(rng.uniform(0.05, 0.25) * h), int(rng.uniform(0.05, 0.25) * w)
        y1, x1 = h - int(rng.uniform(0.05, 0.25) * h), w - int(rng.uniform(0.05, 0.25) * w)
        sheet = np.zeros((h, w), bool)
        sheet[y0:y1, x0:x1] = True
        paper = np.where(sheet, paper, desk + 0.03 * _smooth_noise(rng, h, w, 6))
    elif style == "faint":
        paper = 0.9 + 0.05 * (paper - level)
    return paper.astype(np.float32)


def _ink(digit: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """The 28x28 digit scaled to `size` px, as ink coverage in [0, 1], with a random pen:
    a thick marker (dilated), a fine pen (eroded) or as written."""
    img = Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC)
    pen = rng.random()
    k = max(3, (size // 20) | 1)
    if pen < 0.25:
        img = img.filter(ImageFilter.MaxFilter(k))
    elif pen < 0.4 and size >= 60:
        img = img.filter(ImageFilter.MinFilter(3))
    return np.asarray(img, np.float32) / 255.0


def _camera(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Focus blur, sensor noise and 8-bit quantization, sometimes a JPEG round trip."""
    img = Image.fromarray(np.clip(gray * 255, 0, 255).astype(np.uint8))
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.3)))
    arr = np.asarray(img, np.float32) + rng.normal(0, rng.uniform(1, 6), gray.shape)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if rng.random() < 0.5:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=int(rng.integers(40, 95)))
        img = Image.open(io.BytesIO(buf.getvalue()))
    return np.asarray(img, np.float32) / 255.0


def frame_size(rng: np.random.Generator, base: int = 160) -> tuple[int, int]:
    h = int(rng.integers(base * 3 // 4, base * 5 // 4))
    return h, int(h * rng.uniform(1.0, 1.5))


def photo(digit: np.ndarray, rng: np.random.Generator, style: str, base: int = 160) -> np.ndarray:
    """A photo-like gray frame (H, W) in [0, 1] of a 28x28 MNIST digit written on paper."""
    return photo_with_box(digit, rng, style, base)[0]


def photo_with_box(digit: np.ndarray, rng: np.random.Generator, style: str,
                   base: int = 160) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """`photo`, and where the digit's 28x28 square landed: x, y, width, height."""
    h, w = frame_size(rng, base)
    paper = page(rng, h, w, style)
    size = int(min(h, w) * rng.uniform(0.35, 0.7))
    ink = _ink(digit, rng, size)
    oy = int(rng.integers(h // 8, max(h // 8 + 1, h - size - h // 8)))
    ox = int(rng.integers(w // 8, max(w // 8 + 1, w - size - w // 8)))
    coverage = np.zeros((h, w), np.float32)
    coverage[oy : oy + size, ox : ox + size] = ink[: h - oy, : w - ox]
    darkness = rng.uniform(0.35, 0.6) if style == "faint" else rng.uniform(0.6, 0.92)
    return _camera(paper * (1 - darkness * coverage), rng), (ox, oy, size, size)


def empty(rng: np.random.Generator, style: str, base: int = 160) -> np.ndarray:
    """The same kind of frame with nothing written on it."""
    h, w = frame_size(rng, base)
    return _camera(page(rng, h, w, style), rng)
