"""What native libraries write straight to file descriptor 2, past Python: silenced around
LiteRT (which prints "INFO: Created TensorFlow Lite XNNPACK delegate" on allocation and has
no switch for it); filtered out of `mnist-edge train` and `convert` (TensorFlow logs its
start-up notices before absl is initialised, where no setting reaches them).
MNIST_EDGE_VERBOSE=1 keeps everything."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator

VERBOSE_VAR = "MNIST_EDGE_VERBOSE"

# TensorFlow 2.21 on import and at the first fit: notices, not problems.
TENSORFLOW_NOISE = (
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "oneDNN custom operations are on",
    "NodeDef mentions attribute use_unbounded_threadpool",  # a Keras/TF version skew, harmless
)


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Nothing written to fd 2 inside the block reaches the terminal."""
    if os.environ.get(VERBOSE_VAR):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def run_filtered(cmd: list[str], noise: tuple[str, ...]) -> int:
    """Run `cmd`, passing its stderr through line by line except lines that contain one of
    `noise`. In a child process, so nothing written before a crash is lost; stdout is the
    child's own. Returns the exit code (128 + N when signal N ended the child)."""
    if os.environ.get(VERBOSE_VAR):
        noise = ()
    drop = tuple(n.encode() for n in noise)
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:  # `kill`/systemd stop the parent: the child stops too
        previous = signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
    try:
        while True:
            try:
                for line in proc.stderr:
                    if not any(n in line for n in drop):
                        sys.stderr.write(line.decode(errors="replace"))
                        sys.stderr.flush()
                break
            except KeyboardInterrupt:  # Ctrl-C reached the child too: read what it says
                continue
        code = proc.wait()
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    return 128 - code if code < 0 else code
