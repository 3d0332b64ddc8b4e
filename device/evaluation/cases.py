"""The failure classes met in the field, generated with their truth (MNIST *test* digits on
frames of this module's own making: not train/pages.py, not synth.py's styles).

  white_on_black   a drawing app's black 280x280 canvas, white strokes 5-10 px wide
  frame_filling    one digit filling the frame, a charcoal stroke a fifth of it wide, on grain
  small_number     a 4-6 digit number 20-40 px tall on a 1600-2400 px page photographed whole
  thin_faint       a 1 px pencil line, faint, in a 640x480 frame
  page_marks       a number beside marks that are not digits: a sum with + - x =, a box around
                   it, ruled or squared paper, an underline (the marks must never be read)
  shadow_empty     an empty page under a hard shadow: "no digit"
  table            numbers in a table on a page photographed whole: 2-4 rows of 3-7 digits
                   25-60 px tall, ruled as a grid in half the cases (the writing touching
                   its rules), in plain rows in the others; read row by row

`mnist-edge robustness --cases` and bench/localiser_ab.py read each class with the same route
as `classify` (multi for numbers) and count the exact answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CLASSES = ("white_on_black", "frame_filling", "small_number", "thin_faint", "page_marks",
           "shadow_empty", "table")
MULTI = {"small_number", "page_marks", "table"}
SEED = 31337


@dataclass(frozen=True)
class Case:
    kind: str
    image: np.ndarray  # uint8 grey
    label: str  # the digits, in reading order; "" for no digit


def _glyph(digit: np.ndarray, h: int, width: float) -> np.ndarray:
    """An MNIST digit as a pen stroke `h` px tall and about `width` px wide, coverage [0, 1].
    A pen thinner than the digit's own stroke draws its skeleton, widened to the pen (eroding
    the stroke instead broke it into fragments: the digit was no longer there to read)."""
    ys, xs = np.nonzero(digit > 60)
    d = digit[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    w = max(2, round(h * d.shape[1] / d.shape[0]))
    a = np.asarray(Image.fromarray(d).resize((w, h), Image.Resampling.BICUBIC), np.float32) / 255
    core = Image.fromarray(((a > 0.5) * 255).astype(np.uint8))
    natural = h / 28 * 2.5  # MNIST's stroke at this size
    if width < natural:
        core = Image.fromarray((skeleton(np.asarray(core) > 0) * 255).astype(np.uint8))
        if width >= 2:
            core = core.filter(ImageFilter.MaxFilter(int(width) | 1))
    elif width > natural * 1.3:
        core = core.filter(ImageFilter.MaxFilter(int(width - natural) | 1))
    return np.asarray(core.filter(ImageFilter.GaussianBlur(0.6)), np.float32) / 255


def skeleton(mask: np.ndarray) -> np.ndarray:
    """Zhang and Suen's thinning (1984): the one-pixel-wide, still connected middle line of
    a boolean mask."""
    img = np.pad(mask.astype(np.uint8), 1)
    while True:
        changed = False
        for step in (0, 1):
            c = img[1:-1, 1:-1]
            p2, p3, p4 = img[:-2, 1:-1], img[:-2, 2:], img[1:-1, 2:]
            p5, p6, p7 = img[2:, 2:], img[2:, 1:-1], img[2:, :-2]
            p8, p9 = img[1:-1, :-2], img[:-2, :-2]
            ring = [p2, p3, p4, p5, p6, p7, p8, p9, p2]
            count = sum(ring[:8])
            turns = sum(((ring[i] == 0) & (ring[i + 1] == 1)).astype(np.uint8) for i in range(8))
            if step == 0:
                open_side = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
            else:
                open_side = (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
            drop = (c == 1) & (count >= 2) & (count <= 6) & (turns == 1) & open_side
            if drop.any():
                c[drop] = 0
                changed = True
        if not changed:
            return img[1:-1, 1:-1].astype(bool)


def draw_operator(draw: ImageDraw.ImageDraw, op: str, c: int, m: int, h: int, width: int) -> None:
    """One of `+ - x =` centred at (c, m), beside digits `h` px tall, in a pen `width` wide."""
    line = lambda x0, y0, x1, y1: draw.line([(c + x0, m + y0), (c + x1, m + y1)],  # noqa: E731
                                            fill=255, width=width)
    if op in "+-":
        line(-h // 4, 0, h // 4, 0)
    if op == "+":
        line(0, -h // 4, 0, h // 4)
    if op == "x":
        line(-h // 5, -h // 5, h // 5, h // 5)
        line(-h // 5, h // 5, h // 5, -h // 5)
    if op == "=":
        line(-h // 4, -h // 8, h // 4, -h // 8)
        line(-h // 4, h // 8, h // 4, h // 8)


def _paper(rng: np.random.Generator, h: int, w: int, level: float) -> np.ndarray:
    noise = rng.normal(0, 0.015, (h, w)).astype(np.float32)
    return np.clip(level + noise, 0, 1)


def _stamp(canvas: np.ndarray, glyph: np.ndarray, x: int, y: int) -> None:
    gh, gw = glyph.shape
    h, w = canvas.shape
    gh, gw = min(gh, h - y), min(gw, w - x)
    canvas[y:y + gh, x:x + gw] = np.maximum(canvas[y:y + gh, x:x + gw], glyph[:gh, :gw])


def _u8(a: np.ndarray) -> np.ndarray:
    return np.clip(np.round(a * 255), 0, 255).astype(np.uint8)


def _row(rng, digits, labels, canvas, x, y, h, width) -> tuple[str, int]:
    text = ""
    for _ in range(int(rng.integers(4, 7))):
        i = int(rng.integers(len(digits)))
        g = _glyph(digits[i], h, width)
        _stamp(canvas, g, x, y + int(rng.normal(0, h * 0.04)))
        x += g.shape[1] + int(h * rng.uniform(0.2, 0.5))
        text += str(int(labels[i]))
    return text, x


def make(kind: str, digits: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> Case:
    i = int(rng.integers(len(digits)))
    if kind == "white_on_black":
        canvas = np.zeros((280, 280), np.float32)
        h = int(rng.uniform(150, 240))
        g = _glyph(digits[i], h, rng.uniform(5, 10))
        _stamp(canvas, g, int(rng.uniform(10, max(11, 270 - g.shape[1]))), (280 - h) // 2)
        return Case(kind, _u8(canvas), str(int(labels[i])))
    if kind == "frame_filling":
        s = int(rng.uniform(240, 480))
        h = int(s * rng.uniform(0.8, 0.95))
        g = _glyph(digits[i], h, s * rng.uniform(0.12, 0.2))
        paper = _paper(rng, s, s, rng.uniform(0.7, 0.9))
        grain = np.asarray(Image.fromarray(rng.normal(0, 0.06, (s // 8, s // 8)).astype(np.float32),
                                           mode="F").resize((s, s), Image.Resampling.BICUBIC))
        cover = np.zeros((s, s), np.float32)
        _stamp(cover, g, max(0, (s - g.shape[1]) // 2), (s - h) // 2)
        img = (paper + grain) * (1 - 0.8 * cover)
        return Case(kind, _u8(img), str(int(labels[i])))
    if kind == "small_number":
        H = int(rng.uniform(1600, 2400))
        W = int(H * rng.uniform(0.7, 1.4))
        cover = np.zeros((H, W), np.float32)
        h = int(rng.uniform(20, 40))
        x, y = int(rng.uniform(0.1, 0.6) * W), int(rng.uniform(0.1, 0.8) * H)
        text, _ = _row(rng, digits, labels, cover, x, y, h, rng.uniform(2, 4))
        paper = _paper(rng, H, W, rng.uniform(0.7, 0.92))
        img = paper * (1 - 0.75 * cover)
        return Case(kind, _u8(img), text)
    if kind == "thin_faint":
        cover = np.zeros((480, 640), np.float32)
        h = int(rng.uniform(100, 260))
        g = _glyph(digits[i], h, 1.0)
        _stamp(cover, g, int(rng.uniform(100, 500 - g.shape[1] * 0.5)), int((480 - h) / 2))
        img = _paper(rng, 480, 640, rng.uniform(0.75, 0.9)) * (1 - rng.uniform(0.25, 0.4) * cover)
        return Case(kind, _u8(img), str(int(labels[i])))
    if kind == "page_marks":
        H, W = 480, 800
        cover = np.zeros((H, W), np.float32)
        img = Image.new("L", (W, H), 0)
        draw = ImageDraw.Draw(img)
        h = int(rng.uniform(50, 90))
        x, y, text = 40, int(rng.uniform(80, H - 80 - h)), ""
        width = int(rng.uniform(3, 7))
        for n in range(int(rng.integers(2, 4))):
            j = int(rng.integers(len(digits)))
            g = _glyph(digits[j], h, width)
            _stamp(cover, g, x, y)
            x += g.shape[1] + h // 3
            text += str(int(labels[j]))
            if n < 2:  # an operator between the digits
                draw_operator(draw, "+-x="[int(rng.integers(4))], x + h // 4, y + h // 2, h, width)
                x += h // 2 + h // 3
        if rng.random() < 0.5:  # a box around the number
            draw.rectangle([20, y - h // 3, x + 10, y + h + h // 3], outline=255, width=width)
        else:  # an underline
            draw.line([(30, y + h + h // 4), (x, y + h + h // 4)], fill=255, width=width)
        cover = np.maximum(cover, np.asarray(img, np.float32) / 255)
        paper = _paper(rng, H, W, rng.uniform(0.75, 0.92))
        gap = int(rng.uniform(25, 40))
        paper[int(rng.integers(gap))::gap] *= 0.75  # ruled paper
        if rng.random() < 0.5:
            paper[:, int(rng.integers(gap))::gap] *= 0.75  # squared
        return Case(kind, _u8(paper * (1 - 0.8 * cover)), text)
    if kind == "shadow_empty":
        H, W = 480, 640
        ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
        a = rng.uniform(0, 2 * np.pi)
        side = np.cos(a) * (xs / W - 0.5) + np.sin(a) * (ys / H - 0.5) - rng.uniform(-0.3, 0.3)
        paper = _paper(rng, H, W, rng.uniform(0.7, 0.92))
        img = paper * (1 - rng.uniform(0.35, 0.6) / (1 + np.exp(-side / rng.uniform(0.002, 0.01))))
        return Case(kind, _u8(img), "")
    if kind == "table":
        return _table(digits, labels, rng)
    raise ValueError(f"unknown case {kind!r}")


def _table(digits: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> Case:
    H = int(rng.uniform(900, 1800))
    W = int(H * rng.uniform(0.8, 1.4))
    h, width = int(rng.uniform(25, 60)), rng.uniform(2, 5)
    cell_w, cell_h = int(h * rng.uniform(1.1, 1.6)), int(h * rng.uniform(1.5, 2.2))
    x0, y0 = int(rng.uniform(0.05, 0.3) * W), int(rng.uniform(0.05, 0.3) * H)
    n_rows, n_cols = int(rng.integers(2, 5)), int(rng.integers(3, 8))
    cover = np.zeros((H, W), np.float32)
    text = ""
    for r in range(n_rows):
        for c in range(n_cols):
            i = int(rng.integers(len(digits)))
            g = _glyph(digits[i], h, width)
            _stamp(cover, g, x0 + c * cell_w + (cell_w - g.shape[1]) // 2,
                   y0 + r * cell_h + (cell_h - h) // 2)
            text += str(int(labels[i]))
    if rng.random() < 0.5:  # a grid of rules, 1-4 px
        rules = Image.new("L", (W, H), 0)
        draw = ImageDraw.Draw(rules)
        x1, y1, pen = x0 + n_cols * cell_w, y0 + n_rows * cell_h, int(rng.uniform(1, 5))
        for r in range(n_rows + 1):
            draw.line([(x0, y0 + r * cell_h), (x1, y0 + r * cell_h)], fill=255, width=pen)
        for c in range(n_cols + 1):
            draw.line([(x0 + c * cell_w, y0), (x0 + c * cell_w, y1)], fill=255, width=pen)
        cover = np.maximum(cover, np.asarray(rules, np.float32) / 255)
    paper = _paper(rng, H, W, rng.uniform(0.7, 0.92))
    return Case("table", _u8(paper * (1 - 0.8 * cover)), text)


def generate(digits: np.ndarray, labels: np.ndarray, per_class: int,
             seed: int = SEED) -> Iterator[Case]:
    for k, kind in enumerate(CLASSES):
        rng = np.random.default_rng([seed, k])
        for _ in range(per_class):
            yield make(kind, digits, labels, rng)
