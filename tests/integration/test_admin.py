"""The admin API (control/admin.c) and the `sluice streams` CLI against the
real binary: every endpoint's success and errors, who may ask (bearer token,
loopback only without one), and a stream's whole life with a real ffmpeg
publisher: create -> publish with the returned key -> live status with a
measured bit rate -> rotate -> the old key refused -> delete -> publisher cut
and the stream gone; across two nodes on Redis as well."""

import json
import os
import re
import socket
import subprocess
import time
import unittest
import urllib.error
import urllib.request

from harness import (SLUICE_BIN, Sluice, finish, free_port, http, publish, shared_redis,
                     wait_for)

TOKEN = "admin-token-0123456789abcdef"
REDIS_DB = 12


def api(sl, method, path, body=None, token=None, raw=None, source=None, port=None):
    """(status, headers, parsed JSON or None, raw body) of one admin request."""
    headers = {}
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
    if data is not None:
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    host = source or "127.0.0.1"
    url = f"http://{host}:{port or sl.admin_port}{path}"
    req = urllib.request.Request(url, method=method, headers=headers, data=data)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            status, hdrs, text = r.status, dict(r.headers.items()), r.read()
    except urllib.error.HTTPError as e:
        status, hdrs, text = e.code, dict(e.headers.items()), e.read()
    doc = None
    if text:
        try:
            doc = json.loads(text)
        except ValueError:
            pass
    return status, {k.lower(): v for k, v in hdrs.items()}, doc, text


