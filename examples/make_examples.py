"""Regenerate the sample images in examples/ from MNIST test digits (numpy + Pillow only).

Each is rendered the way people really photograph a digit: dark ink on off-white paper,
upscaled, uneven lighting, sensor noise, a little blur; file names carry the true label
(`digit7_test0.png`). One JPEG stores its pixels rotated with an EXIF orientation tag, one
PNG is a transparent RGBA drawing, and `number_*.png` is a row of several digits.

    python examples/make_examples.py [--out examples]
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from mnist_edge.device import atomic
from mnist_edge.device.data import mnist

INDICES = (0, 1, 2, 3, 4, 8, 11, 18, 61, 7)  # test images with labels 7 2 1 0 4 5 6 3 8 9
SEED = 7


def photo(digit: np.ndarray, rng: np.random.Generator, size: int = 220) -> Image.Image:
    """A 28x28 MNIST digit -> a photo-like RGB picture of dark ink on paper."""
    ink = np.asarray(Image.fromarray(digit).resize((size // 2, size // 2), Image.BICUBIC),
                     dtype=np.float32) / 255.0
    h, w = size, int(size * 1.25)
    canvas = np.zeros((h, w), np.float32)
    oy, ox = rng.integers(10, h - size // 2 - 10), rng.integers(10, w - size // 2 - 10)
    canvas[oy : oy + size // 2, ox : ox + size // 2] = np.clip(ink, 0, 1)
    light = 0.88 + 0.08 * np.linspace(-1, 1, w)[None, :] * rng.choice([-1, 1])
    paper = light - 0.03 * np.linspace(0, 1, h)[:, None]
    gray = paper * (1 - 0.8 * canvas) + rng.normal(0, 0.015, (h, w))
    tint = np.array([1.0, 0.97, 0.92], np.float32)  # warm indoor light
    rgb = np.clip(gray[..., None] * tint * 255, 0, 255).astype(np.uint8)
    return Image.fromarray(rgb, "RGB").filter(ImageFilter.GaussianBlur(0.8))


def save(img: Image.Image, path: Path, **kwargs: object) -> None:
    buf = io.BytesIO()
    img.save(buf, format="JPEG" if path.suffix == ".jpg" else "PNG", **kwargs)
    atomic.write_bytes(path, buf.getvalue())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(Path(__file__).parent))
    out = Path(p.parse_args().out)
    images, labels = mnist.load_split("test")
    rng = np.random.default_rng(SEED)
    for n, i in enumerate(INDICES):
        label = int(labels[i])
        img = photo(images[i], rng)
        if n % 3 == 1:
            save(img, out / f"digit{label}_test{i}.jpg", quality=85)
        elif n == 5:
            # The camera held sideways: pixels stored rotated, EXIF says "rotate 90 CW".
            exif = Image.Exif()
            exif[0x0112] = 6
            save(img.transpose(Image.Transpose.ROTATE_90), out / f"digit{label}_test{i}_exif.jpg",
                 quality=90, exif=exif)
        else:
            save(img, out / f"digit{label}_test{i}.png")
    # A drawing app export: black strokes on a transparent background.
    i = 21
    alpha = np.asarray(Image.fromarray(images[i]).resize((112, 112), Image.BICUBIC))
    rgba = np.zeros((112, 112, 4), np.uint8)
    rgba[..., 3] = alpha
    save(Image.fromarray(rgba, "RGBA"), out / f"digit{int(labels[i])}_test{i}_transparent.png")
    # A row of digits: the test images 0-3 side by side.
    row = np.concatenate([np.pad(images[i], ((4, 4), (2, 2))) for i in (0, 1, 2, 3)], axis=1)
    number = "".join(str(int(labels[i])) for i in (0, 1, 2, 3))
    save(_row_photo(row, rng), out / f"number_{number}.png")


def _row_photo(row: np.ndarray, rng: np.random.Generator) -> Image.Image:
    ink = np.asarray(Image.fromarray(row).resize((row.shape[1] * 4, row.shape[0] * 4),
                                                 Image.BICUBIC), np.float32) / 255.0
    h, w = ink.shape[0] + 60, ink.shape[1] + 80
    canvas = np.zeros((h, w), np.float32)
    canvas[30 : 30 + ink.shape[0], 40 : 40 + ink.shape[1]] = ink
    gray = (0.9 - 0.05 * np.linspace(0, 1, w)[None, :]) * (1 - 0.8 * canvas)
    gray = gray + rng.normal(0, 0.015, (h, w))
    return Image.fromarray(np.clip(gray * 255, 0, 255).astype(np.uint8), "L")


if __name__ == "__main__":
    main()
