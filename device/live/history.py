"""What the device read, kept: every settled reading of `camera` and `serve` in SQLite (the
standard library's sqlite3, WAL), written by a thread of its own so the camera loop never
waits for the disk.

Each reading is one committed transaction with `synchronous=FULL`: `kill -9` or a power cut
loses at most the reading in flight, and the file always opens. A disk that is full or a file
that cannot be written is said once (and once again when writing works again); reading goes
on. Old rows go by age (`keep_days`) and count (`keep_rows`). The schema carries its version
(`PRAGMA user_version`); MIGRATIONS bring an older file up to date, and a file from a newer
mnist-edge is refused with one line.
"""

from __future__ import annotations

import csv
import io
import os
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mnist_edge.device.errors import UsageError

FILE_NAME = "history.sqlite3"
KEEP_DAYS = 90.0
KEEP_ROWS = 1_000_000
PENDING = 1000  # readings waiting for the writer; past that the newest are dropped (counted)
PRUNE_EVERY = 500  # readings between two prunes (and one at the start)
COLUMNS = ("time", "digit", "number", "confidence", "no_digit", "reason", "model",
           "model_sha256", "source")

# MIGRATIONS[i] brings a file of schema version i to version i + 1.
MIGRATIONS = (
    """CREATE TABLE readings (
           id INTEGER PRIMARY KEY,
           time REAL NOT NULL,           -- seconds since the epoch (UTC)
           digit INTEGER,                -- NULL: no digit
           number TEXT,                  -- with --multi: the number read
           confidence REAL,
           no_digit REAL,                -- the model's "no digit" score, when it has one
           reason TEXT,                  -- why "no digit" (e.g. no ink), else NULL
           model TEXT NOT NULL,          -- the model file's name
           model_sha256 TEXT NOT NULL,
           source TEXT NOT NULL          -- the camera, file or upload it came from
       );
       CREATE INDEX readings_by_time ON readings (time);""",
)
SCHEMA_VERSION = len(MIGRATIONS)


def state_dir() -> Path:
    """The user's state folder, $XDG_STATE_HOME/mnist-edge: the history and serve's token."""
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "mnist-edge"


def default_path() -> Path:
    return state_dir() / FILE_NAME


def connect(path: Path, read_only: bool = False) -> sqlite3.Connection:
    """An open history file, migrated to this version (read-only: never changed)."""
    if read_only:
        if not path.is_file():
            raise UsageError(f"{path}: no history yet (camera and serve keep one; see --history)")
        db = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True, timeout=5)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        # used by the writer thread after the opening checks here; explicit transactions
        db = sqlite3.connect(path, timeout=5, isolation_level=None, check_same_thread=False)
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise UsageError(f"{path}: a history of schema {version}, made by a newer "
                             f"mnist-edge (this one reads up to {SCHEMA_VERSION})")
        if read_only:
            if version < SCHEMA_VERSION:
                raise UsageError(f"{path}: an older history (schema {version}): run camera or "
                                 "serve once to bring it up to date")
            return db
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # a committed reading survives a power cut
        for step in range(version, SCHEMA_VERSION):
            db.executescript(f"BEGIN; {MIGRATIONS[step]} PRAGMA user_version = {step + 1}; COMMIT;")
        return db
    except sqlite3.DatabaseError as e:
        db.close()
        raise UsageError(f"{path}: not a history database ({e})") from None
    except BaseException:
        db.close()
        raise


def row_of(reading: dict[str, Any], model: str, sha256: str, source: str) -> tuple[Any, ...]:
    """A reading (the --json object of a frame or an upload) as a row of `readings`."""
    return (float(reading.get("time") or time.time()), reading.get("digit"), reading.get("number"),
            reading.get("confidence"), reading.get("no_digit"), reading.get("none_reason"),
            model, sha256, source)