def non_loopback_address():
    """An address of this machine that is not loopback (the default route's
    source address; no packet is sent), or None."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))
            addr = s.getsockname()[0]
            return None if addr.startswith("127.") else addr
    except OSError:
        return None


def cli(sl, *args, env=None, port=None):
    full_env = dict(os.environ)
    full_env.update(env or {})
    cmd = [SLUICE_BIN, "streams", *args]
    if port is not False:
        cmd += ["--admin-listen", f"127.0.0.1:{port or sl.admin_port}"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=full_env)
    return p.returncode, p.stdout, p.stderr


def wait_state(sl, sid, state, timeout=30, token=None):
    def check():
        st, _, doc, _ = api(sl, "GET", f"/api/v1/streams/{sid}", token=token)
        return doc if st == 200 and doc.get("state") == state else None
    return wait_for(check, timeout, f"stream {sid} {state}")


def exited(proc, timeout):
    try:
        proc.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        return False


class AdminErrorsTest(unittest.TestCase):
    """One server for every error path: nothing here publishes."""

    @classmethod
    def setUpClass(cls):
        cls.sl = Sluice()

    @classmethod
    def tearDownClass(cls):
        cls.sl.close()

    def test_list_and_get_predefined(self):
        st, hdrs, doc, text = api(self.sl, "GET", "/api/v1/streams")
        self.assertEqual(st, 200)
        self.assertEqual(hdrs["content-type"], "application/json")
        ids = [s["id"] for s in doc["streams"]]
        self.assertIn("demo", ids)
        self.assertNotIn(b"demo-secret-key", text)
        st, _, doc, text = api(self.sl, "GET", "/api/v1/streams/demo")
        self.assertEqual(st, 200)
        self.assertEqual(doc["id"], "demo")
        self.assertEqual(doc["state"], "idle")
        self.assertIn("/hls/demo/master.m3u8", doc["playback_url"])
        self.assertNotIn("ingest", doc)  # only while live
        self.assertNotIn("stream_key", doc)
        self.assertNotIn(b"demo-secret-key", text)

    def test_create(self):
        st, _, doc, text = api(self.sl, "POST", "/api/v1/streams", {"name": "Shop window #1"})
        self.assertEqual(st, 201, text)
        self.assertRegex(doc["id"], r"^[0-9a-f]{32}$")
        self.assertEqual(doc["name"], "Shop window #1")
        # 256 bits, base64url without padding
        self.assertRegex(doc["stream_key"], r"^[A-Za-z0-9_-]{43}$")
        self.assertEqual(doc["rtmp_url"], f"rtmp://127.0.0.1:{self.sl.rtmp_port}/live")
        self.assertEqual(doc["playback_url"],
                         f"http://127.0.0.1:{self.sl.http_port}/hls/{doc['id']}/master.m3u8")
        self.assertNotIn(doc["stream_key"], doc["playback_url"])
        key = doc["stream_key"]
        # shown once: never again in a get or a listing, nor in the log
        st, _, got, text = api(self.sl, "GET", f"/api/v1/streams/{doc['id']}")
        self.assertEqual(st, 200)
        self.assertEqual(got["name"], "Shop window #1")
        self.assertNotIn(key.encode(), text)
        st, _, _, text = api(self.sl, "GET", "/api/v1/streams")
        self.assertIn(doc["id"].encode(), text)
        self.assertNotIn(key.encode(), text)
        self.assertNotIn(key, self.sl.log())
        # two creations never share an id or a key
        st, _, doc2, _ = api(self.sl, "POST", "/api/v1/streams", {"name": "other"})
        self.assertEqual(st, 201)
        self.assertNotEqual(doc2["id"], doc["id"])
        self.assertNotEqual(doc2["stream_key"], key)
        # no body: the name is the id
        st, _, doc3, _ = api(self.sl, "POST", "/api/v1/streams")
        self.assertEqual(st, 201)
        self.assertEqual(doc3["name"], doc3["id"])

    def test_bad_bodies(self):
        cases = [(b"{", "not valid JSON"), (b"[1]", "JSON object"),
                 (b'{"name": 5}', "must be a string"), (b'{"name": "a\\u0001b"}', "control"),
                 (json.dumps({"name": "x" * 300}).encode(), "1-255 bytes"),
                 (b'{"name": ""}', "1-255 bytes")]
        for raw, needle in cases:
            st, hdrs, doc, text = api(self.sl, "POST", "/api/v1/streams", raw=raw)
            self.assertEqual(st, 400, raw)
            self.assertEqual(hdrs["content-type"], "application/json")
            self.assertIn(needle, doc["error"], raw)
        st, _, doc, _ = api(self.sl, "POST", "/api/v1/streams", raw=b"{" + b" " * 70000 + b"}")
        self.assertEqual(st, 413)
        self.assertIn("too large", doc["error"])

    def test_unknown_ids_and_paths(self):
        for method, path in [("GET", "/api/v1/streams/nope"), ("DELETE", "/api/v1/streams/nope"),
                             ("POST", "/api/v1/streams/nope/rotate-key"),
                             ("POST", "/api/v1/streams/nope/disconnect"),
                             ("GET", "/api/v1/streams/bad%24id"),
                             ("GET", "/api/v1/streams/" + "x" * 80),
                             ("GET", "/api/v1/streams/demo/bogus"), ("GET", "/nothing"),
                             ("GET", "/api/v1/nothing")]:
            st, _, doc, _ = api(self.sl, method, path)
            self.assertEqual(st, 404, (method, path))
            self.assertIn("error", doc)

    def test_methods(self):
        for method, path, allow in [("DELETE", "/api/v1/streams", "GET, POST"),
                                    ("PUT", "/api/v1/streams/demo", "GET, PATCH, DELETE"),
                                    ("GET", "/api/v1/streams/demo/rotate-key", "POST"),
                                    ("GET", "/api/v1/streams/demo/disconnect", "POST"),
                                    ("POST", "/api/v1/stats", "GET"), ("POST", "/metrics", "GET")]:
            st, hdrs, doc, _ = api(self.sl, method, path)
            self.assertEqual(st, 405, (method, path))
            self.assertEqual(hdrs["allow"], allow)
            self.assertIn("error", doc)

    def test_stats_and_metrics(self):
        st, hdrs, doc, _ = api(self.sl, "GET", "/api/v1/stats")
        self.assertEqual(st, 200)
        self.assertIsInstance(doc, dict)
        st, hdrs, _, text = api(self.sl, "GET", "/metrics")
        self.assertEqual(st, 200)
        self.assertTrue(hdrs["content-type"].startswith("text/plain; version=0.0.4"))

    def test_cli(self):
        rc, out, err = cli(self.sl, "create", "cli shop")
        self.assertEqual(rc, 0, err)
        sid = re.search(r"id:\s+([0-9a-f]{32})", out).group(1)
        key = re.search(r"stream key:\s+(\S+)", out).group(1)
        self.assertIn("shown only now", out)
        rc, out, err = cli(self.sl, "list")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, sid + r"\s+idle\s+0\s+cli shop")
        self.assertNotIn(key, out)
        rc, out, err = cli(self.sl, "get", sid, "--json")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["name"], "cli shop")
        # a stream's own ladder: set (checked by the server), shown, cleared
        rc, out, err = cli(self.sl, "ladder", sid, '{"rungs": ["360p"], "preset": "superfast"}')
        self.assertEqual(rc, 0, err)
        self.assertIn(f'stream {sid}: ladder {{"rungs":["360p"],"preset":"superfast"}}, from its '
                      "next publish", out)
        rc, out, err = cli(self.sl, "ladder", sid, '{"rungs": ["999p"]}')
        self.assertEqual(rc, 1)
        self.assertIn('ladder.rungs[0]: unknown rung "999p"', err)
        rc, out, err = cli(self.sl, "ladder", sid)
        self.assertEqual((rc, out.strip()), (0, f'stream {sid}: ladder {{"rungs":["360p"],'
                                                 '"preset":"superfast"}'))
        rc, out, err = cli(self.sl, "ladder", sid, "null")
        self.assertEqual((rc, out.strip()), (0, f"stream {sid}: the server's ladder, from its "
                                                 "next publish"))
        self.assertEqual(cli(self.sl, "ladder", sid, "{rungs")[0], 2)
        rc, out, err = cli(self.sl, "rotate-key", sid, "--json")
        self.assertEqual(rc, 0, err)
        self.assertNotEqual(json.loads(out)["stream_key"], key)
        rc, out, err = cli(self.sl, "delete", sid)
        self.assertEqual(rc, 0, err)
        self.assertIn(f"stream {sid} deleted", out)
        rc, out, err = cli(self.sl, "delete", sid)
        self.assertEqual(rc, 1)
        self.assertIn("no such stream (HTTP 404)", err)
        # the same options as the server: environment and --admin-url
        rc, out, err = cli(self.sl, "list", port=False,
                           env={"SLUICE_ADMIN_LISTEN": f"0.0.0.0:{self.sl.admin_port}"})
        self.assertEqual(rc, 0, err)
        rc, out, err = cli(self.sl, "list", "--admin-url", f"http://127.0.0.1:{self.sl.admin_port}/",
                           port=False)
        self.assertEqual(rc, 0, err)
        # usage errors and an unreachable API
        self.assertEqual(cli(self.sl, "frobnicate")[0], 2)
        self.assertEqual(cli(self.sl, "delete")[0], 2)
        rc, out, err = cli(self.sl, "list", port=free_port())
        self.assertEqual(rc, 1)
        self.assertIn("cannot reach the admin API", err)


class AdminAccessTest(unittest.TestCase):
    def test_bearer_token(self):
        sl = Sluice("--admin-listen", "0.0.0.0:0", "--admin-token", TOKEN)
        try:
            port = int(re.search(r"admin port (\d+)", sl.log()).group(1))
            st, hdrs, doc, _ = api(sl, "GET", "/api/v1/streams", port=port)
            self.assertEqual(st, 401)
            self.assertIn("Bearer", hdrs["www-authenticate"])
            self.assertIn("missing", doc["error"])
            st, _, doc, _ = api(sl, "GET", "/api/v1/streams", token=TOKEN + "x", port=port)
            self.assertEqual(st, 401)
            self.assertIn("invalid", doc["error"])
            st, _, doc, _ = api(sl, "POST", "/api/v1/streams", {"name": "x"}, token="wrong",
                                port=port)
            self.assertEqual(st, 401)
            self.assertEqual(api(sl, "GET", "/metrics", port=port)[0], 401)
            st, _, doc, _ = api(sl, "GET", "/api/v1/streams", token=TOKEN, port=port)
            self.assertEqual(st, 200)
            # with a token, any address may ask
            addr = non_loopback_address()
            self.assertIsNotNone(addr, "this machine has no non-loopback address to test from")
            st, _, doc, _ = api(sl, "GET", "/api/v1/streams", token=TOKEN, source=addr, port=port)
            self.assertEqual(st, 200)
            # the CLI finds the token in the environment
            rc, out, err = cli(sl, "list", port=port, env={"SLUICE_ADMIN_TOKEN": TOKEN})
            self.assertEqual(rc, 0, err)
            rc, out, err = cli(sl, "list", port=port)
            self.assertEqual(rc, 1)
            self.assertIn("HTTP 401", err)
            self.assertNotIn(TOKEN, sl.log())
        finally:
            sl.close()

    def test_loopback_only_without_token(self):
        sl = Sluice("--admin-listen", "0.0.0.0:0")
        try:
            port = int(re.search(r"admin port (\d+)", sl.log()).group(1))
            self.assertEqual(api(sl, "GET", "/api/v1/streams", port=port)[0], 200)
            addr = non_loopback_address()
            self.assertIsNotNone(addr, "this machine has no non-loopback address to test from")
            st, _, doc, _ = api(sl, "GET", "/api/v1/streams", source=addr, port=port)
            self.assertEqual(st, 403)
            self.assertIn("loopback", doc["error"])
            st, _, doc, _ = api(sl, "POST", "/api/v1/streams", {"name": "x"}, source=addr,
                                port=port)
            self.assertEqual(st, 403)
        finally:
            sl.close()


def raw(port, method, path, headers=(), body=None):
    """One request with exactly these headers (http.client adds no
    Content-Type of its own): (status, lower-case headers, parsed JSON or
    None)."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=any(k.lower() == "host" for k, _ in headers),
                        skip_accept_encoding=True)
        for k, v in headers:
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        text = r.read()
        try:
            doc = json.loads(text) if text else None
        except ValueError:
            doc = None
        return r.status, {k.lower(): v for k, v in r.getheaders()}, doc
    finally:
        conn.close()


