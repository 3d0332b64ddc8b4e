"""Cold `mnist-edge classify digit.png`: wall time and peak RSS, against the bare imports.

    python bench/cli_cold_start.py [--runs 10]

Each run is a fresh process. The baseline, measured in the same run, is a process that only
imports numpy, Pillow, typer and LiteRT; the ratio says what the CLI adds on top. Bytecode is
written on an untimed first run (as `pip install` does for a wheel), also where the environment
sets PYTHONDONTWRITEBYTECODE: otherwise an editable checkout recompiles its modules every time."""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXE = Path(sys.executable).parent / "mnist-edge"
IMAGE = ROOT / "examples" / "digit7_test0.png"
BASELINE = [sys.executable, "-c", "import numpy, PIL.Image, typer, ai_edge_litert.interpreter"]
TF = [sys.executable, "-c", "import tensorflow"]
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def measure(cmd: list[str], runs: int) -> tuple[float, float]:
    """Median wall seconds and max peak RSS (MiB) of `runs` fresh processes."""
    walls, rss = [], []
    subprocess.run(cmd, check=True, capture_output=True, env=ENV)  # writes the bytecode
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=ENV)
        walls.append(time.perf_counter() - t0)
        rss.append(max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024)
    # ru_maxrss of children is the max over all children so far: report the last value
    return statistics.median(walls), rss[-1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--with-tensorflow", action="store_true", help="also time `import tensorflow`")
    runs = p.parse_args().runs
    base_wall, base_rss = measure(BASELINE, runs)
    cli_wall, cli_rss = measure([str(EXE), "classify", str(IMAGE)], runs)
    print(f"imports only (numpy+Pillow+typer+LiteRT): {base_wall:.3f} s, {base_rss:.0f} MiB")
    print(f"mnist-edge classify digit.png (cold):      {cli_wall:.3f} s, {cli_rss:.0f} MiB")
    print(f"ratio CLI / imports: wall {cli_wall / base_wall:.2f}x")
    if p.parse_args().with_tensorflow:
        tf_wall, tf_rss = measure(TF, 3)
        print(f"import tensorflow: {tf_wall:.3f} s, {tf_rss:.0f} MiB "
              f"({tf_wall / cli_wall:.1f}x the CLI's wall time)")


if __name__ == "__main__":
    main()
