"""The reading history (#28.1-2): a real SQLite file, kill -9, a full or read-only file, the
`history` command and GET /api/history."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mnist_edge.device.cli import app
from mnist_edge.device.errors import UsageError
from mnist_edge.device.live import history as kept

from .conftest import ROOT

EXAMPLES = ROOT / "examples"


def _reading(digit: int | None, t: float, **extra) -> dict:
    return {"time": t, "digit": digit, "confidence": None if digit is None else 0.9,
            "no_digit": 0.0, "none_reason": None if digit is not None else "no ink", **extra}


def _wait(h: kept.History, written: int) -> None:
    deadline = time.monotonic() + 30
    while h.written + h.dropped < written and time.monotonic() < deadline:
        time.sleep(0.01)


def test_readings_are_kept_and_read_back_in_order(tmp_path):
    path = tmp_path / "h.sqlite3"
    h = kept.History(path)
    for i in range(5):
        h.add(_reading(i if i != 3 else None, 1000.0 + i), "m.tflite", "ab" * 32, "cam")
    h.close()
    rows = kept.query(path)
    assert [r["digit"] for r in rows] == [0, 1, 2, None, 4]
    assert rows[3]["reason"] == "no ink" and rows[0]["model_sha256"] == "ab" * 32
    assert [r["time"] for r in kept.query(path, 1001.0, 1003.0)] == [1001.0, 1002.0, 1003.0]
    assert [r["digit"] for r in kept.query(path, limit=2)] == [None, 4]  # the newest, oldest first
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == kept.SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_retention_by_age_and_by_count(tmp_path):
    path = tmp_path / "h.sqlite3"
    now = time.time()
    h = kept.History(path)
    for i in range(10):
        h.add(_reading(1, now - 10 * 86400 + i), "m", "s", "cam")  # ten days old
    for i in range(10):
        h.add(_reading(2, now + i), "m", "s", "cam")
    h.close()
    assert len(kept.query(path)) == 20
    kept.History(path, keep_days=5).close()  # pruned when opened: the old ten go
    assert {r["digit"] for r in kept.query(path)} == {2}
    kept.History(path, keep_rows=3).close()
    assert [r["time"] for r in kept.query(path)] == [now + 7, now + 8, now + 9]


def test_a_newer_schema_is_refused_and_an_older_one_migrated(tmp_path):
    newer = tmp_path / "newer.sqlite3"
    with sqlite3.connect(newer) as db:
        db.execute(f"PRAGMA user_version = {kept.SCHEMA_VERSION + 1}")
    with pytest.raises(UsageError, match="newer mnist-edge"):
        kept.History(newer)
    empty = tmp_path / "empty.sqlite3"
    sqlite3.connect(empty).close()  # version 0: every migration runs
    with pytest.raises(UsageError, match="older history"):
        kept.query(empty)
    kept.History(empty).close()
    assert kept.query(empty) == []
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(UsageError, match="not a history database"):
        kept.History(junk)
    assert junk.read_bytes() == b"not a database at all" * 100  # nothing lost


def test_kill_9_loses_at_most_the_reading_in_flight(tmp_path):
    """A process adding readings as fast as it can is killed with SIGKILL: the file opens,
    passes SQLite's integrity check, and holds every reading it said was committed."""
    path = tmp_path / "h.sqlite3"
    code = textwrap.dedent(f"""
        import sys, time
        from mnist_edge.device.live import history as kept
        h = kept.History(__import__("pathlib").Path({str(path)!r}))
        i, said = 0, -1
        while True:
            h.add({{"time": time.time(), "digit": i % 10, "confidence": 0.9}}, "m", "s", "cam")
            i += 1
            if h.written != said:
                said = h.written
                print(said, flush=True)
            time.sleep(0.001)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    committed = 0
    assert proc.stdout is not None
    for line in proc.stdout:
        committed = int(line)
        if committed >= 200:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert committed >= 200
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert len(kept.query(path)) >= committed


def test_a_full_or_read_only_file_is_said_once_and_reading_goes_on(tmp_path):
    said: list[str] = []
    path = tmp_path / "h.sqlite3"
    h = kept.History(path, log=said.append)
    h.add(_reading(1, time.time()), "m", "s", "cam")
    _wait(h, 1)
    pages = h.db.execute("PRAGMA page_count").fetchone()[0]
    h.db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "database or disk is full"
    for i in range(300):
        h.add(_reading(i % 10, time.time(), number="x" * 200), "m", "s", "cam")  # add never raises
    _wait(h, 301)
    assert h.dropped > 0
    full = [m for m in said if "cannot keep readings" in m]
    assert len(full) == 1 and "full" in full[0], said  # once, not once per reading
    h.db.execute("PRAGMA max_page_count = 1000000")
    h.add(_reading(7, time.time()), "m", "s", "cam")
    h.close()
    assert said[-1].endswith("writing again")
    assert kept.query(path)[-1]["digit"] == 7
    # a read-only file: said, and the rows already there stay
    ro = kept.History(path, log=said.append)
    ro.db.close()
    ro.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    ro.add(_reading(8, time.time()), "m", "s", "cam")
    ro.close()
    assert "readonly" in said[-1] and kept.query(path)[-1]["digit"] == 7


def test_when_forms():
    now = 1_800_000_000.0
    assert kept.when("90s", now) == now - 90 and kept.when("1h", now) == now - 3600
    assert kept.when("2d", now) == now - 2 * 86400 and kept.when("1w", now) == now - 604800
    assert kept.when("2026-12-01T00:00:00+00:00") == 1796083200.0
    assert kept.when(None) is None
    with pytest.raises(UsageError, match="a time ago"):
        kept.when("yesterday")


def _cli(*args: str):
    return CliRunner().invoke(app, list(args))


def test_camera_keeps_what_it_read_and_history_prints_it(tmp_path):
    path = tmp_path / "h.sqlite3"
    res = _cli("camera", "--source", str(EXAMPLES), "--history", str(path))
    assert res.exit_code == 0, res.output
    shown = _cli("history", "--history", str(path), "--json")
    assert shown.exit_code == 0
    rows = [json.loads(line) for line in shown.stdout.splitlines()]
    changes = [line for line in res.stdout.splitlines() if line.startswith("frame ")]
    assert len(rows) == len(changes) >= 10  # every settled reading, no more
    assert rows[-1]["source"].endswith("number_7210.png") and rows[-1]["digit"] is None
    assert {r["model"] for r in rows} == {"mnist_robust_int8.tflite"}
    assert "readings" in shown.stderr and "no digit" in shown.stderr
    csv_text = _cli("history", "--history", str(path), "--csv", "--since", "1h").stdout
    lines = csv_text.splitlines()
    assert lines[0].startswith("iso_time,time,digit") and len(lines) == len(rows) + 1
    none = _cli("history", "--history", str(path), "--until", "2000-01-01")
    assert none.exit_code == 0 and none.stdout == "" and "no readings" in none.stderr
    off = tmp_path / "off.sqlite3"
    assert _cli("camera", "--source", str(EXAMPLES), "--history", str(off), "--no-history").exit_code == 0
    assert not off.exists()


def test_history_errors_are_one_line_exit_2(tmp_path):
    res = _cli("history", "--history", str(tmp_path / "nothing.sqlite3"))
    assert res.exit_code == 2 and "no history yet" in res.stderr
    assert _cli("history", "--history", str(tmp_path / "x"), "--json", "--csv").exit_code == 2
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"junk" * 1000)
    res = _cli("history", "--history", str(junk))
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1
    # camera with a file that cannot be a history: one line, and it reads all the same
    cam = _cli("camera", "--source", str(EXAMPLES / "digit7_test0.png"), "--history", str(junk))
    assert cam.exit_code == 0 and "reading goes on without" in cam.stderr and ": 7" in cam.stdout
    assert junk.read_bytes() == b"junk" * 1000


def test_api_history(tmp_path):
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from mnist_edge.device.inference import bundled
    from mnist_edge.device.inference import model as device_model
    from mnist_edge.device.live import serve as srv
    from mnist_edge.device.live.loop import Reader

    reader = Reader(device_model.load(bundled.NAMES["robust"]))
    state = srv.LiveState()
    state.recorder = kept.History(tmp_path / "h.sqlite3")
    client = TestClient(srv.create_app(reader, state, token="t"))
    assert client.get("/api/history").status_code == 401
    for name in ("digit7_test0.png", "digit2_test1.jpg"):
        assert client.post("/api/classify?token=t", content=(EXAMPLES / name).read_bytes()).status_code == 200
    _wait(state.recorder, 2)
    body = client.get("/api/history?token=t").json()
    assert body["count"] == 2 and [r["digit"] for r in body["readings"]] == [7, 2]
    assert body["readings"][0]["source"] == "upload upload"
    assert client.get("/api/history?token=t&limit=1").json()["readings"][0]["digit"] == 2
    csv_res = client.get("/api/history?token=t&format=csv&since=1h")
    assert csv_res.headers["content-type"].startswith("text/csv") and len(csv_res.text.splitlines()) == 3
    assert client.get("/api/history?token=t&until=2000-01-01").json()["count"] == 0
    for bad in ("format=xml", "since=soon", "limit=0", "limit=x"):
        res = client.get(f"/api/history?token=t&{bad}")
        assert res.status_code == 400 and "error" in res.json(), bad
    state.recorder.close()
    off = TestClient(srv.create_app(reader, srv.LiveState()))
    assert off.get("/api/history").status_code == 404


def test_history_is_in_the_api_document():
    pytest.importorskip("starlette")
    from mnist_edge.device.live.openapi import OPENAPI

    assert "/api/history" in OPENAPI["paths"]
    assert Path(kept.default_path()).name == kept.FILE_NAME
