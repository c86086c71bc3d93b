#!/usr/bin/env bash
# Channels per box (issue 23 part 4), run by hand, not part of tests/run.sh:
#
#   tests/bench/channels.sh                      # every mode, up to MAX channels
#   MODES="full passthrough ondemand" MAX=8 WARMUP=20 MEASURED=30 tests/bench/channels.sh
#
# One release sluice (build-bench/, as ladder.sh builds it) with the
# default options (memory store, the default ladder 1080p/720p/480p/360p,
# x264 veryfast, overload protection ON), and N channels of the same 20 s
# 1080p30 H.264 (6 Mb/s, GOP 2 s) + AAC source, each published in real time
# by `ffmpeg -re -stream_loop -1 -c copy`. N goes 1, 2, 3, ... until a
# channel falls behind; the answer is the last N that held. Modes:
#   full         --passthrough never: all four rungs encoded
#   passthrough  --passthrough auto (the default): 1080p copied, three encoded
#   ondemand     passthrough auto + --rungs on-demand --rung-idle 10, with a
#                viewer on 360p of every channel (its playlist and newest
#                segment fetched every second), nobody on 720p/480p
# After WARMUP s (20; on-demand rungs idle after 10 s) it measures MEASURED s
# (30). A channel HOLDS when, over the window: its newest packet waited under
# 1 s in the ingest queue at the end (no growing backlog), the ingest queue
# dropped nothing, overload protection dropped no rung, and every rung that
# is encoding kept real time (frames >= 97% of 30 fps x the window).
# Preset steps (overload protection trading quality for speed) are allowed
# and reported. Prints a line per trial and a summary: channels per box and
# per core.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
root=$(pwd)
modes=${MODES:-full passthrough ondemand}
max=${MAX:-8}
warmup=${WARMUP:-20}
measured=${MEASURED:-30}
cores=$(nproc)

[ -d build-bench ] || meson setup build-bench --buildtype=release -Dtests=false >/dev/null
meson compile -C build-bench >/dev/null
bin=$root/build-bench/sluice

work=$(mktemp -d /tmp/sluice-channels.XXXXXX)
pids=()
stop_all() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
}
trap 'stop_all; rm -rf "$work"' EXIT

echo "channels: encoding the 20 s 1080p30 source clip" >&2
clip_1080p30 "$work/src.flv"

# trial MODE N -> prints one line; exit status 0 when every channel held.
trial() {
    local mode=$1 n=$2 opts=()
    case $mode in
        full) opts=(--passthrough never) ;;
        passthrough) opts=(--passthrough auto) ;;
        ondemand) opts=(--passthrough auto --rungs on-demand --rung-idle 10) ;;
    esac
    local rtmp http admin streams=()
    rtmp=$(port); http=$(port); admin=$(port)
    for i in $(seq "$n"); do streams+=(--stream "ch$i:channels-secret-key-$i-0123456789"); done
    "$bin" "${opts[@]}" "${streams[@]}" --rtmp-listen "127.0.0.1:$rtmp" \
        --http-listen "127.0.0.1:$http" --admin-listen "127.0.0.1:$admin" \
        >"$work/sluice-$mode-$n.log" 2>&1 &
    local spid=$!
    pids+=("$spid")
    for _ in $(seq 100); do grep -q ready "$work/sluice-$mode-$n.log" && break; sleep 0.1; done
    for i in $(seq "$n"); do
        ffmpeg -hide_banner -nostdin -loglevel error -re -stream_loop -1 -i "$work/src.flv" \
            -t $((warmup + measured + 10)) -c copy -f flv \
            "rtmp://127.0.0.1:$rtmp/live/channels-secret-key-$i-0123456789" 2>>"$work/ffmpeg.log" &
        pids+=($!)
    done
    local rc=0
    SPID=$spid HTTP=$http ADMIN=$admin N=$n MODE=$mode WARMUP=$warmup MEASURED=$measured \
        CORES=$cores python3 - <<'PY' || rc=$?
import json, os, re, threading, time, urllib.request

