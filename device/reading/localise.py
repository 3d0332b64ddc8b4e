"""The learned localiser: where the digits are, from a small int8 model on the reduced frame.

The frame is reduced to the analysis grid (longer side SIDE, as Params.grid), its strokes kept
(stages.localiser_grid), turned to dark ink on light paper when it is the other way round,
padded to SIDE x SIDE by repeating its edge, and given to a fully convolutional model whose one
output is a map at 1/STRIDE of that: per cell, how likely it holds a digit's ink (and not a
rule, a letter, an operator, a shadow or the paper's grain). The model is trained on generated
pages with exact truth (train/pages.py, `make localiser`) and runs with the same TFLite runtime
as the classifier; TensorFlow is never imported here.

`regions()` turns the map into boxes (connected cells above a threshold, grown by a margin);
pipeline.cut reads each box again at its own scale, so a number written small on a big page
is cut from the full-resolution frame, not from the grid.
"""

from __future__ import annotations

import functools
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_edge.device.errors import BadModelError, MnistEdgeError
from mnist_edge.device.inference import quant, safety
from mnist_edge.device.inference.runtime import choose
from mnist_edge.device.native_stderr import quiet_native_stderr

from . import stages
from .params import Params
from .stages import Blob

SIDE = 192  # the model's input side: the analysis grid's longer side, padded square
STRIDE = 4  # one output cell per 4 x 4 input cells: a 48 x 48 map
MODEL = Path(__file__).resolve().parent.parent / "models" / "localiser" / "localiser_int8.tflite"


