"""The four TFLite conversions and the representative (calibration) data.

Path: `tf.lite.TFLiteConverter.from_keras_model`. With Keras 3 on TF 2.21 it works for this
Sequential model in every variant: internally it exports the model to a temporary SavedModel
(TensorFlow prints "Saved artifact at ..." for it, which `convert` hides) and converts that.
It is the one call that takes our in-memory model as it is, so it stays; the documented
alternative, `model.export(dir)` + `from_saved_model(dir)`, is the same route spelled out,
and the fallback if a future Keras breaks `from_keras_model`.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable, Iterator

import numpy as np
import tensorflow as tf

from mnist_edge.device.native_stderr import quiet_native_stderr

VARIANTS = ("float32", "float16", "dynamic", "int8")


def representative_images(
    train_images: np.ndarray, train_labels: np.ndarray, count: int = 500, seed: int = 0
) -> np.ndarray:
    """`count` train images, as class-balanced as `count` allows, chosen with a seeded RNG."""
    rng = np.random.default_rng(seed)
    per_class = [count // 10 + (1 if d < count % 10 else 0) for d in range(10)]
    picks = [
        rng.choice(np.flatnonzero(train_labels == d), size=n, replace=False)
        for d, n in enumerate(per_class)
        if n
    ]
    chosen = np.concatenate(picks)
    rng.shuffle(chosen)
    return train_images[chosen]


def as_dataset(images: np.ndarray) -> Callable[[], Iterator[list[np.ndarray]]]:
    """Generator factory the converter calls: one (1,28,28,1) float32 [0,1] image at a time,
    the same preprocessing as training."""

    def gen() -> Iterator[list[np.ndarray]]:
        for img in images:
            yield [img.reshape(1, 28, 28, 1).astype(np.float32) / 255.0]

    return gen


def converter_for(model, variant: str, representative=None) -> tf.lite.TFLiteConverter:
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if variant == "float32":
        return conv
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        conv.target_spec.supported_types = [tf.float16]
    elif variant == "int8":
        if representative is None:
            raise ValueError("int8 conversion needs representative data")
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    elif variant != "dynamic":
        raise ValueError(f"unknown variant {variant!r}")
    return conv


def convert(model, variant: str, representative=None) -> bytes:
    # Hide the export's endpoint listing that TensorFlow prints on stdout for every call, the
    # converter's native "fully_quantize: ..." line and its warning that int8 input
    # statistics come from the representative data (they do, by design). Failures still
    # raise, with their message.
    with contextlib.redirect_stdout(io.StringIO()), quiet_native_stderr(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        return bytes(converter_for(model, variant, representative).convert())
