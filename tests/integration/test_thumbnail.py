"""Live thumbnails end to end: real ffmpeg publishes to the real sluice
binary, and /hls/ID/thumbnail.jpg is checked with ffprobe.

One sluice with a 360p-only ladder and 1 s segments serves two streams at
once: "tx" (854x480 source, so the 360p rung is transcoded and the
pipeline's own decoded picture is used) and "cp" (640x360 source: the rung
is the source copied, no decoder, so thumbnail.c decodes the keyframe
itself). A second, short-lived sluice with --playback-secret checks the
signed-playback rules without publishing anything."""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import tempfile
import time
import unittest

from harness import Sluice, http, publish, wait_for

TX_KEY = "thumb-tx-key-1"
CP_KEY = "thumb-cp-key-2"
SECRET = "thumbnail-playback-secret-42"


def mint_token(secret, stream_id, ttl=3600):
    """docs/cdn.md, "Minting tokens" (no address or session binding)."""
    exp = str(int(time.time()) + ttl)
    msg = "|".join(["sluice-v1", stream_id, exp, "", ""]).encode()
    sig = base64.urlsafe_b64encode(hmac.new(secret.encode(), msg, hashlib.sha256).digest())
    return "~".join([exp, "", "", sig.rstrip(b"=").decode()])


def probe_jpeg(body):
    """(codec, width, height) of a JPEG body, by ffprobe."""
    with tempfile.NamedTemporaryFile(suffix=".jpg") as f:
        f.write(body)
        f.flush()
        out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0",
                              "-show_entries", "stream=codec_name,width,height", "-of", "json",
                              f.name], capture_output=True, timeout=30)
        assert out.returncode == 0, out.stderr.decode()
        s = json.loads(out.stdout)["streams"][0]
        return s["codec_name"], s["width"], s["height"]


class ThumbnailTest(unittest.TestCase):
    def test_live_thumbnails(self):
        sl = Sluice("--ladder", "360p", "--segment-duration", "1",
                    streams=(("tx", TX_KEY), ("cp", CP_KEY)))
        pubs = []
        try:
            url = sl.url("/hls/tx/thumbnail.jpg")
            st, hd, _ = http(url)
            self.assertEqual(st, 404, "no thumbnail before anything was published")
            pubs.append(publish(sl.rtmp_url(TX_KEY), seconds=9, size="854x480", gop=30))
            pubs.append(publish(sl.rtmp_url(CP_KEY), seconds=9, size="640x360", gop=30))

            def fetched(u):
                st, hd, body = http(u)
                return (hd, body) if st == 200 else None

            hd, body = wait_for(lambda: fetched(url), 15, "tx thumbnail")
            self.assertEqual(hd["content-type"], "image/jpeg")
            self.assertEqual(hd["cache-control"], "public, max-age=1")
            etag = hd["etag"]
            self.assertTrue(etag.startswith('"'))
            self.assertEqual(probe_jpeg(body), ("mjpeg", 854, 480))
            st, hd, _ = http(url, headers={"If-None-Match": etag})
            if st == 200:  # a new segment started meanwhile: then it is another picture
                self.assertNotEqual(hd["etag"], etag)
            else:
                self.assertEqual(st, 304)

            # ?width=N: scaled keeping the aspect (480 * 320 / 854 = 179.9).
            st, hd320, small = http(url + "?width=320")
            self.assertEqual(st, 200)
            self.assertEqual(hd320["content-type"], "image/jpeg")
            self.assertEqual(probe_jpeg(small), ("mjpeg", 320, 180))
            self.assertNotEqual(hd320["etag"], etag)
            self.assertLess(len(small), len(body))
            # Widths go up to the next of nine (review S16: each other N
            # would be a decode and a scale): 300 and 241 are 320's copy.
            for n in ("300", "241"):
                st, hd, same = http(url + "?width=" + n)
                self.assertEqual(st, 200)
                if hd["etag"] == hd320["etag"]:  # the same picture (no new segment meanwhile)
                    self.assertEqual(same, small)
                self.assertEqual(probe_jpeg(same), ("mjpeg", 320, 180))
            self.assertEqual(probe_jpeg(http(url + "?width=100")[2]), ("mjpeg", 120, 67))
            # Wider than the source: the stored picture, never upscaled.
            st, _, big = http(url + "?width=1280")
            self.assertEqual(st, 200)
            self.assertEqual(probe_jpeg(big)[1:], (854, 480))
            for bad in ("15", "1281", "0320", "-320", "320.5", "abc", "", "99999999999"):
                st, hd, _ = http(url + "?width=" + bad)
                self.assertEqual(st, 400, f"width={bad!r}")
                self.assertEqual(hd["cache-control"], "max-age=1")

            # The copy-only stream gets thumbnails too, from its own decoder.
            cp = sl.url("/hls/cp/thumbnail.jpg")
            _, cbody = wait_for(lambda: fetched(cp), 15, "cp thumbnail")
            self.assertEqual(probe_jpeg(cbody), ("mjpeg", 640, 360))
            log = sl.log()
            self.assertIn("ladder for 640x360: 360p 640x360 copy", log)
            self.assertRegex(log, r"ladder for 854x480: 360p 640x360 (ultrafast|superfast|veryfast)")

            # A few segments later the picture (testsrc2 moves) and so the ETag changed.
            wait_for(lambda: http(url)[1].get("etag", etag) != etag, 10, "a new thumbnail")
            _, hd2, body2 = http(url + "?width=320")
            self.assertNotEqual(hd2["etag"], hd320["etag"], "the scaled copy follows the source")
            self.assertEqual(probe_jpeg(body2), ("mjpeg", 320, 180))

            # Thumbnails are not viewers (listing pages fetch every channel's).
            st, _, js = http(sl.admin_url("/api/v1/streams/tx"))
            self.assertEqual(st, 200)
            self.assertEqual(json.loads(js)["viewers"], 0)

            # After the end the last thumbnail stays (the ended TTL).
            for p in pubs:
                p.communicate(timeout=30)
            wait_for(lambda: sl.log().count("stream ended after") >= 2, 15, "both streams ended")
            st, _, last = http(url)
            self.assertEqual(st, 200)
            self.assertEqual(probe_jpeg(last), ("mjpeg", 854, 480))
            self.assertNotIn("thumbnail skipped", sl.log())
        finally:
            sl.close(*pubs)

    def test_signed_playback(self):
        sl = Sluice("--playback-secret", SECRET)
        try:
            url = sl.url("/hls/demo/thumbnail.jpg")
            st, _, _ = http(url)
            self.assertEqual(st, 403)
            st, _, _ = http(url + "?width=320")
            self.assertEqual(st, 403)
            st, _, _ = http(url + "?token=" + mint_token(SECRET, "other"))
            self.assertEqual(st, 403)
            st, _, _ = http(url + "?token=" + mint_token(SECRET, "demo"))
            self.assertEqual(st, 404, "authorised, but nothing published yet")
        finally:
            sl.close()


if __name__ == "__main__":
    unittest.main()
