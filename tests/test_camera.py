"""Camera sources: a real video written by OpenCV, and fakes for every failure mode."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mnist_edge.device.cli import app
from mnist_edge.device.errors import CameraError, UsageError
from mnist_edge.device.live import sources as camera

from .conftest import ROOT

runner = CliRunner()


@pytest.fixture
def video(tmp_path, test_split):
    """An MJPG .avi of 640x480 frames: digits 7,2,1,0 in turn, 6 frames each."""
    cv2 = pytest.importorskip("cv2")
    x, _ = test_split
    path = tmp_path / "digits.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15, (640, 480))
    assert writer.isOpened()
    for i in range(4):
        frame = np.full((480, 640), 225, np.uint8)
        big = np.asarray(Image.fromarray(x[i]).resize((160, 160), Image.Resampling.BICUBIC))
        frame[160:320, 240:400] -= (big * 0.8).astype(np.uint8)
        for _ in range(6):
            writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


def test_video_file_predictions(video):
    res = runner.invoke(app, ["camera", "--source", str(video)])
    assert res.exit_code == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert [line.split(": ")[1].split()[0] for line in lines] == ["7", "2", "1", "0"]
    assert "24 frames" in res.stderr and "frames/s" in res.stderr


def test_video_frame_limit_and_json(video):
    res = runner.invoke(app, ["camera", "--source", str(video), "--frames", "8", "--json"])
    assert res.exit_code == 0
    assert len(res.stdout.splitlines()) == 8


class FakeCam:
    """Scripted live source: each script item is a frame, an exception, or 'block'."""

    live = True
    opened = 0
    closed = 0

    def __init__(self, script):
        self.name = "fake"
        self.script = script
        FakeCam.opened += 1

    def read(self):
        item = self.script.pop(0) if self.script else np.zeros((48, 64), np.uint8)
        if isinstance(item, str) and item == "block":
            time.sleep(5)
            return None
        if isinstance(item, Exception):
            raise item
        return item

    def close(self):
        FakeCam.closed += 1


def opener_from(attempts):
    """attempts: list of (raise CameraError | script) consumed one per open."""

    def opener():
        item = attempts.pop(0)
        if isinstance(item, Exception):
            raise item
        return FakeCam(item)

    return opener


def frame(v=0):
    f = np.zeros((48, 64), np.uint8)
    f[0, 0] = v
    return f


@pytest.fixture(autouse=True)
def _reset():
    FakeCam.opened = FakeCam.closed = 0


def no_sleep(_):
    pass


def first_pixel(src: camera.Resilient) -> int:
    got = src.read()
    assert got is not None
    return int(got[0, 0])


def test_busy_then_available():
    src = camera.Resilient(opener_from([CameraError("busy"), CameraError("busy"), [frame(1)]]),
                           sleep=no_sleep)
    assert first_pixel(src) == 1


def test_never_available_gives_up_with_hint():
    sleeps: list[float] = []
    with pytest.raises(CameraError, match="gave up after 4 attempts"):
        camera.Resilient(opener_from([CameraError("busy")] * 4), sleep=sleeps.append)
    assert sleeps == [0.5, 1.0, 2.0]  # exponential back-off


def test_failed_read_reconnects():
    src = camera.Resilient(opener_from([[CameraError("no frame")], [frame(2)]]), sleep=no_sleep)
    assert first_pixel(src) == 2 and src.reconnects == 1 and FakeCam.closed == 1


def test_none_frames_then_give_up():
    attempts = [[None] for _ in range(4)]
    src = camera.Resilient(opener_from(list(attempts)), retries=3, sleep=no_sleep)
    with pytest.raises(CameraError, match="gave up after 3 reconnect attempts"):
        src.read()
    src.close()  # the caller closes (run_camera does, in a finally)
    assert FakeCam.opened == 4 and FakeCam.closed == 4


def test_blocking_read_times_out():
    src = camera.Resilient(opener_from([["block"], [frame(3)]]), timeout=0.2, sleep=no_sleep)
    assert first_pixel(src) == 3
    assert src.reconnects == 1  # the blocked read timed out (the block lasts 5 s)


def test_frozen_frames_trigger_reconnect():
    same = [frame(9)] * 5
    src = camera.Resilient(opener_from([list(same), [frame(4)]]), frozen_after=3, sleep=no_sleep)
    got = [first_pixel(src) for _ in range(4)]
    assert got == [9, 9, 9, 4] and src.reconnects == 1


def test_no_threads_leak_after_normal_reads():
    before = threading.active_count()
    src = camera.Resilient(opener_from([[frame(i) for i in range(50)]]), sleep=no_sleep)
    for _ in range(50):
        src.read()
    src.close()
    time.sleep(0.05)
    assert threading.active_count() <= before + 1


def test_camera_vanishes_mid_stream_exit_1(monkeypatch, int8_model):
    frames_ok = [np.full((120, 160, 3), 200, np.uint8)] * 3
    attempts = [frames_ok + [CameraError("device disconnected")]] + [CameraError("gone")] * 8

    monkeypatch.setattr(camera, "Picamera2Source", opener_from(attempts))
    monkeypatch.setattr(camera.time, "sleep", no_sleep)
    res = runner.invoke(app, ["camera", "--source", "picamera2", "--retries", "1"])
    assert res.exit_code == 1
    assert "gave up" in res.stderr and "3 frames" in res.stderr


def test_roi_parse():
    assert camera.Roi.parse(None, (480, 640)) == camera.Roi(176, 96, 288, 288)
    assert camera.Roi.parse("0,0,10,10", (480, 640)) == camera.Roi(0, 0, 10, 10)
    with pytest.raises(UsageError, match="outside"):
        camera.Roi.parse("600,0,100,10", (480, 640))


def test_camera_loop_reads_a_640x480_frame(test_split, int8_model):
    """Behaviour only (speed is bench/reading_speed.py's): a 640x480 RGB frame with a digit in
    its default ROI reads that digit through the live loop's Reader."""
    from mnist_edge.device.live.loop import Reader

    frame = np.full((480, 640, 3), 225, np.uint8)
    big = np.asarray(Image.fromarray(test_split[0][0]).resize((160, 160)), np.float32)
    frame[160:320, 240:400] -= (big * 0.8).astype(np.uint8)[..., None]
    assert frame.shape == (480, 640, 3)
    preds = Reader(int8_model).read(frame)
    assert preds[0].digit == 7 and Reader(int8_model).roi(frame) == camera.Roi(176, 96, 288, 288)


class _FakeCapture:
    """cv2.VideoCapture stand-in: opens, then returns (False, None) like a yanked webcam."""

    released = 0

    def __init__(self, target):
        self.target = target

    def set(self, *_):
        return True

    def isOpened(self):
        return True

    def read(self):
        return False, None

    def release(self):
        _FakeCapture.released += 1


def test_opencv_false_none_reconnects_then_exit_1(monkeypatch):
    import types

    fake_cv2 = types.SimpleNamespace(VideoCapture=_FakeCapture, CAP_PROP_FRAME_WIDTH=3,
                                     CAP_PROP_FRAME_HEIGHT=4)
    monkeypatch.setitem(__import__("sys").modules, "cv2", fake_cv2)
    monkeypatch.setattr(camera.time, "sleep", no_sleep)
    _FakeCapture.released = 0
    res = runner.invoke(app, ["camera", "--source", "opencv:0", "--retries", "2"])
    assert res.exit_code == 1
    assert "returned no frame" in res.stderr and "gave up after 2 reconnect attempts" in res.stderr
    assert "Traceback" not in res.stderr
    assert _FakeCapture.released == 3  # every opened capture was released


def test_one_reader_thread_joined_before_close():
    """Many reads, one reader thread; closing joins it before the device is closed; a read
    that never returns leaves its device open rather than closing it under the driver."""
    before = {t for t in threading.enumerate() if t.name == "camera-read"}
    src = camera.Resilient(opener_from([[frame(v) for v in range(20)]]), sleep=no_sleep)
    for v in range(20):
        assert first_pixel(src) == v
    readers = {t for t in threading.enumerate() if t.name == "camera-read"} - before
    assert len(readers) == 1
    src.close()
    assert not any(t.is_alive() for t in readers) and FakeCam.closed == 1

    blocked = camera.Resilient(opener_from([["block"], [frame(5)]]), timeout=0.2, retries=1,
                               sleep=no_sleep)
    assert first_pixel(blocked) == 5  # the blocked read timed out, a reconnect delivered
    assert FakeCam.closed == 1  # the device still inside read() was not closed


def test_each_frame_size_gets_its_own_region(int8_model):
    """A folder mixes sizes: after a 112x112 file, a 275x220 photo is read in its own default
    region, not in the small one (digit7/8/9 of examples/ read "no ink" when it was kept)."""
    from mnist_edge.device.live.loop import Reader
    from mnist_edge.device.reading import decode

    reader = Reader(int8_model)
    small = decode.load_gray(ROOT / "examples" / "digit6_test21_transparent.png")
    assert small.shape == (112, 112) and reader.read(small)[0].digit == 6
    for name, digit in (("digit7_test0.png", 7), ("digit8_test61.png", 8), ("digit9_test7.png", 9)):
        frame = decode.load_gray(ROOT / "examples" / name)
        assert reader.roi(frame) == camera.Roi.parse(None, frame.shape)
        assert reader.read(frame)[0].digit == digit, name
    assert reader.roi(small) == camera.Roi.parse(None, small.shape)
