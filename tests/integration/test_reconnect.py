"""Publishers that drop: within the reconnect window the same playlists go on
after one EXT-X-DISCONTINUITY (numbers counting, timestamps monotonic, a
changed resolution with a new init segment) and ffmpeg decodes across the
join; after the window the stream ends with ENDLIST; a publisher that stalls
without disconnecting counts as dropped; a failing encoder restarts only its
own stream's worker, with the reason in status."""

import json
import os
import re
import signal
import subprocess
import time
import unittest

import hlscheck
from harness import RedisServer, Sluice, http, publish, wait_for

KEY = "demo-secret-key"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECONNECT_SCRIPT = os.path.join(ROOT, "tests", "browser", "hls_reconnect.mjs")


def status(sl, sid="demo"):
    st, _, body = http(sl.admin_url(f"/api/v1/streams/{sid}"))
    assert st == 200, body
    return json.loads(body)


def playlist(sl, path):
    st, _, body = http(sl.url(path))
    return body.decode() if st == 200 else ""


def msns(text):
    return [int(m) for m in re.findall(r"^(\d+)\.m4s$", text, re.M)]


def segments(sl, path):
    return len(msns(playlist(sl, path)))


class ReconnectTest(unittest.TestCase):
    def test_drop_and_return_continues_the_playlists(self):
        sl = Sluice("--ladder", "480p,360p", "--preset", "ultrafast", "--reconnect-window", "20",
                    "--playlist-segments", "20")
        first = publish(sl.rtmp_url(KEY), seconds=60, size="854x480")
        second = None
        try:
            wait_for(lambda: segments(sl, "/hls/demo/360p/index.m3u8") >= 2, 30, "two segments")
            first.kill()  # no unpublish: a drop
            first.communicate()
            wait_for(lambda: status(sl).get("reconnecting") is True, 10, "reconnecting status")
            # The worker has published what the first publisher sent.
            wait_for(lambda: "waiting up to 20 s for it to come back" in sl.log(), 10, "flush")
            st = status(sl)
            self.assertEqual(st["state"], "live")
            self.assertNotIn("ingest", st)
            before = playlist(sl, "/hls/demo/360p/index.m3u8")
            self.assertNotIn("#EXT-X-ENDLIST", before)
            last_before = msns(before)[-1]

            # Back with another resolution; it ends its publish cleanly.
            second = publish(sl.rtmp_url(KEY), seconds=7, size="640x360")

            def joined():
                text = playlist(sl, "/hls/demo/360p/index.m3u8")
                return "#EXT-X-DISCONTINUITY\n" in text and \
                    len(msns(text.split("#EXT-X-DISCONTINUITY\n", 1)[1])) >= 2
            wait_for(joined, 20, "two segments after the join")
            for rend in ("360p", "480p", "audio"):  # live, with parts
                text = playlist(sl, f"/hls/demo/{rend}/index.m3u8")
                self.assertEqual(hlscheck.check_media(text), [], f"{rend}:\n{text}")
            self.assertEqual(second.wait(30), 0)
            wait_for(lambda: "#EXT-X-ENDLIST" in playlist(sl, "/hls/demo/360p/index.m3u8"), 20,
                     "the end of the stream")
            wait_for(lambda: status(sl)["state"] == "idle", 5, "idle")
            self.assertIn("a publisher is back after", sl.log())

            for rend in ("360p", "480p", "audio"):
                text = playlist(sl, f"/hls/demo/{rend}/index.m3u8")
                numbers = msns(text)
                self.assertEqual(numbers, list(range(numbers[0], numbers[-1] + 1)), text)
                self.assertEqual(text.count("#EXT-X-DISCONTINUITY\n"), 1, f"{rend}:\n{text}")
                self.assertLessEqual(numbers[0], last_before, text)
                # The join comes right after the first publisher's last segment.
                after = text.split("#EXT-X-DISCONTINUITY\n", 1)[1]
                self.assertEqual(msns(after)[0], last_before + 1, f"{rend}:\n{text}")
                self.assertGreaterEqual(len(msns(after)), 2, f"{rend}:\n{text}")

            # The copied rung changed size: its own init segment from the join.
            text = playlist(sl, "/hls/demo/480p/index.m3u8")
            maps = re.findall(r'#EXT-X-MAP:URI="([^"]+)"', text)
            self.assertEqual(maps[0], "init.mp4", text)
            self.assertEqual(maps[-1], f"init-{last_before + 1}.mp4", text)
            st_a, _, init_a = http(sl.url("/hls/demo/480p/init.mp4"))
            st_b, _, init_b = http(sl.url(f"/hls/demo/480p/{maps[-1]}"))
            self.assertEqual((st_a, st_b), (200, 200))
            self.assertNotEqual(init_a, init_b)
            # The transcoded rung kept its size, so its init segment.
            self.assertEqual(set(re.findall(r'#EXT-X-MAP:URI="([^"]+)"',
                                            playlist(sl, "/hls/demo/360p/index.m3u8"))),
                             {"init.mp4"})

            # ffmpeg decodes the whole rendition across the join, its
            # timestamps increasing throughout.
            url = sl.url("/hls/demo/360p/index.m3u8")
            dec = subprocess.run(["ffmpeg", "-v", "error", "-i", url, "-f", "null", "-"],
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(dec.returncode, 0, dec.stderr)
            self.assertEqual(dec.stderr.strip(), "")
            probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0",
                                    "-show_entries", "packet=dts_time", "-of", "csv=p=0", url],
                                   capture_output=True, text=True, timeout=60)
            dts = [float(x) for x in probe.stdout.split() if x not in ("", "N/A")]
            self.assertGreater(len(dts), 30 * 6, probe.stderr)
            self.assertTrue(all(b > a for a, b in zip(dts, dts[1:])), "dts not increasing")
            tr = status(sl).get("transcode") or {}
            print(f"\n  reconnect: {len(dts)} video packets decoded across the join, "
                  f"segment {last_before} -> {last_before + 1}")
        finally:
            for p in (first, second):
                if p and p.poll() is None:
                    p.kill()
                    p.communicate()
            sl.close()
        self.assertFalse(tr, "status of an ended stream still has a transcode object")

    def test_hlsjs_keeps_playing_across_the_join(self):
        """hls.js in Chromium (lowLatencyMode) plays through a drop and the
        publisher's return: past the discontinuity, without a reload."""
        sl = Sluice("--ladder", "360p", "--reconnect-window", "20")
        first = publish(sl.rtmp_url(KEY), seconds=60, size="640x360")
        second = player = None
        try:
            wait_for(lambda: segments(sl, "/hls/demo/360p/index.m3u8") >= 2, 30, "two segments")
            player = subprocess.Popen(["node", RECONNECT_SCRIPT,
                                       sl.url("/hls/demo/master.m3u8"), "20"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            time.sleep(6)
            first.kill()  # the wifi blinks
            first.communicate()
            time.sleep(2)
            second = publish(sl.rtmp_url(KEY), seconds=60, size="640x360")
            out, err = player.communicate(timeout=90)
            lines = out.decode().strip().splitlines()
            self.assertTrue(lines, err.decode()[-3000:])
            r = json.loads(lines[-1])
            print(f"\n  hls.js across the join: {r['afterJoin']:.1f} s played after it, "
                  f"discontinuity counters {r['ccPlayed']}, {r['stalls']} stalls in the gap",
                  end="")
            self.assertEqual(r["problems"], [], r)
            self.assertEqual(player.returncode, 0)
        finally:
            if player and player.poll() is None:
                player.kill()
                player.communicate()
            for p in (first, second):
                if p and p.poll() is None:
                    p.kill()
                    p.communicate()
            sl.close()

    def test_shutdown_while_waiting_ends_the_stream(self):
        sl = Sluice("--ladder", "360p", "--reconnect-window", "30")
        pub = publish(sl.rtmp_url(KEY), seconds=60, size="640x360")
        try:
            wait_for(lambda: segments(sl, "/hls/demo/360p/index.m3u8") >= 2, 30, "two segments")
            pub.kill()
            pub.communicate()
            wait_for(lambda: "waiting up to 30 s" in sl.log(), 10, "waiting")
            start = time.time()
            sl.proc.send_signal(signal.SIGTERM)
            sl.proc.wait(10)
            self.assertLess(time.time() - start, 5)
            self.assertEqual(sl.proc.returncode, 0, sl.log()[-3000:])
            log = sl.log()
            self.assertIn("shutting down while waiting for the publisher; the stream ends", log)
            self.assertRegex(log, r"stream ended after \d+ segments")
        finally:
            if pub.poll() is None:
                pub.kill()
                pub.communicate()
            sl.close()

    def test_window_passes_and_stalled_publisher(self):
        sl = Sluice("--ladder", "360p", "--reconnect-window", "2", "--rtmp-stall-timeout", "1500")
        pub = publish(sl.rtmp_url(KEY), seconds=60, size="640x360")
        stalled = None
        try:
            wait_for(lambda: segments(sl, "/hls/demo/360p/index.m3u8") >= 2, 30, "two segments")
            pub.kill()
            pub.communicate()
            dropped = time.time()
            wait_for(lambda: "#EXT-X-ENDLIST" in playlist(sl, "/hls/demo/360p/index.m3u8"), 10,
                     "ENDLIST after the window")
            self.assertGreater(time.time() - dropped, 1.5)
            wait_for(lambda: status(sl)["state"] == "idle", 5, "idle")
            self.assertIn("did not come back to this node within the reconnect window", sl.log())
            ended = playlist(sl, "/hls/demo/360p/index.m3u8")
            self.assertNotIn("#EXT-X-DISCONTINUITY", ended)

            # A publisher that stops sending without closing its connection.
            stalled = publish(sl.rtmp_url(KEY), seconds=60, size="640x360")
            wait_for(lambda: "#EXT-X-ENDLIST" not in playlist(sl, "/hls/demo/360p/index.m3u8")
                     and segments(sl, "/hls/demo/360p/index.m3u8") >= 1, 30, "a new broadcast")
            stalled.send_signal(signal.SIGSTOP)
            wait_for(lambda: "treating the publisher as dropped" in sl.log(), 10, "stall noticed")
            wait_for(lambda: "#EXT-X-ENDLIST" in playlist(sl, "/hls/demo/360p/index.m3u8"), 10,
                     "ENDLIST after the stall and the window")
            st, _, body = http(sl.admin_url("/metrics"))
            self.assertRegex(body.decode(), r"sluice_ingest_stalled_publishers_total 1\b")
        finally:
            if stalled:
                stalled.send_signal(signal.SIGCONT)
                stalled.kill()
                stalled.communicate()
            if pub.poll() is None:
                pub.kill()
                pub.communicate()
            sl.close()

    def test_return_through_another_node_keeps_its_playlists(self):
        """The publisher comes back through another ingest node on the same
        Redis store: the first node's window passes without it writing
        ENDLIST over the playlists the other node is now writing."""
        redis = RedisServer()
        a = b = None
        first = second = None
        try:
            a = Sluice("--store", redis.url(0), "--ladder", "360p", "--reconnect-window", "3")
            b = Sluice("--store", redis.url(0), "--ladder", "360p", "--reconnect-window", "3")
            first = publish(a.rtmp_url(KEY), seconds=60, size="640x360")
            wait_for(lambda: segments(a, "/hls/demo/360p/index.m3u8") >= 2, 30, "two segments")
            first.kill()
            first.communicate()
            wait_for(lambda: "waiting up to 3 s for it to come back" in a.log(), 10, "waiting")
            last_a = msns(playlist(a, "/hls/demo/360p/index.m3u8"))[-1]
            second = publish(b.rtmp_url(KEY), seconds=60, size="640x360")
            wait_for(lambda: "went on from another node" in a.log(), 15, "node a giving way")
            at = msns(playlist(b, "/hls/demo/360p/index.m3u8"))[-1]
            self.assertGreater(at, last_a)
            wait_for(lambda: msns(playlist(b, "/hls/demo/360p/index.m3u8"))[-1] >= at + 1, 15,
                     "node b's stream advancing")
            for node in (a, b):  # both origins serve node b's live playlist
                self.assertNotIn("#EXT-X-ENDLIST", playlist(node, "/hls/demo/360p/index.m3u8"))
            # Node b followed node a's live playlists: its first segment is a
            # discontinuity, so players keep their place across the nodes.
            for rend in ("360p", "audio"):
                text = playlist(b, f"/hls/demo/{rend}/index.m3u8")
                head = msns(text)[0]
                if head == last_a + 1:
                    self.assertIn("#EXT-X-DISCONTINUITY\n", text.split(f"\n{head}.m4s")[0],
                                  f"{rend}:\n{text}")
                else:  # the join already left the window: counted
                    self.assertRegex(text, r"#EXT-X-DISCONTINUITY-SEQUENCE:[1-9]", f"{rend}:\n{text}")
                self.assertEqual(hlscheck.check_media(text), [], f"{rend}:\n{text}")
            self.assertIn("following a live playlist left by an earlier writer", b.log())
        finally:
            for p in (first, second):
                if p and p.poll() is None:
                    p.kill()
                    p.communicate()
            for node in (a, b):
                if node:
                    node.close()
            redis.stop()

    def test_shutdown_hands_over_then_the_janitor_ends_it(self):
        """SIGTERM on a shared store with a publisher live: the node exits at
        once but leaves the playlists live for the reconnect window (a
        publisher may come back through another node); nobody comes, so the
        other node's janitor ends them once the window has passed."""
        redis = RedisServer()
        a = b = pub = None
        try:
            a = Sluice("--store", redis.url(0), "--ladder", "360p", "--reconnect-window", "4")
            b = Sluice("--store", redis.url(0), "--ladder", "360p", "--reconnect-window", "4")
            pub = publish(a.rtmp_url(KEY), seconds=60, size="640x360")
            wait_for(lambda: segments(a, "/hls/demo/360p/index.m3u8") >= 2, 30, "two segments")
            start = time.time()
            a.proc.send_signal(signal.SIGTERM)
            a.proc.wait(10)
            self.assertLess(time.time() - start, 5)
            self.assertEqual(a.proc.returncode, 0, a.log()[-3000:])
            self.assertIn("the stream is handed over", a.log())
            live = playlist(b, "/hls/demo/360p/index.m3u8")
            self.assertNotIn("#EXT-X-ENDLIST", live)
            wait_for(lambda: "#EXT-X-ENDLIST" in playlist(b, "/hls/demo/360p/index.m3u8"), 15,
                     "the janitor ending the playlists")
            self.assertGreater(time.time() - start, 3)
            self.assertIn("did not come back within the reconnect window; 2 playlists ended",
                          b.log())
            for rend in ("360p", "audio"):
                text = playlist(b, f"/hls/demo/{rend}/index.m3u8")
                self.assertEqual(hlscheck.check_media(text, ll=None), [], f"{rend}:\n{text}")
                self.assertNotIn("#EXT-X-PRELOAD-HINT", text)
                self.assertNotIn("#EXT-X-PART:", text)
                # Every segment it names is there.
                for n in msns(text):
                    self.assertEqual(http(b.url(f"/hls/demo/{rend}/{n}.m4s"))[0], 200)
            self.assertEqual(http(b.url("/hls/demo/360p/index.m3u8?_HLS_skip=YES"))[0], 200)
        finally:
            if pub and pub.poll() is None:
                pub.kill()
                pub.communicate()
            for node in (a, b):
                if node:
                    node.close()
            redis.stop()

    def test_failing_encoder_restarts_only_its_stream(self):
        # Overload protection off: on a loaded machine it could drop the
        # one encoded rung this test watches.
        sl = Sluice("--ladder", "480p,360p", "--preset", "ultrafast", "--debug-fail-encode", "120",
                    "--overload-protection", "off",
                    streams=(("demo", KEY), ("good", "good-secret-key")))
        bad = publish(sl.rtmp_url(KEY), seconds=60, size="854x480")  # 360p is encoded
        good = publish(sl.rtmp_url("good-secret-key"), seconds=60, size="640x360")  # copied only
        try:
            wait_for(lambda: (status(sl).get("transcode") or {}).get("restarts") == 1, 30,
                     "the failing stream's worker restarted")
            tr = status(sl)["transcode"]
            self.assertIn("Input/output error", tr["last_error"])
            # What failed, where and when: the stage, the rung, the picture.
            self.assertRegex(tr["last_error"], r"encoder of rung (480p|360p): simulated failure")
            self.assertRegex(sl.log(), r"stream worker failed: encoder of rung (480p|360p): "
                                       r"simulated failure .*at picture pts \d+")
            failed_at = msns(playlist(sl, "/hls/demo/360p/index.m3u8"))[-1]
            good_at = msns(playlist(sl, "/hls/good/360p/index.m3u8"))[-1]
            # Both keep going: the failing one after a discontinuity.
            wait_for(lambda: msns(playlist(sl, "/hls/demo/360p/index.m3u8"))[-1] >= failed_at + 2,
                     30, "the restarted stream advancing")
            wait_for(lambda: msns(playlist(sl, "/hls/good/360p/index.m3u8"))[-1] >= good_at + 2,
                     30, "the other stream advancing")
            self.assertIn("#EXT-X-DISCONTINUITY", playlist(sl, "/hls/demo/360p/index.m3u8"))
            self.assertNotIn("#EXT-X-DISCONTINUITY", playlist(sl, "/hls/good/360p/index.m3u8"))
            good_tr = status(sl, "good").get("transcode") or {}
            self.assertEqual(good_tr.get("restarts"), 0)
            self.assertEqual(status(sl)["state"], "live")
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- sluice log:\n{sl.log()[-6000:]}") from None
        finally:
            sl.close(bad, good)


if __name__ == "__main__":
    unittest.main()
