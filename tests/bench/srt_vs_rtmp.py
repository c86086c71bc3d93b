#!/usr/bin/env python3
"""SRT vs RTMP over the same bad uplink (issue 25; docs/benchmarks.md).

One sluice (a release build by default: SLUICE_BIN), one 640x360 30 fps
H.264 + AAC source at about 1.6 Mbit/s published for SECONDS (default 40),
first over RTMP through a TCP relay, then over SRT through a UDP relay.
Both relays delay every chunk or datagram by 80 ms each way and then
runs two scenarios. "loss": the UDP relay drops 5 % of datagrams each way;
a TCP relay cannot lose packets inside TCP (on loopback nothing is lost),
so RTMP's relay is capped at what TCP sustains under 5 % loss at that RTT
(Mathis' formula, about 400 kbit/s): a model, stated as such. "dips": no
loss, both links cut to DIP_KBPS (default 600) for 3 s of every 10, below
the stream's rate: a congested cell. SRT runs with --srt-latency 640
(about 4 x the 160 ms RTT).

What it measures, from the 360p rendition's playlist polled every 100 ms:
when each segment became available. A simulated player starts BUFFER (2)
segments behind the first one and plays in real time; whenever the segment it needs
is not there yet it stalls until it is. Reported: stall time and count,
the longest gap between two segments, segments made, and for SRT the
link figures (lost, retransmitted, dropped packets). Also the decode
errors of the last segments (ffmpeg -v error).

Usage: tests/bench/srt_vs_rtmp.py [SECONDS]  (prints a markdown table)
"""

import heapq
import json
import os
import random
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("SLUICE_BIN", os.path.join(ROOT, "build", "sluice"))
SECONDS = int(sys.argv[1]) if len(sys.argv) > 1 else 40
DELAY = 0.08
LOSS = 0.05
DIP_KBPS = int(os.environ.get("DIP_KBPS", "600"))
DIP_EVERY, DIP_FOR = 10.0, 3.0
KEY = "bench-secret-key"
BUFFER = int(os.environ.get("BUFFER", "2"))  # the simulated player's start-up buffer, segments


