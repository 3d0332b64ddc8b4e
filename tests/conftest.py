from __future__ import annotations

import gzip
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from mnist_edge.device.data import idx
from mnist_edge.device.data import mnist as data
from mnist_edge.device.inference import bundled as bundled_models

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
INTEROP = SHARED / "interop"
# The bundled models where the package is installed (the checkout, or a wheel's site-packages)
BUNDLED = bundled_models.MODELS_DIR / "tutorial"
ROBUST = bundled_models.MODELS_DIR / "robust"
_REAL_CACHE = data.cache_dir()  # read before the autouse fixture isolates the cache


def mnist_dir() -> Path:
    """Full MNIST (train + test): MNIST_EDGE_DATA, else ../shared/mnist, else the user's
    cache, downloaded and verified once (outside the per-test isolated cache)."""
    if os.environ.get("MNIST_EDGE_DATA"):
        return Path(os.environ["MNIST_EDGE_DATA"])
    if (SHARED / "mnist").is_dir():
        return SHARED / "mnist"
    for split in ("train", "test"):
        for name in data.SPLITS[split]:
            if data.find_file(_REAL_CACHE, name) is None:
                data.download_file(name, _REAL_CACHE)
    return _REAL_CACHE


@pytest.fixture(scope="session")
def test_split():
    return data.load_split("test", data.BUNDLED_DIR)


@pytest.fixture(scope="session")
def int8_model():
    from mnist_edge.device.inference import model

    path = BUNDLED / "mnist_cnn_int8.tflite"
    if not path.is_file():
        pytest.fail("no bundled int8 model: run `make bundle`")
    return model.load(path)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """No test reads or writes the user's real cache or state (serve's kept token), and
    none downloads."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.getbasetemp() / "state"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("data")))  # installed models: per test


def photo_of(digit: np.ndarray, seed: int = 0, size: int = 200) -> np.ndarray:
    """A dark-on-light, noisy, off-centre float image of an MNIST digit."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    ink = np.asarray(Image.fromarray(digit).resize((size // 2, size // 2)), np.float32) / 255
    canvas = np.zeros((size, int(size * 1.3)), np.float32)
    oy, ox = rng.integers(5, size // 2 - 5), rng.integers(5, canvas.shape[1] - size // 2 - 5)
    canvas[oy : oy + size // 2, ox : ox + size // 2] = ink
    photo = 0.9 - 0.75 * canvas + rng.normal(0, 0.02, canvas.shape)
    return np.clip(photo, 0, 1).astype(np.float32)


def write_idx(path: str | Path, array: np.ndarray, *, compress: bool | None = None) -> None:
    """Test data: uint8 images (N,28,28) or labels (N,) as IDX (gzip when the name ends in .gz)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    if array.ndim == 3:
        header = struct.pack(">IIII", idx.IMAGES_MAGIC, *array.shape)
    elif array.ndim == 1:
        header = struct.pack(">II", idx.LABELS_MAGIC, array.shape[0])
    else:
        raise ValueError(f"IDX arrays are (N,28,28) or (N,), got {array.shape}")
    data = header + array.tobytes()
    path = Path(path)
    if compress if compress is not None else path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)


def damaged_copy(src: Path, dst: Path, share: float, seed: int = 0) -> Path:
    """A copy of a TFLite model whose largest int8/float32 weight matrix has `share` of its
    values replaced by random ones: a weaker model of the same shape, made without TensorFlow
    (the weights are found in the file by their bytes, read back through the interpreter)."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    data = bytearray(src.read_bytes())
    interpreter = Interpreter(model_path=str(src))
    interpreter.allocate_tensors()
    weights = []
    for d in interpreter.get_tensor_details():
        try:
            value = interpreter.get_tensor(d["index"])
        except ValueError:  # an activation: no data before invoke
            continue
        if value.ndim == 2 and value.dtype in (np.int8, np.float32):
            weights.append(value)
    matrix = max(weights, key=lambda w: w.size)
    raw = matrix.tobytes()
    at = bytes(data).find(raw)
    assert at >= 0 and bytes(data).count(raw) == 1, "weights not found once in the file"
    rng = np.random.default_rng(seed)
    damaged = matrix.copy().ravel()
    pick = rng.random(damaged.size) < share
    if damaged.dtype == np.int8:
        damaged[pick] = rng.integers(-127, 128, int(pick.sum()))
    else:
        damaged[pick] = rng.normal(0, float(np.abs(matrix).max()), int(pick.sum()))
    data[at:at + len(raw)] = damaged.astype(matrix.dtype).tobytes()
    dst.write_bytes(bytes(data))
    return dst


@pytest.fixture(scope="session")
def weak_int8(tmp_path_factory) -> Path:
    """The bundled tutorial int8 model with 40% of its dense weights randomised (about 95% on
    the first 500 test digits, its float32 reference 99+%), alone in a folder: no manifest, so
    nothing names its reference."""
    folder = tmp_path_factory.mktemp("weak")
    return damaged_copy(BUNDLED / "mnist_cnn_int8.tflite", folder / "weak_int8.tflite", 0.4)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServeProcess:
    """`mnist-edge serve ARGS` (the installed command) in its own process on a free port of
    `host`, its stderr read line by line in a thread: the one harness for tests that need a
    real process (signals, exit codes, what it prints). Use it in a `with`: the process is
    killed on the way out whatever happened."""

    def __init__(self, *args: str, host: str = "127.0.0.1") -> None:
        self.port = free_port(host)
        self.url = f"http://{host}:{self.port}"
        exe = Path(sys.executable).parent / "mnist-edge"
        command = [str(exe), "serve", "--port", str(self.port), *args]
        if host != "127.0.0.1":
            command += ["--host", host]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        self.lines: list[str] = []
        stream = self.proc.stderr
        assert stream is not None
        self._reader = threading.Thread(target=lambda: self.lines.extend(iter(stream.readline, "")),
                                        daemon=True)
        self._reader.start()

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)

    def listening(self, tries: int = 400) -> ServeProcess:
        """Returns once /healthz answers at all; fails the test if the process ended first."""
        import httpx

        for _ in range(tries):
            assert self.proc.poll() is None, f"serve exited {self.proc.returncode}: {self.stderr}"
            try:
                httpx.get(self.url + "/healthz")
                return self
            except httpx.ConnectError:
                time.sleep(0.05)
        raise AssertionError(f"serve never listened on {self.url}: {self.stderr}")

    def line_with(self, text: str, timeout: float = 30) -> str:
        """The first stderr line holding `text` (waiting for it), or the test fails."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = next((line for line in list(self.lines) if text in line), None)
            if found is not None:
                return found
            time.sleep(0.05)
        raise AssertionError(f"serve never said {text!r}: {self.stderr}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> tuple[int, str]:
        """Sends `sig`, waits for the exit: (exit code, all of stderr)."""
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code, self.stderr

    @property
    def stderr(self) -> str:
        return "".join(self.lines)
