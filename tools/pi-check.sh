#!/usr/bin/env bash
# Proof on ARM: install the project's wheel inside an emulated Raspberry Pi OS-like Debian
# root (qemu user-mode + binfmt + chroot) and run the device path there as ARM code, then
# compare its figures with the same commands on this x86_64 host.
#
#   make pi-check [ARCH=arm64|armhf] [SUITE=bookworm|trixie] [LIMIT=1000]      (as root)
#
# arm64: pip install of the wheel with every dependency an aarch64 wheel (LiteRT); OpenCV and
#   the serve extra too, for `camera --source VIDEO` and `serve`.
# armhf: PyPI has no armv7l wheels for numpy, Pillow or LiteRT: Debian's python3-numpy and
#   python3-pil in a --system-site-packages venv, tflite-runtime 2.14 from PyPI, the wheel
#   with --no-deps (what Raspberry Pi OS users do with piwheels).
# Every pip install is wheels only (PIP_ONLY_BINARY=:all:): no source build sneaks in.
# Speed measured here is emulated: printed, never a Pi's speed.
set -euo pipefail
ARCH=${ARCH:-arm64}
SUITE=${SUITE:-bookworm}
LIMIT=${LIMIT:-1000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HOST_PY=${HOST_PY:-$ROOT/.venv/bin/python}
case "$ARCH" in
  arm64) QEMU=qemu-aarch64; CPU=${QEMU_CPU:-cortex-a72}; MACHINE=aarch64 ;;
  armhf) QEMU=qemu-arm; CPU=${QEMU_CPU:-cortex-a7}; MACHINE=armv7l ;;
  *) echo "pi-check: ARCH must be arm64 or armhf, not $ARCH" >&2; exit 2 ;;
esac
case "$SUITE" in bookworm|trixie) ;; *) echo "pi-check: SUITE must be bookworm or trixie" >&2; exit 2 ;; esac
if [ "$ARCH-$SUITE" = "armhf-trixie" ]; then
  echo "pi-check: armhf on trixie cannot work: tflite-runtime has no wheel for its Python 3.13" >&2
  exit 2
fi
[ "$(id -u)" -eq 0 ] || { echo "pi-check: run as root (chroot, mounts)" >&2; exit 2; }
[ -x "$HOST_PY" ] || { echo "pi-check: no $HOST_PY; run make install first" >&2; exit 2; }

