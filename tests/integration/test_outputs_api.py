"""The simulcast outputs API (issue 24; control/outputs_api.c) against the
real binary, without a publisher: create, list, get, patch and delete a
stream's outputs, the 400/404/405/409 answers, the admin API's token and
CSRF rules on these routes, masking (a destination's key is never in an
answer, the log or /metrics), and definitions that survive a restart on the
same --state-dir. The live states are the engine's (its own test); a stream
that is not live shows every output "idle"."""

import os
import shutil
import subprocess
import tempfile
import unittest

from harness import Sluice, http, shared_redis
from test_admin import api, cli

TOKEN = "outputs-admin-token-0123456789"
KEY = "yt-SECRET-abcd-efgh-ijkl"
PASS = "srt-SECRET-passphrase-1"
FB_SIG = "fb-SECRET-sig-42"
YT = f"rtmp://a.rtmp.youtube.com/live2/{KEY}"
SRT = f"srt://127.0.0.1:9000?streamid={KEY}x&passphrase={PASS}&latency=200"
SECRETS = (KEY, PASS, FB_SIG)
REDIS_DB = 14


class OutputsApiTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sluice-outputs-test-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def call(self, sl, method, path, body=None, **kw):
        st, hdrs, doc, text = api(sl, method, path, body, token=TOKEN, **kw)
        for s in SECRETS:
            self.assertNotIn(s.encode(), text, f"{method} {path} answered a secret")
        return st, hdrs, doc

    def assert_no_secret(self, text, where):
        for s in SECRETS:
            self.assertNotIn(s, text, f"a destination's secret in {where}")

    def test_outputs_api(self):
        sl = Sluice("--admin-token", TOKEN, state_dir=self.dir)
        try:
            st, _, s = self.call(sl, "POST", "/api/v1/streams", {"name": "simulcast"})
            self.assertEqual(st, 201)
            base = f"/api/v1/streams/{s['id']}/outputs"

            st, _, yt = self.call(sl, "POST", base, {"url": YT})
            self.assertEqual(st, 201)
            self.assertRegex(yt["id"], r"^o[0-9a-f]{16}$")
            self.assertEqual((yt["url"], yt["rendition"], yt["enabled"], yt["state"]),
                             ("rtmp://a.rtmp.youtube.com/live2/****", "source", True, "idle"))
            st, _, srt = self.call(sl, "POST", base,
                                   {"url": SRT, "rendition": "720p", "enabled": False})
            self.assertEqual(st, 201)
            self.assertEqual(srt["url"], "srt://127.0.0.1:9000?streamid=****&passphrase=****"
                                         "&latency=200")
            st, _, fb = self.call(sl, "POST", base, {
                "url": f"rtmps://live-api-s.facebook.com:443/rtmp/FB-1?s_sc={FB_SIG}"})
            self.assertEqual(st, 201)
            self.assertEqual(fb["url"], "rtmps://live-api-s.facebook.com:443/rtmp/****")

            st, _, doc = self.call(sl, "GET", base)
            self.assertEqual(st, 200)
            self.assertEqual([o["id"] for o in doc["outputs"]], [yt["id"], srt["id"], fb["id"]])
            # Not live: every output idle, with the documented fields.
            for o in doc["outputs"]:
                self.assertEqual(o["state"], "idle")
                for k in ("id", "url", "rendition", "enabled", "state", "bytes", "bitrate_kbps",
                          "dropped_packets", "skips", "connected_since", "last_error",
                          "retries", "created"):
                    self.assertIn(k, o)
            st, _, one = self.call(sl, "GET", f"{base}/{srt['id']}")
            self.assertEqual((st, one["rendition"], one["enabled"]), (200, "720p", False))

            st, _, p = self.call(sl, "PATCH", f"{base}/{srt['id']}",
                                 {"enabled": True, "rendition": "source"})
            self.assertEqual((st, p["enabled"], p["rendition"], p["state"]),
                             (200, True, "source", "idle"))
            st, _, p = self.call(sl, "PATCH", f"{base}/{fb['id']}",
                                 {"url": f"rtmp://live.twitch.tv/app/live_{KEY}"})
            self.assertEqual((st, p["url"]), (200, "rtmp://live.twitch.tv/app/****"))

            # Refusals: 400 naming the field, 404, 405, 409.
            for body, field in (({"url": "http://example.com/x"}, "url"),
                                ({"url": "rtmp://host-only"}, "url"),
                                ({}, "url"),
                                ({"url": YT, "rendition": "Bad Name"}, "rendition"),
                                ({"url": YT, "enabled": "yes"}, "enabled")):
                st, _, e = self.call(sl, "POST", base, body)
                self.assertEqual(st, 400, body)
                self.assertIn(field, e["error"])
            st, _, e = self.call(sl, "PATCH", f"{base}/{yt['id']}", {"rendition": "x y"})
            self.assertEqual(st, 400)
            self.assertIn("rendition", e["error"])
            self.assertEqual(self.call(sl, "POST", "/api/v1/streams/nosuch/outputs",
                                       {"url": YT})[0], 404)
            self.assertEqual(self.call(sl, "GET", f"{base}/o0123456789abcdef")[0], 404)
            self.assertEqual(self.call(sl, "DELETE", f"{base}/o0123456789abcdef")[0], 404)
            st, hdrs, _ = self.call(sl, "PUT", base, {"url": YT})
            self.assertEqual((st, hdrs.get("allow")), (405, "GET, POST"))
            for _ in range(5):
                self.assertEqual(self.call(sl, "POST", base, {"url": "rtmp://h/app/k"})[0], 201)
            st, _, e = self.call(sl, "POST", base, {"url": "rtmp://h/app/k"})
            self.assertEqual(st, 409)

            # The admin API's rules hold here too: the token, and no
            # cross-site or non-JSON change.
            self.assertEqual(api(sl, "GET", base)[0], 401)
            auth = {"Authorization": f"Bearer {TOKEN}"}
            st = http(sl.admin_url(f"{base}/{yt['id']}"), method="DELETE",
                      headers=dict(auth, **{"Sec-Fetch-Site": "cross-site"}))[0]
            self.assertEqual(st, 403)
            st = http(sl.admin_url(f"{base}/{yt['id']}"), method="DELETE",
                      headers=dict(auth, **{"Content-Type": "text/plain"}))[0]
            self.assertEqual(st, 415)
            self.assertEqual(self.call(sl, "DELETE", f"{base}/{yt['id']}")[0], 204)
            self.assertEqual(self.call(sl, "GET", f"{base}/{yt['id']}")[0], 404)

            # The CLI lists them (read only), masked.
            rc, out, err = cli(sl, "outputs", s["id"], env={"SLUICE_ADMIN_TOKEN": TOKEN})
            self.assertEqual(rc, 0, err)
            self.assertEqual(len(out.strip().splitlines()), 7)
            self.assertRegex(out, rf"{srt['id']} +idle +source +srt://127\.0\.0\.1:9000\?"
                                  r"streamid=\*\*\*\*&passphrase=\*\*\*\*&latency=200\n")
            self.assert_no_secret(out, "the CLI's output")
            rc, out, err = cli(sl, "outputs", "nosuch", env={"SLUICE_ADMIN_TOKEN": TOKEN})
            self.assertEqual(rc, 1)
            self.assertIn("no such stream", err)

            st, _, status = self.call(sl, "GET", f"/api/v1/streams/{s['id']}")
            self.assertEqual((st, status["outputs"], status["state"]), (200, 7, "idle"))
            st, _, body = http(sl.admin_url("/metrics"),
                               headers={"Authorization": f"Bearer {TOKEN}"})[:3]
            self.assertEqual(st, 200)
            self.assert_no_secret(body.decode(), "/metrics")
            before = {o["id"]: o for o in self.call(sl, "GET", base)[2]["outputs"]}
            log = sl.stop()
            self.assert_no_secret(log, "the log")
            self.assertIn(f"output {srt['id']} added: srt://127.0.0.1:9000?streamid=****", log)
        finally:
            sl.kill()

        # The registry keeps the URLs (in clear: sluice has to send them).
        with open(os.path.join(self.dir, "registry.db"), "rb") as f:
            raw = f.read()
        wal = os.path.join(self.dir, "registry.db-wal")
        if os.path.exists(wal):
            with open(wal, "rb") as f:
                raw += f.read()
        self.assertIn(PASS.encode(), raw)

        sl = Sluice("--admin-token", TOKEN, state_dir=self.dir)
        try:
            st, _, doc = self.call(sl, "GET", base)
            self.assertEqual(st, 200)
            after = {o["id"]: o for o in doc["outputs"]}
            self.assertEqual(after, before)
            self.assertEqual(after[srt["id"]]["enabled"], True)
            self.assertEqual(after[fb["id"]]["url"], "rtmp://live.twitch.tv/app/****")
            self.assert_no_secret(sl.stop(), "the log after the restart")
        finally:
            sl.kill()


