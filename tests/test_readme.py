"""The README's sample output is what the bundled model prints (a retrained model must not
leave it stale)."""

from __future__ import annotations

import re

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from mnist_edge.device.cli import app

from .conftest import ROOT


def _demo_block() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("`make demo` prints", 1)[1].split("```", 2)[1]
    return [line for line in block.splitlines() if line.startswith("examples/")]


def test_the_readme_demo_lines_are_what_classify_prints():
    lines = _demo_block()
    assert len(lines) >= 4
    for line in lines:
        name = line.split(":", 1)[0]
        args = ["classify", *(["--multi"] if "number_" in name else []), str(ROOT / name)]
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, res.output
        printed = res.stdout.strip().replace(str(ROOT) + "/", "")
        assert printed == line, f"README says {line!r}, classify prints {printed!r}"


def test_a_blank_page_answers_no_digit_found(tmp_path):
    assert "answers `no digit found`" in " ".join((ROOT / "README.md").read_text().split())
    noise = np.random.default_rng(0).integers(0, 6, (480, 640)).astype(np.uint8)
    page = np.full((480, 640), 225, np.uint8) + noise
    Image.fromarray(page).save(tmp_path / "blank_page.png")
    res = CliRunner().invoke(app, ["classify", str(tmp_path / "blank_page.png")])
    assert res.exit_code == 0 and re.search(r"blank_page.png: no digit found$", res.stdout.strip())


def test_a_bad_file_in_a_batch_is_one_line_and_a_count(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    res = CliRunner().invoke(app, ["classify", str(ROOT / "examples" / "digit7_test0.png"), str(bad)])
    assert res.exit_code == 2
    err = res.stderr.strip().splitlines()
    assert len(err) == 2 and err[0].startswith(f"error: {bad}:")
    assert err[1] == "1 of 2 files could not be classified"
