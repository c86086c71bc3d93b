"""A real player on the real ladder: Debian's chromium, driven by
playwright-core, plays sluice's HLS with hls.js and switches through every
rendition (tests/browser/hls_switch.mjs). Keyframe-aligned segments are what
make those switches seamless; a misaligned ladder shows up here as media or
buffer errors, or a stream that never reaches its end."""

import json
import os
import subprocess
import unittest

from harness import ROOT, Sluice, finish, http, parse_media, publish, wait_for

KEY = "demo-secret-key"
SCRIPT = os.path.join(ROOT, "tests", "browser", "hls_switch.mjs")


class PlayerTest(unittest.TestCase):

    def test_hlsjs_switches_through_the_whole_ladder(self):
        # Every rung transcoded except the copied 720p; ultrafast keeps the
        # sanitizer build quick; the whole broadcast stays in the playlist.
        sluice = Sluice("--ladder", "720p,480p,360p", "--preset", "ultrafast",
                        "--playlist-segments", "30")
        try:
            pub = publish(sluice.rtmp_url(KEY), seconds=20, size="1280x720", realtime=False)
            rc, err = finish(pub, 120)
            self.assertEqual(rc, 0, err)

            def ended():
                s, _, b = http(sluice.url("/hls/demo/360p/index.m3u8"))
                return s == 200 and parse_media(b.decode())["endlist"]
            wait_for(ended, 60, "the ladder's last segments")

            out = subprocess.run(["node", SCRIPT, sluice.url("/hls/demo/master.m3u8"), "60"],
                                 capture_output=True, timeout=120)
            lines = out.stdout.decode().strip().splitlines()
            self.assertTrue(lines, out.stderr.decode()[-3000:])
            result = json.loads(lines[-1])
            print(f"\n  hls.js: levels {result['levels']}, switches {result['switched']}, "
                  f"fragments per level {result['played']}, {result['frames']} frames", end="")
            self.assertEqual(result["problems"], [], result)
            self.assertEqual(len(result["levels"]), 3)
            self.assertEqual(out.returncode, 0)
        finally:
            sluice.close()


if __name__ == "__main__":
    unittest.main()