class OutputsRedisTest(unittest.TestCase):
    """Two nodes on one Redis: outputs set through one node's API are the
    other's, kept in the {registry}:outputs hash, and gone with the stream."""

    def test_cross_node(self):
        port = shared_redis()

        def redis(*args):
            return subprocess.run(["redis-cli", "-p", str(port), "-n", str(REDIS_DB), *args],
                                  check=True, capture_output=True, text=True).stdout
        redis("flushdb")
        store = f"redis://127.0.0.1:{port}/{REDIS_DB}"
        a = Sluice("--store", store, streams=())
        b = Sluice("--store", store, "--role", "origin", streams=())
        try:
            st, _, s, _ = api(b, "POST", "/api/v1/streams", {"name": "shared"})
            self.assertEqual(st, 201)
            base = f"/api/v1/streams/{s['id']}/outputs"
            st, _, o, text = api(b, "POST", base, {"url": YT, "rendition": "480p"})
            self.assertEqual(st, 201)
            self.assertNotIn(KEY.encode(), text)
            st, _, doc, text = api(a, "GET", base)
            self.assertEqual(st, 200)
            self.assertNotIn(KEY.encode(), text)
            self.assertEqual([(x["id"], x["url"], x["rendition"], x["state"])
                              for x in doc["outputs"]],
                             [(o["id"], "rtmp://a.rtmp.youtube.com/live2/****", "480p", "idle")])
            self.assertIn(YT, redis("hget", "sluice:{registry}:outputs", s["id"]))
            self.assertEqual(api(a, "PATCH", f"{base}/{o['id']}", {"enabled": False})[0], 200)
            self.assertFalse(api(b, "GET", f"{base}/{o['id']}")[2]["enabled"])
            self.assertEqual(api(a, "DELETE", f"/api/v1/streams/{s['id']}")[0], 204)
            self.assertEqual(redis("hget", "sluice:{registry}:outputs", s["id"]).strip(), "")
            self.assertEqual(api(b, "GET", base)[0], 404)
            for node in (a, b):
                self.assertNotIn(KEY, node.log())
        finally:
            try:
                b.close()
            finally:
                a.close()


if __name__ == "__main__":
    unittest.main()
