"""Generated pages with exact truth, for the digit localiser (train/localiser.py).

Each page is a grey frame of what the device meets, and the truth is the union of the digits'
ink, drawn by this renderer (never estimated): the localiser learns which cells of the reduced
frame hold a digit's ink, and that everything else on the page is not a digit.

What varies, each standing for something seen in the field:
  paper      plain, lamp gradient, ruled, squared, textured, a hard or soft shadow, a sheet on
             a darker desk; or a dark ground (a board, a drawing app's black canvas)
  polarity   dark ink on paper, light strokes on a dark ground (chalk, a drawing app)
  layout     nothing; one digit from 5% to 90% of the frame height, touching its edges; rows
             of digits (numbers, phone numbers, dates) from 2% of the height; digits scattered;
             a table or grid of digits between rules
  digits     MNIST *train* digits, handwriting fonts (fonts/, open licences) and procedural
             pen strokes (train/writers.py), at stroke widths from 1 px to a fifth of the frame
  not digits operators (+ - x / = and the division sign), letters, boxes around a number,
             table rules, underlines, dots: drawn with the same pens, never in the truth
  camera     focus blur, sensor noise, JPEG, low contrast (pencil), glare

Digits come from the train split only (the caller passes them); the validation pages come from
another generator (device/evaluation/synth.py), so a gain that holds here and not there is
tuning, not learning.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from . import writers

LETTERS = "ACEFHKMNPRUVWXYacefhkmnprtuvwxy"  # none that a writer's digit resembles (O, l, S, Z...)
OPERATORS = ("+", "-", "x", "/", "=", "div")


@dataclass
class Sources:
    """Where digits and other marks come from: MNIST train digits (uint8 N x 28 x 28) and the
    handwriting fonts (file paths; loaded at the sizes asked, cached)."""

    mnist: np.ndarray
    fonts: list
    _cache: dict | None = None

    def font(self, index: int, size: int) -> ImageFont.FreeTypeFont:
        if self._cache is None:
            self._cache = {}
        key = (index, size)
        if key not in self._cache:
            self._cache[key] = ImageFont.truetype(str(self.fonts[index]), size)
        return self._cache[key]


# -- marks, drawn as ink coverage in [0, 1] on their own small canvas --------------------------

def _mnist_glyph(src: Sources, rng: np.random.Generator, h: int) -> np.ndarray:
    digit = src.mnist[int(rng.integers(len(src.mnist)))]
    ys, xs = np.nonzero(digit > 40)
    digit = digit[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    w = max(1, round(h * digit.shape[1] / digit.shape[0] * rng.uniform(0.8, 1.15)))
    img = Image.fromarray(digit).resize((w, h), Image.Resampling.BICUBIC)
    a = np.asarray(img, np.float32) / 255
    return np.clip((a - 0.25) * 2.0, 0, 1)  # MNIST's soft edge made a pen's


def _font_glyph(src: Sources, rng: np.random.Generator, h: int, text: str) -> np.ndarray:
    size = max(8, int(h * 1.5))
    font = src.font(int(rng.integers(len(src.fonts))), size)
    img = Image.new("L", (size * (len(text) + 1), size * 2), 0)
    ImageDraw.Draw(img).text((size // 3, size // 3), text, fill=255, font=font)
    return _tight(np.asarray(img, np.float32) / 255, h)


def _stroke_glyph(rng: np.random.Generator, h: int) -> np.ndarray:
    digit = sorted(writers.SHAPES)[int(rng.integers(len(writers.SHAPES)))]
    img = Image.new("L", (96, 96), 0)
    draw = ImageDraw.Draw(img)
    for stroke in writers.SHAPES[digit](rng):
        draw.line(writers._jitter(stroke, rng), fill=255, width=int(rng.integers(3, 9)),
                  joint="curve")
    return _tight(np.asarray(img, np.float32) / 255, h)


def _operator(rng: np.random.Generator, h: int, which: str) -> np.ndarray:
    s = max(6, h)
    img = Image.new("L", (s, s), 0)
    d = ImageDraw.Draw(img)
    w = max(1, int(s * rng.uniform(0.06, 0.14)))
    m, c = s * 0.15, s / 2
    jit = lambda: float(rng.normal(0, s * 0.03))  # noqa: E731
    if which == "+":
        d.line([(m, c + jit()), (s - m, c + jit())], fill=255, width=w)
        d.line([(c + jit(), m), (c + jit(), s - m)], fill=255, width=w)
    elif which == "-":
        d.line([(m, c + jit()), (s - m, c + jit())], fill=255, width=w)
    elif which == "x":
        d.line([(m, m), (s - m, s - m)], fill=255, width=w)
        d.line([(m, s - m), (s - m, m)], fill=255, width=w)
    elif which == "/":
        d.line([(s * 0.7, m), (s * 0.3, s - m)], fill=255, width=w)
    elif which == "=":
        d.line([(m, c - s * 0.15), (s - m, c - s * 0.15 + jit())], fill=255, width=w)
        d.line([(m, c + s * 0.15), (s - m, c + s * 0.15 + jit())], fill=255, width=w)
    else:  # the division sign
        d.line([(m, c), (s - m, c)], fill=255, width=w)
        r = max(1, w)
        for y in (c - s * 0.25, c + s * 0.25):
            d.ellipse([c - r, y - r, c + r, y + r], fill=255)
    a = np.asarray(img, np.float32) / 255
    return a[int(s * 0.25):int(s * 0.8)] if which in "-=" else a  # no tall empty box around a dash


def _tight(a: np.ndarray, h: int) -> np.ndarray:
    ys, xs = np.nonzero(a > 0.1)
    if len(ys) == 0:
        return np.zeros((h, max(1, h // 2)), np.float32)
    a = a[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    w = max(1, round(h * a.shape[1] / a.shape[0]))
    return np.asarray(Image.fromarray(a, mode="F").resize((w, h), Image.Resampling.BILINEAR))


def _with_width(a: np.ndarray, target: float) -> np.ndarray:
    """Dilate (or erode) a glyph until its mean stroke width is about `target` px."""
    img = Image.fromarray(np.clip(a * 255, 0, 255).astype(np.uint8))
    width = _stroke_width(a)
    if width <= 0:
        return a
    if target > width * 1.3:
        k = int(min(41, max(3, round(target - width)) | 1))
        img = img.filter(ImageFilter.MaxFilter(k))
    elif target < width / 1.3 and width >= 3:
        k = int(min(15, max(3, round(width - max(target, 1))) | 1))
        thinner = img.filter(ImageFilter.MinFilter(k))
        if np.asarray(thinner).sum() > 0.15 * np.asarray(img).sum():
            img = thinner
    return np.asarray(img, np.float32) / 255


def _stroke_width(a: np.ndarray) -> float:
    m = a >= 0.5
    area = int(m.sum())
    perimeter = int((m[1:] != m[:-1]).sum() + (m[:, 1:] != m[:, :-1]).sum())
    return 2.0 * area / max(perimeter, 1) if area else 0.0


def digit_glyph(src: Sources, rng: np.random.Generator, h: int, width: float | None) -> np.ndarray:
    kind = rng.random()
    if kind < 0.5:
        a = _mnist_glyph(src, rng, h)
    elif kind < 0.88:
        a = _font_glyph(src, rng, h, str(int(rng.integers(10))))
    else:
        a = _stroke_glyph(rng, h)
    if width is not None:
        a = _with_width(a, width)
    return a


def other_glyph(src: Sources, rng: np.random.Generator, h: int, width: float | None) -> np.ndarray:
    if rng.random() < 0.6:
        a = _operator(rng, h, OPERATORS[int(rng.integers(len(OPERATORS)))])
    else:
        a = _font_glyph(src, rng, h, LETTERS[int(rng.integers(len(LETTERS)))])
    return _with_width(a, width) if width is not None else a


# -- paper -----------------------------------------------------------------------------------

def _smooth(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    coarse = rng.uniform(-1, 1, (cells, cells)).astype(np.float32)
    return np.asarray(Image.fromarray(coarse, mode="F").resize((w, h), Image.Resampling.BICUBIC))


def paper(rng: np.random.Generator, h: int, w: int, light: bool) -> np.ndarray:
    """The ground's brightness before any mark: paper (light) or a board/canvas (dark)."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    level = rng.uniform(0.55, 0.97) if light else rng.uniform(0.0, 0.3)
    a = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(a) * xs / w + np.sin(a) * ys / h
    g = level + rng.uniform(0, 0.35 if light else 0.1) * (ramp - ramp.mean()) / 2
    if rng.random() < 0.3:
        g = g + rng.uniform(0.02, 0.1) * _smooth(rng, h, w, int(rng.integers(4, 24)))
    if light and rng.random() < 0.3:  # a hard or soft shadow (a hand, the phone)
        a = rng.uniform(0, 2 * np.pi)
        side = np.cos(a) * (xs / w - 0.5) + np.sin(a) * (ys / h - 0.5) - rng.uniform(-0.35, 0.35)
        soft = rng.uniform(0.003, 0.1)
        g = g * (1 - rng.uniform(0.2, 0.65) / (1 + np.exp(-side / soft)))
    if light and rng.random() < 0.12:  # glare: a bright soft spot
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.1, 0.4) * max(h, w)
        g = g + rng.uniform(0.1, 0.3) * np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * r * r))
    return g.astype(np.float32)


