"""The Redis store end to end: the publish suite again on Redis, an
ingest-only node and an origin-only node sharing one Redis, the
duplicate-publisher policy across nodes, and a Redis killed and restarted
empty under a live stream. Real redis-server, ffmpeg and sluice processes."""

import os
import signal
import socket
import struct
import subprocess
import threading
import time
import unittest

import test_publish
from harness import (RedisServer, Sluice, finish, http, parse_media, publish, shared_redis,
                     wait_for)
from test_ingest import Rtmp

KEY = "demo-secret-key"
DEMO = (("demo", KEY),)


def flush(port, db):
    out = subprocess.run(["redis-cli", "-p", str(port), "-n", str(db), "FLUSHDB"],
                         capture_output=True, timeout=10)
    assert out.stdout.strip() == b"OK", out


class PublishOnRedisTest(test_publish.PublishTest):
    """The PublishTest cases that touch the store, with the store in Redis
    instead of memory."""

    DB = 1

    def setUp(self):
        port = shared_redis()
        flush(port, self.DB)
        self.sluice = Sluice("--store", f"redis://127.0.0.1:{port}/{self.DB}")

    # Where cuts fall is the packager's business, whichever the store: run
    # once, on memory (test_publish), to give the suite its 10 s back.
    test_longer_gop_makes_longer_segments = None


def playlist(node, path="/hls/demo/720p/index.m3u8"):
    s, h, b = http(node.url(path))
    return s, h, (parse_media(b.decode()) if s == 200 else None)


def stop_all(*nodes):
    errors = []
    for n in nodes:
        try:
            n.stop()
        except AssertionError as e:
            errors.append(str(e))
        finally:
            n.kill()
    if errors:
        raise AssertionError("\n".join(errors))


