#!/usr/bin/env bash
# sluice in one command on a fresh Debian 12 machine: installs the missing
# packages, builds (incrementally: a second run rebuilds nothing), and runs
# sluice in the foreground on the embedded memory store with one demo
# stream. Extra arguments are passed to sluice; SLUICE_* variables work too.
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/packages.sh build
deploy/web-deps.sh

if [ ! -f build/build.ninja ]; then
  meson setup build --buildtype=release -Dtests=false >/dev/null
fi
meson compile -C build >/dev/null

# The demo key is made once and kept private to this checkout's build dir.
keyfile=build/demo-stream-key
if [ ! -s "$keyfile" ]; then
  (umask 077; head -c 18 /dev/urandom | base64 | tr '+/' '-_' > "$keyfile")
fi
key=$(cat "$keyfile")

host=$(hostname -I 2>/dev/null | awk '{print $1}')
host=${host:-127.0.0.1}
rtmp_port=${SLUICE_RTMP_LISTEN:-0.0.0.0:1935}; rtmp_port=${rtmp_port##*:}
http_port=${SLUICE_HTTP_LISTEN:-0.0.0.0:8080}; http_port=${http_port##*:}

cat <<MSG

  sluice is starting with one demo stream ("demo").

  Publish (OBS: Settings > Stream > Custom):
    server      rtmp://$host:$rtmp_port/live
    stream key  $key
    full URL    rtmp://$host:$rtmp_port/live/$key

  Or publish a test pattern from another terminal:
    ffmpeg -re -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \\
      -c:v libx264 -preset veryfast -g 60 -pix_fmt yuv420p -c:a aac -f flv rtmp://$host:$rtmp_port/live/$key

  Play (ffplay, VLC, Safari, or any hls.js page):
    http://$host:$http_port/hls/demo/master.m3u8
  Watch in a browser:
    http://$host:$http_port/player/demo
  Dashboard (on this machine):
    http://127.0.0.1:8081/dashboard

  Ctrl-C stops it.

MSG
exec build/sluice --stream "demo:$key" "$@"