class AdminSurfaceTest(unittest.TestCase):
    """Issue 19's take-over probes (../shared/reviews/security.md S1-S4),
    each refused: DNS rebinding (a foreign Host), CSRF (a cross-site Origin
    or Sec-Fetch-Site, a "simple" Content-Type, in token mode with Basic
    credentials too), framing the dashboard, and a same-host proxy taken for
    loopback."""

    @classmethod
    def setUpClass(cls):
        cls.sl = Sluice("--admin-allowed-hosts", "Admin.Example, ops.example",
                        streams=(("demo", "demo-secret-key-1"),))
        cls.port = cls.sl.admin_port

    @classmethod
    def tearDownClass(cls):
        cls.sl.close()

    def key_of_rotate(self, headers=(), body=None, path="/api/v1/streams/demo/rotate-key"):
        st, _, doc = raw(self.port, "POST", path, headers, body)
        return st, (doc or {}).get("stream_key"), doc

    def test_rebinding_hosts_refused(self):
        port = self.port
        for method, path in (("GET", "/api/v1/streams"), ("POST", "/api/v1/streams/demo/rotate-key"),
                             ("DELETE", "/api/v1/streams/demo"), ("GET", "/dashboard"),
                             ("GET", "/metrics")):
            st, _, doc = raw(port, method, path, [("Host", f"rebind.attacker.example:{port}")])
            self.assertEqual(st, 421, (method, path))
            self.assertIn("--admin-allowed-hosts", doc["error"])
        self.assertIn("Host 'rebind.attacker.example' is not a name of this listener", self.sl.log())
        # The stream survived the DELETE and its key the rotate.
        self.assertEqual(raw(port, "GET", "/api/v1/streams/demo")[0], 200)
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"[::1]:{port}",
                     "app.localhost:9000", "admin.example", f"OPS.example.:{port}", "10.1.2.3:8081"):
            st, _, _ = raw(port, "GET", "/api/v1/streams", [("Host", host)])
            self.assertEqual(st, 200, host)
        for host in ("example.com", "admin.example.evil", "localhost.evil", "a:b:c", "[::1"):
            self.assertEqual(raw(port, "GET", "/api/v1/streams", [("Host", host)])[0], 421, host)

    def test_cross_site_requests_refused(self):
        port, me = self.port, f"127.0.0.1:{self.port}"
        own = [("Host", me)]
        create = json.dumps({"name": "csrf"}).encode()
        refused = [
            # the review's probes 2, 3 and a form with no body
            (own + [("Origin", "https://evil.example"), ("Content-Type", "text/plain"),
                    ("Sec-Fetch-Site", "cross-site")], create, "/api/v1/streams", 403),
            (own + [("Origin", "https://evil.example"),
                    ("Content-Type", "application/x-www-form-urlencoded")], b"x=1",
             "/api/v1/streams/demo/rotate-key", 403),
            (own + [("Content-Type", "application/x-www-form-urlencoded")], b"",
             "/api/v1/streams/demo/rotate-key", 415),
            (own + [("Content-Type", "text/plain")], create, "/api/v1/streams", 415),
            (own + [("Content-Type", "multipart/form-data; boundary=x")], b"",
             "/api/v1/streams/demo/disconnect", 415),
            # a body that names no type is not JSON either
            (own, create, "/api/v1/streams", 415),
            (own + [("Sec-Fetch-Site", "same-site"), ("Content-Type", "application/json")], create,
             "/api/v1/streams", 403),
            (own + [("Origin", "null"), ("Content-Type", "application/json")], create,
             "/api/v1/streams", 403),
            (own + [("Origin", f"http://{me}.evil.example")], None, "/api/v1/streams/demo/rotate-key", 403),
        ]
        for headers, body, path, want in refused:
            st, _, doc = raw(port, "POST", path, headers, body)
            self.assertEqual(st, want, (headers, body, path, doc))
        st, _, doc = raw(port, "GET", "/api/v1/streams")
        self.assertEqual([s["id"] for s in doc["streams"]], ["demo"], "a refused create made a stream")
        # The dashboard's own requests, a non-browser client's, the CLI's.
        st, _, doc = raw(port, "POST", "/api/v1/streams",
                         own + [("Origin", f"http://{me}"), ("Sec-Fetch-Site", "same-origin"),
                                ("Content-Type", "application/json; charset=utf-8")], create)
        self.assertEqual(st, 201, doc)
        self.assertEqual(self.key_of_rotate(own)[0], 200)
        self.assertEqual(self.key_of_rotate(own + [("Content-Type", "application/json")])[0], 200)
        self.assertEqual(raw(port, "DELETE", f"/api/v1/streams/{doc['id']}", own)[0], 204)
        rc, out, err = cli(self.sl, "rotate-key", "demo")
        self.assertEqual(rc, 0, err)

    def test_dashboard_never_framed_player_may_be(self):
        st, hdrs, _ = raw(self.port, "GET", "/dashboard")
        self.assertEqual(st, 200)
        self.assertIn("frame-ancestors 'none'", hdrs["content-security-policy"])
        self.assertEqual(hdrs["x-frame-options"], "DENY")
        st, hdrs, _ = http(self.sl.url("/player/demo"))
        self.assertEqual(st, 200)
        self.assertTrue(hdrs["content-security-policy"].endswith("frame-ancestors *"))
        self.assertNotIn("x-frame-options", hdrs)

    def test_proxied_request_is_not_loopback(self):
        for h in ("X-Forwarded-For", "Forwarded", "X-Real-IP", "Via", "X-Forwarded-Proto"):
            st, _, doc = raw(self.port, "GET", "/api/v1/streams", [(h, "for=203.0.113.9")])
            self.assertEqual(st, 403, h)
            self.assertIn("--admin-token", doc["error"])
        self.assertIn("requests through a proxy are refused", self.sl.log())


