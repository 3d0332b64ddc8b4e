"""What `mnist-edge info` reports about the platform, and hints for its known traps."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from mnist_edge.device.inference import runtime


def platform_facts() -> dict[str, Any]:
    facts: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "numpy": np.__version__,
        "runtimes": runtime.available(),
    }
    model = Path("/proc/device-tree/model")
    if model.is_file():
        facts["board"] = model.read_text(errors="replace").strip("\x00\n ")
    facts.update(pi_health())
    return facts


def pi_health() -> dict[str, Any]:
    """CPU temperature and throttling state, where the board exposes them."""
    out: dict[str, Any] = {}
    thermal = Path("/sys/class/thermal/thermal_zone0/temp")
    try:
        out["cpu_temp_c"] = int(thermal.read_text().strip()) / 1000
    except (OSError, ValueError):
        pass
    if shutil.which("vcgencmd"):
        try:
            res = subprocess.run(["vcgencmd", "get_throttled"], capture_output=True, text=True,
                                 timeout=2)
            out["throttled"] = res.stdout.strip().split("=")[-1] or None
        except (OSError, subprocess.TimeoutExpired):
            pass
    return out


def hints(facts: dict[str, Any]) -> list[str]:
    found = []
    runtimes = facts["runtimes"]
    have_litert = not runtimes["litert"].startswith("not available")
    have_tflite = not runtimes["tflite-runtime"].startswith("not available")
    machine = facts["machine"]
    if machine in ("armv7l", "armv6l") and not have_tflite:
        found.append(
            "32-bit Raspberry Pi OS: LiteRT has no armv7l wheel; install tflite-runtime "
            "(pip install tflite-runtime 'numpy<2') and set MNIST_EDGE_RUNTIME=tflite-runtime"
        )
    if not have_litert and not have_tflite:
        found.append(f"no TFLite runtime: {runtime.INSTALL_HINT}")
    py = sys.version_info
    if have_tflite or not have_litert:
        if np.__version__.split(".")[0] != "1":
            found.append("tflite-runtime 2.14 is built against numpy 1.x: pip install 'numpy<2'")
        if py >= (3, 12):
            found.append("tflite-runtime has no wheels for Python 3.12+: use LiteRT (ai-edge-litert)")
    if have_tflite:
        found.append(
            "tflite-runtime 2.14 cannot run dynamic-range models from TF >= 2.17 "
            "(FULLY_CONNECTED v12): use the int8 or float32 model, or LiteRT"
        )
    if facts.get("throttled") not in (None, "0x0"):
        found.append(f"the Pi reports throttling ({facts['throttled']}): check power and cooling")
    return found
