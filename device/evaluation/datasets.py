"""The labelled images `mnist-edge check` measures on: MNIST's test split, a user's own
folder of images in the ImageFolder layout, or any pair of IDX files (e.g. MNIST-C).

Every set ends as 28x28 uint8 model inputs with labels 0-9, or NONE (10) for images that
must read "no digit".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mnist_edge.device.data import idx
from mnist_edge.device.data import mnist as data
from mnist_edge.device.errors import BadDataError
from mnist_edge.device.inference.model import NONE
from mnist_edge.device.reading import decode as images
from mnist_edge.device.reading import localise, pipeline
from mnist_edge.device.reading.params import DEFAULT, Params

CLASS_FOLDERS = {**{str(d): d for d in range(10)}, "none": NONE}


@dataclass
class EvalSet:
    name: str
    images: np.ndarray  # uint8 (N, 28, 28), what the model is fed
    labels: np.ndarray  # (N,) 0-9 or NONE
    found: np.ndarray | None = None  # False where preprocessing found no ink (reads "no digit")
    mnist_test: bool = False  # the whole MNIST test split: manifests' figures apply
    second: dict[int, np.ndarray] | None = None  # second readings (pipeline.doubt_polarity)
    learned: dict[int, np.ndarray] | None = None  # the hybrid route's learned readings

    def __len__(self) -> int:
        return len(self.labels)

    def first(self, n: int) -> EvalSet:
        return EvalSet(f"{self.name}, first {n:,}", self.images[:n], self.labels[:n],
                       None if self.found is None else self.found[:n], False,
                       _first(self.second, n), _first(self.learned, n))


def mnist_test(data_dir: str | Path | None = None) -> EvalSet:
    x, y = data.load_split("test", data_dir)
    return EvalSet("MNIST test split", x, y, mnist_test=True)


def idx_pair(images_path: Path, labels_path: Path) -> EvalSet:
    """Any IDX images + labels pair: validated as IDX, not pinned to MNIST's hashes."""
    x = idx.read_images(images_path).array
    y = idx.read_labels(labels_path).array
    if len(x) != len(y):
        raise BadDataError(f"{images_path} has {len(x):,} images but {labels_path} has "
                           f"{len(y):,} labels")
    return EvalSet(f"{images_path.name} + {labels_path.name}", x, y)


def class_files(folder: Path) -> list[tuple[Path, int]]:
    """(file, label) for DIR/0/*.png ... DIR/9/*.png and DIR/none/*; hidden files skipped."""
    if not folder.is_dir():
        raise BadDataError(f"{folder}: not a folder (expected DIR/0/*.png ... DIR/9/*.png)")
    found: list[tuple[Path, int]] = []
    subdirs = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    for sub in subdirs:
        if not sub.is_dir():
            raise BadDataError(f"{sub}: a file among the class folders; expected only "
                               "folders named 0-9 or none")
        if sub.name not in CLASS_FOLDERS:
            raise BadDataError(f"{sub}: '{sub.name}' is not a class folder name "
                               "(expected 0-9 or none)")
        files = sorted(p for p in sub.iterdir() if not p.name.startswith("."))
        if not files:
            raise BadDataError(f"{sub}: empty class folder")
        for f in files:
            if f.is_dir() or f.suffix.lower() not in images.IMAGE_SUFFIXES:
                raise BadDataError(f"{f}: not an image file ({', '.join(sorted(images.IMAGE_SUFFIXES))})")
            found.append((f, CLASS_FOLDERS[sub.name]))
    if not found:
        raise BadDataError(f"{folder}: no class folders (expected DIR/0/*.png ... DIR/9/*.png)")
    return found


def image_folder(folder: Path, progress: Callable[[int], None] | None = None) -> EvalSet:
    """A user's images, through the same preprocessing as `classify` (once, for every model)."""
    files = class_files(folder)
    x = np.zeros((len(files), 28, 28), np.uint8)
    found = np.zeros(len(files), bool)
    second, learned = {}, {}
    for i, (path, _) in enumerate(files):
        gray = images.load_gray(path)
        x[i], found[i], again, other = readings(gray)
        if again is not None:
            second[i] = again
        if other is not None:
            learned[i] = other
        if progress:
            progress(1)
    labels = np.array([label for _, label in files], np.int64)
    return EvalSet(f"{folder} ({len(files):,} images)", x, labels, found, second=second,
                   learned=learned)


def readings(gray: np.ndarray, params: Params = DEFAULT
             ) -> tuple[np.ndarray, bool, np.ndarray | None, np.ndarray | None]:
    """The first digit's crop (zeros when none), whether one was found, and the crops of the
    readings `decision.read` may take instead: the second reading (paper in shadow) and,
    with the hybrid localiser, the learned route's (None when there is none). What `classify`
    reads, for every model at once (decision.label chooses)."""
    digits = pipeline.cut(gray, params=params)  # "hybrid": the classical stages
    crop = digits[0].pixels if digits else np.zeros((28, 28), np.uint8)
    again = pipeline.cut(gray, params=params, dark=True) \
        if pipeline.doubt_polarity(gray, params) else []
    other = pipeline.cut(gray, params=replace(params, localiser="learned")) \
        if params.localiser == "hybrid" and gray.shape != (28, 28) and localise.usable() else []
    return (crop, bool(digits), again[0].pixels if again else None,
            other[0].pixels if other else None)


def _first(crops: dict[int, np.ndarray] | None, n: int) -> dict[int, np.ndarray] | None:
    return None if crops is None else {i: c for i, c in crops.items() if i < n}
