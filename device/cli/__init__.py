"""`mnist-edge`: classify digits in files and camera frames, check quantized accuracy,
benchmark, and inspect models, on a Raspberry Pi or anywhere, without TensorFlow.

Exit codes: 0 success; 1 a check failed or a runtime/device failure; 2 bad input or usage.

- app.py: the typer app, one-line errors, main()
- options.py: every option shared by several commands, defined once
- support.py: what commands share: loading a model, folders and reports, the MQTT publisher
- one module per command group, each calling library functions and formatting their output:
  reading.py (classify), live.py (camera, serve), history.py (history), evaluation.py (check,
  bench, robustness), info.py (info, show), models.py (models list|install|use|rollback),
  training.py (train, convert)
"""

# `--help` lists the commands in the order their modules register them.
# isort: off
from mnist_edge.device.cli import reading  # noqa: F401
from mnist_edge.device.cli import live  # noqa: F401
from mnist_edge.device.cli import history  # noqa: F401
from mnist_edge.device.cli import evaluation  # noqa: F401
from mnist_edge.device.cli import info  # noqa: F401
from mnist_edge.device.cli import models  # noqa: F401
from mnist_edge.device.cli import training  # noqa: F401
from mnist_edge.device.cli.app import app, main
# isort: on

__all__ = ["app", "main"]
