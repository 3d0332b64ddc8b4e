"""Read and validate MNIST IDX files (gzip-compressed or raw), with numpy only.

Every check raises `BadDataError` with a message naming the file and the problem:
magic number (2051 images, 2049 labels), 28x28 dimensions, exact byte length (no short or
trailing bytes), labels 0-9, gzip truncation and CRC. A gzip file is never decompressed past
what its header implies, and headers may claim at most MAX_ITEMS items: a gzip bomb or a
lying header costs at most what 70,000 images take (55 MB), and only as far as the data
really goes, since the payload grows as it is read (and hashed) chunk by chunk.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from mnist_edge.device.errors import BadDataError

IMAGES_MAGIC = 2051  # 0x00000803: unsigned byte, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned byte, 1 dimension
ROWS = COLS = 28
MAX_ITEMS = 70_000  # MNIST's 60k train + 10k test: no IDX file here can hold more
_CHUNK = 1 << 20


@dataclass(frozen=True)
class IdxFile:
    """The decompressed payload of one IDX file and its SHA-256."""

    array: np.ndarray
    sha256: str


def read_images(path: str | Path) -> IdxFile:
    """Images as uint8 (N, 28, 28)."""
    return _read(Path(path), IMAGES_MAGIC)


def read_labels(path: str | Path) -> IdxFile:
    """Labels as uint8 (N,), each 0-9."""
    return _read(Path(path), LABELS_MAGIC)


def _read(path: Path, magic: int) -> IdxFile:
    kind = "images" if magic == IMAGES_MAGIC else "labels"
    try:
        with open(path, "rb") as raw:
            head = raw.read(2)
            raw.seek(0)
            if head == b"\x1f\x8b":
                with gzip.GzipFile(fileobj=raw) as gz:
                    data, sha = _read_payload(gz, path, magic, kind)
            else:
                data, sha = _read_payload(raw, path, magic, kind)
    except BadDataError:
        raise
    except EOFError as e:
        raise BadDataError(f"{path}: truncated gzip stream ({e})") from None
    except (gzip.BadGzipFile, zlib.error) as e:
        raise BadDataError(f"{path}: corrupt gzip data ({e})") from None
    except OSError as e:
        raise BadDataError(f"{path}: cannot read ({e.strerror or e})") from None

    if magic == IMAGES_MAGIC:
        n = len(data) // (ROWS * COLS) if len(data) > 16 else 0
        arr = np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, ROWS, COLS)
    else:
        arr = np.frombuffer(data, dtype=np.uint8, offset=8)
        if arr.size and int(arr.max()) > 9:
            bad = int(np.argmax(arr > 9))
            raise BadDataError(f"{path}: label {int(arr[bad])} at index {bad} is not a digit 0-9")
    return IdxFile(arr, sha)


def _read_payload(f: BinaryIO | gzip.GzipFile, path: Path, magic: int,
                  kind: str) -> tuple[bytes, str]:
    """Read header + exactly the payload it implies, hashing as it goes; refuse short or
    trailing bytes. Returns (bytes, SHA-256 of them)."""
    header_len = 16 if magic == IMAGES_MAGIC else 8
    header = _read_exact(f, header_len)
    if len(header) < 4:
        raise BadDataError(f"{path}: too short for an IDX header ({len(header)} bytes)")
    (found,) = struct.unpack(">I", header[:4])
    if found != magic:
        other = {IMAGES_MAGIC: "images", LABELS_MAGIC: "labels"}.get(found)
        hint = f" (this is an IDX {other} file)" if other else ""
        raise BadDataError(
            f"{path}: magic number {found} is not {magic} for MNIST {kind}{hint}"
        )
    if len(header) < header_len:
        raise BadDataError(f"{path}: truncated IDX header ({len(header)} of {header_len} bytes)")
    if magic == IMAGES_MAGIC:
        n, rows, cols = struct.unpack(">III", header[4:16])
        if (rows, cols) != (ROWS, COLS):
            raise BadDataError(f"{path}: images are {rows}x{cols}, MNIST images are 28x28")
        item = ROWS * COLS
    else:
        (n,) = struct.unpack(">I", header[4:8])
        item = 1
    if n > MAX_ITEMS:
        raise BadDataError(f"{path}: header claims {n} {kind}, more than the {MAX_ITEMS} allowed")
    expected = n * item
    digest = hashlib.sha256(header)
    body = _read_exact(f, expected, digest)
    if len(body) < expected:
        raise BadDataError(
            f"{path}: truncated: header says {n} {kind} ({expected} bytes), found {len(body)}"
        )
    if f.read(1):
        raise BadDataError(f"{path}: trailing bytes after the {n} {kind} the header declares")
    return header + body, digest.hexdigest()


def _read_exact(f: BinaryIO | gzip.GzipFile, n: int, digest: Any = None) -> bytes:
    """Up to n bytes, read in chunks: memory follows what is really there, not the claim."""
    buf = bytearray()
    while len(buf) < n:
        chunk = f.read(min(_CHUNK, n - len(buf)))
        if not chunk:
            break
        if digest is not None:
            digest.update(chunk)
        buf += chunk
    return bytes(buf)
