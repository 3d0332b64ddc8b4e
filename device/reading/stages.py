"""The stages of the reading pipeline: small pure functions over numpy arrays.

Images are float32 in [0, 1] unless said. Each stage takes what the one before gave and the
parameters object; none keeps state. device/reading/pipeline.py runs them top to bottom.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .params import BOX, SIZE, Params


@dataclass(frozen=True)
class Blob:
    """A connected group of ink cells on the analysis grid: its box (end exclusive), area."""

    x0: int
    y0: int
    x1: int
    y1: int
    area: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    def union(self, other: Blob) -> Blob:
        return Blob(min(self.x0, other.x0), min(self.y0, other.y0), max(self.x1, other.x1),
                    max(self.y1, other.y1), self.area + other.area)


# -- decode -> grey ---------------------------------------------------------------------

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601, as Pillow's "L"


def grey(image: np.ndarray) -> np.ndarray:
    """Any frame -> uint8 (H, W): a float image in [0, 1], a uint8 grey or RGB(A) frame."""
    if image.dtype == np.uint8:
        if image.ndim == 2:
            return image
        if image.shape[2] >= 3:
            return np.asarray(Image.fromarray(np.ascontiguousarray(image[..., :3])).convert("L"))
        return np.ascontiguousarray(image[..., 0])
    if image.ndim == 3:
        image = image[..., :3] @ _LUMA
    return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)


def to_grid(g: np.ndarray, p: Params) -> tuple[np.ndarray, int]:
    """The analysis grid: `g` reduced by a whole factor (area mean) so that its longer side
    is at most p.grid, as float32; and the factor."""
    factor = max(1, -(-max(g.shape) // p.grid))
    if factor == 1:
        return g.astype(np.float32) * (1 / 255), 1
    h, w = g.shape[0] // factor, g.shape[1] // factor
    img = Image.fromarray(g).reduce(factor)
    return np.asarray(img, np.float32)[:h, :w] * (1 / 255), factor


def ink_grid(g: np.ndarray, grid: np.ndarray, factor: int, dark: bool) -> np.ndarray:
    """The grid ink is found on: each cell its block's darkest pixel (dark ink) or brightest
    (light strokes), over every pixel of the block, so a one-pixel line keeps its whole
    contrast at any reduction. (Revision 8 took the mean of the block's mean and an extreme
    sampled at four phases: a faint 1 px pencil line at factor 4 kept under 0.6 of its
    contrast and was missed at half its phases; 28 of 40 thin faint cases of a tuning seed
    read, 40 of 40 with the whole extreme, the other failure classes and renders alike.)"""
    if factor == 1:
        return grid
    h, w = grid.shape
    op = np.minimum if dark else np.maximum
    rows = op.reduce([g[i:h * factor:factor, :w * factor] for i in range(factor)])
    return op.reduce([rows[:, j::factor] for j in range(factor)]).astype(np.float32) * (1 / 255)


def localiser_grid(g: np.ndarray, grid: np.ndarray, factor: int, dark: bool) -> np.ndarray:
    """The grid as the learned localiser was trained to see it (its input contract, kept
    until it is retrained): each cell the mean of its block's mean and its block's darkest
    (dark ink) or brightest pixel, the latter sampled at every pixel of blocks up to 3x3 and
    at four phases of larger blocks."""
    if factor == 1:
        return grid
    h, w = grid.shape
    phases = range(0, factor, 1 if factor <= 3 else factor // 2)
    views = [g[oy:oy + h * factor:factor, ox:ox + w * factor:factor]
             for oy in phases for ox in phases]
    extreme = (np.minimum if dark else np.maximum).reduce(views)
    return (grid + extreme.astype(np.float32) * (1 / 255)) * 0.5


def looks_like_mnist(g: np.ndarray) -> bool:
    """A 28x28 array that already is a model input: dark border, bright ink."""
    if g.shape != (SIZE, SIZE):
        return False
    border = np.concatenate([g[:2].ravel(), g[-2:].ravel(), g[:, :2].ravel(), g[:, -2:].ravel()])
    return float(border.mean()) < 0.1 * 255 and int(g.max()) > 127


# -- sheet ------------------------------------------------------------------------------

def find_sheet(grid: np.ndarray, p: Params) -> Blob | None:
    """A sheet of paper lying on a darker desk: the largest bright blob, solid and large,
    with the frame around it much darker than the sheet. Its digits are read on it alone
    (the desk's edge beside it would read as ink)."""
    ring = np.concatenate([grid[0], grid[-1], grid[:, 0], grid[:, -1]])
    if float(np.median(ring)) > p.desk * float(np.percentile(grid[::4, ::4], 100 * (1 - p.sheet_top))):
        return None  # no dark desk along the frame's edge: no sheet to look for
    bright = grid > otsu(grid)
    blobs = components(bright)
    if not blobs:
        return None
    sheet = max(blobs, key=lambda b: b.area)
    h, w = grid.shape
    if sheet.area < p.sheet_area * h * w or sheet.area < p.sheet_fill * sheet.width * sheet.height:
        return None
    if sheet.width >= w and sheet.height >= h:  # the whole frame: paper, not a sheet on a desk
        return None
    inside = grid[sheet.y0:sheet.y1, sheet.x0:sheet.x1]
    around = np.concatenate([grid[: sheet.y0].ravel(), grid[sheet.y1:].ravel(),
                             grid[sheet.y0:sheet.y1, : sheet.x0].ravel(),
                             grid[sheet.y0:sheet.y1, sheet.x1:].ravel()])
    if around.size == 0 or float(np.median(around)) > p.desk * float(np.median(inside)):
        return None
    mx, my = max(1, sheet.width // p.sheet_inset), max(1, sheet.height // p.sheet_inset)
    return Blob(sheet.x0 + mx, sheet.y0 + my, sheet.x1 - mx, sheet.y1 - my, sheet.area)


# -- polarity and background ------------------------------------------------------------

def dark_on_light(grid: np.ndarray, p: Params) -> bool:
    """Dark ink on light paper (most pixels are paper: the median decides)."""
    return median(grid) > p.light_paper


def median(grid: np.ndarray) -> float:
    """The median of every other cell in each direction (as good, four times cheaper)."""
    return float(np.median(grid[::2, ::2]))


def _running(img: np.ndarray, k: int, axis: int, op: np.ufunc) -> np.ndarray:
    """A centred running max or min (`op` np.maximum / np.minimum) of window k along one
    axis, edges padded by repetition: windows doubled in place (1, 2, 4, ... cells, a sparse
    table) and the two that cover k overlapped, log2(k) whole-array passes."""
    half = k // 2
    if half == 0:
        return img
    x = img if axis == 0 else img.T
    n = x.shape[0]
    x = np.concatenate([np.repeat(x[:1], half, axis=0), x, np.repeat(x[-1:], k - 1 - half, axis=0)])
    span = 1
    while span * 2 <= k:
        x = op(x[:-span], x[span:])
        span *= 2
    out = op(x[:n], x[k - span:k - span + n])
    return out if axis == 0 else out.T


def _filter(img: np.ndarray, k: int, op: np.ufunc) -> np.ndarray:
    return _running(_running(img, k, 0, op), k, 1, op)


def _closing(grid: np.ndarray, p: Params, first: np.ufunc, then: np.ufunc) -> np.ndarray:
    """A grey closing (first=max, then=min) or opening (the reverse) with a window of
    1/p.paper_window of the grid's longer side, on every cell: a straight shadow's edge is
    kept exactly. (Computed on 2x2 blocks and brought back bilinearly, the edge leaked a
    band of "ink" one or two cells wide along it: 17 of 60 empty shadowed pages read "1".)"""
    k = max(3, max(grid.shape) // p.paper_window) | 1
    return _filter(_filter(grid, k, first), k, then)


def paper_map(grid: np.ndarray, p: Params) -> np.ndarray:
    """The paper's brightness under each grid cell: a grey closing (max filter, then min
    filter) with a window wider than any stroke, so dark strokes vanish and a shadow's or
    lamp's shape stays. The floor keeps a dark desk from counting as dim paper."""
    closed = _closing(grid, p, np.maximum, np.minimum)
    return np.maximum(closed, max(p.shadow_floor * median(closed), p.paper_min))


def ground_map(grid: np.ndarray, p: Params) -> np.ndarray:
    """The dark ground under light strokes (a board, a drawing canvas): the mirror image of
    paper_map, a grey opening."""
    return _closing(grid, p, np.minimum, np.maximum)


def line_profiles(ink: np.ndarray, p: Params, table: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """What crosses the whole frame (ruled, squared and margin lines): each row's and then
    each column's low quantile of ink. A digit covers far less of any row or column. In a
    table (`table`) the columns' quantile is of the ink itself: its rows' rules, taken out
    first, would leave gaps in every column rule where they cross it."""
    sample = ink[:, ::2]  # every other column tells a row's quantile as well
    k = int(p.line_share * sample.shape[1])
    rows = np.partition(sample, k, axis=1)[:, k:k + 1]
    sample = ink[::2] if table else np.maximum(ink[::2] - rows[::2], 0)
    k = int(p.line_share * sample.shape[0])
    cols = np.partition(sample, k, axis=0)[k:k + 1, :]
    return rows, cols


def ink_of(grid: np.ndarray, dark: bool, p: Params,
           table: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Ink as bright on black (0 = background), before stretching; and the maps used (for
    the crops cut from the full image): paper or ground, row and column lines. Lines are
    taken out unless they are all the ink there is and one of them is thick for the frame
    (a 1 cropped tight spans its image like a margin line, but is wider than any ruling).
    `table`: the grid is a table's box (line_profiles)."""
    if not dark:
        ground = ground_map(grid, p)
        return np.maximum(grid - ground, 0.0), {"ground": ground}
    paper = paper_map(grid, p)
    ink = np.clip(1.0 - grid / paper, 0.0, 1.0)
    rows, cols = line_profiles(ink, p, table)
    without = np.maximum(ink - rows - cols, 0.0)
    if robust_top(without) < p.min_contrast and _thick_line(ink, p):
        rows, cols = np.zeros_like(rows), np.zeros_like(cols)
        without = ink
    return without, {"paper": paper, "rows": rows, "cols": cols}


def _thick_line(ink: np.ndarray, p: Params) -> bool:
    mask, _, _ = ink_mask(ink, p)
    if mask is None:
        return False
    blob = max(components(mask), key=lambda b: b.area)
    return (blob.width >= p.line_thickness * mask.shape[1]
            and blob.height >= p.line_thickness * mask.shape[0])


def robust_top(img: np.ndarray) -> float:
    """The brightest pair of neighbouring pixels' darker one (side by side or one above the
    other): a stroke, even one pixel wide, is longer than a pixel; sensor noise in a dim
    shadow mostly is not."""
    tops = [float(img.max())] if min(img.shape) < 2 else []
    if img.shape[0] >= 2:
        tops.append(float(np.minimum(img[:-1], img[1:]).max()))
    if img.shape[1] >= 2:
        tops.append(float(np.minimum(img[:, :-1], img[:, 1:]).max()))
    return max(tops)


def otsu(img: np.ndarray, bins: int = 64) -> float:
    """Otsu's threshold of values in [0, 1], on a 64-bin histogram."""
    hist = np.bincount(np.clip(img * bins, 0, bins - 1).astype(np.intp).ravel(), minlength=bins)
    edges = np.linspace(0.0, 1.0, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    between = w0 * w1 * (m0 / np.maximum(w0, 1) - (m0[-1] - m0) / np.maximum(w1, 1)) ** 2
    return float(edges[int(np.argmax(between)) + 1])


def ink_mask(ink: np.ndarray, p: Params) -> tuple[np.ndarray | None, float, float]:
    """The ink cells (None: too little contrast for any ink), the contrast and the
    threshold (a share of the contrast)."""
    top = robust_top(ink)
    if top < p.min_contrast:
        return None, top, 0.0
    stretched = np.clip(ink / top, 0.0, 1.0)
    t = min(max(p.min_threshold, otsu(stretched)), p.max_threshold)
    return stretched >= t, top, t


# -- components and segmentation ------------------------------------------------------------

def components(mask: np.ndarray) -> list[Blob]:
    """8-connected components of a boolean mask, from row runs joined by a union-find."""
    h, w = mask.shape
    padded = np.zeros((h, w + 2), np.int8)
    padded[:, 1:-1] = mask
    d = np.diff(padded, axis=1)
    ys, starts = np.nonzero(d == 1)
    ends = np.nonzero(d == -1)[1]
    n = len(starts)
    if n == 0:
        return []
    # Runs that touch a run of the row above (diagonals too): with positions counted across
    # rows, the runs of row y-1 that touch run b are one contiguous range of the sorted runs.
    stride = w + 2
    lo = np.searchsorted(ys * stride + ends, (ys - 1) * stride + starts, side="left")
    hi = np.searchsorted(ys * stride + starts, (ys - 1) * stride + ends, side="right")
    count = np.maximum(hi - lo, 0)
    below = np.repeat(np.arange(n), count)
    above = np.repeat(lo, count) + (np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count))
    roots = np.arange(n)
    while True:  # hook each pair's roots to the smaller, then jump pointers to the roots
        ra, rb = roots[above], roots[below]
        if np.array_equal(ra, rb):
            break
        low = np.minimum(ra, rb)
        np.minimum.at(roots, ra, low)
        np.minimum.at(roots, rb, low)
        while True:
            up = roots[roots]
            if np.array_equal(up, roots):
                break
            roots = up
    _, label = np.unique(roots, return_inverse=True)
    k = int(label.max()) + 1
    x0 = np.full(k, w)
    y0 = np.full(k, h)
    x1 = np.zeros(k, np.int64)
    y1 = np.zeros(k, np.int64)
    area = np.zeros(k, np.int64)
    np.minimum.at(x0, label, starts)
    np.minimum.at(y0, label, ys)
    np.maximum.at(x1, label, ends)
    np.maximum.at(y1, label, ys + 1)
    np.add.at(area, label, ends - starts)
    return [Blob(*map(int, v)) for v in zip(x0, y0, x1, y1, area, strict=True)]


def spans(b: Blob, shape: tuple[int, ...]) -> bool:
    return (b.x0 == 0 and b.x1 >= shape[1]) or (b.y0 == 0 and b.y1 >= shape[0])


def touches_edge(b: Blob, shape: tuple[int, ...]) -> bool:
    return b.x0 == 0 or b.y0 == 0 or b.x1 >= shape[1] or b.y1 >= shape[0]


def encloses(outer: Blob, inner: Blob) -> bool:
    return (outer.x0 <= inner.x0 and inner.x1 <= outer.x1
            and outer.y0 <= inner.y0 and inner.y1 <= outer.y1)


def marks(mask: np.ndarray, p: Params) -> tuple[list[Blob], dict[str, int]]:
    """The blobs that may be writing, and how many of each kind were set aside: specks
    (too small), lines (crossing the frame, long and thin), edge blobs (touching the
    frame's edge, a shadow or the border of a scan), frames (a box or a circle drawn around
    writing), rules (an underline or a table rule inside the frame). Lines and edge blobs
    are set aside only when other ink remains outside them: a digit cropped tight is all
    the ink there is, and what it encloses is its own."""
    blobs = components(mask)
    min_area = max(3, int(mask.size * p.speck_share))
    kept = [b for b in blobs if b.area >= min_area]
    dropped = {"specks": len(blobs) - len(kept)}

    def line(b: Blob) -> bool:
        long, short = max(b.width, b.height), max(1, min(b.width, b.height))
        return spans(b, mask.shape) and long >= p.line_aspect * short

    writing = [b for b in kept if not line(b)]
    dropped["lines"] = len(kept) - len(writing) if writing else 0
    writing = writing or kept
    edge = [b for b in writing if touches_edge(b, mask.shape)]
    inside = [b for b in writing if not touches_edge(b, mask.shape)
              and not any(encloses(e, b) for e in edge)]  # a speck inside a 0 is the 0's
    dropped["edge"] = len(edge) if inside else 0
    found = inside or writing
    frames = _frames(found, p)
    dropped["frames"] = len(frames)  # what they enclose remains: the innermost never encloses
    found = [b for b in found if b not in frames]
    rules = _rules(found, p)
    dropped["rules"] = len(rules)
    return [b for b in found if b not in rules], dropped


def _frames(blobs: list[Blob], p: Params) -> list[Blob]:
    """Boxes or circles drawn around writing: blobs enclosing another at least
    p.frame_inner of their height."""
    return [f for f in blobs if any(b is not f and encloses(f, b)
                                    and b.height >= p.frame_inner * f.height for b in blobs)]


def _rules(blobs: list[Blob], p: Params) -> list[Blob]:
    """Underlines and table rules: marks p.line_aspect times wider than thick and
    p.rule_width times the typical upright mark's height wide (the median of those at least
    p.small_mark of the tallest: dots and grain aside)."""
    flat = [b for b in blobs if b.width >= p.line_aspect * max(1, b.height)]
    upright = [b.height for b in blobs if b not in flat]
    if not upright:
        return []
    return [b for b in flat if b.width >= p.rule_width * typical_height(upright, p)]


def ruled(mask: np.ndarray, blobs: list[Blob], p: Params) -> list[Blob]:
    """Tables and boxes drawn with writing touching them (one blob on the grid): blobs at
    least p.fine_cells each way (smaller writing is read again finer first: a small digit is
    a blob of few cells) whose box is ruled on all four sides, its first or second and its
    last or last-but-one row and column inked on 1 - p.line_share of the box (a 0 or an 8 is
    rounder), with a row and a column inside that are not. Read on their own, their rules
    cross the frame and go as ruled lines."""
    found = []
    for b in blobs:
        if min(b.width, b.height) < max(3, p.fine_cells):
            continue
        box = mask[b.y0:b.y1, b.x0:b.x1]
        rows, cols = box.mean(axis=1) >= 1 - p.line_share, box.mean(axis=0) >= 1 - p.line_share
        sides = rows[:2].any() and rows[-2:].any() and cols[:2].any() and cols[-2:].any()
        if sides and not (rows.all() or cols.all()):  # a filled blob has no inside
            found.append(b)
    return found


def typical_height(heights: list[int], p: Params) -> float:
    """The median height of the marks at least p.small_mark of the tallest (dots, dashes
    and grain aside): how tall a digit is on this page."""
    return float(np.median([h for h in heights if h >= p.small_mark * max(heights)]))


def main_digit(blobs: list[Blob], p: Params) -> Blob:
    """The largest blob, joined by the strokes near it (a 5's cap, a broken 4)."""
    ordered = sorted(blobs, key=lambda b: b.area, reverse=True)
    main = ordered[0]
    for b in ordered[1:]:
        gap = p.near * max(main.height, main.width)
        near = (b.x0 <= main.x1 + gap and main.x0 <= b.x1 + gap
                and b.y0 <= main.y1 + gap and main.y0 <= b.y1 + gap)
        if near and b.area >= p.near_area * main.area:
            main = main.union(b)
    return main


def join_strokes(blobs: list[Blob], p: Params) -> list[Blob]:
    """Strokes of one digit joined: blobs whose columns overlap by p.column_overlap of the
    narrower and whose vertical gap is under p.join_gap of the taller (a 5's cap over its
    body, a 4 written in two strokes), when together they are at most p.join_height of the
    typical mark's height (digits of two lines written close, one above the other, stay
    two: joined, a page of rows became columns read as 1s)."""
    if not blobs:
        return []
    tallest = p.join_height * typical_height([b.height for b in blobs], p)

    def joinable(a: Blob, b: Blob) -> bool:
        columns = min(a.x1, b.x1) - max(a.x0, b.x0)
        gap = max(a.y0, b.y0) - min(a.y1, b.y1)
        return columns > p.column_overlap * min(a.width, b.width) \
            and gap < p.join_gap * max(a.height, b.height) \
            and max(a.y1, b.y1) - min(a.y0, b.y0) <= tallest

    return merge(sorted(blobs, key=lambda b: b.area, reverse=True), joinable)


def merge(blobs: list[Blob], joinable: Callable[[Blob, Blob], bool]) -> list[Blob]:
    """Pairs `joinable` says belong together made one, first pair first, until none is left."""
    out = list(blobs)
    joined = True
    while joined:
        joined = False
        for i, a in enumerate(out):
            for j in range(i + 1, len(out)):
                if joinable(a, out[j]):
                    out[i] = a.union(out[j])
                    del out[j]
                    joined = True
                    break
            if joined:
                break
    return out


def lines_of_writing(blobs: list[Blob], p: Params) -> list[list[Blob]]:
    """Blobs in lines of writing, top to bottom. Left to right, a blob joins the line whose
    last blob it overlaps most in height (at least p.row_overlap of the lower of the two), so
    a line that slopes across the page stays one line; strokes over or under a digit (a
    5's cap) join through their column overlap later."""
    lines: list[list[Blob]] = []
    for b in sorted(blobs, key=lambda b: (b.x0, b.y0)):
        best, best_overlap = None, 0.0
        for line in lines:
            last = max(line, key=lambda m: m.x1)
            overlap = (min(last.y1, b.y1) - max(last.y0, b.y0)) / max(1, min(last.height, b.height))
            if overlap > max(p.row_overlap, best_overlap):
                best, best_overlap = line, overlap
        if best is None:
            lines.append([b])
        else:
            best.append(b)
    return sorted(lines, key=lambda line: sum(b.y0 + b.y1 for b in line) / len(line))


def digits_in_line(blobs: list[Blob], mask: np.ndarray, p: Params) -> list[Blob]:
    """One line's blobs as digits, left to right: blobs whose columns overlap are one digit
    (a 5's cap over its body); a digit much wider than tall is two touching digits, cut at
    the emptiest column of its middle."""
    groups: list[Blob] = []
    for b in sorted(blobs, key=lambda b: b.x0):
        for i, g in enumerate(groups):
            if min(g.x1, b.x1) - max(g.x0, b.x0) > p.column_overlap * min(g.width, b.width):
                groups[i] = g.union(b)
                break
        else:
            groups.append(b)
    out: list[Blob] = []
    for g in groups:
        out.extend(_split_wide(g, mask, p))
    return sorted(out, key=lambda b: b.x0)


def _split_wide(g: Blob, mask: np.ndarray, p: Params) -> list[Blob]:
    """Cut a blob much wider than tall at the emptiest column of its middle half, when that
    column holds at most p.split_valley of the blob's mean column ink (a thin join)."""
    if g.width <= p.split_aspect * g.height or g.width < p.split_min:
        return [g]
    cols = mask[g.y0:g.y1, g.x0:g.x1].sum(axis=0)
    lo, hi = g.width // 4, g.width - g.width // 4
    at = lo + int(np.argmin(cols[lo:hi]))
    if cols[at] > p.split_valley * float(cols.mean()):
        return [g]
    cut = g.x0 + at
    left = Blob(g.x0, g.y0, cut, g.y1, int(cols[:at].sum()))
    right = Blob(cut, g.y0, g.x1, g.y1, int(cols[at:].sum()))
    return [*_split_wide(left, mask, p), *_split_wide(right, mask, p)]


# -- crop and normalise -------------------------------------------------------------------

def _max3(x: np.ndarray) -> np.ndarray:
    p = np.pad(x, 1)
    h, w = x.shape
    return np.max([p[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)], axis=0)


def _min3(x: np.ndarray) -> np.ndarray:
    return -_max3(-x)


def stroke_width(ink: np.ndarray) -> float:
    """Mean stroke width in pixels: 2 x area / perimeter of the ink above half."""
    m = ink >= 0.5
    area = int(m.sum())
    if area == 0:
        return 0.0
    perimeter = int((m[1:] != m[:-1]).sum() + (m[:, 1:] != m[:, :-1]).sum()
                    + m[0].sum() + m[-1].sum() + m[:, 0].sum() + m[:, -1].sum())
    return 2.0 * area / max(perimeter, 1)


def normalise_stroke(ink: np.ndarray, p: Params) -> tuple[np.ndarray, float, int]:
    """Thin strokes widened and thick ones narrowed, so that at the 20 px box they are as
    wide as MNIST's: outside p.stroke / band .. p.stroke x band, one-pixel dilations (or
    erosions) until the width reaches p.stroke (at most p.stroke_steps; an erosion never
    leaves less than p.erode_keep of the ink). Returns the ink, the width measured at the
    20 px box before, and the pixels added (negative: removed)."""
    scale = BOX / max(ink.shape)
    width = stroke_width(ink) * scale
    steps = 0
    if 0 < width < p.stroke / p.stroke_band:
        while steps < p.stroke_steps and stroke_width(ink) * scale < p.stroke:
            ink = _max3(ink)
            steps += 1
    elif width > p.stroke * p.stroke_band:
        area = float(ink.sum())
        while steps > -p.stroke_steps and stroke_width(ink) * scale > p.stroke:
            thinner = _min3(ink)
            if float(thinner.sum()) < p.erode_keep * area:  # never erode a digit away
                break
            ink = thinner
            steps -= 1
    return ink, round(width, 2), steps


def fit_and_centre(ink: np.ndarray) -> np.ndarray | None:
    """Longer side to 20 px (aspect kept), then the centre of mass at the centre of 28x28,
    as uint8 white on black."""
    h, w = ink.shape
    if h == 0 or w == 0 or float(ink.max()) <= 0:
        return None
    scale = BOX / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    small = np.asarray(Image.fromarray(ink.astype(np.float32), mode="F").resize((nw, nh), resample))
    total = float(small.sum())
    if total <= 0:
        return None
    ys, xs = np.indices(small.shape)
    cy, cx = float((ys * small).sum() / total), float((xs * small).sum() / total)
    top = int(np.clip(round(SIZE / 2 - 0.5 - cy), 0, SIZE - nh))
    left = int(np.clip(round(SIZE / 2 - 0.5 - cx), 0, SIZE - nw))
    out = np.zeros((SIZE, SIZE), np.float32)
    out[top:top + nh, left:left + nw] = small
    out /= max(float(out.max()), 1e-6)
    return np.round(out * 255).astype(np.uint8)
