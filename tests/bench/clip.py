#!/usr/bin/env python3
"""Clip bench (docs/benchmarks.md, "Clips"): time to ready and CPU of a 30 s
smart-cut clip of a 1080p rung, against ffmpeg -ss/-t re-encoding the same
range, measured side by side in one run.

The source is made offline with ffmpeg, the way a 1080p ladder's top rung
comes out of sluice: 1920x1080 30 fps H.264 (libx264 veryfast, High, 6
Mb/s, closed 2 s GOPs, no B-frames) + AAC 48 kHz stereo, in 2 s fMP4
segments, written as a finished recording in the recordings layout (init,
N.m4s, journal, recording.json). A release sluice (SLUICE_BIN, default
build-rel/sluice) is started on that directory; the clip is asked through
the API (POST /api/v1/recordings/RID/clips, start_offset 5.5 s, duration
30 s: both ends inside a GOP) and its CPU is sluice's user+system time
(/proc) from the POST to "ready". The reference is `ffmpeg -ss 5.5 -t 30`
of the same segments (joined into one file) with libx264 veryfast at the
same quality setting (crf 16) and the audio copied: frame-accurate too.
BENCH_ROUNDS (default 3) rounds alternate the two; medians are reported.
"""

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SLUICE = os.environ.get("SLUICE_BIN", os.path.join(ROOT, "build-rel", "sluice"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SECONDS, SEG, START, DUR = 40, 2, 5.5, 30
RID = "bench-20261207T120000Z"
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / TICK


def make_source(d):
    rec = os.path.join(d, RID)
    os.makedirs(rec)
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(SECONDS),
         "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "veryfast", "-b:v", "6M",
         "-maxrate", "6M", "-bufsize", "12M", "-bf", "0", "-g", "60", "-keyint_min", "60",
         "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-ac", "2",
         "-f", "hls", "-hls_time", str(SEG), "-hls_segment_type", "fmp4", "-hls_playlist_type",
         "vod", "-var_stream_map", "v:0,name:1080p a:0,name:audio",
         "-hls_fmp4_init_filename", "init.mp4",
         "-hls_segment_filename", os.path.join(rec, "%v", "%d.m4s"),
         os.path.join(rec, "%v", "index.m3u8")], check=True)
    t0 = 1796644800000  # 2026-12-07T12:00:00Z
    for rend in ("1080p", "audio"):
        rdir = os.path.join(rec, rend)
        segs = sorted(int(n[:-4]) for n in os.listdir(rdir) if n.endswith(".m4s"))
        for n in os.listdir(rdir):  # ffmpeg names it init_N.mp4 with several variants
            if n.startswith("init") and n.endswith(".mp4"):
                os.rename(os.path.join(rdir, n), os.path.join(rdir, "init.mp4"))
        # ffmpeg numbers segments from 0; sluice's journal and names from 1
        for n in reversed(segs):
            os.rename(os.path.join(rdir, f"{n}.m4s"), os.path.join(rdir, f"{n + 1}.m4s"))
        with open(os.path.join(rdir, "journal"), "w") as j:
            for i, n in enumerate(segs):
                p = os.path.join(rdir, f"{n + 1}.m4s")
                j.write(f"{n + 1} {SEG:.3f} 0 init.mp4 {os.path.getsize(p)} {t0 + i * SEG * 1000}\n")
    with open(os.path.join(rec, "recording.json"), "w") as f:
        json.dump({"stream_id": "bench", "state": "ready", "started_at": "2026-12-07T12:00:00Z",
                   "ended_at": "2026-12-07T12:00:40Z"}, f)
    joined = os.path.join(d, "joined.mp4")
    # the reference reads one file with both tracks: the rung and the audio muxed (copied)
    v = os.path.join(d, "v.mp4")
    a = os.path.join(d, "a.mp4")
    for rend, path in (("1080p", v), ("audio", a)):
        rdir = os.path.join(rec, rend)
        n = len([x for x in os.listdir(rdir) if x.endswith(".m4s")])
        with open(path, "wb") as out:
            for name in ["init.mp4"] + [f"{i}.m4s" for i in range(1, n + 1)]:
                with open(os.path.join(rdir, name), "rb") as f:
                    out.write(f.read())
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", v, "-i", a,
                    "-map", "0:v", "-map", "1:a", "-c", "copy", joined], check=True)
    return joined


def api(port, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=data,
                                 headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def sluice_round(port, pid):
    c0, t0 = cpu_of(pid), time.time()
    clip = api(port, "POST", f"/api/v1/recordings/{RID}/clips",
               {"start_offset": START, "duration": DUR})
    while True:
        j = api(port, "GET", f"/api/v1/clips/{clip['id']}")
        if j["state"] != "processing":
            break
        time.sleep(0.02)
    wall, cpu = time.time() - t0, cpu_of(pid) - c0
    assert j["state"] == "ready", j
    return wall, cpu, j


def ffmpeg_round(joined, d):
    out = os.path.join(d, "ref.mp4")
    t0 = time.time()
    r0 = os.times()
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-ss", str(START),
                    "-t", str(DUR), "-i", joined, "-c:v", "libx264", "-preset", "veryfast",
                    "-crf", "16", "-c:a", "copy", "-movflags", "+faststart", out], check=True)
    r1 = os.times()
    cpu = (r1.children_user - r0.children_user) + (r1.children_system - r0.children_system)
    return time.time() - t0, cpu, out


def frames(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                          "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path],
                         capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def main():
    d = tempfile.mkdtemp(prefix="sluice-bench-clip-")
    proc = None
    try:
        joined = make_source(d)
        port = free_port()
        log = open(os.path.join(d, "sluice.log"), "w")
        proc = subprocess.Popen([SLUICE, "--rtmp-listen", f"127.0.0.1:{free_port()}",
                                 "--http-listen", f"127.0.0.1:{free_port()}",
                                 "--admin-listen", f"127.0.0.1:{port}", "--state-dir", "none",
                                 "--recordings-dir", d], stdout=log, stderr=subprocess.STDOUT)
        for _ in range(100):
            try:
                api(port, "GET", "/api/v1/clips")
                break
            except OSError:
                time.sleep(0.1)
        rows = []
        for _ in range(ROUNDS):
            sw, sc, j = sluice_round(port, proc.pid)
            fw, fc, ref = ffmpeg_round(joined, d)
            rows.append((sw, sc, fw, fc))
            print(f"round: sluice {sw:.2f} s wall {sc:.2f} s CPU "
                  f"({j['frames_copied']} copied, {j['frames_encoded']} encoded); "
                  f"ffmpeg {fw:.2f} s wall {fc:.2f} s CPU", flush=True)
        clip_mp4 = os.path.join(d, j["id"], "clip.mp4")
        med = [statistics.median(r[i] for r in rows) for i in range(4)]
        print(f"frames: clip {frames(clip_mp4)}, ffmpeg {frames(ref)} (requested {DUR * 30})")
        print(f"median of {ROUNDS}: sluice smart cut {med[0]:.2f} s to ready, {med[1]:.2f} s CPU; "
              f"ffmpeg -ss/-t re-encode {med[2]:.2f} s, {med[3]:.2f} s CPU; "
              f"CPU ratio {med[3] / med[1]:.1f}x, wall ratio {med[2] / med[0]:.1f}x")
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
