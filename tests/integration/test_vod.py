"""Recordings played back at /vod/RID/... and the recordings API, against the
real sluice binary. The recordings directory is built by hand in the layout
the recorder writes (docs/api.md, "Recordings"): fMP4 HLS segments made by
ffmpeg's own HLS muxer, a master playlist, a poster, an MP4 and
recording.json, so these tests do not depend on the recorder. One sluice is
started for the whole class, with signed playback (--playback-secret): every
/vod/ request needs the token of the recording's stream. Checked: ffmpeg
plays a recording start to end through the origin, cache headers and
validators, HEAD, byte ranges, tokens, 404 while "recording", path and link
attacks, the list/get/delete API (409 while recording) and the per-stream
"record" override."""

import base64
import hashlib
import hmac
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from harness import Sluice, http, parse_master, parse_media, wait_for

SECRET = "test-vod-playback-secret-0123456789"
IMMUTABLE = "public, max-age=31536000, immutable"
STREAM = "shop"
OLD = "shop-20261122T100000Z"     # ready, with poster and MP4
LIVE = "shop-20261122T110000Z"    # still "recording"
OTHER = "shopx-20261122T120000Z"  # another stream whose id starts the same


# --- docs/cdn.md, "Minting tokens" (Python) -------------------------------
def mint_token(secret, stream_id, ttl=3600, ip="", sid=""):
    exp = str(int(time.time()) + ttl)
    msg = "|".join(["sluice-v1", stream_id, exp, ip, sid]).encode()
    mac = hmac.new(secret.encode(), msg, hashlib.sha256).digest()
    sig = base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    return "~".join([exp, ip, sid, sig])
# ---------------------------------------------------------------------------


def write_json(path, obj):
    """As the recorder does: a temp file renamed over the old one."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def recording_json(rid, stream_id, state, started, poster=None, mp4=None):
    return {"id": rid, "stream_id": stream_id, "state": state,
            "started_at": started, "ended_at": None if state == "recording" else started,
            "duration_s": 6.0, "bytes": 0, "segments": 6, "discontinuities": 0,
            "renditions": ["360p"], "mp4": mp4, "poster": poster}


MASTER = ("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n"
          '#EXT-X-STREAM-INF:BANDWIDTH=900000,AVERAGE-BANDWIDTH=800000,RESOLUTION=320x180,'
          'CODECS="avc1.42c00d,mp4a.40.2",FRAME-RATE=25.000\n360p/index.m3u8\n')


def make_recording(root, rid, stream_id, state, started, media=True):
    """DIR/RID with 6 one-second fMP4 segments (ffmpeg's HLS muxer), a
    master playlist, and when `media` also a poster and an MP4 of it."""
    d = os.path.join(root, rid)
    os.makedirs(os.path.join(d, "360p"))
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "6",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-keyint_min", "25",
         "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2",
         "-f", "hls", "-hls_segment_type", "fmp4", "-hls_time", "1", "-hls_playlist_type", "vod",
         "-hls_fmp4_init_filename", "init.mp4",
         "-hls_segment_filename", os.path.join(d, "360p", "%d.m4s"),
         os.path.join(d, "360p", "index.m3u8")], check=True, timeout=60)
    with open(os.path.join(d, "master.m3u8"), "w") as f:
        f.write(MASTER)
    with open(os.path.join(d, "360p", "journal"), "w") as f:
        f.write("0 1.0\n")
    poster = mp4 = None
    if media:
        subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
                        "-i", os.path.join(d, "360p", "index.m3u8"), "-frames:v", "1",
                        os.path.join(d, "poster.jpg")], check=True, timeout=60)
        subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
                        "-i", os.path.join(d, "360p", "index.m3u8"), "-c", "copy",
                        "-movflags", "+faststart", os.path.join(d, "recording.mp4")],
                       check=True, timeout=60)
        poster, mp4 = "poster.jpg", "recording.mp4"
    write_json(os.path.join(d, "recording.json"),
               recording_json(rid, stream_id, state, started, poster, mp4))
    return d


def raw_get(port, path):
    """The status of a request line sent as it is (no client-side path
    normalisation)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1])


class VodTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="sluice-vod-")
        cls.rec = os.path.join(cls.dir, "recordings")
        os.makedirs(cls.rec)
        make_recording(cls.rec, OLD, STREAM, "ready", "2026-11-22T10:00:00Z")
        make_recording(cls.rec, OTHER, "shopx", "ready", "2026-11-22T12:00:00Z", media=False)
        cls.s = Sluice("--playback-secret", SECRET, "--recordings-dir", cls.rec,
                       streams=((STREAM, "vod-shop-key-0123456789"),
                                ("shopx", "vod-shopx-key-0123456789")))
        # After the start: a "recording" one found at start-up is a crash's, which the ingest
        # role finalizes (docs/recording.md); this one stands for a broadcast being written.
        make_recording(cls.rec, LIVE, STREAM, "recording", "2026-11-22T11:00:00Z", media=False)
        cls.token = mint_token(SECRET, STREAM)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.s.close()
        finally:
            shutil.rmtree(cls.dir, ignore_errors=True)

    def vod(self, path, token=None, method="GET", headers=None):
        tok = self.token if token is None else token
        q = f"?token={tok}" if tok else ""
        return http(self.s.url(f"/vod/{path}{q}"), method=method, headers=headers)

    def file(self, *parts):
        with open(os.path.join(self.rec, *parts), "rb") as f:
            return f.read()

    def api(self, path, method="GET", body=None):
        data = json.dumps(body).encode() if body is not None else None
        import urllib.request
        import urllib.error
        req = urllib.request.Request(self.s.admin_url(path), method=method, data=data,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                text = r.read()
                return r.status, json.loads(text) if text else None
        except urllib.error.HTTPError as e:
            text = e.read()
            return e.code, json.loads(text) if text else None

    def test_plays_start_to_end(self):
        """ffmpeg follows the signed master to the media playlist, init and
        every segment, and gets the whole 6 s."""
        st, _, body = self.vod(f"{OLD}/master.m3u8")
        self.assertEqual(st, 200)
        _, variants = parse_master(body.decode())
        self.assertEqual(variants[0][1], f"360p/index.m3u8?token={self.token}")
        st, _, body = self.vod(f"{OLD}/360p/index.m3u8")
        self.assertEqual(st, 200)
        media = parse_media(body.decode())
        self.assertTrue(media["endlist"])
        self.assertEqual(len(media["segments"]), 6)
        self.assertTrue(all(s["uri"].endswith(f"?token={self.token}") for s in media["segments"]))
        out = os.path.join(self.dir, "played.mp4")
        url = self.s.url(f"/vod/{OLD}/master.m3u8?token={self.token}")
        r = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
                            "-i", url, "-map", "0", "-c", "copy", out],
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace")[-2000:])
        probe = subprocess.run(["ffprobe", "-v", "error", "-of", "json", "-show_format",
                                "-show_streams", out], capture_output=True, timeout=30)
        info = json.loads(probe.stdout)
        self.assertAlmostEqual(float(info["format"]["duration"]), 6.0, delta=1.0)
        self.assertEqual(sorted(s["codec_type"] for s in info["streams"]), ["audio", "video"])
        # The bytes served are the recorded bytes.
        st, _, body = self.vod(f"{OLD}/360p/3.m4s")
        self.assertEqual(body, self.file(OLD, "360p", "3.m4s"))

    def test_headers_and_validators(self):
        cases = [("master.m3u8", "public, max-age=60", "application/vnd.apple.mpegurl"),
                 ("360p/index.m3u8", "public, max-age=60", "application/vnd.apple.mpegurl"),
                 ("360p/init.mp4", IMMUTABLE, "video/mp4"),
                 ("360p/0.m4s", IMMUTABLE, "video/iso.segment"),
                 ("poster.jpg", IMMUTABLE, "image/jpeg"),
                 ("recording.mp4", IMMUTABLE, "video/mp4")]
        for path, cc, ctype in cases:
            with self.subTest(path=path):
                st, h, body = self.vod(f"{OLD}/{path}")
                self.assertEqual(st, 200)
                self.assertEqual(h["cache-control"], cc)
                self.assertEqual(h["content-type"], ctype)
                self.assertEqual(h["access-control-allow-origin"], "*")
                self.assertIn("last-modified", h)
                etag = h["etag"]
                st, h304, body304 = self.vod(f"{OLD}/{path}", headers={"If-None-Match": etag})
                self.assertEqual(st, 304)
                self.assertEqual(body304, b"")
                self.assertEqual(h304["etag"], etag)
                self.assertEqual(h304["cache-control"], cc)
                if not path.endswith(".m3u8"):
                    # Served from the file: the bytes on disk, validated by
                    # size and modification time.
                    self.assertEqual(body, self.file(OLD, *path.split("/")))
                    size = len(body)
                    self.assertTrue(etag.startswith('"v') and etag.endswith(f'-{size:x}"'), etag)
                    self.assertEqual(h["accept-ranges"], "bytes")
        # HEAD: the headers of the 200, no body.
        size = os.path.getsize(os.path.join(self.rec, OLD, "recording.mp4"))
        st, h, body = self.vod(f"{OLD}/recording.mp4", method="HEAD")
        self.assertEqual((st, body), (200, b""))
        self.assertEqual(int(h["content-length"]), size)
        # Playlists: gzip when asked, like live ones.
        st, h, _ = self.vod(f"{OLD}/360p/index.m3u8", headers={"Accept-Encoding": "gzip"})
        self.assertEqual(h.get("content-encoding"), "gzip")
        self.assertIn("Accept-Encoding", h["vary"])

    def test_ranges(self):
        whole = self.file(OLD, "recording.mp4")
        size = len(whole)
        st, h, body = self.vod(f"{OLD}/recording.mp4", headers={"Range": "bytes=100-1099"})
        self.assertEqual(st, 206)
        self.assertEqual(h["content-range"], f"bytes 100-1099/{size}")
        self.assertEqual(body, whole[100:1100])
        st, h, body = self.vod(f"{OLD}/recording.mp4", headers={"Range": "bytes=-500"})
        self.assertEqual((st, body), (206, whole[-500:]))
        st, h, body = self.vod(f"{OLD}/recording.mp4", headers={"Range": f"bytes={size - 10}-"})
        self.assertEqual((st, body), (206, whole[-10:]))
        st, h, _ = self.vod(f"{OLD}/recording.mp4", headers={"Range": f"bytes={size}-"})
        self.assertEqual(st, 416)
        self.assertEqual(h["content-range"], f"bytes */{size}")
        # If-Range with a stale validator: the whole file.
        st, _, body = self.vod(f"{OLD}/recording.mp4",
                               headers={"Range": "bytes=0-9", "If-Range": '"v0-0"'})
        self.assertEqual((st, len(body)), (200, size))
        _, h, _ = self.vod(f"{OLD}/recording.mp4", method="HEAD")
        st, _, body = self.vod(f"{OLD}/recording.mp4",
                               headers={"Range": "bytes=0-9", "If-Range": h["etag"]})
        self.assertEqual((st, body), (206, whole[:10]))
        seg = self.file(OLD, "360p", "2.m4s")
        st, _, body = self.vod(f"{OLD}/360p/2.m4s", headers={"Range": "bytes=8-15"})
        self.assertEqual((st, body), (206, seg[8:16]))

    def test_tokens(self):
        self.assertEqual(self.vod(f"{OLD}/master.m3u8", token="")[0], 403)
        other = mint_token(SECRET, "shopx")
        self.assertEqual(self.vod(f"{OLD}/master.m3u8", token=other)[0], 403)
        self.assertEqual(self.vod(f"{OTHER}/master.m3u8", token=other)[0], 200)
        self.assertEqual(self.vod(f"{OLD}/360p/0.m4s", token=other)[0], 403)
        expired = mint_token(SECRET, STREAM, ttl=-10)
        st, _, body = self.vod(f"{OLD}/360p/0.m4s", token=expired)
        self.assertEqual((st, body), (403, b"token expired\n"))
        forged = mint_token("another-secret-0123456789abcdef", STREAM)
        self.assertEqual(self.vod(f"{OLD}/master.m3u8", token=forged)[0], 403)
        # A recording that does not exist answers like a bad token: without
        # a valid token nobody learns which recordings exist.
        self.assertEqual(self.vod("shop-20990101T000000Z/master.m3u8", token="")[0], 403)
        self.assertEqual(self.vod("shop-20990101T000000Z/master.m3u8")[0], 403)

    def test_not_ready_until_finalised(self):
        """A recording being written is listed but not playable; once its
        recording.json says "ready" it plays, without a restart."""
        st, h, _ = self.vod(f"{LIVE}/master.m3u8")
        self.assertEqual(st, 404)
        self.assertEqual(h["cache-control"], "max-age=1")
        self.assertEqual(self.vod(f"{LIVE}/360p/0.m4s")[0], 404)
        self.assertEqual(self.vod(f"{LIVE}/master.m3u8", token="")[0], 403)
        st, body = self.api(f"/api/v1/recordings/{LIVE}", method="DELETE")
        self.assertEqual(st, 409)
        self.assertIn("error", body)
        self.assertTrue(os.path.isdir(os.path.join(self.rec, LIVE)))
        path = os.path.join(self.rec, LIVE, "recording.json")
        with open(path) as f:
            obj = json.load(f)
        obj["state"] = "ready"
        write_json(path, obj)
        try:
            self.assertEqual(self.vod(f"{LIVE}/master.m3u8")[0], 200)
            self.assertEqual(self.vod(f"{LIVE}/360p/5.m4s")[0], 200)
        finally:
            obj["state"] = "recording"
            write_json(path, obj)
        obj["state"] = "failed"
        write_json(path, obj)
        try:
            self.assertEqual(self.vod(f"{LIVE}/master.m3u8")[0], 404)
        finally:
            obj["state"] = "recording"
            write_json(path, obj)

    def test_path_attacks(self):
        d = os.path.join(self.rec, OLD)
        secret_file = os.path.join(self.dir, "secret.txt")
        with open(secret_file, "w") as f:
            f.write("not for viewers\n")
        # Links below the recordings directory are never followed: a file,
        # a rendition directory, a whole recording.
        os.symlink(secret_file, os.path.join(d, "360p", "99.m4s"))
        os.symlink(os.path.join(d, "360p"), os.path.join(d, "720p"))
        os.symlink(d, os.path.join(self.rec, "shop-20261122T130000Z"))
        os.mkfifo(os.path.join(d, "360p", "98.m4s"))
        try:
            for path in [f"{OLD}/360p/99.m4s", f"{OLD}/720p/index.m3u8", f"{OLD}/720p/0.m4s",
                         f"{OLD}/360p/98.m4s", f"{OLD}/recording.json", f"{OLD}/360p/journal",
                         f"{OLD}/360p/1.0.m4s", f"{OLD}/360p/index.m3u8.tmp"]:
                with self.subTest(path=path):
                    self.assertEqual(self.vod(path)[0], 404)
            self.assertEqual(self.vod("shop-20261122T130000Z/master.m3u8")[0], 403)
            tok = f"?token={self.token}"
            for path in [f"/vod/{OLD}/../{OLD}/master.m3u8", f"/vod/{OLD}/360p/../master.m3u8",
                         f"/vod/{OLD}/%2e%2e/{OLD}/master.m3u8", f"/vod/..%2fsecret.txt",
                         f"/vod/{OLD}/360p%2f..%2f..%2f{OLD}/master.m3u8",
                         f"/vod/{OLD}//master.m3u8",
                         f"/vod/.{OLD}/master.m3u8", "/vod/" + "x" * 96 + "/master.m3u8"]:
                with self.subTest(path=path):
                    self.assertEqual(raw_get(self.s.http_port, path + tok), 404)
            self.assertEqual(raw_get(self.s.http_port, f"/vod/{OLD}/master.m3u8" + tok), 200)
        finally:
            for p in [os.path.join(d, "360p", "99.m4s"), os.path.join(d, "720p"),
                      os.path.join(self.rec, "shop-20261122T130000Z"),
                      os.path.join(d, "360p", "98.m4s")]:
                os.unlink(p)

    def test_api_list_get_delete(self):
        st, body = self.api(f"/api/v1/streams/{STREAM}/recordings")
        self.assertEqual(st, 200)
        recs = body["recordings"]
        self.assertEqual([r["id"] for r in recs], [LIVE, OLD])  # newest first, not shopx's
        self.assertEqual([r["state"] for r in recs], ["recording", "ready"])
        base = f"http://127.0.0.1:{self.s.http_port}"
        st, rec = self.api(f"/api/v1/recordings/{OLD}")
        self.assertEqual(st, 200)
        self.assertEqual(rec["stream_id"], STREAM)
        self.assertEqual(rec["renditions"], ["360p"])
        self.assertEqual(rec["playback_url"], f"{base}/vod/{OLD}/master.m3u8")
        self.assertEqual(rec["poster_url"], f"{base}/vod/{OLD}/poster.jpg")
        self.assertEqual(rec["mp4_url"], f"{base}/vod/{OLD}/recording.mp4")
        st, rec = self.api(f"/api/v1/recordings/{OTHER}")
        self.assertEqual(st, 200)
        self.assertNotIn("poster_url", rec)
        self.assertNotIn("mp4_url", rec)
        self.assertEqual(self.api("/api/v1/recordings/shop-20990101T000000Z")[0], 404)
        self.assertEqual(self.api("/api/v1/recordings/..")[0], 404)
        self.assertEqual(self.api("/api/v1/streams/nosuch/recordings")[0], 404)
        self.assertEqual(self.api(f"/api/v1/recordings/{OLD}", method="POST", body={})[0], 405)
        # Delete a copy of a ready recording: 204, gone from the API, the
        # origin and the disk (nothing hidden left behind).
        victim = "shop-20261122T090000Z"
        shutil.copytree(os.path.join(self.rec, OLD), os.path.join(self.rec, victim),
                        symlinks=True)
        obj = recording_json(victim, STREAM, "ready", "2026-11-22T09:00:00Z")
        write_json(os.path.join(self.rec, victim, "recording.json"), obj)
        # A link inside is removed, never followed.
        keep = os.path.join(self.dir, "keep.txt")
        with open(keep, "w") as f:
            f.write("keep\n")
        os.symlink(keep, os.path.join(self.rec, victim, "360p", "link"))
        os.symlink(self.dir, os.path.join(self.rec, victim, "dirlink"))
        self.assertEqual(self.vod(f"{victim}/master.m3u8")[0], 200)
        _, body = self.api(f"/api/v1/streams/{STREAM}/recordings")
        self.assertEqual([r["id"] for r in body["recordings"]], [LIVE, OLD, victim])
        st, _ = self.api(f"/api/v1/recordings/{victim}", method="DELETE")
        self.assertEqual(st, 204)
        self.assertEqual(self.api(f"/api/v1/recordings/{victim}")[0], 404)
        self.assertEqual(self.api(f"/api/v1/recordings/{victim}", method="DELETE")[0], 404)
        self.assertEqual(self.vod(f"{victim}/master.m3u8")[0], 403)
        self.assertEqual(sorted(os.listdir(self.rec)), sorted([OLD, LIVE, OTHER]))
        self.assertTrue(os.path.exists(keep))
        self.assertTrue(os.path.isdir(self.dir))
        _, body = self.api(f"/api/v1/streams/{STREAM}/recordings")
        self.assertEqual([r["id"] for r in body["recordings"]], [LIVE, OLD])

    def test_origin_role_open_playback(self):
        """A second process with only the origin role serves the same
        directory (as origins sharing a mount do); without --playback-secret
        no token is needed, and the same rules hold."""
        o = Sluice("--role", "origin", "--recordings-dir", self.rec, streams=())
        try:
            st, h, body = http(o.url(f"/vod/{OLD}/master.m3u8"))
            self.assertEqual((st, body.decode()), (200, MASTER))
            st, h2, body = http(o.url(f"/vod/{OLD}/360p/4.m4s"))
            self.assertEqual((st, body), (200, self.file(OLD, "360p", "4.m4s")))
            # The same file has the same validator on every origin.
            self.assertEqual(h2["etag"], self.vod(f"{OLD}/360p/4.m4s")[1]["etag"])
            self.assertEqual(http(o.url(f"/vod/{LIVE}/master.m3u8"))[0], 404)
            self.assertEqual(http(o.url("/vod/shop-20990101T000000Z/master.m3u8"))[0], 404)
            self.assertEqual(http(o.url(f"/vod/{OLD}/recording.json"))[0], 404)
        finally:
            o.close()

    def test_record_override(self):
        """POST and PATCH "record"; the status says the effective value
        (this server runs without --record, so null means false)."""
        st, created = self.api("/api/v1/streams", method="POST", body={"name": "a", "record": True})
        self.assertEqual(st, 201)
        self.assertIs(created["record"], True)
        sid = created["id"]
        self.assertIs(self.api(f"/api/v1/streams/{sid}")[1]["record"], True)
        st, status = self.api(f"/api/v1/streams/{sid}", method="PATCH", body={"record": False})
        self.assertEqual(st, 200)
        self.assertIs(status["record"], False)
        self.assertIs(self.api(f"/api/v1/streams/{sid}")[1]["record"], False)
        self.assertEqual(self.api(f"/api/v1/streams/{sid}", method="PATCH",
                                  body={"record": True})[1]["record"], True)
        _, listing = self.api("/api/v1/streams")
        self.assertIs({s["id"]: s for s in listing["streams"]}[sid]["record"], True)
        st, status = self.api(f"/api/v1/streams/{sid}", method="PATCH", body={"record": None})
        self.assertEqual((st, status["record"]), (200, False))
        # Refused: the wrong type, another field, an unknown stream.
        self.assertEqual(self.api(f"/api/v1/streams/{sid}", method="PATCH",
                                  body={"record": "yes"})[0], 400)
        self.assertEqual(self.api(f"/api/v1/streams/{sid}", method="PATCH",
                                  body={"name": "b"})[0], 400)
        self.assertEqual(self.api(f"/api/v1/streams/{sid}", method="PATCH", body={})[0], 400)
        self.assertEqual(self.api("/api/v1/streams/nosuch", method="PATCH",
                                  body={"record": True})[0], 404)
        st, _ = self.api("/api/v1/streams", method="POST", body={"name": "c", "record": 1})
        self.assertEqual(st, 400)
        st, created = self.api("/api/v1/streams", method="POST", body={"name": "d"})
        self.assertIs(created["record"], False)
        # A predefined stream (--stream) takes an override too.
        st, status = self.api(f"/api/v1/streams/{STREAM}", method="PATCH", body={"record": True})
        self.assertEqual((st, status["record"]), (200, True))
        for s in (sid, created["id"]):
            self.assertEqual(self.api(f"/api/v1/streams/{s}", method="DELETE")[0], 204)


if __name__ == "__main__":
    unittest.main()
