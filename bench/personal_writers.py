"""Learning a writer's handwriting, measured (#21): simulated writers the default model was not
trained on, each through the real loop — `collect` from a video, `train --finetune`, `convert`,
`check --baseline` — with error before and after on held-out examples of the same writer, MNIST
test before and after, and ../shared/realphotos-dev before and after (never trained on).

A writer is one open-licence handwriting family that the robust recipe does not use (fonts/
FONTS.md reserves them; installed here into bench/fonts/ by npm, never into fonts/), its digits
rendered with a little rotation and slant, normalised as the device cuts them, then written on
synthetic paper and photographed (device/evaluation/synth.py: paper styles, lighting, blur,
noise). For every digit a video holds each candidate still for a few frames with an empty page
between; `mnist-edge collect --label D --count N` takes what it settles on. The held-out
examples are other renders of the same family, on other pages.

    python bench/personal_writers.py [--writers 5] [--per-digit 20] [--held-out 10] [--epochs 4]

Goal (issue #21): every writer's error at least halved, MNIST drop <= 0.3 pp, the dev set no
worse. Writes models/writers/results.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
FONTS = ROOT / "bench" / "fonts"
WRITERS = ["sue-ellen-francisco", "short-stack", "gaegu", "itim", "delius"]  # fonts/FONTS.md
STYLES = ("plain", "uneven", "ruled", "squared", "textured", "faint")
REALPHOTOS = ROOT.parent / "shared" / "realphotos-dev"
EXE = Path(sys.executable).parent / "mnist-edge"


def install_fonts() -> None:
    if not (FONTS / "node_modules" / ".package-lock.json").is_file():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=FONTS, check=True)


def hand(seed: int) -> tuple[float, float, np.ndarray]:
    """One writer's habits, the same on every digit they write: a slant (shear), narrower or
    wider digits, and a smooth warp field (how their strokes bend), from `seed`."""
    rng = np.random.default_rng(seed)
    slant = float(rng.choice([-1, 1]) * rng.uniform(0.3, 0.6))
    width = float(rng.uniform(0.6, 0.85))
    field = np.stack([cv2.GaussianBlur(rng.normal(0, 1, (28, 28)), (0, 0), 3) for _ in range(2)])
    field *= WARP_PX / np.abs(field).max()
    return slant, width, field


WARP_PX = 4.0  # the largest displacement of a writer's warp field, in pixels of 28
JITTER_PX = 1.5  # and of each instance's own wobble on top of it


def written(glyph: np.ndarray, slant: float, width: float, field: np.ndarray) -> np.ndarray:
    """A normalised 28x28 glyph as this writer would form it."""
    yy, xx = np.mgrid[0:28, 0:28].astype(np.float32)
    src_x = (14 + (xx - 14) / width + slant * (yy - 14) + field[0]).astype(np.float32)
    src_y = (yy + field[1]).astype(np.float32)
    return cv2.remap(glyph, src_x, src_y, cv2.INTER_LINEAR, borderValue=0)


def glyphs(family: str, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` digits in this writer's hand: the family's glyphs, rendered with a little
    rotation and slant (train/writers.py), then formed by the writer's habits."""
    from mnist_edge.train import writers

    files = writers.font_files(FONTS / "node_modules" / "@fontsource")
    mine = [f for f in files if f.parent.parent.name == family]
    rng = np.random.default_rng(seed)
    x, y = writers.font_digits(count, rng, files=mine)
    slant, width, field = hand(seed)
    out = []
    for g in x:  # no one writes a digit the same way twice: each instance varies a little
        wobble = np.stack([cv2.GaussianBlur(rng.normal(0, 1, (28, 28)), (0, 0), 3) for _ in range(2)])
        wobble *= JITTER_PX / np.abs(wobble).max()
        out.append(written(g, slant + float(rng.normal(0, 0.06)),
                           width * float(rng.uniform(0.9, 1.1)), field + wobble))
    return np.stack(out), y


def frame(glyph: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from mnist_edge.device.evaluation import synth

    page = synth.photo(glyph, rng, STYLES[int(rng.integers(len(STYLES)))], base=480)
    return cv2.resize(np.round(page * 255).astype(np.uint8), (640, 480))


def video(path: Path, digits: np.ndarray, rng: np.random.Generator, hold: int = 4) -> None:
    """Each digit held still for `hold` frames, an empty page between two."""
    from mnist_edge.device.evaluation import synth

    out = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10, (640, 480))
    for g in digits:
        still = frame(g, rng)
        empty = cv2.resize(np.round(synth.empty(rng, "plain", base=480) * 255).astype(np.uint8), (640, 480))
        for f in [still] * hold + [empty]:
            out.write(cv2.cvtColor(f, cv2.COLOR_GRAY2BGR))
    out.release()


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, check=False)