def rules(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    """Ruled or squared lines (coverage), at a gap that suits the frame."""
    out = np.zeros((h, w), np.float32)
    gap = max(4, int(rng.uniform(0.04, 0.15) * h))
    width = max(1, int(round(scale * rng.uniform(0.5, 2.0))))
    ys, xs = np.arange(h), np.arange(w)
    off = int(rng.integers(gap))
    out[((ys + off) % gap) < width] = 1
    if rng.random() < 0.4:  # squared
        out[:, ((xs + off) % gap) < width] = 1
    elif rng.random() < 0.4:  # a margin line
        x0 = int(rng.uniform(0.05, 0.25) * w)
        out[:, x0:x0 + width] = 1
    return out * rng.uniform(0.25, 0.8)


# -- the page --------------------------------------------------------------------------------

@dataclass
class Page:
    grey: np.ndarray  # uint8 (H, W): the frame as the camera gives it
    truth: np.ndarray  # bool (H, W): the digits' ink
    boxes: list  # (x, y, w, h) of each digit


def _place(canvas: np.ndarray, truth: np.ndarray | None, glyph: np.ndarray, x: int, y: int,
           boxes: list | None) -> None:
    h, w = canvas.shape
    gh, gw = glyph.shape
    x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + gw), min(h, y + gh)
    if x0 >= x1 or y0 >= y1:
        return
    part = glyph[y0 - y:y1 - y, x0 - x:x1 - x]
    canvas[y0:y1, x0:x1] = np.maximum(canvas[y0:y1, x0:x1], part)
    if truth is not None:
        truth[y0:y1, x0:x1] |= part >= 0.35
        if boxes is not None and (part >= 0.35).any():
            boxes.append((x0, y0, x1 - x0, y1 - y0))


