#!/usr/bin/env bash
# Audience beacons (issue 22), run by hand, not part of tests/run.sh.
#
#   tests/bench/audience.sh                        # both parts
#   PARTS=cost BENCH_SECONDS=20 tests/bench/audience.sh
#   PARTS=sessions SESSIONS=10000 DURATION=300 tests/bench/audience.sh
#
# Part "cost": what one POST /beacon/ID costs the origin next to what one
# playlist request costs it, in the same run: wrk against the media
# playlist of a live stream, then wrk posting beacons (a pool of SESSIONS
# session ids spread over ADDRESSES client addresses, given to sluice as
# X-Forwarded-For from a trusted proxy, so the per-address limits apply as
# they would behind a CDN; COST_SESSIONS, default 15000, over COST_ADDRESSES,
# default 1000), both paced to COST_RATE requests/s (default 8000; wrk with
# a per-connection delay) so that neither a session's 1/s nor an address's
# 20/s limit refuses beacons: the cost measured is an accepted beacon's.
# Alternately for BENCH_ROUNDS rounds. Reported:
# req/s, p50/p99 and sluice's CPU time per request (user+system from /proc,
# the figure that least depends on what else runs), and the ratio
# beacon/playlist of that CPU time. The beacon round also reports how many
# were accepted (204) and how many limited (429).
#
# Part "sessions": SESSIONS simulated playback sessions (default 10,000),
# each sending a beacon every INTERVAL s (default 10; wrk with a per-
# connection delay), for DURATION s (default 240). Every CHURN s (default
# 60, staggered) each session ends (an "ended" beacon) and a new one takes
# its place, so the server sees a stream of new sessions, as a real
# audience is. Every 10 s it prints sluice's RSS, the stream's
# audience.viewers, sessions_total and the store's meta records; at the end
# the RSS growth between the first sample after warm-up (2 x CHURN) and the
# last. Flat memory means that growth stays within a few percent while
# sessions_total keeps climbing.
#
# One sluice (memory store, or STORE=redis: a redis-server of its own),
# `--ladder 360p` on a passthrough copy of a 20 s clip looped by ffmpeg -re,
# so no CPU goes to x264. Knobs: BENCH_THREADS (2), BENCH_CONNS (64),
# BENCH_SECONDS (10), BENCH_ROUNDS (3), COST_SESSIONS, COST_ADDRESSES,
# COST_RATE (above), SESSIONS (10000), ADDRESSES (250),
# INTERVAL (10), CHURN (60), DURATION (240), STORE (memory|redis),
# SLUICE_BIN (skip the build), SLUICE_ARGS, KEEP=1 (keep the work dir).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
root=$(pwd)
parts=${PARTS:-cost sessions}
threads=${BENCH_THREADS:-2}
conns=${BENCH_CONNS:-64}
secs=${BENCH_SECONDS:-10}
rounds=${BENCH_ROUNDS:-3}
sessions=${SESSIONS:-10000}
addresses=${ADDRESSES:-250}
cost_sessions=${COST_SESSIONS:-15000}
cost_addresses=${COST_ADDRESSES:-1000}
cost_rate=${COST_RATE:-8000}
interval=${INTERVAL:-10}
churn=${CHURN:-60}
duration=${DURATION:-240}
store_kind=${STORE:-memory}
die() { echo "audience.sh: $*" >&2; exit 2; }
for tool in ffmpeg curl python3 meson wrk; do
  command -v "$tool" >/dev/null || die "$tool is missing (deploy/packages.sh test)"
done
[ "$store_kind" = memory ] || command -v redis-server >/dev/null || die "redis-server is missing"

if [ -n "${SLUICE_BIN:-}" ]; then
  bin=$SLUICE_BIN
else
  [ -d build-bench ] || meson setup build-bench --buildtype=release -Dtests=false >/dev/null ||
    die "meson setup failed"
  meson compile -C build-bench >/dev/null || die "build failed"
  bin=$root/build-bench/sluice
fi
[ -x "$bin" ] || die "$bin not built"

