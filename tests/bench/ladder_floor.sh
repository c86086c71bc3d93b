#!/usr/bin/env bash
# The floor under any ladder transcoder at sluice's default settings, run by
# hand (not part of tests/run.sh):
#
#   tests/bench/ladder_floor.sh [SECONDS] [ROUNDS]     (default 10 s, 3 rounds)
#
# Issue 23 asks for <= 0.85x ffmpeg's CPU for the full ladder at equal
# output. This measures, with the same Debian libraries both tools use, what
# the work itself costs when nothing else is done: one single-threaded
# decode of a 1080p30 source, plus, per rung, a single-threaded
# decode + bicubic scale + libx264 veryfast encode at the rung's rate (same
# VBV, GOP 2 s, no scene cut) minus that decode. The sum is "the floor": a
# transcoder with no overhead at all (no threads, no packaging, no copies)
# at these settings. Beside it, in the same round, ffmpeg's own full
# ladder (split + scale + four libx264 encoders, threads auto, null muxer:
# no packaging either). floor / ffmpeg is the best CPU ratio any tool could
# reach against ffmpeg without encoding differently. CPU is user+system
# time (/usr/bin/time), so load on the machine changes it less than wall
# time; the rounds show the spread. The passthrough columns do the same for
# passthrough auto: the floor without the 1080p encode, against ffmpeg
# copying the source beside its three encoded rungs.
set -euo pipefail
secs=${1:-10}
rounds=${2:-3}
work=$(mktemp -d /tmp/sluice-floor-XXXXXX)
trap 'rm -rf "$work"' EXIT
src=$work/src.mp4
ffmpeg -hide_banner -nostdin -loglevel error -y \
  -f lavfi -i "testsrc2=size=1920x1080:rate=30,noise=alls=4:allf=t" -t "$secs" \
  -c:v libx264 -preset veryfast -b:v 8000k -g 60 -pix_fmt yuv420p "$src"

cpu() { /usr/bin/time -f "%U %S" "$@" 2>&1 >/dev/null | tail -1 | awk '{printf "%.2f", $1 + $2}'; }
ff=(ffmpeg -hide_banner -nostdin -loglevel error -y)
# name size kbps
rungs="1080p 1920:1080 5000
720p 1280:720 2800
480p 854:480 1400
360p 640:360 800"

echo "== ${secs} s of 1080p30 (testsrc2 + grain), CPU-s per round; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %8s %8s %8s %8s %8s %10s %10s %8s %10s %10s %8s\n' round decode 1080p 720p 480p 360p \
  floor ffmpeg ratio pt-floor pt-ffmpeg pt-ratio
for round in $(seq "$rounds"); do
  dec=$(cpu "${ff[@]}" -threads 1 -i "$src" -f null -)
  floor=$dec
  per=()
  while read -r name size kbps; do
    c=$(cpu "${ff[@]}" -threads 1 -i "$src" -vf "scale=$size" -c:v libx264 -preset veryfast \
      -b:v "${kbps}k" -maxrate "${kbps}k" -bufsize "$((kbps * 2))k" -g 60 -sc_threshold 0 -threads 1 -f null -)
    per+=("$(awk -v c="$c" -v d="$dec" 'BEGIN{printf "%.2f", c - d}')")
    floor=$(awk -v f="$floor" -v c="$c" -v d="$dec" 'BEGIN{printf "%.2f", f + c - d}')
  done <<<"$rungs"
  args=(-i "$src" -filter_complex
        "[0:v]split=4[a][b][c][d];[a]scale=1920:1080[o0];[b]scale=1280:720[o1];[c]scale=854:480[o2];[d]scale=640:360[o3]")
  i=0
  while read -r name size kbps; do
    args+=(-map "[o$i]" -c:v:$i libx264 -preset veryfast -b:v:$i "${kbps}k" -maxrate:v:$i "${kbps}k"
           -bufsize:v:$i "$((kbps * 2))k")
    i=$((i + 1))
  done <<<"$rungs"
  full=$(cpu "${ff[@]}" "${args[@]}" -g 60 -sc_threshold 0 -f null -)
  # Passthrough: the source copied as the top rung, three encoded.
  pargs=(-i "$src" -filter_complex
         "[0:v]split=3[b][c][d];[b]scale=1280:720[o1];[c]scale=854:480[o2];[d]scale=640:360[o3]"
         -map 0:v -c:v:0 copy)
  i=1
  while read -r name size kbps; do
    [ "$name" = 1080p ] && continue
    pargs+=(-map "[o$i]" -c:v:$i libx264 -preset veryfast -b:v:$i "${kbps}k" -maxrate:v:$i "${kbps}k"
            -bufsize:v:$i "$((kbps * 2))k")
    i=$((i + 1))
  done <<<"$rungs"
  pfull=$(cpu "${ff[@]}" "${pargs[@]}" -g 60 -sc_threshold 0 -f null -)
  pfloor=$(awk -v f="$floor" -v t="${per[0]}" 'BEGIN{printf "%.2f", f - t}')
  printf '%-6s %8s %8s %8s %8s %8s %10s %10s %8s %10s %10s %8s\n' "$round" "$dec" "${per[@]}" "$floor" "$full" \
    "$(awk -v f="$floor" -v u="$full" 'BEGIN{printf "%.3f", f / u}')" "$pfloor" "$pfull" \
    "$(awk -v f="$pfloor" -v u="$pfull" 'BEGIN{printf "%.3f", f / u}')"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
