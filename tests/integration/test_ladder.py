"""The adaptive ladder end to end: real ffmpeg publishes to the real sluice
binary; the renditions, their sizes, keyframe alignment across renditions,
the passthrough rung's bytes, bit rates and overload protection are checked
with ffprobe/ffmpeg on what the origin serves.

Sources are made once per test as small files (ultrafast, short) and
published with -c copy; only the overload test publishes in real time."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import Sluice, ffprobe_json, finish, http, parse_master, parse_media, wait_for

KEY = "demo-secret-key"


def make_source(path, size, seconds, gop=30, bframes=0, rate=30, vbitrate="2000k",
                x264_params=None):
    """Writes an FLV file of H.264 (testsrc2) + AAC-LC 48 kHz stereo."""
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
           "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}",
           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
           "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast",
           "-bf", str(bframes), "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
           "-pix_fmt", "yuv420p", "-b:v", vbitrate]
    if x264_params:
        cmd += ["-x264-params", x264_params]
    cmd += ["-c:a", "aac", "-b:a", "128k", "-ac", "2", "-f", "flv", path]
    out = subprocess.run(cmd, capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr.decode()[-2000:]


def publish_file(url, path, realtime=False):
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error"]
    if realtime:
        cmd += ["-re"]
    cmd += ["-i", path, "-c", "copy", "-f", "flv", url]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


class LadderCase(unittest.TestCase):
    """Helpers: one sluice per test, a scratch directory, fetching."""

    def start(self, *args):
        self.sluice = Sluice(*args)

    def setUp(self):
        self.sluice = None
        self.dir = tempfile.mkdtemp(prefix="sluice-ladder-")

    def tearDown(self):
        try:
            if self.sluice:
                self.sluice.stop()
        finally:
            if self.sluice:
                self.sluice.kill()
            shutil.rmtree(self.dir, ignore_errors=True)

    def get(self, path):
        return http(self.sluice.url(path))

    def run_source(self, src, realtime=False, timeout=120):
        pub = publish_file(self.sluice.rtmp_url(KEY), src, realtime)
        rc, err = finish(pub, timeout)
        self.assertEqual(rc, 0, err)

    def ended_master(self, timeout=60):
        """Waits until every rendition in the master has EXT-X-ENDLIST;
        returns (media, variants)."""
        def done():
            s, _, b = self.get("/hls/demo/master.m3u8")
            if s != 200:
                return None
            media, variants = parse_master(b.decode())
            for _, uri in variants + [({}, m["URI"]) for m in media if "URI" in m]:
                s2, _, b2 = self.get("/hls/demo/" + uri)
                if s2 != 200 or not parse_media(b2.decode())["endlist"]:
                    return None
            return media, variants
        return wait_for(done, timeout, "every rendition to end")

    def rendition(self, name):
        """Returns (playlist dict, [(msn, path of init+segment)])."""
        s, _, b = self.get(f"/hls/demo/{name}/index.m3u8")
        self.assertEqual(s, 200, name)
        pl = parse_media(b.decode())
        s, _, init = self.get(f"/hls/demo/{name}/init.mp4")
        self.assertEqual(s, 200)
        out = []
        for seg in pl["segments"]:
            s, _, data = self.get(f"/hls/demo/{name}/{seg['uri']}")
            self.assertEqual(s, 200, f"{name}/{seg['uri']}")
            msn = int(seg["uri"].split(".")[0])
            path = os.path.join(self.dir, f"{name}-{msn}.mp4")
            with open(path, "wb") as f:
                f.write(init + data)
            out.append((msn, path))
        return pl, out

    def whole(self, name):
        """init + every segment of a rendition as one file."""
        pl, segs = self.rendition(name)
        path = os.path.join(self.dir, f"{name}-all.mp4")
        s, _, init = self.get(f"/hls/demo/{name}/init.mp4")
        with open(path, "wb") as f:
            f.write(init)
            for seg in pl["segments"]:
                f.write(self.get(f"/hls/demo/{name}/{seg['uri']}")[2])
        return path

    def video_size(self, path):
        st = ffprobe_json(path, "-select_streams", "v", "-show_entries", "stream=width,height")
        return st["streams"][0]["width"], st["streams"][0]["height"]

    def assert_decodes(self, path):
        out = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", path,
                              "-f", "null", "-"], capture_output=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr.decode()[-2000:])
        self.assertEqual(out.stderr.decode().strip(), "", f"decode errors in {path}")

    def assert_sizes(self, variants, expected):
        """expected: {rendition: "WxH"} in bandwidth order."""
        notes = "\n".join(l for l in self.sluice.log().splitlines()
                          if "overload" in l or "headroom" in l or "ladder for" in l)
        self.assertEqual([uri for _, uri in variants], [f"{n}/index.m3u8" for n in expected], notes)
        bws = [int(a["BANDWIDTH"]) for a, _ in variants]
        self.assertEqual(bws, sorted(bws), "variants sorted by bandwidth")
        for attrs, uri in variants:
            name = uri.split("/")[0]
            self.assertEqual(attrs["RESOLUTION"], expected[name], uri)
            self.assertEqual(attrs["AUDIO"], "audio")
            self.assertRegex(attrs["CODECS"], r"^avc1\.(42|4d|64)[0-9a-f]{4},mp4a\.40\.2$")
            self.assertGreaterEqual(int(attrs["BANDWIDTH"]), int(attrs["AVERAGE-BANDWIDTH"]))
            _, segs = self.rendition(name)
            w, h = self.video_size(segs[0][1])
            self.assertEqual(f"{w}x{h}", expected[name], f"coded size of {name}")


class LadderShapeTest(LadderCase):

    def test_1080p_source_gives_four_renditions_and_audio(self):
        # ultrafast keeps this cheap: the sizes are what is checked here.
        self.start("--preset", "ultrafast", "--segment-duration", "1")
        src = os.path.join(self.dir, "src.flv")
        make_source(src, "1920x1080", 3, gop=30, vbitrate="8000k")
        self.run_source(src)
        media, variants = self.ended_master()
        self.assertEqual(len(media), 1)
        self.assertEqual((media[0]["TYPE"], media[0]["GROUP-ID"], media[0]["URI"]),
                         ("AUDIO", "audio", "audio/index.m3u8"))
        self.assert_sizes(variants, {"360p": "640x360", "480p": "854x480", "720p": "1280x720",
                                     "1080p": "1920x1080"})
        log = self.sluice.log()
        self.assertIn("1080p 1920x1080 copy", log)
        self.assertIn("720p 1280x720 ultrafast", log)
        # Audio was AAC-LC 48 kHz stereo already: copied, one rendition.
        st = ffprobe_json(self.rendition("audio")[1][0][1], "-show_streams")["streams"][0]
        self.assertEqual((st["codec_name"], st["sample_rate"], st["channels"]), ("aac", "48000", 2))

    def test_portrait_source_keeps_its_aspect(self):
        self.start("--preset", "ultrafast", "--segment-duration", "1")
        src = os.path.join(self.dir, "src.flv")
        make_source(src, "720x1280", 3, gop=30)
        self.run_source(src)
        _, variants = self.ended_master()
        # Rung names are the short side; portrait stays portrait.
        self.assert_sizes(variants, {"360p": "360x640", "480p": "480x854", "720p": "720x1280"})

    def test_mono_44k_audio_is_encoded_once_to_48k_stereo(self):
        self.start("--preset", "ultrafast", "--segment-duration", "1", "--ladder", "360p")
        src = os.path.join(self.dir, "src.flv")
        out = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
                              "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
                              "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
                              "-t", "4", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30",
                              "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "1", "-b:a", "64k",
                              "-f", "flv", src], capture_output=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr.decode())
        self.run_source(src)
        self.ended_master()
        path = self.whole("audio")
        st = ffprobe_json(path, "-show_streams")["streams"][0]
        self.assertEqual((st["codec_name"], st["profile"], st["sample_rate"], st["channels"]),
                         ("aac", "LC", "48000", 2))
        self.assert_decodes(path)
        fmt = ffprobe_json(path, "-show_format")["format"]
        dur = float(fmt["duration"]) - float(fmt["start_time"])
        self.assertAlmostEqual(dur, 4.0, delta=0.3)
        self.assertIn("-> AAC-LC 48000 Hz stereo", self.sluice.log())


class LadderOpenGopTest(LadderCase):

    def test_open_gop_source_is_not_called_independent(self):
        # x264's open GOP: every keyframe after the first is a non-IDR I
        # picture whose leading B-frames refer to the GOP before it. The
        # copied 720p segments that start on one do not decode alone, so the
        # master must not say EXT-X-INDEPENDENT-SEGMENTS; the transcoded
        # rungs still start every segment with an IDR and decode alone.
        self.start("--playlist-segments", "100")
        src = os.path.join(self.dir, "src.flv")
        make_source(src, "1280x720", 6, gop=30, bframes=3, x264_params="open-gop=1")
        self.run_source(src)
        _, variants = self.ended_master()
        self.assertIn("720p/index.m3u8", [uri for _, uri in variants])
        self.assertRegex(self.sluice.log(), r"720p: segment \d+ starts on a keyframe that is "
                                            r"not an IDR picture \(open GOP\)")
        master = self.get("/hls/demo/master.m3u8")[2].decode()
        self.assertNotIn("INDEPENDENT-SEGMENTS", master)
        for name in ("480p", "360p"):
            _, segs = self.rendition(name)
            self.assertGreaterEqual(len(segs), 3)
            for _, path in segs:
                self.assert_decodes(path)


class LadderAlignmentTest(LadderCase):
    """One 720p source with B-frames: 720p is the source copied, 480p and
    360p are transcoded."""

    def setUp(self):
        super().setUp()
        self.start("--playlist-segments", "100")
        self.src = os.path.join(self.dir, "src.flv")
        make_source(self.src, "1280x720", 8, gop=60, bframes=2)
        self.run_source(self.src)
        self.media, self.variants = self.ended_master()

    def test_720p_source_gives_three_renditions_passthrough_identical(self):
        self.assert_sizes(self.variants, {"360p": "640x360", "480p": "854x480",
                                          "720p": "1280x720"})
        self.assertIn("720p 1280x720 copy", self.sluice.log())

        def hashes(path):
            out = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", path,
                                  "-map", "0:v", "-c", "copy", "-f", "framemd5", "-"],
                                 capture_output=True, timeout=60)
            self.assertEqual(out.returncode, 0, out.stderr.decode())
            rows = [l.split(",") for l in out.stdout.decode().splitlines()
                    if l and not l.startswith("#")]
            return [(r[4].strip(), r[5].strip()) for r in rows]  # size, md5 of the packet
        src, hls = hashes(self.src), hashes(self.whole("720p"))
        self.assertEqual(len(hls), len(src))
        self.assertEqual(hls, src, "the passthrough rung carries the source's exact bytes")

    def test_segments_aligned_idr_and_independent(self):
        master = self.get("/hls/demo/master.m3u8")[2].decode()
        self.assertIn("#EXT-X-INDEPENDENT-SEGMENTS\n", master)
        self.assertNotIn("open GOP", self.sluice.log())
        per = {}
        for _, uri in self.variants:
            name = uri.split("/")[0]
            per[name] = dict(self.rendition(name)[1])
        names = sorted(per)
        msns = sorted(per[names[0]])
        self.assertGreaterEqual(len(msns), 4)
        for name in names:
            self.assertEqual(sorted(per[name]), msns, f"{name} has the same segment numbers")
        frame = 1 / 30
        for msn in msns:
            starts = {}
            for name in names:
                path = per[name][msn]
                pk = ffprobe_json(path, "-select_streams", "v", "-show_packets",
                                  "-show_entries", "packet=pts_time,flags")["packets"]
                self.assertTrue(pk[0]["flags"].startswith("K"), f"{name}/{msn} starts with a keyframe")
                fr = ffprobe_json(path, "-select_streams", "v", "-show_frames",
                                  "-show_entries", "frame=pts_time,pict_type,key_frame")["frames"]
                self.assertEqual((fr[0]["key_frame"], fr[0]["pict_type"]), (1, "I"))
                # An IDR: decodable alone, from its init segment, with no error.
                self.assert_decodes(path)
                starts[name] = min(float(p["pts_time"]) for p in pk)
            ref = starts[names[0]]
            for name, t in starts.items():
                self.assertAlmostEqual(t, ref, delta=frame, msg=f"segment {msn}: {starts}")
        # Durations agree too: segment N covers the same time everywhere.
        pls = {n: parse_media(self.get(f"/hls/demo/{n}/index.m3u8")[2].decode()) for n in names}
        for i in range(len(msns)):
            ds = {n: pls[n]["segments"][i]["duration"] for n in names}
            self.assertLess(max(ds.values()) - min(ds.values()), frame + 0.001, ds)


class LadderBitrateTest(LadderCase):

    def test_each_rung_within_15_percent_of_its_target(self):
        # Every rung transcoded (passthrough never) from a 720p source, 20 s.
        self.start("--ladder", "720p,480p,360p", "--passthrough", "never",
                   "--playlist-segments", "100")
        src = os.path.join(self.dir, "src.flv")
        make_source(src, "1280x720", 20, gop=60, vbitrate="4000k")
        self.run_source(src, timeout=180)
        _, variants = self.ended_master(timeout=120)
        targets = {"720p": 2800, "480p": 1400, "360p": 800}
        self.assertEqual(sorted(uri.split("/")[0] for _, uri in variants), sorted(targets))
        measured = {}
        for name, target in targets.items():
            path = self.whole(name)
            out = ffprobe_json(path, "-select_streams", "v", "-show_entries",
                               "packet=size:format=duration,start_time")
            bits = sum(int(p["size"]) for p in out["packets"]) * 8
            secs = float(out["format"]["duration"]) - float(out["format"]["start_time"])
            self.assertAlmostEqual(secs, 20.0, delta=0.5)
            measured[name] = bits / secs / 1000
        for name, target in targets.items():
            self.assertLess(abs(measured[name] - target) / target, 0.15,
                            f"measured kb/s {measured} against {targets}")
        print(f"\n  measured kb/s: { {k: round(v) for k, v in measured.items()} }", end=" ")


class LadderOverloadTest(LadderCase):

    def test_slow_worker_steps_preset_then_drops_a_rung(self):
        # Simulated encoding cost: 300 ms per 1080p frame at veryfast makes
        # 480p+360p take ~90 ms a frame (3x slower than real time); even at
        # ultrafast it is behind, so a rung has to go.
        self.start("--segment-duration", "1", "--debug-slow-encode", "300",
                   "--playlist-segments", "100")
        src = os.path.join(self.dir, "src.flv")
        make_source(src, "1280x720", 12, gop=30)
        self.run_source(src, realtime=True, timeout=90)
        media, variants = self.ended_master(timeout=120)
        log = self.sluice.log()
        self.assertRegex(log, r"overload: speed [0-9.]+x real time, queue \d+ ms; x264 preset "
                              r"veryfast -> superfast")
        self.assertIn("x264 preset superfast -> ultrafast", log)
        self.assertRegex(log, r"overload: .*; dropping rung 480p from segment \d+")
        self.assertNotIn("new SPS/PPS", log, "preset steps keep the init segment")
        # Whatever the ladder ended with, every playlist named is valid and
        # every segment it names is there and decodes.
        names = [uri.split("/")[0] for _, uri in variants]
        self.assertIn("720p", names)
        # 360p, the cheapest, goes only if dropping 480p was not enough: on
        # a machine busier than this test assumes, that is right too, and
        # the log must say so.
        if not re.search(r"overload: .*; dropping rung 360p from segment \d+", log):
            self.assertIn("360p", names)
        for name in names + ["audio"]:
            pl, segs = self.rendition(name)
            nums = [m for m, _ in segs]
            self.assertEqual(nums, list(range(nums[0], nums[0] + len(nums))), name)
            self.assertEqual(int(pl["tags"]["EXT-X-MEDIA-SEQUENCE"]), nums[0])
            for _, path in segs[-2:]:
                self.assert_decodes(path)
        # A player that still has the old master keeps asking for 480p: its
        # playlist went on with a stand-in's pictures (360p's, or 720p's if
        # 360p went too), behind a discontinuity and the stand-in's init
        # segment, with no segment number missing, and every segment of it
        # is there and decodes with the init segment the playlist names.
        self.assertRegex(log, r"480p: its playlist goes on with the pictures of (360p|720p) "
                              r"from segment \d+")
        s, _, b = self.get("/hls/demo/480p/index.m3u8")
        self.assertEqual(s, 200)
        text = b.decode()
        self.assertIn("#EXT-X-ENDLIST", text)
        self.assertRegex(text, r'#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="init-\d+\.mp4"')
        init, nums, tail = None, [], []
        for line in text.splitlines():
            m = re.match(r'#EXT-X-MAP:URI="([^"]+)"', line)
            if m:
                init = m.group(1)
            elif line.endswith(".m4s"):
                nums.append(int(line.split(".")[0]))
                tail.append((init, line))
        self.assertEqual(nums, list(range(nums[0], nums[0] + len(nums))), text)
        self.assertNotEqual(tail[-1][0], "init.mp4", "the stand-in's init segment at the end")
        for i, (map_uri, uri) in enumerate(tail[-2:]):
            path = os.path.join(self.dir, f"480p-standin-{i}.mp4")
            with open(path, "wb") as f:
                for part in (map_uri, uri):
                    s, _, data = self.get(f"/hls/demo/480p/{part}")
                    self.assertEqual(s, 200, part)
                    f.write(data)
            self.assert_decodes(path)


if __name__ == "__main__":
    unittest.main()
