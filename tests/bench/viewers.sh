#!/usr/bin/env bash
# Concurrent LL-HLS viewers (issue 9), run by hand, not part of tests/run.sh.
#
#   tests/bench/viewers.sh                      # memory, then redis (the default)
#   MODES=memory VIEWERS=1000 DURATION=120 tests/bench/viewers.sh
#
# Goals on the 2-core machine: 1,000 concurrent LL-HLS viewers on one
# passthrough stream plus 5 concurrent live channels, 2 minutes, zero errors,
# zero stalls, playlist p99 under 50 ms; the same on the Redis store with two
# origin processes.
#
# What one mode does, all on loopback:
#  1. builds a release sluice and the viewer simulator into build-bench/
#     (-Dtests=false; tests/load/ is built in every configuration), unless
#     SLUICE_BIN names a binary (the simulator is then taken from beside it,
#     or from SLUICE_VIEWERS_BIN);
#  2. encodes a 20 s 640x360 H.264 + AAC clip once (cached in the work dir):
#     the publishers are `ffmpeg -re -stream_loop -1 -i clip.mp4 -c copy`,
#     so no CPU goes to live x264 encodes, and `--ladder 360p` makes the one
#     rung a passthrough copy: sluice packages, it does not transcode;
#  3. memory: one sluice (ingest+origin, memory store) with six streams,
#     "main" and "ch1".."ch5", all published;
#     redis: a redis-server of its own, one `--role ingest` node and two
#     `--role origin` nodes on it, the six streams published to the ingest
#     node;
#  4. once every stream has an LL-HLS playlist, starts VIEWERS viewers of
#     "main" (ramped over RAMP s; on redis split over both origins) and
#     SIDE_VIEWERS viewers spread over ch1..ch5, both for DURATION s, then
#     prints one Markdown table row per mode: requests/s, blocking playlist
#     p50/p99 and wake-up lag p99, (non-blocking) playlist p99, part p99,
#     the probe's part p50/p99 and blocking reload p99 (4 more viewers of
#     "main" run under SCHED_FIFO with chrt, so that their numbers are the
#     origin's and not the load generator's wait for a core; PROBE=0 skips),
#     sluice's own part latency (its /metrics histogram, upper bucket edge),
#     errors, stalls, sluice CPU% with its threads' run-queue wait (ms per
#     second spent runnable without a core, from /proc/PID/task/*/schedstat) (user+system over the run, all sluice
#     processes summed; 100% = one core) and RSS (the sum at the end, kB),
#     redis-server CPU%, and the simulator's own CPU%.
#
# "Playlist p99" for LL-HLS viewers: a blocking reload is answered when the
# next part exists, so its latency is mostly waiting (about one part, 333 ms).
# What the origin adds is the wake-up lag: how long after the first viewer
# that got the playlist naming a new part the others got it. That, and the
# non-blocking playlist requests (joins, rejoins), are the figures held to
# 50 ms.
#
# Knobs: MODES (memory redis), VIEWERS (1000), SIM_PROCS (4: simulator
# processes for the main viewers), SIDE_VIEWERS (25), DURATION
# (120), RAMP (20), PART (0.333), SLUICE_ARGS (extra sluice options),
# SLUICE_NICE (0; e.g. -10 gives sluice the cores before the load generator),
# PERF=1 (perf record the first sluice during the run; report in the work
# dir), KEEP=1 (keep the work directory).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
root=$(pwd)
modes=${MODES:-memory redis}
viewers=${VIEWERS:-1000}
side=${SIDE_VIEWERS:-25}
procs=${SIM_PROCS:-4}
secs=${DURATION:-120}
ramp=${RAMP:-20}
part=${PART:-0.333}
die() { echo "viewers.sh: $*" >&2; exit 2; }
for tool in ffmpeg curl python3 meson redis-server redis-cli; do
  command -v "$tool" >/dev/null || die "$tool is missing (deploy/packages.sh test)"
done

if [ -n "${SLUICE_BIN:-}" ]; then
  bin=$SLUICE_BIN
else
  [ -d build-bench ] || meson setup build-bench --buildtype=release -Dtests=false >/dev/null ||
    die "meson setup failed"
  meson compile -C build-bench >/dev/null || die "build failed"
  bin=$root/build-bench/sluice
fi
sim=${SLUICE_VIEWERS_BIN:-$(dirname "$bin")/tests/load/sluice-viewers}
[ -x "$bin" ] || die "$bin not built"
[ -x "$sim" ] || die "$sim not built"

