"""Training stage: the tutorial's Keras CNN on MNIST. Needs the [train] extra (TensorFlow)."""
