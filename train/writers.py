"""Other writers' digits for the robust recipe, generated here (never MNIST test, MNIST-C or
real photos): handwriting fonts with open licences (fonts/FONTS.md, installed by
`make fonts`), and procedural pen strokes for the shapes MNIST's American writers rarely
make. Every glyph goes through the device's own crop normalisation (stroke width, 20 px
box, centre of mass), so it reaches the model as the device would cut it.

Procedural shapes, each standing for a way people write:
  one_flag_foot  a European 1: a flag at the top, often a foot at the bottom
  seven_crossed  a 7 with a bar across its stem
  four_closed    a 4 whose top is closed (a triangle), and the open 4 with a gap at the top
  nine_straight  a 9 whose tail is a straight stroke down
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mnist_edge.device.reading import stages
from mnist_edge.device.reading.params import DEFAULT

FONTS_DIR = Path(__file__).resolve().parent.parent / "fonts" / "node_modules" / "@fontsource"
CANVAS = 96  # glyphs are drawn this large, then normalised to 28x28 as the device does


def font_files(folder: Path = FONTS_DIR) -> list[Path]:
    """Every latin weight of every installed family, sorted (a fixed order: reproducible)."""
    files = sorted(folder.glob("*/files/*-latin-[0-9]*-normal.woff"))
    if not files:
        raise FileNotFoundError(f"no handwriting fonts under {folder}: run `make fonts` "
                                "(npm install in fonts/)")
    return files


def _normalised(ink: np.ndarray) -> np.ndarray | None:
    """A big float glyph (white on black) as the device cuts a digit: tight box, stroke
    width, 20 px, centre of mass."""
    ys, xs = np.nonzero(ink > 0.05)
    if len(ys) == 0:
        return None
    ink = ink[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    ink, _, _ = stages.normalise_stroke(ink, DEFAULT)
    return stages.fit_and_centre(ink)


def font_digits(count: int, rng: np.random.Generator,
                files: list[Path] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`count` digits in the fonts, rotated and slanted a little: uint8 (N,28,28), labels."""
    files = files or font_files()
    fonts = [ImageFont.truetype(str(f), CANVAS * 2 // 3) for f in files]
    out: list[np.ndarray] = []
    labels: list[int] = []
    while len(out) < count:
        digit = int(rng.integers(10))
        font = fonts[int(rng.integers(len(fonts)))]
        img = Image.new("L", (CANVAS * 2, CANVAS * 2), 0)
        ImageDraw.Draw(img).text((CANVAS // 2, CANVAS // 4), str(digit), fill=255, font=font)
        img = img.rotate(float(rng.normal(0, 6)), resample=Image.Resampling.BILINEAR)
        shear = float(rng.normal(0, 0.12))
        img = img.transform(img.size, Image.Transform.AFFINE, (1, shear, -shear * CANVAS, 0, 1, 0),
                            resample=Image.Resampling.BILINEAR)
        pixels = _normalised(np.asarray(img, np.float32) / 255)
        if pixels is not None:
            out.append(pixels)
            labels.append(digit)
    return np.array(out, np.uint8), np.array(labels, np.uint8)


def _jitter(points: list[tuple[float, float]], rng: np.random.Generator,
            amount: float = 3.0) -> list[tuple[float, float]]:
    return [(x + float(rng.normal(0, amount)), y + float(rng.normal(0, amount))) for x, y in points]


def _one(rng: np.random.Generator) -> list[list[tuple[float, float]]]:
    top, bottom = 12 + rng.uniform(-4, 4), 84 + rng.uniform(-4, 4)
    x = 48 + rng.uniform(-6, 6)
    strokes = [[(x - rng.uniform(10, 22), top + rng.uniform(10, 22)), (x, top), (x, bottom)]]
    if rng.random() < 0.6:  # the foot
        half = rng.uniform(8, 16)
        strokes.append([(x - half, bottom), (x + half, bottom)])
    return strokes


def _seven(rng: np.random.Generator) -> list[list[tuple[float, float]]]:
    left, right, top, bottom = 22, 74, 14, 86
    foot = rng.uniform(32, 72)  # the stem: slanted far left (American) to upright (European)
    stem = [(left, top + rng.uniform(0, 8)), (right, top), (foot, bottom)]
    mid = (top + bottom) / 2
    at = right + (foot - right) * (mid - top) / (bottom - top)
    return [stem, [(at - rng.uniform(12, 20), mid), (at + rng.uniform(10, 18), mid)]]


def _four(rng: np.random.Generator) -> list[list[tuple[float, float]]]:
    stem_x, top, bottom, bar = 60 + rng.uniform(-5, 5), 12, 86, 60 + rng.uniform(-6, 6)
    if rng.random() < 0.6:  # closed: a triangle on the stem
        return [[(stem_x, bottom), (stem_x, top), (18, bar), (80, bar)]]
    return [[(22, top + 4), (20, bar), (80, bar)], [(stem_x, top), (stem_x, bottom)]]


def _nine(rng: np.random.Generator) -> list[list[tuple[float, float]]]:
    cx, cy, r = 46, 34, 20 + rng.uniform(-3, 4)
    angles = np.linspace(0, 2 * np.pi, 24)
    loop = [(cx + r * np.cos(a), cy + r * np.sin(a)) for a in angles]
    tail = [(cx + r, cy), (cx + r + rng.uniform(-6, 2), 88)]
    return [loop, tail]


SHAPES = {1: _one, 7: _seven, 4: _four, 9: _nine}


def stroke_digits(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`count` procedural digits (1, 4, 7, 9 in the shapes above), pen widths 2-10 px on a
    96 px canvas, shaky: uint8 (N,28,28) and labels."""
    out: list[np.ndarray] = []
    labels: list[int] = []
    digits = sorted(SHAPES)
    while len(out) < count:
        digit = digits[int(rng.integers(len(digits)))]
        img = Image.new("L", (CANVAS, CANVAS), 0)
        draw = ImageDraw.Draw(img)
        width = int(rng.integers(2, 11))
        for stroke in SHAPES[digit](rng):
            draw.line(_jitter(stroke, rng), fill=255, width=width, joint="curve")
        pixels = _normalised(np.asarray(img, np.float32) / 255)
        if pixels is not None:
            out.append(pixels)
            labels.append(digit)
    return np.array(out, np.uint8), np.array(labels, np.uint8)