def port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The scenario of a run: "dips" (the link's rate cut now and then, for both),
# or "loss" (5 % loss for SRT; for RTMP, TCP's throughput under that loss:
# a constant cap, see TCP_LOSS_KBPS).
SCENARIO = "dips"
# What TCP sustains with 5 % loss at a 160 ms RTT (Mathis et al. 1997:
# MSS / RTT x 1.22 / sqrt(p) = 1448 x 8 / 0.16 x 1.22 / 0.224): a model of
# TCP under that loss, since loopback TCP cannot lose packets.
TCP_LOSS_KBPS = int(1448 * 8 / 0.16 * 1.22 / 0.05 ** 0.5 / 1000)


def rate_now(t0, tcp):
    """The link's rate limit in kbit/s at this moment, or None."""
    if SCENARIO == "loss":
        return TCP_LOSS_KBPS if tcp else None
    if (time.monotonic() - t0) % DIP_EVERY >= DIP_EVERY - DIP_FOR:
        return DIP_KBPS
    return None


class Shaper:
    """Token bucket at rate_now (TCP side)."""

    def __init__(self, t0):
        self.t0, self.tokens, self.last = t0, 0.0, time.monotonic()

    def allow(self, n):
        now = time.monotonic()
        kbps = rate_now(self.t0, True)
        if kbps is None:
            self.tokens, self.last = 0.0, now
            return 0.0
        self.tokens += (now - self.last) * kbps * 125
        self.last = now
        self.tokens = min(self.tokens, kbps * 125 * 0.05)
        if self.tokens > 0:  # a chunk may take the bucket into debt
            self.tokens -= n
            return 0.0
        return -self.tokens / (kbps * 125)


class TcpRelay(threading.Thread):
    """One connection: client -> relay -> upstream, each way delayed, the
    upstream direction shaped during dips (TCP back-pressure does the rest)."""

    def __init__(self, upstream):
        super().__init__(daemon=True)
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(1)
        self.port = self.ls.getsockname()[1]
        self.upstream = upstream
        self.stop = False

    def run(self):
        c, _ = self.ls.accept()
        u = socket.create_connection(("127.0.0.1", self.upstream))
        t0 = time.monotonic()
        shaper = Shaper(t0)
        q = []  # (due, seq, dest, data)
        n = 0
        pending = {c: 0, u: 0}
        while not self.stop:
            timeout = max(0.0, q[0][0] - time.monotonic()) if q else 0.05
            # Do not read more than ~1 s of media ahead: TCP pushes back.
            rd = [s for s in (c, u) if pending[s] < 256 * 1024]
            r, _, _ = select.select(rd, [], [], min(timeout, 0.05))
            for s in r:
                data = s.recv(16384)
                if not data:
                    self.stop = True
                    break
                n += 1
                pending[s] += len(data)
                heapq.heappush(q, (time.monotonic() + DELAY, n, s, data))
            while q and q[0][0] <= time.monotonic():
                due, seq, src, data = q[0]
                if src is c:
                    wait = shaper.allow(len(data))
                    if wait > 0:
                        break
                heapq.heappop(q)
                pending[src] -= len(data)
                try:
                    (u if src is c else c).sendall(data)
                except OSError:
                    self.stop = True
                    break
            if q and q[0][0] <= time.monotonic():
                time.sleep(0.002)
        for s in (c, u, self.ls):
            s.close()


class UdpRelay(threading.Thread):
    def __init__(self, upstream):
        super().__init__(daemon=True)
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.port = self.front.getsockname()[1]
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.connect(("127.0.0.1", upstream))
        self.rnd = random.Random(25)
        self.client = None
        self.stop = False
        self.dropped = self.sent = self.dip_dropped = 0

    def run(self):
        t0 = time.monotonic()
        q, n, free_at = [], 0, 0.0
        while not self.stop:
            timeout = max(0.0, q[0][0] - time.monotonic()) if q else 0.05
            r, _, _ = select.select([self.front, self.back], [], [], min(timeout, 0.05))
            for s in r:
                data, addr = s.recvfrom(2048)
                if s is self.front:
                    self.client = addr
                if SCENARIO == "loss" and self.rnd.random() < LOSS:
                    self.dropped += 1
                    continue
                if s is self.front:
                    # A router's queue during a dip: what it holds drains at
                    # the dip rate; past 200 ms of it, datagrams are dropped.
                    now = time.monotonic()
                    kbps = rate_now(t0, False)
                    if kbps:
                        free_at = max(now, free_at) + len(data) / (kbps * 125)
                        if free_at - now > 0.2:
                            free_at -= len(data) / (kbps * 125)
                            self.dip_dropped += 1
                            continue
                        wait = free_at - now
                    else:
                        wait = 0.0
                    due = now + DELAY + wait
                else:
                    due = time.monotonic() + DELAY
                n += 1
                heapq.heappush(q, (due, n, s is self.front, data))
            while q and q[0][0] <= time.monotonic():
                _, _, fwd, data = heapq.heappop(q)
                if fwd:
                    self.back.send(data)
                elif self.client:
                    self.front.sendto(data, self.client)
                self.sent += 1
        self.front.close()
        self.back.close()


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, r.read()
    except Exception:
        return 0, b""


def publish(url, fmt):
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
           "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(SECONDS),
           "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", "30",
           "-keyint_min", "30", "-sc_threshold", "0", "-b:v", "1500k", "-maxrate", "1500k",
           "-bufsize", "750k", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k", "-ac", "2",
           "-f", fmt, url]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def run(proto):
    rtmp, http, admin, srt = port(), port(), port(), port(socket.SOCK_DGRAM)
    state = tempfile.mkdtemp(prefix="sluice-bench-srt-")
    log = open(os.path.join(state, "sluice.log"), "w")
    sl = subprocess.Popen([BIN, "--rtmp-listen", f"127.0.0.1:{rtmp}", "--http-listen",
                           f"127.0.0.1:{http}", "--admin-listen", f"127.0.0.1:{admin}",
                           "--srt-listen", f"127.0.0.1:{srt}", "--srt-latency", "640",
                           "--ladder", "360p", "--segment-duration", "1",
                           "--stream", f"demo:{KEY}", "--state-dir", state],
                          stdout=log, stderr=subprocess.STDOUT)
    try:
        return measure(proto, sl, rtmp, http, admin, srt)
    finally:
        if sl.poll() is None:
            sl.terminate()
            sl.wait(timeout=30)
        log.close()
        if not os.environ.get("KEEP"):  # KEEP=1 keeps sluice's log and state
            shutil.rmtree(state, ignore_errors=True)


