"""The live loop of `mnist-edge camera`: frames -> ROI -> preprocessing -> one interpreter."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from . import camera, images
from .classify import classify_gray
from .errors import CameraError
from .model import Classifier


def run_camera(clf: Classifier, spec: str, *, frames: int | None, roi: str | None,
               json_out: bool, show: bool, timeout: float, retries: int,
               say: Callable[[str], None]) -> int:
    """Returns the exit code: 0 at the end of the stream, the frame limit or Ctrl-C."""
    source = camera.open_source(spec, log=say, timeout=timeout, retries=retries)
    window = _Window(say) if show else None
    count, shown, last = 0, 0, object()
    region: camera.Roi | None = None
    start = time.perf_counter()
    try:
        for frame in camera.frames(source, frames):
            if region is None or (region.x + region.w > frame.shape[1]
                                  or region.y + region.h > frame.shape[0]):
                region = camera.Roi.parse(roi, frame.shape)
            pred = classify_gray(clf, images.rgb_to_gray(region.cut(frame)))[0]
            count += 1
            name = getattr(source, "current", None)
            if json_out:
                print(json.dumps({
                    "frame": count - 1, "file": str(name) if name else None,
                    "digit": pred.digit,
                    "confidence": None if pred.confidence is None else round(pred.confidence, 6),
                    "probabilities": pred.probabilities, "model": str(clf.path),
                }), flush=True)
            elif pred.digit != last:
                label = "no digit" if pred.digit is None else f"{pred.digit} ({pred.confidence:.1%})"
                where = f" [{name.name}]" if name is not None else ""
                print(f"frame {count - 1}{where}: {label}", flush=True)
                shown += 1
            last = pred.digit
            if window is not None and not window.draw(frame, region, pred.digit):
                break
    except KeyboardInterrupt:
        say("stopped (Ctrl-C)")
    except CameraError:
        _report(say, count, start, source)
        raise
    finally:
        source.close()
        if window is not None:
            window.close()
    _report(say, count, start, source)
    return 0


def _report(say: Callable[[str], None], count: int, start: float, source: Any) -> None:
    elapsed = time.perf_counter() - start
    fps = count / elapsed if elapsed > 0 else 0.0
    extra = f", {source.reconnects} reconnects" if getattr(source, "reconnects", 0) else ""
    say(f"{count} frames from {source.name} in {elapsed:.2f} s ({fps:.1f} frames/s{extra})")


class _Window:
    """An OpenCV window, when a display and a GUI build of OpenCV exist."""

    def __init__(self, say: Callable[[str], None]):
        self.cv2: Any = None
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            say("--show: no display found; running without a window")
            return
        try:
            import cv2

            cv2.namedWindow("mnist-edge")
            self.cv2 = cv2
        except Exception as e:  # ImportError, or cv2.error from a headless build
            say(f"--show: cannot open a window ({str(e).splitlines()[0][:80]}); continuing")

    def draw(self, frame: np.ndarray, roi: camera.Roi, digit: int | None) -> bool:
        if self.cv2 is None:
            return True
        cv2 = self.cv2
        img = np.ascontiguousarray(frame[..., ::-1] if frame.ndim == 3 else frame)
        cv2.rectangle(img, (roi.x, roi.y), (roi.x + roi.w, roi.y + roi.h), (0, 255, 0), 2)
        cv2.putText(img, "-" if digit is None else str(digit), (roi.x, max(30, roi.y - 10)),
                    cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 255, 0), 2)
        cv2.imshow("mnist-edge", img)
        return (cv2.waitKey(1) & 0xFF) not in (ord("q"), 27)

    def close(self) -> None:
        if self.cv2 is not None:
            self.cv2.destroyAllWindows()