class AdminSurfaceTokenTest(unittest.TestCase):
    def test_token_mode_refuses_cross_site_and_lets_a_proxy_through(self):
        sl = Sluice("--admin-token", TOKEN)
        try:
            import base64
            basic = "Basic " + base64.b64encode(f"x:{TOKEN}".encode()).decode()
            create = json.dumps({"name": "csrf2"}).encode()
            # The review's probe 11: cached Basic credentials on a cross-site form.
            st, _, _ = raw(sl.admin_port, "POST", "/api/v1/streams",
                           [("Authorization", basic), ("Origin", "https://evil.example"),
                            ("Content-Type", "text/plain")], create)
            self.assertEqual(st, 403)
            # Behind a proxy with the token: answered.
            st, _, doc = raw(sl.admin_port, "POST", "/api/v1/streams",
                             [("Authorization", f"Bearer {TOKEN}"), ("X-Forwarded-For", "203.0.113.9"),
                              ("Content-Type", "application/json")], create)
            self.assertEqual(st, 201, doc)
            self.assertNotIn(doc["stream_key"], sl.log())
        finally:
            sl.close()


class StreamLifecycleTest(unittest.TestCase):
    def test_create_publish_rotate_delete(self):
        sl = Sluice()
        pubs = []
        try:
            st, _, created, _ = api(sl, "POST", "/api/v1/streams", {"name": "lifecycle"})
            self.assertEqual(st, 201)
            sid, key = created["id"], created["stream_key"]
            pub = publish(f"{created['rtmp_url']}/{key}", seconds=60, size="640x360")
            pubs.append(pub)
            doc = wait_state(sl, sid, "live")
            # the status object while live, with a bit rate measured over a
            # window: give the window time to fill
            def measured():
                _, _, d, _ = api(sl, "GET", f"/api/v1/streams/{sid}")
                return d if d.get("ingest", {}).get("uptime_s", 0) >= 6 else None
            doc = wait_for(measured, 30, "six seconds of ingest")
            ing = doc["ingest"]
            # ffmpeg sends 1500 kb/s video + 128 kb/s audio
            self.assertGreater(ing["bitrate_kbps"], 1628 * 0.5, ing)
            self.assertLess(ing["bitrate_kbps"], 1628 * 1.6, ing)
            self.assertAlmostEqual(ing["fps"], 30, delta=4)
            self.assertEqual((ing["width"], ing["height"]), (640, 360))
            self.assertEqual((ing["video_codec"], ing["audio_codec"]), ("h264", "aac"))
            self.assertTrue(doc["renditions"])
            self.assertIn(doc["health"], ("good", "fair", "poor"))
            self.assertIn("viewers", doc)
            st, _, lst, _ = api(sl, "GET", "/api/v1/streams")
            self.assertIn("live", [s["state"] for s in lst["streams"] if s["id"] == sid])

            # rotate (policy "finish"): the live publisher goes on, the old
            # key is refused from now on
            st, _, rot, _ = api(sl, "POST", f"/api/v1/streams/{sid}/rotate-key")
            self.assertEqual(st, 200)
            new_key = rot["stream_key"]
            self.assertNotEqual(new_key, key)
            old = publish(sl.rtmp_url(key), seconds=5, size="320x240")
            rc, err = finish(old, 30)
            self.assertNotEqual(rc, 0)
            self.assertIsNone(pub.poll(), "rotation cut a publisher it should let finish")
            self.assertEqual(wait_state(sl, sid, "live")["id"], sid)

            # delete: the publisher is cut, the stream is gone, no key works
            st, _, _, text = api(sl, "DELETE", f"/api/v1/streams/{sid}")
            self.assertEqual(st, 204)
            self.assertEqual(text, b"")
            self.assertTrue(exited(pub, 15), "delete did not disconnect the publisher")
            self.assertEqual(api(sl, "GET", f"/api/v1/streams/{sid}")[0], 404)
            st, _, lst, _ = api(sl, "GET", "/api/v1/streams")
            self.assertNotIn(sid, [s["id"] for s in lst["streams"]])
            again = publish(sl.rtmp_url(new_key), seconds=5, size="320x240")
            rc, err = finish(again, 30)
            self.assertNotEqual(rc, 0)
            log = sl.log()
            self.assertIn(f"stream {sid} deleted", log)
            for k in (key, new_key):
                self.assertNotIn(k, log)
        finally:
            sl.close(*pubs)

    def test_disconnect_and_rotate_cut(self):
        sl = Sluice("--key-rotation", "cut", streams=(("shop", "shop-secret-key-1"),))
        pubs = []
        try:
            pub = publish(sl.rtmp_url("shop-secret-key-1"), seconds=60, size="320x240")
            pubs.append(pub)
            wait_state(sl, "shop", "live")
            st, _, _, _ = api(sl, "POST", "/api/v1/streams/shop/disconnect")
            self.assertEqual(st, 204)
            self.assertTrue(exited(pub, 15), "disconnect did not cut the publisher")
            wait_state(sl, "shop", "idle")
            # the stream and its key are still there: publishing again works
            pub2 = publish(sl.rtmp_url("shop-secret-key-1"), seconds=60, size="320x240")
            pubs.append(pub2)
            wait_state(sl, "shop", "live")
            # --key-rotation cut: rotating ends the live publish at once
            st, _, rot, _ = api(sl, "POST", "/api/v1/streams/shop/rotate-key")
            self.assertEqual(st, 200)
            self.assertTrue(exited(pub2, 15), "rotate with --key-rotation cut did not cut")
            pub3 = publish(sl.rtmp_url(rot["stream_key"]), seconds=60, size="320x240")
            pubs.append(pub3)
            wait_state(sl, "shop", "live")
        finally:
            sl.close(*pubs)


