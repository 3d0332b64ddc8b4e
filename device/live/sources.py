"""Frame sources for `mnist-edge camera` and `serve` (the loop that reads them: live/loop.py).

Sources: a Raspberry Pi camera (picamera2), an OpenCV webcam (`opencv:N`) or video file,
or a folder of image files. Live cameras are read through `Resilient`, which turns
timeouts, failed reads, frozen frames and disconnects into bounded reconnect attempts with
back-off, then a CameraError (exit 1) with a hint.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mnist_edge.device.errors import BadImageError, CameraError, UsageError
from mnist_edge.device.reading import decode

TIMEOUT_S = 2.0  # seconds to wait for a frame before reconnecting
RETRIES = 3  # reconnect attempts before giving up
CAMERA_HINT = (
    "check the cable and that no other program (libcamera-hello, another mnist-edge) "
    "holds the camera; list cameras with `libcamera-hello --list-cameras` or `v4l2-ctl "
    "--list-devices`"
)


class Source(Protocol):
    name: str
    live: bool

    def read(self) -> np.ndarray | None:
        """The next frame (H,W) or (H,W,3) uint8 RGB, or None at the end of a file/folder.
        Live sources raise CameraError when a read fails."""

    def close(self) -> None: ...


class FolderSource:
    """Image files in a folder, in name order; unreadable files are reported and skipped."""

    live = False

    def __init__(self, folder: Path, on_skip: Callable[[str], None] | None = None):
        self.name = str(folder)
        self.files = decode.files_in(folder)
        if not self.files:
            raise BadImageError(
                f"{folder}: no image files ({', '.join(sorted(decode.IMAGE_SUFFIXES))})")
        self._it = iter(self.files)
        self.on_skip = on_skip
        self.current: Path | None = None

    def read(self) -> np.ndarray | None:
        for path in self._it:
            try:
                gray = decode.load_gray(path)
            except BadImageError as e:
                if self.on_skip:
                    self.on_skip(str(e))
                continue
            self.current = path
            return np.round(gray * 255).astype(np.uint8)
        return None

    def close(self) -> None:
        pass


class OpenCVSource:
    """A webcam index or a video file through cv2.VideoCapture (the [camera] extra)."""

    def __init__(self, target: int | str, width: int = 640, height: int = 480):
        try:
            import cv2
        except ImportError:
            raise CameraError(
                "OpenCV is not installed: pip install 'mnist-edge[camera]' "
                "(or use --source DIR with a folder of frames)"
            ) from None
        self.cv2 = cv2
        self.target = target
        self.live = isinstance(target, int)
        self.name = f"opencv:{target}" if self.live else str(target)
        self.size = (width, height)
        self.cap: Any = None
        self.open()

    def open(self) -> None:
        self.cap = self.cv2.VideoCapture(self.target)
        if self.live:
            self.cap.set(self.cv2.CAP_PROP_FRAME_WIDTH, self.size[0])
            self.cap.set(self.cv2.CAP_PROP_FRAME_HEIGHT, self.size[1])
        if not self.cap.isOpened():
            self.cap.release()
            if not self.live:  # a file that cannot be opened is bad input, not a device failure
                raise BadImageError(f"{self.name}: cannot open the video file (corrupt or "
                                    "in a format OpenCV cannot read)")
            raise CameraError(f"{self.name}: cannot open the camera; {CAMERA_HINT}")

    @property
    def fps(self) -> float | None:
        """The frame rate a video file was recorded at, when it says."""
        value = float(self.cap.get(self.cv2.CAP_PROP_FPS)) if self.cap is not None else 0.0
        return value if 0 < value < 1000 else None

    def read(self) -> np.ndarray | None:
        ok, frame = self.cap.read()
        if not ok or frame is None:
            if self.live:
                raise CameraError(f"{self.name}: the camera returned no frame")
            return None
        if frame.ndim == 3:  # BGR -> RGB, contiguous (a reversed view costs a copy later)
            return self.cv2.cvtColor(frame, self.cv2.COLOR_BGR2RGB)
        return frame

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


class Picamera2Source:
    """The Raspberry Pi camera through picamera2 (from Raspberry Pi OS's python3-picamera2)."""

    live = True

    def __init__(self, width: int = 640, height: int = 480):
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise CameraError(
                "picamera2 is not installed: on Raspberry Pi OS `sudo apt install "
                "python3-picamera2` and create the venv with --system-site-packages"
            ) from None
        self.name = "picamera2"
        self._cls = Picamera2
        self.size = (width, height)
        self.cam: Any = None
        self.open()

    def open(self) -> None:
        try:
            self.cam = self._cls()
            # "RGB888" is 24-bit, stored B,G,R per pixel in numpy: reversed to RGB in read().
            config = self.cam.create_preview_configuration(
                main={"size": self.size, "format": "RGB888"}
            )
            self.cam.configure(config)
            self.cam.start()
        except Exception as e:  # IndexError when no camera is attached, RuntimeError when busy
            self.close()
            raise CameraError(f"picamera2: cannot open the camera ({e}); {CAMERA_HINT}") from None

    def read(self) -> np.ndarray | None:
        try:
            frame = self.cam.capture_array("main")
        except Exception as e:
            raise CameraError(f"picamera2: capture failed ({e})") from None
        return frame[..., 2::-1]

    def close(self) -> None:
        if self.cam is not None:
            try:
                self.cam.stop()
                self.cam.close()
            except Exception:
                pass
            self.cam = None


class _ReadThread:
    """One long-lived thread that reads `source` on request, so a read can time out without
    a thread per frame. A read that never returns keeps this thread; `stop` then reports
    False and the caller must not close the source under it."""

    def __init__(self, source: Source):
        self.source = source
        self.requests: queue.Queue[None] = queue.Queue(maxsize=1)
        self.results: queue.Queue[Any] = queue.Queue(maxsize=1)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="camera-read")
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.requests.get(timeout=0.05)
            except queue.Empty:
                continue
            try:
                got: Any = self.source.read()
            except BaseException as e:  # passed to the caller
                got = e
            self.results.put(got)

    def read(self, timeout: float) -> Any:
        """The next frame, the exception the read raised, or queue.Empty on a timeout."""
        self.requests.put(None)
        return self.results.get(timeout=timeout)

    def stop(self, timeout: float) -> bool:
        """Stop the thread; True when it has ended (the source is free to close)."""
        self.stopping.set()
        self.thread.join(timeout)
        return not self.thread.is_alive()


