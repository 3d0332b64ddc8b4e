"""Quantize and dequantize, in one place (see STYLE.md).

A quantized tensor holds q = round(x / scale + zero_point), clipped to its integer range.
For MNIST inputs with scale 1/255 and zero point -128 (our int8 model), an 8-bit pixel p is
x = p/255, so q = round(p/255 * 255 - 128) = p - 128: a pixel maps to int8 by subtracting 128.
With zero point 0 and uint8 (e.g. markusmeingast's model) q is the raw pixel itself.
"""

from __future__ import annotations

import numpy as np


def is_quantized(dtype: np.dtype | type, scale: float) -> bool:
    return bool(np.issubdtype(dtype, np.integer)) and scale > 0


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: np.dtype | type) -> np.ndarray:
    """Real values -> integers: round (not truncate), then clip to the dtype's range."""
    info = np.iinfo(dtype)
    q = np.round(np.asarray(x, dtype=np.float64) / scale + zero_point)
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Integers -> real values. Widen to int64 before subtracting the zero point: int8/uint8
    arithmetic would wrap around (e.g. uint8 3 - 128)."""
    return ((np.asarray(q).astype(np.int64) - zero_point) * scale).astype(np.float32)
