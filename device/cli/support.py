"""What the commands share: loading a model (with the reading-version warning), writable
folders and reports, the MQTT publisher, the history of readings."""

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnist_edge.device.cli.app import say
from mnist_edge.device.cli.options import RuntimeName
from mnist_edge.device.errors import UsageError

if TYPE_CHECKING:
    from mnist_edge.device.inference.model import Classifier


def load(path: Path | None, runtime: RuntimeName | None, threads: int | None = None,
         trust: bool = False) -> "Classifier":
    """The model at `path` (a file or a bundled name), verified and loaded."""
    import mnist_edge

    clf = mnist_edge.load_model(path, runtime=runtime.value if runtime else None,
                                threads=threads, trust_model=trust)
    warn_reading_mismatch(clf.path)
    return clf


def warn_reading_mismatch(path: Path) -> None:
    """One line on stderr when the model was trained on crops of another reading pipeline."""
    from mnist_edge.device.inference import safety
    from mnist_edge.device.reading.params import DEFAULT as READING

    trained = safety.reading_version(path)
    if trained is not None and not READING.reads_like(trained):
        say(f"warning: {path.name} was trained on crops of reading pipeline {trained}; this "
            f"install reads with {READING.version()}: photos may read worse (retrain with "
            "`make train-robust bundle-robust`)")


def publisher(url: str | None, prefix: str, device: str | None, ca: Path | None,
              discovery: bool, model_path: Path) -> Any:
    """A started live.mqtt.Publisher for --mqtt, or None."""
    if url is None:
        return None
    if importlib.util.find_spec("paho") is None:
        raise UsageError("--mqtt needs the mqtt extra: pip install 'mnist-edge[mqtt]'")
    import hashlib

    from mnist_edge.device.live import mqtt

    sha = hashlib.sha256(model_path.read_bytes()).hexdigest() if model_path.is_file() else ""
    started = mqtt.Publisher(mqtt.parse_url(url), device=device, prefix=prefix,
                             discovery=discovery, ca_file=ca, model=model_path.name,
                             model_sha256=sha, log=say)
    started.start()
    return started


def example_label(text: str) -> str:
    """--label of saved examples: a digit 0-9 or 'none' (else one line, exit 2)."""
    from mnist_edge.device.data import examples

    try:
        return examples.label_of(text)
    except ValueError as e:
        raise UsageError(f"--label: {e}") from None


def writable_folder(folder: Path, option: str) -> None:
    """A folder that exists or can be made, and takes files: else one line, exit 2."""
    import os

    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{option} {folder}: is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{option} {folder}: cannot create it ({e.strerror or e})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {folder}: not writable")


def write_report(write: Callable[[], object], target: Path) -> None:
    """Run `write`; a failure to write `target` is one line, exit 2."""
    try:
        write()
    except OSError as e:
        raise UsageError(f"{target}: cannot write ({e.strerror or e})") from None


def history(path: Path | None, off: bool, keep_days: float, keep_rows: int) -> Any:
    """A started live.history.History for camera/serve, or None (--no-history, or a file
    that cannot be kept: one line, and reading goes on without it)."""
    if off:
        return None
    import sqlite3

    from mnist_edge.device.live import history as kept

    path = path or kept.default_path()
    try:
        return kept.History(path, keep_days=keep_days, keep_rows=keep_rows, log=say)
    except UsageError as e:
        say(f"warning: {e}; reading goes on without a history")
    except (OSError, sqlite3.Error) as e:
        say(f"warning: history: {path}: cannot keep readings ({e}); reading goes on without one")
    return None
