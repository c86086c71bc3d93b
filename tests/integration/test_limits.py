"""Bounded memory and HTTP-side limits (issue 9), against the real sluice:

- --store-memory-limit: streams published one after another on the memory
  store; memory (sampled all along from /metrics) stays under the limit,
  the streams that ended first are evicted first, and the live stream keeps
  serving its playlist and segments.
- --http-max-held: an origin-only node on Redis fed by this test (the
  technique of test_llhls_origin.py), so the held requests stay held until
  the test commits; the request over the limit is answered at once while
  normal requests keep working.
- --http-max-connections-per-ip: the connection over the limit is closed at
  accept, and counted; a freed slot lets the address in again.
- --http-timeout: an idle connection and a slowloris one are closed after it.
"""

import re
import socket
import threading
import time
import unittest

from harness import Sluice, finish, http, publish, shared_redis, wait_for
from test_llhls_origin import REND, Fetch, Resp, Writer, initial_objects, playlist

DB = 13  # its own: 1, 2, 3, 6, 9 and 12 belong to other suites


def metrics(sl):
    """The /metrics samples without labels, as {name: float}."""
    s, _, body = http(sl.admin_url("/metrics"))
    assert s == 200, s
    out = {}
    for line in body.decode().splitlines():
        m = re.match(r"^([a-z_]+) ([0-9.e+-]+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def stats(sl):
    import json
    s, _, body = http(sl.admin_url("/api/v1/stats"))
    assert s == 200, s
    return json.loads(body)


class OptionsTest(unittest.TestCase):
    def check(self, *args, env=None):
        import os
        import subprocess
        from harness import SLUICE_BIN
        full = dict(os.environ)
        full.update(env or {})
        p = subprocess.run([SLUICE_BIN, "--check-config", *args], capture_output=True,
                           text=True, timeout=30, env=full)
        return p.returncode, p.stdout + p.stderr

    def test_sizes_and_limits_are_checked(self):
        for good in ("1073741824", "512M", "2G", "64k", "1.5G", "512MiB", "0"):
            rc, out = self.check("--store-memory-limit", good)
            self.assertEqual(rc, 0, out)
            self.assertIn("store-memory-limit = %s" % good, out)
        for bad in ("-1", "1.5X", "G", "12 M", "2PB", ""):
            rc, out = self.check("--store-memory-limit", bad)
            self.assertNotEqual(rc, 0, bad)
            self.assertIn("--store-memory-limit", out)
        rc, out = self.check(env={"SLUICE_STORE_MEMORY_LIMIT": "64k"})
        self.assertEqual(rc, 0, out)
        self.assertIn("store-memory-limit = 64k  ; SLUICE_STORE_MEMORY_LIMIT", out)
        for opt, bad in (("--http-timeout", "0"), ("--http-max-held", "0"),
                         ("--http-max-connections-per-ip", "-1")):
            rc, out = self.check(opt, bad)
            self.assertNotEqual(rc, 0, opt)
            self.assertIn(opt, out)


class MemoryLimitTest(unittest.TestCase):
    LIMIT = 5 * 1024 * 1024
    STREAMS = [("s%d" % i, "limits-key-%d" % i) for i in range(1, 5)]

    def test_memory_stays_under_the_limit_and_the_live_stream_serves(self):
        sl = Sluice("--store-memory-limit", "5M", "--segment-duration", "1", "--ladder", "720p",
                    streams=self.STREAMS)
        pub = None
        samples = []
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    samples.append(metrics(sl)["sluice_store_memory_bytes"])
                except Exception:  # noqa: BLE001 - a failed scrape is not a sample
                    pass
                time.sleep(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            m = metrics(sl)
            self.assertEqual(m["sluice_store_memory_limit_bytes"], self.LIMIT)
            # Three broadcasts, one after another, each ended before the next
            # (published faster than real time: 6 s of media each).
            for sid, key in self.STREAMS[:3]:
                p = publish(sl.rtmp_url(key), seconds=6, realtime=False)
                rc, err = finish(p, 60)
                self.assertEqual(rc, 0, err[-500:])
                wait_for(lambda sid=sid: b"#EXT-X-ENDLIST" in http(
                    sl.url("/hls/%s/%s/index.m3u8" % (sid, REND)))[2]
                    or http(sl.url("/hls/%s/master.m3u8" % sid))[0] == 404,
                    20, "%s to end" % sid)
            # The live one, in real time, watched like a player would.
            sid, key = self.STREAMS[3]
            pub = publish(sl.rtmp_url(key), seconds=9, realtime=True)
            pl_url = sl.url("/hls/%s/%s/index.m3u8" % (sid, REND))
            wait_for(lambda: re.search(rb"^\d+\.m4s$", http(pl_url)[2], re.M), 20,
                     "the live playlist with a segment")
            served = 0
            deadline = time.time() + 6
            while time.time() < deadline:
                s, _, body = http(pl_url)
                self.assertEqual(s, 200)
                segs = [l for l in body.decode().splitlines() if l.endswith(".m4s")
                        and not l.startswith("#")]
                self.assertTrue(segs, body[:300])
                s, _, seg = http(sl.url("/hls/%s/%s/%s" % (sid, REND, segs[-1])))
                self.assertEqual(s, 200, segs[-1])
                self.assertGreater(len(seg), 1000)
                served += 1
                time.sleep(0.3)
            self.assertGreater(served, 5)
            st = stats(sl)["store"]
            m = metrics(sl)
        finally:
            stop.set()
            sampler.join(5)
        log = sl.log()
        sl.close(pub)
        # Without the limit the four broadcasts would hold well over it.
        self.assertGreater(m["sluice_store_evictions_total"], 0)
        self.assertGreater(st["evictions"], 0)
        self.assertEqual(st["memory_limit_bytes"], self.LIMIT)
        self.assertGreater(len(samples), 50)
        peak = max(samples)
        print("\n  store memory: peak %.2f MB of a %.2f MB limit, %d samples, %d evictions"
              % (peak / 1e6, self.LIMIT / 1e6, len(samples), m["sluice_store_evictions_total"]))
        self.assertLessEqual(peak, self.LIMIT)
        self.assertGreater(peak, self.LIMIT / 2)  # the limit, not luck, kept it down
        # The broadcasts ended first were evicted first.
        order = re.findall(r"memory limit: evicted \d+ idle streams? \(([^)]*)\)", log)
        evicted = [i.strip() for line in order for i in line.split(",") if i.strip() != "..."]
        self.assertTrue(evicted, log[-3000:])
        self.assertEqual(evicted[0], "s1")
        self.assertEqual(evicted, sorted(evicted), "eviction order")
        self.assertNotIn("s4", evicted)


class HeldLimitTest(unittest.TestCase):
    """--http-max-held 2 on an origin-only node whose stream only moves when
    this test commits."""

    @classmethod
    def setUpClass(cls):
        cls.port = shared_redis()
        r = Resp(cls.port, DB)
        assert r.cmd("FLUSHDB") == "OK"
        r.close()
        cls.sluice = Sluice("--role", "origin", "--store", "redis://127.0.0.1:%d/%d" % (cls.port, DB),
                            "--http-max-held", "2", streams=())

    @classmethod
    def tearDownClass(cls):
        try:
            cls.sluice.stop()
        finally:
            cls.sluice.kill()

    def url(self, sid, obj, query=""):
        return self.sluice.url("/hls/%s/%s/%s%s" % (sid, REND, obj, query))

    def fast(self, url, within=1.0):  # the hold limit here is 3 s
        t0 = time.monotonic()
        s, h, b = http(url)
        took = time.monotonic() - t0
        self.assertLess(took, within, "%s took %.2f s" % (url, took))
        return s, h, b

    def test_request_over_the_held_limit_is_answered_at_once(self):
        w = Writer(self.port, "held", db=DB)
        self.addCleanup(w.close)
        w.commit(initial_objects())  # next part: 5.1
        before = metrics(self.sluice)
        held = [Fetch(self.url("held", "index.m3u8", "?_HLS_msn=5&_HLS_part=1")),
                Fetch(self.url("held", "index.m3u8", "?_HLS_msn=5&_HLS_part=1"))]
        wait_for(lambda: metrics(self.sluice)["sluice_http_held_requests"] == 2, 5,
                 "two held requests")
        # The third blocking reload: the playlist as it is, at once, with the
        # Cache-Control of a plain reload (never the long one of a blocking
        # answer: its URL promises a later playlist).
        s, h, body = self.fast(self.url("held", "index.m3u8", "?_HLS_msn=5&_HLS_part=1"))
        self.assertEqual(s, 200)
        self.assertIn(b"5.0.m4s", body)
        self.assertEqual(body.decode(), playlist(2, 3, 1))
        s0, h0, _ = http(self.url("held", "index.m3u8"))
        self.assertEqual(s0, 200)
        self.assertEqual(h["cache-control"], h0["cache-control"])
        # A part that would be waited for: 503 with Retry-After, at once.
        s, h, _ = self.fast(self.url("held", "5.1.m4s"))
        self.assertEqual(s, 503)
        self.assertEqual(h.get("retry-after"), "1")
        # Everything that needs no waiting still works.
        self.assertEqual(self.fast(self.url("held", "index.m3u8"))[0], 200)
        self.assertEqual(self.fast(self.url("held", "3.m4s"))[0], 200)
        self.assertEqual(self.fast(self.url("held", "5.0.m4s"))[0], 200)
        self.assertEqual(self.fast(self.url("held", "index.m3u8", "?_HLS_msn=4"))[0], 200)
        for f in held:
            self.assertIsNone(f.result, "a held request was answered early")
        m = metrics(self.sluice)
        self.assertEqual(m["sluice_http_held_refused_total"] - before["sluice_http_held_refused_total"], 2)
        self.assertEqual(stats(self.sluice)["egress"]["held_refused"],
                         m["sluice_http_held_refused_total"])
        # The stream moves: the held two get the new playlist, and the room
        # they leave is used again.
        objs = {"%s/5.1.m4s" % REND: b"part 5.1", "%s/index.m3u8" % REND: playlist(2, 3, 2)}
        w.commit(objs)
        for f in held:
            f.join(5)
            self.assertEqual(f.result[0], 200)
            self.assertIn(b"5.1.m4s", f.result[2])
        wait_for(lambda: metrics(self.sluice)["sluice_http_held_requests"] == 0, 5, "none held")
        again = Fetch(self.url("held", "index.m3u8", "?_HLS_msn=5&_HLS_part=2"))
        time.sleep(0.5)
        self.assertIsNone(again.result, "held again once there is room")
        w.commit({"%s/5.2.m4s" % REND: b"part 5.2", "%s/index.m3u8" % REND: playlist(2, 4, 0)})
        again.join(5)
        self.assertEqual(again.result[0], 200)
        self.assertEqual(metrics(self.sluice)["sluice_http_held_refused_total"],
                         m["sluice_http_held_refused_total"])


def request(sock, path="/healthz"):
    sock.sendall(("GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path).encode())


def closed_without_answer(sock, timeout=3):
    """True when the server closes (or resets) sock without sending a byte."""
    sock.settimeout(timeout)
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


class ConnectionLimitsTest(unittest.TestCase):
    def test_per_ip_limit_refuses_the_connection_over_it(self):
        sl = Sluice("--role", "origin", "--http-max-connections-per-ip", "3",
                    "--http-timeout", "30", streams=())
        socks = []
        try:
            socks = [socket.create_connection(("127.0.0.1", sl.http_port)) for _ in range(3)]
            time.sleep(0.3)
            for _ in range(4):
                s = socket.create_connection(("127.0.0.1", sl.http_port))
                try:
                    request(s)
                except OSError:
                    pass
                self.assertTrue(closed_without_answer(s))
                s.close()
            m = metrics(sl)  # the admin listener has its own limits
            self.assertEqual(m["sluice_http_connections_refused_total"], 4)
            self.assertEqual(stats(sl)["egress"]["connections_refused"], 4)
            # The three admitted ones are served.
            request(socks[0])
            socks[0].settimeout(5)
            self.assertTrue(socks[0].recv(100).startswith(b"HTTP/1.1 200"))
            # A slot freed: the address gets in again.
            socks.pop().close()
            time.sleep(0.3)
            self.assertEqual(http(sl.url("/healthz"))[0], 200)
        finally:
            for s in socks:
                s.close()
        log = sl.log()
        sl.close()
        # One warning for the burst, not a line per refused connection.
        self.assertEqual(log.count("connection limit reached"), 1, log[-2000:])

    def test_silent_connections_are_closed_after_the_timeout(self):
        sl = Sluice("--role", "origin", "--http-timeout", "2", streams=())
        try:
            idle = socket.create_connection(("127.0.0.1", sl.http_port))
            slow = socket.create_connection(("127.0.0.1", sl.http_port))
            slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")  # never finished
            kept = socket.create_connection(("127.0.0.1", sl.http_port))
            t0 = time.monotonic()
            request(kept)
            kept.settimeout(5)
            self.assertTrue(kept.recv(4096).startswith(b"HTTP/1.1 200"))
            for s in (idle, slow, kept):  # kept: idle after its answer
                self.assertTrue(closed_without_answer(s, timeout=6))
                took = time.monotonic() - t0
                self.assertGreater(took, 1.5)
                self.assertLess(took, 5)
                s.close()
            self.assertEqual(http(sl.url("/healthz"))[0], 200)
        finally:
            sl.close()


if __name__ == "__main__":
    unittest.main()
