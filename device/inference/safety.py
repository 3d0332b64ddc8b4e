"""What happens to a model file before the native runtime may touch it: a size cap and the
FlatBuffer identifier, the SHA-256 that manifest.json beside it records, and for a model no
manifest vouches for, one load and invoke in a forked child, so a crafted file that
crashes the runtime becomes an error message instead of a dead process."""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from mnist_edge.device.errors import BadModelError
from mnist_edge.device.inference.runtime import Runtime
from mnist_edge.device.native_stderr import quiet_native_stderr

MAX_MODEL_BYTES = 64 * 1024 * 1024  # MNIST classifiers are KB to a few MB
MANIFEST = "manifest.json"


def read_model_bytes(path: Path) -> bytes:
    """Size cap and FlatBuffer identifier checks before anything native touches the bytes."""
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise BadModelError(f"{path}: is a folder, not a .tflite model")
        if size > MAX_MODEL_BYTES:
            raise BadModelError(
                f"{path}: {size} bytes is above the {MAX_MODEL_BYTES // 2**20} MiB model size cap"
            )
        content = path.read_bytes()
    except FileNotFoundError:
        raise BadModelError(f"{path}: no such model file") from None
    except OSError as e:
        raise BadModelError(f"{path}: cannot read ({e.strerror or e})") from None
    if len(content) < 16 or content[4:8] != b"TFL3":
        raise BadModelError(f"{path}: not a TFLite model (no TFL3 identifier)")
    return content


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The `manifest.json` beside a model, when there is a readable one."""
    try:
        data = json.loads((Path(path).parent / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def manifest_entry(path: Path) -> dict[str, Any] | None:
    """The entry of `manifest.json` beside the model that names this file, if any."""
    data = read_manifest(path)
    models = data.get("models") if data else None
    if not isinstance(models, list):
        return None
    for entry in models:
        if isinstance(entry, dict) and entry.get("file") == path.name:
            return entry
    return None


def reading_version(path: Path) -> str | None:
    """The reading pipeline version a model was trained with (its manifest's
    preprocessing.reading_pipeline), for models trained on the pipeline's crops."""
    data = read_manifest(path)
    pre = data.get("preprocessing") if data and manifest_entry(path) else None
    version = pre.get("reading_pipeline") if isinstance(pre, dict) else None
    return version if isinstance(version, str) else None


def check_manifest(path: Path, sha: str, trust_model: bool) -> bool:
    """True when the manifest beside the model lists it with this exact SHA-256."""
    entry = manifest_entry(path)
    if not entry or not entry.get("sha256"):
        return False
    if entry["sha256"] == sha:
        return True
    if trust_model:
        return False
    raise BadModelError(
        f"{path}: SHA-256 {sha[:12]}... differs from {MANIFEST} ({entry['sha256'][:12]}...); "
        "the file changed since it was measured (use --trust-model to run it anyway)"
    )


TRIAL_TIMEOUT = 20.0  # seconds for a child to load and invoke an unlisted model once


def trial_load(path: Path, content: bytes, rt: Runtime, threads: int | None) -> None:
    """Load + allocate + one invoke in a forked child; a signal or a hang is an error.

    Errors the runtime reports normally are left to the in-process load, which turns them
    into the usual messages. Where fork is unavailable (not POSIX) the load is direct."""
    if not hasattr(os, "fork"):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # child: never returns
        code = 3
        faulthandler.disable()  # a crash here is reported by the parent, in one line
        try:
            with quiet_native_stderr():
                interpreter = rt.make(content, threads)
                interpreter.allocate_tensors()
                for d in interpreter.get_input_details():
                    shape = [max(1, int(v)) for v in d["shape"]]
                    interpreter.set_tensor(d["index"], np.zeros(shape, d["dtype"]))
                interpreter.invoke()
            code = 0
        finally:
            os._exit(code)
    deadline = time.monotonic() + TRIAL_TIMEOUT
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise BadModelError(f"{path}: the runtime did not finish loading it within "
                                f"{TRIAL_TIMEOUT:.0f} s (refused)")
        time.sleep(0.002)
    if os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        raise BadModelError(f"{path}: crashed the {rt} runtime ({name}) when loaded; "
                            "the file is corrupt or crafted")
