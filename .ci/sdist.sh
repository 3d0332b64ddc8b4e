#!/usr/bin/env bash
# The release a stranger gets: build the sdist, build a wheel from that sdist, install the wheel
# (with the extras the tests use) in a fresh venv, and run the fast suite from the sdist's own
# tests, with the sdist's sources moved away so every import is the installed wheel's.
#   bash .ci/sdist.sh WORKDIR [PYTHON]
set -euo pipefail
work=$1
python=${2:-python3}
root=$(cd "$(dirname "$0")/.." && pwd)
rm -rf "$work" && mkdir -p "$work"
"$root/.venv/bin/python" -m build --sdist -o "$work/dist" "$root" > "$work/build.log"
sdist=$(ls "$work"/dist/mnist_edge-*.tar.gz)
tar -xzf "$sdist" -C "$work"
src=$(ls -d "$work"/mnist_edge-*/)
"$root/.venv/bin/pip" wheel -q --no-deps -w "$work/wheel" "$sdist"
wheel=$(ls "$work"/wheel/mnist_edge-*.whl)
"$python" -m venv "$work/venv"
"$work/venv/bin/pip" install -q "${wheel}[serve,mqtt,camera,dev]"
mv "$src/mnist_edge" "$work/sources-moved-away"
echo "sdist $(basename "$sdist"): $(tar -tzf "$sdist" | wc -l) files; wheel $(basename "$wheel")"
cd "$src"
env -u MNIST_EDGE_DATA XDG_CACHE_HOME="$work/cache" "$work/venv/bin/python" -m pytest -m "not slow" \
  -q -p no:cacheprovider
"$work/venv/bin/python" -c "import mnist_edge, sys; sys.exit(0 if '/venv/' in mnist_edge.__file__ else f'imported {mnist_edge.__file__}, not the wheel')"
