"""Camera frames/s with MQTT publishing on against off, side by side in one run: the live
loop of `mnist-edge camera` over a video (the example clip, looped), every reading change
published to a Mosquitto broker started here (`apt-get install mosquitto`). Goal: >= 95%.

    python bench/mqtt_fps.py [--frames 900] [--rounds 5]"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from mnist_edge.device.inference import bundled, model
from mnist_edge.device.live import mqtt
from mnist_edge.device.live import sources as camera
from mnist_edge.device.live.loop import Reader, Stable, reading_of

VIDEO = Path(__file__).resolve().parent.parent / "examples" / "video_37419.avi"


def loop(clf: model.Classifier, frames: int, publisher: mqtt.Publisher | None) -> float:
    reader, change = Reader(clf, min_confidence=0.5), Stable(3)
    n, t0 = 0, time.perf_counter()
    while n < frames:
        source = camera.open_source(str(VIDEO))
        for frame in camera.frames(source, frames - n):
            preds = reader.read(frame)
            if change.update(reading_of(preds, False)) and publisher is not None:
                publisher.reading(reader.describe(preds, n))
            if publisher is not None:
                publisher.camera(True, fps=n / max(time.perf_counter() - t0, 1e-9))
            n += 1
        source.close()
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=900)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    clf = model.load(bundled.NAMES[bundled.DEFAULT])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "mosquitto.conf"
        user = "user root\n" if os.geteuid() == 0 else ""
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n{user}")
        broker = subprocess.Popen(["/usr/sbin/mosquitto", "-c", str(conf)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        pub = mqtt.Publisher(mqtt.parse_url(f"mqtt://127.0.0.1:{port}", {}), device="bench")
        pub.start()
        try:
            loop(clf, 100, None), loop(clf, 100, pub)  # warm-up
            off, on = [], []
            for _ in range(a.rounds):
                off.append(loop(clf, a.frames, None))
                on.append(loop(clf, a.frames, pub))
            published = pub.published
        finally:
            pub.close()
            broker.terminate()
            broker.wait(5)
    f_off, f_on = statistics.median(off), statistics.median(on)
    print(f"camera loop over {VIDEO.name}, median of {a.rounds} rounds x {a.frames} frames:")
    print(f"  MQTT off {f_off:7.1f} frames/s")
    print(f"  MQTT on  {f_on:7.1f} frames/s  = {f_on / f_off:.1%} of off ({published} readings published)")


if __name__ == "__main__":
    main()
