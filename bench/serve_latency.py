"""`mnist-edge serve` against the same work in-process, measured side by side in one run.

    python bench/serve_latency.py [--runs 200]

- POST /api/classify of a 640x480 JPEG (one client, sequential, loopback) against decoding and
  classifying the same bytes in-process: p50 and p95, and their ratio;
- the idle server's resident memory (RSS) after start, with the camera off (`--source none`)
  and with the example video playing.
"""

from __future__ import annotations

import argparse
import io
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from mnist_edge.device.evaluation import synth
from mnist_edge.device.inference import bundled
from mnist_edge.device.inference import model as device_model
from mnist_edge.device.reading import decision
from mnist_edge.device.reading import decode as images

ROOT = Path(__file__).resolve().parent.parent


def jpeg_640x480() -> bytes:
    rng = np.random.default_rng(0)
    digit = np.asarray(Image.open(ROOT / "examples" / "digit7_test0.png").convert("L").resize((28, 28)))
    frame = synth.photo(255 - digit, rng, "plain", base=480)
    buf = io.BytesIO()
    Image.fromarray((frame * 255).astype(np.uint8)).resize((640, 480)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def percentiles(samples: list[float]) -> tuple[float, float]:
    s = sorted(samples)
    return statistics.median(s) * 1000, s[int(0.95 * (len(s) - 1))] * 1000


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start(*args: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).parent / "mnist-edge"
    proc = subprocess.Popen([str(exe), "serve", "--port", str(port), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(url + "/healthz")
            break
        except httpx.ConnectError:
            time.sleep(0.05)
    return proc, url


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=200)
    runs = p.parse_args().runs
    data = jpeg_640x480()
    clf = device_model.load(bundled.NAMES["robust"])
    local = []
    for i in range(runs + 20):
        t0 = time.perf_counter()
        decision.read(clf, images.decode_gray(data), min_confidence=0.5)
        if i >= 20:
            local.append(time.perf_counter() - t0)
    proc, url = start()
    try:
        time.sleep(1.0)
        idle_rss = rss_mib(proc.pid)
        remote = []
        with httpx.Client() as client:
            for i in range(runs + 20):
                t0 = time.perf_counter()
                res = client.post(url + "/api/classify", content=data)
                if i >= 20:
                    remote.append(time.perf_counter() - t0)
                assert res.status_code == 200 and res.json()["digit"] == 7, res.text
    finally:
        proc.terminate()
        proc.wait()
    video, url = start("--source", str(ROOT / "examples" / "video_37419.avi"))
    try:
        time.sleep(3.0)
        video_rss = rss_mib(video.pid)
    finally:
        video.terminate()
        video.wait()
    lp50, lp95 = percentiles(local)
    rp50, rp95 = percentiles(remote)
    print(f"640x480 JPEG ({len(data):,} bytes), {runs} runs each")
    print(f"in-process decode + classify: p50 {lp50:.2f} ms, p95 {lp95:.2f} ms")
    print(f"POST /api/classify:           p50 {rp50:.2f} ms, p95 {rp95:.2f} ms "
          f"-> {rp50 / lp50:.2f}x in-process (p50)")
    print(f"serve RSS: idle {idle_rss:.0f} MiB (--source none), {video_rss:.0f} MiB with the video")


if __name__ == "__main__":
    main()