class MultiNodeTest(unittest.TestCase):

    DB = 2

    def setUp(self):
        self.port = shared_redis()
        flush(self.port, self.DB)
        self.url = f"redis://127.0.0.1:{self.port}/{self.DB}"
        self.nodes = []

    def tearDown(self):
        stop_all(*self.nodes)

    def node(self, *args, streams=DEMO):
        n = Sluice("--store", self.url, *args, streams=streams)
        self.nodes.append(n)
        return n

    def test_ingest_node_and_origin_node(self):
        a = self.node("--role", "ingest")
        b = self.node("--role", "origin", streams=())
        # Roles: no origin listener on A, no RTMP listener on B.
        with self.assertRaises(OSError):
            http(a.url("/healthz"), timeout=2)
        pub = publish(a.rtmp_url(KEY), seconds=8)
        wait_for(lambda: http(b.url("/hls/demo/master.m3u8"))[0] == 200, 15, "master on B")
        out = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i",
                              b.url("/hls/demo/master.m3u8"), "-t", "3", "-f", "null", "-"],
                             capture_output=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr.decode()[-2000:])
        rc, err = finish(pub, 40)
        self.assertEqual(rc, 0, err)
        wait_for(lambda: (playlist(b)[2] or {}).get("endlist"), 15, "ENDLIST on B")
        self.assertNotIn("RTMP", "".join(l for l in b.log().splitlines() if "listening" in l))

        # A key defined on A works on a third node that defines none.
        c = self.node("--role", "ingest", streams=())
        pub = publish(c.rtmp_url(KEY), seconds=6)
        wait_for(lambda: "publish started" in c.log(), 15, "publish accepted on C")
        rc, err = finish(pub, 40)
        self.assertEqual(rc, 0, err)
        self.assertNotIn("unknown stream key", c.log())

    def test_duplicate_publisher_takeover_across_nodes(self):
        a = self.node("--role", "ingest")
        c = self.node("--role", "ingest", streams=())
        b = self.node("--role", "origin", streams=())
        first = publish(a.rtmp_url(KEY), seconds=30)
        # (An LL-HLS playlist appears with the first part; wait for a segment.)
        wait_for(lambda: playlist(b)[0] == 200 and playlist(b)[2]["segments"], 15,
                 "the first publisher live")
        before = playlist(b)[2]
        a_numbers = [int(seg["uri"].split(".")[0]) for seg in before["segments"]]
        second = publish(c.rtmp_url(KEY), seconds=10)
        start = time.time()
        try:
            first.wait(15)
        except subprocess.TimeoutExpired:
            self.fail("the first publisher was not disconnected:\n" + a.log()[-3000:])
        took = time.time() - start
        self.assertIn("taken over by a publisher on another node", a.log())
        self.assertLess(took, 10)
        wait_for(lambda: "publish started" in c.log(), 10, "the newest publisher live")
        rc, err = finish(second, 40)
        self.assertEqual(rc, 0, err)
        after = wait_for(lambda: (playlist(b)[2] or {}).get("endlist") and playlist(b)[2], 15,
                         "ENDLIST from the new owner")
        # The new owner continues the numbering: no segment name is reused,
        # so no CDN or player ever gets the old node's media under a new name.
        c_numbers = [int(seg["uri"].split(".")[0]) for seg in after["segments"]]
        self.assertGreater(min(c_numbers), max(a_numbers), (a_numbers, c_numbers))
        self.assertGreater(int(after["tags"]["EXT-X-MEDIA-SEQUENCE"]),
                           int(before["tags"]["EXT-X-MEDIA-SEQUENCE"]))
        self.assertIn("continuing at segment", c.log())
        print(f"\n  takeover across nodes: old publisher gone after {took:.2f} s", end="")

    def ttl(self, name):
        out = subprocess.run(["redis-cli", "-p", str(self.port), "-n", str(self.DB), "PTTL",
                              "sluice:{demo}:o:" + name], capture_output=True, timeout=10)
        return int(out.stdout.strip())

    def test_live_objects_expire_on_their_own(self):
        # A node that dies mid-stream must not leave its window in Redis for
        # ever: everything written while live carries a TTL (600 s here, the
        # ended TTL, which is longer than the live window), except the
        # stream's segment counter.
        a = self.node()
        pub = publish(a.rtmp_url(KEY), seconds=6, size="640x360")
        wait_for(lambda: playlist(a, "/hls/demo/360p/index.m3u8")[0] == 200 and
                 playlist(a, "/hls/demo/360p/index.m3u8")[2]["segments"] and
                 http(a.url("/hls/demo/master.m3u8"))[0] == 200, 15, "live")
        first = playlist(a, "/hls/demo/360p/index.m3u8")[2]["segments"][0]["uri"]
        for name in ("master.m3u8", "360p/index.m3u8", "360p/init.mp4", f"360p/{first}",
                     "audio/index.m3u8", "audio/init.mp4", f"audio/{first}"):
            ttl = self.ttl(name)
            self.assertGreater(ttl, 500_000, name)
            self.assertLessEqual(ttl, 600_000, name)
        self.assertEqual(self.ttl("next-msn"), -1)
        rc, err = finish(pub, 30)
        self.assertEqual(rc, 0, err)

    def test_duplicate_publisher_reject_across_nodes(self):
        a = self.node("--role", "ingest", "--duplicate-publisher", "reject")
        c = self.node("--role", "ingest", "--duplicate-publisher", "reject", streams=())
        first = publish(a.rtmp_url(KEY), seconds=10)
        wait_for(lambda: "publish started" in a.log(), 15, "the first publisher live")
        time.sleep(1)
        second = publish(c.rtmp_url(KEY), seconds=5)
        rc, err = finish(second, 30)
        self.assertNotEqual(rc, 0, "the second publisher must be refused")
        self.assertIn("already live on another node", c.log())
        rc, err = finish(first, 40)
        self.assertEqual(rc, 0, "the first publisher kept the stream: " + err)
        self.assertNotIn("taken over", a.log())