@functools.cache
def real_photos(model: str) -> dict[str, float] | None:
    if not REALPHOTOS.is_dir():
        return None
    import mnist_edge
    from mnist_edge.device.evaluation import real_photos as rp

    res = rp.score(mnist_edge.load_model(model), rp.load(REALPHOTOS))
    right, total = sum(res.right.values()), sum(res.total.values())
    return {"all": right / total, **{c: res.right[c] / res.total[c] for c in res.total}}


def writer(family: str, work: Path, per_digit: int, held_out: int, epochs: int,
           seed: int) -> dict:
    rng = np.random.default_rng(seed)
    x, y = glyphs(family, (3 * per_digit + held_out) * 10 * 2, seed)
    examples, held = work / "examples", work / "heldout"
    for d in range(10):
        mine = x[y == d]
        assert len(mine) >= 2 * per_digit + held_out, (family, d, len(mine))
        clip = work / f"digit{d}.avi"
        video(clip, mine[:2 * per_digit], rng)  # candidates: collect keeps the distinct ones
        res = run("collect", str(examples), "--source", str(clip), "--label", str(d),
                  "--count", str(per_digit), "--roi", "0,0,640,480")
        if res.returncode not in (0, 1):
            raise SystemExit(f"collect failed: {res.stderr.strip()}")
        clip.unlink()
        for i, g in enumerate(mine[-held_out:]):
            target = held / str(d) / f"{i}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(frame(g, rng)).save(target)
    collected = {d: len(list((examples / str(d)).glob("*.png"))) for d in range(10)}
    out = work / "personal"
    t0 = time.perf_counter()
    for step in (["train", "--recipe", "robust", "--finetune", str(examples), "--out", str(out),
                  "--epochs", str(epochs), "--no-plot"],
                 ["convert", "--model", str(out / "mnist_personal.keras")]):
        res = run(*step)
        if res.returncode != 0:
            raise SystemExit(f"{step[0]} failed: {res.stderr.strip()[-2000:]}")
    seconds = time.perf_counter() - t0
    model = out / "mnist_personal_int8.tflite"
    res = run("check", "--model", str(model), "--baseline", "robust", "--images", str(held),
              "--json", "--markdown", str(work / "gate.md"))
    report = json.loads(res.stdout)
    return {"writer": family, "collected": collected, "held_out": report["writer"]["images"],
            "writer_errors": [report["writer"]["baseline_errors"], report["writer"]["personal_errors"]],
            "mnist": [report["mnist"]["baseline_accuracy"], report["mnist"]["personal_accuracy"]],
            "realphotos_dev": [real_photos("robust"), real_photos(str(model))],
            "gate": report["passed"], "failures": report["failures"],
            "finetune_and_convert_s": round(seconds, 1)}


def table(rows: list[dict]) -> str:
    lines = ["| writer (font) | examples | held-out error before → after | MNIST test before → after "
             "| real photos (dev) before → after | gate |", "|---|---:|---:|---:|---:|---|"]
    for r in rows:
        n = r["held_out"]
        b, a = r["writer_errors"]
        m0, m1 = r["mnist"]
        rp = r["realphotos_dev"]
        real = f"{100 * rp[0]['all']:.1f}% → {100 * rp[1]['all']:.1f}%" if rp[0] else "—"
        lines.append(f"| {r['writer']} | {sum(r['collected'].values())} | {100 * b / n:.1f}% → "
                     f"{100 * a / n:.1f}% | {100 * m0:.2f}% → {100 * m1:.2f}% | {real} | "
                     f"{'pass' if r['gate'] else 'FAIL'} |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--writers", type=int, default=len(WRITERS))
    p.add_argument("--per-digit", type=int, default=20)
    p.add_argument("--held-out", type=int, default=10)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--out", type=Path, default=ROOT / "models" / "writers")
    args = p.parse_args()
    os.environ.setdefault("XDG_DATA_HOME", str(args.out / "xdg"))  # never the user's models
    install_fonts()
    rows = []
    for i, family in enumerate(WRITERS[:args.writers]):
        work = args.out / family
        if work.exists():
            import shutil

            shutil.rmtree(work)
        work.mkdir(parents=True)
        rows.append(writer(family, work, args.per_digit, args.held_out, args.epochs, seed=100 + i))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
        (args.out / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