T0=$SECONDS
step() { echo "--- pi-check $ARCH/$SUITE: $* ($((SECONDS - T0)) s)"; }
WORK=$(mktemp -d /tmp/pi-check.XXXXXX)
RFS="$WORK/root"
MOUNTS=()
cleanup() {
  local i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount -l "${MOUNTS[i]}" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
bind() { mount "$@"; MOUNTS+=("${!#}"); }

step "host tools"
missing=()
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
command -v "$QEMU-static" >/dev/null || missing+=(qemu-user-static)
command -v update-binfmts >/dev/null || missing+=(binfmt-support)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > /dev/null
fi
# Without binfmt_misc every ARM exec in the root fails with "Exec format error".
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
[ -e "/proc/sys/fs/binfmt_misc/$QEMU" ] || update-binfmts --enable "$QEMU"

step "root filesystem (mmdebstrap --variant=extract)"
# extract installs only these and their dependencies: no essential set (coreutils, a shell).
PKGS=python3,python3-venv,python3-pip,ca-certificates,libstdc++6,coreutils,dash
[ "$ARCH" = armhf ] && PKGS=$PKGS,python3-numpy,python3-pil,libopenblas0-pthread
# The host's Debian sources (deb822) for $SUITE, without the security suite: a fallback for
# when a mirror serves a security index mid-sync ("File has unexpected size"), which fails
# mmdebstrap's `apt-get update --error-on=any`. A test root needs no security updates.
host_sources() {
  local file=/etc/apt/sources.list.d/debian.sources
  [ -f "$file" ] || return 1
  awk -v suite="$SUITE" 'BEGIN { RS = ""; ORS = "\n\n" }
    !/-security/ { gsub(/(bookworm|trixie)/, suite); print }' "$file" > "$WORK/debian.sources"
  [ -s "$WORK/debian.sources" ]
}
for attempt in 1 2 3; do
  rm -rf "$RFS"
  mirror=()
  if [ "$attempt" -ge 2 ] && host_sources; then
    mirror=("$WORK/debian.sources")
    echo "pi-check: retrying with the host's sources, without the security suite" >&2
  fi
  if mmdebstrap --quiet --variant=extract --architectures="$ARCH" --include="$PKGS" "$SUITE" \
      "$RFS" "${mirror[@]}" 2> "$WORK/mmdebstrap.err"; then
    break
  fi
  grep -E "^E:|^Err" "$WORK/mmdebstrap.err" | head -3 >&2
  [ "$attempt" -lt 3 ] || { echo "pi-check: mmdebstrap failed 3 times" >&2; exit 1; }
  sleep $((attempt * 5))
done
# extract runs no package scripts: make what they would have made.
for d in bin sbin lib; do  # merged /usr (trixie ships only the usr/ side)
  [ -e "$RFS/$d" ] || ln -s "usr/$d" "$RFS/$d"
done
[ -e "$RFS/bin/sh" ] || ln -s dash "$RFS/bin/sh"  # dash's maintainer script would make it
if [ "$ARCH" = armhf ]; then  # the alternatives Debian's numpy loads BLAS/LAPACK through
  lib="$RFS/usr/lib/arm-linux-gnueabihf"
  for so in libblas.so.3 liblapack.so.3 libopenblas.so.0; do
    [ -e "$lib/$so" ] || ln -s "$(cd "$lib" && ls openblas-pthread/$so)" "$lib/$so"
  done
fi
mkdir -p "$RFS/etc/ssl/certs" "$RFS/proc" "$RFS/sys" "$RFS/dev" "$RFS/tmp" "$RFS/src"
cp /etc/ssl/certs/ca-certificates.crt "$RFS/etc/ssl/certs/ca-certificates.crt"
cp /etc/resolv.conf "$RFS/etc/resolv.conf"

step "mounts (qemu shows the host's /proc/cpuinfo: a Pi's is bound over it)"
bind -t proc proc "$RFS/proc"
bind -t sysfs sysfs "$RFS/sys"
bind --bind /dev "$RFS/dev"
if [ "$ARCH" = arm64 ]; then model="Cortex-A72"; part=0xd08; else model="Cortex-A7"; part=0xc07; fi
cat > "$WORK/cpuinfo" <<EOF
processor	: 0
BogoMIPS	: 108.00
Features	: fp asimd evtstrm crc32 cpuid
CPU implementer	: 0x41
CPU architecture: $([ "$ARCH" = arm64 ] && echo 8 || echo 7)
CPU variant	: 0x0
CPU part	: $part
CPU revision	: 3

Hardware	: BCM2711
Model		: Raspberry Pi ($model, emulated by mnist-edge pi-check)
EOF
bind --bind "$WORK/cpuinfo" "$RFS/proc/cpuinfo"

step "the project's wheel, built on the host"
"$HOST_PY" -m pip wheel -q --no-deps --no-build-isolation -w "$WORK/dist" "$ROOT" 2>/dev/null \
  || "$HOST_PY" -m pip wheel -q --no-deps -w "$WORK/dist" "$ROOT"
cp "$WORK"/dist/*.whl "$RFS/src/"
WHEEL=/src/$(basename "$WORK"/dist/*.whl)
cp -r "$ROOT/examples" "$RFS/src/examples"

arm() {  # run a command in the root as ARM code, with a clean pip environment
  chroot "$RFS" /usr/bin/env -i PATH=/venv/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 \
    QEMU_CPU="$CPU" PIP_ONLY_BINARY=:all: PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DEFAULT_TIMEOUT=180 PYTHONUNBUFFERED=1 "$@"
}

step "venv and pip install inside (wheels only)"
if [ "$ARCH" = arm64 ]; then
  arm python3 -m venv /venv
  arm pip install -q "$WHEEL[camera,serve]"
else
  arm python3 -m venv --system-site-packages /venv
  arm pip install -q 'tflite-runtime==2.14.0' 'typer<0.29'
  arm pip install -q --no-deps "$WHEEL"
  arm pip check
fi
RT=()
[ "$ARCH" = armhf ] && RT=(--runtime tflite-runtime)

step "info"
arm mnist-edge info "${RT[@]}" | tee "$WORK/info.txt"
grep -q "^machine: $MACHINE" "$WORK/info.txt" || { echo "pi-check: info does not say $MACHINE" >&2; exit 1; }

step "classify examples/"
arm sh -c "cd /src && mnist-edge classify --json ${RT[*]} examples/digit*_test*" > "$WORK/classify.jsonl"
"$HOST_PY" - "$WORK/classify.jsonl" <<'PY'
import json, re, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
wrong = [(r["file"], r["digit"]) for r in rows if r["digit"] != int(re.search(r"digit(\d)_", r["file"]).group(1))]
print(f"classified {len(rows)} example photos on ARM, {len(wrong)} wrong")
sys.exit(f"wrong: {wrong}" if wrong or len(rows) < 10 else 0)
PY
arm sh -c "cd /src && mnist-edge classify --multi ${RT[*]} examples/number_7210.png" | tee "$WORK/multi.txt"
grep -q ": 7210 " "$WORK/multi.txt"

step "check --limit $LIMIT on the bundled models, against the same command on x86_64"
arm mnist-edge check --limit "$LIMIT" --json "${RT[@]}" > "$WORK/check-arm.jsonl"
SAME_RUNTIME=1
MNIST_EDGE_DATA='' "$ROOT/.venv/bin/mnist-edge" check --limit "$LIMIT" --json "${RT[@]}" > "$WORK/check-x86.jsonl" 2>/dev/null \
  || [ "$ARCH" = armhf ]  # the host may lack tflite-runtime: then LiteRT's figures stand in
if [ ! -s "$WORK/check-x86.jsonl" ]; then
  SAME_RUNTIME=0
  "$ROOT/.venv/bin/mnist-edge" check --limit "$LIMIT" --json > "$WORK/check-x86.jsonl"
fi
# The same runtime on both sides: the same figures, exactly. ARM's tflite-runtime 2.14 against
# the host's LiteRT: their int8 kernels may round a step apart, so an image near a boundary may
# flip: accuracy within 0.2 pp, agreement with float32 >= 99.5%, the same gate verdict.
"$HOST_PY" - "$WORK/check-arm.jsonl" "$WORK/check-x86.jsonl" "$ARCH" "$SAME_RUNTIME" <<'PY'
import json, sys
from pathlib import Path
def load(p):
    rows = [json.loads(line) for line in open(p)]
    return {Path(r["model"]).parent.name + "/" + Path(r["model"]).name: r for r in rows if "accuracy" in r}
arm, x86 = load(sys.argv[1]), load(sys.argv[2])
exact = sys.argv[4] == "1"
bad = []
for name, r in arm.items():
    h = x86.get(name)
    same = h is not None and (r["accuracy"], r["agreement"], r["passed"]) == (h["accuracy"], h["agreement"], h["passed"])
    near = h is not None and not exact and r["passed"] == h["passed"] \
        and abs(r["accuracy"] - h["accuracy"]) <= 0.002 and (r["agreement"] is None or r["agreement"] >= 0.995)
    verdict = "same" if same else "within tolerance (other runtime)" if near else "DIFFERENT"
    print(f"{name:42s} ARM {r['accuracy']:.4f} agree {r['agreement']} | x86 {h and h['accuracy']:.4f} {verdict}")
    bad += [] if same or near else [name]
sys.exit(f"emulated {sys.argv[3]} figures differ from x86_64: {bad}" if bad or not arm else 0)
PY

step "bench (EMULATED: qemu speed, not a Pi's)"
arm mnist-edge bench --runs 40 --warmup 5 "${RT[@]}" | sed "s/^/emulated: /"

if [ "$ARCH" = arm64 ]; then
  step "camera --source on the example video (OpenCV aarch64 wheel)"
  arm sh -c "cd /src && mnist-edge camera --source examples/video_37419.avi" | tee "$WORK/camera.txt"
  [ "$(grep -oE ': [0-9] ' "$WORK/camera.txt" | tr -d ': ' | tr -d '\n')" = "37419" ]
  step "serve: /healthz and POST /api/classify"
  arm python3 - <<'PY'
import json, subprocess, time, urllib.request
proc = subprocess.Popen(["mnist-edge", "serve", "--port", "8093"], stderr=subprocess.PIPE, text=True)
try:
    for _ in range(600):
        try:
            health = json.load(urllib.request.urlopen("http://127.0.0.1:8093/healthz", timeout=2))
            break
        except OSError:
            time.sleep(0.2)
    body = open("/src/examples/digit7_test0.png", "rb").read()
    req = urllib.request.Request("http://127.0.0.1:8093/api/classify", data=body, method="POST")
    reading = json.load(urllib.request.urlopen(req, timeout=60))
    print(f"serve on ARM: healthz {health['status']}, model {health['model_sha256'][:12]}..., "
          f"POST /api/classify -> {reading['digit']}")
    assert health["status"] == "ok" and reading["digit"] == 7
finally:
    proc.terminate()
    proc.wait(timeout=30)
PY
fi
step "passed"
