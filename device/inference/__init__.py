"""Inference: the TFLite runtimes, loading and running a model, quantization, the trust checks on
a model file, the bundled models and latency timing. No image handling here."""
