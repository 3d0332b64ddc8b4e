"""Evaluation: accuracy on datasets, the quantization gate, reports (JSON, JUnit, Markdown),
robustness tables (MNIST-C, photo renders, empty frames, real photos) and the synthetic frames
they use. Runs in CI and on a device; never needed to read a digit."""
