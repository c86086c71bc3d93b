"""The viewer simulator (tests/load/, build*/tests/load/sluice-viewers)
against the real sluice and a real ffmpeg publisher: 50 LL-HLS viewers for
8 s get every part with zero errors and zero stalls and sane numbers, and
the tool fails (exit 1, counted) when it should: an unknown stream (404s),
an origin frozen mid-run (stalls), while a broadcast's clean end (ENDLIST)
stops classic-HLS viewers (reloads, whole segments) without failing."""

import functools
import http.server as http_server
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from harness import SLUICE_BIN, Sluice, http, parse_media, publish, wait_for

VIEWERS_BIN = os.environ.get(
    "SLUICE_VIEWERS_BIN",
    os.path.join(os.path.dirname(os.path.abspath(SLUICE_BIN)), "tests", "load", "sluice-viewers"))


def run_viewers(sl, *args, stream="demo", timeout=60, port=None):
    """Runs the simulator to its end; returns (exit status, report dict, stderr)."""
    cmd = [VIEWERS_BIN, "--url", f"http://127.0.0.1:{port or sl.http_port}", "--stream", stream,
           "--json"] + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    for mark in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
        assert mark not in p.stderr, f"sanitizer report from sluice-viewers:\n{p.stderr[-4000:]}"
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    assert len(lines) == 1, f"no JSON report (exit {p.returncode}):\n{p.stdout}\n{p.stderr[-2000:]}"
    return p.returncode, json.loads(lines[0]), p.stderr


def ll_ready(sl, sid="demo", rend="360p", parts=True):
    """A media playlist with a segment (and parts, for LL-HLS), and the
    master: sluice publishes the master a little after the first media
    playlists, and a viewer that came before it would rightly count a 404."""
    st, _, body = http(sl.url(f"/hls/{sid}/{rend}/index.m3u8"))
    if st != 200:
        return False
    text = body.decode()
    if (parts and "#EXT-X-PART:" not in text) or len(parse_media(text)["segments"]) < 1:
        return False
    st, _, body = http(sl.url(f"/hls/{sid}/master.m3u8"))
    return st == 200 and b"#EXT-X-STREAM-INF:" in body