def _spot(rng: np.random.Generator, lo: float, hi: float) -> int:
    """A position between lo and hi (lo when a mark is larger than the room it has)."""
    return int(rng.uniform(lo, hi)) if hi > lo else int(lo)


def _pen_width(rng: np.random.Generator, h: int, scale: float) -> float | None:
    """A stroke width for digits `h` px tall: None keeps the glyph's own; else from a 1 px
    pencil line to a marker a fifth of the digit's height."""
    r = rng.random()
    if r < 0.35:
        return None
    if r < 0.6:
        return max(1.0, scale * rng.uniform(0.6, 1.5))  # pencil, fine pen
    return max(1.0, h * rng.uniform(0.05, 0.22))  # felt pen to marker


def _row(src, rng, canvas, truth, boxes, x, y, h, n, width, others: float, scale) -> int:
    """n digits in a row from (x, y), `others` the chance of a non-digit between two."""
    gap = h * rng.uniform(0.05, 0.5)
    slope = rng.normal(0, 0.05)
    x0 = x
    for i in range(n):
        if i and rng.random() < others:
            g = other_glyph(src, rng, max(4, int(h * rng.uniform(0.35, 0.8))), width)
            _place(canvas, None, g, int(x), int(y + (x - x0) * slope + (h - g.shape[0]) / 2), None)
            x += g.shape[1] + gap
        dh = max(4, int(h * rng.uniform(0.85, 1.15)))
        g = digit_glyph(src, rng, dh, width)
        _place(canvas, truth, g, int(x), int(y + (x - x0) * slope + rng.normal(0, h * 0.05)), boxes)
        x += g.shape[1] + gap
    return int(x)


LAYOUTS = ("empty", "single", "rows", "scattered", "table")


