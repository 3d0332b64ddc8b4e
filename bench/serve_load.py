"""`mnist-edge serve` under load, as ratios measured in one run (#19):

1. the camera's frames/s (the example video, played at its own rate) while 8 clients upload
   photos as fast as they can, against the same camera with no uploads;
2. the server's CPU with 4 MJPEG and 4 event-stream viewers connected to a server with no
   camera (nothing to send), against the same server with no viewers.

Run: python bench/serve_load.py [--seconds 6]
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from serve_latency import start  # bench/ is the script's folder: sys.path[0]

ROOT = Path(__file__).resolve().parent.parent
VIDEO = ROOT / "examples" / "video_37419.avi"
PHOTO = (ROOT / "examples" / "digit7_test0.png").read_bytes()


def frames(url: str) -> int:
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith("mnist_edge_frames_total"):
            return int(float(line.split()[-1]))
    return 0


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fps_over(url: str, seconds: float) -> float:
    n0, t0 = frames(url), time.monotonic()
    time.sleep(seconds)
    return (frames(url) - n0) / (time.monotonic() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=6.0)
    args = ap.parse_args()

    proc, url = start("--source", str(VIDEO))
    try:
        time.sleep(2)
        idle = fps_over(url, args.seconds)
        stop = threading.Event()
        answered = [0]

        def uploader() -> None:
            with httpx.Client(timeout=60) as client:
                while not stop.is_set():
                    if client.post(url + "/api/classify", content=PHOTO).status_code == 200:
                        answered[0] += 1

        with ThreadPoolExecutor(8) as pool:
            for _ in range(8):
                pool.submit(uploader)
            time.sleep(1)
            loaded = fps_over(url, args.seconds)
            stop.set()
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"camera (example video): {idle:.1f} frames/s alone, {loaded:.1f} with 8 uploaders "
          f"= {loaded / idle:.0%} ({answered[0]} uploads answered)")

    proc, url = start("--source", "none")
    try:
        time.sleep(1)
        c0 = cpu_s(proc.pid)
        time.sleep(args.seconds)
        alone = cpu_s(proc.pid) - c0
        viewers = []
        for path in ["/api/stream.mjpg"] * 4 + ["/api/events"] * 4:
            client = httpx.Client(timeout=60)
            viewers.append((client, client.stream("GET", url + path).__enter__()))
        time.sleep(1)
        c0 = cpu_s(proc.pid)
        time.sleep(args.seconds)
        watched = cpu_s(proc.pid) - c0
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"server CPU with no camera: {alone / args.seconds:.1%} of a core alone, "
          f"{watched / args.seconds:.1%} with 4 MJPEG + 4 event-stream viewers")


if __name__ == "__main__":
    main()