work=$(mktemp -d /tmp/sluice-audience-bench-XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

hz=$(getconf CLK_TCK)

clip=$work/clip360.mp4
echo "audience.sh: encoding a 20 s 640x360 H.264/AAC clip once"
ffmpeg -hide_banner -nostdin -loglevel error -y -f lavfi -i testsrc2=size=640x360:rate=30 \
  -f lavfi -i sine=frequency=440:sample_rate=48000 -t 20 -c:v libx264 -preset veryfast \
  -g 60 -keyint_min 60 -sc_threshold 0 -pix_fmt yuv420p -b:v 700k -maxrate 700k -bufsize 700k \
  -c:a aac -b:a 96k -ac 2 "$clip" || die "could not encode the clip"

store=memory
if [ "$store_kind" = redis ]; then
  rport=$(port)
  redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
    >"$work/redis.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
  store="redis://127.0.0.1:$rport/0"
fi
rp=$(port); hp=$(port); ap=$(port)
# shellcheck disable=SC2086 # SLUICE_ARGS is a list of options
"$bin" --store "$store" --stream bench:bench-key --ladder 360p --passthrough auto \
  --trusted-proxies 127.0.0.1 --rtmp-listen "127.0.0.1:$rp" --http-listen "127.0.0.1:$hp" \
  --admin-listen "127.0.0.1:$ap" --log-level warn ${SLUICE_ARGS:-} >"$work/sluice.log" 2>&1 &
spid=$!
pids+=("$spid")
base=http://127.0.0.1:$hp
admin=http://127.0.0.1:$ap
for _ in $(seq 100); do curl -s -o /dev/null "$base/healthz" && break; sleep 0.1; done
ffmpeg -hide_banner -nostdin -loglevel error -re -stream_loop -1 -i "$clip" -c copy \
  -f flv "rtmp://127.0.0.1:$rp/live/bench-key" >"$work/ffmpeg.log" 2>&1 &
pids+=($!)
for _ in $(seq 150); do
  curl -sf -o /dev/null "$base/hls/bench/360p/index.m3u8" && break
  sleep 0.2
done
curl -sf -o /dev/null "$base/hls/bench/360p/index.m3u8" || { tail "$work/sluice.log" >&2; die "no playlist"; }

# The beacon generator: session i of the pool (i over all threads) comes
# from address 10.(i % ADDRESSES) as X-Forwarded-For; with DELAY_MS each
# connection waits between requests. With CHURN, session i's id changes
# every CHURN s (staggered by i), and the first request of a new id is
# preceded by an "ended" beacon for the old one.
gen_lua() { # SESSIONS ADDRESSES CHURN DELAY_MS -> $work/beacon.lua
cat >"$work/beacon.lua" <<EOF
local sessions, addresses, churn, delay_ms = $1, $2, $3, $4
-- tid: a global, set per thread by setup() (thread:set)
local counter, nthreads = 0, $threads
local gen_of = {}
local n_threads = 0
function setup(thread)
  thread:set("tid", n_threads)
  n_threads = n_threads + 1
end
local function sid(i, g) return string.format("benchsession%06dg%05d", i, g) end
local function body(s, state, i)
  return '{"session":"' .. s .. '","state":"' .. state .. '","rendition":"360p","latency_ms":'
    .. (2000 + i % 500) .. ',"startup_ms":' .. (700 + i % 300) .. ',"watch_ms":' .. (counter * 10 % 86400000)
    .. ',"stalls":0,"stall_ms":0,"player":"bench"}'
end
function request()
  counter = counter + 1
  local i = (tid + counter * nthreads) % sessions
  local addr = string.format("10.%d.%d.%d", math.floor(i % addresses / 65536) % 256,
                             math.floor(i % addresses / 256) % 256, i % addresses % 256)
  local g = 0
  if churn > 0 then g = math.floor((os.time() + i * churn / sessions) / churn) end
  local headers = { ["Content-Type"] = "text/plain", ["X-Forwarded-For"] = addr }
  local prev = gen_of[i]
  gen_of[i] = g
  if prev ~= nil and prev ~= g then
    return wrk.format("POST", "/beacon/bench", headers, body(sid(i, prev), "ended", i))
  end
  return wrk.format("POST", "/beacon/bench", headers, body(sid(i, g), "playing", i))
end
if delay_ms > 0 then function delay() return delay_ms end end
local codes = {}
function response(status) codes[status] = (codes[status] or 0) + 1 end
function done(summary, latency, requests)
  io.write(string.format("p50_ms %.3f p99_ms %.3f\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
EOF
}

wrk_run() { # NAME ARGS... -> "rps p50 p99 cpu_us_per_req non2xx"
  local name=$1 out c0 c1 n rps
  shift
  c0=$(cpu_ticks "$spid")
  out=$(wrk "$@" --latency 2>&1) || true
  c1=$(cpu_ticks "$spid")
  echo "$out" >>"$work/wrk-$name.log"
  n=$(awk '/requests in/ { print $1 }' <<<"$out")
  rps=$(awk '/^Requests\/sec/ { printf "%.0f", $2 }' <<<"$out")
  local p50 p99 bad
  p50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
  p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
  bad=$(awk '/Non-2xx/ { print $NF }' <<<"$out")
  awk -v c=$((c1 - c0)) -v n="${n:-0}" -v hz="$hz" -v rps="${rps:-0}" -v p50="$p50" -v p99="$p99" -v bad="${bad:-0}" \
    'BEGIN { printf "%s %s %s %.1f %s\n", rps, p50, p99, (n > 0 ? c * 1e6 / hz / n : 0), bad }'
}

if [[ " $parts " == *" cost "* ]]; then
  echo "audience.sh: cost: wrk -t$threads -c$conns -d${secs}s, $rounds rounds, beacons from $cost_sessions sessions over $cost_addresses addresses"
  cost_delay=$((conns * 1000 / cost_rate))
  [ "$cost_delay" -ge 1 ] || cost_delay=1
  echo "  both at about $((conns * 1000 / cost_delay)) requests/s ($conns connections, each waiting ${cost_delay} ms between requests)"
  gen_lua "$cost_sessions" "$cost_addresses" 0 "$cost_delay"
  printf 'function delay() return %d end\n' "$cost_delay" >"$work/paced.lua"
  : >"$work/cost"
  for r in $(seq "$rounds"); do
    read -r rps p50 p99 cpu bad < <(wrk_run playlist -t"$threads" -c"$conns" -d"${secs}s" -s "$work/paced.lua" "$base/hls/bench/360p/index.m3u8")
    echo "playlist $rps $p50 $p99 $cpu $bad" >>"$work/cost"
    printf '  round %s playlist %8s req/s  p50 %8s  p99 %8s  %6s CPU-us/req  non-2xx %s\n' "$r" "$rps" "$p50" "$p99" "$cpu" "$bad"
    read -r rps p50 p99 cpu bad < <(wrk_run beacon -t"$threads" -c"$conns" -d"${secs}s" -s "$work/beacon.lua" "$base/beacon/bench")
    echo "beacon $rps $p50 $p99 $cpu $bad" >>"$work/cost"
    printf '  round %s beacon   %8s req/s  p50 %8s  p99 %8s  %6s CPU-us/req  non-2xx (429) %s\n' "$r" "$rps" "$p50" "$p99" "$cpu" "$bad"
  done
  python3 - "$work/cost" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = lambda k, i: statistics.median(float(r[i]) for r in rows if r[0] == k)
p, b = med("playlist", 4), med("beacon", 4)
print("| request | req/s | CPU-us/req | non-2xx |")
print("|---|---|---|---|")
for k in ("playlist", "beacon"):
    print(f"| {k} | {med(k, 1):.0f} | {med(k, 4):.1f} | {med(k, 5):.0f} |")
print(f"beacon/playlist CPU per request: {b / p:.2f}" if p else "no playlist figure")
EOF
fi

if [[ " $parts " == *" sessions "* ]]; then
  conns_s=$((sessions / 100))
  [ "$conns_s" -ge 2 ] || conns_s=2
  delay=$((interval * 1000 * conns_s / sessions))
  echo "audience.sh: sessions: $sessions sessions, one beacon each per ${interval}s ($conns_s connections, ${delay} ms apart), churn ${churn}s, ${duration}s"
  gen_lua "$sessions" "$addresses" "$churn" "$delay"
  wrk -t"$threads" -c"$conns_s" -d"${duration}s" -s "$work/beacon.lua" --timeout 5s "$base/beacon/bench" \
    >"$work/wrk-sessions.log" 2>&1 &
  wpid=$!
  pids+=("$wpid")
  t0=$(date +%s)
  first=
  warm=$((2 * churn))
  : >"$work/samples"
  while kill -0 "$wpid" 2>/dev/null; do
    sleep 10
    t=$(($(date +%s) - t0))
    rss=$(rss_kb "$spid")
    st=$(curl -s "$admin/api/v1/streams/bench" || true)
    read -r viewers total < <(python3 -c 'import json,sys
try:
    a = json.loads(sys.argv[1]).get("audience", {})
    print(a.get("beacon_viewers", a.get("viewers", "?")), a.get("sessions_total", "?"))
except Exception:
    print("? ?")' "$st")
    echo "$t $rss $viewers $total" >>"$work/samples"
    printf '  t=%4ss  RSS %8s kB  viewers %6s  sessions_total %7s\n' "$t" "$rss" "$viewers" "$total"
    if [ -z "$first" ] && [ "$t" -ge "$warm" ]; then first=$rss; fi
  done
  last=$(tail -1 "$work/samples" | cut -d' ' -f2)
  tail -n 12 "$work/wrk-sessions.log" | sed 's/^/  wrk: /'
  if [ -n "$first" ]; then
    awk -v a="$first" -v b="$last" -v w="$warm" 'BEGIN { printf "RSS after warm-up (%d s) %d kB, at the end %d kB: %+.1f%%\n", w, a, b, (b - a) * 100.0 / a }'
  else
    echo "the run was shorter than the warm-up (2 x CHURN): no growth figure"
  fi
fi
