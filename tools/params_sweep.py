"""Does every reading parameter matter to a test? (#27.5)

Changes each numeric field of `device/reading/params.Params` up and down (by a fifth, at least
one step for whole numbers), one at a time, and runs the fast reading tests against the changed
defaults (the pipeline's version string is held at the unchanged one, so a test fails only on
behaviour). A change after which every test still passes went unnoticed: that field is not
pinned by a test in that direction.

    python tools/params_sweep.py [--jobs 2] [--field NAME ...] [TEST ...]

Prints a line per change and a summary; exit 0 (a report, not a gate), 1 when the unchanged
parameters already fail."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mnist_edge.device.reading.params import DEFAULT

ROOT = Path(__file__).resolve().parent.parent
TESTS = ["tests/test_reading.py", "tests/test_localise.py", "tests/test_robust.py",
         "tests/test_real_photos.py"]
SKIP = ("test_robustness_table",  # a minute each run; its figures are measured, not pinned
        "test_params_version_changes_with_any_threshold_not_with_code")  # the version's bookkeeping

RUN = """
import sys
from mnist_edge.device.reading import params
kept = params.DEFAULT.version()
object.__setattr__(params.DEFAULT, {name!r}, {value!r})
version = params.Params.version
params.Params.version = lambda self: kept if self is params.DEFAULT else version(self)
import pytest
sys.exit(pytest.main(["-q", "-x", "-m", "not slow", "-p", "no:cacheprovider", "-k", {deselect!r},
                      *{tests!r}]))
"""


def changes(only: list[str]) -> list[tuple[str, object, object]]:
    """(field, default, changed value) for every numeric field, up and down."""
    out = []
    for f in dataclasses.fields(DEFAULT):
        value = getattr(DEFAULT, f.name)
        if isinstance(value, bool) or not isinstance(value, int | float) or (only and f.name not in only):
            continue
        for factor in (1.2, 0.8):
            if isinstance(value, int):
                new: object = max(0, round(value * factor)) if round(value * factor) != value \
                    else value + (1 if factor > 1 else -1)
            else:
                new = round(value * factor, 6)
            out.append((f.name, value, new))
    return out


def run(name: str, value: object, tests: list[str]) -> tuple[bool, str, float]:
    """(every test passed, the first failing test, seconds)."""
    t0 = time.monotonic()
    code = RUN.format(name=name, value=value, tests=tests,
                      deselect=" and ".join(f"not {s}" for s in SKIP))
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    failed = next((line.split()[1] for line in res.stdout.splitlines()
                   if line.startswith(("FAILED", "ERROR"))), "")
    return res.returncode == 0, failed, time.monotonic() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--field", action="append", default=[])
    parser.add_argument("tests", nargs="*", default=TESTS)
    args = parser.parse_args()
    todo = changes(args.field)
    first = dataclasses.fields(DEFAULT)[0].name  # its own value: nothing changes, all must pass
    passed, failed, _ = run(first, getattr(DEFAULT, first), args.tests)
    if not passed:
        print(f"the unchanged parameters already fail ({failed}): nothing to learn")
        return 1
    print(f"{len(todo)} changes of {len({n for n, _, _ in todo})} fields; tests: {' '.join(args.tests)}",
          flush=True)
    unnoticed = []
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = [(c, pool.submit(run, c[0], c[2], args.tests)) for c in todo]
        for (name, old, new), future in futures:
            passed, failed, seconds = future.result()
            print(f"{name} {old} -> {new}: "
                  f"{'UNNOTICED (all tests pass)' if passed else 'noticed by ' + failed}"
                  f" ({seconds:.0f} s)", flush=True)
            if passed:
                unnoticed.append(f"{name} {old}->{new}")
    print(f"{len(unnoticed)} of {len(todo)} changes passed unnoticed: {', '.join(unnoticed) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