class Resilient:
    """Wraps a live source: each read has a timeout (one reader thread per opened source),
    and a failed, timed-out or frozen read triggers up to `retries` reopen attempts with
    exponential back-off. The reader thread is joined before its source is closed."""

    live = True

    def __init__(self, opener: Callable[[], Source], *, timeout: float = TIMEOUT_S, retries: int = RETRIES,
                 backoff: float = 0.5, frozen_after: int = 60,
                 sleep: Callable[[float], None] | None = None,
                 log: Callable[[str], None] | None = None):
        self.opener, self.timeout, self.retries = opener, timeout, retries
        self.backoff, self.frozen_after = backoff, frozen_after
        self.sleep = sleep or (lambda seconds: time.sleep(seconds))
        self.log = log or (lambda _msg: None)
        self.reconnects = 0
        self.source = self._open_with_retries()
        self.reader = _ReadThread(self.source)
        self.name = self.source.name
        self._last_hash: bytes | None = None
        self._same = 0

    def _open_with_retries(self) -> Source:
        last: CameraError | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                return self.opener()
            except CameraError as e:
                last = e
                self.log(f"camera not ready ({e}); attempt {attempt + 1} of {self.retries + 1}")
        assert last is not None
        raise CameraError(f"{last} (gave up after {self.retries + 1} attempts)")

    def _read_once(self) -> np.ndarray:
        try:
            got = self.reader.read(self.timeout)
        except queue.Empty:
            raise CameraError(f"{self.name}: no frame within {self.timeout:.1f} s") from None
        if isinstance(got, BaseException):
            raise got if isinstance(got, CameraError) else CameraError(f"{self.name}: {got}")
        if got is None:
            raise CameraError(f"{self.name}: the camera returned no frame")
        digest = hashlib.blake2b(got[::8, ::8].tobytes(), digest_size=8).digest()
        self._same = self._same + 1 if digest == self._last_hash else 0
        self._last_hash = digest
        if self._same >= self.frozen_after:
            self._same = 0
            raise CameraError(f"{self.name}: {self.frozen_after} identical frames (frozen)")
        return got

    def read(self) -> np.ndarray | None:
        for attempt in range(self.retries + 1):
            try:
                return self._read_once()
            except CameraError as e:
                if attempt == self.retries:
                    raise CameraError(
                        f"{e}; gave up after {self.retries} reconnect attempts; {CAMERA_HINT}"
                    ) from None
                self.log(f"{e}; reconnecting ({attempt + 1}/{self.retries})")
                self._close_source()
                self.sleep(self.backoff * 2**attempt)
                self.reconnects += 1
                self.source = self._open_with_retries()
                self.reader = _ReadThread(self.source)
        return None  # unreachable

    def _close_source(self) -> None:
        if self.reader.stop(self.timeout):
            self.source.close()
        else:  # still inside read(): closing the device under it could crash the driver
            self.log(f"{self.name}: a read is still blocked; leaving that device open")

    def close(self) -> None:
        self._close_source()


