"""mnist-edge: read handwritten digits with a TFLite model, on a Raspberry Pi or anywhere,
without TensorFlow. The public API, also what the `mnist-edge` CLI calls:

    from mnist_edge import load_model, read

    model = load_model()                 # the bundled default; or a .tflite path or a name
    reading = read("digit.png", model)   # a path, a PIL image or a numpy array
    reading.digit, reading.confidence    # 7, 0.998 (digit None: reading.why says why)
    reading.box                          # where the digit is, (x, y, width, height)
    read("row.jpg", model, multi=True).number   # "7210": rows top to bottom, each left to right
    read("photo.jpg", model, trace=True).trace  # what every reading stage decided

The project's folders install below this name: mnist_edge.device (the device side: inference,
reading, live, data, evaluation, cli), mnist_edge.train and mnist_edge.convert (TensorFlow).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnist_edge.device import __version__

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from mnist_edge.device.inference.model import Classifier
    from mnist_edge.device.reading.decision import Prediction
    from mnist_edge.device.reading.trace import Trace

__all__ = ["Reading", "__version__", "load_model", "read"]


@dataclass(frozen=True)
class Reading:
    """What `read` found: the first (or only) digit, and every digit with `multi`."""

    predictions: list[Prediction]  # every digit found, or one entry with digit None
    trace: Trace | None = None  # each stage's decisions (and images), when asked for

    @property
    def digit(self) -> int | None:
        return self.predictions[0].digit

    @property
    def confidence(self) -> float | None:
        return self.predictions[0].confidence

    @property
    def why(self) -> str | None:
        """Why there is no digit: "no ink", "model" (its own "no digit" output) or "below min
        confidence"; None when there is one."""
        return self.predictions[0].none_reason

    @property
    def box(self) -> tuple[int, int, int, int] | None:
        return self.predictions[0].bbox

    @property
    def number(self) -> str | None:
        """With multi: the digits as text, lines of writing separated by spaces."""
        from mnist_edge.device.reading.files import number

        return number(self.predictions)

    def describe(self) -> str:
        return self.predictions[0].describe()


def load_model(model: str | Path | None = None, *, runtime: str | None = None,
               threads: int | None = None, trust_model: bool = False) -> Classifier:
    """A model ready to read: a .tflite path or a bundled name (default: the bundled default),
    verified against the manifest.json beside it (BadModelError otherwise)."""
    from mnist_edge.device.errors import BadModelError
    from mnist_edge.device.inference import bundled
    from mnist_edge.device.inference import model as models

    path = bundled.resolve(Path(model) if model is not None else None)
    if path in bundled.NAMES.values() and not path.is_file():
        raise BadModelError(f"{path}: no bundled model in this install; run `make bundle` / "
                            "`make bundle-robust` in the source tree, or pass a .tflite file")
    return models.load(path, runtime=runtime, threads=threads, trust_model=trust_model)


def read(image: str | Path | np.ndarray | Image.Image, model: Classifier | None = None, *,
         multi: bool = False, min_confidence: float = 0.5, trace: bool | Trace = False) -> Reading:
    """Read the digit (with `multi`, every digit) in an image file, a PIL image or an array
    (uint8 grey or RGB, or float grey in [0, 1]). BadImageError for a file that is not a
    readable image. `trace=True` records every stage's decisions and images."""
    import numpy as np

    from mnist_edge.device.reading import decision, files
    from mnist_edge.device.reading.trace import Trace

    clf = model if model is not None else load_model()
    record: Any = trace if isinstance(trace, Trace) else (Trace(images=True) if trace else None)
    if isinstance(image, (str, Path)):
        preds = files.classify_file(clf, Path(image), multi=multi, min_confidence=min_confidence,
                                    trace=record)
    else:
        pixels = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image)
        preds = decision.read(clf, pixels, multi=multi, min_confidence=min_confidence, trace=record)
    return Reading(preds, record)
