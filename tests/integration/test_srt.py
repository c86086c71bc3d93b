"""SRT ingest (issue 25), end to end: real ffmpeg publishes MPEG-TS over SRT
to the real sluice binary, which plays it through every rung of
--ladder 480p,360p. One sluice and one good publisher per class.

SrtIngestTest: the access-control stream id form plays; a wrong key, no
stream id, m=request and a wrong passphrase are refused before accept
(ffmpeg fails, nothing is created, the reason is in the log without the
key); garbage (raw UDP datagrams, and an accepted caller sending random
bytes with the plain key form) is cut without disturbing the good stream;
ingest.protocol and the SRT figures are in the API and the metrics.

SrtLossTest: the publisher goes through a UDP relay of the test's own that
drops 5 % of the datagrams each way and delays each by 80 ms (RTT about
160 ms; --srt-latency 640, about 4x): the playlist keeps advancing on
schedule, the segments decode without errors, retransmissions are counted.
Its audio is Opus, which comes out of the audio rendition as AAC.
"""

import heapq
import json
import os
import random
import select
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import Sluice, finish, free_port, http, parse_master, parse_media, wait_for

KEY = "demo-secret-key"
OTHER_KEY = "other-secret-key"
PASS = "srt-test-passphrase"


def free_udp_port():
    for _ in range(100):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free UDP port")


def srt_url(port, streamid, passphrase=None, latency_ms=None):
    url = f"srt://127.0.0.1:{port}?streamid={streamid}"
    if passphrase:
        url += f"&passphrase={passphrase}"
    if latency_ms:
        url += f"&latency={latency_ms * 1000}"  # ffmpeg's is in microseconds
    return url + "&connect_timeout=3000"


def publish_srt(url, seconds, audio=("aac", "-b:a", "64k")):
    """A small 854x480 15 fps H.264 + AAC (or `audio`) source as MPEG-TS over SRT."""
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
           "-f", "lavfi", "-i", "testsrc2=size=854x480:rate=15",
           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
           "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
           "-g", "15", "-keyint_min", "15", "-sc_threshold", "0", "-pix_fmt", "yuv420p",
           "-b:v", "600k", "-c:a", *audio, "-ac", "2", "-f", "mpegts", url]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def stop(proc):
    """Ends a publisher that is still running (its work is done)."""
    if proc.poll() is None:
        proc.kill()
    proc.communicate()


def try_publish(url):
    """A short publish that is expected to be refused; returns the Popen."""
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
           "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15", "-t", "1",
           "-c:v", "libx264", "-preset", "ultrafast", "-f", "mpegts", url]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


class SrtCase(unittest.TestCase):
    sluice = None

    @classmethod
    def tearDownClass(cls):
        if cls.sluice:
            cls.sluice.close()

    def get(self, path):
        return http(self.sluice.url(path))

    def status(self, sid):
        s, _, b = http(self.sluice.admin_url(f"/api/v1/streams/{sid}"))
        self.assertEqual(s, 200, b)
        return json.loads(b)

    def media_seq(self, rung):
        s, _, b = self.get(f"/hls/demo/{rung}/index.m3u8")
        if s != 200:
            return None
        pl = parse_media(b.decode())
        if not pl["segments"]:
            return None
        return int(pl["tags"].get("EXT-X-MEDIA-SEQUENCE", "0")) + len(pl["segments"]) - 1

    def assert_rungs_decode(self):
        """The newest segment of every rendition decodes without an error."""
        s, _, b = self.get("/hls/demo/master.m3u8")
        self.assertEqual(s, 200)
        media, variants = parse_master(b.decode())
        uris = [uri for _, uri in variants] + [m["URI"] for m in media]
        self.assertEqual(sorted(uris), ["360p/index.m3u8", "480p/index.m3u8", "audio/index.m3u8"])
        for uri in uris:
            rung = uri.split("/")[0]
            s, _, b = self.get(f"/hls/demo/{uri}")
            self.assertEqual(s, 200)
            text = b.decode()
            init = [l.split('URI="')[1].split('"')[0] for l in text.splitlines()
                    if l.startswith("#EXT-X-MAP:")][0]
            segs = parse_media(text)["segments"][-2:]
            data = self.get(f"/hls/demo/{rung}/{init}")[2]
            for seg in segs:
                st, _, body = self.get(f"/hls/demo/{rung}/{seg['uri']}")
                self.assertEqual(st, 200)
                data += body
            with tempfile.NamedTemporaryFile(suffix=".mp4") as f:
                f.write(data)
                f.flush()
                out = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i",
                                      f.name, "-f", "null", "-"], capture_output=True, timeout=30)
            self.assertEqual(out.returncode, 0, out.stderr.decode()[-2000:])
            self.assertEqual(out.stderr.decode().strip(), "", f"decode errors in {uri}")


