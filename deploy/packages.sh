#!/usr/bin/env bash
# Installs the Debian 12 packages sluice needs, only those missing, so a
# second run installs nothing. Sourced by deploy/quickstart.sh and
# tests/run.sh. Usage: deploy/packages.sh [build|test|interop]
# (interop: the test packages and what tests/interop/ runs by hand: OBS
# Studio headless under Xvfb with Mesa's software OpenGL)
set -euo pipefail

build_pkgs=(
  meson ninja-build pkg-config gcc
  libavformat-dev libavcodec-dev libavutil-dev libswscale-dev libswresample-dev
  libssl-dev libevent-dev libmicrohttpd-dev libhiredis-dev libjansson-dev
  libcurl4-openssl-dev libinih-dev zlib1g-dev libsqlite3-dev
  libsrt-gnutls-dev
  ffmpeg
)
test_pkgs=(
  libcmocka-dev clang libclang-rt-14-dev python3 curl redis-server redis-tools wrk
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav openssl
  chromium prometheus
  nginx libnginx-mod-rtmp debhelper dpkg-dev fakeroot build-essential systemd scdoc
)

interop_pkgs=(obs-studio xvfb xauth libgl1-mesa-dri)

want=("${build_pkgs[@]}")
# The build embeds the player's and dashboard's npm files (deploy/web-deps.sh),
# and the browser tests run on Node. A machine may already have a Node that
# did not come from Debian's packages (with its own npm); only a machine with
# none gets Debian's, so the two never conflict.
command -v node >/dev/null 2>&1 || want+=(nodejs)
command -v npm >/dev/null 2>&1 || want+=(npm)
if [ "${1:-build}" = test ] || [ "${1:-build}" = interop ]; then
  want+=("${test_pkgs[@]}")
fi
if [ "${1:-build}" = interop ]; then
  want+=("${interop_pkgs[@]}")
fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
