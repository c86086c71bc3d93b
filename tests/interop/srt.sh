#!/usr/bin/env bash
# SRT ingest interop, run by hand (not in tests/run.sh): GStreamer's srtsink
# (x264enc ! mpegtsmux ! srtsink) publishes to a fresh sluice, in both
# stream id forms, with and without a passphrase, and every rendition of
# --ladder 480p,360p must then decode without an error. OBS over SRT is
# run by tests/interop/encoders.py --only obs-srt (OBS 29 headless, custom
# server srt://127.0.0.1:PORT?streamid=KEY, key empty; every rendition
# decoded, the status's ingest.protocol "srt"; result in docs/interop.md),
# ffmpeg's -f mpegts srt:// by its ffmpeg-srt case and, in CI, by
# tests/integration/test_srt.py. Usage:
#   tests/interop/srt.sh [SECONDS]        (default 12 s per case)
# SLUICE_BIN picks the binary (default build/sluice, else build-asan/sluice).
#
# OBS by hand, the same settings: Settings > Stream > Service "Custom...", Server
# srt://HOST:9000?streamid=KEY (add &passphrase=... with --srt-passphrase,
# &latency=MICROSECONDS to raise the latency), Stream Key empty. Settings >
# Output > Recording... is not involved; the stream's container is MPEG-TS
# (OBS picks it for srt://). Start streaming, then check the stream's
# status: "ingest": {"protocol": "srt", ...}.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-12}
bin=${SLUICE_BIN:-build/sluice}
[ -x "$bin" ] || bin=build-asan/sluice
work=$(mktemp -d /tmp/sluice-srt-interop.XXXXXX)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rtmp=$(port); http=$(port); admin=$(port); srt=$(port)
pass="interop-passphrase"
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

"$bin" --rtmp-listen 127.0.0.1:$rtmp --http-listen 127.0.0.1:$http --admin-listen 127.0.0.1:$admin \
  --srt-listen 127.0.0.1:$srt --srt-passphrase "$pass" --ladder 480p,360p --preset ultrafast \
  --segment-duration 1 --state-dir "$work" \
  --stream a:key-plain-form --stream b:key-access-control >"$work/sluice.log" 2>&1 &
pid=$!
for _ in $(seq 50); do grep -q ready "$work/sluice.log" && break; sleep 0.1; done

fail=0
case_run() { # NAME STREAM STREAMID
  local name=$1 id=$2 sid=$3
  local frames=$((secs * 15))
  timeout $((secs + 20)) gst-launch-1.0 -q \
    videotestsrc is-live=true num-buffers=$frames ! video/x-raw,width=854,height=480,framerate=15/1 \
    ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 bitrate=800 ! video/x-h264,profile=main ! mux. \
    audiotestsrc is-live=true num-buffers=$((secs * 47)) ! audio/x-raw,rate=48000,channels=2 \
    ! avenc_aac ! aacparse ! mux. \
    mpegtsmux name=mux ! srtsink uri="srt://127.0.0.1:$srt" streamid="$sid" passphrase="$pass" latency=200 \
    >"$work/$name.gst.log" 2>&1 || { echo "$name: gst-launch failed: $(tail -3 "$work/$name.gst.log")"; }
  sleep 1
  local ok=1
  for r in 480p 360p audio; do
    local pl init seg
    pl=$(curl -sf "http://127.0.0.1:$http/hls/$id/$r/index.m3u8") || { echo "$name: no $r playlist"; ok=0; continue; }
    init=$(printf '%s\n' "$pl" | sed -n 's/.*EXT-X-MAP:URI="\([^"]*\)".*/\1/p' | head -1)
    seg=$(printf '%s\n' "$pl" | grep -v '^#' | grep m4s | tail -2)
    { curl -sf "http://127.0.0.1:$http/hls/$id/$r/$init"; for s in $seg; do curl -sf "http://127.0.0.1:$http/hls/$id/$r/$s"; done; } >"$work/$name-$r.mp4"
    if ! err=$(ffmpeg -hide_banner -nostdin -v error -i "$work/$name-$r.mp4" -f null - 2>&1) || [ -n "$err" ]; then
      echo "$name: $r does not decode: $err"; ok=0
    fi
  done
  if [ $ok = 1 ]; then echo "$name: plays through 480p, 360p and audio"; else fail=1; fi
}

case_run gstreamer-plain a "key-plain-form"
case_run gstreamer-access-control b "#!::r=live/key-access-control,m=publish"

echo "--- sluice log (srt lines) ---"
grep -E "srt" "$work/sluice.log" | grep -v "^$" | tail -12
if grep -q "key-plain-form\|key-access-control\|$pass" "$work/sluice.log"; then
  echo "a key or the passphrase is in the log"; fail=1
fi
echo "logs in $work"
exit $fail
