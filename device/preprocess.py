"""Turn a real photo, scan or drawing into what the model saw in training: a 28x28 uint8
image of a white digit on black, as MNIST was made.

Steps (LeCun et al.): detect the background polarity and invert dark-on-light images;
stretch the contrast (and, under uneven light, subtract a smooth background map); threshold
to find the digit; crop it; fit its longer side to 20 px keeping the aspect ratio; paste it
into 28x28 so that its centre of mass is the centre.
A 28x28 input that already looks like MNIST passes through unchanged.

Finding blobs works on a small analysis grid (longer side <= 128 px) with run-length
connected components, so a camera frame costs a few milliseconds; the crop itself is cut
from the full-resolution image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

GRID = 128  # longer side of the analysis grid
BOX = 20  # MNIST: digits fit in 20x20 ...
SIZE = 28  # ... centred in 28x28
MIN_CONTRAST = 0.15  # digit minus background, on a 0..1 scale; below this: blank
MIN_THRESHOLD = 0.3  # after stretching, a pixel must reach this to count as ink


@dataclass(frozen=True)
class Digit:
    pixels: np.ndarray  # uint8 (28, 28), white on black
    bbox: tuple[int, int, int, int]  # x, y, width, height in the input image
    row: int = 0  # with multi: the line of writing, counted from the top


@dataclass(frozen=True)
class _Blob:
    x0: int
    y0: int
    x1: int  # exclusive
    y1: int
    area: int

    def union(self, other: _Blob) -> _Blob:
        return _Blob(min(self.x0, other.x0), min(self.y0, other.y0), max(self.x1, other.x1),
                     max(self.y1, other.y1), self.area + other.area)

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def width(self) -> int:
        return self.x1 - self.x0


def find_digits(gray: np.ndarray, multi: bool = False, _depth: int = 0,
                invert: bool | None = None) -> list[Digit]:
    """gray float (H,W) in [0,1] -> the digit (or, with multi, every digit: lines of writing
    from the top, each left to right).

    Returns [] when there is no digit-like blob (blank page, flat frame). `invert` forces
    the polarity (True: dark ink on light paper); by default the median pixel decides."""
    if gray.shape == (SIZE, SIZE) and not multi and _looks_like_mnist(gray):
        return [Digit(np.round(gray * 255).astype(np.uint8), (0, 0, SIZE, SIZE))]
    median = _background(gray)
    if invert is None:
        invert = median > 0.5  # dark digit on light paper
    if invert and _depth == 0 and gray.shape != (SIZE, SIZE):
        found = _sheet_on_desk(gray, median)
        if found is not None:
            return _on_sheet(gray, *found, multi)
    ink = _ink(gray, invert=invert)
    if ink is None:
        return []
    if gray.shape == (SIZE, SIZE) and not multi:
        # A 28x28 digit drawn dark on light: only the polarity changes.
        return [Digit(np.round(ink * 255).astype(np.uint8), (0, 0, SIZE, SIZE))]
    ink, grid, factor, blobs = _marks(ink)
    sheet = max(blobs, key=lambda b: b.area) if blobs else None
    if sheet is not None and _depth == 0 and _is_sheet(sheet, grid.shape):
        # What stands out is a sheet of paper, not strokes (a small sheet on a dark desk
        # makes the desk the majority): look for the digit on the sheet itself.
        return _on_sheet(gray, sheet, factor, multi)
    if not blobs:
        return []
    rows = [_group_digits(line) for line in _lines(blobs)] if multi else [[_main_digit(blobs)]]
    tallest = max(g.height for groups in rows for g in groups)
    digits = []
    for number, groups in enumerate(rows):
        for g in sorted(groups, key=lambda b: b.x0):
            if multi and g.height < 0.4 * tallest:  # dots, dashes, specks beside real digits
                continue
            x0, y0 = g.x0 * factor, g.y0 * factor
            x1 = min(ink.shape[1], g.x1 * factor)
            y1 = min(ink.shape[0], g.y1 * factor)
            pixels = _fit_and_centre(ink[y0:y1, x0:x1])
            if pixels is not None:
                digits.append(Digit(pixels, (int(x0), int(y0), int(x1 - x0), int(y1 - y0)), number))
    rows_found = sorted({d.row for d in digits})
    return [Digit(d.pixels, d.bbox, rows_found.index(d.row)) for d in digits]


def _on_sheet(gray: np.ndarray, sheet: _Blob, factor: int, multi: bool) -> list[Digit]:
    """The digits on a sheet of paper (its box on the analysis grid), a margin inside its
    edges, in the frame's coordinates."""
    mx, my = max(1, sheet.width // 25), max(1, sheet.height // 25)
    x0, y0 = (sheet.x0 + mx) * factor, (sheet.y0 + my) * factor
    x1, y1 = (sheet.x1 - mx) * factor, (sheet.y1 - my) * factor
    found = find_digits(gray[y0:y1, x0:x1], multi, 1)
    return [Digit(d.pixels, (d.bbox[0] + x0, d.bbox[1] + y0, d.bbox[2], d.bbox[3]), d.row)
            for d in found]


DESK = 0.6  # a frame's edge this much darker than its median pixel: a desk around a sheet


def _sheet_on_desk(gray: np.ndarray, paper: float) -> tuple[_Blob, int] | None:
    """A sheet of paper (`paper`: the frame's median pixel) that fills most of the frame, with
    a darker desk showing along the frame's edge: its box on the analysis grid (the desk
    beside it would read as ink), with the grid's factor."""
    edge = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    desk = float(np.median(edge))
    if desk > DESK * paper:
        return None
    grid, factor = _downscale(gray)
    blobs = _components(grid > (desk + paper) / 2)
    sheet = max(blobs, key=lambda b: b.area) if blobs else None
    if sheet is None or _spans(sheet, grid.shape) or not _is_sheet(sheet, grid.shape):
        return None
    return sheet, factor


def _marks(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, list[_Blob]]:
    """Ink (flattened when uneven), its analysis grid, the grid's factor, and its blobs."""
    grid, factor = _downscale(ink)
    flat = _flatten(ink, grid)
    if flat is not ink:
        ink = flat
        grid, factor = _downscale(ink)
    return ink, grid, factor, _blobs(grid)


LIT_SHARE = 0.05  # paper in shadow still shows some lit paper; a lamp in the dark does not


def shadowed_paper(gray: np.ndarray) -> bool:
    """True for a frame read as light marks on a dark ground (darker than mid-grey) that may
    be paper mostly in shadow: it has contrast, LIT_SHARE of it or more is lit (a small
    bright spot in the dark is a lamp or a reflection), and no sheet of paper stands out in
    it (a sheet on a desk is searched for the digit anyway). Such a frame deserves a second
    reading as dark ink on paper."""
    if gray.shape == (SIZE, SIZE) or _background(gray) > 0.5:
        return False
    ink = _ink(gray, invert=False)
    if ink is None:
        return False
    _, grid, _, blobs = _marks(ink)
    if float((grid >= max(MIN_THRESHOLD, _otsu(grid))).mean()) < LIT_SHARE:
        return False
    return not blobs or not _is_sheet(max(blobs, key=lambda b: b.area), grid.shape)


def second_reading(gray: np.ndarray, multi: bool = False) -> list[Digit]:
    """The digits read as dark ink on paper, for a frame `shadowed_paper` doubts; else []."""
    return find_digits(gray, multi, invert=True) if shadowed_paper(gray) else []


def _lines(blobs: list[_Blob]) -> list[list[_Blob]]:
    """Blobs in lines of writing, top to bottom: a blob joins the line whose vertical span
    it overlaps by more than half of the lower of the two heights."""
    lines: list[tuple[int, int, list[_Blob]]] = []  # (top, bottom, blobs)
    for b in sorted(blobs, key=lambda b: b.area, reverse=True):  # big strokes set the lines
        for i, (top, bottom, members) in enumerate(lines):
            overlap = min(bottom, b.y1) - max(top, b.y0)
            if overlap > 0.5 * min(b.height, bottom - top):
                lines[i] = (min(top, b.y0), max(bottom, b.y1), [*members, b])
                break
        else:
            lines.append((b.y0, b.y1, [b]))
    return [members for _, _, members in sorted(lines, key=lambda line: line[0])]


def _looks_like_mnist(gray: np.ndarray) -> bool:
    """Dark border, some bright ink: an MNIST-style 28x28 array."""
    border = np.concatenate([gray[:2].ravel(), gray[-2:].ravel(), gray[:, :2].ravel(),
                             gray[:, -2:].ravel()])
    return float(border.mean()) < 0.1 and float(gray.max()) > 0.5


def _background(gray: np.ndarray) -> float:
    """The median pixel: strokes are thin, so most pixels are paper (or board)."""
    step = max(1, max(gray.shape) // GRID)
    return float(np.median(gray[::step, ::step]))


PAPER_WINDOW = 8  # the local paper estimate's window: 1/8 of the frame's longer side


def _sliding(img: np.ndarray, k: int, op) -> np.ndarray:
    """A k x k max or min filter (separable, edges padded by repetition)."""
    pad = k // 2
    for axis in (0, 1):
        padded = np.pad(img, [(pad, k - 1 - pad) if a == axis else (0, 0) for a in (0, 1)],
                        mode="edge")
        img = op(np.lib.stride_tricks.sliding_window_view(padded, k, axis=axis), axis=-1)
    return img


SHADOW_FLOOR = 0.4  # paper in a shadow keeps at least this share of the typical paper level
MIN_PAPER_GRID = 48  # below this (on the analysis grid) strokes are too wide for the closing


def _paper(gray: np.ndarray) -> np.ndarray | None:
    """The local paper brightness on the analysis grid, or None for small images (strokes
    too wide for the window). A grey-level closing (max, then min filter) wider than any
    stroke: it erases dark strokes and keeps large shapes, a shadow's edge included."""
    grid, _ = _downscale(gray)
    if min(grid.shape) < MIN_PAPER_GRID:
        return None
    k = max(3, max(grid.shape) // PAPER_WINDOW) | 1
    return _sliding(_sliding(grid, k, np.max), k, np.min).astype(np.float32)


def _relative_to_paper(gray: np.ndarray, paper: np.ndarray) -> np.ndarray:
    """Each pixel as a share of the paper's brightness around it: a shadow or uneven light
    multiplies the paper's brightness, and dividing by the local estimate undoes that.
    Regions far darker than the paper (a desk around a sheet) are not paper: the divisor
    stops at SHADOW_FLOOR of the typical paper level, so their noise is not magnified."""
    h, w = gray.shape
    floor = SHADOW_FLOOR * float(np.median(paper))
    full = np.asarray(Image.fromarray(paper, mode="F").resize((w, h), Image.Resampling.BILINEAR))
    return np.clip(gray / np.maximum(full, max(floor, 0.05)), 0.0, 1.0).astype(np.float32)


def _ink(gray: np.ndarray, invert: bool) -> np.ndarray | None:
    """Ink as bright on black, stretched to [0,1]; None when there is too little contrast."""
    if invert:
        paper = _paper(gray)
        if paper is not None:
            gray = _relative_to_paper(gray, paper)
            gray = 1.0 - gray  # dark digit on light paper -> light on dark, like MNIST
            gray = _without_lines(gray)
        else:
            gray = 1.0 - gray
    background = _background(gray)
    top = float(gray.max())
    if _robust_top(gray) - background < MIN_CONTRAST:  # a few bright pixels are noise, not ink
        return None
    return np.clip((gray - background) / (top - background), 0.0, 1.0).astype(np.float32)


LINE_SHARE = 10  # percentile: a mark on 90% or more of a row or column is a ruled line


def _without_lines(ink: np.ndarray) -> np.ndarray:
    """Remove what crosses the whole frame (ruled, margin and grid lines): from each row and
    then each column, subtract its 10th percentile. A digit covers far less of any row or
    column, so it stays; a line that runs under it is cut out of it."""
    rows = np.percentile(ink, LINE_SHARE, axis=1, keepdims=True)
    ink = np.clip(ink - rows, 0.0, None)
    cols = np.percentile(ink, LINE_SHARE, axis=0, keepdims=True)
    return np.clip(ink - cols, 0.0, None).astype(np.float32)


def _robust_top(img: np.ndarray) -> float:
    """The brightest 2x2 block's darkest pixel: a stroke is wider than a pixel, sensor noise
    in a dim shadow mostly is not."""
    if min(img.shape) < 2:
        return float(img.max())
    pairs = np.minimum(img[:-1], img[1:])
    return float(np.minimum(pairs[:, :-1], pairs[:, 1:]).max())


FLAT_CELLS = 12  # cells across the longer side for the background map
UNEVEN = 0.12  # background spread (0..1) above which the light counts as uneven
STEP = 0.25  # a jump this large between neighbouring cells is an edge (desk, sheet), not light


def _flatten(ink: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Subtract a smooth background map when the light is uneven (a gradient across the
    page, a shadow): otherwise the dim side of the paper reads as ink and swallows the digit.

    The map is each cell's 30th percentile (mostly paper), then the minimum over its 3x3
    neighbours (so a cell inside a thick stroke takes its neighbours' paper level),
    upsampled bilinearly. Even light, and maps with sharp steps (the edge of a sheet on a
    desk, which the edge and sheet rules handle), leave the image untouched (the same
    object is returned). `grid` is `ink` on the analysis grid."""
    gh, gw = grid.shape
    cell = max(2, max(gh, gw) // FLAT_CELLS)
    ch, cw = gh // cell, gw // cell
    if ch < 3 or cw < 3:
        return ink
    blocks = grid[: ch * cell, : cw * cell].reshape(ch, cell, cw, cell).transpose(0, 2, 1, 3)
    values = blocks.reshape(ch, cw, -1)
    k = (values.shape[2] * 3) // 10  # 30th percentile, by partition (cheaper than sorting)
    level = np.partition(values, k, axis=2)[:, :, k]
    steps = max(float(np.abs(np.diff(level, axis=0)).max()),
                float(np.abs(np.diff(level, axis=1)).max()))
    if steps > STEP:
        return ink
    padded = np.pad(level, 1, mode="edge")
    level = np.min([padded[dy : dy + ch, dx : dx + cw] for dy in range(3) for dx in range(3)],
                   axis=0)
    if float(level.max() - level.min()) < UNEVEN:
        return ink
    h, w = ink.shape
    bg = np.asarray(Image.fromarray(level.astype(np.float32), mode="F").resize(
        (w, h), Image.Resampling.BILINEAR))
    flat = ink - bg
    top = float(flat.max())
    return np.clip(flat / top, 0.0, 1.0).astype(np.float32) if top > MIN_CONTRAST else ink


def _downscale(img: np.ndarray) -> tuple[np.ndarray, int]:
    """Downscale by an integer factor so the longer side is <= GRID: each cell is the mean of
    its block's mean and max, so thin strokes survive. (Reducing one axis at a time is
    several times faster in numpy than reducing axes (1, 3) together.)"""
    factor = max(1, -(-max(img.shape) // GRID))
    if factor == 1:
        return img, 1
    h, w = (img.shape[0] // factor) * factor, (img.shape[1] // factor) * factor
    if h == 0 or w == 0:
        return img, 1
    rows = img[:h, :w].reshape(h // factor, factor, w).transpose(0, 2, 1)  # (H', w, f)
    row_max, row_sum = rows.max(axis=2), rows.sum(axis=2)  # (H', w)
    cols_max = row_max.reshape(h // factor, w // factor, factor).max(axis=2)
    cols_sum = row_sum.reshape(h // factor, w // factor, factor).sum(axis=2)
    return cols_max * 0.5 + cols_sum * (0.5 / (factor * factor)), factor


def _otsu(img: np.ndarray, bins: int = 64) -> float:
    hist, edges = np.histogram(img, bins=bins, range=(0.0, 1.0))
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mean0 = m0 / np.maximum(w0, 1)
    mean1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mean0 - mean1) ** 2
    return float(edges[int(np.argmax(between)) + 1])


def _components(mask: np.ndarray) -> list[_Blob]:
    """8-connected components from row runs, joined with a small union-find."""
    runs: list[tuple[int, int, int]] = []  # (row, start, end exclusive)
    parent: list[int] = []

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    prev: list[int] = []
    padded = np.zeros(mask.shape[1] + 2, dtype=np.int8)
    for y, row in enumerate(mask):
        padded[1:-1] = row
        d = np.diff(padded)
        starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
        current = []
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
            idx = len(runs)
            runs.append((y, s, e))
            parent.append(idx)
            for j in prev:
                _, ps, pe = runs[j]
                if ps <= e and s <= pe:  # overlap, diagonal neighbours included
                    a, b = find(idx), find(j)
                    if a != b:
                        parent[a] = b
            current.append(idx)
        prev = current
    boxes: dict[int, list[int]] = {}
    for i, (y, s, e) in enumerate(runs):
        box = boxes.setdefault(find(i), [s, y, e, y + 1, 0])
        box[0], box[1] = min(box[0], s), min(box[1], y)
        box[2], box[3] = max(box[2], e), max(box[3], y + 1)
        box[4] += e - s
    return [_Blob(*v) for v in boxes.values()]


def _blobs(grid: np.ndarray) -> list[_Blob]:
    """Ink blobs on the analysis grid. Those that span the frame from one edge to the
    opposite one are structures, not writing (a ruled or margin line, a shadow edge, the
    desk around a sheet): always dropped. Those touching one edge (a shadow, the frame's
    border) are dropped when any other blob is left."""
    mask = grid >= max(MIN_THRESHOLD, _otsu(grid))
    blobs = [b for b in _components(mask) if b.area >= max(3, mask.size // 4000)
             and not _spans(b, mask.shape)]
    inside = [b for b in blobs if not _touches_edge(b, mask.shape)]
    return inside or blobs


def _is_sheet(b: _Blob, shape: tuple[int, ...]) -> bool:
    """Large and solid: strokes fill well under 3/4 of their box, a sheet fills all of it."""
    return b.area >= 0.15 * shape[0] * shape[1] and b.area >= 0.75 * b.width * b.height


def _spans(b: _Blob, shape: tuple[int, ...]) -> bool:
    return (b.x0 == 0 and b.x1 >= shape[1]) or (b.y0 == 0 and b.y1 >= shape[0])


def _touches_edge(b: _Blob, shape: tuple[int, ...]) -> bool:
    return b.x0 == 0 or b.y0 == 0 or b.x1 >= shape[1] or b.y1 >= shape[0]


def _main_digit(blobs: list[_Blob]) -> _Blob:
    """The largest blob, joined by the strokes near it (a 5's cap, a broken 4)."""
    blobs = sorted(blobs, key=lambda b: b.area, reverse=True)
    main = blobs[0]
    for b in blobs[1:]:
        gap = 0.3 * max(main.height, main.width)
        near = (b.x0 <= main.x1 + gap and main.x0 <= b.x1 + gap
                and b.y0 <= main.y1 + gap and main.y0 <= b.y1 + gap)
        if near and b.area >= 0.05 * main.area:
            main = main.union(b)
    return main


def _group_digits(blobs: list[_Blob]) -> list[_Blob]:
    """Blobs whose columns overlap by more than half the narrower one are one digit."""
    groups: list[_Blob] = []
    for b in sorted(blobs, key=lambda b: b.x0):
        for i, g in enumerate(groups):
            overlap = min(g.x1, b.x1) - max(g.x0, b.x0)
            if overlap > 0.5 * min(g.width, b.width):
                groups[i] = g.union(b)
                break
        else:
            groups.append(b)
    return groups


def _fit_and_centre(crop: np.ndarray) -> np.ndarray | None:
    """Longer side to 20 px (aspect kept), then centre of mass at the centre of 28x28."""
    h, w = crop.shape
    if h == 0 or w == 0 or float(crop.max()) <= 0:
        return None
    # The paper's level around this digit, not the whole image's: uneven light or a shadow
    # leaves the background under a digit well above zero after the global stretch.
    ring = np.concatenate([crop[0], crop[-1], crop[:, 0], crop[:, -1]])
    local = float(np.median(ring))
    top = float(crop.max())
    if top - local > MIN_CONTRAST:
        crop = np.clip((crop - local) / (top - local), 0.0, 1.0)
    crop = np.where(crop >= MIN_THRESHOLD * 0.5, crop, 0.0).astype(np.float32)
    scale = BOX / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    small = np.asarray(Image.fromarray(crop, mode="F").resize((nw, nh), resample))
    total = float(small.sum())
    if total <= 0:
        return None
    ys, xs = np.indices(small.shape)
    cy, cx = float((ys * small).sum() / total), float((xs * small).sum() / total)
    top = int(np.clip(round(SIZE / 2 - 0.5 - cy), 0, SIZE - nh))
    left = int(np.clip(round(SIZE / 2 - 0.5 - cx), 0, SIZE - nw))
    out = np.zeros((SIZE, SIZE), dtype=np.float32)
    out[top : top + nh, left : left + nw] = small
    out /= max(float(out.max()), 1e-6)
    return np.round(out * 255).astype(np.uint8)
