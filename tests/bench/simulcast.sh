#!/usr/bin/env bash
# Simulcast benchmark, run by hand (not part of tests/run.sh):
#   tests/bench/simulcast.sh [SECONDS]        (default 30)
# Builds a release sluice into build-bench/ (incrementally), makes a 1080p30
# H.264 + AAC clip (lib.sh), starts nginx with libnginx-mod-rtmp and, in
# one run, side by side on the same stream:
#   sluice:  the clip published to it in real time (ladder 1080p: the source
#            copied, so the worker does little) with one `source` output to
#            rtmp://nginx/live/a;
#   ffmpeg:  `ffmpeg -re -i rtmp://nginx/live/a -c copy -f flv
#            rtmp://nginx/live/b`, relaying that same stream again.
# Reports the CPU seconds of sluice's output thread (comm out:ID, from
# /proc/PID/task) and of the whole ffmpeg relay over the same window, and
# their ratio (goal: sluice's at most ffmpeg's). sluice's worker also pays
# one copy per packet for the output; the whole process is printed too.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
root=$(pwd)
secs=${1:-30}
work=$(mktemp -d /tmp/sluice-bench-simulcast-XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
hz=$(getconf CLK_TCK)

[ -d build-bench ] || meson setup build-bench --buildtype=release -Dtests=false >/dev/null
meson compile -C build-bench >/dev/null
bin=$root/build-bench/sluice

echo "== source: 20 s 1080p30 clip (lib.sh), looped for ${secs} s"
clip_1080p30 "$work/src.flv"

ngx_port=$(port); rtmp=$(port); http=$(port); admin=$(port)
mkdir -p "$work/ngx"
user=""; [ "$(id -u)" = 0 ] && user="user root;"
cat > "$work/ngx/nginx.conf" <<EOF
$user
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
master_process off;
daemon off;
pid $work/ngx/nginx.pid;
error_log $work/ngx/error.log warn;
events { worker_connections 64; }
rtmp { server { listen 127.0.0.1:$ngx_port; application live { live on; } } }
EOF
nginx -p "$work/ngx" -e "$work/ngx/error.log" -c "$work/ngx/nginx.conf" &
pids+=($!)

"$bin" --rtmp-listen "127.0.0.1:$rtmp" --http-listen "127.0.0.1:$http" \
  --admin-listen "127.0.0.1:$admin" --stream bench:bench-key --ladder 1080p \
  --state-dir "$work/state" --log-level warn > "$work/sluice.log" 2>&1 &
spid=$!
pids+=($spid)
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$admin/api/v1/streams/bench" >/dev/null && break; sleep 0.2; done
curl -sf -X POST -H 'Content-Type: application/json' \
  -d "{\"url\": \"rtmp://127.0.0.1:$ngx_port/live/a\", \"rendition\": \"source\"}" \
  "http://127.0.0.1:$admin/api/v1/streams/bench/outputs" >/dev/null

ffmpeg -hide_banner -nostdin -loglevel error -re -stream_loop -1 -i "$work/src.flv" \
  -t $((secs + 8)) -c copy -f flv "rtmp://127.0.0.1:$rtmp/live/bench-key" &
pids+=($!)

# sluice's output connected: then the relay plays what it sends.
for _ in $(seq 100); do
  curl -s "http://127.0.0.1:$admin/api/v1/streams/bench/outputs" | grep -q '"state": *"live"' && break
  sleep 0.2
done
ffmpeg -hide_banner -nostdin -loglevel error -re -i "rtmp://127.0.0.1:$ngx_port/live/a" \
  -c copy -f flv "rtmp://127.0.0.1:$ngx_port/live/b" &
fpid=$!
pids+=($fpid)
sleep 3

out_tids() {
  local t
  for t in /proc/"$spid"/task/*; do
    case "$(cat "$t/comm" 2>/dev/null)" in out:*) echo "$spid/task/${t##*/}" ;; esac
  done
}
task_ticks() {
  local s=0 t
  for t in "$@"; do s=$((s + $(awk '{ print $14 + $15 }' "/proc/$t/stat" 2>/dev/null || echo 0))); done
  echo "$s"
}
tids=$(out_tids)
[ -n "$tids" ] || { echo "no output thread in sluice"; cat "$work/sluice.log"; exit 1; }
o0=$(task_ticks $tids); s0=$(cpu_ticks "$spid"); f0=$(cpu_ticks "$fpid")
sleep "$secs"
o1=$(task_ticks $tids); s1=$(cpu_ticks "$spid"); f1=$(cpu_ticks "$fpid")
state=$(curl -s "http://127.0.0.1:$admin/api/v1/streams/bench/outputs")

python3 - "$hz" "$secs" "$o0" "$o1" "$s0" "$s1" "$f0" "$f1" "$state" <<'EOF'
import json, sys
hz, secs = int(sys.argv[1]), float(sys.argv[2])
o, s, f = [(int(sys.argv[i + 1]) - int(sys.argv[i])) / hz for i in (3, 5, 7)]
out = json.loads(sys.argv[9])["outputs"][0]
print(f"window {secs:.0f} s; sluice output {out['state']}, {out['bitrate_kbps']} kb/s, "
      f"{out['dropped_packets']} dropped, {out['retries']} retries")
print(f"CPU s: sluice output thread {o:.2f} (whole sluice {s:.2f}), ffmpeg relay {f:.2f}")
print(f"ratio sluice output / ffmpeg relay: {o / f:.2f}" if f > 0 else "ffmpeg used no CPU")
EOF
