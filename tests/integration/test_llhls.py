"""LL-HLS end to end: a real publisher (ffmpeg) into the real sluice, with a
transcoded rung beside the copied one, and real clients reading it while it
is live -- the spec checker on every rendition's playlist, every part a
playlist names fetched at once (atomic publishing), blocking playlist
reloads and preload-hint requests, delta updates, a standard player that
ignores parts; and hls.js in Chromium in lowLatencyMode on a second
broadcast."""

import json
import os
import re
import subprocess
import time
import unittest

import hlscheck
from harness import Sluice, http, parse_attrs, publish, shared_redis, wait_for

KEY = "demo-secret-key"
RENDITIONS = ("720p", "360p", "audio")


def hint_of(text):
    """(msn, part) named by the playlist's EXT-X-PRELOAD-HINT."""
    m = re.search(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="(\d+)\.(\d+)\.m4s"', text)
    assert m, "no preload hint in:\n" + text
    return int(m.group(1)), int(m.group(2))


def named_uris(text):
    """Every media URI a playlist names: segments, parts, the init segment."""
    uris = [l for l in text.splitlines() if l and not l.startswith("#")]
    uris += re.findall(r'#EXT-X-PART:[^\n]*URI="([^"]+)"', text)
    uris += re.findall(r'#EXT-X-MAP:URI="([^"]+)"', text)
    return uris


class LowLatencyTest(unittest.TestCase):
    """One live broadcast shared by the tests of this class (about 45 s):
    1 s segments and a 12-segment window so that delta updates have
    something to skip, the source copied as 720p and a 360p rung encoded."""

    @classmethod
    def setUpClass(cls):
        cls.sluice = Sluice("--ladder", "720p,360p", "--preset", "ultrafast",
                            "--segment-duration", "1", "--playlist-segments", "12")
        cls.pub = publish(cls.sluice.rtmp_url(KEY), seconds=50, size="1280x720", gop=30)
        try:
            def ready():
                return all(http(cls.url(r))[0] == 200 for r in RENDITIONS) and \
                    http(cls.sluice.url("/hls/demo/master.m3u8"))[0] == 200
            wait_for(ready, 40, "every rendition's playlist")
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.sluice.close(cls.pub)

    @classmethod
    def url(cls, rend, query=""):
        return cls.sluice.url(f"/hls/demo/{rend}/index.m3u8{query}")

    def playlist(self, rend, query=""):
        status, headers, body = http(self.url(rend, query))
        self.assertEqual(status, 200, body)
        return body.decode()

    def test_playlists_follow_the_spec_and_name_only_fetchable_parts(self):
        deadline = time.time() + 6
        checked = 0
        while time.time() < deadline:
            for rend in RENDITIONS:
                text = self.playlist(rend)
                self.assertEqual(hlscheck.check_media(text, ll=True), [], f"{rend}:\n{text}")
                # Everything the playlist names is there the moment it is read.
                base = self.url(rend).rsplit("/", 1)[0]
                for uri in named_uris(text)[-12:]:
                    status, headers, body = http(f"{base}/{uri}")
                    self.assertEqual(status, 200, f"{rend}/{uri} named but not fetchable")
                    self.assertGreater(len(body), 0)
                    # Parts, like segments, never change: a CDN keeps them.
                    # init.mp4 may change in the next broadcast: a target
                    # duration only.
                    if uri.endswith("init.mp4"):
                        self.assertRegex(headers.get("cache-control"), r"^public, max-age=\d$", uri)
                    else:
                        self.assertEqual(headers.get("cache-control"),
                                         "public, max-age=31536000, immutable", uri)
                attrs = {l.split(":", 1)[0]: parse_attrs(l.split(":", 1)[1])
                         for l in text.splitlines() if l.startswith("#EXT-X-SERVER-CONTROL")
                         or l.startswith("#EXT-X-PART-INF")}
                self.assertEqual(attrs["#EXT-X-SERVER-CONTROL"]["CAN-BLOCK-RELOAD"], "YES")
                part_target = float(attrs["#EXT-X-PART-INF"]["PART-TARGET"])
                self.assertLess(part_target, 0.4)
                # Rendition reports name every other rendition.
                reports = re.findall(r'#EXT-X-RENDITION-REPORT:URI="\.\./([^/]+)/index\.m3u8"', text)
                self.assertEqual(sorted(reports), sorted(r for r in RENDITIONS if r != rend), text)
                # A segment's first part starts with a keyframe.
                for line in text.splitlines():
                    if re.search(r'URI="\d+\.0\.m4s"', line) and line.startswith("#EXT-X-PART:"):
                        self.assertIn("INDEPENDENT=YES", line)
                checked += 1
        self.assertGreater(checked, 6)
        master = http(self.sluice.url("/hls/demo/master.m3u8"))[2].decode()
        self.assertEqual(hlscheck.check_master(master), [], master)

    def test_blocking_reload_returns_when_the_part_is_out(self):
        for rend in ("720p", "360p"):
            msn, part = hint_of(self.playlist(rend))
            t0 = time.time()
            status, _, body = http(self.url(rend, f"?_HLS_msn={msn}&_HLS_part={part}"), timeout=10)
            took = time.time() - t0
            self.assertEqual(status, 200, body)
            text = body.decode()
            self.assertIn(f'URI="{msn}.{part}.m4s"', text, "the answer lacks the awaited part")
            self.assertLess(took, 3.0)
            # It was not in the playlist before: the request must have waited.
            self.assertGreater(took, 0.02)
            # The answer names it as soon as it is fetchable.
            status, _, _ = http(self.sluice.url(f"/hls/demo/{rend}/{msn}.{part}.m4s"))
            self.assertEqual(status, 200)

        # Too far ahead: two segments past the last one -> 400 at once.
        msn, _ = hint_of(self.playlist("720p"))
        t0 = time.time()
        status, _, _ = http(self.url("720p", f"?_HLS_msn={msn + 2}&_HLS_part=0"))
        self.assertEqual(status, 400)
        self.assertLess(time.time() - t0, 1.0)
        status, _, _ = http(self.url("720p", "?_HLS_part=1"))
        self.assertEqual(status, 400)

    def test_preload_hint_request_waits_for_the_part(self):
        msn, part = hint_of(self.playlist("720p"))
        part_url = self.sluice.url(f"/hls/demo/720p/{msn}.{part}.m4s")
        t0 = time.time()
        status, _, body = http(part_url, timeout=10)
        took = time.time() - t0
        self.assertEqual(status, 200)
        self.assertGreater(len(body), 0)
        self.assertLess(took, 3.0)
        # The same bytes later: it was answered complete, not in pieces.
        self.assertEqual(http(part_url)[2], body)

    def test_hinted_part_preempted_by_a_keyframe_gets_the_next_segments_first(self):
        # 1 s segments of 0.333 s parts on a 1 s GOP: after a segment's third
        # part the hint names a fourth, but the keyframe ends the segment
        # first. A player that followed the hint (Shaka does) gets part 0 of
        # the next segment, the media that comes next, not a 404.
        deadline = time.time() + 15
        text = self.playlist("720p")
        while time.time() < deadline:
            msn, part = hint_of(text)
            if part == 3:
                break
            text = self.playlist("720p", f"?_HLS_msn={msn}&_HLS_part={part}")
        else:
            self.fail("no hint past a segment's third part in 15 s:\n" + text)
        stats = lambda: json.loads(http(self.sluice.admin_url("/api/v1/stats"))[2])
        moved_before = stats()["egress"]["hints_moved"]
        status, _, body = http(self.sluice.url(f"/hls/demo/720p/{msn}.3.m4s"), timeout=10)
        self.assertEqual(status, 200)
        status, _, first = http(self.sluice.url(f"/hls/demo/720p/{msn + 1}.0.m4s"))
        self.assertEqual(status, 200)
        self.assertEqual(body, first)
        self.assertGreater(stats()["egress"]["hints_moved"], moved_before)
        # The playlists never list it: segment msn ended with three parts.
        text = self.playlist("720p")
        self.assertIn(f'URI="{msn}.2.m4s"', text)
        self.assertNotIn(f'URI="{msn}.3.m4s"', text)

    def test_delta_update_skips_old_segments(self):
        def long_enough():
            text = self.playlist("720p")
            return text.count("#EXTINF") >= 10 and text
        wait_for(long_enough, 30, "a window long enough to skip")
        full = self.playlist("720p")
        until = float(parse_attrs(re.search(r"#EXT-X-SERVER-CONTROL:(.*)", full).group(1))
                      ["CAN-SKIP-UNTIL"])
        for query, v2 in (("?_HLS_skip=YES", False), ("?_HLS_skip=v2", True)):
            delta = self.playlist("720p", query)
            self.assertEqual(hlscheck.check_media(delta, ll=True), [], delta)
            m = re.search(r"#EXT-X-SKIP:SKIPPED-SEGMENTS=(\d+)(.*)", delta)
            self.assertIsNotNone(m, delta)
            skipped = int(m.group(1))
            self.assertGreater(skipped, 0)
            self.assertEqual("RECENTLY-REMOVED-DATERANGES" in m.group(2), v2)
            seq = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", delta).group(1))
            listed = [l for l in delta.splitlines() if l and not l.startswith("#")]
            # The first segment listed is the one after the skipped ones, and
            # what is listed still covers CAN-SKIP-UNTIL.
            self.assertEqual(listed[0], f"{seq + skipped}.m4s")
            kept = sum(float(x) for x in re.findall(r"#EXTINF:([0-9.]+),", delta))
            self.assertGreaterEqual(kept + 1.0, until)
        # Combined with a blocking request.
        msn, part = hint_of(full)
        status, _, body = http(self.url("720p", f"?_HLS_msn={msn}&_HLS_part={part}&_HLS_skip=YES"))
        self.assertEqual(status, 200)
        self.assertIn("#EXT-X-SKIP:SKIPPED-SEGMENTS=", body.decode())

    def test_standard_player_ignores_parts(self):
        # ffmpeg's HLS demuxer knows nothing of parts: it plays the segments.
        out = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error",
                              "-i", self.sluice.url("/hls/demo/master.m3u8"),
                              "-map", "0:v:0", "-map", "0:a:0", "-t", "3", "-f", "null", "-"],
                             capture_output=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr.decode()[-2000:])
        self.assertEqual(out.stderr.decode().strip(), "")