class RedisOutageTest(unittest.TestCase):

    def test_kill_and_restart_redis_under_a_live_stream(self):
        redis = RedisServer()
        a = b = pub = None
        try:
            a = Sluice("--store", redis.url(), "--role", "ingest")
            b = Sluice("--store", redis.url(), "--role", "origin", streams=())
            pub = publish(a.rtmp_url(KEY), seconds=60, size="640x360")
            wait_for(lambda: playlist(b, "/hls/demo/360p/index.m3u8")[0] == 200, 15, "live on B")
            time.sleep(2)
            before = playlist(b, "/hls/demo/360p/index.m3u8")[2]["segments"][-1]["uri"]

            redis.kill()
            killed = time.time()
            # What cannot wait (the master playlist, a whole segment): 503 at
            # once. A media playlist reload is held instead (below).
            for path in ("/hls/demo/master.m3u8", "/hls/demo/360p/999.m4s"):
                s, h, _ = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(
                    http(b.url(path))), 5, f"503 for {path}")
                self.assertEqual(h.get("retry-after"), "1", path)
                self.assertIn("max-age=1", h.get("cache-control", ""))
            self.assertEqual(http(b.url("/readyz"))[0], 503)
            # Never a 404 for a live stream while Redis is away.
            for _ in range(10):
                self.assertNotEqual(http(b.url("/hls/demo/master.m3u8"))[0], 404)
                time.sleep(0.2)
            time.sleep(max(0, 4 - (time.time() - killed)))
            # A plain reload during the outage is held (up to 3 target
            # durations) and answered once Redis is back, even though Redis
            # comes back empty and the ingest node re-announces after.
            held = {}

            def reload():
                t = time.time()
                held["status"] = http(b.url("/hls/demo/360p/index.m3u8"), timeout=15)[0]
                held["took"] = time.time() - t
            reloader = threading.Thread(target=reload, daemon=True)
            reloader.start()
            time.sleep(0.3)

            redis.start()  # same port, empty
            back = time.time()

            def resumed():
                s, _, pl = playlist(b, "/hls/demo/360p/index.m3u8")
                if s != 200 or not pl["segments"]:
                    return None
                last = pl["segments"][-1]["uri"]
                if int(last.split(".")[0]) <= int(before.split(".")[0]):
                    return None
                # Everything the playlist names can be fetched.
                for seg in pl["segments"] + [{"uri": "init.mp4"}]:
                    if http(b.url("/hls/demo/360p/" + seg["uri"]))[0] != 200:
                        return None
                return last
            wait_for(resumed, 10, "playback to resume after Redis returned", interval=0.1)
            took = time.time() - back
            reloader.join(10)
            self.assertEqual(held.get("status"), 200, held)
            self.assertGreater(held["took"], 0.3)
            self.assertLess(took, 8)
            self.assertEqual(http(b.url("/readyz"))[0], 200)
            # The key still works after the empty restart (re-seeded from config).
            self.assertIn("demo", redis.cli("HKEYS", "sluice:{registry}:by-id"))
            # Bounded connections: a few per node, not one per request or retry.
            clients = redis.clients()
            self.assertLessEqual(len(clients), 12, "\n".join(clients))
            # The publisher rode the outage out: still connected, no error.
            # (Not waited for to its end: that only costs time.)
            self.assertIsNone(pub.poll(), "the publisher was cut during the outage")
            pub.terminate()
            _, err = pub.communicate(timeout=30)
            self.assertNotRegex(err.decode(errors="replace"),
                                r"(?i)broken pipe|connection reset|error writing|end of file")
            print(f"\n  Redis outage: playback resumed {took:.2f} s after Redis returned,"
                  f" {len(clients)} connections", end="")
        finally:
            if pub and pub.poll() is None:
                pub.kill()
            try:
                stop_all(*[n for n in (a, b) if n])
            finally:
                leftover = redis.clients()
                redis.stop()
        self.assertEqual(leftover, [], "connections left after both nodes stopped")


def rtmp_publish_attempt(sl, key, timeout=8):
    """A raw publish of key: (outcome, seconds from the publish command to
    the answer, the client). outcome: the status code received, or None."""
    c = Rtmp(sl.rtmp_port)
    c.handshake()
    assert c.connect()
    c.command("createStream", 4, None)
    assert c.wait(b"_result\x00\x40\x10")
    since = len(c.received)
    start = time.time()
    c.command("publish", 5, None, key, "live", msid=1, csid=8)
    codes = (b"NetStream.Publish.Start", b"NetStream.Publish.Failed",
             b"NetStream.Publish.BadName", b"NetStream.Publish.Rejected")
    while time.time() - start < timeout:
        got = [code for code in codes if code in c.received[since:]]
        if got:
            return got[0].decode(), time.time() - start, c
        c.sock.settimeout(0.05)
        try:
            d = c.sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            break
        if not d:
            break
        c.received += d
    return None, time.time() - start, c


