"""Memory of `mnist-edge serve` under hostile and ordinary uploads (#19's goal: peak at most
250 MiB, settled at most 1.3x the idle figure).

A real server (`--source none`, the systemd unit's MALLOC_ARENA_MAX=2 unless --arenas) is fed:
1. four concurrent hostile uploads, three rounds: 40 MP palette, 1-bit and greyscale PNGs of a
   few KB (tiny files that declare 6400x6200 pixels);
2. 600 ordinary uploads (the example photos), four at a time.
Its resident memory (VmRSS from /proc) is sampled every 10 ms: idle (after one upload),
peak, and settled (3 s after the last upload). Run: python bench/serve_memory.py
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("digit*"))


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bomb(mode: str) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (6400, 6200)).save(buf, format="PNG")
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arenas", default="2", help="MALLOC_ARENA_MAX for the server ('' = glibc's default)")
    ap.add_argument("--ordinary", type=int, default=600)
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ)
    env.pop("MALLOC_ARENA_MAX", None)
    if args.arenas:
        env["MALLOC_ARENA_MAX"] = args.arenas
    exe = Path(sys.executable).parent / "mnist-edge"
    proc = subprocess.Popen([str(exe), "serve", "--source", "none", "--port", str(port)], env=env,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/api/classify"
    samples: list[float] = []
    stop = threading.Event()
    try:
        for _ in range(200):
            try:
                httpx.post(url, content=EXAMPLES[0].read_bytes())
                break
            except httpx.ConnectError:
                time.sleep(0.05)
        time.sleep(1)
        idle = rss_mib(proc.pid)

        def sample() -> None:
            while not stop.is_set():
                samples.append(rss_mib(proc.pid))
                time.sleep(0.01)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        bombs = [bomb(m) for m in ("P", "1", "L")]
        codes: list[int] = []
        with ThreadPoolExecutor(4) as pool:
            for _ in range(3):
                for data in bombs:
                    codes += [r.status_code for r in pool.map(
                        lambda d: httpx.post(url, content=d, timeout=60), [data] * 4)]
        hostile_peak = max(samples)
        photos = [p.read_bytes() for p in EXAMPLES]
        with ThreadPoolExecutor(4) as pool:
            ok = sum(r.status_code == 200 for r in pool.map(
                lambda i: httpx.post(url, content=photos[i % len(photos)], timeout=60),
                range(args.ordinary)))
        time.sleep(3)
        settled = rss_mib(proc.pid)
    finally:
        stop.set()
        proc.terminate()
        proc.wait(10)
    arenas = args.arenas or "glibc default"
    print(f"serve --source none, MALLOC_ARENA_MAX={arenas}")
    print(f"  idle            {idle:6.0f} MiB")
    print(f"  peak            {max(samples):6.0f} MiB  (hostile uploads: {hostile_peak:.0f} MiB; "
          f"answers {sorted(set(codes))})")
    print(f"  settled         {settled:6.0f} MiB  = {settled / idle:.2f}x idle, after "
          f"{ok}/{args.ordinary} ordinary uploads answered 200")


if __name__ == "__main__":
    main()
