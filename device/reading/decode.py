"""Read image files safely into a grayscale float array in [0, 1].

- Only the decoders this tool needs are allowed (PNG, JPEG, BMP, GIF, WebP, PNM); TIFF, PSD,
  EPS, FITS and the rest are refused before any of their code runs.
- A huge declared size is refused before decoding (Pillow's pixel cap lowered, its
  decompression-bomb warning made an error), and so is a huge file.
- EXIF orientation is applied; alpha is composited on white; palette, CMYK and 16-bit images
  are converted by value (16-bit scaled to [0,1], not clipped); animations give their first frame.
"""

from __future__ import annotations

import io
import re
import stat
import sys
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from mnist_edge.device.errors import BadImageError

ALLOWED_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "PPM")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".pgm", ".ppm", ".pnm"}
MAX_PIXELS = 40_000_000  # a 40 MP photo; larger images are refused unless JPEG can shrink them
WORK_SIDE = 1000  # decode at least this long a side, no more than needed: a digit in a phone
# photo covering 3% of it keeps 30 px (MNIST: 20), and a 12 MP JPEG decodes as 0.8 MP
JPEG_SHRINK = 8  # JPEG decoders scale by 1/2, 1/4 or 1/8 while decoding (DCT scaling)
MAX_FILE_BYTES = 64 * 1024 * 1024
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601-2, as Pillow's "L"


def natural_key(path: Path) -> list[object]:
    """frame2 before frame10: digits in names compare as numbers."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def scan_folder(folder: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(image files directly in `folder` in natural order, [(skipped file, why)]).
    Hidden files and subfolders are passed over silently."""
    files, skipped = [], []
    for p in sorted(folder.iterdir(), key=natural_key):
        if p.name.startswith(".") or p.is_dir():
            continue
        if p.suffix.lower() in IMAGE_SUFFIXES:
            files.append(p)
        else:
            skipped.append((p, f"not an image file name ({', '.join(sorted(IMAGE_SUFFIXES))})"))
    return files, skipped


def files_in(folder: Path) -> list[Path]:
    """The image files directly in `folder`, in natural order."""
    return scan_folder(folder)[0]


def read_stream(stream: BinaryIO, name: str) -> bytes:
    """All bytes of a pipe or FIFO, refused past the size cap (its size is unknown ahead)."""
    data = stream.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise BadImageError(f"{name}: more than the {MAX_FILE_BYTES >> 20} MiB cap")
    if not data:
        raise BadImageError(f"{name}: empty input (0 bytes)")
    return data


def load_gray(path: str | Path) -> np.ndarray:
    """The image at `path` (or "-" for standard input) as float32 (H, W) in [0, 1],
    0 black and 1 white."""
    if str(path) == "-":
        return decode_gray(read_stream(sys.stdin.buffer, "<stdin>"), "<stdin>")
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise BadImageError(f"{path}: no such file") from None
    except OSError as e:
        raise BadImageError(f"{path}: cannot read ({e.strerror or e})") from None
    if stat.S_ISDIR(info.st_mode):
        raise BadImageError(f"{path}: is a folder, not an image")
    if not stat.S_ISREG(info.st_mode):  # a FIFO, /dev/stdin, a character device
        try:
            with open(path, "rb") as f:
                return decode_gray(read_stream(f, str(path)), str(path))
        except OSError as e:
            raise BadImageError(f"{path}: cannot read ({e.strerror or e})") from None
    size = info.st_size
    if size == 0:
        raise BadImageError(f"{path}: empty file (0 bytes)")
    if size > MAX_FILE_BYTES:
        raise BadImageError(f"{path}: {size} bytes is above the {MAX_FILE_BYTES >> 20} MiB cap")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise BadImageError(f"{path}: cannot read ({e.strerror or e})") from None
    return decode_gray(data, str(path))


