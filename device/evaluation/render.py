"""Draw a 28x28 digit in the terminal, or save it as a PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from mnist_edge.device import atomic
from mnist_edge.device.errors import UsageError

SHADES = " ░▒▓█"


def to_text(pixels: np.ndarray) -> str:
    """Two characters per pixel so the digit keeps its shape in a terminal."""
    levels = (pixels.astype(np.int32) * (len(SHADES) - 1) + 127) // 255
    return "\n".join("".join(SHADES[v] * 2 for v in row) for row in levels)


FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".gif": "GIF",
           ".webp": "WEBP", ".pgm": "PPM"}


def save_image(pixels: np.ndarray, path: Path, scale: int = 10) -> None:
    """Save scaled up, in the format the file name says; one-line errors (exit 2)."""
    if path.is_dir():
        raise UsageError(f"--out {path}: is a folder; give a file name such as digit.png")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UsageError(f"--out {path}: unknown image type '{path.suffix}' "
                         f"(use {', '.join(sorted(FORMATS))})")
    img = Image.fromarray(pixels.astype(np.uint8), mode="L")
    img = img.resize((pixels.shape[1] * scale, pixels.shape[0] * scale), Image.Resampling.NEAREST)
    try:
        atomic.write_bytes(path, atomic.png_bytes(lambda buf: img.save(buf, format=fmt)))
    except OSError as e:
        raise UsageError(f"--out {path}: cannot write ({e.strerror or e})") from None