def is_live(spec: str) -> bool:
    """A camera (retried when it fails), not a file or folder that ends."""
    return spec in ("auto", "picamera2") or spec.startswith("opencv:")


def open_source(spec: str, log: Callable[[str], None] | None = None, **resilience: Any) -> Source:
    """auto | picamera2 | opencv:N | path to a video file | path to a folder of frames."""
    if spec == "auto":
        try:
            import picamera2  # noqa: F401

            spec = "picamera2"
        except ImportError:
            spec = "opencv:0"
    if spec == "picamera2":
        return Resilient(Picamera2Source, log=log, **resilience)
    if spec.startswith("opencv:"):
        index_text = spec.split(":", 1)[1]
        if not index_text.isdigit():
            raise UsageError(f"--source {spec}: expected opencv:N with N a camera index")
        index = int(index_text)
        return Resilient(lambda: OpenCVSource(index), log=log, **resilience)
    path = Path(spec)  # files and folders are not live: no reconnects
    if path.is_dir():
        return FolderSource(path, on_skip=log)
    if path.is_file():
        return OpenCVSource(str(path))
    raise UsageError(
        f"--source {spec}: no such file or folder (use auto, picamera2, opencv:N, a video or a folder)"
    )


def parse_roi(text: str) -> tuple[int, int, int, int]:
    """"x,y,w,h": four whole numbers of pixels, w and h above 0 (UsageError otherwise)."""
    parts = text.split(",")
    if len(parts) != 4 or not all(p.strip().isdigit() for p in parts):
        raise UsageError(f"--roi {text}: expected x,y,w,h: four whole numbers of pixels")
    x, y, w, h = (int(p) for p in parts)
    if w == 0 or h == 0:
        raise UsageError(f"--roi {text}: w and h must be above 0")
    return x, y, w, h


@dataclass
class Roi:
    x: int
    y: int
    w: int
    h: int

    @staticmethod
    def parse(text: str | None, shape: tuple[int, ...]) -> Roi:
        """"x,y,w,h" in pixels, or None for a centred square of 60% of the shorter side."""
        h, w = shape[:2]
        if text is None:
            side = int(min(h, w) * 0.6)
            return Roi((w - side) // 2, (h - side) // 2, side, side)
        x, y, rw, rh = parse_roi(text)
        if x + rw > w or y + rh > h:
            raise UsageError(f"--roi {text}: outside the {w}x{h} frame")
        return Roi(x, y, rw, rh)

    def cut(self, frame: np.ndarray) -> np.ndarray:
        return frame[self.y : self.y + self.h, self.x : self.x + self.w]


def frames(source: Source, limit: int | None = None) -> Iterator[np.ndarray]:
    count = 0
    while limit is None or count < limit:
        frame = source.read()
        if frame is None:
            return
        count += 1
        yield frame