def measure(proto, sl, rtmp, http, admin, srt):
    time.sleep(1.5)
    if proto == "rtmp":
        relay = TcpRelay(rtmp)
        relay.start()
        pub = publish(f"rtmp://127.0.0.1:{relay.port}/live/{KEY}", "flv")
    else:
        relay = UdpRelay(srt)
        relay.start()
        pub = publish(f"srt://127.0.0.1:{relay.port}?streamid={KEY}&latency=640000", "mpegts")
    seen = {}  # segment uri -> (time available, duration)
    srt_stats = None
    t_end = time.time() + SECONDS + 8
    while time.time() < t_end:
        st, body = get(f"http://127.0.0.1:{http}/hls/demo/360p/index.m3u8")
        if st == 200:
            dur = None
            for line in body.decode().splitlines():
                if line.startswith("#EXTINF:"):
                    dur = float(line[8:].split(",")[0])
                elif line and not line.startswith("#") and line not in seen:
                    seen[line] = (time.time(), dur)
            if "#EXT-X-ENDLIST" in body.decode():
                break
        if proto == "srt":
            st2, b2 = get(f"http://127.0.0.1:{admin}/api/v1/streams/demo")
            if st2 == 200:
                s = json.loads(b2).get("ingest", {}).get("srt")
                srt_stats = s or srt_stats
        time.sleep(0.1)
    try:  # a publisher that fell behind real time is cut: that is the result
        pub.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pub.kill()
        pub.wait()
    relay.stop = True
    # decode the last few segments
    errs = 0
    st, body = get(f"http://127.0.0.1:{http}/hls/demo/360p/index.m3u8")
    text = body.decode()
    init = [l.split('URI="')[1].split('"')[0] for l in text.splitlines() if l.startswith("#EXT-X-MAP")]
    segs = [l for l in text.splitlines() if l and not l.startswith("#")]
    if init:
        data = get(f"http://127.0.0.1:{http}/hls/demo/360p/{init[0]}")[1]
        for s in segs[-6:]:
            data += get(f"http://127.0.0.1:{http}/hls/demo/360p/{s}")[1]
        with tempfile.NamedTemporaryFile(suffix=".mp4") as f:
            f.write(data)
            f.flush()
            out = subprocess.run(["ffmpeg", "-v", "error", "-i", f.name, "-f", "null", "-"],
                                 capture_output=True)
            errs = len([l for l in out.stderr.decode().splitlines() if l.strip()])
    # the simulated player
    items = sorted(seen.values())
    stall, stalls, gap = 0.0, 0, 0.0
    if len(items) > 4:
        start = items[BUFFER][0]  # starts when BUFFER segments are buffered after the first
        clock = start
        for i, (avail, dur) in enumerate(items):
            if i > 0:
                gap = max(gap, avail - items[i - 1][0])
            if avail > clock:
                stall += avail - clock
                stalls += 1
                clock = avail
            clock += dur or 1.0
    return {"proto": proto, "segments": len(items), "stall_s": stall, "stalls": stalls,
            "max_gap_s": gap, "buffer_segments": BUFFER, "decode_errors": errs, "srt": srt_stats,
            "udp_dropped": getattr(relay, "dropped", None),
            "dip_dropped": getattr(relay, "dip_dropped", None)}


def main():
    global SCENARIO
    rows = []
    for SCENARIO in ("loss", "dips"):
        for proto in ("rtmp", "srt"):
            r = run(proto)
            r["scenario"] = SCENARIO
            rows.append(r)
    print(f"\n{SECONDS} s publish of about 1.6 Mbit/s, 80 ms each way (RTT 160 ms), SRT latency "
          f"640 ms, the player starts {BUFFER} segments (1 s each) behind.\n"
          f"loss: SRT 5 % of datagrams lost each way; RTMP capped at {TCP_LOSS_KBPS} kbit/s "
          f"(TCP under 5 % loss at that RTT, Mathis). dips: no loss, the link cut to "
          f"{DIP_KBPS} kbit/s for {DIP_FOR:.0f} s of every {DIP_EVERY:.0f} s for both.\n")
    print("| scenario | ingest | segments | stall time (s) | stalls | longest gap (s) | decode errors (last 6) | SRT lost / retransmitted / dropped |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        s = r["srt"]
        extra = (f"{s['packets_lost']} / {s['packets_retransmitted']} / {s['packets_dropped']}"
                 if s else "")
        stall = (f"{r['stall_s']:.1f}" if r["segments"] > BUFFER + 1
                 else "n/a: too few segments to play")
        print(f"| {r['scenario']} | {r['proto']} | {r['segments']} | {stall} | {r['stalls']} | "
              f"{r['max_gap_s']:.1f} | {r['decode_errors']} | {extra} |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
