"""RTMP publish to playable HLS, end to end: real ffmpeg publishes to the
real sluice binary; curl-equivalent HTTP fetches, ffprobe and ffmpeg check
the playlists and media."""

import os
import socket
import subprocess
import tempfile
import time
import unittest

from harness import (Sluice, ffprobe_json, finish, http, parse_master, parse_media, publish,
                     wait_for)

KEY = "demo-secret-key"


class PublishTest(unittest.TestCase):

    def setUp(self):
        self.sluice = Sluice()

    def tearDown(self):
        try:
            self.sluice.stop()
        finally:
            self.sluice.kill()

    def get(self, path):
        return http(self.sluice.url(path))

    def master_ready(self):
        status, _, _ = self.get("/hls/demo/master.m3u8")
        return status == 200

    def test_publish_plays_and_ends_with_endlist(self):
        pub = publish(self.sluice.rtmp_url(KEY), seconds=10)
        wait_for(self.master_ready, 15, "the master playlist")

        status, headers, body = self.get("/hls/demo/master.m3u8")
        self.assertEqual(headers["content-type"], "application/vnd.apple.mpegurl")
        self.assertEqual(headers.get("access-control-allow-origin"), "*")
        media, variants = parse_master(body.decode())
        # A 720p source gets the default ladder from 720p down: 720p (the
        # source copied), 480p and 360p (transcoded), sorted by bandwidth.
        self.assertEqual([uri for _, uri in variants],
                         ["360p/index.m3u8", "480p/index.m3u8", "720p/index.m3u8"], body.decode())
        sizes = {uri: attrs["RESOLUTION"] for attrs, uri in variants}
        self.assertEqual(sizes, {"720p/index.m3u8": "1280x720", "480p/index.m3u8": "854x480",
                                 "360p/index.m3u8": "640x360"})
        for attrs, uri in variants:
            self.assertRegex(attrs["CODECS"], r"^avc1\.64[0-9a-f]{4},mp4a\.40\.2$")
            self.assertAlmostEqual(float(attrs["FRAME-RATE"]), 30.0, delta=0.1)
            self.assertGreater(int(attrs["BANDWIDTH"]), int(attrs["AVERAGE-BANDWIDTH"]) - 1)
            self.assertGreater(int(attrs["AVERAGE-BANDWIDTH"]), 200_000)
            self.assertEqual(attrs["AUDIO"], "audio")
        self.assertEqual(len(media), 1)
        self.assertEqual(media[0]["TYPE"], "AUDIO")
        self.assertEqual(media[0]["GROUP-ID"], "audio")
        self.assertEqual(media[0]["URI"], "audio/index.m3u8")

        # A live player decodes several seconds from the live playlists.
        out = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i",
                              self.sluice.url("/hls/demo/master.m3u8"), "-t", "3", "-f", "null", "-"],
                             capture_output=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr.decode()[-2000:])
        self.assertEqual(out.stderr.decode().strip(), "", "decode errors while live")

        rc, err = finish(pub, 40)
        self.assertEqual(rc, 0, err)

        def ended():
            s, _, b = self.get("/hls/demo/720p/index.m3u8")
            return s == 200 and parse_media(b.decode())["endlist"] and b.decode()
        text = wait_for(ended, 15, "EXT-X-ENDLIST after the publisher left")
        pl = parse_media(text)
        self.assertGreaterEqual(int(pl["tags"]["EXT-X-VERSION"]), 7)
        self.assertEqual(pl["tags"]["EXT-X-MAP"], 'URI="init.mp4"')
        target = int(pl["tags"]["EXT-X-TARGETDURATION"])
        segs = pl["segments"]
        self.assertIn(len(segs), (5, 6))
        for seg in segs:
            self.assertIn("pdt", seg, "every segment has EXT-X-PROGRAM-DATE-TIME")
            self.assertLessEqual(round(seg["duration"]), target)
        # Keyframes every 2 s, target 2 s: every full segment is one GOP.
        for seg in segs[:-1]:
            self.assertAlmostEqual(seg["duration"], 2.0, delta=0.05, msg=text)

        # Content types and each segment starting with a keyframe.
        s, h, init = self.get("/hls/demo/720p/init.mp4")
        self.assertEqual((s, h["content-type"]), (200, "video/mp4"))
        for seg in segs[:3]:
            s, h, data = self.get("/hls/demo/720p/" + seg["uri"])
            self.assertEqual((s, h["content-type"]), (200, "video/iso.segment"))
            with tempfile.NamedTemporaryFile(suffix=".mp4") as f:
                f.write(init + data)
                f.flush()
                frames = ffprobe_json(f.name, "-select_streams", "v", "-show_frames",
                                      "-show_entries", "frame=key_frame,pict_type")["frames"]
                self.assertEqual(frames[0]["key_frame"], 1, f"{seg['uri']} starts with a keyframe")
                self.assertAlmostEqual(len(frames), seg["duration"] * 30, delta=1.5)

        # The ended stream decodes whole with no error: about 10 s of media.
        out = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i",
                              self.sluice.url("/hls/demo/master.m3u8"), "-f", "null", "-"],
                             capture_output=True, timeout=90)
        self.assertEqual(out.returncode, 0, out.stderr.decode()[-2000:])
        self.assertEqual(out.stderr.decode().strip(), "")
        # 10 s of media fit the 6-segment window whole.
        total = sum(s["duration"] for s in segs)
        self.assertAlmostEqual(total, 10.0, delta=0.5)

        # The audio rendition covers the same segments.
        s, _, b = self.get("/hls/demo/audio/index.m3u8")
        self.assertEqual(s, 200)
        apl = parse_media(b.decode())
        self.assertTrue(apl["endlist"])
        self.assertEqual([x["uri"] for x in apl["segments"]], [x["uri"] for x in segs])
        for a, v in zip(apl["segments"], segs):
            self.assertAlmostEqual(a["duration"], v["duration"], delta=0.05)

        log = self.sluice.log()
        self.assertIn("publish started", log)
        self.assertIn("publish ended", log)

    def test_wrong_key_is_refused_and_creates_nothing(self):
        wrong = "not-the-right-key-123"
        pub = publish(self.sluice.rtmp_url(wrong), seconds=3)
        rc, err = finish(pub, 30)
        self.assertNotEqual(rc, 0, "ffmpeg must fail to publish with a wrong key")
        status, _, _ = self.get("/hls/demo/master.m3u8")
        self.assertEqual(status, 404)
        log = self.sluice.log()
        self.assertIn("unknown stream key", log)
        self.assertNotIn(wrong, log)
        self.assertNotIn("publish started", log)

    def test_longer_gop_makes_longer_segments(self):
        # Keyframes every 3 s with a 2 s target: segments are cut at keyframes only.
        pub = publish(self.sluice.rtmp_url(KEY), seconds=10, size="640x360", gop=90)
        rc, err = finish(pub, 40)
        self.assertEqual(rc, 0, err)

        def ended():
            s, _, b = self.get("/hls/demo/360p/index.m3u8")
            return s == 200 and parse_media(b.decode())["endlist"] and b.decode()
        pl = parse_media(wait_for(ended, 15, "ENDLIST"))
        self.assertEqual(int(pl["tags"]["EXT-X-TARGETDURATION"]), 3)
        for seg in pl["segments"][:-1]:
            self.assertAlmostEqual(seg["duration"], 3.0, delta=0.05)

    def test_broken_client_does_not_disturb_a_publisher(self):
        pub = publish(self.sluice.rtmp_url(KEY), seconds=8, size="640x360")
        time.sleep(2)
        # Garbage instead of a handshake, a handshake cut short, and a flood.
        for payload in (b"\x03" + os.urandom(3000), b"\x06" + b"\x00" * 100,
                        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"):
            with socket.create_connection(("127.0.0.1", self.sluice.rtmp_port), timeout=5) as s:
                try:
                    s.sendall(payload)
                    s.settimeout(2)
                    s.recv(65536)
                except OSError:
                    pass
        rc, err = finish(pub, 40)
        self.assertEqual(rc, 0, err)
        s, _, b = self.get("/hls/demo/360p/index.m3u8")
        self.assertEqual(s, 200)
        self.assertGreaterEqual(len(parse_media(b.decode())["segments"]), 3)


class HttpTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.sluice = Sluice()

    @classmethod
    def tearDownClass(cls):
        cls.sluice.stop()

    def test_health(self):
        self.assertEqual(http(self.sluice.url("/healthz"))[0], 200)
        self.assertEqual(http(self.sluice.url("/readyz"))[0], 200)

    def test_not_found(self):
        for path in ("/hls/nope/master.m3u8", "/hls/demo/720p/1.m4s", "/hls/../x", "/",
                     "/hls/demo/720p/01.m4s"):
            status, headers, _ = http(self.sluice.url(path))
            self.assertEqual(status, 404, path)

    def test_methods(self):
        status, headers, _ = http(self.sluice.url("/hls/demo/master.m3u8"), method="POST")
        self.assertEqual(status, 405)
        self.assertIn("GET", headers["allow"])
        status, headers, _ = http(self.sluice.url("/hls/demo/master.m3u8"), method="DELETE")
        self.assertEqual(status, 405)
        status, headers, _ = http(self.sluice.url("/hls/demo/master.m3u8"), method="OPTIONS")
        self.assertEqual(status, 204)
        self.assertEqual(headers["access-control-allow-origin"], "*")
        self.assertIn("GET", headers["access-control-allow-methods"])


class StartupTest(unittest.TestCase):

    def run_sluice(self, *args):
        from harness import SLUICE_BIN
        return subprocess.run([SLUICE_BIN, *args], capture_output=True, timeout=30)

    def test_bad_option_is_a_clear_error(self):
        out = self.run_sluice("--segment-duration", "soon")
        self.assertEqual(out.returncode, 2)
        self.assertIn(b"--segment-duration: 'soon' is not a number", out.stderr)

    def test_help_and_version(self):
        out = self.run_sluice("--help")
        self.assertEqual(out.returncode, 0)
        self.assertIn(b"--rtmp-listen", out.stdout)
        out = self.run_sluice("--version")
        self.assertEqual(out.returncode, 0)
        self.assertRegex(out.stdout, rb"^sluice \d+\.\d+\.\d+")

    def test_values_other_modules_parse_are_configuration_errors(self):
        # A malformed Redis URL or proxy list is refused as a configuration
        # error (exit 2) by --check-config and by a start alike, naming the
        # option and never echoing the password.
        for args in (("--store", "redis://:hunter2-secret@10.0.0.2:port/1"),
                     ("--trusted-proxies", "10.0.0.0/33")):
            for check in ((), ("--check-config",)):
                out = self.run_sluice(*check, *args, "--rtmp-listen", "127.0.0.1:0",
                                      "--http-listen", "127.0.0.1:0",
                                      "--admin-listen", "127.0.0.1:0")
                self.assertEqual(out.returncode, 2, (args, check, out.stderr))
                self.assertIn(args[0].encode() + b": not a", out.stderr)
                self.assertNotIn(b"hunter2", out.stdout + out.stderr)
        out = self.run_sluice("--check-config", "--store", "redis://:pw@10.0.0.2:6380/3?cache-mb=0",
                              "--trusted-proxies", "10.0.0.0/8, ::1")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(b"configuration OK", out.stdout)

    def test_port_in_use(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            port = s.getsockname()[1]
            out = self.run_sluice("--rtmp-listen", f"127.0.0.1:{port}", "--http-listen", "127.0.0.1:0")
            self.assertEqual(out.returncode, 1)
            self.assertIn(b"cannot start RTMP ingest", out.stderr)
            self.assertIn(b"(another process is listening there)", out.stderr)

    def test_privileged_port_says_what_to_do(self):
        # Root without CAP_NET_BIND_SERVICE, as the systemd unit runs it: a
        # port under the unprivileged range is refused with the way out named,
        # whichever listener asks for it.
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            start = int(f.read())
        self.assertGreater(start, 1, "this machine lets anyone bind any port: nothing to test")
        port = min(start, 1024) - 1
        for listener in ("--rtmp-listen", "--http-listen", "--admin-listen"):
            ports = {"--rtmp-listen": "127.0.0.1:0", "--http-listen": "127.0.0.1:0",
                     "--admin-listen": "127.0.0.1:0"}
            ports[listener] = f"127.0.0.1:{port}"
            args = [a for kv in ports.items() for a in kv]
            from harness import SLUICE_BIN
            out = subprocess.run(["setpriv", "--bounding-set=-net_bind_service", "--inh-caps=-all",
                                  SLUICE_BIN, *args], capture_output=True, timeout=30)
            self.assertEqual(out.returncode, 1, listener)
            self.assertRegex(out.stderr, rb"cannot listen on 127\.0\.0\.1:%d: Permission denied "
                             rb"\(ports under 1024 need root or CAP_NET_BIND_SERVICE" % port)


if __name__ == "__main__":
    unittest.main()


class KeyInServerUrlTest(unittest.TestCase):
    """An encoder set up with the key in the server URL and an empty key
    field (rtmp://host/live/KEY) sends the key inside the application name:
    it is refused, told why, and the key never reaches the log (review S12)."""

    def test_key_in_app_is_not_logged(self):
        secret = "SuperSecretStreamKey42"
        sl = Sluice()
        try:
            p = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
                                "-i", "testsrc2=size=320x240:rate=10", "-t", "1", "-c:v", "libx264",
                                "-f", "flv", "-rtmp_app", f"live/{secret}", "-rtmp_playpath", "",
                                f"rtmp://127.0.0.1:{sl.rtmp_port}/live/{secret}"],
                               capture_output=True, timeout=30)
            self.assertNotEqual(p.returncode, 0, "the publish was accepted")
            wait_for(lambda: "connect refused" in sl.log(), 5, "the refusal in the log")
            log = sl.log()
            self.assertIn(f"application 'live' followed by {len(secret) + 1} characters, not logged", log)
            self.assertNotIn(secret, log)
        finally:
            sl.close()
