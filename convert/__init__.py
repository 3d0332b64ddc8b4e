"""Conversion stage: Keras model -> float32, float16, dynamic-range and int8 TFLite models,
measured with the device runtime. Needs the [train] extra (TensorFlow)."""

if __name__ != "mnist_edge.convert":  # the top-level folder imported by its own name
    raise ImportError(f"import mnist_edge.convert, not {__name__}: device/, train/ and convert/ "
                      "are installed under mnist_edge (one import name, one copy of each class)")

