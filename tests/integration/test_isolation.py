"""One bad actor never stops the others: a publisher sending corrupt video
beside a good one, and idle or slowloris HTTP clients beside a viewer."""

import socket
import time
import unittest

from harness import Sluice, http, parse_media, publish, wait_for


def media_seq(sl, sid, rend):
    st, _, body = http(sl.url(f"/hls/{sid}/{rend}/index.m3u8"))
    if st != 200:
        return None
    m = parse_media(body.decode())
    return int(m["tags"].get("EXT-X-MEDIA-SEQUENCE", "0")) + len(m["segments"])


class IsolationTest(unittest.TestCase):
    def test_corrupt_publisher_beside_a_good_one(self):
        sl = Sluice("--ladder", "360p", "--preset", "ultrafast", "--passthrough", "never",
                    streams=(("good", "good-secret-key"), ("bad", "bad-secret-key")))
        # The noise bitstream filter flips bits in every video packet after
        # encoding: the transcoder's decoder gets broken NAL units.
        bad = publish(sl.rtmp_url("bad-secret-key"), seconds=40, size="640x360",
                      extra=("-bsf:v", "noise=amount=200"))
        good = publish(sl.rtmp_url("good-secret-key"), seconds=40, size="640x360")
        try:
            wait_for(lambda: media_seq(sl, "good", "360p"), 30, "the good stream's playlist")
            first = media_seq(sl, "good", "360p")
            time.sleep(8)
            last = media_seq(sl, "good", "360p")
            self.assertGreaterEqual(last - first, 3,
                                    "the good stream stopped advancing beside the corrupt one")
            self.assertIsNone(sl.proc.poll(), "sluice died")
            self.assertEqual(http(sl.url("/healthz"))[0], 200)
        finally:
            sl.close(bad, good)

    def test_idle_and_slowloris_clients_do_not_block_a_viewer(self):
        sl = Sluice()
        idle = []
        try:
            for _ in range(200):
                idle.append(socket.create_connection(("127.0.0.1", sl.http_port)))
            slow = socket.create_connection(("127.0.0.1", sl.http_port))
            idle.append(slow)
            request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 64
            for i in range(20):
                # a header byte now and then, never finishing the request
                slow.send(request[i:i + 1])
                start = time.time()
                st, _, body = http(sl.url("/healthz"), timeout=5)
                self.assertEqual((st, body), (200, b"ok\n"))
                self.assertLess(time.time() - start, 2)
                time.sleep(0.05)
            # the admin listener and the public one are apart
            self.assertEqual(http(sl.admin_url("/api/v1/streams"), timeout=5)[0], 200)
        finally:
            for s in idle:
                s.close()
            sl.close()


if __name__ == "__main__":
    unittest.main()
