#!/usr/bin/env python3
"""The full player matrix, run by hand (not part of tests/run.sh): every
browser configuration of tests/browser/player_matrix.mjs (hls.js with and
without lowLatencyMode, Shaka Player with and without
streaming.lowLatencyMode, video.js/VHS with llhls) plus ffmpeg and
GStreamer's playbin3, all at once on one live ladder that sluice transcodes
while they play (the machine is busy on purpose), each for --seconds
(default 90). Each browser page's network is throttled through the DevTools
protocol at --down seconds to a rate that only the lowest variant fits, and
lifted at --up seconds: every browser player must switch down, then up
again, without a stall. Prints a markdown table (for docs/interop.md) and
the raw JSON lines; exits 1 if any player failed.

    SLUICE_BIN=build/sluice python3 tests/interop/players.py [--seconds 90]
        [--down 25] [--up 55] [--kbps N] [--ladder 720p,480p,360p] [--preset veryfast]
        [--throttle-by devtools|relay] [--link-kbps auto|N|0] [--players hlsjs-ll,...]
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from harness import ROOT, Sluice, http, publish, wait_for  # noqa: E402
from test_player_matrix import FFMPEG_BENIGN, GST_DOWNLOAD_FAILED, Client, PdtMap, median  # noqa: E402

KEY = "demo-secret-key"
SCRIPT = os.path.join(ROOT, "tests", "browser", "player_matrix.mjs")
BROWSER_PLAYERS = ("hlsjs-ll", "hlsjs", "shaka-ll", "shaka", "videojs")
HEIGHT = {"1080p": 1080, "720p": 720, "480p": 480, "360p": 360}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=90)
    ap.add_argument("--down", type=int, default=25)
    ap.add_argument("--up", type=int, default=55)
    ap.add_argument("--kbps", type=int, default=0, help="throttled rate (default: from the master)")
    ap.add_argument("--ladder", default="720p,480p,360p")
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--players", default=",".join(BROWSER_PLAYERS))
    ap.add_argument("--link-kbps", default="auto",
                    help="the link before and after the throttle, kbit/s; auto: 4 x the top variant; 0: no limit")
    ap.add_argument("--throttle-by", choices=("devtools", "relay"), default="devtools",
                    help="DevTools' network emulation, or a TCP relay per page that delays bytes on the wire")
    a = ap.parse_args()
    ladder = a.ladder.split(",")
    heights = sorted((HEIGHT[r] for r in ladder), reverse=True)

    sluice = Sluice("--ladder", a.ladder, "--preset", a.preset)
    pub = publish(sluice.rtmp_url(KEY), seconds=a.seconds + 70, size="1920x1080" if "1080p" in ladder else "1280x720")
    ffmpeg = gst = pdt = None
    server_notes = []
    gst_out = tempfile.TemporaryFile()
    try:
        master = sluice.url("/hls/demo/master.m3u8")
        # Three whole segments first, as in test_player_matrix.py (Shaka 5.2
        # in lowLatencyMode cannot join a one-segment live playlist).
        wait_for(lambda: all(http(sluice.url(f"/hls/demo/{r}/index.m3u8"))[2].count(b"#EXTINF") >= 3
                             for r in ladder + ["audio"]) and http(master)[0] == 200,
                 60, "three segments in every rendition's playlist")
        pdt = PdtMap(sluice.url(f"/hls/demo/{ladder[0]}/index.m3u8"))
        pdt.start()
        ffmpeg = Client(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "level+verbose", "-re",
                         "-i", master, "-map", "0:v:0", "-map", "0:a:0", "-t", str(a.seconds), "-f", "null", "-"])
        gst = Client(["gst-launch-1.0", "playbin3", f"uri={master}",
                      "video-sink=fakesink sync=true", "audio-sink=fakesink sync=true"],
                     env={"GST_DEBUG": "*:2,hlsdemux2:5", "GST_DEBUG_NO_COLOR": "1"}, stdout=gst_out)
        throttle = f"{a.down},{a.up}" + (f",{a.kbps}" if a.kbps else "")
        out = subprocess.run(["node", SCRIPT, master, "--players", a.players, "--seconds", str(a.seconds),
                              "--expect-heights", ",".join(map(str, heights)), "--throttle", throttle,
                              "--throttle-by", a.throttle_by, "--link-kbps", a.link_kbps],
                             capture_output=True, timeout=a.seconds + 120)
        results = [json.loads(l) for l in out.stdout.decode().splitlines() if l.startswith("{")]
        if len(results) != len(a.players.split(",")):
            print(f"player_matrix.mjs printed {len(results)} results (exit {out.returncode}):\n"
                  + out.stderr.decode()[-3000:])
        try:
            ffmpeg_rc = ffmpeg.proc.wait(60)
        except subprocess.TimeoutExpired:
            ffmpeg_rc = "timeout"
        ffmpeg.stop()
        gst_alive = gst.proc.poll() is None
        gst.stop(signal.SIGINT)
        gst_out.seek(0)
        gst_stdout = gst_out.read().decode(errors="replace")
        pdt.stopping.set()
        video = "|".join(ladder)
        ff_lat = ffmpeg.latencies(rf"HLS request for url '[^']*/(?:{video})/(\d+)\.m4s'", pdt.pdt)
        gst_lat = gst.latencies(rf"Stream URI now \S*/(?:{video})/(\d+)\.m4s", pdt.pdt)
    finally:
        if pdt:
            pdt.stopping.set()
        for c in (ffmpeg, gst):
            if c:
                c.stop()
        gst_out.close()
        # The server's own account of the run: overload steps and rungs
        # dropped or restored explain 404s for a rendition's playlist.
        server_notes = [l for l in sluice.log().splitlines() if re.search(r"overload|headroom|dropping|restoring", l)]
        sluice.close(pub)

    failed = False
    print(f"\nsluice {os.path.basename(os.environ.get('SLUICE_BIN', 'build/sluice'))}, ladder {a.ladder} "
          f"({a.preset}), {a.seconds} s each, throttled at {a.down}-{a.up} s"
          + (f" to {results[0]['throttled'][0][1]} kb/s" if results and results[0]["throttled"] else "") + "\n")
    print("| player | latency median (p90) | stalls | errors | gap jumps | failed requests | switches down/up | listed | played |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        lat = r["latency"] or {}
        f = r["failedRequests"]
        fs = f"{len(f)}" + (f" (e.g. `{f[0]['url']}` {f[0]['status']})" if f else "")
        e = r["errors"]
        es = f"{len(e)}" + (f" (e.g. {e[0]['text'][:80]})" if e else "")
        print(f"| {r['player']} | {lat.get('median')} s ({lat.get('p90')}) | {len(r['stalls'])} ({r['stalledS']} s) "
              f"| {es} | {len(r['gapJumps'])} | {fs} | {r['switchesDown']}/{r['switchesUp']} "
              f"| {','.join(map(str, r['listed']))} | {','.join(map(str, r['played']))} |")
        failed |= bool(r["problems"])
    bad_ff = [l for _, l in ffmpeg.lines if re.search(r"\[(warning|error|fatal)\]", l)
              and not any(b in l for b in FFMPEG_BENIGN)]
    print(f"| ffmpeg (-re, 1st variant) | {median(ff_lat)} s (segment requests) | n/a | {len(bad_ff)} "
          f"| n/a | {sum('HTTP error' in l for l in bad_ff)} | n/a | | |")
    bus = [l for l in gst_stdout.splitlines() + [l for _, l in gst.lines]
           if l.startswith(("ERROR:", "WARNING:"))]
    hls_warn = [l for _, l in gst.lines if GST_DOWNLOAD_FAILED.search(l)]
    print(f"| gstreamer playbin3 | {median(gst_lat)} s (segment fetches, a lower bound) | n/a "
          f"| {len(bus) + len(hls_warn)} | n/a | n/a | n/a | | |")
    failed |= bool(bad_ff) or ffmpeg_rc != 0 or bool(bus) or bool(hls_warn) or not gst_alive
    print()
    for r in results:
        for p in r["problems"]:
            print(f"- {r['player']}: {p}")
    for l in (bad_ff[:5] + bus[:5] + hls_warn[:5]):
        print(f"- non-browser: {l[:300]}")
    if server_notes:
        print("\nsluice log (overload protection):")
        for l in server_notes[:30]:
            print(f"    {l}")
    print("\nraw:")
    for r in results:
        print(json.dumps(r))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