work=$(mktemp -d /tmp/sluice-viewers-bench-XXXXXX)
pids=()
stop_all() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  pids=()
}
cleanup() {
  stop_all
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_http() { # URL: up to 10 s
  for _ in $(seq 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done
  return 1
}
hz=$(getconf CLK_TCK)
rq_wait_ns() { # PID... -> nanoseconds their threads spent runnable but waiting for a CPU
  local p
  for p in "$@"; do cat /proc/"$p"/task/*/schedstat 2>/dev/null; done | awk '{ t += $2 } END { printf "%.0f", t }'
}

clip=$work/clip360.mp4
echo "viewers.sh: encoding a 20 s 640x360 H.264/AAC clip once"
ffmpeg -hide_banner -nostdin -loglevel error -y -f lavfi -i testsrc2=size=640x360:rate=30 \
  -f lavfi -i sine=frequency=440:sample_rate=48000 -t 20 -c:v libx264 -preset veryfast \
  -g 60 -keyint_min 60 -sc_threshold 0 -pix_fmt yuv420p -b:v 700k -maxrate 700k -bufsize 700k \
  -c:a aac -b:a 96k -ac 2 "$clip" || die "could not encode the clip"

streams=(main ch1 ch2 ch3 ch4 ch5)
stream_args=()
for s in "${streams[@]}"; do stream_args+=(--stream "$s:bench-key-$s"); done

publish_all() { # RTMP_PORT
  local s
  for s in "${streams[@]}"; do
    ffmpeg -hide_banner -nostdin -loglevel error -re -stream_loop -1 -i "$clip" -c copy \
      -f flv "rtmp://127.0.0.1:$1/live/bench-key-$s" >"$work/ffmpeg-$s.log" 2>&1 &
    pids+=($!)
  done
}

ll_ready() { # BASE STREAM (the body in a variable: grep -q may quit before curl, SIGPIPE)
  local pl
  pl=$(curl -s "$1/hls/$2/360p/index.m3u8" || true)
  grep -q '^#EXT-X-PART:' <<<"$pl"
}

sluice_node() { # NAME STORE ROLE -> sets rp, hp, ap, node_pid
  rp=$(port); hp=$(port); ap=$(port)
  # shellcheck disable=SC2086 # SLUICE_ARGS is a list of options
  nice -n "${SLUICE_NICE:-0}" "$bin" --store "$2" --role "$3" "${stream_args[@]}" --ladder 360p --passthrough auto \
    --part-duration "$part" --rtmp-listen "127.0.0.1:$rp" --http-listen "127.0.0.1:$hp" \
    --admin-listen "127.0.0.1:$ap" --log-level warn ${SLUICE_ARGS:-} >"$work/$1.log" 2>&1 &
  node_pid=$!
  pids+=("$node_pid")
}

rows=()
for mode in $modes; do
  echo "viewers.sh: mode $mode: $viewers viewers on main + $side on ch1..ch5, ${secs}s (ramp ${ramp}s), parts ${part}s"
  spids=()
  rpid=
  origins=()
  admins=()
  case $mode in
    memory)
      sluice_node sluice memory ingest,origin
      spids+=("$node_pid")
      wait_http "http://127.0.0.1:$hp/healthz" || { tail "$work/sluice.log" >&2; die "sluice did not start"; }
      origins=("http://127.0.0.1:$hp")
      admins=("http://127.0.0.1:$ap")
      ingest_rtmp=$rp
      ;;
    redis)
      rport=$(port)
      redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
        >"$work/redis.log" 2>&1 &
      rpid=$!
      pids+=("$rpid")
      for _ in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
      store="redis://127.0.0.1:$rport/0"
      sluice_node ingest "$store" ingest
      spids+=("$node_pid")
      ingest_rtmp=$rp
      for o in origin1 origin2; do
        sluice_node "$o" "$store" origin
        spids+=("$node_pid")
        wait_http "http://127.0.0.1:$hp/healthz" || { tail "$work/$o.log" >&2; die "$o did not start"; }
        origins+=("http://127.0.0.1:$hp")
        admins+=("http://127.0.0.1:$ap")
      done
      ;;
    *) die "unknown mode $mode (memory|redis)" ;;
  esac
  sleep 0.5
  publish_all "$ingest_rtmp"
  for s in "${streams[@]}"; do
    for o in "${origins[@]}"; do
      for _ in $(seq 150); do ll_ready "$o" "$s" && break; sleep 0.2; done
      ll_ready "$o" "$s" || { tail "$work"/*.log >&2; die "$s has no LL-HLS playlist on $o"; }
    done
  done
  sleep 2

  origin_args=()
  for o in "${origins[@]}"; do origin_args+=(--origin "$o"); done
  side_args=()
  for s in ch1 ch2 ch3 ch4 ch5; do side_args+=(--stream "$s"); done
  perf_pid=
  if [ "${PERF:-0}" = 1 ]; then
    perf record -F 499 -g -p "${spids[0]}" -o "$work/perf-$mode.data" -- sleep "$((secs / 2))" \
      >"$work/perf-$mode.log" 2>&1 &
    perf_pid=$!
  fi
  for i in "${!admins[@]}"; do curl -s "${admins[$i]}/metrics" >"$work/metrics0-$mode-$i"; done
  c0=$(cpu_ticks "${spids[@]}")
  q0=$(rq_wait_ns "${spids[@]}")
  r0=$( [ -n "$rpid" ] && cpu_ticks "$rpid" || echo 0)
  t0=$(date +%s.%N)
  # The main viewers in SIM_PROCS processes: one simulator thread handles a
  # part's burst of responses and new requests one after the other, which
  # with 1000 viewers takes longer than the origin does; several processes
  # use both cores. Their histograms are merged exactly below.
  mpids=()
  for i in $(seq 0 $((procs - 1))); do
    n=$((viewers / procs + (i < viewers % procs ? 1 : 0)))
    [ "$n" -gt 0 ] || continue
    /usr/bin/time -f '%U %S %e' -o "$work/time-main-$mode-$i" \
      "$sim" "${origin_args[@]}" --stream main --viewers "$n" --duration "$secs" --ramp "$ramp" \
      --json >"$work/main-$mode-$i.json" 2>"$work/main-$mode-$i.err" &
    mpids+=($!)
  done
  "$sim" "${origin_args[@]}" "${side_args[@]}" --viewers "$side" --duration "$secs" --ramp 2 \
    --json >"$work/side-$mode.json" 2>"$work/side-$mode.err" &
  sidepid=$!
  # The probe: 4 more viewers of "main" under SCHED_FIFO, so that what they
  # measure is the origin, not the load generator waiting for a core.
  probepid=
  if [ "${PROBE:-1}" = 1 ] && chrt -f 10 true 2>/dev/null; then
    chrt -f 10 "$sim" "${origin_args[@]}" --stream main --viewers 4 --duration "$secs" --ramp 1 \
      --json >"$work/probe-$mode.json" 2>"$work/probe-$mode.err" &
    probepid=$!
  fi
  # RSS near the end, while everything is still running
  sleep "$(awk -v s="$secs" 'BEGIN { print (s > 5 ? s - 3 : s) }')"
  rss=$(rss_kb "${spids[@]}")
  rrss=$( [ -n "$rpid" ] && rss_kb "$rpid" || echo 0)
  set +e
  mrc=0
  for p in "${mpids[@]}"; do wait "$p" || mrc=$?; done
  wait "$sidepid"; src=$?
  prc=-
  [ -n "$probepid" ] && { wait "$probepid"; prc=$?; }
  set -e
  t1=$(date +%s.%N)
  c1=$(cpu_ticks "${spids[@]}")
  q1=$(rq_wait_ns "${spids[@]}")
  for i in "${!admins[@]}"; do curl -s "${admins[$i]}/metrics" >"$work/metrics1-$mode-$i"; done
  r1=$( [ -n "$rpid" ] && cpu_ticks "$rpid" || echo 0)
  [ -n "$perf_pid" ] && { wait "$perf_pid" || true; }
  for p in "${spids[@]}"; do kill -0 "$p" 2>/dev/null || die "a sluice process exited during the run ($mode)"; done
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
  cpu=$(awk -v c=$((c1 - c0)) -v hz="$hz" -v w="$wall" 'BEGIN { printf "%.0f", c / hz / w * 100 }')
  rcpu=$(awk -v c=$((r1 - r0)) -v hz="$hz" -v w="$wall" 'BEGIN { printf "%.0f", c / hz / w * 100 }')
  # sluice's threads, summed: ms per second spent ready to run but without a core
  rqwait=$(awk -v a="$q0" -v b="$q1" -v w="$wall" 'BEGIN { printf "%.0f", (b - a) / 1e6 / w }')
  simcpu=$(cat "$work"/time-main-"$mode"-* | awk -v w="$wall" '{ t += $1 + $2 } END { printf "%.0f", t / w * 100 }')
  for f in "$work"/main-"$mode"-*.json; do
    [ -s "$f" ] || { tail "${f%.json}.err" >&2; die "a simulator wrote no report"; }
  done
  echo "viewers.sh: main viewers exit $mrc, side viewers exit $src, probe exit $prc"
  cat "$work"/main-"$mode"-*.err | head -20 || true
  row=$(python3 - "$work/main-$mode-*.json" "$work/side-$mode.json" "$mode" "$cpu" "$rss" "$rcpu" "$rrss" "$simcpu" "${#origins[@]}" "$work" "$rqwait" <<'PY'
import glob, json, re, sys
mains = [json.load(open(f)) for f in sorted(glob.glob(sys.argv[1]))]
s = json.load(open(sys.argv[2]))
# Merge the reports of the main simulators: sums, and quantiles from the summed
# histograms (the wake-up lag is measured within each process: against the
# first of its own viewers to get a part).
m = {"viewers": sum(x["viewers"] for x in mains), "duration_s": mains[0]["duration_s"],
     "requests_per_s": sum(x["requests_per_s"] for x in mains),
     "errors": sum(x["errors"] for x in mains), "stalls": sum(x["stalls"] for x in mains)}
def merged(kind):
    h = {}
    for x in mains:
        for edge, n in x["histograms"][kind]:
            h[edge] = h.get(edge, 0) + n
    total = sum(h.values())
    def q(p):
        acc = 0
        for edge in sorted(h):
            acc += h[edge]
            if acc >= p * total:
                return edge
        return 0.0
    return {"count": total, "p50_ms": q(0.5) if total else 0.0, "p99_ms": q(0.99) if total else 0.0}
m["kinds"] = {k: merged(k) for k in mains[0]["histograms"]}
mode, cpu, rss, rcpu, rrss, simcpu, norig, work, rqwait = sys.argv[3:12]
# Server side: the request latency histogram of sluice itself for parts (never held:
# the simulator does not use preload hints), the difference over the run,
# summed over the origin nodes; a quantile is the upper edge of its bucket.
def buckets(path):
    b = {}
    for line in open(path):
        r = re.match(r'sluice_http_request_duration_seconds_bucket\{kind="part",le="([^"]+)"\} (\S+)', line)
        if r:
            b[r.group(1)] = b.get(r.group(1), 0) + float(r.group(2))
    return b
delta = {}
for f1 in glob.glob(f"{work}/metrics1-{mode}-*"):
    b1, b0 = buckets(f1), buckets(f1.replace("metrics1", "metrics0"))
    for le, v in b1.items():
        delta[le] = delta.get(le, 0) + v - b0.get(le, 0)
def q(p):
    les = sorted(delta, key=lambda x: float("inf") if x == "+Inf" else float(x))
    total = delta.get("+Inf", 0)
    if not total:
        return "-"
    for le in les:
        if delta[le] >= p * total:
            return "> 10 s" if le == "+Inf" else f"<= {float(le) * 1000:g}"
srv = f"{q(0.5)} / {q(0.99)}"
k = m["kinds"]
errs = m["errors"] + s["errors"]
stalls = m["stalls"] + s["stalls"]
bl, pl, pa, wl = k["blocking_playlist"], k["playlist"], k["part"], k["blocking_wake_lag"]
nodes = "1 sluice" if norig == "1" else f"ingest + {norig} origins"
redis = f"{rcpu}% / {int(rrss)//1024} MB" if mode == "redis" else "-"
try:
    p = json.load(open(f"{work}/probe-{mode}.json"))
    pk = p["kinds"]
    probe = (f"{pk['part']['p50_ms']:.1f} / {pk['part']['p99_ms']:.1f} / "
             f"{pk['blocking_playlist']['p99_ms']:.0f}")
    errs += p["errors"]; stalls += p["stalls"]
except (OSError, ValueError, KeyError):
    probe = "-"
print(f"| {mode} ({nodes}) | {m['viewers']} + {s['viewers']} | {m['duration_s']:.0f} s "
      f"| {m['requests_per_s'] + s['requests_per_s']:.0f} "
      f"| {bl['p50_ms']:.0f} / {bl['p99_ms']:.0f} | {wl['p50_ms']:.1f} / {wl['p99_ms']:.1f} "
      f"| {pl['p99_ms']:.1f} ({pl['count']}) | {pa['p50_ms']:.1f} / {pa['p99_ms']:.1f} | {srv} | {probe} "
      f"| {errs} | {stalls} | {cpu}% ({rqwait} ms/s) | {int(rss)//1024} MB | {redis} | {simcpu}% |")
if errs or stalls:
    for x in mains:
        print("DETAIL main " + json.dumps({k: x[k] for k in x if k not in ("kinds", "histograms")}), file=sys.stderr)
    print("DETAIL side " + json.dumps({k: s[k] for k in s if k not in ("kinds", "histograms")}), file=sys.stderr)
PY
)
  echo "$row"
  rows+=("$row")
  stop_all
done

echo
echo "viewers: $(nproc) cores, loopback, release build, parts ${part}s, segments 2 s, ramp ${ramp}s, $procs simulator processes;" \
  "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| store | viewers (main + ch1..5) | duration | requests/s | blocking playlist p50 / p99 ms | wake-up lag p50 / p99 ms | playlist p99 ms (count) | part p50 / p99 ms | part in sluice p50 / p99 ms | probe part p50 / p99, blocking p99 ms | errors | stalls | sluice CPU (run-queue wait) | sluice RSS | redis CPU / RSS | simulator CPU |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for r in "${rows[@]}"; do echo "$r"; done
