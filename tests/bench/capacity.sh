#!/usr/bin/env bash
# Capacity numbers for docs/operations.md (issue 10), run by hand, not part
# of tests/run.sh:
#
#   tests/bench/capacity.sh                    # 60 s measured
#   SECONDS_MEASURED=30 tests/bench/capacity.sh
#
# One release sluice (build-rel/, built when missing, -Dtests=false) on a
# Redis store of its own (redis-server on a free loopback port, no
# persistence), the default ladder and options, one live stream: a 1080p30
# H.264 (6 Mb/s, GOP 2 s) + AAC 128 kb/s source, encoded once into a 20 s
# FLV clip and published in real time with
# `ffmpeg -re -stream_loop -1 -c copy`. So the default ladder gives 1080p
# copied + 720p/480p/360p encoded by x264 veryfast (PASSTHROUGH=never
# encodes 1080p too). Overload protection is off (OVERLOAD=on to change
# that): on a shared machine it would step the preset or drop a rung at the
# first load peak, and the figure is what the default preset costs.
#
# After WARMUP seconds (15) it measures over SECONDS_MEASURED (60):
# - CPU: user+system of the sluice process from /proc/PID/stat, per wall
#   second and per media second (media seconds from the 360p rung's
#   sluice_transcode_frames_total / 30), and whether overload protection
#   stepped the preset or dropped a rung (the status object);
# - Redis: INFO memory used_memory before the publish and at the end (live),
#   the key count, and MEMORY USAGE of every key summed by kind (segments,
#   parts, playlists, init, other);
# - egress per viewer: the bytes of the segments in each media playlist over
#   their EXTINF durations (media + fMP4 overhead), against the nominal rate,
#   and the size of each playlist (an LL-HLS viewer reloads it once a part).
# Prints a summary; KEEP=1 keeps the work directory (logs, clip); SRC=FILE
# publishes that clip instead of encoding one.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
root=$(pwd)
warmup=${WARMUP:-15}
measured=${SECONDS_MEASURED:-60}
passthrough=${PASSTHROUGH:-auto}
overload=${OVERLOAD:-off}
key=capacity-secret-key-0123456789

if [ ! -x build-rel/sluice ]; then
    [ -d build-rel ] || meson setup build-rel --buildtype=release -Dtests=false >/dev/null
    meson compile -C build-rel -j 2 >/dev/null
