"""Draw a 28x28 digit in the terminal, or save it as a PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from . import atomic

SHADES = " ░▒▓█"


def to_text(pixels: np.ndarray) -> str:
    """Two characters per pixel so the digit keeps its shape in a terminal."""
    levels = (pixels.astype(np.int32) * (len(SHADES) - 1) + 127) // 255
    return "\n".join("".join(SHADES[v] * 2 for v in row) for row in levels)


def save_png(pixels: np.ndarray, path: Path, scale: int = 10) -> None:
    img = Image.fromarray(pixels.astype(np.uint8), mode="L")
    img = img.resize((pixels.shape[1] * scale, pixels.shape[0] * scale), Image.Resampling.NEAREST)
    atomic.write_bytes(path, atomic.png_bytes(lambda buf: img.save(buf, format="PNG")))
