"""Augmentations of the robust recipe: small named functions on a batch of MNIST-polarity
images, float32 (N, 28, 28) in [0, 1], each drawing from a seeded numpy Generator.

`PIPELINE` lists them in the order they apply, each with the share of images it touches and
the real-world variation it stands for. All are vectorized over the batch, so augmenting the
whole training set for an epoch costs seconds, not minutes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw

Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]
_C = 13.5  # the centre of a 28x28 image, in pixel coordinates
_GRID = np.mgrid[0:28, 0:28].astype(np.float32)  # (2, 28, 28): y, x


def _sample(x: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Bilinear sampling of each image at (ys, xs) (N, 28, 28); outside is black."""
    n = len(x)
    padded = np.zeros((n, 30, 30), np.float32)
    padded[:, 1:29, 1:29] = x
    ys, xs = np.clip(ys + 1, 0, 28.999), np.clip(xs + 1, 0, 28.999)
    y0, x0 = np.floor(ys).astype(np.int32), np.floor(xs).astype(np.int32)
    fy, fx = ys - y0, xs - x0
    flat = padded.reshape(n, -1)
    base = (np.arange(n, dtype=np.int32) * 900)[:, None, None]

    def at(dy: int, dx: int) -> np.ndarray:
        return flat.ravel()[base + (y0 + dy) * 30 + (x0 + dx)]

    return ((at(0, 0) * (1 - fx) + at(0, 1) * fx) * (1 - fy)
            + (at(1, 0) * (1 - fx) + at(1, 1) * fx) * fy).astype(np.float32)


# Bilinear upsampling of a 4x4 field to 28x28, as one matrix on each side.
_UP = np.clip(1 - np.abs(np.linspace(0, 3, 28)[:, None] - np.arange(4)[None, :]), 0, None)
_UP = _UP.astype(np.float32)


def warp(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rotation, scale, width, slant (shear), shift and a smooth elastic wobble in one
    resampling: other people's writing (slanted, small or large, narrow or wide hands,
    off-centre, shaky strokes) and a camera that is not square to the page."""
    n = len(x)
    angle = rng.normal(0, 0.17, n).clip(-0.45, 0.45)
    scale = np.exp(rng.normal(0, 0.15, n)).clip(0.6, 1.25)
    shear = rng.normal(0, 0.2, n).clip(-0.5, 0.5)
    shift = rng.uniform(-3.5, 3.5, (n, 2)) * (rng.random((n, 1)) < 0.5)
    # A writer's width: two in five digits narrower (0.6-0.95 of their width: tall, thin
    # hands), one in ten wider (1.05-1.2); the height stays, as the device's 20 px box keeps it.
    hand = rng.random(n)
    width = np.where(hand < 0.4, rng.uniform(0.6, 0.95, n),
                     np.where(hand < 0.5, rng.uniform(1.05, 1.2, n), 1.0))
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    # Output (y, x) -> source: rotate and scale, then shear along x, then the width along x.
    a11, a12, a21, a22 = cos, -sin / width, sin + shear * cos, (cos - shear * sin) / width
    dy, dx = _GRID[0] - _C, _GRID[1] - _C
    ys = a11[:, None, None] * dy + a12[:, None, None] * dx + _C - shift[:, 0, None, None]
    xs = a21[:, None, None] * dy + a22[:, None, None] * dx + _C - shift[:, 1, None, None]
    amp = rng.uniform(0, 1.8, (n, 1, 1)).astype(np.float32)
    field = rng.normal(0, 1, (2, n, 4, 4)).astype(np.float32)
    ys = ys + amp * (_UP @ field[0] @ _UP.T)
    xs = xs + amp * (_UP @ field[1] @ _UP.T)
    return _sample(x, ys, xs)


def _max3(x: np.ndarray) -> np.ndarray:
    p = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    return np.max([p[:, dy : dy + 28, dx : dx + 28] for dy in range(3) for dx in range(3)], axis=0)


def _min3(x: np.ndarray) -> np.ndarray:
    return -_max3(-x)


def stroke_width(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Thicker or thinner strokes: a marker or brush against a fine pen."""
    thick = rng.random(len(x)) < 0.5
    out = x.copy()
    out[thick] = _max3(x[thick])
    out[~thick] = np.maximum(_min3(x[~thick]), 0.5 * x[~thick] * (x[~thick] > 0.8))
    return out


