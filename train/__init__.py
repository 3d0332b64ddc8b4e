"""Training stage: the tutorial's Keras CNN on MNIST. Needs the [train] extra (TensorFlow)."""

if __name__ != "mnist_edge.train":  # the top-level folder imported by its own name
    raise ImportError(f"import mnist_edge.train, not {__name__}: device/, train/ and convert/ "
                      "are installed under mnist_edge (one import name, one copy of each class)")

