"""Edges a newcomer hits: standard input and pipes, white-on-transparent drawings, two lines
of digits, batches that stay accountable, debug images that never overwrite, folder order,
output files, and one rule for exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mnist_edge.device.cli import app

from .conftest import ROOT

runner = CliRunner()
SEVEN = ROOT / "examples" / "digit7_test0.png"
EXE = Path(sys.executable).parent / "mnist-edge"


def run(*args: str, **kw):
    return runner.invoke(app, list(args), **kw)


def test_classify_reads_standard_input():
    res = subprocess.run([str(EXE), "classify", "-"], input=SEVEN.read_bytes(), capture_output=True)
    assert res.returncode == 0 and res.stdout.decode().startswith("-: 7 ("), res.stderr
    empty = subprocess.run([str(EXE), "classify", "-"], input="", capture_output=True, text=True)
    assert empty.returncode == 2 and "empty input" in empty.stderr


def test_classify_reads_a_fifo(tmp_path):
    fifo = tmp_path / "digit.fifo"
    os.mkfifo(fifo)

    def writer() -> None:
        with open(fifo, "wb") as f:
            f.write(SEVEN.read_bytes())

    t = threading.Thread(target=writer)
    t.start()
    res = run("classify", str(fifo))
    t.join(timeout=5)
    assert res.exit_code == 0 and ": 7 (" in res.stdout


def test_white_digit_on_transparent_canvas(tmp_path, test_split):
    """How drawing apps and HTML canvases export: white strokes, alpha marks the drawing."""
    big = np.asarray(Image.fromarray(test_split[0][0]).resize((112, 112), Image.Resampling.BICUBIC))
    rgba = np.zeros((112, 112, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[..., 3] = big
    Image.fromarray(rgba, "RGBA").save(tmp_path / "canvas.png")
    res = run("classify", "--json", str(tmp_path / "canvas.png"))
    assert json.loads(res.stdout)["digit"] == 7


def _two_lines(path: Path, test_split) -> None:
    x, y = test_split
    first = {d: int(np.flatnonzero(y == d)[0]) for d in range(10)}

    def line(ds):
        return np.concatenate([np.pad(x[first[d]], ((4, 4), (4, 4))) for d in ds], axis=1)

    grid = np.concatenate([line([1, 2]), np.zeros((12, 72), np.uint8), line([3, 4])], axis=0)
    big = np.asarray(Image.fromarray(grid).resize((grid.shape[1] * 4, grid.shape[0] * 4),
                                                  Image.Resampling.BICUBIC))
    Image.fromarray(np.pad(235 - (big * 0.8).astype(np.uint8), 30, constant_values=235)).save(path)


def test_multi_reads_lines_top_to_bottom(tmp_path, test_split):
    _two_lines(tmp_path / "grid.png", test_split)
    text = run("classify", "--multi", str(tmp_path / "grid.png"))
    assert ": 12 34 (2 lines, top to bottom)" in text.stdout
    obj = json.loads(run("classify", "--multi", "--json", str(tmp_path / "grid.png")).stdout)
    assert obj["number"] == "12 34"
    assert [(d["digit"], d["row"]) for d in obj["digits"]] == [(1, 0), (2, 0), (3, 1), (4, 1)]


def test_json_batch_keeps_a_line_for_a_failed_file(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    res = run("classify", "--json", str(SEVEN), str(bad))
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert res.exit_code == 2 and len(lines) == 2
    assert lines[0]["digit"] == 7 and lines[1]["file"] == str(bad) and "not an image" in lines[1]["error"]


def test_debug_images_never_overwrite_each_other(tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "digit.png").write_bytes(SEVEN.read_bytes())
    out = tmp_path / "debug"
    res = run("classify", "--debug-dir", str(out), str(tmp_path / "a" / "digit.png"),
              str(tmp_path / "b" / "digit.png"))
    assert res.exit_code == 0
    names = sorted(p.name for p in out.iterdir())
    per_file = ["28x28", "grey", "grid", "ink", "mask"]
    assert names == sorted([f"digit_{s}.png" for s in per_file] + [f"digit_{s}_2.png" for s in per_file]
                           + ["digit_trace.json", "digit_trace_2.json"])
    trace = json.loads((out / "digit_trace.json").read_text())
    assert trace["file"].endswith("digit.png")
    assert [s["stage"] for s in trace["stages"]][-2:] == ["crop", "decision"]


@pytest.mark.parametrize("target, message", [
    ("file", "is a file, not a folder"),
    ("readonly", "not writable"),
    ("/proc/mnist-edge-debug", "cannot create it"),
])
def test_debug_dir_problems_are_one_line_exit_2(tmp_path, target, message):
    if target == "file":
        target = str(tmp_path / "file")
        Path(target).write_text("x")
    elif target == "readonly":
        if os.geteuid() == 0:
            pytest.skip("root writes anywhere")
        Path(tmp_path / "ro").mkdir(mode=0o500)
        target = str(tmp_path / "ro")
    res = run("classify", "--debug-dir", target, str(SEVEN))
    assert res.exit_code == 2 and message in res.stderr and res.stderr.count("\n") == 1


def test_folders_in_natural_order_hidden_skipped_others_named(tmp_path):
    for name in ("frame10.png", "frame2.png", "frame1.png", ".hidden.png"):
        (tmp_path / name).write_bytes(SEVEN.read_bytes())
    (tmp_path / "notes.txt").write_text("not an image")
    res = run("classify", str(tmp_path))
    names = [Path(line.split(":")[0]).name for line in res.stdout.splitlines()]
    assert names == ["frame1.png", "frame2.png", "frame10.png"]
    assert "skipped:" in res.stderr and "notes.txt" in res.stderr and ".hidden" not in res.stderr


@pytest.mark.parametrize("suffix, magic", [(".jpg", b"\xff\xd8"), (".png", b"\x89PNG"), (".bmp", b"BM")])
def test_show_out_honours_the_suffix(tmp_path, suffix, magic):
    res = run("show", "0", "--out", str(tmp_path / f"digit{suffix}"))
    assert res.exit_code == 0 and (tmp_path / f"digit{suffix}").read_bytes().startswith(magic)


@pytest.mark.parametrize("out, message", [("dir", "is a folder"), ("x.tiff", "unknown image type"),
                                          ("/proc/x.png", "cannot write")])
def test_show_out_problems_exit_2(tmp_path, out, message):
    target = tmp_path if out == "dir" else (out if out.startswith("/") else tmp_path / out)
    res = run("show", "0", "--out", str(target))
    assert res.exit_code == 2 and message in res.stderr


def test_full_disk_is_one_line_exit_2():
    res = subprocess.run([str(EXE), "show", "0", "--out", "/dev/full"], capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr


def test_unknown_runtime_same_exit_from_option_and_environment():
    assert run("info", "--runtime", "bogus").exit_code == 2
    env = {**os.environ, "MNIST_EDGE_RUNTIME": "bogus"}
    res = subprocess.run([str(EXE), "classify", str(SEVEN)], capture_output=True, text=True, env=env)
    assert res.returncode == 2 and "MNIST_EDGE_RUNTIME" in res.stderr


def test_camera_rules_match_classify(tmp_path):
    """A corrupt video and a folder of undecodable frames are bad input: exit 2, as classify."""
    video = tmp_path / "broken.avi"
    video.write_bytes(b"RIFF\x00\x00\x00\x00AVI junk")
    pytest.importorskip("cv2")
    assert run("camera", "--source", str(video)).exit_code == 2
    frames = tmp_path / "frames"
    frames.mkdir()
    (frames / "a.png").write_bytes(b"\x89PNG broken")
    res = run("camera", "--source", str(frames))
    assert res.exit_code == 2 and "no readable frame" in res.stderr


def test_trust_model_on_every_command_that_loads_one():
    for command in ("classify", "camera", "check", "bench", "info", "serve", "robustness"):
        assert "--trust-model" in run(command, "--help").stdout, command


def test_roi_is_checked_before_the_camera_opens():
    res = run("camera", "--source", "/no/such/video.avi", "--roi", "1,2,three,4")
    assert res.exit_code == 2 and "--roi" in res.stderr


def test_help_lists_every_command_uncut():
    listing = run("--help").stdout.split("Commands:")[1]
    assert "..." not in listing and len(listing.strip().splitlines()) == 13
    assert "history " in listing
    assert "--model MODEL" in run("classify", "--help").stdout.replace("  ", " ")


def test_results_to_a_full_disk_is_one_line_exit_2():
    res = subprocess.run(f"'{EXE}' classify '{SEVEN}' > /dev/full", shell=True, capture_output=True,
                         text=True)
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0
    assert "cannot write the results" in res.stderr


def test_convert_refuses_an_unwritable_out_before_any_work(capsys):
    from mnist_edge.convert.convert import main

    assert main(["--model", str(SEVEN), "--out", "/proc/mnist-edge-out"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --out /proc/mnist-edge-out: cannot write there") and err.count("\n") == 1
