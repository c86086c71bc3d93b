"""Audience beacons on the origin (issue 22, docs/urls.md): POST /beacon/ID
and GET /hls/ID/viewers.json against the real binary, a stream published
with real ffmpeg.

Every answer's status and headers (Cache-Control, CORS, no cookies), each
400 naming its field, 413 for a body over 2048 bytes (announced or
chunked), 429 with Retry-After for a session flood and an address flood
while playback of the same stream keeps getting 200s, 404 for a stream that
is not live and an unknown one, 405, the preflight, signed playback (403
without or with a wrong token, 204 with a minted one), --beacons off, and
the abuse bound: 1000 beacons with random session ids from one address are
accepted at most --audience-per-address times.

Each test speaks from its own client address (X-Forwarded-For from the
trusted loopback proxy), so the per-address limits of one never meet
another's."""

import base64
import hashlib
import hmac
import http.client as httpclient
import json
import os
import re
import secrets
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import RedisServer, Sluice, finish, http, publish, wait_for  # noqa: E402

SECRET = "beacon-playback-secret-0123456789"
CORS = "https://shop.example"
PER_ADDRESS = 50


def mint_token(secret, stream_id, ttl=3600, ip="", sid=""):
    """docs/cdn.md, "Minting tokens" (Python)."""
    exp = str(int(time.time()) + ttl)
    msg = "|".join(["sluice-v1", stream_id, exp, ip, sid]).encode()
    mac = hmac.new(secret.encode(), msg, hashlib.sha256).digest()
    sig = base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    return "~".join([exp, ip, sid, sig])


def session_id():
    return secrets.token_urlsafe(18)  # 24 characters of A-Za-z0-9_-


_next_addr = [0]


def new_addr():
    """A client address of its own for one test (TEST-NET-2)."""
    _next_addr[0] += 1
    return f"198.51.100.{_next_addr[0]}"


class BeaconsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        common = ("--ladder", "360p", "--preset", "ultrafast", "--part-duration", "0")
        started = []
        try:
            cls.open = Sluice(*common, "--trusted-proxies", "127.0.0.1", "--cors-origin", CORS,
                              "--audience-per-address", str(PER_ADDRESS),
                              streams=(("demo", "demo-secret-key"), ("idle", "idle-key")))
            started.append(cls.open)
            cls.signed = Sluice(*common, "--playback-secret", SECRET)
            started.append(cls.signed)
            cls.off = Sluice("--beacons", "off", streams=(("demo", "demo-secret-key"),))
            started.append(cls.off)
            # A Redis store, so the session records can be read where the
            # aggregator will read them.
            cls.redis = RedisServer()
            cls.shared = Sluice(*common, "--store", cls.redis.url(), "--audience-timeout", "20")
            started.append(cls.shared)
        except Exception:
            for s in started:
                s.kill()
            if getattr(cls, "redis", None):
                cls.redis.stop()
            raise
        cls.all = started
        pubs = [publish(s.rtmp_url("demo-secret-key"), seconds=4, size="640x360")
                for s in (cls.open, cls.signed, cls.shared)]
        for p in pubs:
            rc, err = finish(p, 40)
            assert rc == 0, err
        cls.token = mint_token(SECRET, "demo")
        wait_for(lambda: http(cls.open.url("/hls/demo/master.m3u8"))[0] == 200, 20,
                 "the open stream's master playlist")
        wait_for(lambda: http(cls.signed.url("/hls/demo/master.m3u8?token=" + cls.token))[0] == 200,
                 20, "the signed stream's master playlist")

    @classmethod
    def tearDownClass(cls):
        try:
            for s in cls.all:
                try:
                    log = s.stop()
                    assert SECRET not in log, "the playback secret reached the log"
                    assert cls.token.split("~")[-1] not in log, "a token reached the log"
                    assert "198.51.100." not in log, "a client address reached the log"
                finally:
                    s.kill()
        finally:
            cls.redis.stop()

    # ---- helpers ---------------------------------------------------------

    def beacon(self, body, stream="demo", addr=None, sluice=None, headers=None):
        """POSTs body (a dict is sent as JSON text/plain, like sendBeacon);
        checks what every beacon answer carries; returns (status, headers,
        parsed JSON body or None)."""
        sluice = sluice or self.open
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        h = {"Content-Type": "text/plain;charset=UTF-8"}
        if addr:
            h["X-Forwarded-For"] = addr
        h.update(headers or {})
        status, rh, raw = self.request(sluice, "POST", f"/beacon/{stream}", data, h)
        self.check_common(rh, sluice)
        self.assertEqual(rh.get("cache-control"), "no-store", (status, raw))
        parsed = json.loads(raw) if raw else None
        if status == 204:
            self.assertEqual(raw, b"")
        else:
            self.assertIsInstance(parsed.get("error"), str, raw)
        return status, rh, parsed

    def request(self, sluice, method, path, data=None, headers=None, chunked=False):
        conn = httpclient.HTTPConnection("127.0.0.1", sluice.http_port, timeout=10)
        try:
            if chunked:
                conn.request(method, path, body=iter([data[i:i + 512] for i in
                                                      range(0, len(data), 512)]),
                             headers=headers or {}, encode_chunked=True)
            else:
                conn.request(method, path, body=data, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def chunked_post(self, sluice, path, chunks, addr):
        """POSTs a chunked body (no Content-Length): (status, headers, body),
        or None when the connection was closed unanswered."""
        with socket.create_connection(("127.0.0.1", sluice.http_port), timeout=10) as s:
            s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {addr}\r\n"
                      "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
            try:
                for c in chunks:
                    s.sendall(b"%x\r\n%s\r\n" % (len(c), c))
                s.sendall(b"0\r\n\r\n")
                r = httpclient.HTTPResponse(s)
                r.begin()
            except (ConnectionError, httpclient.RemoteDisconnected):
                return None
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()

    def check_common(self, h, sluice):
        self.assertNotIn("set-cookie", h)
        self.assertNotIn("access-control-allow-credentials", h)
        want = CORS if sluice is self.open else "*"
        self.assertEqual(h.get("access-control-allow-origin"), want)

    def good(self, **kw):
        b = {"session": session_id(), "state": "playing", "rendition": "360p",
             "latency_ms": 3100, "startup_ms": 900, "stalls": 0, "stall_ms": 0,
             "watch_ms": 10000, "dropped_frames": 0, "errors": 0, "player": "hls.js 1.5.20"}
        b.update(kw)
        return b

    def metric(self, sluice, name, labels):
        _, _, body = http(sluice.admin_url("/metrics"))
        pat = re.escape(name) + r"\{" + ",".join(f'{k}="{re.escape(v)}"' for k, v in labels.items()) \
            + r"\} (\d+)"
        m = re.search(pat, body.decode())
        return int(m.group(1)) if m else 0

    # ---- the answers -----------------------------------------------------

    def test_accepted(self):
        addr = new_addr()
        status, h, _ = self.beacon(self.good(), addr=addr)
        self.assertEqual(status, 204)
        # application/json works as well (the preflight's case), and a
        # session goes on with its next beacons.
        sid = session_id()
        for state in ("starting", "playing", "paused", "ended"):
            status, _, body = self.beacon(self.good(session=sid, state=state), addr=addr,
                                          headers={"Content-Type": "application/json"})
            self.assertEqual(status, 204, body)
        # Unknown fields are ignored; the optional ones may be missing.
        status, _, body = self.beacon({"session": session_id(), "state": "starting",
                                       "rendition": None, "future": {"x": [1]}}, addr=addr)
        self.assertEqual(status, 204, body)

    def test_bad_requests_name_the_field(self):
        addr = new_addr()
        cases = [
            (b"{not json", "JSON"),
            (b"[1,2]", "object"),
            ({"state": "playing"}, "session"),
            ({"session": "short", "state": "playing"}, "session"),
            (self.good(state="dancing"), "state"),
            ({"session": session_id()}, "state"),
            (self.good(latency_ms=3600001), "latency_ms"),
            (self.good(stalls=-1), "stalls"),
            (self.good(watch_ms="10"), "watch_ms"),
            (self.good(rendition="720P"), "rendition"),
            (self.good(rendition="x" * 16), "rendition"),
            (self.good(player="p" * 41), "player"),
            (b'{"session":"abcdefghijklmnop","session":"abcdefghijklmnoq","state":"playing"}',
             "repeats"),
            (b"", "empty"),
        ]
        for body, field in cases:
            status, _, parsed = self.beacon(body, addr=addr)
            self.assertEqual(status, 400, (body, parsed))
            self.assertIn(field, parsed["error"], body)

    def test_too_large(self):
        addr = new_addr()
        big = json.dumps(self.good(pad="x" * 3072)).encode()
        self.assertGreater(len(big), 3 * 1024)
        status, _, parsed = self.beacon(big, addr=addr)
        self.assertEqual(status, 413)
        self.assertIn("2048", parsed["error"])
        # Chunked, so no Content-Length announces it: refused once past 2048,
        # without waiting for (or reading) the rest of the body.
        status, h, raw = self.chunked_post(self.open, "/beacon/demo", [b"x" * 1100] * 2, addr)
        self.assertEqual(status, 413, raw)
        self.assertEqual(h.get("cache-control"), "no-store")
        # ... and a chunked body that goes on past 64 KiB is not read on: its
        # connection is closed.
        self.assertIsNone(self.chunked_post(self.open, "/beacon/demo", [b"x" * 8000] * 12, addr))
        # Exactly at the limit is fine.
        body = self.good()
        body["pad"] = ""
        text = json.dumps(body)
        body["pad"] = "x" * (2048 - len(text.encode()))
        exact = json.dumps(body).encode()
        self.assertEqual(len(exact), 2048)
        self.assertEqual(self.beacon(exact, addr=addr)[0], 204)

    def test_not_found_and_methods(self):
        addr = new_addr()
        status, _, parsed = self.beacon(self.good(), stream="idle", addr=addr)
        self.assertEqual(status, 404)
        self.assertEqual(parsed["error"], "stream is not live")
        status, _, parsed = self.beacon(self.good(), stream="nosuch", addr=addr)
        self.assertEqual(status, 404)
        status, h, _ = self.request(self.open, "GET", "/beacon/demo")
        self.assertEqual(status, 405)
        self.assertIn("POST", h.get("allow", ""))
        self.assertEqual(h.get("cache-control"), "no-store")
        self.check_common(h, self.open)
        self.assertEqual(self.request(self.open, "GET", "/beacon/")[0], 404)
        # The preflight of an application/json beacon.
        status, h, raw = self.request(self.open, "OPTIONS", "/beacon/demo", headers={
            "Origin": CORS, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        self.assertEqual(status, 204, raw)
        self.assertIn("POST", h.get("access-control-allow-methods", ""))
        self.assertIn("content-type", h.get("access-control-allow-headers", "").lower())
        self.assertEqual(h.get("cache-control"), "no-store")
        self.check_common(h, self.open)

    def playback_ok(self, stop, failures, count):
        """Plays the stream's objects over and over until stop is set."""
        _, _, master = http(self.open.url("/hls/demo/master.m3u8"))
        _, _, media = http(self.open.url("/hls/demo/360p/index.m3u8"))
        seg = [l for l in media.decode().splitlines() if l and not l.startswith("#")][0]
        paths = ["/hls/demo/master.m3u8", "/hls/demo/360p/index.m3u8", "/hls/demo/360p/" + seg]
        while not stop.is_set():
            for p in paths:
                s, _, _ = http(self.open.url(p))
                count[0] += 1
                if s != 200:
                    failures.append((p, s))

    def test_floods_limited_playback_unharmed(self):
        stop, failures, count = threading.Event(), [], [0]
        player = threading.Thread(target=self.playback_ok, args=(stop, failures, count))
        player.start()
        try:
            # One session: a burst of 5, then 429 with Retry-After.
            addr = new_addr()
            sid = session_id()
            statuses = []
            for _ in range(10):
                status, h, _ = self.beacon(self.good(session=sid), addr=addr)
                statuses.append(status)
                if status == 429:
                    self.assertGreaterEqual(int(h["retry-after"]), 1)
            self.assertEqual(statuses[:5], [204] * 5, statuses)
            self.assertIn(429, statuses[5:])
            # One address, each beacon its own session, per-address cap high
            # enough not to matter: the address bucket (burst 60) answers 429.
            addr = new_addr()
            statuses = [self.beacon(self.good(), stream="demo", addr=addr)
                        for _ in range(80)]
            codes = [s for s, _, _ in statuses]
            self.assertIn(429, codes)
            errors = {b["error"] for s, _, b in statuses if s == 429}
            self.assertIn("too many beacons from one address", errors)
            for s, h, b in statuses:
                if s == 429:
                    self.assertGreaterEqual(int(h["retry-after"]), 1)
            self.assertLessEqual(codes.count(204), PER_ADDRESS)
        finally:
            stop.set()
            player.join(20)
        self.assertEqual(failures, [])
        self.assertGreater(count[0], 3)

    def test_abuse_bound(self):
        """1000 beacons with random session ids from one address raise this
        node's sessions by at most --audience-per-address."""
        addr = new_addr()
        conn = httpclient.HTTPConnection("127.0.0.1", self.open.http_port, timeout=10)
        codes = {}
        try:
            for _ in range(1000):
                body = json.dumps({"session": session_id(), "state": "playing"}).encode()
                conn.request("POST", "/beacon/demo", body=body,
                             headers={"X-Forwarded-For": addr, "Content-Type": "text/plain"})
                r = conn.getresponse()
                r.read()
                codes[r.status] = codes.get(r.status, 0) + 1
                if r.status == 429:
                    self.assertIsNotNone(r.getheader("Retry-After"))
        finally:
            conn.close()
        self.assertLessEqual(codes.get(204, 0), PER_ADDRESS, codes)
        self.assertGreater(codes.get(204, 0), 0, codes)
        self.assertEqual(codes.get(204, 0) + codes.get(429, 0), 1000, codes)
        # The origin counted them (the admin /metrics of the origin's answers).
        self.assertGreaterEqual(self.metric(self.open, "sluice_http_requests_total",
                                            {"kind": "other", "code": "429"}),
                                codes.get(429, 0))

    def test_signed(self):
        good = self.good()
        status, _, parsed = self.beacon(good, sluice=self.signed)
        self.assertEqual(status, 403, parsed)
        status, _, parsed = self.beacon(self.good(token="1~~~" + "A" * 43), sluice=self.signed)
        self.assertEqual(status, 403, parsed)
        status, _, parsed = self.beacon(self.good(token=mint_token(SECRET, "other")),
                                        sluice=self.signed)
        self.assertEqual(status, 403, parsed)
        status, _, parsed = self.beacon(self.good(token=mint_token("wrong", "demo")),
                                        sluice=self.signed)
        self.assertEqual(status, 403, parsed)
        status, _, parsed = self.beacon(self.good(token=self.token), sluice=self.signed)
        self.assertEqual(status, 204, parsed)

    def test_beacons_off(self):
        status, _, parsed = self.beacon(self.good(), sluice=self.off)
        self.assertEqual(status, 404, parsed)
        status, _, _ = self.request(self.off, "OPTIONS", "/beacon/demo")
        self.assertEqual(status, 404)

    def test_viewers_json(self):
        for sluice, path in ((self.open, "/hls/idle/viewers.json"),
                             (self.open, "/hls/demo/viewers.json"),
                             (self.signed, "/hls/demo/viewers.json")):  # no token needed
            status, h, body = http(sluice.url(path))
            self.assertEqual(status, 200, (path, body))
            self.assertEqual(h.get("cache-control"), "public, max-age=5")
            self.assertEqual(h.get("content-type"), "application/json")
            self.check_common(h, sluice)
            got = json.loads(body)
            if "/idle/" in path or not got.get("live"):
                # Never published, or no count (yet, or any more).
                self.assertEqual(got, {"viewers": 0, "live": False})
            else:
                # The aggregator's count of a broadcast that just ended may
                # still be there (it is kept 5 s).
                self.assertEqual(set(got), {"viewers", "live", "updated"}, got)
                self.assertIsInstance(got["viewers"], int)
        status, h, _ = http(self.open.url("/hls/nosuch/viewers.json"))
        self.assertEqual(status, 404)
        self.assertNotEqual(h.get("cache-control"), "public, max-age=5")


    def redis_now_ms(self):
        sec, usec = self.redis.cli("TIME").split()
        return int(sec) * 1000 + int(usec) // 1000

    def meta(self, field):
        """(expiry ms, value) of the stream's meta field, or None."""
        v = self.redis.cli("HGET", "sluice:{demo}:meta", field).rstrip("\n")
        if not v:
            return None
        exp, value = v.split(" ", 1)
        return int(exp), value

    def test_store_records(self):
        """The flush writes each session's record (common/audience.h's
        format) as meta aud.SESSION, TTL --audience-timeout; `ended` with a
        5 s TTL. viewers.json reads meta "audience"."""
        sid = session_id()
        status, _, body = self.beacon(self.good(session=sid, rendition="360p", stalls=2),
                                      sluice=self.shared)
        self.assertEqual(status, 204, body)
        exp, rec = wait_for(lambda: self.meta("aud." + sid), 5, "the session's record")
        self.assertTrue(rec.startswith("1 playing 360p 3100 900 2 0 10000 0 0"), rec)
        self.assertAlmostEqual(exp - self.redis_now_ms(), 20000, delta=3000)
        status, _, body = self.beacon(self.good(session=sid, state="ended"), sluice=self.shared)
        self.assertEqual(status, 204, body)
        exp, rec = wait_for(lambda: (lambda m: m if m and m[1].startswith("1 ended") else None)(
            self.meta("aud." + sid)), 5, "the ended record")
        self.assertLessEqual(exp - self.redis_now_ms(), 5000)
        # Nothing in the stream's records says where a viewer is.
        self.assertNotIn("127.0.0.1", self.redis.cli("HGETALL", "sluice:{demo}:meta"))
        # What the aggregator writes, viewers.json answers.
        self.redis.cli("HSET", "sluice:{demo}:meta", "audience",
                       "%d %s" % (self.redis_now_ms() + 5000, json.dumps(
                           {"viewers": 7, "source": "beacons", "updated": "2026-12-07T11:00:00Z"})))
        status, h, body = http(self.shared.url("/hls/demo/viewers.json"))
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body), {"viewers": 7, "live": True,
                                            "updated": "2026-12-07T11:00:00Z"})
        self.assertEqual(h.get("cache-control"), "public, max-age=5")


if __name__ == "__main__":
    unittest.main()
