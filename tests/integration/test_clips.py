"""Clips (transcode/clip.c, control/clips.c, docs/clips.md) with the real
binary and one real ffmpeg publisher whose pictures carry a burnt-in frame
counter (drawtext of %{n} over testsrc2).

One sluice records the live broadcast; while it is live two clips are made
from the recording in progress: {"last": 3.5} (the API's "last seconds")
and {"start": PDT, "duration": 3.5} starting 0.75 s into the broadcast, so
that both ends of it cut inside a GOP (encoded again) around a copied GOP.
For each: the first and last frames of the MP4 are the source's frames at
those instants (PSNR against the frames decoded from the same rung's
segments, the live segments' exact bytes, and better than against the
neighbouring frames), the duration is the requested one within a frame,
ffmpeg decodes the whole file without an error, audio and video start
together; /vod/CID/clip.mp4 and poster.jpg are served; Debian's chromium
plays the clip with both ends encoded again to its end (every frame, none
corrupt: tests/browser/clip_play.mjs); an origin-only node sharing the
recordings directory serves the same files; a range the source no longer
(or never) held is a 422, bounds are a 400; DELETE removes it.
"""

import json
import math
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import ROOT, Sluice, finish, http, wait_for
from test_admin import api
from test_webhook import Hook

SID, KEY = "clipsrc", "key-clipsrc-0123456789"
W, H, FPS = 640, 360, 30


def journal(recdir, rend):
    rows = []
    with open(os.path.join(recdir, rend, "journal")) as f:
        for line in f:
            if line.endswith("\n"):
                p = line.split()
                rows.append({"msn": int(p[0]), "dur": float(p[1]), "init": p[3], "pdt": int(p[5])})
    return rows


def gray_frames(path, indices):
    """{index: bytes} of the given frames, by display order (select counts decoded frames)."""
    sel = "+".join(f"eq(n\\,{i})" for i in sorted(set(indices)))
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-vf", f"select='{sel}'",
                          "-vsync", "0", "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                         capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    size = W * H
    data = out.stdout
    got = [data[i:i + size] for i in range(0, len(data), size)]
    return dict(zip(sorted(set(indices)), got))  # frames past the end: left out


def psnr(a, b):
    mse = sum((x - y) * (x - y) for x, y in zip(a, b)) / len(a)
    return 99.0 if mse == 0 else 10 * math.log10(255 * 255 / mse)


def probe(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                          "stream=codec_type,start_time,duration,nb_frames", "-of", "json", path],
                         capture_output=True, timeout=30, text=True)
    assert out.returncode == 0, out.stderr
    return {s["codec_type"]: s for s in json.loads(out.stdout)["streams"]}


def pdt_ms(s):
    t = time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")
    import calendar
    return calendar.timegm(t) * 1000 + int(s[20:23])