class LowLatencyAcrossNodesTest(unittest.TestCase):
    """The packager on an ingest-only node, the origin on another, Redis
    between them: the origin node wakes a blocking reload when the ingest
    node commits the awaited part (pub/sub), and never names a part it
    cannot serve (parts and playlists go to Redis in one script)."""

    DB = 3

    def test_blocking_reload_on_an_origin_node(self):
        port = shared_redis()
        out = subprocess.run(["redis-cli", "-p", str(port), "-n", str(self.DB), "FLUSHDB"],
                             capture_output=True, timeout=10)
        self.assertEqual(out.stdout.strip(), b"OK")
        url = f"redis://127.0.0.1:{port}/{self.DB}"
        ingest = Sluice("--store", url, "--role", "ingest", "--ladder", "720p")
        origin = Sluice("--store", url, "--role", "origin", streams=())
        pub = publish(ingest.rtmp_url(KEY), seconds=25, size="1280x720")
        try:
            pl = origin.url("/hls/demo/720p/index.m3u8")
            wait_for(lambda: http(pl)[0] == 200 and b"#EXTINF" in http(pl)[2], 30,
                     "a segment on the origin node")
            waited = []
            for _ in range(6):
                text = http(pl)[2].decode()
                self.assertEqual(hlscheck.check_media(text, ll=True), [], text)
                msn, part = hint_of(text)
                t0 = time.time()
                status, _, body = http(f"{pl}?_HLS_msn={msn}&_HLS_part={part}", timeout=10)
                waited.append(time.time() - t0)
                self.assertEqual(status, 200)
                text = body.decode()
                self.assertIn(f'URI="{msn}.{part}.m4s"', text)
                for uri in named_uris(text)[-8:]:
                    self.assertEqual(http(origin.url(f"/hls/demo/720p/{uri}"))[0], 200, uri)
            # Each was held until the ingest node's commit woke it: a part
            # is 0.333 s, so at least some of the six waited visibly.
            self.assertGreater(max(waited), 0.05, waited)
            self.assertLess(max(waited), 3.0, waited)
        finally:
            try:
                origin.close()
            finally:
                ingest.close(pub)


if __name__ == "__main__":
    unittest.main()
