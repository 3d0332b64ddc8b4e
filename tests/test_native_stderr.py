"""What native code writes to fd 2: LiteRT's notices silenced; TensorFlow's start-up notices
filtered out of `mnist-edge train/convert`, everything else kept, in order, even when the
stage crashes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mnist_edge.device.native_stderr import TENSORFLOW_NOISE, run_filtered

from .conftest import mnist_dir

CHILD = """
import os, sys
from mnist_edge.device.native_stderr import quiet_native_stderr
os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n")
os.write(2, b"I0000 00:00:1.0 1 port.cc:153] oneDNN custom operations are on. You may see ...\\n")
os.write(2, b"E0000 node_def_util.cc:682] a real native error\\n")
print("python warning", file=sys.stderr, flush=True)
print("progress on stdout", flush=True)
os.write(2, b"partial ")
os.write(2, b"line\\n")
with quiet_native_stderr():
    os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n")
os.write(2, b"last words\\n")
if sys.argv[1] == "abort":
    os.abort()
sys.exit(int(sys.argv[1]))
"""


def filtered(arg: str, capfd) -> tuple[int, list[str], str]:
    code = run_filtered([sys.executable, "-c", CHILD, arg], TENSORFLOW_NOISE)
    out, err = capfd.readouterr()
    return code, err.splitlines(), out


def test_tensorflow_notices_are_dropped_and_the_rest_kept_in_order(capfd, monkeypatch):
    monkeypatch.delenv("MNIST_EDGE_VERBOSE", raising=False)
    code, err, out = filtered("3", capfd)
    assert code == 3
    assert err == ["E0000 node_def_util.cc:682] a real native error", "python warning",
                   "partial line", "last words"]
    assert out == "progress on stdout\n"


def test_a_crash_loses_nothing_and_says_how_it_ended(capfd, monkeypatch):
    monkeypatch.delenv("MNIST_EDGE_VERBOSE", raising=False)
    code, err, _ = filtered("abort", capfd)
    assert code == 128 + 6  # SIGABRT
    assert err[-1] == "last words"


def test_verbose_keeps_everything(capfd, monkeypatch):
    monkeypatch.setenv("MNIST_EDGE_VERBOSE", "1")
    code, err, _ = filtered("0", capfd)
    assert code == 0
    assert any("oneDNN custom operations are on" in line for line in err)
    assert any("XNNPACK delegate" in line for line in err)


@pytest.mark.slow
def test_train_and_convert_print_no_tensorflow_notices(tmp_path):
    exe = Path(sys.executable).parent / "mnist-edge"
    env = {k: v for k, v in os.environ.items() if k != "MNIST_EDGE_VERBOSE"}
    out = tmp_path / "m"
    common = ["--data", str(mnist_dir())]
    train = subprocess.run([str(exe), "train", "--epochs", "1", "--limit", "1000", "--no-plot",
                            "--out", str(out), *common], capture_output=True, text=True, env=env)
    assert train.returncode == 0, train.stderr[-2000:]
    assert "test accuracy" in train.stdout
    convert = subprocess.run([str(exe), "convert", "--model", str(out / "mnist_cnn.keras"),
                              "--representative", "100", "--max-drop", "100", "--min-agreement", "0",
                              *common], capture_output=True, text=True, env=env)
    assert convert.returncode == 0, convert.stderr[-2000:]
    for res in (train, convert):
        assert not [line for line in res.stderr.splitlines()
                    if any(n in line for n in TENSORFLOW_NOISE)], res.stderr
