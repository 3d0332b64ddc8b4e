"""mnist-edge device side: TFLite runtime, preprocessing, MNIST data, camera and the CLI.

This package runs on a Raspberry Pi with only numpy, Pillow, typer and a TFLite runtime.
It never imports TensorFlow or Keras.
"""

__version__ = "0.2.0"  # the one place: pyproject.toml reads it (dynamic version)