def outline(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Hollow strokes (outlined or bubble digits, an edge-enhancing camera pipeline)."""
    thick = _max3(x)
    strength = rng.uniform(0.7, 1.0, (len(x), 1, 1))
    return (np.clip(thick - _min3(thick), 0, 1) * strength).astype(np.float32)


def blur(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Out of focus (3x3 blur) or a shaking hand (motion blur along one of four directions)."""
    out = x.copy()
    kind = rng.integers(0, 5, len(x))
    p = np.pad(x, ((0, 0), (3, 3), (3, 3)))
    for k, (sy, sx) in enumerate(((0, 1), (1, 0), (1, 1), (1, -1))):
        sel = kind == k
        length = 3 + 2 * int(rng.integers(0, 3))
        taps = [p[sel, 3 + sy * t : 31 + sy * t, 3 + sx * t : 31 + sx * t]
                for t in range(-(length // 2), length // 2 + 1)]
        out[sel] = np.mean(taps, axis=0)
    sel = kind == 4
    out[sel] = np.mean([p[sel, 2 + dy : 30 + dy, 2 + dx : 30 + dx]
                        for dy in range(3) for dx in range(3)], axis=0)
    return out


def _mask_bank(seed: int, count: int = 4000) -> np.ndarray:
    """Stray marks drawn with Pillow: straight, dotted and zigzag lines and splashes."""
    rng = np.random.default_rng(seed)
    bank = np.zeros((count, 28, 28), np.float32)
    for i in range(count):
        img = Image.new("L", (56, 56))  # drawn at 2x, then reduced: anti-aliased strokes
        draw = ImageDraw.Draw(img)
        kind = i % 4
        width = int(rng.integers(2, 5))
        if kind == 3:  # splashes: a few filled blots
            for _ in range(int(rng.integers(2, 7))):
                cx, cy, r = rng.uniform(0, 56, 2).tolist() + [float(rng.uniform(2, 6))]
                draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=int(rng.integers(100, 255)))
        else:
            a = rng.uniform(0, np.pi)
            if abs(np.cos(a)) < 0.35:  # near-vertical strokes would teach "a 1 is a stray mark"
                a = rng.uniform(-0.6, 0.6)
            cx, cy = rng.uniform(10, 46, 2)
            half = rng.uniform(15, 40)
            p0 = np.array([cx - half * np.cos(a), cy - half * np.sin(a)])
            p1 = np.array([cx + half * np.cos(a), cy + half * np.sin(a)])
            if kind == 0:  # straight
                draw.line([tuple(p0), tuple(p1)], fill=255, width=width)
            elif kind == 1:  # dotted
                for t in np.linspace(0, 1, int(rng.integers(5, 12))):
                    q = p0 + t * (p1 - p0)
                    draw.ellipse([q[0] - width, q[1] - width, q[0] + width, q[1] + width], fill=255)
            else:  # zigzag
                steps = int(rng.integers(4, 10))
                normal = np.array([-np.sin(a), np.cos(a)]) * rng.uniform(3, 8)
                pts = [tuple(p0 + t * (p1 - p0) + normal * (1 if j % 2 else -1))
                       for j, t in enumerate(np.linspace(0, 1, steps))]
                draw.line(pts, fill=255, width=width)
        bank[i] = np.asarray(img.resize((28, 28), Image.Resampling.BOX), np.float32) / 255
    return bank


_BANK: dict[int, np.ndarray] = {}


def stray_marks(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Lines and blots over the digit: ruled or crossed-out paper, pen slips, ink splashes."""
    bank = _BANK.setdefault(0, _mask_bank(0))
    marks = bank[rng.integers(0, len(bank), len(x))] * rng.uniform(0.4, 1.0, (len(x), 1, 1))
    return np.maximum(x, marks.astype(np.float32))


def erase(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A small patch erased: a finger, glare or a gap in the stroke."""
    out = x.copy()
    n = len(x)
    h, w = rng.integers(3, 9, n), rng.integers(3, 9, n)
    y0, x0 = rng.integers(2, 20, n), rng.integers(2, 20, n)
    ys, xs = _GRID[0][None], _GRID[1][None]
    box = ((ys >= y0[:, None, None]) & (ys < (y0 + h)[:, None, None])
           & (xs >= x0[:, None, None]) & (xs < (x0 + w)[:, None, None]))
    out[box] = 0.0
    return out


def edge_bands(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Bright bars along the image's borders: a crop that catches a lit sheet edge or a
    desk lamp's glare beside the digit."""
    n = len(x)
    xs, ys = _GRID[1][None], _GRID[0][None]
    left = xs < rng.integers(0, 9, n)[:, None, None]
    right = xs >= 28 - rng.integers(0, 9, n)[:, None, None]
    vertical = rng.random(n)[:, None, None] < 0.7
    top = ys < rng.integers(0, 7, n)[:, None, None]
    bottom = ys >= 28 - rng.integers(0, 7, n)[:, None, None]
    band = np.where(vertical, left | right, top | bottom)
    level = rng.uniform(0.6, 1.0, (n, 1, 1)).astype(np.float32)
    return np.where(band, np.maximum(x, level * (1 - 0.7 * x)), x).astype(np.float32)


def lights(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A blob of light and nothing else: a lamp, a reflection, a window in a dark scene, as
    the preprocessing cuts it out (a filled, soft-edged ellipse, mostly centred and large).
    Only for "no digit" examples: a filled disc is not a 0."""
    n = len(x)
    cy, cx = rng.normal(_C, 2.5, (2, n, 1, 1))
    rx = rng.uniform(5, 11, (n, 1, 1))
    ry = rx * rng.uniform(0.6, 1.6, (n, 1, 1))  # round-ish: a tall thin blob is a 1
    ys, xs = _GRID[0][None], _GRID[1][None]
    r = np.sqrt(((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2)
    soft = rng.uniform(0.05, 0.4, (n, 1, 1))
    level = rng.uniform(0.6, 1.0, (n, 1, 1))
    blob = level * np.clip((1 - r) / soft + 0.5, 0, 1)
    return np.maximum(x, blob).astype(np.float32)


def background(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A lifted, uneven background and lower contrast: haze, glare, grey paper, a camera's
    auto-exposure. The digit stays brighter than its surroundings."""
    n = len(x)
    coarse = rng.uniform(0, 1, (n, 4, 4)).astype(np.float32)
    smooth = _UP @ coarse @ _UP.T
    lift = rng.uniform(0.1, 0.65, (n, 1, 1)) * (0.4 + 0.6 * rng.random((n, 1, 1)) * smooth)
    contrast = rng.uniform(0.35, 1.0, (n, 1, 1))
    return (lift + (1 - lift) * contrast * x).astype(np.float32)


def noise(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sensor noise (Gaussian), dead and hot pixels (salt and pepper) and pixel jitter
    (a shaky or interlaced frame)."""
    n = len(x)
    kind = rng.integers(0, 3, n)
    out = x.copy()
    g = kind == 0
    out[g] += rng.normal(0, 1, out[g].shape) * rng.uniform(0.03, 0.3, (int(g.sum()), 1, 1))
    s = kind == 1
    p = rng.uniform(0.02, 0.2, (int(s.sum()), 1, 1))
    u = rng.random(out[s].shape)
    sp = out[s]
    sp[u < p / 2] = 0.0
    sp[u > 1 - p / 2] = 1.0
    out[s] = sp
    j = kind == 2
    if j.any():
        jy = _GRID[0] + rng.integers(-1, 2, (int(j.sum()), 28, 28))
        jx = _GRID[1] + rng.integers(-1, 2, (int(j.sum()), 28, 28))
        out[j] = _sample(x[j], jy.astype(np.float32), jx.astype(np.float32))
    return out


# (function, share of images it touches); order matters: shape first, then the scene, then
# the camera.
PIPELINE: list[tuple[Augment, float]] = [
    (warp, 0.8),
    (stroke_width, 0.3),
    (outline, 0.08),
    (erase, 0.1),
    (stray_marks, 0.15),
    (edge_bands, 0.08),
    (blur, 0.2),
    (background, 0.25),
    (noise, 0.25),
]


def augment(x: np.ndarray, rng: np.random.Generator,
            pipeline: Sequence[tuple[Augment, float]] = PIPELINE) -> np.ndarray:
    """Apply each step of `pipeline` to its share of the batch; returns a new array."""
    out = np.asarray(x, np.float32).copy()
    for fn, share in pipeline:
        picked = np.flatnonzero(rng.random(len(out)) < share)
        if len(picked):
            out[picked] = fn(out[picked], rng)
    return np.clip(out, 0.0, 1.0)
