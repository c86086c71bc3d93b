"""Closed captions through the ladder (issue 21). A source whose H.264
carries CEA-608 captions in SEI (ATSC A/53 "GA94" cc_data, as encoders and
relays send them) is published over RTMP; on every rendition, copied or
transcoded, every picture of every segment still carries its caption bytes
(ffprobe: the frame's "ATSC A53 Part 4 Closed Captions" side data, and
closed_captions=1 on the stream), the caption text still decodes (ffmpeg's
subcc reads "HELLO" once a second), and the master declares them: an
EXT-X-MEDIA TYPE=CLOSED-CAPTIONS group with INSTREAM-ID "CC1" and no URI,
named by every variant. The same source without the SEI gets no group, no
attribute and no captions in any rendition.

The source: ffmpeg's libx264 writes an Annex B stream, and make_source puts
an SEI NAL unit with one CEA-608 byte pair (field 1) before every picture: a
pop-on caption "HELLO" each second (RCL, the text, EOC; padding between).
ffmpeg then muxes it with AAC into FLV (-c:v copy) and publishes that file.
GStreamer was the first idea, but Debian 12's closedcaption plugin (1.22,
gst-plugins-bad) has no sccparse (that one lives in gst-plugins-rs), and
FFmpeg 5.1 cannot turn a caption file into A/53 side data for libx264; the
SEI written here is exactly what a broadcast encoder sends."""

import os
import shutil
import subprocess
import tempfile
import unittest

from harness import ffprobe_json
from hlscheck import check_master
from test_ladder import LadderCase

A53_CC = "ATSC A53 Part 4 Closed Captions"
SECONDS = 6


def _parity(b):
    """A CEA-608 byte: 7 bits and odd parity."""
    b &= 0x7F
    return b | (0x80 if bin(b).count("1") % 2 == 0 else 0)


def _ebsp(rbsp):
    """RBSP -> NAL payload: an emulation-prevention 0x03 after two zeros."""
    out, zeros = bytearray(), 0
    for b in rbsp:
        if zeros >= 2 and b <= 3:
            out.append(3)
            zeros = 0
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


def _caption_sei(b1, b2):
    """An SEI NAL unit (Annex B) with one user_data_registered_itu_t_t35
    message: ATSC A/53 cc_data with one field-1 CEA-608 pair."""
    cc_data = bytes([0x40 | 1, 0xFF, 0xFC, _parity(b1), _parity(b2), 0xFF])
    payload = b"\xb5\x00\x31GA94\x03" + cc_data
    return b"\x00\x00\x00\x01\x06" + _ebsp(bytes([4, len(payload)]) + payload + b"\x80")


# One pop-on caption per second at 30 fps: RCL RCL, "HELLO", EOC EOC (the
# control codes sent twice, as 608 wants), then null padding.
_SECOND = [(0x14, 0x20), (0x14, 0x20), (ord("H"), ord("E")), (ord("L"), ord("L")),
           (ord("O"), 0x00), (0x14, 0x2F), (0x14, 0x2F)]


def _add_captions(annexb):
    """The stream with a caption SEI before the first slice of every picture."""
    starts, i = [], 0
    while (j := annexb.find(b"\x00\x00\x01", i)) >= 0:
        starts.append(j + 3)
        i = j + 3
    out, pictures = bytearray(), 0
    for k, s in enumerate(starts):
        e = starts[k + 1] - 3 if k + 1 < len(starts) else len(annexb)
        while e > s and annexb[e - 1] == 0:
            e -= 1
        nal = annexb[s:e]
        # A slice (types 1 and 5) with first_mb_in_slice 0 starts a picture.
        if (nal[0] & 0x1F) in (1, 5) and nal[1] & 0x80:
            k30 = pictures % 30
            out += _caption_sei(*(_SECOND[k30] if k30 < len(_SECOND) else (0x80, 0x80)))
            pictures += 1
        out += b"\x00\x00\x00\x01" + nal
    return bytes(out), pictures


def make_source(path, captions, size="854x480"):
    """An FLV of H.264 (testsrc2, 30 fps, keyframe each second, with or
    without caption SEI) + AAC; the same pictures either way."""
    raw = path + ".h264"
    run = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    out = subprocess.run(run + ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30",
                                "-t", str(SECONDS), "-c:v", "libx264", "-preset", "ultrafast",
                                "-bf", "0", "-g", "30", "-keyint_min", "30",
                                "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-b:v", "1500k",
                                "-f", "h264", raw], capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    if captions:
        with open(raw, "rb") as f:
            data, pictures = _add_captions(f.read())
        assert pictures == SECONDS * 30, pictures
        with open(raw, "wb") as f:
            f.write(data)
    out = subprocess.run(run + ["-fflags", "+genpts", "-framerate", "30", "-f", "h264", "-i", raw,
                                "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                                "-t", str(SECONDS), "-map", "0:v", "-map", "1:a",
                                "-c:v", "copy", "-c:a", "aac", "-b:a", "128k", "-ac", "2",
                                "-f", "flv", path], capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    os.unlink(raw)


def caption_frames(path):
    """(pictures, pictures with A/53 caption side data, the stream's
    closed_captions) of a file, every picture decoded."""
    info = ffprobe_json(path, "-select_streams", "v", "-show_frames", "-show_streams")
    frames = info.get("frames", [])
    with_cc = sum(1 for fr in frames
                  if any(sd.get("side_data_type") == A53_CC for sd in fr.get("side_data_list", [])))
    return len(frames), with_cc, info["streams"][0].get("closed_captions")


def caption_text(path):
    """The CEA-608 text the captions of a file decode to (ffmpeg's subcc, SRT)."""
    out = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error",
                          "-f", "lavfi", "-i", f"movie={path}[out0+subcc]",
                          "-map", "0:1", "-f", "srt", "-"], capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    return out.stdout.decode(errors="replace")


