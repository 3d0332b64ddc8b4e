"""mnist-edge device side: TFLite runtime, preprocessing, MNIST data, camera and the CLI.

This package runs on a Raspberry Pi with only numpy, Pillow, typer and a TFLite runtime.
It never imports TensorFlow or Keras.
"""

if __name__ != "mnist_edge.device":  # the top-level folder imported by its own name
    raise ImportError(f"import mnist_edge.device, not {__name__}: device/, train/ and convert/ "
                      "are installed under mnist_edge (one import name, one copy of each class)")


__version__ = "0.2.0"  # the one place: pyproject.toml reads it (dynamic version)
