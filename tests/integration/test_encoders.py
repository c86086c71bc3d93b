"""Encoders we did not write, publishing into the real sluice while players
watch (issue 18). The one in CI is GStreamer's x264enc at its defaults: it
decides its own keyframes (250 frames, 8.3 s at 30 fps), uses B-frames, and
spaces its timestamps unevenly (23, 33 and 46 ms at 30 fps, more unevenly on a
busy machine), with 44.1 kHz AAC. On this 2-core machine, with the ladder
transcoding and three players reading, it made the stream worker fail and
restart several times a minute before the packager's fix (an LL-HLS part's
estimated end overtook the next two samples): the stress reproduction of the
issue. The full encoder matrix (OBS, ffmpeg variants) is by hand:
tests/interop/."""

import json
import os
import re
import shutil
import subprocess
import time
import unittest

import hlscheck
from harness import Sluice, http, wait_for

KEY = "demo-secret-key"
SECONDS = 28


def gst_publisher(url, seconds, width=1280, height=720, rate=30, audio_rate=44100):
    """gst-launch: videotestsrc -> x264enc with no properties -> flvmux ->
    rtmp2sink, with 44.1 kHz AAC; stops itself after `seconds` (num-buffers)."""
    frames = seconds * rate
    audio_buffers = seconds * audio_rate // 1024
    cmd = ["gst-launch-1.0", "-q", "-e",
           "videotestsrc", "is-live=true", "pattern=ball", f"num-buffers={frames}", "!",
           f"video/x-raw,width={width},height={height},framerate={rate}/1", "!",
           "videoconvert", "!", "x264enc", "!", "h264parse", "!", "queue", "!",
           "flvmux", "name=m", "streamable=true", "!", "rtmp2sink", f"location={url}",
           "audiotestsrc", "is-live=true", "samplesperbuffer=1024", f"num-buffers={audio_buffers}",
           "!", f"audio/x-raw,rate={audio_rate},channels=2", "!", "audioconvert", "!",
           "avenc_aac", "!", "aacparse", "!", "queue", "!", "m."]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def ffmpeg_player(url, seconds):
    """A player that decodes everything it reads, for `seconds` at most."""
    return subprocess.Popen(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
                             "-i", url, "-t", str(seconds), "-f", "null", "-"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def status(sl):
    st, _, body = http(sl.admin_url("/api/v1/streams/demo"))
    assert st == 200, body
    return json.loads(body)


@unittest.skipIf(shutil.which("gst-launch-1.0") is None, "GStreamer is not installed")
class GstreamerPublisherTest(unittest.TestCase):

    def test_x264enc_defaults_watched_by_players_never_restart_the_worker(self):
        # The default ladder: the 720p source is copied, 480p and 360p encoded.
        sl = Sluice()
        pub = gst_publisher(sl.rtmp_url(KEY), SECONDS)
        players = []
        renditions = []
        try:
            master = sl.url("/hls/demo/master.m3u8")
            # x264enc at its defaults (preset medium, lookahead) takes seconds to emit
            # its first frame, more on a busy machine.
            wait_for(lambda: http(master)[0] == 200, 90, "the master playlist")
            renditions = re.findall(r"^([0-9a-z]+)/index\.m3u8$", http(master)[2].decode(), re.M)
            self.assertEqual(renditions, ["720p", "480p", "360p"])
            # Three players: the master (the top rendition), and two rungs.
            players = [ffmpeg_player(master, SECONDS),
                       ffmpeg_player(sl.url("/hls/demo/480p/index.m3u8"), SECONDS),
                       ffmpeg_player(sl.url("/hls/demo/360p/index.m3u8"), SECONDS)]
            checked = 0
            deadline = time.time() + SECONDS + 30
            while pub.poll() is None and time.time() < deadline:
                tr = status(sl).get("transcode") or {}
                self.assertEqual(tr.get("restarts", 0), 0, tr.get("last_error"))
                for rend in renditions + ["audio"]:
                    st, _, body = http(sl.url(f"/hls/demo/{rend}/index.m3u8"))
                    if st == 200:
                        text = body.decode()
                        self.assertEqual(hlscheck.check_media(text, ll=True), [], f"{rend}:\n{text}")
                        checked += 1
                time.sleep(2)
            self.assertIsNotNone(pub.poll(), "the publisher did not end")
            _, err = pub.communicate()
            self.assertEqual(pub.returncode, 0, err.decode(errors="replace")[-2000:])
            self.assertGreater(checked, 20)
            for p in players:
                _, err = p.communicate(timeout=60)
                self.assertEqual(p.returncode, 0, err.decode(errors="replace")[-2000:])
            # The stream ends (ENDLIST after the reconnect window is cut
            # short by the unpublish) and every rendition decodes whole.
            for rend in renditions:
                url = sl.url(f"/hls/demo/{rend}/index.m3u8")
                wait_for(lambda: b"#EXT-X-ENDLIST" in http(url)[2], 30, f"{rend} ended")
                text = http(url)[2].decode()
                # Ended: whole segments only (ll=None: with or without parts).
                self.assertEqual(hlscheck.check_media(text, ll=None), [], f"{rend}:\n{text}")
                dec = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
                                      "-i", url, "-f", "null", "-"],
                                     capture_output=True, timeout=120)
                self.assertEqual(dec.returncode, 0, dec.stderr.decode(errors="replace")[-2000:])
                # The decoder's complaints, not the null muxer's: this
                # publisher's frames are 23 to 46 ms apart, which ffmpeg's
                # 1/30 s output clock cannot keep apart.
                complaints = [l for l in dec.stderr.decode(errors="replace").splitlines()
                              if not l.startswith("[null @") and "Last message repeated" not in l]
                self.assertEqual(complaints, [], f"{rend}: decoder complaints")
            tr = status(sl).get("transcode") or {}
            self.assertEqual(tr.get("restarts", 0), 0, tr.get("last_error"))
            log = sl.log()
            self.assertNotIn("stream worker failed", log)
            self.assertNotRegex(log, r"segment \d+ follows \d+")
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- sluice log:\n{sl.log()[-6000:]}") from None
        finally:
            for p in players:
                if p.poll() is None:
                    p.kill()
                p.communicate()
            sl.close(pub)


if __name__ == "__main__":
    unittest.main()