class CaptionsTest(LadderCase):

    @classmethod
    def setUpClass(cls):
        cls.src_dir = tempfile.mkdtemp(prefix="sluice-captions-")
        cls.captioned = os.path.join(cls.src_dir, "captioned.flv")
        cls.plain = os.path.join(cls.src_dir, "plain.flv")
        make_source(cls.captioned, True)
        make_source(cls.plain, False)
        # The source itself is what the tests expect it to be.
        n, cc, flag = caption_frames(cls.captioned)
        assert n == SECONDS * 30 and cc == n and flag == 1, (n, cc, flag)
        assert caption_frames(cls.plain)[1] == 0

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.src_dir, ignore_errors=True)

    def publish_ended(self, src, *args):
        self.start("--preset", "ultrafast", *args)
        self.run_source(src)
        media, variants = self.ended_master()
        master = self.get("/hls/demo/master.m3u8")[2].decode()
        self.assertEqual(check_master(master), [], master)
        return master, media, variants

    def assert_declared(self, master, media, variants):
        cc = [m for m in media if m.get("TYPE") == "CLOSED-CAPTIONS"]
        self.assertEqual(len(cc), 1, master)
        self.assertEqual(cc[0].get("GROUP-ID"), "cc", master)
        self.assertEqual(cc[0].get("INSTREAM-ID"), "CC1", master)
        self.assertNotIn("URI", cc[0], master)
        for attrs, uri in variants:
            self.assertEqual(attrs.get("CLOSED-CAPTIONS"), "cc", f"{uri} in\n{master}")

    def assert_carried(self, variants, transcoded):
        """Every segment of every rendition: each picture has its captions;
        the whole rendition's captions read HELLO once a second."""
        names = [uri.split("/")[0] for _, uri in variants]
        self.assertEqual(sorted(names), sorted(transcoded + self.copied), names)
        for name in names:
            _, segs = self.rendition(name)
            self.assertGreaterEqual(len(segs), 2, name)
            total = 0
            for msn, path in segs:
                n, cc, flag = caption_frames(path)
                self.assertGreater(n, 0, f"{name} segment {msn}")
                self.assertEqual(cc, n, f"{name} segment {msn}: {cc} of {n} pictures with "
                                        f"captions")
                self.assertEqual(flag, 1, f"{name} segment {msn}: closed_captions")
                total += n
            self.assertEqual(total, SECONDS * 30, name)
            text = caption_text(self.whole(name))
            self.assertGreaterEqual(text.count("HELLO"), SECONDS - 1, f"{name}:\n{text}")

    def test_transcoded_and_copied_rungs_keep_captions(self):
        # 480p is the source copied, 360p is decoded, scaled and encoded.
        self.copied = ["480p"]
        master, media, variants = self.publish_ended(self.captioned, "--ladder", "480p,360p")
        self.assertIn("480p 854x480 copy", self.sluice.log())
        self.assertIn("closed captions (CEA-608/708) on a decoded picture", self.sluice.log())
        self.assert_declared(master, media, variants)
        self.assert_carried(variants, ["360p"])

    def test_every_rung_transcoded_keeps_captions(self):
        # 480p is encoded from the decoded picture as it is, 360p scaled.
        self.copied = []
        master, media, variants = self.publish_ended(self.captioned, "--ladder", "480p,360p",
                                                     "--passthrough", "never")
        self.assert_declared(master, media, variants)
        self.assert_carried(variants, ["480p", "360p"])

    def test_copy_only_ladder_finds_captions_in_the_sei(self):
        # Nothing is decoded: the captions are found in the copied samples.
        self.copied = ["480p"]
        master, media, variants = self.publish_ended(self.captioned, "--ladder", "480p")
        self.assertIn("closed captions (CEA-608/708) in the copied source's SEI",
                      self.sluice.log())
        self.assert_declared(master, media, variants)
        self.assert_carried(variants, [])

    def test_source_without_captions_declares_none(self):
        master, media, variants = self.publish_ended(self.plain, "--ladder", "480p,360p")
        self.assertNotIn("CLOSED-CAPTIONS", master)
        self.assertNotIn("closed captions", self.sluice.log())
        for _, uri in variants:
            name = uri.split("/")[0]
            _, segs = self.rendition(name)
            n, cc, _ = caption_frames(segs[0][1])
            self.assertGreater(n, 0, name)
            self.assertEqual(cc, 0, f"{name}: captions from nowhere")


if __name__ == "__main__":
    unittest.main()