class AdminRedisTest(unittest.TestCase):
    """Two nodes on one Redis: the registry is shared, and a delete on the
    origin node cuts the publisher on the ingest node."""

    def test_cross_node(self):
        port = shared_redis()
        subprocess.run(["redis-cli", "-p", str(port), "-n", str(REDIS_DB), "flushdb"],
                       check=True, capture_output=True)
        store = f"redis://127.0.0.1:{port}/{REDIS_DB}"
        ingest = Sluice("--store", store, streams=())
        origin = Sluice("--store", store, "--role", "origin", streams=())
        pubs = []
        try:
            ladder = {"rungs": ["360p"], "preset": "superfast"}
            st, _, created, _ = api(origin, "POST", "/api/v1/streams",
                                    {"name": "cross", "ladder": ladder})
            self.assertEqual(st, 201)
            sid = created["id"]
            st, _, doc, _ = api(ingest, "GET", f"/api/v1/streams/{sid}")
            self.assertEqual((st, doc["name"], doc["ladder"]), (200, "cross", ladder))
            pub = publish(ingest.rtmp_url(created["stream_key"]), seconds=60, size="320x240")
            pubs.append(pub)
            wait_state(ingest, sid, "live")
            wait_state(origin, sid, "live")  # status travels through the store
            # The ingest node applied the ladder the origin node stored.
            wait_for(lambda: api(origin, "GET", f"/api/v1/streams/{sid}")[2]
                     .get("transcode", {}).get("preset") == "superfast", 20,
                     "the stream's own preset in the status")
            self.assertEqual(api(origin, "GET", f"/api/v1/streams/{sid}")[2]["transcode"]
                             ["ladder_source"], "stream")
            st, _, _, _ = api(origin, "DELETE", f"/api/v1/streams/{sid}")
            self.assertEqual(st, 204)
            self.assertTrue(exited(pub, 20), "a delete on another node did not cut the publisher")
            self.assertEqual(api(ingest, "GET", f"/api/v1/streams/{sid}")[0], 404)
        finally:
            try:
                origin.close()
            finally:
                ingest.close(*pubs)


