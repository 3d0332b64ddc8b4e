"""Image loading: modes, EXIF, alpha, 16-bit, and every kind of bad file."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mnist_edge.device.errors import BadImageError
from mnist_edge.device.reading import decode

FUZZ = int(__import__("os").environ.get("MNIST_EDGE_FUZZ", 200))


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def digit_image(mode="L") -> Image.Image:
    arr = np.full((40, 30), 230, np.uint8)
    arr[8:32, 12:18] = 20
    return Image.fromarray(arr, "L").convert(mode)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a huge size, with a few bytes of pixel data: a bomb."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
            + _chunk(b"IDAT", zlib.compress(bytes(1000))) + _chunk(b"IEND", b""))


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "CMYK", "LA", "1"])
def test_modes_decode_to_gray(mode):
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    gray = decode.decode_gray(encode(digit_image(mode), fmt))
    assert gray.shape == (40, 30) and gray.dtype == np.float32
    assert gray[20, 14] < 0.3 and gray[2, 2] > 0.7


def test_alpha_is_composited_on_white():
    rgba = np.zeros((10, 10, 4), np.uint8)  # fully transparent black ...
    rgba[4:6, 4:6] = (0, 0, 0, 255)  # ... except an opaque black square
    gray = decode.decode_gray(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert gray[0, 0] == pytest.approx(1.0) and gray[5, 5] == pytest.approx(0.0)


def test_palette_transparency_is_composited():
    img = Image.new("P", (8, 8), 0)
    img.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    img.info["transparency"] = 0
    gray = decode.decode_gray(encode(img, "PNG", transparency=0))
    assert gray.min() == pytest.approx(1.0)  # transparent black shows the white paper


def test_16bit_is_scaled_not_clipped():
    ramp = np.linspace(0, 65535, 64).astype(np.uint16).reshape(8, 8)
    gray = decode.decode_gray(encode(Image.fromarray(ramp), "PNG"))
    assert gray.max() == pytest.approx(1.0) and gray.min() == 0.0
    assert np.allclose(gray.ravel(), ramp.ravel() / 65535, atol=1e-4)


def test_exif_orientation_is_applied():
    arr = np.zeros((20, 40), np.uint8)  # landscape pixels, marker in the top-left corner
    arr[:5, :5] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    gray = decode.decode_gray(encode(Image.fromarray(arr), "JPEG", exif=exif, quality=95))
    assert gray.shape == (40, 20)
    assert gray[:5, -5:].mean() > 0.8  # the marker is now top-right


def test_animated_gif_first_frame():
    frames = [Image.new("L", (10, 10), v) for v in (255, 0, 128)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    assert decode.decode_gray(buf.getvalue()).mean() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"", "empty file"),
        (b"hello, this is text\n", "not an image"),
        (png_header_only(100_000, 100_000), "decompression bomb"),
        (png_header_only(7_000, 7_000), "decompression bomb"),  # 49 MP: warning -> error
        (encode(digit_image(), "TIFF"), "not an image in a supported format"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n", "not an image"),
    ],
)
def test_bad_files(tmp_path, payload, reason):
    path = tmp_path / "input.png"
    path.write_bytes(payload)
    with pytest.raises(BadImageError, match=reason) as e:
        decode.load_gray(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_every_truncation_is_a_clean_error(fmt):
    data = encode(digit_image("RGB"), fmt)
    for cut in range(1, len(data) - 1, max(1, len(data) // 150)):
        try:
            decode.decode_gray(data[:cut], "cut")
        except BadImageError as e:
            assert "cut" in str(e)


def test_missing_and_folder(tmp_path):
    with pytest.raises(BadImageError, match="no such file"):
        decode.load_gray(tmp_path / "nope.png")
    with pytest.raises(BadImageError, match="is a folder"):
        decode.load_gray(tmp_path)


@settings(max_examples=FUZZ, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_flipped_bytes_never_escape(data):
    """Corrupting bytes of valid PNG/JPEG/GIF/BMP files yields pixels or BadImageError."""
    fmt = data.draw(st.sampled_from(["PNG", "JPEG", "GIF", "BMP", "WEBP"]))
    blob = bytearray(encode(digit_image("RGB" if fmt != "GIF" else "L"), fmt))
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(blob) - 1))
        blob[pos] = data.draw(st.integers(0, 255))
    try:
        gray = decode.decode_gray(bytes(blob))
    except BadImageError:
        return
    assert gray.ndim == 2 and np.isfinite(gray).all() and 0 <= gray.min() <= gray.max() <= 1


@settings(max_examples=FUZZ, deadline=None)
@given(st.binary(max_size=2000))
def test_fuzz_random_bytes(blob):
    try:
        decode.decode_gray(blob)
    except BadImageError:
        pass


def test_big_jpegs_decode_at_work_size(tmp_path):
    """A 12 MP JPEG decodes at about WORK_SIDE (DCT scaling); a 48 MP JPEG is accepted the
    same way, while a 48 MP PNG, which cannot shrink while decoding, is still refused."""
    big = np.full((6000, 8000), 200, np.uint8)
    big[2000:4000, 3000:3300] = 30
    Image.fromarray(big).save(tmp_path / "48mp.jpg", quality=80)
    Image.fromarray(big[:3024, :4032]).save(tmp_path / "12mp.jpg", quality=80)
    for name in ("12mp.jpg", "48mp.jpg"):
        gray = decode.load_gray(tmp_path / name)
        assert decode.WORK_SIDE <= max(gray.shape) <= 2 * decode.WORK_SIDE, gray.shape
    Image.fromarray(big).save(tmp_path / "48mp.png")
    with pytest.raises(BadImageError, match="40 MP limit"):
        decode.load_gray(tmp_path / "48mp.png")


def test_big_pngs_are_reduced_after_decoding(tmp_path):
    Image.fromarray(np.full((2400, 3200), 180, np.uint8)).save(tmp_path / "8mp.png")
    assert max(decode.load_gray(tmp_path / "8mp.png").shape) in (3200 // 3, 3200 // 3 + 1)