class TestClips(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="sluice-clips-")
        cls.hook = Hook(lambda req: (200, b"{}", 0))
        cls.sl = Sluice("--record", "--recordings-dir", cls.dir, "--ladder", "360p",
                        "--webhook-url", cls.hook.url, streams=((SID, KEY),))
        cls.pub = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
             "-f", "lavfi", "-i",
             f"testsrc2=size={W}x{H}:rate={FPS},drawtext=text='%{{n}}':fontsize=72:x=20:y=20:"
             "fontcolor=white:box=1:boxcolor=black",
             "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "9",
             "-c:v", "libx264", "-preset", "veryfast", "-bf", "2",
             "-g", "60", "-keyint_min", "60", "-sc_threshold", "0", "-pix_fmt", "yuv420p",
             "-b:v", "1500k", "-c:a", "aac", "-b:a", "128k", "-ac", "2",
             "-f", "flv", cls.sl.rtmp_url(KEY)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.pub.returncode is None:
                finish(cls.pub, 20)
            cls.sl.stop()
        finally:
            cls.hook.close()
            shutil.rmtree(cls.dir, ignore_errors=True)

    def _recording(self):
        for rid in os.listdir(self.dir):
            try:
                with open(os.path.join(self.dir, rid, "recording.json")) as f:
                    j = json.load(f)
            except (OSError, ValueError):
                continue
            if j.get("kind") != "clip" and j["stream_id"] == SID:
                return rid, os.path.join(self.dir, rid)
        return None

    def _ready(self, cid):
        def done():
            st, _, j, _ = api(self.sl, "GET", f"/api/v1/clips/{cid}")
            return j if st == 200 and j["state"] != "processing" else None
        j = wait_for(done, 20, f"clip {cid} made")
        self.assertEqual(j["state"], "ready", j)
        return j

    def _check_clip(self, j, recdir, duration):
        """Frame accuracy, duration, clean decode, A/V start, served by /vod/."""
        cid = j["id"]
        st, hdrs, body = http(self.sl.url(f"/vod/{cid}/clip.mp4"))
        self.assertEqual(st, 200)
        self.assertEqual(hdrs["content-type"], "video/mp4")
        self.assertEqual(len(body), j["bytes"])
        mp4 = os.path.join(self.dir, f"{cid}.mp4")
        with open(mp4, "wb") as f:
            f.write(body)
        # faststart: the moov before the mdat
        self.assertLess(body.find(b"moov"), body.find(b"mdat"))
        st, hdrs, poster = http(self.sl.url(f"/vod/{cid}/poster.jpg"))
        self.assertEqual((st, hdrs["content-type"], poster[:2]), (200, "image/jpeg", b"\xff\xd8"))
        # ffprobe/ffmpeg clean
        dec = subprocess.run(["ffmpeg", "-v", "error", "-i", mp4, "-f", "null", "-"],
                             capture_output=True, timeout=60, text=True)
        self.assertEqual((dec.returncode, dec.stderr), (0, ""))
        s = probe(mp4)
        nframes = round(duration * FPS)
        self.assertEqual(int(s["video"]["nb_frames"]), nframes)
        self.assertAlmostEqual(float(s["video"]["duration"]), duration, delta=1.0 / FPS)
        self.assertLess(abs(float(s["video"]["start_time"]) - float(s["audio"]["start_time"])), 0.025)
        self.assertAlmostEqual(float(s["audio"]["duration"]), duration, delta=0.05)
        # The source: the rung's segments from the first (all share one init).
        rows = journal(recdir, j["rendition"])
        src = os.path.join(self.dir, "src.mp4")
        with open(src, "wb") as out:
            for name in [rows[0]["init"]] + [f"{r['msn']}.m4s" for r in rows]:
                with open(os.path.join(recdir, j["rendition"], name), "rb") as f:
                    out.write(f.read())
        first = round((pdt_ms(j["start_at"]) - rows[0]["pdt"]) * FPS / 1000)
        last = first + nframes - 1
        # the first whole GOP (keyframes every 60 frames from the first
        # segment's start) is copied: its pictures are the source's, bit-exact
        k = -(-first // 60) * 60
        copied = [k, k + 31] if k + 60 <= last + 1 else []
        sf = gray_frames(src, [first - 1, first, first + 1, last - 1, last, last + 1] + copied)
        self.assertIn(last, sf, "the source holds the clip's last frame")
        cf = gray_frames(mp4, [0, nframes - 1] + [i - first for i in copied])
        self.assertEqual(len(cf), 2 + len(copied))
        self.assertTrue(copied, "the range holds a whole GOP")
        for i in copied:
            self.assertEqual(cf[i - first], sf[i], f"copied frame {i - first} differs from source frame {i}")
        for ci, si in ((0, first), (nframes - 1, last)):
            exact = psnr(cf[ci], sf[si])
            self.assertGreater(exact, 35, f"clip frame {ci} vs source frame {si}")
            for other in [o for o in (si - 1, si + 1) if o in sf]:
                self.assertGreater(exact, psnr(cf[ci], sf[other]) + 3,
                                   f"clip frame {ci} is closer to source frame {other} than {si}")
        return cid

    def test_clips(self):
        # three segments (6 s) in the recording's journal
        def recorded():
            r = self._recording()
            if not r or not all(os.path.exists(os.path.join(r[1], rend, "journal"))
                                for rend in ("360p", "audio")):
                return None
            return r if min(len(journal(r[1], "360p")), len(journal(r[1], "audio"))) >= 3 else None
        rec = wait_for(recorded, 20, "three segments of video and audio recorded")
        rid, recdir = rec
        rows = journal(recdir, "360p")
        # bounds and refusals first (answered at once, no clip made)
        st, _, j, _ = api(self.sl, "POST", f"/api/v1/streams/{SID}/clips", {"last": 500})
        self.assertEqual(st, 400, j)
        st, _, j, _ = api(self.sl, "POST", f"/api/v1/streams/{SID}/clips",
                          {"start": "2020-01-01T00:00:00Z", "duration": 4})
        self.assertEqual(st, 422, j)
        self.assertIn("not held", j["error"])
        st, _, j, _ = api(self.sl, "POST", f"/api/v1/recordings/{rid}/clips",
                          {"start_offset": 3600, "duration": 4})
        self.assertEqual(st, 422, j)
        st, _, j, _ = api(self.sl, "POST", "/api/v1/streams/nosuch/clips", {"last": 4})
        self.assertEqual(st, 404, j)
        # the last 3.5 s: cut inside a GOP at the start, copied to the end
        t0 = time.time()
        st, _, a, _ = api(self.sl, "POST", f"/api/v1/streams/{SID}/clips", {"last": 3.5})
        self.assertEqual(st, 201, a)
        self.assertEqual(a["state"], "processing")
        self.assertTrue(a["mp4_url"].endswith(f"/vod/{a['id']}/clip.mp4"))
        # from 0.75 s for 3.5 s: both ends inside GOPs, one GOP copied between
        start = rows[0]["pdt"] + 800
        pdt = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start // 1000)) + ".%03dZ" % (start % 1000)
        st, _, b, _ = api(self.sl, "POST", f"/api/v1/streams/{SID}/clips",
                          {"start": pdt, "duration": 3.5})
        self.assertEqual(st, 201, b)
        a = self._ready(a["id"])
        b = self._ready(b["id"])
        print(f"  clips ready {time.time() - t0:.2f} s after the first request", flush=True)
        self.assertGreater(a["frames_encoded"], 0)
        self.assertGreater(b["frames_copied"], 0)
        self.assertGreater(b["frames_encoded"], 0)
        self.assertEqual(b["start_at"], pdt)
        self._check_clip(a, recdir, 3.5)
        self._check_clip(b, recdir, 3.5)
        # Chromium plays b (both ends encoded again, a copied GOP between)
        # to its end.
        play = subprocess.run(["node", os.path.join(ROOT, "tests", "browser", "clip_play.mjs"),
                               self.sl.url(f"/vod/{b['id']}/clip.mp4"), str(b["frames"])],
                              capture_output=True, text=True, timeout=60)
        lines = [l for l in play.stdout.splitlines() if l.startswith("{")]
        self.assertTrue(lines, play.stdout[-1000:] + play.stderr[-2000:])
        played = json.loads(lines[-1])
        print(f"  chromium: {json.dumps(played)}", flush=True)
        self.assertEqual(played["problems"], [], played)
        # An origin-only node sharing the recordings directory serves it.
        o = Sluice("--role", "origin", "--recordings-dir", self.dir, streams=())
        try:
            for f in ("clip.mp4", "poster.jpg", "master.m3u8"):
                here, there = http(self.sl.url(f"/vod/{b['id']}/{f}")), http(o.url(f"/vod/{b['id']}/{f}"))
                self.assertEqual((there[0], there[2]), (200, here[2]), f)
        finally:
            o.close()
        # clip.ready, one per clip, with the /vod/ URL
        evs = {r["body"]["data"]["clip_id"]: r["body"] for r in self.hook.wait("clip.ready", n=2)}
        self.assertEqual(set(evs), {a["id"], b["id"]})
        self.assertEqual(evs[b["id"]]["stream_id"], SID)
        self.assertEqual(evs[b["id"]]["data"]["url"], f"/vod/{b['id']}/clip.mp4")
        self.assertAlmostEqual(evs[b["id"]]["data"]["duration_s"], 3.5, delta=1.0 / FPS)
        # the HLS form: every rendition, cut on the segments the range touches
        for c in (a, b):
            self.assertTrue(c["hls_url"].endswith(f"/vod/{c['id']}/master.m3u8"), c)
            st, _, master = http(self.sl.url(f"/vod/{c['id']}/master.m3u8"))
            self.assertEqual(st, 200)
            self.assertIn(b"360p/index.m3u8", master)
            self.assertIn(b'URI="audio/index.m3u8"', master)
            st, _, media = http(self.sl.url(f"/vod/{c['id']}/360p/index.m3u8"))
            self.assertIn(b"#EXT-X-ENDLIST", media)
            dec = subprocess.run(["ffmpeg", "-v", "error", "-i", self.sl.url(f"/vod/{c['id']}/master.m3u8"),
                                  "-map", "0", "-f", "null", "-"], capture_output=True, timeout=60, text=True)
            self.assertEqual((dec.returncode, dec.stderr), (0, ""))
        # b's range [0.8, 4.3) touches the first three 2 s segments
        self.assertEqual(media.count(b"#EXTINF:"), 3)
        # listed with source, times, size, state; not among the recordings
        st, _, lst, _ = api(self.sl, "GET", "/api/v1/clips")
        self.assertEqual(st, 200)
        ids = {c["id"]: c for c in lst["clips"]}
        self.assertEqual(set(ids), {a["id"], b["id"]})
        self.assertEqual(ids[b["id"]]["source_recording"], rid)
        st, _, recs, _ = api(self.sl, "GET", f"/api/v1/streams/{SID}/recordings")
        self.assertEqual([r["id"] for r in recs["recordings"]], [rid])
        # DELETE removes it: API and /vod/
        st, _, _, _ = api(self.sl, "DELETE", f"/api/v1/clips/{a['id']}")
        self.assertEqual(st, 204)
        self.assertEqual(api(self.sl, "GET", f"/api/v1/clips/{a['id']}")[0], 404)
        self.assertEqual(http(self.sl.url(f"/vod/{a['id']}/clip.mp4"))[0], 404)
        self.assertFalse(os.path.exists(os.path.join(self.dir, a["id"])))
        # The live window: once the broadcast has ended and its recording is
        # deleted, the store still holds the ended playlists (--ended-ttl),
        # and a clip comes from there (segments as blobs, no recording).
        rc, err = finish(self.pub, 20)
        self.assertEqual(rc, 0, err)
        wait_for(lambda: api(self.sl, "GET", f"/api/v1/recordings/{rid}")[2]["state"] == "ready",
                 15, "the recording finalized")
        self.assertEqual(api(self.sl, "DELETE", f"/api/v1/recordings/{rid}")[0], 204)
        st, _, c, _ = api(self.sl, "POST", f"/api/v1/streams/{SID}/clips", {"last": 2.5})
        self.assertEqual(st, 201, c)
        self.assertIsNone(c["source_recording"])
        c = self._ready(c["id"])
        self.assertEqual(c["frames"], round(2.5 * FPS))
        st, _, body = http(self.sl.url(f"/vod/{c['id']}/clip.mp4"))
        self.assertEqual(st, 200)
        live_mp4 = os.path.join(self.dir, "live.mp4")
        with open(live_mp4, "wb") as f:
            f.write(body)
        s = probe(live_mp4)
        self.assertEqual(int(s["video"]["nb_frames"]), round(2.5 * FPS))
        self.assertIn("audio", s)
        self.assertTrue(c["hls_url"], c)


if __name__ == "__main__":
    unittest.main()
