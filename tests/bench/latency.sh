#!/usr/bin/env bash
# LL-HLS latency benchmark, run by hand (not part of tests/run.sh):
#   tests/bench/latency.sh [SECONDS]        (default 40 of publishing per mode)
#   MODES="passthrough ladder" (default both), PART=0.333
# Builds a release sluice into build-bench/ (incrementally) and, per mode,
# publishes a live 720p30 H.264 + AAC-LC stereo stream with ffmpeg in real
# time (-re, x264 zerolatency, GOP 2 s):
#   passthrough: --ladder 720p (the source copied, nothing transcoded);
#   ladder:      --ladder 720p,480p,360p (720p copied, two rungs encoded).
# Reports
#   (a) origin delay: the time from the last frame of a part arriving over
#       RTMP to that part being fetchable at the origin (committed to the
#       store with the playlist that names it), from sluice's debug log line
#       per part, p50/p99/max for the video and audio renditions;
#   (b) player latency: hls.js (lowLatencyMode) in Debian's chromium plays
#       the live stream (tests/browser/hls_ll.mjs) and samples wall clock
#       minus the PROGRAM-DATE-TIME of the frame on screen (ingest to
#       screen) and hls.js's own hls.latency.
# Goals (issue 6): (a) p99 < 20 ms without transcoding; (b) < 1.5 s
# passthrough, < 2.5 s with the ladder.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
root=$(pwd)
secs=${1:-40}
part=${PART:-0.333}
modes=${MODES:-passthrough ladder}
work=$(mktemp -d /tmp/sluice-latency-XXXXXX)
spid=""
ppid_=""
cleanup() {
  [ -n "$ppid_" ] && kill "$ppid_" 2>/dev/null || true
  [ -n "$spid" ] && kill "$spid" 2>/dev/null || true
  wait 2>/dev/null || true
  [ "${KEEP:-0}" = 1 ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

[ -d build-bench ] || meson setup build-bench --buildtype=release -Dtests=false >/dev/null
meson compile -C build-bench >/dev/null
bin=$root/build-bench/sluice
[ -d tests/browser/node_modules/hls.js ] || (cd tests/browser && npm ci --silent >/dev/null)


# pct LIST_FILE -> "p50 p99 max n" of the numbers in the file
pct() {
  sort -n "$1" | awk '{a[NR]=$1} END {
    if (NR == 0) { print "- - - 0"; exit }
    i50 = int(0.50 * NR); if (i50 < 1) i50 = 1
    i99 = int(0.99 * NR + 0.999); if (i99 > NR) i99 = NR
    printf "%.1f %.1f %.1f %d\n", a[i50], a[i99], a[NR], NR }'
}

printf '%-12s %-9s %28s %28s %26s\n' mode rendition "origin delay ms p50/p99/max" "" "player latency s (median/p90)"
for mode in $modes; do
  case $mode in
    passthrough) ladder=720p ;;
    ladder) ladder=720p,480p,360p ;;
    *) echo "unknown mode $mode"; exit 2 ;;
  esac
  rtmp=$(port)
  http=$(port)
  log=$work/$mode.log
  "$bin" --rtmp-listen "127.0.0.1:$rtmp" --http-listen "127.0.0.1:$http" --admin-listen 127.0.0.1:0 \
    --stream demo:bench-secret-key --ladder "$ladder" \
    --part-duration "$part" --log-level debug >"$log" 2>&1 &
  spid=$!
  for _ in $(seq 50); do curl -fs "http://127.0.0.1:$http/healthz" >/dev/null && break; sleep 0.1; done
  ffmpeg -hide_banner -nostdin -loglevel error -re \
    -f lavfi -i "testsrc2=size=1280x720:rate=30" -f lavfi -i "sine=frequency=440:sample_rate=48000" \
    -t "$secs" -c:v libx264 -preset veryfast -tune zerolatency -g 60 -keyint_min 60 -sc_threshold 0 \
    -pix_fmt yuv420p -b:v 2500k -c:a aac -b:a 128k -ac 2 \
    -f flv "rtmp://127.0.0.1:$rtmp/live/bench-secret-key" &
  ppid_=$!
  master="http://127.0.0.1:$http/hls/demo/master.m3u8"
  for _ in $(seq 100); do curl -fs "$master" >/dev/null && break; sleep 0.1; done
  sleep 2
  play=$((secs - 12))
  [ "$play" -lt 8 ] && play=8
  player=$(node tests/browser/hls_ll.mjs "$master" "$play" "$((play + 20))" || true)
  wait "$ppid_" || true
  ppid_=""
  kill "$spid"; wait "$spid" || true
  spid=""
  lat=$(printf '%s' "$player" | tail -n 1 | python3 -c '
import json, sys
try:
    r = json.loads(sys.stdin.read())
    p, h = r.get("latencyPdt") or {}, r.get("latencyHls") or {}
    print("%s/%s (hls.latency %s; %s parts, %s blocking reloads, problems: %s)" % (
        p.get("median", "-"), p.get("p90", "-"), h.get("median", "-"), r.get("parts", 0),
        r.get("blockingReloads", 0), "; ".join(r.get("problems", [])) or "none"))
except Exception as e:
    print("player failed:", e)')
  for rend in 720p audio; do
    grep " $rend part " "$log" | sed -n 's/.*fetchable \([0-9.]*\) ms.*/\1/p' | tail -n +4 >"$work/$mode-$rend.txt" || true
    read -r p50 p99 max n < <(pct "$work/$mode-$rend.txt")
    printf '%-12s %-9s %28s %28s %26s\n' "$mode" "$rend" "$p50 / $p99 / $max" "($n parts)" "$([ "$rend" = 720p ] && echo "$lat")"
  done
  [ "${VERBOSE:-0}" = 1 ] && printf '%s\n' "$player"
done
