"""Unsure readings kept for a person to label (#28.4): the spool, its cap, its API."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mnist_edge.device.data import examples
from mnist_edge.device.live import spool as spooling
from mnist_edge.device.reading.decision import LOW_CONFIDENCE, NO_INK, Prediction


def _pred(digit, confidence, probs=None, reason=None) -> Prediction:
    probs = probs or [0.0] * 10
    return Prediction(digit, confidence, probs, (1, 2, 3, 4), np.full((28, 28), 7, np.uint8),
                      none_reason=reason)


def _frame(seed: int, side: int = 120) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (side, side), dtype=np.uint8)


def test_what_is_unsure():
    sure = [0.0] * 10
    sure[3] = 0.97
    close = [0.0] * 10
    close[3], close[8] = 0.55, 0.4
    assert not spooling.unsure(_pred(3, 0.97, sure))
    assert spooling.unsure(_pred(3, 0.6, sure))  # below the floor
    assert spooling.unsure(_pred(3, 0.95, close[:3] + [0.95] + close[4:8] + [0.8, 0.0]))  # two close
    assert spooling.unsure(_pred(None, 0.5, reason=LOW_CONFIDENCE))  # --min-confidence refused it
    assert not spooling.unsure(_pred(None, None, reason=NO_INK))  # nothing to label
    assert not spooling.unsure(_pred(3, 0.8, sure), below=0.7)


def test_add_list_label_and_drop(tmp_path):
    s = spooling.Spool(tmp_path / "mine")
    first = s.add(_frame(1, 900), _pred(3, 0.6), {"time": 1.0, "read": 3, "confidence": 0.6})
    second = s.add(_frame(2), _pred(8, 0.7), {"time": 2.0, "read": 8, "confidence": 0.7})
    assert first and second
    assert s.add(_frame(2), _pred(8, 0.7), {"time": 3.0}) is None  # the same view again: once
    assert [i["id"] for i in s.items()] == [second, first]  # newest first
    png = s.image(first)
    assert png is not None and png.startswith(b"\x89PNG")
    import io

    from PIL import Image

    assert max(Image.open(io.BytesIO(png)).size) == 640  # a big frame is kept at 640 px
    assert s.image(first, crop=True) is not None
    saved = s.label(first, "5")
    assert saved is not None and saved.parent == tmp_path / "mine" / "5"
    record = json.loads((saved.parent / examples.META / f"{saved.stem}.json").read_text())
    assert record["label"] == "5" and record["read"] == 3
    x, y, paths = examples.load(tmp_path / "mine")  # what train --finetune reads
    assert y.tolist() == [5] and x.shape == (1, 28, 28) and int(x[0, 0, 0]) == 7
    assert s.label(first, "5") is None  # labelled already
    assert s.discard(second) and not s.discard(second)
    assert s.items() == [] and not list((tmp_path / "mine" / spooling.FOLDER).iterdir())


def test_bad_ids_and_half_items_are_ignored(tmp_path):
    s = spooling.Spool(tmp_path / "mine")
    key = s.add(_frame(1), _pred(3, 0.6), {"time": 1.0})
    assert key is not None
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"x")
    for bad in ("../../secret", "../secret", "x" * 28, key + "/..", ""):
        assert s.image(bad) is None and s.label(bad, "1") is None and not s.discard(bad)
    assert outside.exists()
    (s.folder / f"{key}.json").unlink()  # a crash before the record: not an item
    assert s.items() == []
    with pytest.raises(ValueError):
        s.label(key, "seven")


def test_the_cap_drops_the_oldest(tmp_path):
    s = spooling.Spool(tmp_path / "mine", cap_mib=0.1)  # ~100 KB: a few noisy 120 px frames
    keys = [s.add(_frame(i), _pred(3, 0.6), {"time": float(i)}) for i in range(12)]
    kept = [i["id"] for i in s.items()]
    total = sum(p.stat().st_size for p in s.folder.iterdir())
    assert total <= 0.1 * 1024 * 1024 and 0 < len(kept) < 12 and s.dropped == 12 - len(kept)
    assert kept == list(reversed(keys))[:len(kept)]  # the newest stay


def test_the_api(tmp_path):
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from mnist_edge.device.inference import bundled
    from mnist_edge.device.inference import model as device_model
    from mnist_edge.device.live import serve as srv
    from mnist_edge.device.live.loop import Reader

    reader = Reader(device_model.load(bundled.NAMES["robust"]))
    off = TestClient(srv.create_app(reader, srv.LiveState()))
    assert off.get("/api/unsure").status_code == 404
    state = srv.LiveState()
    state.collect = tmp_path / "mine"
    state.spool = spooling.Spool(state.collect)
    key = state.spool.add(_frame(1), _pred(3, 0.6), {"time": 1.0, "read": 3})
    client = TestClient(srv.create_app(reader, state, token="t"))
    assert client.get("/api/unsure").status_code == 401
    listed = client.get("/api/unsure?token=t").json()
    assert listed["count"] == 1 and listed["items"][0]["id"] == key
    image = client.get(f"/api/unsure/{key}.png?token=t")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert client.get("/api/unsure/..%2F..%2Fsecret.png?token=t").status_code == 404
    assert client.post(f"/api/unsure/{key}?token=t", json={"label": "x"}).status_code == 400
    res = client.post(f"/api/unsure/{key}?token=t", json={"label": "none"})
    assert res.status_code == 200 and res.json()["saved"].startswith("none/")
    assert client.post(f"/api/unsure/{key}?token=t", json={"label": "3"}).status_code == 404
    other = state.spool.add(_frame(2), _pred(3, 0.6), {"time": 2.0})
    assert client.delete(f"/api/unsure/{other}?token=t").status_code == 200
    assert client.get("/api/unsure?token=t").json()["count"] == 0
    assert client.put(f"/api/unsure/{other}?token=t").status_code == 405
