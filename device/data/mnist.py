"""Find, download and load the MNIST splits, verified.

Where the files come from, in order:
1. an explicit folder (`--data DIR`),
2. the `MNIST_EDGE_DATA` environment variable,
3. the cache folder (`$XDG_CACHE_HOME/mnist-edge/mnist`, default `~/.cache/mnist-edge/mnist`),
4. for the test split only: the copy bundled inside this package (works offline on a device),
5. a download from the public mirrors into the cache, verified before it is kept.

Each file is accepted gzip-compressed (`name.gz`) or raw (`name`), and its decompressed
content must match the SHA-256 of the original MNIST release.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from mnist_edge.device import atomic
from mnist_edge.device.data import idx
from mnist_edge.device.errors import BadDataError, DataNotFoundError

ENV_VAR = "MNIST_EDGE_DATA"
BUNDLED_DIR = Path(__file__).parent  # the MNIST test set shipped with the package

# SHA-256 of the decompressed files (identical for every mirror and recompression).
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MIRRORS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)
MAX_DOWNLOAD_BYTES = 20_000_000  # the largest original .gz is 9.9 MB


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mnist-edge" / "mnist"


def find_file(folder: Path, name: str) -> Path | None:
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    return None


def load_split(
    split: str = "test",
    data_dir: str | Path | None = None,
    *,
    download: bool = True,
    verify: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (images uint8 (N,28,28), labels uint8 (N,)) for "train" or "test"."""
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    names = SPLITS[split]
    paths = locate(split, data_dir, download=download)
    images = idx.read_images(paths[0])
    labels = idx.read_labels(paths[1])
    if verify:
        for name, path, got in ((names[0], paths[0], images), (names[1], paths[1], labels)):
            if got.sha256 != SHA256[name]:
                raise BadDataError(
                    f"{path}: content differs from the original MNIST {name} "
                    f"(SHA-256 {got.sha256[:12]}..., expected {SHA256[name][:12]}...)"
                )
    if len(images.array) != len(labels.array):
        raise BadDataError(
            f"{paths[0]} has {len(images.array)} images but {paths[1]} "
            f"has {len(labels.array)} labels"
        )
    return images.array, labels.array


def locate(split: str, data_dir: str | Path | None = None, *, download: bool = True) -> list[Path]:
    """Paths of the (images, labels) files of a split, following the order in the docstring."""
    names = SPLITS[split]
    chosen = data_dir if data_dir is not None else os.environ.get(ENV_VAR) or None
    if chosen is not None:
        folder = Path(chosen).expanduser()
        found = [find_file(folder, n) for n in names]
        missing = [n for n, p in zip(names, found, strict=True) if p is None]
        if missing:
            origin = "--data" if data_dir is not None else ENV_VAR
            raise DataNotFoundError(
                f"{folder} ({origin}) has no {' or '.join(m + '[.gz]' for m in missing)}"
            )
        return [p for p in found if p is not None]

    folders = [cache_dir()] + ([BUNDLED_DIR] if split == "test" else [])
    for folder in folders:
        found = [find_file(folder, n) for n in names]
        if all(found):
            return [p for p in found if p is not None]
    if not download:
        raise DataNotFoundError(_missing_message(names, cache_dir(), "downloads are off"))
    return [download_file(n, cache_dir()) for n in names]


def _missing_message(names: tuple[str, ...], cache: Path, why: str) -> str:
    files = ", ".join(f"{n}.gz" for n in names)
    return (
        f"MNIST files missing ({files}) and {why}; put them in {cache}, "
        f"or point --data DIR or {ENV_VAR}=DIR at a folder that has them"
    )


def download_file(name: str, cache: Path) -> Path:
    """Fetch `name`.gz from the first mirror that serves verified bytes, into `cache`."""
    target = cache / f"{name}.gz"
    errors = []
    for mirror in MIRRORS:
        url = mirror + f"{name}.gz"
        try:
            payload = _fetch(url)
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            errors.append(f"{url}: {getattr(e, 'reason', e)}")
            continue
        try:
            with atomic.replacing(target) as tmp:  # kept only when it verifies
                tmp.write_bytes(payload)
                got = (idx.read_images if "images" in name else idx.read_labels)(tmp)
                if got.sha256 != SHA256[name]:
                    raise BadDataError("content does not match MNIST's SHA-256")
            return target
        except BadDataError as e:
            errors.append(f"{url}: {e}")
    raise DataNotFoundError(
        _missing_message((name,), cache, "the download failed")
        + " (" + "; ".join(errors) + ")"
    )


def _fetch(url: str) -> bytes:
    """Download with a progress bar on stderr; refuses anything implausibly large."""
    with urllib.request.urlopen(url, timeout=30) as resp:
        total = int(resp.headers.get("Content-Length") or 0)
        if total > MAX_DOWNLOAD_BYTES:
            raise OSError(f"refusing a {total}-byte download")
        chunks, got = [], 0
        label = url.rsplit("/", 1)[-1]
        while chunk := resp.read(1 << 16):
            chunks.append(chunk)
            got += len(chunk)
            if got > MAX_DOWNLOAD_BYTES:
                raise OSError("download larger than any MNIST file")
            if total:
                done = int(30 * got / total)
                sys.stderr.write(f"\r{label:30s} [{'#' * done}{'.' * (30 - done)}] {got / 1e6:5.1f} MB")
        if total:
            sys.stderr.write("\n")
    return b"".join(chunks)
