"""Real photos measured per category (device/real_photos.py, `robustness --realphotos`), on a
small folder made here; the real set in ../shared/realphotos-dev is measured by CI's
`make robustness` and skipped here when absent."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mnist_edge.device.cli import app
from mnist_edge.device.errors import BadDataError
from mnist_edge.device.evaluation import real_photos
from mnist_edge.device.inference import bundled
from mnist_edge.device.inference import model as device_model

from .conftest import ROOT, photo_of

DEV = ROOT.parent / "shared" / "realphotos-dev"


def _folder(tmp_path, test_split):
    x, y = test_split
    (tmp_path / "images").mkdir()
    rows = ["file,category,label,repo,path,commit"]
    for i in range(4):
        name = f"images/single_{i}.png"
        Image.fromarray((photo_of(x[i], seed=i) * 255).astype(np.uint8)).save(tmp_path / name)
        rows.append(f"{name},single,{y[i]},me/a,{name},0")
    drawn = np.full((200, 200), 255, np.uint8)
    drawn[40:160, 40:160] = 255 - np.asarray(Image.fromarray(x[0]).resize((120, 120)))
    Image.fromarray(drawn).save(tmp_path / "images/drawn.png")
    rows.append(f"images/drawn.png,drawn,{y[0]},me/b,x,0")
    row = np.concatenate([np.pad(x[i], ((4, 4), (6, 6))) for i in (3, 2, 1, 0)], axis=1)
    big = 255 - np.asarray(Image.fromarray(row).resize((row.shape[1] * 3, row.shape[0] * 3)))
    Image.fromarray(big).save(tmp_path / "images/multi.png")
    rows.append(f"images/multi.png,multi,{''.join(str(y[i]) for i in (3, 2, 1, 0))},me/b,x,0")
    rows.append(f"images/single_0.png,single,{(int(y[0]) + 1) % 10},me/c,x,0")  # mislabelled
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def test_scores_per_category_and_repository(tmp_path, test_split):
    items = real_photos.load(_folder(tmp_path, test_split))
    res = real_photos.score(device_model.load(bundled.NAMES["robust"]), items)
    assert res.total == {"single": 5, "drawn": 1, "multi": 1}
    assert res.accuracy("single") == 0.8 and res.accuracy("drawn") == 1.0
    assert res.accuracy("multi") == 1.0
    assert res.worst_repo() == ("me/c", 0.0)
    assert [w[0] for w in res.wrong] == ["single_0.png"]


def test_robustness_row(tmp_path, test_split):
    (tmp_path / "real").mkdir()
    folder = _folder(tmp_path / "real", test_split)
    res = CliRunner().invoke(app, ["robustness", "--model", "robust", "--per-style", "10",
                                   "--realphotos", str(folder), "--json"])
    assert res.exit_code == 0, res.stderr
    row = json.loads(res.stdout.splitlines()[0])
    assert row["real_photos"]["accuracy"]["single"] == 0.8
    res = CliRunner().invoke(app, ["robustness", "--model", "robust", "--per-style", "10",
                                   "--realphotos", str(folder)])
    assert "real photos (dev): single %, 5 images" in res.stdout


def test_bad_labels_file_is_one_clear_error(tmp_path):
    (tmp_path / "labels.csv").write_text("file,category,label,repo\nimages/a.png,poster,1,x\n")
    with pytest.raises(BadDataError, match="unknown category 'poster'"):
        real_photos.load(tmp_path)
    with pytest.raises(BadDataError, match="cannot read"):
        real_photos.load(tmp_path / "missing")


@pytest.mark.skipif(not (DEV / "labels.csv").is_file(), reason="../shared/realphotos-dev absent")
def test_the_dev_set_is_read_end_to_end():
    """Every dev image decodes and is read (no accuracy gate: a measured set, never tuned on)."""
    items = real_photos.load(DEV)
    res = real_photos.score(device_model.load(bundled.NAMES["robust"]), items)
    assert sum(res.total.values()) == len(items) == 131
    assert not [w for w in res.wrong if w[2].startswith("error")]
