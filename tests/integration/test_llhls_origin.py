"""LL-HLS requests at the origin (RFC 8216bis 6.2.5.1, 6.2.5.2, 6.2.6)
against the real sluice: an origin-only node on Redis, fed by this test
acting as another node: it writes playlists and parts the way
store/store_redis.c commits them (one Lua script: SET the objects, then
PUBLISH "c NAME..." on the stream's channel), so the origin's held requests
wake through Redis pub/sub exactly as they do behind a real ingest node."""

import re
import signal
import socket
import threading
import time
import unittest

from harness import (RedisServer, Sluice, finish, http, parse_media, publish, shared_redis,
                     wait_for)

DB = 6
REND = "720p"
PPS = 3  # parts per segment in the playlists written here (0.333 s parts, 1 s segments)

# KEYS: objects; ARGV[1] channel, ARGV[2] notice, ARGV[3..] bytes (store_redis.c's layout).
COMMIT_LUA = ("for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[i + 2]) end\n"
              "redis.call('PUBLISH', ARGV[1], ARGV[2])\nreturn 1\n")


class Resp:
    """A minimal RESP client on a raw socket (no redis-py on the test box)."""

    def __init__(self, port, db):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.f = self.s.makefile("rb")
        assert self.cmd("SELECT", db) == "OK"

    def cmd(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.s.sendall(b"".join(out))
        return self._read()

    def _read(self):
        line = self.f.readline()
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise AssertionError("redis: " + rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self.f.read(n + 2)[:-2]
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise AssertionError("redis: bad reply %r" % line)

    def close(self):
        self.f.close()
        self.s.close()


class Writer:
    """Commits a stream's objects atomically and announces them."""

    def __init__(self, port, sid, db=DB):
        self.r = Resp(port, db)
        self.sid = sid
        self.channel = "sluice:ev:%d:{%s}" % (db, sid)

    def commit(self, objects):
        names = list(objects)
        keys = ["sluice:{%s}:o:%s" % (self.sid, n) for n in names]
        vals = [v if isinstance(v, bytes) else v.encode() for v in objects.values()]
        assert self.r.cmd("EVAL", COMMIT_LUA, len(keys), *keys, self.channel,
                          "c " + " ".join(names), *vals) == 1

    def close(self):
        self.r.close()


def playlist(first, complete, pending, ended=False, skip=False, td=1, tag=""):
    """A live LL-HLS media playlist: segments first..first+complete-1 with
    PPS parts each, `pending` parts of the next one, and a preload hint for
    the part after them (none when ended)."""
    sc = "CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.0" + (",CAN-SKIP-UNTIL=6.0" if skip else "")
    lines = ["#EXTM3U", "#EXT-X-VERSION:9", "#EXT-X-TARGETDURATION:%d" % td,
             "#EXT-X-SERVER-CONTROL:" + sc, "#EXT-X-PART-INF:PART-TARGET=0.333",
             "#EXT-X-MEDIA-SEQUENCE:%d" % first, '#EXT-X-MAP:URI="init.mp4"']
    if tag:
        lines.append("#X-TEST:" + tag)
    for n in range(first, first + complete):
        for p in range(PPS):
            lines.append('#EXT-X-PART:DURATION=0.333,URI="%d.%d.m4s"' % (n, p))
        lines += ["#EXTINF:1.000,", "%d.m4s" % n]
    nxt = first + complete
    for p in range(pending):
        lines.append('#EXT-X-PART:DURATION=0.333,URI="%d.%d.m4s"' % (nxt, p))
    if ended:
        lines.append("#EXT-X-ENDLIST")
    else:
        lines.append('#EXT-X-PRELOAD-HINT:TYPE=PART,URI="%d.%d.m4s"' % (nxt, pending))
    return "\n".join(lines) + "\n"


def initial_objects(skip=False):
    """Segments 2..4 complete, part 5.0 out, 5.1 hinted: next part (5, 1)."""
    objs = {"%s/%d.%d.m4s" % (REND, n, p): b"part %d.%d" % (n, p)
            for n in range(2, 5) for p in range(PPS)}
    objs.update({"%s/%d.m4s" % (REND, n): b"segment %d" % n for n in range(2, 5)})
    objs["%s/5.0.m4s" % REND] = b"part 5.0"
    objs["%s/index.m3u8" % REND] = playlist(2, 3, 1, skip=skip)
    if skip:
        objs["%s/index-skip.m3u8" % REND] = "#EXTM3U\n#X-TEST:skip-yes-v1\n"
        objs["%s/index-skip2.m3u8" % REND] = "#EXTM3U\n#X-TEST:skip-v2-v1\n"
    return objs


class Fetch(threading.Thread):
    """A GET in the background; records the answer and when it came."""

    def __init__(self, url, timeout=15):
        super().__init__(daemon=True)
        self.url, self.timeout = url, timeout
        self.result = None
        self.done_at = None
        self.start()

    def run(self):
        try:
            self.result = http(self.url, timeout=self.timeout)
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.result = (None, {}, repr(e).encode())
        self.done_at = time.monotonic()


def raw_get(port, path):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(("GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % path).encode())
    return s


def raw_status(s, timeout):
    """Status code of the answer on s (reads to EOF), None if none came."""
    s.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    s.close()
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else None


class LLHLSOriginTest(unittest.TestCase):
    """One origin-only sluice with 2 HTTP threads, shared by these cases;
    each case has its own stream."""

    @classmethod
    def setUpClass(cls):
        cls.port = shared_redis()
        r = Resp(cls.port, DB)
        assert r.cmd("FLUSHDB") == "OK"
        r.close()
        cls.sluice = Sluice("--role", "origin", "--store", "redis://127.0.0.1:%d/%d" % (cls.port, DB),
                            "--http-threads", "2", streams=())

    @classmethod
    def tearDownClass(cls):
        try:
            cls.sluice.stop()
        finally:
            cls.sluice.kill()

    def stream(self, sid, skip=False):
        w = Writer(self.port, sid)
        self.addCleanup(w.close)
        w.commit(initial_objects(skip))
        return w

    def url(self, sid, obj, query=""):
        return self.sluice.url("/hls/%s/%s/%s%s" % (sid, REND, obj, query))

    def assert_fast(self, url, status, within=0.5):
        t0 = time.monotonic()
        s, h, b = http(url)
        took = time.monotonic() - t0
        self.assertEqual(s, status, "%s: %s" % (url, b[:200]))
        self.assertLess(took, within, "%s took %.2f s" % (url, took))
        return h, b

    def test_blocking_reload_returns_right_after_the_commit(self):
        w = self.stream("block")
        # Already in the playlist: answered at once (6.2.5.2).
        _, b = self.assert_fast(self.url("block", "index.m3u8", "?_HLS_msn=5&_HLS_part=0"), 200)
        self.assertIn(b'"5.0.m4s"', b)
        self.assert_fast(self.url("block", "index.m3u8", "?_HLS_msn=4"), 200)
        self.assert_fast(self.url("block", "index.m3u8", "?_HLS_msn=0&_HLS_part=7"), 200)
        # The hinted part: held until it is committed.
        f = Fetch(self.url("block", "index.m3u8", "?_HLS_msn=5&_HLS_part=1"))
        time.sleep(0.8)
        self.assertIsNone(f.result, "answered before the part existed")
        t_commit = time.monotonic()
        w.commit({REND + "/5.1.m4s": b"part 5.1", REND + "/index.m3u8": playlist(2, 3, 2)})
        f.join(5)
        s, h, b = f.result
        self.assertEqual(s, 200, b)
        self.assertLess(f.done_at - t_commit, 1.0)
        self.assertIn(b'"5.1.m4s"', b)
        self.assertIn(b'URI="5.2.m4s"', b)  # the new hint
        self.assertTrue(h.get("cache-control", "").startswith("public, max-age="), h)
        # A whole segment: _HLS_msn=5 waits for segment 5 to complete, and a
        # part index past segment 5's last part means part 0 of segment 6.
        f5 = Fetch(self.url("block", "index.m3u8", "?_HLS_msn=5"))
        f6 = Fetch(self.url("block", "index.m3u8", "?_HLS_msn=5&_HLS_part=3"))
        time.sleep(0.4)
        w.commit({REND + "/5.2.m4s": b"part 5.2", REND + "/5.m4s": b"segment 5",
                  REND + "/index.m3u8": playlist(2, 4, 0)})
        f5.join(5)
        self.assertEqual(f5.result[0], 200)
        self.assertLess(f5.done_at - t_commit, 2.0)
        self.assertIn(b"\n5.m4s\n", f5.result[2])
        time.sleep(0.3)
        self.assertIsNone(f6.result, "5.3 is 6.0, which is not there yet")
        w.commit({REND + "/6.0.m4s": b"part 6.0", REND + "/index.m3u8": playlist(2, 4, 1)})
        f6.join(5)
        self.assertEqual(f6.result[0], 200)
        self.assertIn(b'"6.0.m4s"', f6.result[2])

    def test_bad_and_too_far_requests_get_400_at_once(self):
        self.stream("far")
        pl = "index.m3u8"
        # Next part is 5.1; the last complete segment is 4.
        self.assert_fast(self.url("far", pl, "?_HLS_msn=7&_HLS_part=0"), 400)  # two segments ahead
        self.assert_fast(self.url("far", pl, "?_HLS_msn=7"), 400)
        self.assert_fast(self.url("far", pl, "?_HLS_msn=5&_HLS_part=11"), 400)  # > Advance Part Limit
        self.assert_fast(self.url("far", pl, "?_HLS_part=1"), 400)  # part without msn
        for bad in ("abc", "-1", "", "1.5", "99999999999999999999"):
            self.assert_fast(self.url("far", pl, "?_HLS_msn=" + bad), 400)
            self.assert_fast(self.url("far", pl, "?_HLS_msn=5&_HLS_part=" + bad), 400)
        # Parts too far ahead or behind the hint: 404 at once (6.2.6).
        self.assert_fast(self.url("far", "5.20.m4s"), 404)
        self.assert_fast(self.url("far", "7.0.m4s"), 404)
        self.assert_fast(self.url("far", "4.4.m4s"), 404)  # segment 4 has parts 0..2 only
        # 4.3 is what the hint named before a keyframe ended segment 4 after
        # three parts: the media that followed, part 0 of segment 5.
        _, b = self.assert_fast(self.url("far", "4.3.m4s"), 200)
        self.assertEqual(b, b"part 5.0")
        self.assert_fast(self.url("far", "6.m4s"), 404)  # not the segment in progress
        # Unknown stream: 404, not a hold.
        self.assert_fast(self.sluice.url("/hls/nosuch/720p/index.m3u8?_HLS_msn=1"), 404)
        self.assert_fast(self.sluice.url("/hls/nosuch/720p/1.0.m4s"), 404)

    def test_skip_variants_and_ended_playlists(self):
        w = self.stream("skip", skip=True)
        _, b = self.assert_fast(self.url("skip", "index.m3u8", "?_HLS_skip=YES"), 200)
        self.assertIn(b"skip-yes-v1", b)
        _, b = self.assert_fast(self.url("skip", "index.m3u8", "?_HLS_skip=v2"), 200)
        self.assertIn(b"skip-v2-v1", b)
        _, b = self.assert_fast(self.url("skip", "index.m3u8", "?_HLS_skip=no"), 200)
        self.assertIn(b"#EXTINF", b)  # unknown value: the full playlist
        # Blocking + skip: the wait uses the full playlist, the answer is the
        # delta update read after it.
        f = Fetch(self.url("skip", "index.m3u8", "?_HLS_msn=5&_HLS_part=1&_HLS_skip=YES"))
        time.sleep(0.5)
        self.assertIsNone(f.result)
        t_commit = time.monotonic()
        w.commit({REND + "/5.1.m4s": b"p", REND + "/index.m3u8": playlist(2, 3, 2, skip=True),
                  REND + "/index-skip.m3u8": "#EXTM3U\n#X-TEST:skip-yes-v2\n",
                  REND + "/index-skip2.m3u8": "#EXTM3U\n#X-TEST:skip-v2-v2\n"})
        f.join(5)
        self.assertEqual(f.result[0], 200)
        self.assertIn(b"skip-yes-v2", f.result[2])
        self.assertLess(f.done_at - t_commit, 1.0)
        # A stream without delta updates: the full playlist.
        self.stream("noskip")
        _, b = self.assert_fast(self.url("noskip", "index.m3u8", "?_HLS_skip=YES"), 200)
        self.assertIn(b"#EXTINF", b)
        # Ended: directives ignored, answered at once, full playlist (6.2.5.1, 6.2.5.2).
        w.commit({REND + "/index.m3u8": playlist(2, 4, 0, ended=True, skip=True, tag="ended")})
        _, b = self.assert_fast(self.url("skip", "index.m3u8", "?_HLS_msn=1000&_HLS_part=3&_HLS_skip=YES"), 200)
        self.assertIn(b"#EXT-X-ENDLIST", b)
        self.assertIn(b"X-TEST:ended", b)
        self.assert_fast(self.url("skip", "6.0.m4s"), 404)  # nothing more will come

    def test_hold_limit(self):
        self.stream("limit")  # TARGETDURATION 1: hold limit 3 s
        t0 = time.monotonic()
        f_pl = Fetch(self.url("limit", "index.m3u8", "?_HLS_msn=5&_HLS_part=1"))
        f_part = Fetch(self.url("limit", "5.1.m4s"))
        f_seg = Fetch(self.url("limit", "5.m4s"))
        for f in (f_pl, f_part, f_seg):
            f.join(10)
        # 6.2.5.2: not there after three target durations: 503; a hinted
        # part that never came: 404 with a short lifetime.
        self.assertEqual(f_pl.result[0], 503, f_pl.result)
        self.assertIn(b"hold limit", f_pl.result[2])
        self.assertEqual(f_part.result[0], 404)
        self.assertEqual(f_seg.result[0], 404)
        for f in (f_pl, f_part, f_seg):
            self.assertGreaterEqual(f.done_at - t0, 2.9)
            self.assertLess(f.done_at - t0, 4.5)
        # A CDN must not keep the 404 of a part that may still come.
        cc = f_part.result[1].get("cache-control", "")
        m = re.search(r"max-age=(\d+)", cc)
        self.assertTrue("no-cache" in cc or "no-store" in cc or (m and int(m.group(1)) <= 2), cc)

    def test_blocking_part_request_returns_the_bytes(self):
        w = self.stream("hint")
        f = Fetch(self.url("hint", "5.1.m4s"))
        f_ahead = Fetch(self.url("hint", "6.0.m4s"))  # within the Advance Part Limit
        f_seg = Fetch(self.url("hint", "5.m4s"))  # the segment in progress
        time.sleep(0.6)
        self.assertIsNone(f.result, "answered before the part existed")
        t_commit = time.monotonic()
        data = bytes(range(256)) * 1000
        w.commit({REND + "/5.1.m4s": data, REND + "/index.m3u8": playlist(2, 3, 2)})
        f.join(5)
        self.assertEqual(f.result[0], 200)
        self.assertEqual(f.result[2], data)
        self.assertLess(f.done_at - t_commit, 1.0)
        self.assertIsNone(f_ahead.result)
        self.assertIsNone(f_seg.result)
        w.commit({REND + "/5.2.m4s": b"p52", REND + "/5.m4s": b"segment 5",
                  REND + "/6.0.m4s": b"part 6.0", REND + "/index.m3u8": playlist(2, 4, 1)})
        f_ahead.join(5)
        f_seg.join(5)
        self.assertLess(max(f_ahead.done_at, f_seg.done_at) - t_commit, 2.0)
        self.assertEqual(f_ahead.result[:3:2], (200, b"part 6.0"))
        self.assertEqual(f_seg.result[:3:2], (200, b"segment 5"))

    def test_many_held_requests_do_not_hold_threads(self):
        w = self.stream("many")
        socks = [raw_get(self.sluice.http_port, "/hls/many/%s/index.m3u8?_HLS_msn=5&_HLS_part=1" % REND)
                 for _ in range(200)]
        # Dropped clients among them: cleaned up, never answered to.
        gone = [raw_get(self.sluice.http_port, "/hls/many/%s/5.1.m4s" % REND) for _ in range(20)]
        time.sleep(0.5)
        for s in gone:
            s.close()
        # 2 HTTP threads, 220 held requests: the origin still answers at once.
        for _ in range(5):
            self.assert_fast(self.sluice.url("/healthz"), 200, within=0.5)
            self.assert_fast(self.url("many", "index.m3u8"), 200, within=0.5)
        t_commit = time.monotonic()
        w.commit({REND + "/5.1.m4s": b"p", REND + "/index.m3u8": playlist(2, 3, 2)})
        statuses = [raw_status(s, 5) for s in socks]
        took = time.monotonic() - t_commit
        self.assertEqual(statuses, [200] * 200)
        self.assertLess(took, 1.0)  # woken by the commit, not by the hold limit
        print("\n  200 held playlist requests answered %.0f ms after the commit" % (took * 1000))
        self.assert_fast(self.sluice.url("/healthz"), 200)


class LLHLSShutdownTest(unittest.TestCase):

    def test_sigterm_with_held_requests(self):
        port = shared_redis()
        sl = Sluice("--role", "origin", "--store", "redis://127.0.0.1:%d/%d" % (port, DB),
                    "--http-threads", "2", streams=())
        try:
            w = Writer(port, "term")
            w.commit(initial_objects())
            w.close()
            socks = [raw_get(sl.http_port, "/hls/term/%s/index.m3u8?_HLS_msn=5&_HLS_part=1" % REND)
                     for _ in range(50)]
            socks += [raw_get(sl.http_port, "/hls/term/%s/5.1.m4s" % REND) for _ in range(10)]
            time.sleep(0.5)
            t0 = time.monotonic()
            sl.proc.send_signal(signal.SIGTERM)
            sl.proc.wait(10)
            took = time.monotonic() - t0
            statuses = [raw_status(s, 5) for s in socks]
            self.assertLess(took, 2.0, "shutdown with held requests took %.1f s" % took)
            # Every held request was answered before the listener went away.
            self.assertEqual(statuses[:50], [503] * 50)
            self.assertEqual(statuses[50:], [404] * 10)
        finally:
            sl.stop()  # exit 0, sanitizer-clean (ASan/LSan/UBSan)
            sl.kill()

    def test_redis_lost_during_a_hold(self):
        redis = RedisServer()
        sl = None
        try:
            sl = Sluice("--role", "origin", "--store", redis.url(), "--http-threads", "2", streams=())
            w = Writer(redis.port, "lost", db=0)
            w.commit(initial_objects())
            w.close()
            f = Fetch(sl.url("/hls/lost/%s/index.m3u8?_HLS_msn=5&_HLS_part=1" % REND))
            time.sleep(0.5)
            self.assertIsNone(f.result)
            redis.kill()
            f.join(10)
            # The hold ends at its limit; the store answers -EIO: 503, no crash.
            self.assertEqual(f.result[0], 503)
            self.assertIn(b"store unavailable", f.result[2])
            s, _, _ = http(sl.url("/hls/lost/%s/5.1.m4s" % REND))
            self.assertEqual(s, 503)
        finally:
            if sl:
                sl.stop()
                sl.kill()
            redis.stop()


class LLHLSMemoryStoreTest(unittest.TestCase):
    """The embedded memory store with the real packager: a blocking reload
    for the next segment is woken by the packager's commit on the same
    process (no Redis in between)."""

    def test_blocking_reload_on_a_live_publish(self):
        sl = Sluice()
        pub = publish(sl.rtmp_url("demo-secret-key"), seconds=9)
        try:
            path = "/hls/demo/720p/index.m3u8"
            pl = wait_for(lambda: (lambda r: r[0] == 200 and b"#EXTINF" in r[2] and r[2])(
                http(sl.url(path))), 15, "a first segment")
            text = pl.decode()
            media = parse_media(text)
            nxt = int(media["tags"].get("EXT-X-MEDIA-SEQUENCE", "0")) + len(media["segments"])
            if "EXT-X-PRELOAD-HINT" in media["tags"]:
                nxt = int(re.search(r'URI="(\d+)\.', media["tags"]["EXT-X-PRELOAD-HINT"]).group(1))
            self.assertNotIn("\n%d.m4s" % nxt, text)
            # Two segments past the last one: 400 at once.
            t0 = time.monotonic()
            s, _, _ = http(sl.url(path + "?_HLS_msn=%d" % (nxt + 2)))
            self.assertEqual(s, 400)
            self.assertLess(time.monotonic() - t0, 0.5)
            # The next one: held until the packager commits it (2 s segments,
            # hold limit 3 target durations).
            t0 = time.monotonic()
            s, h, b = http(sl.url(path + "?_HLS_msn=%d" % nxt), timeout=15)
            took = time.monotonic() - t0
            self.assertEqual(s, 200, b[:300])
            self.assertIn("\n%d.m4s" % nxt, b.decode())
            self.assertLess(took, 6.0)
            print("\n  _HLS_msn=%d answered after %.2f s" % (nxt, took))
        finally:
            finish(pub, 30)
            sl.stop()
            sl.kill()


if __name__ == "__main__":
    unittest.main()
