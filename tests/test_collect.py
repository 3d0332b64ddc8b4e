"""`mnist-edge collect` and `classify --save-to`: a user's own examples saved in the layout
`check --images` reads, once per settled view, near-duplicates skipped, Ctrl-C keeping them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mnist_edge.device.cli import app
from mnist_edge.device.data import examples
from mnist_edge.device.evaluation import datasets
from mnist_edge.device.reading.params import DEFAULT as READING

from .conftest import ROOT, photo_of

EXAMPLE7 = ROOT / "examples" / "digit7_test0.png"


def cli(*args: str, **kwargs):
    return CliRunner().invoke(app, list(args), **kwargs)


def frames_folder(folder: Path, digits: list[np.ndarray], repeat: int = 4) -> Path:
    """A folder of frames, as a camera would give them: each digit held still for `repeat`
    frames, an empty page between two digits."""
    folder.mkdir(parents=True, exist_ok=True)
    blank = np.full((200, 260), 230, np.uint8)
    n = 0
    for i, digit in enumerate(digits):
        page = np.round(photo_of(digit, seed=i) * 255).astype(np.uint8)
        for frame in [page] * repeat + [blank]:
            Image.fromarray(frame).save(folder / f"{n:04d}.png")
            n += 1
    return folder


@pytest.fixture
def threes(test_split) -> list[np.ndarray]:
    x, y = test_split
    return list(x[y == 3][:4])


def test_collect_saves_one_example_per_settled_view_in_the_image_folder_layout(tmp_path, threes):
    frames = frames_folder(tmp_path / "frames", threes)
    out = tmp_path / "mine"
    res = cli("collect", str(out), "--source", str(frames), "--label", "3", "--count", "3",
              "--roi", "0,0,260,200")
    assert res.exit_code == 0, res.output
    saved = sorted((out / "3").glob("*.png"))
    assert len(saved) == 3 and "saved 3 examples" in res.stderr
    assert len(res.stdout.strip().splitlines()) == 3  # one line per example
    for frame in saved:
        crop = Image.open(out / "3" / ".meta" / frame.name)
        assert crop.size == (28, 28) and np.asarray(crop).max() > 100  # the digit, cut
        record = json.loads((out / "3" / ".meta" / frame.with_suffix(".json").name).read_text())
        assert record["label"] == "3" and record["model"] == "mnist_robust_int8.tflite"
        assert record["read"] in (*range(10), None)
        assert record["reading_pipeline"] == READING.version()
    # `check --images` reads the same folder (only the frames: the sidecars are hidden)
    assert [label for _, label in datasets.class_files(out)] == [3, 3, 3]
    x, y, _ = examples.load(out)
    assert x.shape == (3, 28, 28) and list(y) == [3, 3, 3]

    again = cli("collect", str(out), "--source", str(frames), "--label", "3", "--count", "5",
                "--roi", "0,0,260,200")
    assert again.exit_code == 0  # the same views again: only the fourth digit is new
    assert len(list((out / "3").glob("*.png"))) == 4 and "saved 1 example " in again.stderr


def test_collect_asks_for_each_digit_when_no_label_is_given(tmp_path, test_split):
    x, y = test_split
    frames = frames_folder(tmp_path / "frames", [x[y == 1][0], x[y == 8][0]])
    out = tmp_path / "mine"
    res = cli("collect", str(out), "--source", str(frames), "--count", "1",
              "--roi", "0,0,260,200", input="1\nseven\n8\n\n")
    assert res.exit_code == 0, res.output
    assert "digit to show" in res.stderr and "expected a digit 0-9 or 'none'" in res.stderr
    # piped answers are echoed, so every message after a prompt starts on its own line
    assert [line.split(":")[-1].strip() for line in res.stderr.splitlines()
            if line.startswith("digit to show")] == ["1", "seven", "8", ""]
    assert len(list((out / "1").glob("*.png"))) == 1 and len(list((out / "8").glob("*.png"))) == 1


def test_collect_stops_at_the_end_of_piped_answers(tmp_path, test_split):
    """`printf '1\n' | mnist-edge collect`: the answers end without an empty line; what was
    saved is kept and summarised, nothing "Aborted!"; each prompt's answer ends its line."""
    x, y = test_split
    frames = frames_folder(tmp_path / "frames", [x[y == 1][0]])
    out = tmp_path / "mine"
    res = subprocess.run([sys.executable, "-m", "mnist_edge.device.cli", "collect", str(out),
                          "--source", str(frames), "--count", "1", "--roi", "0,0,260,200"],
                         input="1\n", capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "Aborted" not in res.stderr and "saved 1 example" in res.stderr
    # (click 8.2+ writes the prompt's trailing space to stdout, older click to stderr)
    assert re.search(r"Enter to stop\): ?1\n", res.stderr)
    assert len(list((out / "1").glob("*.png"))) == 1


def test_collect_empty_frames_and_bad_options(tmp_path, threes):
    frames = frames_folder(tmp_path / "frames", threes[:1], repeat=1)
    out = tmp_path / "mine"
    res = cli("collect", str(out), "--source", str(frames), "--label", "none", "--settle", "1")
    assert res.exit_code == 0 and len(list((out / "none").glob("*.png"))) == 2  # page, blank
    assert cli("collect", str(out), "--source", str(frames), "--label", "x").exit_code == 2
    assert cli("collect", str(EXAMPLE7), "--source", str(frames), "--label", "1").exit_code == 2
    nothing = cli("collect", str(tmp_path / "other"), "--source", str(frames), "--label", "3",
                  "--settle", "5")  # never still for 5 frames: nothing saved, exit 1
    assert nothing.exit_code == 1 and "saved 0 examples" in nothing.stderr


def test_classify_save_to_keeps_each_file_as_an_example(tmp_path):
    out = tmp_path / "mine"
    res = cli("classify", str(EXAMPLE7), "--save-to", str(out), "--label", "7")
    assert res.exit_code == 0 and "7 (" in res.stdout
    (frame,) = (out / "7").glob("*.png")
    record = json.loads((out / "7" / ".meta" / frame.with_suffix(".json").name).read_text())
    assert record["read"] == 7 and record["source"] == str(EXAMPLE7)
    assert np.asarray(Image.open(frame)).shape == np.asarray(Image.open(EXAMPLE7).convert("L")).shape
    assert cli("classify", str(EXAMPLE7), "--save-to", str(out)).exit_code == 2  # no --label
    assert cli("classify", str(EXAMPLE7), "--label", "7").exit_code == 2  # no folder


def test_ctrl_c_keeps_every_example_saved_and_no_half_one(tmp_path, threes, monkeypatch):
    """Ctrl-C while the third example is being written (its crop is on disk, its record is
    not): the two before stay, the third does not count anywhere, the exit is clean."""
    from mnist_edge.device import atomic

    frames = frames_folder(tmp_path / "frames", threes)
    out = tmp_path / "mine"
    real, records = atomic.write_text, []

    def write_text(path, text):
        records.append(path)
        if len(records) == 3:
            raise KeyboardInterrupt
        return real(path, text)

    monkeypatch.setattr(atomic, "write_text", write_text)
    res = cli("collect", str(out), "--source", str(frames), "--label", "3", "--count", "4",
              "--roi", "0,0,260,200")
    assert res.exit_code == 0 and "stopped" in res.stderr and "saved 2 examples" in res.stderr
    assert len(datasets.class_files(out)) == 2 and len(examples.load(out)[1]) == 2


def test_the_page_just_saved_is_not_saved_again_under_the_next_label(tmp_path, test_split):
    """A 3 stays in view after it was saved while the next digit (8) is asked for: nothing is
    taken until the view has been clear; then the 8 is."""
    x, y = test_split
    folder = tmp_path / "frames"
    folder.mkdir()
    three = np.round(photo_of(x[y == 3][0], seed=1) * 255).astype(np.uint8)
    eight = np.round(photo_of(x[y == 8][0], seed=2) * 255).astype(np.uint8)
    blank = np.full(three.shape, 230, np.uint8)
    for n, frame in enumerate([three] * 10 + [blank] + [eight] * 4):
        Image.fromarray(frame).save(folder / f"{n:04d}.png")
    out = tmp_path / "mine"
    res = cli("collect", str(out), "--source", str(folder), "--count", "1",
              "--roi", f"0,0,{three.shape[1]},{three.shape[0]}", input="3\n8\n\n")
    assert res.exit_code == 0, res.output
    (saved_eight,) = (out / "8" / ".meta").glob("*.json")
    assert json.loads(saved_eight.read_text())["frame"] > 10  # the 8, not the 3 still in view
    assert len(list((out / "3").glob("*.png"))) == 1


def test_views_that_read_other_digits_end_the_label_and_are_taken_back(tmp_path, test_split):
    """`printf '0\n1\n' | collect --count 20` on a zero then ones: label 0 must not go on
    collecting the ones (it stored them under 0 and called them misread). Three views in a
    row read surely as other digits end the label, are taken back, and the summary says why."""
    x, y = test_split
    frames = frames_folder(tmp_path / "frames", [x[y == 0][0], *x[y == 1][:5]])
    out = tmp_path / "mine"
    res = subprocess.run([sys.executable, "-m", "mnist_edge.device.cli", "collect", str(out),
                          "--source", str(frames), "--count", "20", "--roi", "0,0,260,200"],
                         input="0\n1\n", capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert len(list((out / "0").glob("*.png"))) == 1  # the zero; the ones taken back
    assert len(list((out / "0" / ".meta").glob("*"))) == 2  # its crop and record only
    assert "label 0: 1 of 20 kept (the last 3 views read other digits" in res.stderr
    kept = len(list((out / "1").glob("*.png")))  # the ones after the answer 1
    assert kept >= 1 and f"label 1: {kept} of 20 kept (the frames ended)" in res.stderr
