"""The networks, as plain keras.Sequential models.

- `tutorial`: the tutorial's CNN; valid padding 93,322 parameters, `padding="same"` 257,162.
- `dense`: the network of the tutorial's previous post (Dense 512 -> Dense 10), 407,050.
- `robust`: the device's default model: the same three-conv shape with batch normalization,
  more filters, dropout, and an 11th output, "no digit".
"""

from __future__ import annotations

import keras
from keras import layers

VARIANTS = {"valid": 93_322, "same": 257_162, "dense": 407_050}  # variant -> parameter count
ROBUST_PARAMS = 205_099
NONE_CLASS = 10  # the robust model's extra output


def build_model(variant: str = "valid") -> keras.Sequential:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, not {variant!r}")
    if variant == "dense":
        return keras.Sequential(
            [
                keras.Input(shape=(28, 28, 1)),
                layers.Flatten(),  # the post reshapes to (784,): the same thing, inside the model
                layers.Dense(512, activation="relu"),
                layers.Dense(10, activation="softmax"),
            ],
            name="mnist_dense",
        )
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


def _conv_block(filters: int) -> list[layers.Layer]:
    # No bias before batch normalization; the converter folds BN into the convolution.
    return [layers.Conv2D(filters, (3, 3), padding="same", use_bias=False),
            layers.BatchNormalization(), layers.ReLU()]


def build_robust_model() -> keras.Sequential:
    """28x28 -> 32 -> pool -> 64 -> pool -> 128 -> pool -> dense 96 -> 11 (10 digits + none)."""
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            *_conv_block(32),
            layers.MaxPooling2D((2, 2)),  # 14x14
            *_conv_block(64),
            layers.MaxPooling2D((2, 2)),  # 7x7
            *_conv_block(128),
            layers.MaxPooling2D((2, 2)),  # 3x3
            layers.Flatten(),
            layers.Dropout(0.3),
            layers.Dense(96, activation="relu"),
            layers.Dropout(0.3),
            layers.Dense(NONE_CLASS + 1, activation="softmax"),
        ],
        name="mnist_robust",
    )
