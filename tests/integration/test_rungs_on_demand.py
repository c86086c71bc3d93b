"""Rungs on demand (--rungs on-demand) end to end: one real-time ffmpeg
publish of 854x480 to a ladder of 480p (the source, copied) and 360p
(transcoded), with the idle time lowered to 3 s by the test aid
--debug-rung-idle. Without viewers the transcoded rung stops encoding while
the stream stays live; a request for its playlist is held until the rung is
back, and its first segment has the number, date-time and keyframe start of
the other renditions' segment. The master lists every rung throughout.

One sluice and one publisher for the class (the CI budget); about 12 s."""

import os
import shutil
import subprocess
import tempfile
import time
import json
import unittest

import hlscheck
from harness import Sluice, http, parse_master, parse_media, publish, wait_for

KEY = "demo-secret-key"


class RungsOnDemand(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="sluice-ondemand-")
        cls.sluice = Sluice("--rungs", "on-demand", "--debug-rung-idle", "3",
                            "--ladder", "480p,360p", "--segment-duration", "1",
                            "--part-duration", "0.333", "--preset", "ultrafast")
        cls.pub = publish(cls.sluice.rtmp_url(KEY), seconds=60, size="854x480", rate=25,
                          gop=25)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.sluice.close(cls.pub)
        finally:
            shutil.rmtree(cls.dir, ignore_errors=True)

    def get(self, path, timeout=10):
        return http(self.sluice.url(path), timeout=timeout)

    def status(self):
        s, _, b = http(self.sluice.admin_url("/api/v1/streams/demo"))
        self.assertEqual(s, 200, b)
        return json.loads(b)

    def rendition(self, st, name):
        for r in st.get("renditions", []):
            if r["name"] == name:
                return r
        return None

    def master_names(self, wait=False):
        s, _, b = self.get("/hls/demo/master.m3u8")
        if wait and s == 404:
            return None
        self.assertEqual(s, 200)
        self.assertEqual(hlscheck.check_master(b.decode()), [], b.decode())
        _, variants = parse_master(b.decode())
        return sorted(uri.split("/")[0] for _, uri in variants)

    def metric(self, name, rendition):
        s, _, b = http(self.sluice.admin_url("/metrics"))
        self.assertEqual(s, 200)
        want = f'{name}{{stream="demo",rendition="{rendition}"}} '
        for line in b.decode().splitlines():
            if line.startswith(want):
                return float(line[len(want):])
        return None

    def test_idle_then_woken(self):
        # Both rungs are out, and nobody has asked for a media playlist.
        wait_for(lambda: self.master_names(wait=True) == ["360p", "480p"], 20, "both rungs in the master")

        # (1) Idle after 3 s without a viewer; the stream stays live and the
        # copied rung goes on.
        def idle():
            r = self.rendition(self.status(), "360p")
            return r is not None and r["active"] is False
        wait_for(idle, 15, "the 360p rung to go idle")
        st0 = self.status()
        time.sleep(1.5)
        st1 = self.status()
        self.assertEqual(st1["state"], "live")
        self.assertEqual(self.rendition(st0, "360p")["frames"],
                         self.rendition(st1, "360p")["frames"], "an idle rung still encodes")
        self.assertGreater(self.rendition(st1, "480p")["frames"],
                           self.rendition(st0, "480p")["frames"])
        self.assertTrue(self.rendition(st1, "480p")["active"])
        self.assertEqual(self.metric("sluice_rung_active", "360p"), 0)
        self.assertEqual(self.master_names(), ["360p", "480p"])  # (3)
        # A rendition the master does not list is a plain 404, not held.
        t0 = time.monotonic()
        self.assertEqual(self.get("/hls/demo/720p/index.m3u8")[0], 404)
        self.assertEqual(self.get("/hls/demo/720p/index.m3u8?_HLS_msn=5")[0], 404)
        self.assertLess(time.monotonic() - t0, 0.5)

        # (2) A plain request for the cold rung's playlist is held until its
        # first segment is complete (with its parts), then answered with a
        # fresh window.
        t0 = time.monotonic()
        s, _, b = self.get("/hls/demo/360p/index.m3u8", timeout=15)
        held = time.monotonic() - t0
        self.assertEqual(s, 200, b)
        text = b.decode()
        self.assertIn("#EXT-X-PART:", text)
        self.assertIn("#EXTINF:", text)
        self.assertGreater(held, 0.8, "the answer was not held for the rung's first segment")
        first = int(parse_media(text)["tags"]["EXT-X-MEDIA-SEQUENCE"])
        self.assertNotIn("#EXT-X-DISCONTINUITY\n", text)

        # Its first segment complete: same number, start and date-time as
        # the copied rung's segment, and the same discontinuity sequence.
        s, _, b = self.get(f"/hls/demo/360p/index.m3u8?_HLS_msn={first + 1}", timeout=15)
        self.assertEqual(s, 200, b)
        cold = parse_media(b.decode())
        self.assertEqual(hlscheck.check_media(b.decode(), ll=True), [], b.decode())
        s, _, b = self.get(f"/hls/demo/480p/index.m3u8?_HLS_msn={first + 1}", timeout=15)
        self.assertEqual(s, 200, b)
        warm = parse_media(b.decode())
        self.assertEqual(cold["segments"][0]["uri"], f"{first}.m4s")
        by_uri = {seg["uri"]: seg for seg in warm["segments"]}
        self.assertIn(f"{first}.m4s", by_uri, "the copied rung has no segment of that number")
        self.assertEqual(cold["segments"][0]["pdt"], by_uri[f"{first}.m4s"]["pdt"])
        self.assertAlmostEqual(cold["segments"][0]["duration"],
                               by_uri[f"{first}.m4s"]["duration"], delta=0.05)
        self.assertEqual(cold["tags"].get("EXT-X-DISCONTINUITY-SEQUENCE", "0"),
                         warm["tags"].get("EXT-X-DISCONTINUITY-SEQUENCE", "0"))

        # The first segment starts with a keyframe (init + segment, ffprobe).
        path = os.path.join(self.dir, "first.mp4")
        with open(path, "wb") as f:
            for name in ("init.mp4", f"{first}.m4s"):
                s, _, body = self.get(f"/hls/demo/360p/{name}")
                self.assertEqual(s, 200, name)
                f.write(body)
        out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0",
                              "-show_entries", "frame=key_frame,pict_type",
                              "-read_intervals", "%+#1", "-of", "json", path],
                             capture_output=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        frames = json.loads(out.stdout)["frames"]
        self.assertEqual((frames[0]["key_frame"], frames[0]["pict_type"]), (1, "I"))

        # Active again, counted once; the master never lost it.
        r = self.rendition(self.status(), "360p")
        self.assertTrue(r["active"])
        self.assertEqual(r["wakes"], 1)
        self.assertEqual(self.metric("sluice_rung_wakes_total", "360p"), 1)
        self.assertEqual(self.metric("sluice_rung_active", "360p"), 1)
        self.assertEqual(self.master_names(), ["360p", "480p"])


if __name__ == "__main__":
    unittest.main()