class LoadToolTest(unittest.TestCase):
    def setUp(self):
        self.assertTrue(os.access(VIEWERS_BIN, os.X_OK), f"{VIEWERS_BIN} is not built")

    def test_fifty_ll_viewers_zero_errors_zero_stalls(self):
        sl = Sluice("--ladder", "360p")
        pub = publish(sl.rtmp_url("demo-secret-key"), seconds=40, size="640x360")
        try:
            wait_for(lambda: ll_ready(sl), 20, "an LL-HLS playlist with parts")
            secs = 8
            rc, r, err = run_viewers(sl, "--viewers", "50", "--duration", str(secs), "--ramp", "1")
            self.assertEqual(rc, 0, f"{json.dumps(r)}\n{err[-2000:]}")
            self.assertEqual((r["errors"], r["stalls"], r["viewers_started"]), (0, 0, 50))
            k = r["kinds"]
            # every viewer: master once, video and audio init once each
            self.assertEqual(k["master"]["count"], 50)
            self.assertEqual(k["init"]["count"], 100)
            # ~0.33 s parts for ~7 s after the ramp, video and audio: at least
            # 15 per track and viewer, and blocking reloads between them
            self.assertGreaterEqual(k["part"]["count"], 50 * 2 * 15)
            self.assertGreaterEqual(k["blocking_playlist"]["count"], 50 * 2 * 12)
            self.assertEqual(k["segment"]["count"], 0, "LL viewers fetch parts, not segments")
            # a blocking reload waits about one part for the next one
            self.assertGreater(k["blocking_playlist"]["p50_ms"], 100)
            self.assertLess(k["blocking_playlist"]["p50_ms"], 1000)
            # parts are answered at once; waking the waiting viewers is quick
            self.assertLess(k["part"]["p99_ms"], 500)
            self.assertLess(k["blocking_wake_lag"]["p99_ms"], 500)
            self.assertGreater(r["bytes"], 50 * 40000 * secs // 2)
            self.assertIsNone(sl.proc.poll(), "sluice died")
        finally:
            sl.close(pub)

    def test_unknown_stream_fails(self):
        sl = Sluice("--ladder", "360p")
        try:
            rc, r, _ = run_viewers(sl, "--viewers", "5", "--duration", "2.5", stream="nosuch")
            self.assertEqual(rc, 1)
            self.assertEqual(r["viewers_started"], 5)
            # each viewer retries its master once a second
            self.assertGreaterEqual(r["http_errors"].get("404", 0), 10)
            self.assertEqual(r["errors"], r["http_errors"]["404"])
            self.assertEqual(r["kinds"]["master"]["errors"], r["errors"])
            self.assertEqual(r["kinds"]["part"]["count"], 0)
        finally:
            sl.close()

    def test_frozen_origin_counts_stalls(self):
        sl = Sluice("--ladder", "360p")
        pub = publish(sl.rtmp_url("demo-secret-key"), seconds=40, size="640x360")
        try:
            wait_for(lambda: ll_ready(sl), 20, "an LL-HLS playlist with parts")
            p = subprocess.Popen(
                [VIEWERS_BIN, "--url", f"http://127.0.0.1:{sl.http_port}", "--stream", "demo",
                 "--viewers", "10", "--duration", "8", "--no-progress", "1.5", "--json"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(2.5)
            # The whole origin stops answering for 3 s: no viewer gets a part.
            sl.proc.send_signal(signal.SIGSTOP)
            time.sleep(3)
            sl.proc.send_signal(signal.SIGCONT)
            out, err = p.communicate(timeout=30)
            r = json.loads(out)
            self.assertEqual(p.returncode, 1, out)
            self.assertGreaterEqual(r["stalls_no_progress"], 10, out)
            self.assertEqual(r["stalls"], r["stalls_no_progress"] + r["stalls_behind"])
            # after the freeze the viewers rejoined and kept fetching parts
            self.assertGreater(r["kinds"]["part"]["count"], 10 * 2 * 8)
            self.assertIsNone(sl.proc.poll(), "sluice died")
        finally:
            sl.proc.send_signal(signal.SIGCONT)
            sl.close(pub)

    def test_classic_hls_endlist_stops_viewers_without_failing(self):
        # Classic HLS (no parts): reloads every target duration, segments.
        sl = Sluice("--ladder", "360p", "--part-duration", "0")
        # A clean end of publishing (ffmpeg -t): the playlists get EXT-X-ENDLIST.
        pub = publish(sl.rtmp_url("demo-secret-key"), seconds=9, size="640x360")
        try:
            wait_for(lambda: ll_ready(sl, parts=False), 20, "a playlist with a segment")
            start = time.time()
            rc, r, err = run_viewers(sl, "--viewers", "10", "--duration", "30")
            took = time.time() - start
            self.assertEqual(rc, 0, f"{json.dumps(r)}\n{err[-2000:]}")
            self.assertEqual(r["tracks_ended"], 20, "every video and audio track saw ENDLIST")
            self.assertLess(took, 20, "the viewers did not stop at ENDLIST")
            k = r["kinds"]
            self.assertEqual((k["part"]["count"], k["blocking_playlist"]["count"]), (0, 0))
            # every track joined 3 segments back and fetched each new one
            self.assertGreaterEqual(k["segment"]["count"], 20 * 3)
            self.assertGreaterEqual(k["playlist"]["count"], 20 * 2)
            self.assertEqual(k["init"]["count"], 20)
        finally:
            sl.close(pub)


class _Quiet(http_server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class ScriptedOriginTest(unittest.TestCase):
    """The simulator against fixed playlists from a Python HTTP server: what
    sluice does not produce today (a new EXT-X-MAP after a discontinuity) or
    must never (an oversized playlist, a URI on another host)."""

    def setUp(self):
        self.assertTrue(os.access(VIEWERS_BIN, os.X_OK), f"{VIEWERS_BIN} is not built")
        self.root = tempfile.mkdtemp(prefix="vsim-origin-")
        handler = functools.partial(_Quiet, directory=self.root)
        self.server = http_server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def tearDown(self):
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self.root)

    def write(self, path, data):
        full = os.path.join(self.root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())

    def master(self, uri="v/index.m3u8"):
        self.write("hls/s/master.m3u8", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000\n" + uri + "\n")

    def test_new_map_after_a_discontinuity_is_fetched(self):
        self.master()
        segs = "".join(f"#EXTINF:2.0,\n{i}.m4s\n" for i in range(4))
        self.write("hls/s/v/index.m3u8",
                   "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
                   "#EXT-X-MAP:URI=\"init.mp4\"\n" + segs +
                   "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-123.mp4\"\n"
                   "#EXTINF:2.0,\n4.m4s\n#EXTINF:2.0,\n5.m4s\n#EXT-X-ENDLIST\n")
        for name in ["init.mp4", "init-123.mp4"] + [f"{i}.m4s" for i in range(6)]:
            self.write("hls/s/v/" + name, b"x" * 1000)
        rc, r, err = run_viewers(None, "--duration", "10", "--viewers", "1", stream="s", port=self.port)
        self.assertEqual(rc, 0, f"{json.dumps(r)}\n{err}")
        k = r["kinds"]
        # joined 3 segments back (3.m4s, with init.mp4), then 4.m4s after the
        # discontinuity needs init-123.mp4 first, then 5.m4s, then ENDLIST
        self.assertEqual((k["segment"]["count"], k["init"]["count"]), (3, 2))
        self.assertEqual((r["init_refetches"], r["discontinuities"], r["tracks_ended"]), (1, 1, 1))

    def test_oversized_playlist_is_an_error(self):
        self.master()
        self.write("hls/s/v/index.m3u8", "#EXTM3U\n" + "#EXT-X-X\n" * 120000)  # 1.08 MB
        rc, r, _ = run_viewers(None, "--duration", "1.5", "--viewers", "2", stream="s", port=self.port)
        self.assertEqual(rc, 1)
        self.assertGreaterEqual(r["oversize_errors"], 2)
        self.assertEqual(r["errors"], r["oversize_errors"])

    def test_uri_on_another_host_is_refused(self):
        # 192.0.2.1 (TEST-NET-1): a request there would hang, not fail fast
        self.master("http://192.0.2.1/v/index.m3u8")
        rc, r, _ = run_viewers(None, "--duration", "1.5", "--viewers", "2", stream="s", port=self.port)
        self.assertEqual(rc, 1)
        self.assertGreaterEqual(r["foreign_uri_errors"], 2)
        self.assertEqual(r["transport_errors"], 0, "the simulator tried to connect elsewhere")


if __name__ == "__main__":
    unittest.main()
