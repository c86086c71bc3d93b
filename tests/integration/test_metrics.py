"""Metrics, stats and stream status against the real sluice: /metrics must
pass `promtool check metrics` idle and during a publish, and its values must
move the way the traffic does (ingest bytes and frames, segments produced,
origin requests by kind, the latency histogram counting a held LL-HLS
request's wait, viewer sessions appearing and expiring, X-Forwarded-For
believed only from a trusted proxy); /api/v1/stats and the live status
object must report what a real ffmpeg publisher sends."""

import http.client as httpclient
import json
import re
import subprocess
import time
import unittest

from harness import Sluice, http, publish, shared_redis, wait_for
from test_webhook import Hook

REDIS_DB = 13

KEY = "demo-secret-key"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def parse_metrics(text):
    """{(name, frozenset(labels)): value} of a Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(metrics, name, **labels):
    return metrics.get((name, frozenset(labels.items())), 0.0)


def promtool_check(text):
    """Runs `promtool check metrics` (lint included) on text."""
    r = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    return r.returncode, r.stdout.decode(errors="replace")


def get_from(host, source, port, path, headers=None, timeout=10):
    """A GET whose client socket is bound to `source` (another loopback
    address), so the origin sees a different peer."""
    c = httpclient.HTTPConnection(host, port, timeout=timeout, source_address=(source, 0))
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


class MetricsTest(unittest.TestCase):

    def metrics(self, s):
        status, headers, body = http(s.admin_url("/metrics"))
        self.assertEqual(status, 200, body)
        self.assertTrue(headers["content-type"].startswith("text/plain"), headers)
        return body.decode()

    def json_get(self, s, path):
        status, _, body = http(s.admin_url(path))
        self.assertEqual(status, 200, body)
        return json.loads(body)

    def test_idle_exposition_passes_promtool_and_stats_have_every_field(self):
        s = Sluice()
        try:
            text = self.metrics(s)
            rc, out = promtool_check(text)
            self.assertEqual(rc, 0, out + "\n" + text)
            m = parse_metrics(text)
            self.assertEqual(value(m, "sluice_live_streams"), 0)
            self.assertEqual(value(m, "sluice_build_info", version=value_label(text, "version")), 1)
            self.assertGreater(value(m, "sluice_process_resident_memory_bytes"), 1 << 20)
            self.assertGreater(value(m, "sluice_process_open_fds"), 3)
            self.assertGreater(value(m, "sluice_process_start_time_seconds"), time.time() - 120)
            self.assertEqual(value(m, "sluice_store_connected", backend="memory"), 1)
            # The key is a secret: never in the exposition.
            self.assertNotIn(KEY, text)

            st = self.json_get(s, "/api/v1/stats")
            for k in ("uptime_s", "version", "live_streams", "ingest_bitrate_kbps", "egress",
                      "viewers", "transcode", "store", "process"):
                self.assertIn(k, st)
            self.assertEqual(st["live_streams"], 0)
            self.assertEqual(set(st["egress"]["requests_per_s"]) >= {"playlist", "part", "segment"},
                             True, st)
            self.assertIn("bytes_per_s", st["egress"])
            self.assertEqual(st["store"]["backend"], "memory")
            self.assertIs(st["store"]["connected"], True)
            self.assertEqual(st["store"]["errors"], 0)
            for k in ("cpu_percent", "rss_bytes", "open_fds"):
                self.assertIsInstance(st["process"][k], (int, float))
            self.assertGreater(st["process"]["rss_bytes"], 1 << 20)
            self.assertIn("load", st["transcode"])

            idle = self.json_get(s, "/api/v1/streams/demo")
            self.assertEqual(idle["state"], "idle")
            self.assertEqual(idle["viewers"], 0)
            self.assertNotIn("ingest", idle)
            self.assertNotIn("renditions", idle)
        finally:
            s.close()

    def test_copy_only_ladder_still_reports(self):
        # No rung is encoded (the 360p source is copied): nothing is decoded,
        # yet the segment count and the rendition's bit rate must move, or
        # the segment alerts could never fire for such a stream.
        s = Sluice("--segment-duration", "1", "--ladder", "360p")
        pub = publish(s.rtmp_url(KEY), seconds=6, size="640x360", gop=30)
        try:
            def two_segments():
                m = parse_metrics(self.metrics(s))
                segs = [v for (n, l), v in m.items()
                        if n == "sluice_transcode_segments_total" and ("stream", "demo") in l]
                return m if segs and segs[0] >= 2 else None
            m = wait_for(two_segments, 20, "two segments counted")
            self.assertGreater(value(m, "sluice_transcode_rendition_bytes_per_second",
                                     stream="demo", rendition="360p"), 10_000)
            st = self.json_get(s, "/api/v1/streams/demo")
            self.assertIs(st["renditions"][0]["passthrough"], True, st)
            self.assertGreater(st["renditions"][0]["bitrate_kbps"], 100, st)
        finally:
            s.close(pub)

    def test_live_values_move_status_and_viewers(self):
        # 1 s segments: sessions expire after 2 s. 127.0.0.2 is a trusted
        # proxy, 127.0.0.1 (the other requests) is not.
        s = Sluice("--segment-duration", "1", "--ladder", "720p,360p",
                   "--trusted-proxies", "10.9.0.0/16, 127.0.0.2 ,::1")
        pub = None
        try:
            pub = publish(s.rtmp_url(KEY), seconds=60)
            wait_for(lambda: http(s.url("/hls/demo/master.m3u8?sid=warmup"))[0] == 200, 20,
                     "the master playlist")
            # Let a few segments and a full meter window go by.
            wait_for(lambda: self.json_get(s, "/api/v1/streams/demo").get("ingest", {})
                     .get("window_s", 0) >= 4, 20, "a full ingest window")

            # promtool during the publish.
            text = self.metrics(s)
            rc, out = promtool_check(text)
            self.assertEqual(rc, 0, out + "\n" + text)
            self.assertNotIn(KEY, text)
            m1 = parse_metrics(text)
            self.assertEqual(value(m1, "sluice_live_streams"), 1)

            # The status object of the live stream.
            st = self.json_get(s, "/api/v1/streams/demo")
            self.assertEqual(st["state"], "live")
            ing = st["ingest"]
            # publish(): 1500 kb/s video (x264 ABR) + 128 kb/s audio.
            self.assertGreater(ing["bitrate_kbps"], 0.6 * 1628, ing)
            self.assertLess(ing["bitrate_kbps"], 1.5 * 1628, ing)
            self.assertAlmostEqual(ing["fps"], 30, delta=3)
            self.assertEqual((ing["width"], ing["height"]), (1280, 720))
            self.assertEqual((ing["video_codec"], ing["audio_codec"]), ("h264", "aac"))
            self.assertGreaterEqual(ing["uptime_s"], 3)
            self.assertEqual(ing["dropped_frames"], 0)
            self.assertEqual(ing["late_frames"], 0)
            self.assertIsInstance(ing["bitrate_stddev_kbps"], int)
            names = [r["name"] for r in st["renditions"]]
            self.assertEqual(names, ["720p", "360p"], st)
            for r in st["renditions"]:
                self.assertGreater(r["encoder_speed"], 0, r)
                self.assertIsInstance(r["passthrough"], bool)
            self.assertIs(st["renditions"][0]["passthrough"], True)
            self.assertIs(st["renditions"][1]["passthrough"], False)
            self.assertEqual((st["renditions"][1]["width"], st["renditions"][1]["height"]),
                             (640, 360))
            self.assertIn(st["health"], ("good", "fair", "poor"))
            self.assertTrue(st["health_reason"])
            self.assertNotIn(KEY, json.dumps(st))

            # Ingest and transcode counters grow with the publish.
            time.sleep(2.2)
            m2 = parse_metrics(self.metrics(s))
            for name, labels in (("sluice_ingest_bytes_total", {"stream": "demo"}),
                                 ("sluice_ingest_frames_total", {"stream": "demo", "track": "video"}),
                                 ("sluice_ingest_frames_total", {"stream": "demo", "track": "audio"}),
                                 ("sluice_transcode_segments_total", {"stream": "demo"}),
                                 ("sluice_transcode_frames_total",
                                  {"stream": "demo", "rendition": "360p"})):
                self.assertGreater(value(m2, name, **labels), value(m1, name, **labels),
                                   f"{name}{labels} did not grow")
            # About 2.2 s of 30 fps video.
            grown = (value(m2, "sluice_ingest_frames_total", stream="demo", track="video") -
                     value(m1, "sluice_ingest_frames_total", stream="demo", track="video"))
            self.assertGreater(grown, 40)
            self.assertGreater(value(m2, "sluice_transcode_segment_lag_seconds_count",
                                     stream="demo"), 0)
            self.assertGreater(value(m2, "sluice_transcode_encoder_speed_ratio", stream="demo",
                                     rendition="360p"), 0)

            # Origin counters by kind: a playlist, an init, a segment, a part.
            _, _, body = http(s.url("/hls/demo/720p/index.m3u8?sid=counter"))
            media = body.decode()
            seg = re.findall(r"^(\d+)\.m4s$", media, re.M)[-1]
            part = re.findall(r'#EXT-X-PART:.*URI="([^"]+)"', media)[-1]
            before = parse_metrics(self.metrics(s))
            for path in ("/hls/demo/720p/index.m3u8", "/hls/demo/720p/init.mp4",
                         f"/hls/demo/720p/{seg}.m4s", f"/hls/demo/720p/{part}"):
                status, _, _ = http(s.url(path + "?sid=counter"))
                self.assertEqual(status, 200, path)
            self.assertEqual(http(s.url("/hls/demo/720p/999999999999.m4s?sid=counter"))[0], 404)
            after = parse_metrics(self.metrics(s))
            for kind in ("playlist", "init", "segment", "part"):
                self.assertGreaterEqual(
                    value(after, "sluice_http_requests_total", kind=kind, code="200") -
                    value(before, "sluice_http_requests_total", kind=kind, code="200"), 1, kind)
                self.assertGreater(value(after, "sluice_http_response_bytes_total", kind=kind),
                                   value(before, "sluice_http_response_bytes_total", kind=kind),
                                   kind)
            self.assertGreaterEqual(
                value(after, "sluice_http_requests_total", kind="segment", code="404") -
                value(before, "sluice_http_requests_total", kind="segment", code="404"), 1)

            # A blocking playlist reload counts its whole wait.
            msn = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", media).group(1))
            nsegs = len(re.findall(r"^\d+\.m4s$", media, re.M))
            before = parse_metrics(self.metrics(s))
            t0 = time.time()
            status, _, _ = http(s.url(f"/hls/demo/720p/index.m3u8?_HLS_msn={msn + nsegs + 1}"
                                      "&sid=counter"), timeout=15)
            waited = time.time() - t0
            self.assertEqual(status, 200)
            after = parse_metrics(self.metrics(s))
            grew = (value(after, "sluice_http_request_duration_seconds_sum", kind="playlist") -
                    value(before, "sluice_http_request_duration_seconds_sum", kind="playlist"))
            self.assertGreater(waited, 0.3)
            self.assertGreater(grew, 0.8 * waited)
            self.assertGreater(value(after, "sluice_http_request_duration_seconds_count",
                                     kind="playlist"),
                               value(before, "sluice_http_request_duration_seconds_count",
                                     kind="playlist"))

            # Stats JSON sees the traffic.
            def stats_with_rates():
                js = self.json_get(s, "/api/v1/stats")
                return js if js["egress"]["requests_per_s"]["playlist"] > 0 else None
            js = wait_for(stats_with_rates, 8, "request rates in /api/v1/stats")
            self.assertEqual(js["live_streams"], 1)
            self.assertGreater(js["ingest_bitrate_kbps"], 500)
            self.assertGreater(js["egress"]["bytes_per_s"], 0)
            self.assertEqual(js["transcode"]["streams"], 1)
            self.assertGreater(js["transcode"]["load"], 0)
            self.assertGreater(js["process"]["cpu_percent"], 0)

            # Viewers: every session expires 2 s after its last request.
            wait_for(lambda: self.json_get(s, "/api/v1/streams/demo")["viewers"] == 0, 8,
                     "the earlier sessions to expire")
            for sid in ("alice", "bob"):
                self.assertEqual(http(s.url(f"/hls/demo/720p/index.m3u8?sid={sid}"))[0], 200)
            self.assertEqual(http(s.url("/hls/demo/master.m3u8?sid=alice"))[0], 200)
            self.assertEqual(self.json_get(s, "/api/v1/streams/demo")["viewers"], 2)
            self.assertEqual(value(parse_metrics(self.metrics(s)), "sluice_viewers",
                                   stream="demo"), 2)
            wait_for(lambda: self.json_get(s, "/api/v1/streams/demo")["viewers"] == 0, 8,
                     "alice and bob to expire")
            self.assertEqual(value(parse_metrics(self.metrics(s)), "sluice_viewers",
                                   stream="demo"), 0)

            # X-Forwarded-For: ignored from an untrusted peer (127.0.0.1): two
            # forwarded addresses with one User-Agent are one session ...
            def created():
                return value(parse_metrics(self.metrics(s)), "sluice_viewer_sessions_created_total")
            c0 = created()
            ua = {"User-Agent": "metrics-test/1"}
            for fwd in ("198.51.100.1", "198.51.100.2"):
                st_, _ = get_from("127.0.0.1", "127.0.0.1", s.http_port,
                                  "/hls/demo/720p/index.m3u8",
                                  headers=dict(ua, **{"X-Forwarded-For": fwd}))
                self.assertEqual(st_, 200)
            self.assertEqual(created() - c0, 1)
            # ... and believed from a trusted one (127.0.0.2): two sessions,
            # each the nearest untrusted hop (trusted hops are skipped).
            c1 = created()
            for fwd in ("203.0.113.7", "203.0.113.8, 10.9.1.1"):
                st_, _ = get_from("127.0.0.1", "127.0.0.2", s.http_port,
                                  "/hls/demo/720p/index.m3u8",
                                  headers=dict(ua, **{"X-Forwarded-For": fwd}))
                self.assertEqual(st_, 200)
            self.assertEqual(created() - c1, 2)
            # The same client again through the proxy is not a new session.
            get_from("127.0.0.1", "127.0.0.2", s.http_port, "/hls/demo/720p/index.m3u8",
                     headers=dict(ua, **{"X-Forwarded-For": "203.0.113.7"}))
            self.assertEqual(created() - c1, 2)
            # The three sessions, refreshed (2 s expiry), are the stream's viewers.
            for src, fwd in (("127.0.0.1", "198.51.100.1"), ("127.0.0.2", "203.0.113.7"),
                             ("127.0.0.2", "203.0.113.8")):
                get_from("127.0.0.1", src, s.http_port, "/hls/demo/720p/index.m3u8",
                         headers=dict(ua, **{"X-Forwarded-For": fwd}))
            self.assertEqual(self.json_get(s, "/api/v1/streams/demo")["viewers"], 3)
        finally:
            s.close(pub)

    def test_viewers_summed_across_nodes(self):
        """Viewers counted on an origin-only node show in the ingest node's
        status (each origin writes its count into the store; the admin API
        sums them), and the origin node's status of the stream is live."""
        port = shared_redis()
        subprocess.run(["redis-cli", "-p", str(port), "-n", str(REDIS_DB), "flushdb"],
                       check=True, capture_output=True)
        store = f"redis://127.0.0.1:{port}/{REDIS_DB}"
        ingest = Sluice("--store", store, "--segment-duration", "1",
                        streams=(("demo", KEY),))
        origin = None
        pub = None
        try:
            origin = Sluice("--store", store, "--role", "origin", "--segment-duration", "1",
                            streams=())
            pub = publish(ingest.rtmp_url(KEY), seconds=60, size="320x240")
            wait_for(lambda: http(origin.url("/hls/demo/master.m3u8?sid=n1"))[0] == 200, 20,
                     "the master playlist on the origin node")
            def both():
                for sid in ("n1", "n2"):
                    http(origin.url(f"/hls/demo/master.m3u8?sid={sid}"))
                return self.json_get(ingest, "/api/v1/streams/demo")["viewers"] == 2
            wait_for(both, 10, "the origin node's viewers on the ingest node")
            doc = self.json_get(origin, "/api/v1/streams/demo")
            self.assertEqual(doc["state"], "live")
            self.assertEqual(doc["viewers"], 2)
            self.assertEqual((doc["ingest"]["width"], doc["ingest"]["height"]), (320, 240))
            # No requests: both nodes see them go (2 s expiry, then the
            # origin's next write of its count).
            wait_for(lambda: self.json_get(ingest, "/api/v1/streams/demo")["viewers"] == 0, 10,
                     "the viewers to expire on the ingest node")
        finally:
            try:
                if origin:
                    origin.close()
            finally:
                ingest.close(pub)

    def test_slow_transcoder_turns_health_poor_with_a_reason(self):
        # A worker slowed to about two thirds of real time (simulated encoding
        # cost, overload protection off): the stream goes from good to poor,
        # the reason names the transcoder, the change is logged, sent to the
        # webhook as stream.health_changed, and /metrics says 2.
        hook = Hook(lambda r: (200, b"", 0))
        self.addCleanup(hook.close)
        s = Sluice("--segment-duration", "1", "--ladder", "360p", "--passthrough", "never",
                   "--debug-slow-encode", "450", "--overload-protection", "off",
                   "--webhook-url", hook.url)
        pub = None
        try:
            pub = publish(s.rtmp_url(KEY), seconds=60, size="640x360")
            wait_for(lambda: self.json_get(s, "/api/v1/streams/demo")["state"] == "live", 15,
                     "the stream to be live")
            doc = wait_for(lambda: (lambda d: d if d.get("health") == "poor" else None)(
                self.json_get(s, "/api/v1/streams/demo")), 20, "health poor")
            self.assertRegex(doc["health_reason"], r"transcoder", doc)
            wait_for(lambda: re.search(r"stream demo health (good|fair) -> poor: transcoder",
                                       s.log()), 5, "the health change in the log")
            m = parse_metrics(self.metrics(s))
            self.assertEqual(value(m, "sluice_stream_health", stream="demo"), 2)
            ev = wait_for(lambda: next((r["body"] for r in hook.of("stream.health_changed")
                                        if r["body"]["data"]["health"] == "poor"), None), 10,
                          "stream.health_changed to poor at the webhook")
            self.assertEqual(ev["stream_id"], "demo")
            self.assertEqual(ev["data"]["health"], "poor", ev)
            self.assertIn(ev["data"]["previous"], ("good", "fair"), ev)
            self.assertRegex(ev["data"]["reason"], r"transcoder", ev)
        finally:
            s.close(pub)


def value_label(text, label):
    m = re.search(label + r'="([^"]*)"', text)
    return m.group(1) if m else ""


if __name__ == "__main__":
    unittest.main()