fi
work=$(mktemp -d /tmp/sluice-capacity.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT


if [ -n "${SRC:-}" ]; then
    cp "$SRC" "$work/src.flv"   # SRC=clip.flv: a clip made by an earlier run (KEEP=1)
else
echo "capacity: encoding the 20 s 1080p30 source clip" >&2
clip_1080p30 "$work/src.flv"
fi

rport=$(port)
redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
    >"$work/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$rport" PING 2>/dev/null | grep -q PONG && break; sleep 0.1; done

rtmp=$(port); http=$(port); admin=$(port)
build-rel/sluice --store "redis://127.0.0.1:$rport/0" --stream "cap:$key" \
    --passthrough "$passthrough" --overload-protection "$overload" \
    --rtmp-listen "127.0.0.1:$rtmp" --http-listen "127.0.0.1:$http" \
    --admin-listen "127.0.0.1:$admin" >"$work/sluice.log" 2>&1 &
spid=$!
pids+=($spid)
for _ in $(seq 100); do grep -q ready "$work/sluice.log" && break; sleep 0.1; done
grep -q ready "$work/sluice.log"
before=$(redis-cli -p "$rport" INFO memory | tr -d '\r' | sed -n 's/^used_memory://p')

total=$((warmup + measured + 10))
ffmpeg -hide_banner -nostdin -loglevel error -re -stream_loop -1 -i "$work/src.flv" \
    -t "$total" -c copy -f flv "rtmp://127.0.0.1:$rtmp/live/$key" 2>"$work/ffmpeg.log" &
pids+=($!)

SPID=$spid RPORT=$rport HTTP=$http ADMIN=$admin WARMUP=$warmup MEASURED=$measured \
BEFORE=$before python3 - <<'EOF'
import json, os, re, subprocess, time, urllib.request

spid, rport = int(os.environ["SPID"]), os.environ["RPORT"]
http, admin = os.environ["HTTP"], os.environ["ADMIN"]
warmup, measured = int(os.environ["WARMUP"]), int(os.environ["MEASURED"])
tck = os.sysconf("SC_CLK_TCK")


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


def cpu():
    f = open(f"/proc/{spid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tck


def frames(rendition):
    text = get(f"http://127.0.0.1:{admin}/metrics").decode()
    m = re.search(r'^sluice_transcode_frames_total\{stream="cap",rendition="%s"\} (\S+)$'
                  % rendition, text, re.M)
    return float(m.group(1)) if m else 0.0


def loadavg():
    return open("/proc/loadavg").read().split()[0]


def redis(*args):
    return subprocess.run(["redis-cli", "-p", rport, *args], capture_output=True,
                          text=True, timeout=30).stdout


time.sleep(warmup)
c0, f0, t0, l0 = cpu(), frames("360p"), time.time(), loadavg()
time.sleep(measured)
c1, f1, t1, l1 = cpu(), frames("360p"), time.time(), loadavg()
status = json.loads(get(f"http://127.0.0.1:{admin}/api/v1/streams/cap"))
wall, media = t1 - t0, (f1 - f0) / 30.0
print(f"load average {l0} at the start, {l1} at the end of the measured {wall:.0f} s")
print(f"ladder: " + ", ".join(
    f"{r['name']}{' (copy)' if r.get('passthrough') else ''}" for r in status["renditions"]))
tc = status.get("transcode", {})
print(f"transcode: speed {tc.get('speed')}, preset {tc.get('preset')}, preset_steps "
      f"{tc.get('preset_steps')}, dropped_rungs {tc.get('dropped_rungs')}, health "
      f"{status.get('health')} ({status.get('health_reason')})")
print(f"CPU: {c1 - c0:.1f} CPU-s over {wall:.1f} s wall = {(c1 - c0) / wall:.3f} CPU-s/s; "
      f"{media:.1f} media s encoded = {(c1 - c0) / media if media else 0:.3f} CPU-s per media s")
rss = [l for l in open(f"/proc/{spid}/status") if l.startswith(("VmRSS", "VmHWM"))]
print("sluice memory: " + ", ".join(l.split()[0] + " " + l.split()[1] + " kB" for l in rss))

# Redis, while live.
after = int(re.search(r"used_memory:(\d+)", redis("INFO", "memory")).group(1))
before = int(os.environ["BEFORE"])
kinds = {}
cursor = "0"
while True:
    out = redis("SCAN", cursor, "COUNT", "1000").split()
    cursor, keys = out[0], out[1:]
    for k in keys:
        usage = redis("MEMORY", "USAGE", k, "SAMPLES", "0").strip()
        n = int(usage) if usage.isdigit() else 0
        if re.search(r":o:[^/]+/\d+\.\d+\.m4s$", k):
            kind = "parts"
        elif re.search(r":o:[^/]+/\d+\.m4s$", k):
            kind = "segments"
        elif k.endswith(".m3u8"):
            kind = "playlists"
        elif k.endswith("init.mp4"):
            kind = "init"
        else:
            kind = "other"
        c, b = kinds.get(kind, (0, 0))
        kinds[kind] = (c + 1, b + n)
    if cursor == "0":
        break
print(f"redis used_memory: before {before / 1e6:.2f} MB, live {after / 1e6:.2f} MB, "
      f"delta {(after - before) / 1e6:.2f} MB")
for kind, (c, b) in sorted(kinds.items()):
    print(f"  {kind}: {c} keys, {b / 1e6:.2f} MB (MEMORY USAGE)")

# Egress per viewer: segment bytes over media seconds, per rendition.
base = f"http://127.0.0.1:{http}/hls/cap/"
master = get(base + "master.m3u8").decode()
print(f"master.m3u8: {len(master)} bytes")
for uri in re.findall(r"^(\S+/index\.m3u8)$", master, re.M) + \
        re.findall(r'TYPE=AUDIO.*URI="([^"]+)"', master):
    pl = get(base + uri).decode()
    durs = [float(d) for d in re.findall(r"#EXTINF:([\d.]+)", pl)]
    segs = re.findall(r"^(\d+\.m4s)$", pl, re.M)
    d = uri.rsplit("/", 1)[0]
    size = sum(len(get(f"{base}{d}/{s}")) for s in segs)
    init = len(get(f"{base}{d}/init.mp4"))
    secs = sum(durs[:len(segs)])
    print(f"  {d}: {len(segs)} segments, {secs:.1f} s, {size * 8 / secs / 1000:.0f} kb/s "
          f"as served, playlist {len(pl)} bytes, init {init} bytes")
EOF
kill "$spid"
wait "$spid"
echo "capacity: sluice exit status $?" >&2
