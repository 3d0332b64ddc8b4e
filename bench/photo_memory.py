"""Peak memory and time of classifying big phone photos: decoding at work size (JPEG DCT
scaling, early reduce) against decoding at full size, side by side in fresh processes.

    python bench/photo_memory.py

Photos: a digit on paper as 12 MP (4032x3024) and 48 MP (8000x6000) JPEGs, written to a
temporary folder. "full size" sets device.images.WORK_SIDE huge, which is how the reader
behaved before (48 MP was refused above the 40 MP cap then; it is shown as refused).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from mnist_edge.device.data import mnist
from mnist_edge.device.evaluation import synth

CHILD = """
import json, sys, time
from mnist_edge.device.inference import bundled, model
from mnist_edge.device.reading import files, decode
from mnist_edge.device.errors import BadImageError
if sys.argv[2] == "full":
    decode.WORK_SIDE = 10**9
clf = model.load(bundled.NAMES["robust"])
t0 = time.perf_counter()
try:
    digit = files.classify_file(clf, sys.argv[1])[0].digit
except BadImageError as e:
    digit = str(e).split(": ", 1)[1]
seconds = time.perf_counter() - t0
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child would report the
# parent's high-water mark.
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"digit": digit, "seconds": seconds, "peak_mib": int(hwm.split()[1]) / 1024}))
"""


def photo(path: Path, w: int, h: int) -> None:
    x, _ = mnist.load_split("test")
    g = synth.page(np.random.default_rng(0), h, w, "plain")
    ink = np.asarray(Image.fromarray(x[0]).resize((h // 2, h // 2), Image.Resampling.BICUBIC),
                     np.float32) / 255
    y0, x0 = h // 4, w // 2 - h // 4
    g[y0 : y0 + h // 2, x0 : x0 + h // 2] *= 1 - 0.8 * ink
    Image.fromarray((g * 255).astype(np.uint8)).convert("RGB").save(path, quality=88)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name, (w, h) in (("12 MP", (4032, 3024)), ("48 MP", (8000, 6000))):
            path = Path(tmp) / f"{w}x{h}.jpg"
            photo(path, w, h)
            rows = {}
            for mode in ("work", "full"):
                out = subprocess.run([sys.executable, "-c", CHILD, str(path), mode],
                                     capture_output=True, text=True, check=True).stdout
                rows[mode] = json.loads(out)
            work, full = rows["work"], rows["full"]
            memory, speed = work["peak_mib"] / full["peak_mib"], work["seconds"] / full["seconds"]
            print(f"{name} JPEG ({path.stat().st_size:,} bytes): work size {work['peak_mib']:.0f} MiB "
                  f"{work['seconds']:.2f} s -> {work['digit']}; full size {full['peak_mib']:.0f} MiB "
                  f"{full['seconds']:.2f} s -> {full['digit']}; memory {memory:.2f}x, time {speed:.2f}x")


if __name__ == "__main__":
    main()
