"""--dvr-window: a live media playlist keeps about that many seconds for
seeking back, the live edge unchanged, and a player can start from its first
segment. The publisher sends six times faster than real time (paced by
sluice, see docs/ingest.md), so 75 s of media take about 13 s."""

import subprocess
import unittest

from harness import Sluice, http, parse_media, wait_for

KEY = "demo-secret-key"


def publish_fast(url, seconds, size="640x360", speed=6):
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
           "-readrate", str(speed), "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30",
           "-readrate", str(speed), "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
           "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
           "-bf", "0", "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
           "-pix_fmt", "yuv420p", "-b:v", "600k", "-c:a", "aac", "-b:a", "64k", "-ac", "2",
           "-f", "flv", url]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


class DvrTest(unittest.TestCase):

    def test_sixty_second_window(self):
        sl = Sluice("--dvr-window", "60", "--segment-duration", "2", "--ladder", "360p")
        pub = publish_fast(sl.rtmp_url(KEY), 90)
        try:
            url = sl.url("/hls/demo/360p/index.m3u8")

            def playlist():
                status, _, body = http(url)
                return parse_media(body.decode()) if status == 200 else None

            def msn(pl):
                return int(pl["segments"][0]["uri"].split(".")[0])
            start = msn(wait_for(lambda: (lambda pl: pl if pl and pl["segments"] else None)(
                playlist()), 20, "the first segment"))

            def full_window():
                # Full once the oldest segments have started to go.
                pl = playlist()
                return pl if pl and msn(pl) > start + 1 and not pl["endlist"] else None
            pl = wait_for(full_window, 60, "a live playlist past 60 s of media")
            held = sum(s["duration"] for s in pl["segments"])
            # About 60 s: the oldest segment goes once the rest covers 60 s.
            self.assertGreaterEqual(held, 60)
            self.assertLess(held, 60 + 2 * 2 + 0.5, pl["segments"])
            self.assertGreater(len(pl["segments"]), 6 * 4, "more than the 6-segment live window")
            # The live edge is unchanged: LL-HLS parts and hints at the end only.
            _, _, body = http(url)
            text = body.decode()
            self.assertIn("#EXT-X-PRELOAD-HINT", text)
            self.assertIn("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES", text)
            self.assertIn("CAN-SKIP-UNTIL=", text, "long playlists offer delta updates")
            # The audio playlist keeps the same window.
            _, _, abody = http(sl.url("/hls/demo/audio/index.m3u8"))
            audio = parse_media(abody.decode())
            self.assertAlmostEqual(sum(s["duration"] for s in audio["segments"]), held, delta=2.5)

            # A player can start from the first segment the playlist names.
            first = pl["segments"][0]["uri"]
            self.assertEqual(http(sl.url("/hls/demo/360p/" + first))[0], 200, first)
            out = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error",
                                  "-live_start_index", "0", "-i", url, "-t", "6",
                                  "-f", "null", "-"], capture_output=True, timeout=60)
            self.assertEqual(out.returncode, 0, out.stderr.decode()[-2000:])
        finally:
            sl.close(pub)


if __name__ == "__main__":
    unittest.main()