def model_input(g: np.ndarray, p: Params, dark: bool | None = None
                ) -> tuple[np.ndarray, int, bool]:
    """The grey frame as the localiser sees it: float32 (SIDE, SIDE) in [0, 1], dark ink on
    light paper, the grid at the top left and its edge repeated beyond; with the grid's
    reduction factor and whether the frame was dark ink on light paper (`dark`, when given,
    says so instead of the grid's median)."""
    factor = max(1, -(-max(g.shape) // SIDE))
    grid, _ = stages.to_grid(g, _with_grid(p, SIDE))
    if dark is None:
        dark = stages.dark_on_light(grid, p)
    grid = stages.localiser_grid(g, grid, factor, dark)
    if not dark:
        grid = 1.0 - grid
    h, w = grid.shape
    return np.pad(grid, ((0, SIDE - h), (0, SIDE - w)), mode="edge"), factor, dark


@functools.cache
def _with_grid(p: Params, side: int) -> Params:
    from dataclasses import replace

    return p if p.grid == side else replace(p, grid=side)


def truth_map(truth: np.ndarray) -> np.ndarray:
    """The training target for a page whose digits' ink is `truth` (bool, frame size): per
    output cell, 1 where any digit ink falls in it (the same reduction and padding as
    model_input)."""
    factor = max(1, -(-max(truth.shape) // SIDE))
    h, w = truth.shape[0] // factor, truth.shape[1] // factor
    cells = truth[:h * factor, :w * factor].reshape(h, factor, w, factor).any(axis=(1, 3))
    padded = np.zeros((SIDE, SIDE), bool)
    padded[:h, :w] = cells
    n = SIDE // STRIDE
    return np.asarray(padded.reshape(n, STRIDE, n, STRIDE).any(axis=(1, 3)), np.float32)


@dataclass
class Localiser:
    """A loaded localiser model: `heat(x)` gives the map for one model_input."""

    path: Path
    interpreter: object
    sha256: str
    _in: dict
    _out: dict

    def heat(self, x: np.ndarray) -> np.ndarray:
        """Per output cell, the probability of digit ink: float32 (SIDE/STRIDE, SIDE/STRIDE)."""
        scale, zero = self._in["quantization"]
        dtype = self._in["dtype"]
        data = x[None, :, :, None].astype(np.float32)
        if quant.is_quantized(dtype, scale):
            data = quant.quantize(data, scale, zero, dtype)
        it = self.interpreter
        it.set_tensor(self._in["index"], data)  # type: ignore[attr-defined]
        it.invoke()  # type: ignore[attr-defined]
        raw = it.get_tensor(self._out["index"])[0, :, :, 0]  # type: ignore[attr-defined]
        oscale, ozero = self._out["quantization"]
        if quant.is_quantized(raw.dtype, oscale):
            return quant.dequantize(raw, oscale, ozero)
        return raw.astype(np.float32)


@functools.cache
def load(path: Path = MODEL, runtime: str | None = None) -> Localiser:
    """The localiser model at `path` (the bundled one by default), checked like a classifier:
    size cap, TFLite identifier, the SHA-256 its manifest records, its input and output."""
    content = safety.read_model_bytes(path)
    sha = hashlib.sha256(content).hexdigest()
    if not safety.check_manifest(path, sha, trust_model=False):
        raise BadModelError(f"{path}: no manifest.json beside it vouches for this localiser")
    return from_bytes(content, path, runtime)


@functools.cache
def usable() -> bool:
    """Whether the bundled localiser loads here. The hybrid route asks it only then, and reads
    classically otherwise, saying why once on stderr (a runtime without its ops, a damaged
    install): a reading never fails for want of the second opinion."""
    try:
        load()
        return True
    except (MnistEdgeError, OSError) as e:
        print(f"warning: the learned localiser is not usable ({e}); reading with the classical "
              "route alone", file=sys.stderr)
        return False


def from_bytes(content: bytes, path: Path = MODEL, runtime: str | None = None) -> Localiser:
    """A localiser from the model's bytes (the converter measures what it is about to write)."""
    try:
        with quiet_native_stderr():
            it = choose(runtime).make(content, 1)
            it.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise BadModelError(f"{path}: not a usable localiser ({str(e).splitlines()[0]})") from None
    ins, outs = it.get_input_details(), it.get_output_details()
    n = SIDE // STRIDE
    if (len(ins), len(outs)) != (1, 1) or list(ins[0]["shape"]) != [1, SIDE, SIDE, 1] \
            or list(outs[0]["shape"]) != [1, n, n, 1]:
        raise BadModelError(f"{path}: not a localiser (input [1,{SIDE},{SIDE},1] and output "
                            f"[1,{n},{n},1] expected)")
    return Localiser(path, it, hashlib.sha256(content).hexdigest(), ins[0], outs[0])


def cells(heat: np.ndarray, b: Blob) -> np.ndarray:
    """The part of the map under a box on the grid (every cell the box touches)."""
    return heat[b.y0 // STRIDE:-(-b.y1 // STRIDE), b.x0 // STRIDE:-(-b.x1 // STRIDE)]


def regions(heat: np.ndarray, grid_shape: tuple[int, int], p: Params) -> list[Blob]:
    """Boxes on the grid (end exclusive) around connected cells whose probability of digit
    ink is at least p.locate_threshold, each grown by p.locate_margin of its size (and one
    cell) so that a digit's thin ends are inside; boxes that then overlap are one."""
    hot = heat >= p.locate_threshold
    gh, gw = grid_shape
    hot[-(-gh // STRIDE):, :] = False  # the padding is not the frame
    hot[:, -(-gw // STRIDE):] = False
    out: list[Blob] = []
    for b in stages.components(hot):
        if float(heat[b.y0:b.y1, b.x0:b.x1].max()) < p.locate_peak:
            continue
        mx = max(1.0, p.locate_margin * b.width)
        my = max(1.0, p.locate_margin * b.height)
        out.append(Blob(max(0, int((b.x0 - mx) * STRIDE)), max(0, int((b.y0 - my) * STRIDE)),
                        min(gw, int((b.x1 + mx) * STRIDE)), min(gh, int((b.y1 + my) * STRIDE)),
                        b.area * STRIDE * STRIDE))
    return stages.merge(out, lambda a, b: a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1)
