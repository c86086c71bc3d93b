"""Recordings (record/recorder.c, docs/recording.md) with the real binary,
real ffmpeg publishers and real ffmpeg/ffprobe readers of the files on disk.

One sluice runs three broadcasts at once: a 20 s one that ends cleanly, one
whose publisher is killed and comes back within the reconnect window, and
one that is still live when sluice itself is killed -9. A second sluice on
the same directory then recovers the third and applies retention by bytes.
Between them they cover: the VOD playlists and master of every rung, the
exact bytes of the live segments, the MP4, the discontinuity of a
reconnect, crash recovery (with a half-written segment dropped), retention
deleting the oldest finished recording, and the recording.ready webhook.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import hlscheck
from harness import Sluice, finish, http, parse_master, parse_media, publish, wait_for
from test_admin import api
from test_webhook import Hook

STREAMS = (("full", "key-full-0123456789"), ("drop", "key-drop-0123456789"),
           ("crash", "key-crash-0123456789"), ("quiet", "key-quiet-0123456789"))
RUNGS = ["360p", "240p", "audio"]


def recordings(d, sid=None):
    """{rid: recording.json} of the recordings in d (of stream sid)."""
    out = {}
    for rid in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        try:
            with open(os.path.join(d, rid, "recording.json")) as f:
                j = json.load(f)
        except (OSError, ValueError):
            continue
        if sid is None or j["stream_id"] == sid:
            out[rid] = j
    return out


def one(d, sid, state):
    recs = recordings(d, sid)
    if len(recs) == 1 and list(recs.values())[0]["state"] == state:
        return list(recs.items())[0]
    return None


def probe_duration(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of",
                          "csv=p=0", path], capture_output=True, timeout=60, text=True)
    assert out.returncode == 0, out.stderr
    return float(out.stdout.strip())


def decode(path):
    """ffmpeg decodes every stream of path start to end: (rc, stderr)."""
    out = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-xerror",
                          "-i", path, "-map", "0", "-f", "null", "-"],
                         capture_output=True, timeout=120, text=True)
    return out.returncode, out.stderr


class RecordingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t0 = time.time()
        cls.tmp = tempfile.mkdtemp(prefix="sluice-rec-")
        cls.dir = os.path.join(cls.tmp, "recordings")
        cls.ini = os.path.join(cls.tmp, "sluice.conf")
        with open(cls.ini, "w") as f:
            f.write("[rung.240p]\nwidth = 426\nheight = 240\nbitrate = 300\n")
        cls.hook = Hook(lambda req: (200, b"{}", 0))
        cls.args = ["--config", cls.ini, "--ladder", "360p,240p", "--preset", "ultrafast",
                    "--segment-duration", "1", "--playlist-segments", "30",
                    "--reconnect-window", "8", "--recordings-dir", cls.dir,
                    "--webhook-url", cls.hook.url]
        cls.live_master = {}
        cls.live_segment = {}
        cls.failure = None
        try:
            cls._run_broadcasts()
        except BaseException as e:  # reported by the tests, with the logs
            cls.failure = e

    @classmethod
    def _run_broadcasts(cls):
        # Recording on through the environment (boolean option: "true"), the MP4 by the bare flag.
        sl = Sluice(*cls.args, "--record-mp4", streams=STREAMS, env={"SLUICE_RECORD": "true"})
        cls.sl = sl
        pubs = []
        try:
            # The stream's own setting beats --record (the registry's override, through the API).
            st, _, doc, body = api(sl, "PATCH", "/api/v1/streams/quiet", body={"record": False})
            assert st == 200 and doc["record"] is False, body
            quiet = publish(sl.rtmp_url(STREAMS[3][1]), seconds=3, size="640x360", gop=30)
            pubs.append(quiet)
            full = publish(sl.rtmp_url(STREAMS[0][1]), seconds=20, size="640x360", gop=30)
            drop1 = publish(sl.rtmp_url(STREAMS[1][1]), seconds=60, size="640x360", gop=30)
            crash = publish(sl.rtmp_url(STREAMS[2][1]), seconds=90, size="640x360", gop=30)
            pubs += [full, drop1, crash]

            def live_segments(sid):
                st, _, body = http(sl.url(f"/hls/{sid}/360p/index.m3u8"))
                return len(parse_media(body.decode())["segments"]) if st == 200 else 0

            # The drop: the publisher is killed (no unpublish) and a new one comes back.
            wait_for(lambda: live_segments("drop") >= 4, 30, "4 segments of 'drop'")
            drop1.kill()
            drop1.communicate()
            wait_for(lambda: "waiting up to 8 s for it to come back" in sl.log(), 10, "the drop")
            drop2 = publish(sl.rtmp_url(STREAMS[1][1]), seconds=5, size="640x360", gop=30)
            pubs.append(drop2)
            rc, err = finish(drop2, 30)
            assert rc == 0, err
            rc, err = finish(full, 40)
            assert rc == 0, err
            wait_for(lambda: one(cls.dir, "full", "ready"), 30, "'full' ready")
            # What the live stream served (its ended playlists stay), to compare with the
            # recording.
            st, _, body = http(sl.url("/hls/full/master.m3u8"))
            assert st == 200
            cls.live_master["full"] = body.decode()
            st, _, body = http(sl.url("/hls/full/360p/index.m3u8"))
            assert "#EXT-X-ENDLIST" in body.decode()
            last = parse_media(body.decode())["segments"][-1]["uri"]
            st, _, data = http(sl.url(f"/hls/full/360p/{last}"))
            assert st == 200
            cls.live_segment["full"] = (last, data)
            drop_rid, cls.drop_json = wait_for(lambda: one(cls.dir, "drop", "ready"), 30,
                                               "'drop' ready")
            dd = os.path.join(cls.dir, drop_rid)
            cls.drop_playlists = {}
            for r in RUNGS:
                with open(os.path.join(dd, r, "index.m3u8")) as f:
                    cls.drop_playlists[r] = f.read()
            cls.drop_decode = decode(os.path.join(dd, "master.m3u8"))
            assert len(recordings(cls.dir, "crash")) == 1
            assert one(cls.dir, "crash", "recording"), recordings(cls.dir, "crash")
            # Not playable while it is being written.
            cls.vod_while_recording = http(sl.url(f"/vod/{one(cls.dir, 'crash', 'recording')[0]}"
                                                  "/master.m3u8"))[0]
            rc, err = finish(quiet, 10)
            assert rc == 0, err
            cls.hook.wait("recording.ready", n=2)
            cls.sizes = {rid: j["bytes"] for rid, j in recordings(cls.dir).items()}
            # Crash mid-broadcast.
            sl.kill()
            log_a = sl.log()
            assert "AddressSanitizer" not in log_a and "runtime error:" not in log_a, log_a[-4000:]
            for _, key in STREAMS:
                assert key not in log_a, "a stream key in the log"
        finally:
            for p in pubs:
                if p.poll() is None:
                    p.kill()
                p.communicate()
            sl.kill()

        # A half-written segment (no journal line) and a journal line cut short by the crash.
        cls.crash_rid = one(cls.dir, "crash", "recording")[0]
        rend = os.path.join(cls.dir, cls.crash_rid, "360p")
        with open(os.path.join(rend, "99999999999.m4s"), "wb") as f:
            f.write(b"\0" * 100)
        with open(os.path.join(rend, "journal"), "a") as f:
            f.write("99999999999 1.000")
        cls.crash_segments = len(open(os.path.join(rend, "journal")).read().splitlines()) - 1

        # Restart: recovery, then retention by bytes at start-up. 'drop' ended first, so it is
        # the oldest finished recording; 'full' (the largest) must stay.
        drop_rid = one(cls.dir, "drop", "ready")[0]
        total = sum(cls.sizes.values())
        cls.max_bytes = total - cls.sizes[drop_rid] + 65536 + cls.sizes[cls.crash_rid]
        # With --record-mp4 again: the recovery builds the MP4 too, in a process that then
        # exits on SIGTERM, so LeakSanitizer checks that path.
        cls.sl2 = Sluice(*cls.args, "--record-mp4", "--recordings-max-bytes", str(cls.max_bytes),
                         streams=STREAMS)

    @classmethod
    def tearDownClass(cls):
        try:
            if getattr(cls, "sl2", None):
                cls.sl2.close()
        finally:
            cls.hook.close()
            shutil.rmtree(cls.tmp, ignore_errors=True)
            print(f"\n[test_recording: {time.time() - cls.t0:.1f} s]")

    def setUp(self):
        if self.failure:
            log = self.sl.log()[-6000:] if getattr(self, "sl", None) else ""
            raise AssertionError(f"set-up failed: {self.failure!r}\n{log}")

    def test_a_20s_broadcast_is_a_vod_of_every_rung(self):
        rid, j = wait_for(lambda: one(self.dir, "full", "ready"), 5, "'full' ready")
        self.assertTrue(re.fullmatch(r"full-\d{8}T\d{6}Z", rid), rid)
        self.assertEqual(j["id"], rid)
        self.assertEqual(j["renditions"], RUNGS)
        self.assertEqual(j["discontinuities"], 0)
        self.assertAlmostEqual(j["duration_s"], 20, delta=1.0)
        # The poster: the live thumbnail once the stream had two segments, a JPEG of the source.
        self.assertEqual(j["poster"], "poster.jpg")
        poster = os.path.join(self.dir, rid, "poster.jpg")
        with open(poster, "rb") as f:
            self.assertEqual(f.read(2), b"\xff\xd8")
        out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height",
                              "-of", "csv=p=0", poster], capture_output=True, timeout=30, text=True)
        self.assertEqual(out.stdout.strip(), "mjpeg,640,360")
        self.assertTrue(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", j["ended_at"]))
        d = os.path.join(self.dir, rid)
        self.assertEqual(j["bytes"], sum(os.path.getsize(os.path.join(r, f))
                                         for r, _, fs in os.walk(d) for f in fs
                                         if f != "recording.json"))
        # The master keeps the live variant lines (BANDWIDTH, CODECS, RESOLUTION).
        with open(os.path.join(d, "master.m3u8")) as f:
            vod_media, vod_variants = parse_master(f.read())
        live_media, live_variants = parse_master(self.live_master["full"])
        self.assertEqual(vod_variants, live_variants)
        self.assertEqual(vod_media, live_media)
        self.assertEqual(sorted(u for _, u in vod_variants), ["240p/index.m3u8", "360p/index.m3u8"])
        counts = []
        for rend in RUNGS:
            with open(os.path.join(d, rend, "index.m3u8")) as f:
                text = f.read()
            pl = parse_media(text)
            # Rendered by the live playlists' renderer: held to the same checks.
            self.assertEqual(hlscheck.check_media(text, ll=False), [], f"{rend}:\n{text}")
            self.assertEqual(pl["tags"]["EXT-X-PLAYLIST-TYPE"], "VOD")
            self.assertTrue(pl["endlist"])
            self.assertNotIn("#EXT-X-DISCONTINUITY", text)
            self.assertEqual(pl["tags"]["EXT-X-MEDIA-SEQUENCE"], pl["segments"][0]["uri"][:-4])
            self.assertEqual(int(pl["tags"]["EXT-X-TARGETDURATION"]), 1)
            counts.append(len(pl["segments"]))
            total = sum(s["duration"] for s in pl["segments"])
            self.assertAlmostEqual(total, 20, delta=1.0, msg=rend)
            self.assertAlmostEqual(probe_duration(os.path.join(d, rend, "index.m3u8")), 20,
                                   delta=1.0, msg=rend)
        self.assertEqual(max(counts), j["segments"])
        # The bytes the live stream served.
        name, data = self.live_segment["full"]
        with open(os.path.join(d, "360p", name), "rb") as f:
            self.assertEqual(f.read(), data)
        rc, err = decode(os.path.join(d, "master.m3u8"))
        self.assertEqual((rc, err), (0, ""))
        # The webhook.
        ev = [r["body"] for r in self.hook.of("recording.ready") if r["body"]["stream_id"] == "full"]
        self.assertEqual(len(ev), 1)
        self.assertEqual(ev[0]["data"]["recording_id"], rid)
        self.assertEqual(ev[0]["data"]["url"], f"/vod/{rid}/master.m3u8")
        self.assertAlmostEqual(ev[0]["data"]["duration_s"], j["duration_s"], delta=0.01)

    def test_mp4_holds_the_top_rung_and_audio(self):
        rid, j = one(self.dir, "full", "ready")
        self.assertEqual(j["mp4"], "recording.mp4")
        path = os.path.join(self.dir, rid, "recording.mp4")
        out = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                              "stream=codec_type,width,height:format=duration,format_name",
                              "-of", "json", path], capture_output=True, timeout=60, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        info = json.loads(out.stdout)
        kinds = sorted(s["codec_type"] for s in info["streams"])
        self.assertEqual(kinds, ["audio", "video"])
        video = [s for s in info["streams"] if s["codec_type"] == "video"][0]
        self.assertEqual((video["width"], video["height"]), (640, 360))
        self.assertAlmostEqual(float(info["format"]["duration"]), 20, delta=1.0)
        # faststart: the index (moov) comes before the media (mdat).
        with open(path, "rb") as f:
            head = f.read(1 << 20)
        self.assertLess(head.find(b"moov"), head.find(b"mdat"))
        self.assertGreater(head.find(b"moov"), 0)
        rc, err = decode(path)
        self.assertEqual((rc, err), (0, ""))

    def test_reconnect_is_one_recording_with_one_discontinuity(self):
        # Read before retention removed it: sizes were taken while it was there.
        self.assertEqual(len([rid for rid in self.sizes if rid.startswith("drop-")]), 1)
        log = self.sl.log()
        self.assertIn("a publisher is back after", log)
        self.assertEqual(len(re.findall(r"recording drop-\S+ to ", log)), 1)
        self.assertEqual(len(re.findall(r"recording drop-\S+ ready", log)), 1)
        ev = [r["body"] for r in self.hook.of("recording.ready") if r["body"]["stream_id"] == "drop"]
        self.assertEqual(len(ev), 1)
        self.assertEqual(self.drop_json["discontinuities"], 1)
        for rend, text in self.drop_playlists.items():
            self.assertEqual(text.count("#EXT-X-DISCONTINUITY\n"), 1, rend)
            self.assertTrue(parse_media(text)["endlist"])
            self.assertEqual(hlscheck.check_media(text, ll=False), [], f"{rend}:\n{text}")
        self.assertEqual(self.drop_decode, (0, ""))

    def test_kill_9_then_restart_finalizes_and_plays(self):
        rid = self.crash_rid
        j = wait_for(lambda: recordings(self.dir, "crash").get(rid, {}).get("state") == "ready"
                     and recordings(self.dir, "crash")[rid], 10, "'crash' recovered")
        self.assertIn(f"recording={rid}: left unfinished by an earlier run", self.sl2.log())
        d = os.path.join(self.dir, rid)
        with open(os.path.join(d, "360p", "index.m3u8")) as f:
            text = f.read()
        pl = parse_media(text)
        self.assertTrue(pl["endlist"])
        self.assertEqual(pl["tags"]["EXT-X-PLAYLIST-TYPE"], "VOD")
        self.assertNotIn("99999999999.m4s", text)  # no journal line: not part of it
        self.assertEqual(len(pl["segments"]), self.crash_segments)
        self.assertGreaterEqual(j["segments"], 5)
        self.assertEqual(j["renditions"], RUNGS)
        self.assertEqual(j["mp4"], "recording.mp4")
        self.assertAlmostEqual(probe_duration(os.path.join(d, "recording.mp4")),
                               j["duration_s"], delta=1.0)
        self.assertAlmostEqual(probe_duration(os.path.join(d, "360p", "index.m3u8")),
                               j["duration_s"], delta=1.0)
        rc, err = decode(os.path.join(d, "master.m3u8"))
        self.assertEqual((rc, err), (0, ""))
        ev = self.hook.wait("recording.ready", stream_id="crash")[0]["body"]
        self.assertEqual(ev["data"]["recording_id"], rid)

    def test_stream_override_and_vod_route(self):
        # "record": false on the stream: nothing recorded although --record is on.
        self.assertEqual(recordings(self.dir, "quiet"), {})
        self.assertNotIn("recording quiet-", self.sl.log())
        self.assertEqual(self.vod_while_recording, 404)
        # The recorder's files as the origin's /vod/ serves them, and the API's view.
        rid, j = one(self.dir, "full", "ready")
        st, _, body = http(self.sl2.url(f"/vod/{rid}/master.m3u8"))
        self.assertEqual(st, 200)
        with open(os.path.join(self.dir, rid, "master.m3u8"), "rb") as f:
            self.assertEqual(body, f.read())
        self.assertAlmostEqual(probe_duration(self.sl2.url(f"/vod/{rid}/240p/index.m3u8")), 20,
                               delta=1.0)
        st, _, body = http(self.sl2.admin_url(f"/api/v1/recordings/{rid}"))
        self.assertEqual(st, 200)
        api = json.loads(body)
        self.assertEqual((api["state"], api["segments"], api["stream_id"]), ("ready", j["segments"], "full"))

    def test_retention_by_bytes_deletes_the_oldest(self):
        left = recordings(self.dir)
        self.assertEqual(sorted(j["stream_id"] for j in left.values()), ["crash", "full"])
        self.assertEqual(len(re.findall(r"retention: deleted", self.sl2.log())), 1)
        self.assertRegex(self.sl2.log(), r"recording=drop-\S+: retention: deleted")
        on_disk = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(self.dir)
                      for f in fs)
        self.assertLessEqual(on_disk, self.max_bytes)


if __name__ == "__main__":
    unittest.main()