class History:
    """Keeps settled readings: `add` never waits (the writer thread does the disk)."""

    def __init__(self, path: Path, *, keep_days: float = KEEP_DAYS, keep_rows: int = KEEP_ROWS,
                 log: Callable[[str], None] = lambda _m: None):
        self.path, self.keep_days, self.keep_rows, self.log = path, keep_days, keep_rows, log
        self.pending: queue.Queue[tuple[Any, ...] | None] = queue.Queue(PENDING)
        self.written = self.dropped = 0
        self.failure: str | None = None  # the write failure last said
        self.db = connect(path)  # a file that cannot be a history fails now, in one line
        self._prune()
        self.thread = threading.Thread(target=self._write, name="history", daemon=True)
        self.thread.start()

    def add(self, reading: dict[str, Any], model: str, sha256: str, source: str) -> None:
        try:
            self.pending.put_nowait(row_of(reading, model, sha256, source))
        except queue.Full:  # the disk is slower than the readings: the camera does not wait
            self.dropped += 1

    def close(self, timeout: float = 5.0) -> None:
        """Writes what is pending (up to `timeout` s), then closes the file."""
        try:
            self.pending.put(None, timeout=timeout)
        except queue.Full:
            pass
        self.thread.join(timeout)

    def _write(self) -> None:
        since_prune = 0
        while (row := self.pending.get()) is not None:
            try:
                self.db.execute(f"INSERT INTO readings ({', '.join(COLUMNS)}) VALUES "
                                f"({', '.join('?' * len(COLUMNS))})", row)
                self.written += 1
                since_prune += 1
                if since_prune >= PRUNE_EVERY:
                    since_prune = 0
                    self._prune()
                self._said(None)
            except (sqlite3.Error, OSError) as e:  # a full disk, a read-only file...
                self.dropped += 1
                self._said(f"history: {self.path}: cannot keep readings ({e}); reading goes on")
        self.db.close()

    def _prune(self) -> None:
        cutoff = time.time() - self.keep_days * 86400
        self.db.execute("DELETE FROM readings WHERE time < ?", (cutoff,))
        self.db.execute("DELETE FROM readings WHERE id <= (SELECT max(id) FROM readings) - ?",
                        (self.keep_rows,))

    def _said(self, failure: str | None) -> None:
        if failure != self.failure:  # once per change of state, not once per reading
            if failure is not None:
                self.log(failure)
            elif self.failure is not None:
                self.log(f"history: {self.path}: writing again")
            self.failure = failure


def when(text: str | None, now: float | None = None) -> float | None:
    """--since/--until: '90s', '30m', '1h', '2d', '1w' ago, or a date or time in ISO form
    ('2026-12-01', '2026-12-01T09:00', local time unless it says its zone). None: no bound."""
    if text is None or text == "":
        return None
    now = time.time() if now is None else now
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if match:
        seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]
        return now - float(match.group(1)) * seconds
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise UsageError(f"{text!r}: give a time ago (90s, 30m, 1h, 2d, 1w) or a date "
                         "(2026-12-01, 2026-12-01T09:00)") from None


def query(path: Path, start: float | None = None, end: float | None = None,
          limit: int | None = None) -> list[dict[str, Any]]:
    """Readings between `start` and `end` (seconds since the epoch), oldest first; with
    `limit`, the newest `limit` of them."""
    db = connect(path, read_only=True)
    try:
        sql = f"SELECT {', '.join(COLUMNS)} FROM readings WHERE time >= ? AND time <= ?"
        args: list[Any] = [start if start is not None else float("-inf"),
                           end if end is not None else float("inf")]
        if limit is not None:
            sql = f"SELECT * FROM ({sql} ORDER BY time DESC, id DESC LIMIT ?)"
            args.append(limit)
        rows = db.execute(sql + " ORDER BY time", args).fetchall()
    except sqlite3.DatabaseError as e:
        raise UsageError(f"{path}: cannot read the history ({e})") from None
    finally:
        db.close()
    return [dict(zip(COLUMNS, r, strict=True)) for r in rows]


def as_csv(rows: Iterable[dict[str, Any]]) -> str:
    """The rows as CSV with a header; each time also in ISO 8601 with its zone."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["iso_time", *COLUMNS])
    for r in rows:
        iso = datetime.fromtimestamp(r["time"]).astimezone().isoformat(timespec="seconds")
        writer.writerow([iso, *(("" if r[c] is None else r[c]) for c in COLUMNS)])
    return out.getvalue()
