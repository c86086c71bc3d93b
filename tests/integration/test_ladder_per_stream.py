"""Per-stream ladders (issue 23, docs/api.md "Per-stream ladders") against
the real binary with real ffmpeg publishers: a stream created with its own
ladder (two rungs, one with its own bit rate, a preset, passthrough never)
is packaged with exactly those rungs and says so in its status; a PATCH
while it is live changes nothing until it publishes again; invalid ladders
are 400s that name the field; the publish-authorisation webhook's ladder
wins for that publish, and an invalid one is logged and ignored (the
stream's own applies) rather than refusing the seller.

One sluice (memory store, a webhook receiver of test_webhook.py) and one
small source file for the whole class; publishes are short, only the live
one runs in real time. The Redis side of the ladder (the registry field)
is covered by the store contract (tests/unit/store_contract.c, which
test_store_redis runs against a real redis-server)."""

import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import Sluice, finish, http, parse_master, wait_for
from test_admin import api
from test_webhook import Hook

LADDER_A = {"rungs": [{"name": "480p", "bitrate_kbps": 900}, "360p"], "preset": "superfast",
            "passthrough": "never"}
LADDER_B = {"rungs": ["360p"], "preset": "ultrafast"}


def make_clip(path, seconds):
    """854x480 H.264 (GOP 1 s) + AAC, as FLV: a source as tall as 480p."""
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
           "-f", "lavfi", "-i", "testsrc2=size=854x480:rate=25",
           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
           "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-bf", "0",
           "-g", "25", "-keyint_min", "25", "-sc_threshold", "0", "-pix_fmt", "yuv420p",
           "-b:v", "1500k", "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-f", "flv", path]
    out = subprocess.run(cmd, capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr.decode()[-2000:]


class LadderPerStreamTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="sluice-lps-")
        cls.clip = os.path.join(cls.dir, "clip.flv")
        make_clip(cls.clip, 3)
        cls.answers = {}  # stream id -> the webhook's answer body
        cls.keys = []
        cls.hook = Hook(lambda r: (200, json.dumps(cls.answers.get(r["body"].get("stream_id"), {})
                                                   if r["body"].get("event") == "publish"
                                                   else {}).encode(), 0))
        cls.sl = Sluice("--webhook-url", cls.hook.url, "--segment-duration", "1",
                        "--part-duration", "0", "--reconnect-window", "0",
                        "--ladder", "720p,480p,360p", streams=())

    @classmethod
    def tearDownClass(cls):
        try:
            log = cls.sl.log()
            for key in cls.keys:
                assert key not in log, "a stream key appears in the log"
            cls.sl.close()
        finally:
            cls.hook.close()
            shutil.rmtree(cls.dir, ignore_errors=True)

    # ---- helpers ----------------------------------------------------------

    def create(self, body):
        st, _, doc, raw = api(self.sl, "POST", "/api/v1/streams", body)
        self.assertEqual(st, 201, raw)
        self.keys.append(doc["stream_key"])
        return doc

    def publish(self, key, realtime=False):
        cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error"]
        if realtime:
            cmd += ["-re"]
        cmd += ["-i", self.clip, "-c", "copy", "-f", "flv", f"{self.sl.rtmp_url(key)}"]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def master(self, sid):
        st, _, body = http(self.sl.url(f"/hls/{sid}/master.m3u8"))
        return parse_master(body.decode())[1] if st == 200 else None

    def wait_variants(self, sid, names, timeout=20):
        """The master playlist lists exactly `names` (by rendition)."""
        def ok():
            v = self.master(sid)
            return v if v and sorted(u.split("/")[0] for _, u in v) == sorted(names) else None
        return wait_for(ok, timeout, f"{sid}'s master with {names}")

    def wait_idle(self, sid, timeout=20):
        wait_for(lambda: api(self.sl, "GET", f"/api/v1/streams/{sid}")[2]["state"] == "idle",
                 timeout, f"{sid} idle")

    def run_publish(self, key):
        rc, err = finish(self.publish(key), 30)
        self.assertEqual(rc, 0, err)

    # ---- tests --------------------------------------------------------------

    def test_invalid_ladders_are_400_with_the_field(self):
        cases = [
            ("720p", "ladder must be an object"),
            ({"rungs": []}, "ladder.rungs needs at least one rung"),
            ({"rungs": ["480p", "480p"]}, "ladder.rungs[1]: \"480p\" is listed twice"),
            ({"rungs": ["900p"]}, "ladder.rungs[0]: unknown rung \"900p\""),
            ({"rungs": ["1080p", "720p", "480p", "360p", "360p"]}, "at most 4"),
            ({"rungs": [{"name": "360p", "bitrate_kbps": 50}]},
             "ladder.rungs[0].bitrate_kbps: 50 is out of range (100 to 20000 kb/s)"),
            ({"preset": "warp"}, "ladder.preset: \"warp\" is not an x264 preset"),
            ({"passthrough": "always"}, "ladder.passthrough must be \"auto\" or \"never\""),
            ({"rung": ["360p"]}, "ladder: unknown field \"rung\""),
        ]
        made = self.create({"name": "plain"})
        self.assertIsNone(made["ladder"])
        for ladder, want in cases:
            st, _, doc, raw = api(self.sl, "POST", "/api/v1/streams", {"name": "x", "ladder": ladder})
            self.assertEqual(st, 400, raw)
            self.assertIn(want, doc["error"])
            st, _, doc, raw = api(self.sl, "PATCH", f"/api/v1/streams/{made['id']}",
                                  {"ladder": ladder})
            self.assertEqual(st, 400, raw)
            self.assertIn(want, doc["error"])
        # Nothing was made or changed by a refusal.
        listing = api(self.sl, "GET", "/api/v1/streams")[2]["streams"]
        self.assertNotIn("x", [s["name"] for s in listing])
        self.assertIsNone(api(self.sl, "GET", f"/api/v1/streams/{made['id']}")[2]["ladder"])
        st, _, doc, _ = api(self.sl, "PATCH", f"/api/v1/streams/{made['id']}", {"name": "y"})
        self.assertEqual(st, 400)
        self.assertIn("only \"record\" and \"ladder\"", doc["error"])
        self.assertEqual(api(self.sl, "PATCH", "/api/v1/streams/nope", {"ladder": None})[0], 404)
        # Set, listed, and cleared back to the server's with null.
        st, _, doc, _ = api(self.sl, "PATCH", f"/api/v1/streams/{made['id']}",
                            {"ladder": {"preset": "faster"}})
        self.assertEqual((st, doc["ladder"], doc["applies"]),
                         (200, {"preset": "faster"}, "next_publish"))
        listing = api(self.sl, "GET", "/api/v1/streams")[2]["streams"]
        self.assertEqual({s["id"]: s for s in listing}[made["id"]]["ladder"], {"preset": "faster"})
        st, _, doc, _ = api(self.sl, "PATCH", f"/api/v1/streams/{made['id']}", {"ladder": None})
        self.assertEqual((st, doc["ladder"]), (200, None))

    def test_stream_ladder_applies_and_patch_waits_for_next_publish(self):
        made = self.create({"name": "tier-a", "ladder": LADDER_A})
        sid, key = made["id"], made["stream_key"]
        self.assertEqual(made["ladder"], LADDER_A)
        self.assertEqual(api(self.sl, "GET", f"/api/v1/streams/{sid}")[2]["ladder"], LADDER_A)

        pub = self.publish(key, realtime=True)
        try:
            def live():
                doc = api(self.sl, "GET", f"/api/v1/streams/{sid}")[2]
                return doc if doc["state"] == "live" and len(doc.get("renditions", [])) == 2 else None
            doc = wait_for(live, 15, "live with two renditions")
            rends = {r["name"]: r for r in doc["renditions"]}
            self.assertEqual(sorted(rends), ["360p", "480p"])
            self.assertEqual(rends["480p"]["target_kbps"], 900)
            self.assertEqual(rends["360p"]["target_kbps"], 800)
            self.assertFalse(any(r["passthrough"] for r in rends.values()))
            self.assertEqual(doc["transcode"]["preset"], "superfast")
            self.assertEqual(doc["transcode"]["ladder_source"], "stream")

            # Changed while live: stored and shown, not applied yet.
            st, _, doc, raw = api(self.sl, "PATCH", f"/api/v1/streams/{sid}", {"ladder": LADDER_B})
            self.assertEqual(st, 200, raw)
            self.assertEqual((doc["ladder"], doc["applies"]), (LADDER_B, "next_publish"))
            self.assertEqual(sorted(r["name"] for r in doc["renditions"]), ["360p", "480p"])
            rc, err = finish(pub, 20)
            self.assertEqual(rc, 0, err)
        finally:
            if pub.poll() is None:
                pub.kill()
                pub.communicate()
        variants = self.wait_variants(sid, ["480p", "360p"])
        bw = {u.split("/")[0]: (int(a["BANDWIDTH"]), a["RESOLUTION"]) for a, u in variants}
        self.assertEqual(bw["480p"][1], "854x480")
        self.assertEqual(bw["360p"][1], "640x360")
        self.assertGreater(bw["480p"][0], bw["360p"][0])
        # x264 writes its settings into the stream: the 480p rung was asked
        # for 900 kb/s, not the built-in 1400.
        st, _, body = http(self.sl.url(f"/hls/{sid}/480p/index.m3u8"))
        first = next(l for l in body.decode().splitlines() if l and not l.startswith("#"))
        seg = http(self.sl.url(f"/hls/{sid}/480p/{first}"))[2]
        self.assertIn(b"bitrate=900 ", seg)
        self.wait_idle(sid)

        # The next publish has the new ladder.
        self.run_publish(key)
        variants = self.wait_variants(sid, ["360p"])
        self.assertEqual(variants[0][0]["RESOLUTION"], "640x360")
        self.assertIn(f"stream={sid}: ladder: the stream's (360p 800 kb/s; preset ultrafast; "
                      "passthrough auto)", self.sl.log())
        self.wait_idle(sid)

    def test_webhook_ladder_wins_and_an_invalid_one_is_ignored(self):
        made = self.create({"name": "tier-b", "ladder": {"rungs": ["480p"]}})
        sid, key = made["id"], made["stream_key"]
        # An invalid ladder in the answer: the publish goes on, with the
        # stream's own ladder, and the log says why.
        self.answers[sid] = {"ladder": {"rungs": ["999p"]}}
        self.run_publish(key)
        self.wait_variants(sid, ["480p"])
        log = self.sl.log()
        self.assertIn(f"stream {sid}: the webhook's answer has an invalid ladder "
                      "(ladder.rungs[0]: unknown rung \"999p\"", log)
        self.wait_idle(sid)
        # A valid one wins over the stream's for that publish.
        self.answers[sid] = {"ladder": {"rungs": [{"name": "360p", "bitrate_kbps": 300}],
                                        "passthrough": "never"}}
        self.run_publish(key)
        self.wait_variants(sid, ["360p"])
        self.assertIn(f"stream={sid}: ladder: the webhook's (360p 300 kb/s; preset veryfast; "
                      "passthrough never)", self.sl.log())
        # The stored ladder is unchanged by it.
        self.assertEqual(api(self.sl, "GET", f"/api/v1/streams/{sid}")[2]["ladder"],
                         {"rungs": ["480p"]})
        self.wait_idle(sid)


if __name__ == "__main__":
    unittest.main()
