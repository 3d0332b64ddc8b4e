"""report.md (the table a person reads) and the confusion-matrix PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mnist_edge.device import atomic


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v:.2%}"


def report_markdown(manifest: dict[str, Any], layer_rows=None, brief: bool = False) -> str:
    models = manifest["models"]
    ref = next(m for m in models if m["variant"] == "float32")
    lines = []
    if not brief:
        src = manifest["source_model"]
        lines += [
            "# mnist-edge conversion report", "",
            f"Source: `{src['file']}` (Keras test accuracy {src['keras_test_accuracy']:.2%}), "
            f"measured on {manifest['measured']['images']:,} MNIST test images with "
            f"{manifest['measured']['runtime']} on {manifest['measured']['machine']}, "
            f"TensorFlow {manifest['tools']['tensorflow']}. "
            f"Calibration: {manifest['representative_data']['count']} class-balanced train "
            f"images (seed {manifest['representative_data']['seed']}, "
            f"{manifest['representative_data']['calibration']}).", "",
        ]
    lines += [
        "| model | bytes | size vs float32 | test accuracy | drop vs float32 (pp) "
        "| agreement with float32 | agreement with Keras | mean abs prob diff "
        "| p50 latency (µs) | latency vs float32 | gate |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for m in models:
        drop = m.get("drop_pp_vs_float32")
        lines.append(
            f"| {m['file']} | {m['bytes']:,} | {m['bytes'] / ref['bytes']:.2f}× "
            f"| {_pct(m['test_accuracy'])} | {'—' if drop is None else f'{drop:+.2f}'} "
            f"| {_pct(m.get('agreement_with_float32'))} | {_pct(m['agreement_with_keras'])} "
            f"| {m['mean_abs_prob_diff_vs_keras']:.2e} | {m['latency_us']['p50_us']:.1f} "
            f"| {m['latency_us']['p50_us'] / ref['latency_us']['p50_us']:.2f}× | {m['gate']} |"
        )
    gate = manifest["gate"]
    lines += ["", f"Gate: {'PASSED' if gate['passed'] else 'FAILED'} "
              f"(max drop {gate['max_drop_pp']:g} pp, min agreement "
              f"{gate['min_agreement_pct']:g}%; drop is positive when worse than float32)"]
    lines += [f"- {f}" for f in gate["failures"]]
    if brief:
        return "\n".join(lines)
    lines += ["", "Input contract:", ""]
    lines += [f"- {k}: {v}" for k, v in manifest["preprocessing"].items()]
    lines += ["", "![int8 confusion matrix](confusion_int8.png)"]
    if layer_rows:
        flagged = [r for r in layer_rows if r.get("flagged")]
        lines += ["", "## int8 per-layer quantization error (`int8_layers.csv`)", "",
                  f"{len(layer_rows)} quantized tensors; rmse/scale ideal ≈ 0.29; "
                  f"{len(flagged)} flagged above 0.7.", "",
                  "| op | tensor | scale | rmse/scale | flagged |", "|---|---|---:|---:|---|"]
        for r in layer_rows:
            lines.append(f"| {r.get('op_name', '')} | {r.get('tensor_name', '')[:60]} "
                         f"| {float(r.get('scale') or 0):.3g} | {r['rmse/scale']} "
                         f"| {r['flagged']} |")
    return "\n".join(lines) + "\n"


def confusion_png(labels: np.ndarray, preds: np.ndarray, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = 11 if preds.max(initial=0) >= 10 else 10  # column 10: answered "no digit"
    cm = np.zeros((n, n), dtype=int)
    np.add.at(cm, (labels.astype(int), preds.astype(int)), 1)
    fig, ax = plt.subplots(figsize=(6, 5.4))
    ax.imshow(np.log1p(cm), cmap="Blues")
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if i == j else "black")
    ticks = [str(d) for d in range(10)] + ["none"][: n - 10]
    ax.set_xticks(range(n), ticks)
    ax.set_yticks(range(n), ticks)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    try:
        atomic.write_bytes(path, atomic.png_bytes(lambda buf: fig.savefig(buf, format="png", dpi=100)))
    finally:
        plt.close(fig)