class LoopProbe(threading.Thread):
    """An RTMP connection that sends a Ping Request every 150 ms and times
    each Ping Response: they come from the ingest loop, which reads every
    publisher, so a response that is late means every publisher's media sat
    unread for as long (sluice answers up to 10 pings a second)."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.c = Rtmp(port)
        self.c.handshake()
        assert self.c.connect()
        self.rtts = []  # (send time, round trip or None when never answered)
        self.stop = threading.Event()

    def run(self):
        token = 1000
        while not self.stop.is_set():
            token += 1
            since = len(self.c.received)
            sent = time.time()
            self.c.send(2, 4, 0, 0, struct.pack(">HI", 6, token))
            ok = self.c.wait(struct.pack(">HI", 7, token), timeout=10, since=since)
            self.rtts.append((sent, time.time() - sent if ok else None))
            if not ok:
                return
            time.sleep(max(0.0, 0.15 - (time.time() - sent)))

    def worst(self, start, end):
        within = [r for t, r in self.rtts if start <= t <= end]
        return None if any(r is None for r in within) else max(within), len(within)


class SlowRedisTest(unittest.TestCase):
    """S10: store calls a publish needs (key lookup, lease) run off the RTMP
    loop, with a deadline, so a Redis that stops answering costs a publish
    attempt a refusal, never the live publishers their reads."""

    def test_stopped_redis_does_not_stall_live_publishers(self):
        redis = RedisServer()
        sl = pub = probe = None
        clients = []
        try:
            sl = Sluice("--store", redis.url(), "--ladder", "360p",
                        streams=(("demo", KEY), ("other", "other-secret-key")))
            pub = publish(sl.rtmp_url(KEY), seconds=60, size="640x360")
            wait_for(lambda: playlist(sl, "/hls/demo/360p/index.m3u8")[0] == 200, 20,
                     "stream A live")
            probe = LoopProbe(sl.rtmp_port)
            probe.start()
            time.sleep(1.5)

            # Redis stops answering (a fork, a partition without RST): its
            # connections stay open, so every call waits for its timeout.
            os.kill(redis.proc.pid, signal.SIGSTOP)
            stopped = time.time()
            try:
                outcome, took, c = rtmp_publish_attempt(sl, "other-secret-key")
                clients.append(c)
                time.sleep(max(0.0, 3.0 - (time.time() - stopped)))
            finally:
                os.kill(redis.proc.pid, signal.SIGCONT)
            resumed = time.time()
            self.assertEqual(outcome, "NetStream.Publish.Failed",
                             "stream B's publish must be refused while Redis is stopped")
            self.assertLess(took, 1.5, "the refusal must not wait for Redis's own timeouts")
            self.assertIn("publish refused: the store did not answer the stream key lookup "
                          "within 500 ms", sl.log())

            # Once Redis answers again, B is accepted.
            accepted = None
            while time.time() - resumed < 20:
                outcome_b, _, c = rtmp_publish_attempt(sl, "other-secret-key")
                clients.append(c)
                if outcome_b == "NetStream.Publish.Start":
                    accepted = time.time() - resumed
                    break
                time.sleep(0.5)
            self.assertIsNotNone(accepted, "stream B was not accepted after Redis came back")
            time.sleep(0.5)
            probe.stop.set()
            probe.join(15)

            worst, n = probe.worst(stopped - 0.2, resumed + 0.5)
            self.assertGreater(n, 5, "too few pings during the stall")
            self.assertIsNotNone(worst, "a ping was never answered")
            self.assertLess(worst, 0.5, f"the ingest loop stalled for {worst:.2f} s while "
                                        "Redis was stopped")
            # A rode it out: its publisher still runs and its playlist goes on.
            self.assertIsNone(pub.poll(), "stream A's publisher was cut")
            before = playlist(sl, "/hls/demo/360p/index.m3u8")[2]["segments"][-1]["uri"]
            wait_for(lambda: playlist(sl, "/hls/demo/360p/index.m3u8")[2]["segments"][-1]["uri"]
                     != before, 15, "stream A's playlist to go on")
            print(f"\n  Redis stopped 3 s: worst ping {worst * 1000:.0f} ms over {n} pings, "
                  f"B refused after {took:.2f} s, accepted {accepted:.2f} s after Redis "
                  "came back", end="")
        finally:
            if probe:
                probe.stop.set()
                probe.c.close()
            for c in clients:
                c.close()
            if redis.proc and redis.proc.poll() is None:
                os.kill(redis.proc.pid, signal.SIGCONT)
            try:
                if sl:
                    sl.close(pub)
            finally:
                redis.stop()


if __name__ == "__main__":
    unittest.main()
