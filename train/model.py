"""The tutorial's CNN, as a plain keras.Sequential.

valid padding: 93,322 parameters; `padding="same"`: 257,162 parameters.
"""

from __future__ import annotations

import keras
from keras import layers

VARIANTS = {"valid": 93_322, "same": 257_162}  # variant -> expected parameter count


def build_model(variant: str = "valid") -> keras.Sequential:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, not {variant!r}")
    pad = variant
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(32, (3, 3), activation="relu", padding=pad),
            layers.MaxPooling2D((2, 2)),
            layers.Conv2D(64, (3, 3), activation="relu", padding=pad),
            layers.MaxPooling2D((2, 2)),
            layers.Conv2D(64, (3, 3), activation="relu", padding=pad),
            layers.Flatten(),
            layers.Dense(64, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ],
        name=f"mnist_cnn_{variant}",
    )
