"""Input limits (issue 19, review S17): a publisher with a key could send
16384x16384 or 240 fps and take the node's memory and cores from every
other stream. --max-input-resolution (either orientation) and
--max-input-fps end such a publish, with the reason in the log, in the
stream's API status (last_refusal) and in the stream.idle webhook
(reason "refused", detail); a publish within them plays."""

import unittest

from harness import Sluice, http, publish, wait_for
from test_admin import api
from test_webhook import Hook

KEY = "input-limits-key-0123"


class InputLimitsTest(unittest.TestCase):
    def test_too_large_or_too_fast_is_refused_with_its_reason(self):
        hook = Hook(lambda req: (200, b"{}", 0))
        sl = Sluice("--max-input-resolution", "640x360", "--max-input-fps", "30",
                    "--ladder", "360p", "--preset", "ultrafast", "--webhook-url", hook.url,
                    streams=(("shop", KEY),))
        pubs = []
        try:
            url = sl.rtmp_url(KEY)
            # Too large: refused at its video configuration.
            big = publish(url, seconds=20, size="1280x720", rate=30)
            pubs.append(big)
            wait_for(lambda: "publish refused: the picture is 1280x720, over --max-input-resolution "
                             "640x360" in sl.log(), 20, "the refusal of 1280x720")
            self.assertIsNotNone(big.wait(20), "the publisher was not cut")
            idle = hook.wait("stream.idle", 1, stream_id="shop")
            self.assertEqual(idle[0]["body"]["data"]["reason"], "refused")
            self.assertIn("1280x720", idle[0]["body"]["data"]["detail"])
            got = []
            wait_for(lambda: got.append(api(sl, "GET", "/api/v1/streams/shop")[2]) or
                     "last_refusal" in got[-1], 10, "last_refusal in the API")
            self.assertIn("over --max-input-resolution 640x360", got[-1]["last_refusal"]["reason"])
            self.assertRegex(got[-1]["last_refusal"]["at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

            # Too fast: refused after a second of its own timestamps.
            fast = publish(url, seconds=20, size="640x360", rate=60)
            pubs.append(fast)
            wait_for(lambda: "over --max-input-fps 30" in sl.log(), 20, "the refusal of 60 fps")
            self.assertIsNotNone(fast.wait(20), "the publisher was not cut")
            self.assertEqual(sl.log().count("publish refused:"), 2)
            metrics = http(sl.admin_url("/metrics"))[2].decode()
            self.assertIn('sluice_ingest_refused_total{reason="input_limits"} 2\n', metrics)
            self.assertIn('sluice_ingest_refused_total{reason="store_timeout"} 0\n', metrics)

            # Upright (360x640) and within 30 fps: plays.
            ok = publish(url, seconds=8, size="360x640", rate=30)
            pubs.append(ok)
            wait_for(lambda: http(sl.url("/hls/shop/master.m3u8"))[0] == 200, 30, "a playing stream")
            self.assertEqual(sl.log().count("publish refused:"), 2)
        finally:
            for p in pubs:
                if p.poll() is None:
                    p.kill()
            sl.close()
            hook.close()


if __name__ == "__main__":
    unittest.main()
