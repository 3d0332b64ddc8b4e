"""Conversion stage: Keras model -> float32, float16, dynamic-range and int8 TFLite models,
measured with the device runtime. Needs the [train] extra (TensorFlow)."""
