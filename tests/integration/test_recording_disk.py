"""A recording across a full disk (issue 19, review S8): the recordings
directory is a small tmpfs of the test's own (mounted here: the test needs
root, like test_package.py, and fails without it); while the stream is live a
filler file takes all its space for a few seconds and is then removed. The
write errors skip segments (one error line per gap, one line when writing
works again) instead of failing the whole broadcast: at the end the
recording is "ready", counts the gap in "write_errors", plays through
/vod/ with a discontinuity where the gap was, and every segment in its
playlists decodes."""

import os
import subprocess
import tempfile
import time
import unittest

from harness import Sluice, finish, http, parse_master, parse_media, publish, wait_for
from test_recording import decode, one

KEY = "key-disk-0123456789"


class RecordingFullDiskTest(unittest.TestCase):
    def test_full_disk_is_a_gap_not_a_lost_recording(self):
        self.assertEqual(os.geteuid(), 0, "this test mounts a tmpfs: run it as root")
        tmp = tempfile.mkdtemp(prefix="sluice-disk-")
        rec = os.path.join(tmp, "rec")
        os.mkdir(rec)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", rec], check=True)
        sl = pub = None
        try:
            sl = Sluice("--ladder", "360p", "--preset", "ultrafast", "--segment-duration", "1",
                        "--playlist-segments", "30", "--recordings-dir", rec, "--record",
                        streams=(("disk", KEY),))
            pub = publish(sl.rtmp_url(KEY), seconds=22, size="640x360", gop=30)
            wait_for(lambda: one(rec, "disk", "recording") and
                     one(rec, "disk", "recording")[1]["segments"] >= 4, 30, "four recorded segments")
            # The disk fills up...
            filler = os.path.join(rec, "filler")
            with open(filler, "wb") as f:
                try:
                    while True:
                        f.write(b"\0" * (1 << 20))
                        f.flush()
                except OSError:
                    pass
            wait_for(lambda: "its segments are skipped until writing works again" in sl.log(), 20,
                     "the first write error")
            time.sleep(3)
            # ... and space comes back.
            os.unlink(filler)
            wait_for(lambda: "writing again from segment" in sl.log(), 20, "writing again")
            finish(pub, 60)
            pub = None
            got = []
            wait_for(lambda: got.append(one(rec, "disk", "ready")) or got[-1], 60, "a ready recording")
            rid, j = got[-1]
            self.assertGreaterEqual(j["write_errors"]["gaps"], 1, j)
            self.assertGreaterEqual(j["write_errors"]["segments_skipped"], 1, j)
            self.assertIn("No space left on device", j["write_errors"]["last"])
            self.assertGreaterEqual(j["discontinuities"], 1, j)
            self.assertEqual(sl.log().count("its segments are skipped until writing works again"),
                             j["write_errors"]["gaps"], "one error line per gap")
            # It plays: the master, each rendition's playlist with the gap as
            # a discontinuity, segments from before and after it.
            st, _, body = http(sl.url(f"/vod/{rid}/master.m3u8"))
            self.assertEqual(st, 200)
            media, variants = parse_master(body.decode())
            for uri in [u for _, u in variants] + [m["URI"] for m in media if "URI" in m]:
                st, _, pl = http(sl.url(f"/vod/{rid}/{uri}"))
                self.assertEqual(st, 200, uri)
                text = pl.decode()
                self.assertIn("#EXT-X-DISCONTINUITY", text, uri)
                self.assertIn("#EXT-X-ENDLIST", text, uri)
                self.assertGreaterEqual(len(parse_media(text)["segments"]), 8, uri)
            rc, err = decode(os.path.join(rec, rid, "360p", "index.m3u8"))
            self.assertEqual(rc, 0, err)
            self.assertNotIn("failed", sl.log().split("recording " + rid + " ready")[0].split("\n")[-1])
        finally:
            if pub:
                pub.kill()
            if sl:
                sl.close()
            subprocess.run(["umount", "-l", rec])
            subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    unittest.main()
