#!/usr/bin/env bash
# Origin throughput, memory store vs Redis store, in one run (issue 4).
#
# Starts a redis-server of its own and three sluice nodes on free loopback
# ports: M (memory store, ingest+origin), and on Redis an ingest-only node I
# and an origin-only node R (the multi-node layout; R reads everything from
# Redis). ffmpeg publishes the same synthetic 720p stream to M and to I; once
# both have a few segments, wrk (Debian's) measures requests/s for one media
# playlist and one segment on M, on R, and on a second Redis origin started
# with its object cache off (?cache-mb=0), to show what the cache buys.
#
# Bounded: each wrk run lasts BENCH_SECONDS (default 5) with BENCH_CONNS
# connections (default 32) on BENCH_THREADS threads (default 2); everything
# is loopback and stopped at the end. Prints a Markdown table.
#
# Run through origin.sh (which builds a release binary first):
#   MODE=stores tests/bench/origin.sh
# or directly with a binary of your own:
#   SLUICE_BIN=build-redis/sluice tests/bench/origin_stores.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
bin=${SLUICE_BIN:-build/sluice}
secs=${BENCH_SECONDS:-5}
conns=${BENCH_CONNS:-32}
threads=${BENCH_THREADS:-2}
key=bench-secret-key
for tool in wrk redis-server redis-cli ffmpeg curl; do
  command -v "$tool" >/dev/null || { echo "origin_stores.sh: $tool is missing (deploy/packages.sh test)"; exit 2; }
done
[ -x "$bin" ] || { echo "origin_stores.sh: $bin not built"; exit 2; }

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

rport=$(port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis="redis://127.0.0.1:$rport/0"

# Runs in this shell (not in a $(...) subshell), so that its pid lands in
# pids and the cleanup stops it; sets rp and hp to the node's ports.
node() { # node NAME STORE ROLE
  rp=$(port); hp=$(port)
  # One passthrough rung: the CPU goes to serving, not to encoding.
  "$bin" --store "$2" --role "$3" --stream "bench:$key" --ladder 720p --passthrough auto \
    --rtmp-listen "127.0.0.1:$rp" --admin-listen 127.0.0.1:0 \
    --http-listen "127.0.0.1:$hp" --http-threads 2 --log-level warn >"$work/$1.log" 2>&1 &
  pids+=($!)
}
node memory memory ingest,origin; m_rtmp=$rp; m_http=$hp
node ingest "$redis" ingest; i_rtmp=$rp
node origin "$redis" origin; r_http=$hp
node nocache "$redis?cache-mb=0" origin; n_http=$hp
sleep 1

pub() {
  ffmpeg -hide_banner -nostdin -loglevel error -re -f lavfi -i testsrc2=size=1280x720:rate=30 \
    -f lavfi -i sine=frequency=440:sample_rate=48000 -t 60 -c:v libx264 -preset veryfast \
    -tune zerolatency -g 60 -keyint_min 60 -sc_threshold 0 -pix_fmt yuv420p -b:v 2500k \
    -c:a aac -b:a 128k -f flv "rtmp://127.0.0.1:$1/live/$key" >"$work/ffmpeg-$1.log" 2>&1 &
  pids+=($!)
}
pub "$m_rtmp"
pub "$i_rtmp"
pl=/hls/bench/720p/index.m3u8
for _ in $(seq 100); do
  a=$(curl -s "http://127.0.0.1:$m_http$pl" | grep -c '\.m4s$' || true)
  b=$(curl -s "http://127.0.0.1:$r_http$pl" | grep -c '\.m4s$' || true)
  [ "${a:-0}" -ge 3 ] && [ "${b:-0}" -ge 3 ] && break
  sleep 0.3
done
segment() { curl -s "http://127.0.0.1:$1$pl" | grep '\.m4s$' | sed -n 2p; }
m_seg=$(segment "$m_http"); r_seg=$(segment "$r_http")
[ -n "$m_seg" ] && [ -n "$r_seg" ] || { echo "origin_stores.sh: no segments"; tail "$work"/*.log; exit 1; }
size=$(curl -s "http://127.0.0.1:$r_http/hls/bench/720p/$r_seg" | wc -c)

rps() { # rps URL -> requests/s
  wrk -t"$threads" -c"$conns" -d"${secs}s" --latency "$1" 2>&1 | awk '/Requests\/sec/ {print int($2)}'
}
m_s=$(rps "http://127.0.0.1:$m_http/hls/bench/720p/$m_seg")
r_s=$(rps "http://127.0.0.1:$r_http/hls/bench/720p/$r_seg")
n_s=$(rps "http://127.0.0.1:$n_http/hls/bench/720p/$r_seg")
m_p=$(rps "http://127.0.0.1:$m_http$pl")
r_p=$(rps "http://127.0.0.1:$r_http$pl")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

echo
echo "origin throughput, wrk -t$threads -c$conns -d${secs}s, loopback, $(nproc) cores, segment $size bytes"
echo
echo "| request | memory | Redis (cache) | Redis / memory | Redis (no cache) |"
echo "|---|---|---|---|---|"
echo "| segment \`720p/N.m4s\` | $m_s | $r_s | $(ratio "$r_s" "$m_s") | $n_s |"
echo "| media playlist \`720p/index.m3u8\` | $m_p | $r_p | $(ratio "$r_p" "$m_p") | (never cached) |"