class SrtIngestTest(SrtCase):

    @classmethod
    def setUpClass(cls):
        cls.port = free_udp_port()
        cls.sluice = Sluice("--srt-listen", f"127.0.0.1:{cls.port}", "--srt-passphrase", PASS,
                            "--ladder", "480p,360p", "--preset", "ultrafast",
                            "--segment-duration", "1", "--rtmp-stall-timeout", "2000",
                            streams=(("demo", KEY), ("other", OTHER_KEY)))

    def test_publish_refusals_and_hostile_sender(self):
        started = time.time()
        pub = publish_srt(srt_url(self.port, f"#!::r=live/{KEY},m=publish", PASS), 11)
        try:
            wait_for(lambda: self.media_seq("480p") is not None, 10, "the 480p playlist")

            # Refused before accept: ffmpeg cannot connect at all.
            refused = {
                "unknown stream key": try_publish(srt_url(self.port, "not-a-key", PASS)),
                "no stream id": try_publish(srt_url(self.port, "", PASS)),
                "pull is not supported": try_publish(
                    srt_url(self.port, f"#!::r=live/{KEY},m=request", PASS)),
                "passphrase": try_publish(srt_url(self.port, KEY, "wrong-passphrase-123")),
            }
            # Garbage: raw datagrams at the listener, and an accepted caller
            # (the plain key form) whose payload is random bytes.
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                rnd = random.Random(25)
                for _ in range(300):
                    u.sendto(bytes(rnd.getrandbits(8) for _ in range(rnd.choice((16, 200, 1400)))),
                             ("127.0.0.1", self.port))
            junk = subprocess.Popen(
                ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
                 "-f", "rawvideo", "-pix_fmt", "gray", "-s", "32x32", "-r", "100",
                 "-i", "/dev/urandom", "-t", "5", "-c", "copy", "-f", "rawvideo",
                 srt_url(self.port, OTHER_KEY, PASS)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for why, p in refused.items():
                rc, err = finish(p, 15)
                self.assertNotEqual(rc, 0, f"{why}: ffmpeg was not refused")
            for reason in ("unknown stream key", "no stream id", "pull is not supported"):
                self.assertIn(f"before accept: {reason}", self.sluice.log())
            # libsrt's own line: the passphrase did not match.
            self.assertIn("rejecting per enforced encryption", self.sluice.log())

            # The hostile caller is cut (no MPEG-TS: no media within
            # --rtmp-stall-timeout) while demo goes on.
            wait_for(lambda: "other: publish ended" in self.sluice.log(), 8,
                     "the garbage publisher to be cut")
            finish(junk, 10)
            self.assertEqual(self.sluice.log().count("other: no media for"), 1)
            seq_before = self.media_seq("480p")
            st = self.status("demo")
            self.assertEqual(st["state"], "live")
            ing = st["ingest"]
            self.assertEqual(ing["protocol"], "srt")
            self.assertEqual((ing["width"], ing["height"]), (854, 480))
            self.assertEqual(ing["video_codec"], "h264")
            self.assertEqual(ing["audio_codec"], "aac")
            srt = ing["srt"]
            for k in ("rtt_ms", "latency_ms", "packets_received", "packets_lost",
                      "packets_retransmitted", "packets_dropped", "recv_buffer_ms"):
                self.assertIn(k, srt)
            self.assertGreater(srt["packets_received"], 100)
            self.assertGreaterEqual(srt["latency_ms"], 120)
            _, _, m = http(self.sluice.admin_url("/metrics"))
            self.assertIn('sluice_srt_rtt_seconds{stream="demo"}', m.decode())
            self.assertIn('sluice_srt_packets_retransmitted_total{stream="demo"}', m.decode())
            wait_for(lambda: (self.media_seq("480p") or 0) > seq_before, 4,
                     "demo's playlist to advance after the garbage")
            self.assert_rungs_decode()

            # Nothing was created for the refused callers: only demo and the
            # accepted garbage caller ever published.
            s, _, b = http(self.sluice.admin_url("/api/v1/streams"))
            listing = json.loads(b)
            items = listing if isinstance(listing, list) else listing.get("streams", [])
            self.assertEqual(sorted(x["id"] for x in items), ["demo", "other"])
            self.assertEqual(self.get("/hls/other/master.m3u8")[0], 404)
            log = self.sluice.log()
            self.assertEqual(log.count("SRT caller accepted"), 2, log[-3000:])
            for secret in (KEY, OTHER_KEY, PASS, "not-a-key"):
                self.assertNotIn(secret, log)
        finally:
            stop(pub)
        print(f"\n  srt ingest test took {time.time() - started:.1f} s", end=" ")


class Relay(threading.Thread):
    """UDP relay on loopback between one SRT caller and sluice: drops a
    share of the datagrams each way and delays the rest."""

    def __init__(self, upstream_port, loss=0.05, delay=0.08, seed=25):
        super().__init__(daemon=True)
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.port = self.front.getsockname()[1]
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.connect(("127.0.0.1", upstream_port))
        self.loss, self.delay, self.rnd = loss, delay, random.Random(seed)
        self.client = None
        self.stop = False
        self.sent = self.dropped = 0

    def run(self):
        queue, n = [], 0
        while not self.stop:
            timeout = max(0, queue[0][0] - time.monotonic()) if queue else 0.05
            ready, _, _ = select.select([self.front, self.back], [], [], min(timeout, 0.05))
            now = time.monotonic()
            for s in ready:
                data, addr = s.recvfrom(2048)
                if s is self.front:
                    self.client = addr
                if self.rnd.random() < self.loss:
                    self.dropped += 1
                    continue
                n += 1
                heapq.heappush(queue, (now + self.delay, n, s is self.front, data))
            while queue and queue[0][0] <= time.monotonic():
                _, _, forward, data = heapq.heappop(queue)
                if forward:
                    self.back.send(data)
                elif self.client:
                    self.front.sendto(data, self.client)
                self.sent += 1
        self.front.close()
        self.back.close()


class SrtLossTest(SrtCase):

    @classmethod
    def setUpClass(cls):
        cls.port = free_udp_port()
        cls.sluice = Sluice("--srt-listen", f"127.0.0.1:{cls.port}", "--srt-latency", "640",
                            "--ladder", "480p,360p", "--preset", "ultrafast",
                            "--segment-duration", "1")

    def test_loss_and_delay_do_not_stall(self):
        started = time.time()
        relay = Relay(self.port)
        relay.start()
        # Opus audio, as phone apps send: encoded to AAC once by the transcoder.
        pub = publish_srt(srt_url(relay.port, KEY, latency_ms=640), 12,
                          audio=("libopus", "-b:a", "64k"))
        try:
            wait_for(lambda: self.media_seq("480p") is not None, 12, "the 480p playlist")
            # On schedule: 1 s segments, watched for 5 s, no gap over 2.5 s.
            seen, last_change, worst = self.media_seq("480p"), time.time(), 0.0
            first = seen
            until = time.time() + 5
            while time.time() < until:
                time.sleep(0.2)
                cur = self.media_seq("480p")
                now = time.time()
                if cur is not None and cur > seen:
                    worst = max(worst, now - last_change)
                    seen, last_change = cur, now
            worst = max(worst, time.time() - last_change)
            self.assertGreaterEqual(seen - first, 3, "the playlist did not keep advancing")
            self.assertLess(worst, 2.5, f"the playlist stalled for {worst:.1f} s")
            ing = self.status("demo")["ingest"]
            self.assertEqual(ing["audio_codec"], "opus")
            self.assertIn("audio: Opus -> AAC-LC 48000 Hz stereo", self.sluice.log())
            srt = ing["srt"]
            self.assertGreater(srt["packets_retransmitted"], 0, srt)
            self.assertGreater(srt["packets_lost"], 0, srt)
            self.assert_rungs_decode()
            print(f"\n  loss relay: {relay.dropped} of {relay.dropped + relay.sent} datagrams "
                  f"dropped; {seen - first} segments in 5 s, longest wait {worst:.2f} s; "
                  f"srt: rtt {srt['rtt_ms']} ms, lost {srt['packets_lost']}, retransmitted "
                  f"{srt['packets_retransmitted']}, dropped {srt['packets_dropped']}, latency "
                  f"{srt['latency_ms']} ms; took {time.time() - started:.1f} s", end=" ")
        finally:
            stop(pub)
            relay.stop = True
            relay.join(2)


if __name__ == "__main__":
    unittest.main()