def render(src: Sources, rng: np.random.Generator, h: int, w: int) -> Page:
    """One page of h x w pixels."""
    light = rng.random() < 0.75
    scale = max(h, w) / 192  # pixels of this frame per analysis cell: a pen's width at least
    canvas = np.zeros((h, w), np.float32)  # marks' coverage
    truth = np.zeros((h, w), bool)
    boxes: list = []
    layout = rng.choice(LAYOUTS, p=[0.14, 0.26, 0.34, 0.14, 0.12])
    if layout != "empty":
        _LAYOUT[layout](src, rng, canvas, truth, boxes, h, w, scale)
    _stray_marks(src, rng, canvas, truth, layout == "empty", h, w, scale)
    img = _inked(rng, canvas, truth, light, h, w, scale)
    boxes = [b for b in boxes if truth[b[1]:b[1] + b[3], b[0]:b[0] + b[2]].any()]
    return Page(_camera(np.clip(img, 0, 1), rng, scale), truth, boxes)


def _single(src: Sources, rng: np.random.Generator, canvas: np.ndarray, truth: np.ndarray, boxes: list,
            h: int, w: int, scale: float) -> None:
    """One digit of any size, anywhere, touching the edges at times."""
    dh = int(h * rng.uniform(0.05, 0.95))
    g = digit_glyph(src, rng, max(6, dh), _pen_width(rng, dh, scale))
    x = _spot(rng, -0.1 * g.shape[1], w - 0.9 * g.shape[1])
    y = _spot(rng, -0.08 * g.shape[0], h - 0.92 * g.shape[0])
    _place(canvas, truth, g, x, y, boxes)


def _number_rows(src: Sources, rng: np.random.Generator, canvas: np.ndarray, truth: np.ndarray,
                 boxes: list, h: int, w: int, scale: float) -> None:
    """Rows of numbers, at times with other marks between digits, underlined or boxed."""
    dh = max(5, int(h * np.exp(rng.uniform(np.log(0.02), np.log(0.3)))))
    width = _pen_width(rng, dh, scale)
    top = float(rng.uniform(0, h * 0.3))
    others = 0.25 if rng.random() < 0.4 else 0.0
    for _ in range(int(rng.integers(1, 5))):
        n = int(rng.integers(1, 11))
        x = int(rng.uniform(0, max(1, w * 0.6)))
        end = _row(src, rng, canvas, truth, boxes, x, int(top), dh, n, width, others, scale)
        if rng.random() < 0.2:  # underline or a box around the number
            lw = max(1, int(width or scale))
            mark = np.zeros((dh + 4 * lw + 8, max(8, end - x + 8)), np.float32)
            if rng.random() < 0.5:
                mark[-lw:] = 1
            else:
                mark[:lw], mark[-lw:], mark[:, :lw], mark[:, -lw:] = 1, 1, 1, 1
            _place(canvas, None, mark, x - 4 - lw, int(top) - 2 * lw - 4, None)
        top += dh * rng.uniform(1.4, 3.0)
        if top > h:
            break


def _scattered(src: Sources, rng: np.random.Generator, canvas: np.ndarray, truth: np.ndarray, boxes: list,
               h: int, w: int, scale: float) -> None:
    """Digits and other marks scattered over the page."""
    for _ in range(int(rng.integers(1, 7))):
        dh = max(5, int(h * rng.uniform(0.04, 0.35)))
        width = _pen_width(rng, dh, scale)
        if rng.random() < 0.3:
            g = other_glyph(src, rng, dh, width)
            _place(canvas, None, g, _spot(rng, 0, w - g.shape[1]),
                   _spot(rng, 0, h - g.shape[0]), None)
        else:
            g = digit_glyph(src, rng, dh, width)
            _place(canvas, truth, g, _spot(rng, 0, w - g.shape[1]),
                   _spot(rng, 0, h - g.shape[0]), boxes)


def _table(src: Sources, rng: np.random.Generator, canvas: np.ndarray, truth: np.ndarray, boxes: list,
           h: int, w: int, scale: float) -> None:
    """A table's rules with a number or none in each cell."""
    rows, cols = int(rng.integers(2, 6)), int(rng.integers(2, 6))
    ch, cw = h / (rows + 1), w / (cols + 1)
    lw = max(1, int(scale * rng.uniform(0.5, 2)))
    oy, ox = ch / 2, cw / 2
    for r in range(rows + 1):
        canvas[int(oy + r * ch):int(oy + r * ch) + lw, int(ox):int(ox + cols * cw)] = 1
    for c in range(cols + 1):
        canvas[int(oy):int(oy + rows * ch), int(ox + c * cw):int(ox + c * cw) + lw] = 1
    dh = max(5, int(ch * rng.uniform(0.3, 0.75)))
    width = _pen_width(rng, dh, scale)
    for r in range(rows):
        for c in range(cols):
            if rng.random() < 0.8:
                n = int(rng.integers(1, 3))
                _row(src, rng, canvas, truth, boxes, int(ox + c * cw + cw * 0.15),
                     int(oy + r * ch + (ch - dh) / 2), dh, n, width, 0.0, scale)


