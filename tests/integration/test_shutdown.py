"""Shutdown with a live stream: SIGTERM ends it in order (exit 0 within a few
seconds, the last playlists ended and still in the store for viewers), and a
second signal during that order exits at once."""

import signal
import subprocess
import time
import unittest

from harness import RedisServer, Sluice, http, parse_media, publish, wait_for

KEY = "demo-secret-key"


class ShutdownTest(unittest.TestCase):
    def test_sigterm_while_live_ends_the_playlists(self):
        redis = RedisServer()
        # No reconnect window: a shared store would hand the stream over
        # instead (test_reconnect.py).
        sl = Sluice("--store", redis.url(0), "--ladder", "360p", "--preset", "ultrafast",
                    "--reconnect-window", "0")
        pub = publish(sl.rtmp_url(KEY), seconds=60, size="640x360")
        try:
            def playing():
                st, _, body = http(sl.url("/hls/demo/360p/index.m3u8"))
                return st == 200 and len(parse_media(body.decode())["segments"]) >= 2
            wait_for(playing, 30, "two segments")
            start = time.time()
            sl.proc.send_signal(signal.SIGTERM)
            sl.proc.wait(10)
            took = time.time() - start
            self.assertEqual(sl.proc.returncode, 0, sl.log()[-3000:])
            self.assertLess(took, 5, f"shutdown took {took:.1f} s")
            # The final playlist, as viewers (through another origin) get it.
            text = redis.cli("GET", "sluice:{demo}:o:360p/index.m3u8")
            media = parse_media(text)
            self.assertTrue(media["endlist"], text)
            self.assertGreaterEqual(len(media["segments"]), 2)
            self.assertNotIn("EXT-X-PRELOAD-HINT", text)
            print(f"\n  shutdown with a live stream: {took:.2f} s")
        finally:
            pub.kill()
            pub.communicate()
            sl.close()
            redis.stop()

    def test_second_signal_exits_at_once(self):
        # An encoder at half real time builds a backlog, so the orderly
        # shutdown (which encodes what was received) takes seconds.
        sl = Sluice("--ladder", "360p", "--preset", "ultrafast", "--passthrough", "never",
                    "--overload-protection", "off", "--debug-slow-encode", "600")
        pub = publish(sl.rtmp_url(KEY), seconds=60, size="640x360")
        try:
            wait_for(lambda: http(sl.url("/hls/demo/master.m3u8"))[0] == 200, 30, "master")
            time.sleep(4)
            sl.proc.send_signal(signal.SIGTERM)
            wait_for(lambda: "SIGTERM received, shutting down" in sl.log(), 5, "shutdown")
            self.assertIsNone(sl.proc.poll(), "shutdown ended before the second signal")
            start = time.time()
            sl.proc.send_signal(signal.SIGTERM)
            sl.proc.wait(5)
            self.assertLess(time.time() - start, 2)
            self.assertEqual(sl.proc.returncode, 1)
            self.assertIn("second SIGTERM: exiting now", sl.log())
        finally:
            pub.kill()
            pub.communicate()
            sl.kill()


if __name__ == "__main__":
    unittest.main()
