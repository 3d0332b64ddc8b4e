"""The reading pipeline, top to bottom: from a decoded image to the 28x28 model inputs.

    grey -> grid -> sheet -> polarity -> background / paper -> ink mask
         -> components and segmentation -> crop and normalise (stroke, size, centre of mass)

With Params.localiser "learned" the first steps are the localiser's (device/reading/
localise.py): grey -> grid -> the model's map of digit ink -> regions; each region is then cut
from the full-resolution frame and read by the steps above on its own, so its background,
threshold and stroke width are its own, and a small number on a big page gets the grid's
whole resolution. "hybrid" (the default) is chosen in decision.read, which calls this with
"classical" first and "learned" only when that reading settles nothing; cut itself reads a
"hybrid" params as classical.

Ink is located on a small analysis grid (longer side <= Params.grid); each digit is then cut
from the full-resolution grey image, so a camera frame costs about as much as its grid.
The model and the decision come after (device/reading/decision.py).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from . import localise, stages
from .params import DEFAULT, SIZE, Params
from .stages import Blob
from .trace import Trace


@dataclass(frozen=True)
class Digit:
    pixels: np.ndarray  # uint8 (28, 28), white on black: the model's input
    bbox: tuple[int, int, int, int]  # x, y, width, height in the input image
    row: int = 0  # with multi: the line of writing, counted from the top


def cut(image: np.ndarray, multi: bool = False, params: Params = DEFAULT,
        trace: Trace | None = None, dark: bool | None = None,
        allow: np.ndarray | None = None, table: bool = False) -> list[Digit]:
    """The digit (with multi: every digit, lines from the top, each left to right) in an
    image: float (H, W) in [0, 1], or a uint8 grey or RGB frame. [] when there is none.
    `dark` forces the polarity (True: dark ink on light paper); `allow` (the localiser's map
    of digit ink, any size, stretched over the image) keeps ink only where it is at least
    Params.locate_floor. `table`: the image is a table's box (stages.ruled), its rules
    crossing it both ways."""
    p = params
    g = stages.grey(image)
    if trace is not None:
        trace.add("grey", g, shape=list(g.shape), params=p.version())
    if g.shape == (SIZE, SIZE) and not multi:
        return _small(g, dark, p, trace)
    if p.localiser == "learned":
        return _cut_regions(g, multi, p, trace, dark)
    grid, factor = stages.to_grid(g, p)
    g, grid, ox, oy = _on_sheet(g, grid, factor, dark, p, trace)
    if dark is None:
        dark = stages.dark_on_light(grid, p)
    grid = stages.ink_grid(g, grid, factor, dark)
    ink, maps = stages.ink_of(grid, dark, p, table)
    mask, contrast, threshold = stages.ink_mask(ink, p)
    if mask is not None and allow is not None:  # ink only where the localiser sees digits
        mask &= _resized(allow.astype(np.float32), mask.shape) >= p.locate_floor
    if trace is not None:
        trace.add("polarity", dark_on_light=dark, median=round(stages.median(grid), 3))
        trace.add("ink", ink, contrast=round(contrast, 3), threshold=round(threshold, 3))
    if mask is None:
        if trace is not None:
            trace.add("mask", found=False, why="too little contrast")
        return []
    blobs, dropped = stages.marks(mask, p)
    if trace is not None:
        trace.add("mask", mask, found=bool(blobs), blobs=len(blobs), set_aside=dropped)
    if not blobs:
        return []
    tables = _tables(mask, blobs, multi, p)
    digits = [d for t in tables
              for d in _read_part(g, _full(t, factor, g.shape), p, trace, dark, table=True)]
    blobs = [b for b in blobs if not any(stages.encloses(t, b) for t in tables)]
    if blobs:
        crop = functools.partial(_crop, g, factor=factor, maps=maps, dark=dark,
                                 threshold=threshold, p=p, trace=trace)
        digits += _read_blobs(g, blobs, mask, factor, crop, multi, p, trace, dark)
    return moved(in_lines(digits, p) if tables else digits, ox, oy)


def _tables(mask: np.ndarray, blobs: list[Blob], multi: bool, p: Params) -> list[Blob]:
    """With multi: the tables and boxes with writing touching their rules (stages.ruled),
    each to be read on its own; one filling the whole grid is read as it is."""
    if not multi:
        return []
    return [t for t in stages.ruled(mask, blobs, p) if (t.width, t.height) != mask.shape[::-1]]


def _read_blobs(g: np.ndarray, blobs: list[Blob], mask: np.ndarray, factor: int,
                crop: functools.partial[np.ndarray | None], multi: bool, p: Params,
                trace: Trace | None, dark: bool) -> list[Digit]:
    """The digits of the marks on the grid: in lines (with multi), each cut by `crop`; or,
    when the writing is small for the grid, those of its region read again, finer."""
    finer = _finer(blobs, mask.shape, factor, multi, p)
    if finer is not None:  # writing small for the grid: read its region again, finer
        return _read_part(g, _full(finer, factor, g.shape), p, trace, dark)
    rows = _rows(blobs, mask, multi, p)
    if trace is not None:
        trace.add("segment", rows=[len(r) for r in rows])
    return [Digit(pixels, _full(b, factor, g.shape), number)
            for number, row in enumerate(rows) for b in row if (pixels := crop(b)) is not None]


def _on_sheet(g: np.ndarray, grid: np.ndarray, factor: int, dark: bool | None, p: Params,
              trace: Trace | None) -> tuple[np.ndarray, np.ndarray, int, int]:
    """The image and its grid cut to the sheet of paper on a darker desk, if one is found
    (polarity not forced), and where the cut starts in the image."""
    region = stages.find_sheet(grid, p) if dark is None else None
    if trace is not None:
        trace.add("grid", grid, factor=factor)
        trace.add("sheet", found=region is not None,
                  box=None if region is None else list(_full(region, factor, g.shape)))
    if region is None:
        return g, grid, 0, 0
    grid = grid[region.y0:region.y1, region.x0:region.x1]
    ox, oy = region.x0 * factor, region.y0 * factor
    return g[oy:oy + grid.shape[0] * factor, ox:ox + grid.shape[1] * factor], grid, ox, oy


def _finer(blobs: list[Blob], shape: tuple[int, int], factor: int, multi: bool,
           p: Params) -> Blob | None:
    """With multi, on a reduced grid: when even the tallest mark is under p.fine_cells cells
    (a number written small on a big page: its digits merge on the grid), the grid box
    around the marks, grown by p.fine_margin of that height up and down and four times
    that sideways (a number goes on sideways); None when there is no such box at most
    p.fine_area of the grid (no finer reading would gain: scattered marks)."""
    if not multi or factor == 1:
        return None
    tall = max(b.height for b in blobs)
    if tall >= p.fine_cells:
        return None
    m = max(1, round(p.fine_margin * tall))
    x0, y0 = min(b.x0 for b in blobs) - 4 * m, min(b.y0 for b in blobs) - m
    x1, y1 = max(b.x1 for b in blobs) + 4 * m, max(b.y1 for b in blobs) + m
    box = Blob(max(0, x0), max(0, y0), min(shape[1], x1), min(shape[0], y1), 0)
    if box.width * box.height > p.fine_area * shape[0] * shape[1]:
        return None
    return box


def _read_part(g: np.ndarray, box: tuple[int, int, int, int], p: Params, trace: Trace | None,
               dark: bool, table: bool = False) -> list[Digit]:
    """With multi, the digits of a region of `g` (x, y, width, height) read on their own
    grid, their boxes in the pixels of `g`; `table`: the region is a ruled box (traced as
    "ruled", else "finer", with the box in those pixels)."""
    x0, y0, w, h = box
    if trace is not None:
        trace.add("ruled" if table else "finer", box=[x0, y0, w, h])
    return moved(cut(g[y0:y0 + h, x0:x0 + w], True, p, trace, dark, table=table), x0, y0)


def moved(digits: list[Digit], dx: int, dy: int) -> list[Digit]:
    """The digits of a part of a frame, their boxes in the frame (the part starts at dx, dy)."""
    if dx == dy == 0:
        return digits
    return [replace(d, bbox=(d.bbox[0] + dx, d.bbox[1] + dy, d.bbox[2], d.bbox[3])) for d in digits]


def _rows(blobs: list[stages.Blob], mask: np.ndarray, multi: bool, p: Params) -> list[list[stages.Blob]]:
    """With multi: the digits of each line of writing, marks much smaller than the typical
    digit set aside; else the one main digit."""
    if not multi:
        return [[stages.main_digit(blobs, p)]]
    lines = stages.lines_of_writing(stages.join_strokes(blobs, p), p)
    rows = [stages.digits_in_line(line, mask, p) for line in lines]
    typical = float(np.median([b.height for row in rows for b in row]))
    rows = [[b for b in row if b.height >= p.small_mark * typical] for row in rows]
    return [row for row in rows if row]


def _cut_regions(g: np.ndarray, multi: bool, p: Params, trace: Trace | None,
                 dark: bool | None) -> list[Digit]:
    """The learned route: the localiser's regions, each read on its own at its own scale
    (with multi every region, else the one the map is surest of), digits in lines from the
    top, each left to right."""
    if dark is None:  # a sheet on a darker desk: its digits are read on it alone
        grid, gf = stages.to_grid(g, p)
        sheet = stages.find_sheet(grid, p)
        if sheet is not None:
            x0, y0, w, h = _full(sheet, gf, g.shape)
            on_sheet = _cut_regions(g[y0:y0 + h, x0:x0 + w], multi, p, trace, True)
            return moved(on_sheet, x0, y0)
    x, factor, dark = localise.model_input(g, p, dark)
    heat = localise.load().heat(x)
    grid_shape = (g.shape[0] // factor, g.shape[1] // factor)
    boxes = localise.regions(heat, grid_shape, p)

    if trace is not None:
        trace.add("localise", np.kron(heat, np.ones((localise.STRIDE, localise.STRIDE))),
                  dark_on_light=dark, factor=factor,
                  regions=[list(_full(b, factor, g.shape)) for b in boxes])
    if not boxes:
        return []
    if not multi:
        boxes = [max(boxes, key=lambda b: float(localise.cells(heat, b).sum()))]
    local = in_region(p)
    found: list[Digit] = []
    for b in boxes:
        x0, y0, w, h = _full(b, factor, g.shape)
        allow = localise.cells(heat, b)
        found += moved(cut(g[y0:y0 + h, x0:x0 + w], multi, local, trace, dark, allow), x0, y0)
    return in_lines(found, p) if multi else found


def in_lines(found: list[Digit], p: Params) -> list[Digit]:
    """Digits read in parts of a frame, in its lines of writing from the top, each left to
    right."""
    if len(found) < 2:
        return found
    blobs = [Blob(x, y, x + w, y + h, w * h) for x, y, w, h in (d.bbox for d in found)]
    index = {id(b): d for b, d in zip(blobs, found, strict=True)}
    rows = stages.lines_of_writing(blobs, p)
    return [replace(index[id(b)], row=n) for n, row in enumerate(rows)
            for b in sorted(row, key=lambda b: b.x0)]


def in_region(p: Params) -> Params:
    """How a region the localiser found is read: by the classical stages, with the paper
    map's window p.region_window of the region (not of the frame)."""
    return replace(p, localiser="classical", paper_window=p.region_window)