def _stray_marks(src: Sources, rng: np.random.Generator, canvas: np.ndarray, truth: np.ndarray,
                 empty: bool, h: int, w: int, scale: float) -> None:
    """Marks that are not digits (never over one), and at times dots and specks."""
    for _ in range(int(rng.poisson(1.0 if not empty else 1.5))):
        dh = max(5, int(h * rng.uniform(0.03, 0.3)))
        g = other_glyph(src, rng, dh, _pen_width(rng, dh, scale))
        x, y = _spot(rng, 0, w - g.shape[1]), _spot(rng, 0, h - g.shape[0])
        if not truth[max(0, y):y + g.shape[0], max(0, x):x + g.shape[1]].any():
            _place(canvas, None, g, x, y, None)
    if rng.random() < 0.1:  # dots and specks
        for _ in range(int(rng.integers(1, 12))):
            r = max(1, int(scale * rng.uniform(0.5, 2.5)))
            y, x = int(rng.uniform(0, h)), int(rng.uniform(0, w))
            canvas[max(0, y - r):y + r, max(0, x - r):x + r] = np.maximum(
                canvas[max(0, y - r):y + r, max(0, x - r):x + r], rng.uniform(0.3, 1))


def _inked(rng: np.random.Generator, canvas: np.ndarray, truth: np.ndarray, light: bool,
           h: int, w: int, scale: float) -> np.ndarray:
    """The paper (or dark canvas) with the marks in ink of a random contrast; at times a
    ruled sheet, or a sheet on a darker desk (marks outside it are dropped)."""
    ground = paper(rng, h, w, light)
    if light and rng.random() < 0.3:
        ground = ground * (1 - rules(rng, h, w, scale))
    contrast = rng.uniform(0.25, 0.95) if light else rng.uniform(0.4, 1.0)
    if light:
        ink_level = ground * (1 - contrast)  # dark ink: a share of the paper's light
        if rng.random() < 0.15 and light:  # a sheet on a darker desk
            y0, x0 = int(rng.uniform(0.03, 0.25) * h), int(rng.uniform(0.03, 0.25) * w)
            y1, x1 = h - int(rng.uniform(0.03, 0.25) * h), w - int(rng.uniform(0.03, 0.25) * w)
            desk = rng.uniform(0.05, 0.45) + 0.05 * _smooth(rng, h, w, 6)
            outside = np.ones((h, w), bool)
            outside[y0:y1, x0:x1] = False
            ground = np.where(outside, desk, ground)
            canvas[outside] = 0
            truth[outside] = False
        return ground * (1 - canvas) + ink_level * canvas
    return ground + (rng.uniform(0.5, 1.0) - ground) * canvas * contrast


_LAYOUT = {"single": _single, "rows": _number_rows, "scattered": _scattered, "table": _table}


def _camera(img: np.ndarray, rng: np.random.Generator, scale: float) -> np.ndarray:
    pil = Image.fromarray(np.round(img * 255).astype(np.uint8))
    pil = pil.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 1.2) * max(1.0, scale / 2)))
    arr = np.asarray(pil, np.float32) + rng.normal(0, rng.uniform(0.5, 8), img.shape)
    pil = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if rng.random() < 0.5:
        buf = io.BytesIO()
        pil.save(buf, format="JPEG", quality=int(rng.integers(35, 95)))
        pil = Image.open(io.BytesIO(buf.getvalue()))
    return np.asarray(pil.convert("L"))


def size(rng: np.random.Generator) -> tuple[int, int]:
    """A frame's size: 192 to 768 px on the longer side (one to four pixels per analysis
    cell), portrait or landscape."""
    longer = int(192 * rng.choice([1, 1.5, 2, 3, 4], p=[0.3, 0.2, 0.25, 0.15, 0.1]))
    shorter = int(longer * rng.uniform(0.5, 1.0))
    return (shorter, longer) if rng.random() < 0.6 else (longer, shorter)