if __name__ == "__main__":
    unittest.main()


class ConfigReloadTest(unittest.TestCase):
    def write(self, path, text):
        with open(path, "w") as f:
            f.write(text)

    def test_sighup(self):
        import signal
        import tempfile
        path = tempfile.mktemp(prefix="sluice-reload-", suffix=".ini")
        token2 = TOKEN + "-two"
        self.write(path, f"[sluice]\nstream = a:key-of-a-000001\nstream = c:key-of-c-000001\n"
                         f"admin-token = {TOKEN}\n")
        sl = Sluice("--config", path, streams=())
        try:
            self.assertEqual(api(sl, "GET", "/api/v1/streams/a", token=TOKEN)[0], 200)
            self.write(path, f"[sluice]\nstream = b:key-of-b-000001\nstream = c:key-of-c-000002\n"
                             f"admin-token = {token2}\nsegment-duration = 4\n"
                             f"rtmp-max-connections-per-ip = 1\nrtmp-stall-timeout = 5000\n")
            sl.proc.send_signal(signal.SIGHUP)
            line = wait_for(lambda: re.search(r"reload done; .*", sl.log()), 10, "reload")
            self.assertIn("changed and applied: stream, rtmp-stall-timeout, "
                          "rtmp-max-connections-per-ip, admin-token", line.group(0))
            self.assertIn("needing a restart: segment-duration", line.group(0))
            # Reloading the same file again: what was applied is not named
            # again (rtmp-stall-timeout used to be, at every reload); what
            # needs a restart still is.
            sl.proc.send_signal(signal.SIGHUP)
            def two_reloads():
                found = re.findall(r"reload done; .*", sl.log())
                return found if len(found) >= 2 else None
            lines = wait_for(two_reloads, 10, "second reload")
            self.assertIn("changed and applied: nothing; changed but needing a restart: "
                          "segment-duration", lines[1])
            self.assertEqual(api(sl, "GET", "/api/v1/streams", token=TOKEN)[0], 401)
            self.assertEqual(api(sl, "GET", "/api/v1/streams/a", token=token2)[0], 404)
            self.assertEqual(api(sl, "GET", "/api/v1/streams/b", token=token2)[0], 200)
            self.assertEqual(api(sl, "GET", "/api/v1/streams/c", token=token2)[0], 200)
            # c's new key works, its old one does not
            rc, err = finish(publish(sl.rtmp_url("key-of-c-000001"), seconds=2, size="320x240"), 30)
            self.assertNotEqual(rc, 0)
            wait_for(lambda: "unknown stream key" in sl.log(), 10, "refusal of the old key")
            pub = publish(sl.rtmp_url("key-of-c-000002"), seconds=60, size="320x240")
            try:
                wait_state(sl, "c", "live", token=token2)
            finally:
                pub.kill()
                pub.communicate()
            # the new limit: a second connection from this address is closed
            wait_for(lambda: "limits reloaded" in sl.log(), 10, "limits applied")
            a = socket.create_connection(("127.0.0.1", sl.rtmp_port))
            b = socket.create_connection(("127.0.0.1", sl.rtmp_port))
            try:
                b.settimeout(5)
                self.assertEqual(b.recv(1), b"", "a second connection was not refused")
            finally:
                a.close()
                b.close()
            # a configuration that does not load changes nothing
            self.write(path, "[sluice]\nbogus = 1\n")
            sl.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: "reload refused, nothing changed" in sl.log(), 10, "refusal")
            self.assertIn(f"{path}:2: unknown option 'bogus'", sl.log())
            self.assertEqual(api(sl, "GET", "/api/v1/streams/b", token=token2)[0], 200)
            for k in ("key-of-a-000001", "key-of-b-000001", "key-of-c-000001", "key-of-c-000002",
                      TOKEN):
                self.assertNotIn(k, sl.log())
        finally:
            sl.close()
            os.unlink(path)

    def test_reloadable_options_are_documented(self):
        """The options --print-config marks "applied on reload" (the option
        table's CONFIG_RELOAD) are the ones docs/configuration.md lists
        under "Reloading (SIGHUP)"."""
        out = subprocess.run([SLUICE_BIN, "--print-config"], capture_output=True, text=True,
                             timeout=20).stdout
        marked = set(re.findall(r"# applied on reload \(SIGHUP\)\n(?:# .*\n)*#([a-z0-9-]+) =",
                                out))
        self.assertIn("rtmp-stall-timeout", marked)
        every = set(re.findall(r"(?m)^#([a-z0-9-]+) =", out))
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
        with open(os.path.join(root, "docs", "configuration.md")) as f:
            doc = f.read()
        section = doc.split("## Reloading (SIGHUP)", 1)[1].split("\n## ", 1)[0]
        listed = section.split("These are the options", 1)[0]
        named = set()
        for pat in re.findall(r"`--([a-z0-9*-]+)`", listed):
            rx = re.compile("^" + re.escape(pat).replace(r"\*", "[a-z0-9-]*") + "$")
            named |= {n for n in every if rx.match(n)}
        named |= {"stream"} if "`--stream` entries" in listed else set()
        self.assertEqual(sorted(named - marked), [], "documented as reloaded, not reloadable")
        self.assertEqual(sorted(marked - named), [], "reloadable, not documented")

    def test_bad_file_refuses_to_start(self):
        import tempfile
        path = tempfile.mktemp(prefix="sluice-bad-", suffix=".ini")
        self.write(path, "[sluice]\n; fine\nhttp-listen = 127.0.0.1:0\nplaylist-segments = many\n")
        try:
            p = subprocess.run([SLUICE_BIN, "--config", path], capture_output=True, text=True,
                               timeout=20)
            self.assertEqual(p.returncode, 2)
            self.assertIn(f"{path}:4 (playlist-segments): 'many' is not a number", p.stderr)
        finally:
            os.unlink(path)
