#!/usr/bin/env bash
# What the test suite needs beyond Python packages, from Debian: Chromium (the browser tests of
# `serve`, driven by Playwright), Mosquitto and its clients (the real-broker MQTT tests),
# openssl (their TLS test), npm (the handwriting fonts of the robust recipe and the localiser).
# Installed when missing, as root or with sudo; otherwise one line says what to install.
# `make test` and .ci/run both call it.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_passwd >/dev/null 2>&1 || need+=(mosquitto-clients)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v npm >/dev/null 2>&1 || need+=(npm)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo="sudo"
else
  echo "the tests need Debian packages that are missing: sudo apt-get install ${need[*]}" >&2
  exit 1
fi
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" > /dev/null
echo "installed ${need[*]}"
