"""`mnist-edge train` and `mnist-edge convert`: run the workstation stages (TensorFlow) with
their start-up notices filtered out."""

import importlib.util
import sys
from typing import Any

import typer

from mnist_edge.device.cli.app import app, say

_PASS_THROUGH: dict[str, Any] = {
    "allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []
}


@app.command(context_settings=_PASS_THROUGH, add_help_option=False,
             short_help="Train a model (needs the [train] extra).")
def train(ctx: typer.Context) -> None:
    """Train the Keras CNN (needs the [train] extra; options: `mnist-edge train --help`)."""
    raise typer.Exit(_run_stage("train", ctx.args))


@app.command(context_settings=_PASS_THROUGH, add_help_option=False,
             short_help="Convert to TFLite, measure, gate (needs [train]).")
def convert(ctx: typer.Context) -> None:
    """Convert to TFLite, measure and gate (needs [train]; `mnist-edge convert --help`)."""
    raise typer.Exit(_run_stage("convert", ctx.args))


def _run_stage(name: str, args: list[str]) -> int:
    """`python -m mnist_edge.NAME ARGS` with TensorFlow's start-up notices filtered out."""
    if importlib.util.find_spec("tensorflow") is None:
        say(f"error: `mnist-edge {name}` needs TensorFlow: pip install 'mnist-edge[train]'")
        return 2
    from mnist_edge.device.native_stderr import TENSORFLOW_NOISE, run_filtered

    return run_filtered([sys.executable, "-m", f"mnist_edge.{name}", *args], TENSORFLOW_NOISE)

