#!/usr/bin/env python3
"""The CPU that --rungs on-demand saves, run by hand (not part of
tests/run.sh; numbers in docs/benchmarks.md, "Rungs on demand").

One release sluice (build-rel/, built when missing) on the memory store,
one live stream published in real time from a looped clip (1280x720 30 fps
H.264 + AAC, GOP 2 s, `ffmpeg -re -stream_loop -1 -c copy`), the ladder
720p,480p,360p with --passthrough never (three x264 rungs, veryfast),
overload protection off (the figure is what the ladder costs). sluice's
user+system CPU time (/proc/PID/stat) is measured over --seconds in each
phase, once the rungs are in the state the phase needs:

  always     --rungs always, no viewer (every rung encodes: the baseline)
  0 viewers  --rungs on-demand --rung-idle 10: every rung idle
  one rung   a viewer on 360p (its playlist polled once a second)
  all rungs  a viewer on each of 720p, 480p and 360p

    python3 tests/bench/rungs_on_demand.py [--seconds 30] [--src clip.flv]

Prints a markdown table. The machine may be shared: the load average is
printed with each phase."""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
BIN = os.path.join(ROOT, "build-rel", "sluice")
os.environ.setdefault("SLUICE_BIN", BIN)

from harness import Sluice, http, wait_for  # noqa: E402

KEY = "demo-secret-key"
LADDER = ["720p", "480p", "360p"]


def build():
    if os.path.exists(BIN):
        return
    if not os.path.isdir(os.path.join(ROOT, "build-rel")):
        subprocess.run(["meson", "setup", "build-rel", "--buildtype=release", "-Dtests=false"],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["meson", "compile", "-C", "build-rel", "-j", "2"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)


def make_clip(path):
    subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "20",
                    "-c:v", "libx264", "-preset", "veryfast", "-g", "60", "-keyint_min", "60",
                    "-sc_threshold", "0", "-bf", "0", "-pix_fmt", "yuv420p", "-b:v", "3000k",
                    "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-f", "flv", path],
                   check=True, timeout=300)


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Viewer(threading.Thread):
    """Asks for one rendition's playlist once a second: what keeps a rung
    awake (a player asks far more often)."""

    def __init__(self, sluice, rend):
        super().__init__(daemon=True)
        self.url = sluice.url(f"/hls/demo/{rend}/index.m3u8")
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                http(self.url, timeout=15)
            except Exception:
                pass
            self.stop.wait(1.0)


def status(sluice):
    s, _, b = http(sluice.admin_url("/api/v1/streams/demo"))
    return json.loads(b) if s == 200 else {}


def active(sluice):
    return {r["name"]: r.get("active", True) for r in status(sluice).get("renditions", [])}


def measure(sluice, seconds):
    pid = sluice.proc.pid
    c0, t0 = cpu_s(pid), time.monotonic()
    st0 = status(sluice)
    time.sleep(seconds)
    c1, t1 = cpu_s(pid), time.monotonic()
    st = status(sluice)
    tr = st.get("transcode", {})
    frames = {r["name"]: r["frames"] - next(o["frames"] for o in st0["renditions"] if o["name"] == r["name"])
              for r in st.get("renditions", [])}
    return {"cpu": (c1 - c0) / (t1 - t0), "load": os.getloadavg()[0], "speed": tr.get("speed"),
            "preset": tr.get("preset"), "dropped": tr.get("dropped_rungs"), "frames": frames}


def run(mode, clip, seconds, phases):
    args = ["--ladder", ",".join(LADDER), "--passthrough", "never", "--overload-protection", "off",
            "--rungs", mode, "--rung-idle", "10"]
    sluice = Sluice(*args)
    pub = subprocess.Popen(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
                            "-stream_loop", "-1", "-i", clip, "-c", "copy", "-f", "flv",
                            sluice.rtmp_url(KEY)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = []
    viewers = []
    try:
        wait_for(lambda: http(sluice.url("/hls/demo/master.m3u8"))[0] == 200, 60, "the master")
        time.sleep(5)  # past start-up
        for name, rends in phases:
            for v in viewers:
                v.stop.set()
            viewers = [Viewer(sluice, r) for r in rends]
            for v in viewers:
                v.start()
            want = {r: (r in rends) or mode == "always" for r in LADDER}
            wait_for(lambda: active(sluice) == want, 60, f"rungs {want}", interval=1)
            time.sleep(3)
            m = measure(sluice, seconds)
            m["phase"] = name
            out.append(m)
            print(json.dumps(m), file=sys.stderr)
    finally:
        for v in viewers:
            v.stop.set()
        sluice.close(pub)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--src", help="a clip of an earlier run (1280x720 FLV)")
    a = ap.parse_args()
    build()
    with tempfile.TemporaryDirectory(prefix="sluice-ondemand-bench-") as d:
        clip = a.src or os.path.join(d, "src.flv")
        if not a.src:
            make_clip(clip)
        rows = run("always", clip, a.seconds, [("always (baseline)", [])])
        rows += run("on-demand", clip, a.seconds,
                    [("0 viewers", []), ("viewers on one rung (360p)", ["360p"]),
                     ("viewers on all rungs", LADDER)])
    print(f"\nsluice {BIN}, 1280x720p30 source, ladder {','.join(LADDER)} x264 veryfast "
          f"(--passthrough never), {a.seconds} s per phase, {os.cpu_count()} cores\n")
    print("| phase | sluice CPU (cores) | frames encoded 720p/480p/360p | worker speed | load average |")
    print("|---|---|---|---|---|")
    for r in rows:
        f = r["frames"]
        print(f"| {r['phase']} | {r['cpu']:.2f} | {f.get('720p')}/{f.get('480p')}/{f.get('360p')} "
              f"| {r['speed']} | {r['load']:.1f} |")


if __name__ == "__main__":
    main()