spid, http, admin = int(os.environ["SPID"]), os.environ["HTTP"], os.environ["ADMIN"]
n, mode = int(os.environ["N"]), os.environ["MODE"]
warmup, measured, cores = int(os.environ["WARMUP"]), int(os.environ["MEASURED"]), int(os.environ["CORES"])
tck = os.sysconf("SC_CLK_TCK")
stop = threading.Event()


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


def viewer(stream):
    # One viewer on 360p: its playlist and newest segment every second.
    base = f"http://127.0.0.1:{http}/hls/{stream}/360p/"
    while not stop.is_set():
        try:
            segs = re.findall(r"^(\d+\.m4s)$", get(base + "index.m3u8").decode(), re.M)
            if segs:
                get(base + segs[-1])
        except Exception:
            pass
        stop.wait(1.0)


def metrics():
    text = get(f"http://127.0.0.1:{admin}/metrics").decode()
    out = {}
    for name, labels, value in re.findall(r'^(sluice_\w+)\{([^}]*)\} (\S+)$', text, re.M):
        out[(name, labels)] = float(value)
    return out


def cpu():
    f = open(f"/proc/{spid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tck


streams = [f"ch{i + 1}" for i in range(n)]
if mode == "ondemand":
    for s in streams:
        threading.Thread(target=viewer, args=(s,), daemon=True).start()
time.sleep(warmup)
m0, c0, t0 = metrics(), cpu(), time.time()
time.sleep(measured)
m1, c1, t1 = metrics(), cpu(), time.time()
stop.set()
wall = t1 - t0
problems, steps = [], 0
for s in streams:
    st = json.loads(get(f"http://127.0.0.1:{admin}/api/v1/streams/{s}"))
    tc = st.get("transcode") or {}
    steps += tc.get("preset_steps") or 0
    if st.get("state") != "live":
        problems.append(f"{s} not live")
        continue
    if tc.get("dropped_rungs"):
        problems.append(f"{s} dropped rungs {tc.get('dropped_rungs')}")
    lag = m1.get(("sluice_transcode_queue_lag_seconds", f'stream="{s}"'), 0)
    if lag >= 1.0:
        problems.append(f"{s} queue lag {lag:.1f} s")
    dropped = m1.get(("sluice_ingest_dropped_frames_total", f'stream="{s}"'), 0) - \
        m0.get(("sluice_ingest_dropped_frames_total", f'stream="{s}"'), 0)
    if dropped > 0:
        problems.append(f"{s} ingest dropped {dropped:.0f}")
    for r in st.get("renditions") or []:
        if r.get("active") is False:
            continue
        key = ("sluice_transcode_frames_total", f'stream="{s}",rendition="{r["name"]}"')
        fps = (m1.get(key, 0) - m0.get(key, 0)) / wall
        if fps < 0.97 * 30:
            problems.append(f"{s}/{r['name']} {fps:.1f} fps")
active = sum(1 for (name, _), v in m1.items() if name == "sluice_rung_active" and v == 1)
load = open("/proc/loadavg").read().split()[0]
print(f"{mode:12} {n:2} channels: {'held' if not problems else 'FELL BEHIND'}; sluice "
      f"{(c1 - c0) / wall:.2f} CPU-s/s of {cores} ({(c1 - c0) / wall / n:.2f} per channel), "
      f"preset steps {steps}, rungs encoding or copied {active if mode == 'ondemand' else '-'}, "
      f"load {load}" + ("" if not problems else "; " + "; ".join(problems[:6])), flush=True)
raise SystemExit(1 if problems else 0)
PY
    stop_all
    return $rc
}

summary=()
for mode in $modes; do
    held=0
    for n in $(seq "$max"); do
        if trial "$mode" "$n"; then held=$n; else break; fi
    done
    summary+=("$mode: $held channel(s) held on $cores cores = $(awk -v h="$held" -v c="$cores" 'BEGIN{printf "%.2f", h / c}') per core")
done
echo "== channels per box (1080p30 source, default settings, overload protection on)"
printf '%s\n' "${summary[@]}"