# Pillow's own bomb check, set once (per-call changes of these process-wide settings race
# between threads): it may not stop a JPEG that decodes small (up to JPEG_SHRINK^2 x the cap;
# its size after shrinking is checked in decode_gray, before anything is decoded), and its
# warning is ours to give. Every declared size is checked by decode_gray itself.
Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, MAX_PIXELS * JPEG_SHRINK**2)
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def decode_gray(data: bytes, name: str = "<image>") -> np.ndarray:
    """Decode image bytes; every failure becomes one BadImageError naming `name`. Thread-safe:
    nothing process-wide is changed per call."""
    try:
        with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as img:
            img.seek(0)  # animated GIF/PNG/WebP: the first frame
            _shrink_while_decoding(img)
            if img.width * img.height > MAX_PIXELS:
                raise Image.DecompressionBombError(f"{img.width}x{img.height}")
            img.load()
            return to_gray(ImageOps.exif_transpose(_reduced(img)))
    except Image.UnidentifiedImageError:
        raise BadImageError(
            f"{name}: not an image in a supported format ({', '.join(ALLOWED_FORMATS)})"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImageError(
            f"{name}: declared size is above the {MAX_PIXELS // 1_000_000} MP limit "
            "(possible decompression bomb)"
        ) from None
    except BadImageError:
        raise
    except MemoryError:
        raise BadImageError(f"{name}: too large to decode") from None
    except Exception as e:  # Pillow raises OSError, SyntaxError, ValueError, EOFError...
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "truncated" in reason or isinstance(e, EOFError):
            reason = f"truncated or incomplete image data ({reason})"
        raise BadImageError(f"{name}: cannot decode ({reason})") from None


def _shrink_while_decoding(img: Image.Image) -> None:
    """JPEG only: ask the decoder for the smallest scale that keeps WORK_SIDE (draft)."""
    longest = max(img.size)
    if img.format == "JPEG" and longest > 2 * WORK_SIDE:
        scale = WORK_SIDE / longest
        img.draft(img.mode, (max(1, int(img.width * scale)), max(1, int(img.height * scale))))


def _reduced(img: Image.Image) -> Image.Image:
    """Other formats: shrink by a whole factor right after decoding, before the float
    conversions multiply the memory. 1-bit and palette images (a few KB can declare 40 MP)
    become 8-bit grey first: 1 byte a pixel, never floats at full size."""
    factor = max(img.size) // WORK_SIDE
    if factor < 2:
        return img
    if img.mode == "1":
        img = img.convert("L")
    elif img.mode in ("P", "PA"):
        img = img.convert("LA" if img.mode == "PA" or "transparency" in img.info else "L")
    if img.mode in ("L", "LA", "RGB", "RGBA", "I", "F", "I;16"):
        return img.reduce(factor)
    return img


def to_gray(img: Image.Image) -> np.ndarray:
    """Any Pillow mode -> float32 (H, W) in [0, 1]."""
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float32)
        return np.clip(arr / 65535.0, 0.0, 1.0)  # 16-bit scaled, not clipped at 255
    if mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        hi = float(arr.max()) if arr.size else 1.0
        return np.clip(arr / (hi if hi > 1.0 else 1.0), 0.0, 1.0)
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV", "1"):
        img = img.convert("RGB" if mode != "1" else "L")
    elif mode == "PA":
        img = img.convert("RGBA")
    elif mode not in ("L", "LA", "RGB", "RGBA", "RGBa", "La"):
        img = img.convert("RGBA")
    arr = np.asarray(img, dtype=np.float32) / 255.0
    if arr.ndim == 2:
        return arr
    if arr.shape[2] in (2, 4):  # composite on white: c*a + 1*(1-a) ...
        alpha = arr[..., -1:]
        color = arr[..., :-1]
        drawn = alpha[..., 0] > 0.5
        light = drawn.any() and (~drawn).any() and float(color[drawn].mean()) > 0.5
        # ... unless the strokes are light (white ink on a transparent canvas, as drawing
        # apps and HTML canvases export it): then on black, so the strokes stay visible.
        arr = color * alpha + (0.0 if light else 1.0) * (1.0 - alpha)
    if arr.shape[2] == 1:
        return arr[..., 0]
    return arr @ _LUMA


def rgb_to_gray(frame: np.ndarray) -> np.ndarray:
    """A uint8 camera frame (H,W,3) or (H,W) -> float32 (H,W) in [0,1]."""
    if frame.ndim == 2:
        return frame.astype(np.float32) / 255.0
    return (frame[..., :3].astype(np.float32) @ _LUMA) / 255.0
