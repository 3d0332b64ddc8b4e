"""Atomic file writes: a temp file in the same folder, fsync, then os.replace.

A reader (or a crash) never sees a half-written file at the final path.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # mkstemp makes 0600 files; final files get the usual mode


def write_bytes(path: str | os.PathLike[str], data: bytes, mode: int | None = None) -> Path:
    """`data` at `path`, all or nothing; `mode`: the file's permissions (default: the umask's)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, _FILE_MODE if mode is None else mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def copy_file(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    return write_bytes(dst, Path(src).read_bytes())


@contextlib.contextmanager
def replacing(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path beside `path` for writers that need a file name (Keras, a
    download to verify). When the block ends normally the temp file is fsynced and moved
    over `path`; when it raises, the temp file is removed and `path` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}",
                                dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, _FILE_MODE)
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def remove_leftovers(folder: str | os.PathLike[str], staging_prefix: str | None = None) -> list[Path]:
    """Delete the hidden temp files, and the staging folders named `staging_prefix...`, that
    a killed writer left in `folder` (never a final path: those are only replaced whole)."""
    removed = []
    for p in Path(folder).glob(".*"):
        if p.is_file() and ".tmp" in p.suffixes:
            p.unlink(missing_ok=True)
            removed.append(p)
        elif p.is_dir() and staging_prefix and p.name.startswith(staging_prefix):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def png_bytes(save: Callable[[io.BytesIO], object]) -> bytes:
    """Run a `save(buffer)` callback (Pillow's img.save, matplotlib's fig.savefig) in memory."""
    buf = io.BytesIO()
    save(buf)
    return buf.getvalue()


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


__all__ = ["write_bytes", "write_text", "write_json", "copy_file", "replacing", "png_bytes"]