def _full(b: Blob, factor: int, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """A grid box in full-resolution pixels (x, y, width, height)."""
    x0, y0 = b.x0 * factor, b.y0 * factor
    x1, y1 = min(shape[1], b.x1 * factor), min(shape[0], b.y1 * factor)
    return x0, y0, x1 - x0, y1 - y0


def _resized(m: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if m.shape == shape:
        return m
    img = Image.fromarray(np.ascontiguousarray(m, np.float32), mode="F")
    return np.asarray(img.resize((shape[1], shape[0]), Image.Resampling.BILINEAR))


def _crop(g: np.ndarray, b: Blob, factor: int, maps: dict[str, np.ndarray], dark: bool,
          threshold: float, p: Params, trace: Trace | None) -> np.ndarray | None:
    """One digit cut from the full-resolution grey image (a grid cell of margin), reduced
    to at most p.crop_side, with the same background maps as the grid, stretched,
    stroke-normalised, fitted to 20 px and centred."""
    gb = Blob(max(0, b.x0 - 1), max(0, b.y0 - 1), b.x1 + 1, b.y1 + 1, b.area)
    x0, y0, w, h = _full(gb, factor, g.shape)
    img = Image.fromarray(np.ascontiguousarray(g[y0:y0 + h, x0:x0 + w]))
    r = max(1, -(-max(w, h) // p.crop_side))
    if r > 1:
        img = img.reduce(r)
    crop = np.asarray(img, np.float32) * (1 / 255)
    shape = crop.shape
    region = (slice(gb.y0, gb.y1), slice(gb.x0, gb.x1))
    if dark:
        paper = _resized(maps["paper"][region], shape)
        rows = _resized(maps["rows"][region[0]], (shape[0], 1))
        cols = _resized(maps["cols"][:, region[1]], (1, shape[1]))
        ink = np.maximum(np.clip(1.0 - crop / paper, 0.0, 1.0) - rows - cols, 0.0)
    else:
        ink = np.maximum(crop - _resized(maps["ground"][region], shape), 0.0)
    ink = stretched(ink, threshold, p)
    if ink is None:
        return None
    ys, xs = np.nonzero(ink)
    if len(ys) == 0:
        return None
    ink = ink[ys.min():ys.max() + 1, xs.min():xs.max() + 1]  # tight around the ink
    ink, width, steps = stages.normalise_stroke(ink, p)
    pixels = stages.fit_and_centre(ink)
    if trace is not None:
        trace.add("crop", pixels, box=[x0, y0, w, h], stroke_width=width, stroke_steps=steps)
    return pixels


def stretched(ink: np.ndarray, threshold: float, p: Params) -> np.ndarray | None:
    """A crop's ink over its own top (0..1), kept down to p.crop_floor of the grid mask's
    threshold; None when it holds no ink."""
    top = stages.robust_top(ink)
    if top <= 0:
        return None
    ink = np.clip(ink / top, 0.0, 1.0)
    return np.where(ink >= p.crop_floor * threshold, ink, 0.0).astype(np.float32)


def _small(g: np.ndarray, dark: bool | None, p: Params, trace: Trace | None) -> list[Digit]:
    """A 28x28 input: an MNIST-like array passes through; dark on light is inverted."""
    if dark is None:
        dark = not stages.looks_like_mnist(g) and float(np.median(g)) > 127
    pixels = 255 - g if dark else g
    if trace is not None:
        trace.add("crop", pixels, box=[0, 0, SIZE, SIZE], passthrough=True)
    if int(pixels.max()) - int(np.median(pixels)) < p.min_contrast * 255:
        return []
    return [Digit(np.ascontiguousarray(pixels), (0, 0, SIZE, SIZE))]


def doubt_polarity(image: np.ndarray, params: Params = DEFAULT) -> bool:
    """True for a frame read as light marks on a dark ground that may be paper mostly in
    shadow: darker than mid-grey, with contrast, at least p.lit_share of it lit by areas
    wider than a stroke (a small bright spot is a lamp), and no sheet standing out. It
    deserves a second reading as dark ink on paper (decision.py takes only a sure digit)."""
    p = params
    g = stages.grey(image)
    if g.shape == (SIZE, SIZE):
        return False
    grid, _ = stages.to_grid(g, p)
    if stages.dark_on_light(grid, p) or stages.find_sheet(grid, p) is not None:
        return False
    if stages.robust_top(grid) - stages.median(grid) < p.min_contrast:
        return False
    lit = stages.ground_map(grid, p) > stages.otsu(grid)  # bright areas wider than strokes
    return float(lit.mean()) >= p.lit_share
