"""Per-layer quantization error of the int8 model, with TensorFlow's QuantizationDebugger.

For each quantized tensor it compares the float and the int8 results on calibration images.
`rmse/scale` is the RMS error in units of the tensor's quantization step: an ideal rounding
error is uniform over one step, 1/sqrt(12) = 0.29; layers well above that are flagged.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import tensorflow as tf

from mnist_edge.device import atomic

from .tflite import converter_for

FLAG_RMSE_OVER_SCALE = 0.7  # about 2.4x the ideal 0.29; the TF debugger guide's own cut-off


def layer_report(model, representative, debug_dataset, path: Path) -> list[dict[str, str]]:
    """Write the CSV; return its rows, each with a `flagged` column."""
    conv = converter_for(model, "int8", representative)
    # The debugger compares against float I/O: keep the int8 model's inner quantization
    # (one source: convert/tflite.py) but give it float inputs and outputs.
    conv.inference_input_type = tf.float32
    conv.inference_output_type = tf.float32
    debugger = tf.lite.experimental.QuantizationDebugger(converter=conv, debug_dataset=debug_dataset)
    debugger.run()
    buf = io.StringIO()
    debugger.layer_statistics_dump(buf)
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    for row in rows:
        scale = float(row.get("scale") or 0) or np.nan
        rmse = float(np.sqrt(float(row.get("mean_squared_error") or 0)))
        row["rmse/scale"] = f"{rmse / scale:.4f}"
        row["flagged"] = "yes" if rmse / scale > FLAG_RMSE_OVER_SCALE else ""
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    atomic.write_text(path, out.getvalue())
    return rows
