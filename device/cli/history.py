"""`mnist-edge history`: what `camera` and `serve` read, from their SQLite history."""

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from mnist_edge.device.cli.app import app, one_line_errors, say
from mnist_edge.device.cli.options import JsonOpt
from mnist_edge.device.errors import UsageError


@app.command(short_help="What camera and serve read: the kept history.")
@one_line_errors
def history(
    since: Annotated[str | None, typer.Option("--since", metavar="WHEN", help="From this time "
                     "on: a time ago (90s, 30m, 1h, 2d, 1w) or a date/time (2026-12-01, "
                     "2026-12-01T09:00, local time).", show_default=False)] = None,
    until: Annotated[str | None, typer.Option("--until", metavar="WHEN", help="Up to this "
                     "time (same forms as --since).", show_default=False)] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, metavar="N", help="Only the "
                     "newest N readings.", show_default=False)] = None,
    json_out: JsonOpt = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="CSV with a header on stdout (for a "
                       "spreadsheet).")] = False,
    path: Annotated[Path | None, typer.Option("--history", metavar="FILE", help="The history to "
                    "read (default: the one camera and serve keep, "
                    "~/.local/state/mnist-edge/history.sqlite3).", show_default=False)] = None,
) -> None:
    """Print the readings `camera` and `serve` kept (oldest first), with a summary line on
    stderr: how many, the share of "no digit" and the mean confidence. Exit 2 when there is
    no history file."""
    from mnist_edge.device.live import history as kept

    if json_out and csv_out:
        raise UsageError("--json and --csv: choose one")
    start, end = kept.when(since), kept.when(until)
    if start is not None and end is not None and start > end:
        raise UsageError("--since is after --until: nothing can be between them")
    rows = kept.query(path or kept.default_path(), start, end, limit)
    if csv_out:
        typer.echo(kept.as_csv(rows), nl=False)
    elif json_out:
        for r in rows:
            typer.echo(json.dumps(r))
    else:
        for r in rows:
            typer.echo(_line(r))
    read = [r for r in rows if r["digit"] is not None or r["number"]]
    if not rows:
        say("no readings in that time")
        return
    sure = [r["confidence"] for r in read if r["confidence"] is not None]
    mean = f", mean confidence {sum(sure) / len(sure):.1%}" if sure else ""
    say(f"{len(rows)} readings, {1 - len(read) / len(rows):.1%} no digit{mean} "
        f"({_when(rows[0]['time'])} to {_when(rows[-1]['time'])})")


def _when(t: float) -> str:
    return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def _line(r: dict) -> str:
    if r["number"]:
        what = r["number"]
    elif r["digit"] is None:
        what = f"no digit ({r['reason']})" if r["reason"] else "no digit"
    else:
        what = f"{r['digit']} ({r['confidence']:.1%})" if r["confidence"] is not None else str(r["digit"])
    return f"{_when(r['time'])}  {what:<22} {r['model']}  {Path(r['source']).name or r['source']}"

