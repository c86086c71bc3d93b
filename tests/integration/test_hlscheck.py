"""Tests of the playlist checker (hlscheck.py) that the other suites run over
what sluice serves: playlists as sluice's renderer writes them
(tests/unit/test_hls_playlist.c renders the same models) pass, and each
broken variant is caught with the rule it breaks, so a checker that stopped
checking would fail here. CheckerTest is pure Python; SluiceTest runs the
checker over what the real sluice serves, live and after the end."""

import re
import unittest

from harness import Sluice, finish, http, publish, wait_for

from hlscheck import (check_delta, check_master, check_media, check_renditions,
                      parse_attr_list)

# Rendered by common/hls_playlist.c: a live LL-HLS window (parts on the
# last two segments, three parts of segment 14 in progress, the hint for
# 14.3, three rendition reports); the same window ended; a ten-segment
# window and its delta updates for _HLS_skip=YES and v2 (CAN-SKIP-UNTIL 12,
# three segments skipped, discontinuities on 21 and 24).
LIVE = """\
#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500,CAN-SKIP-UNTIL=12.000,CAN-SKIP-DATERANGES=YES
#EXT-X-PART-INF:PART-TARGET=0.500
#EXT-X-MEDIA-SEQUENCE:10
#EXT-X-MAP:URI="init.mp4"
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.000Z
#EXTINF:2.000,
10.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:02.000Z
#EXTINF:2.000,
11.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:04.000Z
#EXT-X-PART:DURATION=0.500,URI="12.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.500,URI="12.1.m4s"
#EXT-X-PART:DURATION=0.500,URI="12.2.m4s"
#EXT-X-PART:DURATION=0.500,URI="12.3.m4s"
#EXTINF:2.000,
12.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:06.000Z
#EXT-X-PART:DURATION=0.500,URI="13.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.500,URI="13.1.m4s"
#EXT-X-PART:DURATION=0.500,URI="13.2.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.500,URI="13.3.m4s"
#EXTINF:2.000,
13.m4s
#EXT-X-PART:DURATION=0.500,URI="14.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.500,URI="14.1.m4s"
#EXT-X-PART:DURATION=0.500,URI="14.2.m4s"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="14.3.m4s"
#EXT-X-RENDITION-REPORT:URI="../1080p/index.m3u8",LAST-MSN=14,LAST-PART=3
#EXT-X-RENDITION-REPORT:URI="../480p/index.m3u8",LAST-MSN=14,LAST-PART=2
#EXT-X-RENDITION-REPORT:URI="../audio/index.m3u8",LAST-MSN=14,LAST-PART=2
"""

ENDED = """\
#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500,CAN-SKIP-UNTIL=12.000,CAN-SKIP-DATERANGES=YES
#EXT-X-PART-INF:PART-TARGET=0.500
#EXT-X-MEDIA-SEQUENCE:10
#EXT-X-MAP:URI="init.mp4"
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.000Z
#EXTINF:2.000,
10.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:02.000Z
#EXTINF:2.000,
11.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:04.000Z
#EXT-X-PART:DURATION=0.500,URI="12.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.500,URI="12.1.m4s"
#EXT-X-PART:DURATION=0.500,URI="12.2.m4s"
#EXT-X-PART:DURATION=0.500,URI="12.3.m4s"
#EXTINF:2.000,
12.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:06.000Z
#EXT-X-PART:DURATION=0.500,URI="13.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.500,URI="13.1.m4s"
#EXT-X-PART:DURATION=0.500,URI="13.2.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.500,URI="13.3.m4s"
#EXTINF:2.000,
13.m4s
#EXT-X-RENDITION-REPORT:URI="../1080p/index.m3u8",LAST-MSN=14,LAST-PART=3
#EXT-X-RENDITION-REPORT:URI="../480p/index.m3u8",LAST-MSN=14,LAST-PART=2
#EXT-X-RENDITION-REPORT:URI="../audio/index.m3u8",LAST-MSN=14,LAST-PART=2
#EXT-X-ENDLIST
"""

FULL = """\
#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=3.000,CAN-SKIP-UNTIL=12.000,CAN-SKIP-DATERANGES=YES
#EXT-X-PART-INF:PART-TARGET=1.000
#EXT-X-MEDIA-SEQUENCE:20
#EXT-X-DISCONTINUITY-SEQUENCE:5
#EXT-X-MAP:URI="init.mp4"
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.000Z
#EXTINF:2.000,
20.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI="init.mp4"
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:02.000Z
#EXTINF:2.000,
21.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:04.000Z
#EXTINF:2.000,
22.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:06.000Z
#EXTINF:2.000,
23.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI="init.mp4"
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:08.000Z
#EXTINF:2.000,
24.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:10.000Z
#EXTINF:2.000,
25.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:12.000Z
#EXTINF:2.000,
26.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:14.000Z
#EXTINF:2.000,
27.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:16.000Z
#EXT-X-PART:DURATION=1.000,URI="28.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=1.000,URI="28.1.m4s"
#EXTINF:2.000,
28.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:18.000Z
#EXT-X-PART:DURATION=1.000,URI="29.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=1.000,URI="29.1.m4s"
#EXTINF:2.000,
29.m4s
#EXT-X-PART:DURATION=1.000,URI="30.0.m4s",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="30.1.m4s"
#EXT-X-RENDITION-REPORT:URI="../audio/index.m3u8",LAST-MSN=30,LAST-PART=0
"""

DELTA_YES = """\
#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=3.000,CAN-SKIP-UNTIL=12.000,CAN-SKIP-DATERANGES=YES
#EXT-X-PART-INF:PART-TARGET=1.000
#EXT-X-MEDIA-SEQUENCE:20
#EXT-X-DISCONTINUITY-SEQUENCE:5
#EXT-X-MAP:URI="init.mp4"
#EXT-X-SKIP:SKIPPED-SEGMENTS=3
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:06.000Z
#EXTINF:2.000,
23.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI="init.mp4"
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:08.000Z
#EXTINF:2.000,
24.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:10.000Z
#EXTINF:2.000,
25.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:12.000Z
#EXTINF:2.000,
26.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:14.000Z
#EXTINF:2.000,
27.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:16.000Z
#EXT-X-PART:DURATION=1.000,URI="28.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=1.000,URI="28.1.m4s"
#EXTINF:2.000,
28.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:18.000Z
#EXT-X-PART:DURATION=1.000,URI="29.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=1.000,URI="29.1.m4s"
#EXTINF:2.000,
29.m4s
#EXT-X-PART:DURATION=1.000,URI="30.0.m4s",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="30.1.m4s"
#EXT-X-RENDITION-REPORT:URI="../audio/index.m3u8",LAST-MSN=30,LAST-PART=0
"""

DELTA_V2 = """\
#EXTM3U
#EXT-X-VERSION:10
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=3.000,CAN-SKIP-UNTIL=12.000,CAN-SKIP-DATERANGES=YES
#EXT-X-PART-INF:PART-TARGET=1.000
#EXT-X-MEDIA-SEQUENCE:20
#EXT-X-DISCONTINUITY-SEQUENCE:5
#EXT-X-MAP:URI="init.mp4"
#EXT-X-SKIP:SKIPPED-SEGMENTS=3,RECENTLY-REMOVED-DATERANGES=""
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:06.000Z
#EXTINF:2.000,
23.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI="init.mp4"
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:08.000Z
#EXTINF:2.000,
24.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:10.000Z
#EXTINF:2.000,
25.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:12.000Z
#EXTINF:2.000,
26.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:14.000Z
#EXTINF:2.000,
27.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:16.000Z
#EXT-X-PART:DURATION=1.000,URI="28.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=1.000,URI="28.1.m4s"
#EXTINF:2.000,
28.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:18.000Z
#EXT-X-PART:DURATION=1.000,URI="29.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=1.000,URI="29.1.m4s"
#EXTINF:2.000,
29.m4s
#EXT-X-PART:DURATION=1.000,URI="30.0.m4s",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="30.1.m4s"
#EXT-X-RENDITION-REPORT:URI="../audio/index.m3u8",LAST-MSN=30,LAST-PART=0
"""

CLASSIC = """\
#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:7
#EXT-X-MAP:URI="init.mp4"
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.000Z
#EXTINF:2.000,
7.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:02.000Z
#EXTINF:2.002,
8.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:04.002Z
#EXTINF:2.000,
9.m4s
"""

MASTER = """\
#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="audio",DEFAULT=YES,AUTOSELECT=YES,\
CHANNELS="2",URI="audio/index.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=2928000,AVERAGE-BANDWIDTH=2800000,CODECS="avc1.64001f,mp4a.40.2",\
RESOLUTION=1280x720,FRAME-RATE=30.000,AUDIO="audio"
720p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=1200000,CODECS="avc1.4d401e,mp4a.40.2",RESOLUTION=854x480,\
FRAME-RATE=30.000,AUDIO="audio"
480p/index.m3u8
"""

# MASTER with what a captioned source adds, the lines that
# tests/unit/test_hls_playlist.c's test_master_captions expects.
MASTER_CC = MASTER.replace(
    'URI="audio/index.m3u8"\n',
    'URI="audio/index.m3u8"\n#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="Captions",'
    'DEFAULT=YES,AUTOSELECT=YES,INSTREAM-ID="CC1"\n').replace(
    'AUDIO="audio"\n', 'AUDIO="audio",CLOSED-CAPTIONS="cc"\n')

REPORTS = {"../1080p/index.m3u8", "../480p/index.m3u8", "../audio/index.m3u8"}


def sub(text, old, new, count=1):
    """text with old replaced by new; old must be there (a sample edit that
    silently did nothing would make a test pass for the wrong reason)."""
    assert old in text, old
    return text.replace(old, new, count)


def make_delta(full, n, v2=False):
    """The delta update of `full` that skips its first n segments, built the
    way 4.4.5.2 says (segment lines replaced, everything else kept)."""
    lines = full.split("\n")
    body = next(i for i, l in enumerate(lines) if l.startswith("#EXT-X-PROGRAM-DATE-TIME:"))
    uris = [i for i, l in enumerate(lines) if l and not l.startswith("#")]
    skip = "#EXT-X-SKIP:SKIPPED-SEGMENTS=%d" % n
    if v2:
        skip += ',RECENTLY-REMOVED-DATERANGES=""'
    out = lines[:body] + [skip] + lines[uris[n - 1] + 1:]
    return "\n".join(out).replace("#EXT-X-VERSION:7", "#EXT-X-VERSION:%d" % (10 if v2 else 9))


class CheckerTest(unittest.TestCase):

    def assertClean(self, errors):
        self.assertEqual(errors, [], "\n".join(errors))

    def assertCaught(self, errors, *needles):
        for needle in needles:
            self.assertTrue(any(needle in e for e in errors),
                            f"no violation containing {needle!r} in:\n" + "\n".join(errors))

    def assertMedia(self, text, *needles, **kw):
        self.assertCaught(check_media(text, **kw), *needles)

    # --- what sluice renders passes --------------------------------------

    def test_rendered_playlists_pass(self):
        self.assertClean(check_media(LIVE, reports=REPORTS))
        self.assertClean(check_media(ENDED, reports=REPORTS))
        self.assertClean(check_media(FULL))
        self.assertClean(check_media(DELTA_YES))
        self.assertClean(check_media(DELTA_V2))
        self.assertClean(check_media(CLASSIC, ll=False))
        self.assertClean(check_delta(FULL, DELTA_YES))
        self.assertClean(check_delta(FULL, DELTA_V2))
        self.assertClean(check_master(MASTER))
        # The deltas are exactly what 4.4.5.2 describes.
        self.assertEqual(make_delta(FULL, 3), DELTA_YES)
        self.assertEqual(make_delta(FULL, 3, v2=True), DELTA_V2)

    def test_attribute_list_parser(self):
        attrs, errs = parse_attr_list('A=1,B-2="x,y",C=YES,D=""')
        self.assertEqual(errs, [])
        self.assertEqual(attrs, {"A": "1", "B-2": "x,y", "C": "YES", "D": ""})
        for bad, needle in (('a=1', "bad AttributeName"), ('A=1,A=2', "appears twice"),
                            ('A="x', "unterminated"), ('A=1,', "trailing comma"),
                            ('A=1 ,B=2', "whitespace"), ('A=', "empty value"),
                            ('A="x"y', "junk after value"), ('', "empty attribute-list")):
            self.assertCaught(parse_attr_list(bad)[1], needle)

    # --- basic structure ----------------------------------------------------

    def test_structure(self):
        self.assertMedia(sub(LIVE, "#EXTM3U\n", ""), "first line is not #EXTM3U")
        self.assertMedia("\n" + LIVE, "first line is not #EXTM3U")
        self.assertMedia("\ufeff" + LIVE, "byte order mark")
        self.assertMedia(sub(LIVE, "10.m4s", "10.m4s\x07"), "control character")
        self.assertMedia(sub(LIVE, "#EXT-X-VERSION:7\n", "#EXT-X-VERSION:7\n#EXT-X-VERSION:7\n"),
                         "EXT-X-VERSION appears more than once")
        self.assertMedia(sub(LIVE, "#EXT-X-TARGETDURATION:2\n", ""), "no EXT-X-TARGETDURATION")
        self.assertMedia(sub(LIVE, "#EXT-X-TARGETDURATION:2", "#EXT-X-TARGETDURATION:0"),
                         "no integer >= 1")
        self.assertMedia(sub(LIVE, "#EXTINF:2.000,\n10.m4s", "#EXTINF:2.000,"),
                         "second EXTINF for one segment")
        self.assertMedia(LIVE + "#EXT-X-STREAM-INF:BANDWIDTH=1\nx.m3u8\n",
                         "Multivariant Playlist tag")
        self.assertMedia(sub(LIVE, "#EXT-X-MAP:", "#EXT-X-MAPP:"), "unknown tag EXT-X-MAPP")
        self.assertMedia(sub(LIVE, "#EXT-X-MEDIA-SEQUENCE:10\n", "") +
                         "#EXT-X-MEDIA-SEQUENCE:10\n", "after the first Media Segment")
        self.assertMedia(sub(LIVE, "#EXTINF:2.000,\n10.m4s", "#EXTINF:2s,\n10.m4s"),
                         "not <duration>,[<title>]")

    def test_versions(self):
        self.assertMedia(sub(DELTA_YES, "VERSION:9", "VERSION:7"), "EXT-X-SKIP needs 9")
        self.assertMedia(sub(DELTA_V2, "VERSION:10", "VERSION:9"), "skips date ranges needs 10")
        self.assertMedia(sub(CLASSIC, "VERSION:7", "VERSION:5"), "EXT-X-MAP needs 6", ll=False)
        self.assertMedia(sub(CLASSIC, "#EXT-X-VERSION:7\n", ""), "no EXT-X-VERSION", ll=False)
        self.assertClean(check_media(sub(CLASSIC, "VERSION:7", "VERSION:6"), ll=False))

    def test_target_duration_rounding(self):
        # 4.4.3.1: EXTINF rounded to the nearest integer <= TARGETDURATION
        # (2.499 rounds to 2, 2.500 to 3).
        ok = sub(CLASSIC, "#EXTINF:2.002,", "#EXTINF:2.499,")
        self.assertClean(check_media(ok, ll=False))
        self.assertMedia(sub(CLASSIC, "#EXTINF:2.002,", "#EXTINF:2.500,"),
                         "EXTINF 2.500 rounds above EXT-X-TARGETDURATION 2", ll=False)

    def test_program_date_time(self):
        self.assertMedia(sub(LIVE, "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:02.000Z\n", ""),
                         "'11.m4s' without EXT-X-PROGRAM-DATE-TIME")
        self.assertMedia(sub(LIVE, "12:00:02.000Z", "12:00:02Z"), "with a time zone")
        self.assertMedia(sub(LIVE, "12:00:02.000Z", "12:00:00.500Z"), "goes back 1.500 s")
        self.assertMedia(sub(LIVE, "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:04.000Z\n"
                             "#EXT-X-PART:DURATION=0.500,URI=\"12.0.m4s\",INDEPENDENT=YES\n",
                             "#EXT-X-PART:DURATION=0.500,URI=\"12.0.m4s\",INDEPENDENT=YES\n"
                             "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:04.000Z\n"),
                         "EXT-X-PROGRAM-DATE-TIME after the first EXT-X-PART")
        # A sub-second overlap is allowed (6.2.1).
        self.assertClean(check_media(sub(LIVE, "12:00:02.000Z", "12:00:01.200Z"),
                                     reports=REPORTS))

    # --- parts ----------------------------------------------------------------

    def test_part_durations(self):
        self.assertMedia(sub(LIVE, 'DURATION=0.500,URI="13.1.m4s"', 'DURATION=0.501,URI="13.1.m4s"'),
                         "EXT-X-PART DURATION 0.501 > PART-TARGET 0.500")
        # Under 85 % (0.425) only for a part that is neither independent nor
        # the last of its parent segment.
        short = sub(sub(LIVE, 'DURATION=0.500,URI="12.1.m4s"', 'DURATION=0.424,URI="12.1.m4s"'),
                    'DURATION=0.500,URI="12.2.m4s"', 'DURATION=0.576,URI="12.2.m4s"')
        self.assertMedia(short, "DURATION 0.424 < 85 %")
        ok = sub(sub(LIVE, 'DURATION=0.500,URI="12.1.m4s"', 'DURATION=0.425,URI="12.1.m4s"'),
                 '#EXTINF:2.000,\n12.m4s', '#EXTINF:1.925,\n12.m4s')
        self.assertClean(check_media(ok, reports=REPORTS))
        last = sub(sub(LIVE, 'DURATION=0.500,URI="12.3.m4s"', 'DURATION=0.100,URI="12.3.m4s"'),
                   '#EXTINF:2.000,\n12.m4s', '#EXTINF:1.600,\n12.m4s')
        self.assertClean(check_media(last, reports=REPORTS))
        indep = sub(sub(LIVE, 'DURATION=0.500,URI="13.2.m4s"', 'DURATION=0.100,URI="13.2.m4s"'),
                    '#EXTINF:2.000,\n13.m4s', '#EXTINF:1.600,\n13.m4s')
        self.assertClean(check_media(indep, reports=REPORTS))
        # The last part of the segment in progress may still become its final one.
        self.assertClean(check_media(sub(LIVE, 'DURATION=0.500,URI="14.2.m4s"',
                                         'DURATION=0.100,URI="14.2.m4s"'), reports=REPORTS))
        self.assertMedia(sub(LIVE, 'DURATION=0.500,URI="14.1.m4s"', 'DURATION=0.100,URI="14.1.m4s"'),
                         "DURATION 0.100 < 85 %")

    def test_parts_add_up_to_their_segment(self):
        self.assertMedia(sub(LIVE, "#EXTINF:2.000,\n12.m4s", "#EXTINF:1.500,\n12.m4s"),
                         "EXTINF 1.500 but its parts add up to 2.000")
        # A missing part is a hole in the segment.
        self.assertMedia(sub(LIVE, '#EXT-X-PART:DURATION=0.500,URI="13.1.m4s"\n', ""),
                         "add up to 1.500", "where part 1 of segment 13 belongs")
        # The oldest segment with parts may have lost its first ones (parts
        # are removed in order, 6.2.2); later ones may not.
        self.assertClean(check_media(sub(LIVE, '#EXT-X-PART:DURATION=0.500,URI="12.0.m4s",'
                                     'INDEPENDENT=YES\n', ""), reports=REPORTS))
        self.assertMedia(sub(LIVE, '#EXT-X-PART:DURATION=0.500,URI="13.0.m4s",INDEPENDENT=YES\n',
                             ""), "first part of segment 13 is '13.1.m4s', not part 0")

    def test_part_names_and_uris(self):
        self.assertMedia(sub(LIVE, 'URI="13.1.m4s"', 'URI="13.5.m4s"'),
                         "where part 1 of segment 13 belongs")
        self.assertMedia(sub(LIVE, 'URI="14.0.m4s"', 'URI="13.0.m4s"'),
                         "part '13.0.m4s' belongs to segment 14", "already on line")
        self.assertMedia(sub(LIVE, "\n11.m4s\n", "\n10.m4s\n"), "'10.m4s' already on line",
                         "'10.m4s' has Media Sequence Number 11")
        self.assertMedia(sub(LIVE, "MEDIA-SEQUENCE:10", "MEDIA-SEQUENCE:9"),
                         "'10.m4s' has Media Sequence Number 9")
        # Query strings (signed playback) do not hide names.
        signed = LIVE.replace('.m4s"', '.m4s?t=abc"').replace(".m4s\n", ".m4s?t=abc\n")
        self.assertClean(check_media(signed, reports=REPORTS))

    def test_part_placement(self):
        self.assertMedia(sub(LIVE, '#EXTINF:2.000,\n12.m4s\n',
                             '#EXTINF:2.000,\n#EXT-X-PART:DURATION=0.500,URI="12.9.m4s"\n12.m4s\n'),
                         "EXT-X-PART between EXTINF and its URI")
        # Parts on 11 and 13 but not on 12: removed out of order.
        gap = sub(sub(LIVE, "#EXTINF:2.000,\n11.m4s",
                      '#EXT-X-PART:DURATION=1.000,URI="11.0.m4s",INDEPENDENT=YES\n'
                      '#EXT-X-PART:DURATION=1.000,URI="11.1.m4s"\n#EXTINF:2.000,\n11.m4s'),
                  '#EXT-X-PART:DURATION=0.500,URI="12.0.m4s",INDEPENDENT=YES\n'
                  '#EXT-X-PART:DURATION=0.500,URI="12.1.m4s"\n'
                  '#EXT-X-PART:DURATION=0.500,URI="12.2.m4s"\n'
                  '#EXT-X-PART:DURATION=0.500,URI="12.3.m4s"\n', "")
        self.assertMedia(gap, "segment without EXT-X-PART after segments with them")
        # Parts of segment 11 end 5.5 to 7 s before the end (9.5 s): those
        # more than 3 x 2 s away should be gone.
        old = sub(LIVE, "#EXTINF:2.000,\n11.m4s",
                  '#EXT-X-PART:DURATION=0.500,URI="11.0.m4s",INDEPENDENT=YES\n'
                  '#EXT-X-PART:DURATION=0.500,URI="11.1.m4s"\n'
                  '#EXT-X-PART:DURATION=0.500,URI="11.2.m4s"\n'
                  '#EXT-X-PART:DURATION=0.500,URI="11.3.m4s"\n#EXTINF:2.000,\n11.m4s')
        errors = check_media(old, reports=REPORTS)
        self.assertCaught(errors, "EXT-X-PART ends 7.000 s before the end",
                          "EXT-X-PART ends 6.500 s before the end")
        self.assertEqual(len([e for e in errors if "3 Target Durations" in e]), 2, errors)

    def test_part_inf_and_server_control(self):
        self.assertMedia(sub(LIVE, "#EXT-X-PART-INF:PART-TARGET=0.500\n", ""),
                         "EXT-X-PART without EXT-X-PART-INF", "no EXT-X-PART-INF")
        sc = ("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500,"
              "CAN-SKIP-UNTIL=12.000,CAN-SKIP-DATERANGES=YES")
        self.assertMedia(sub(LIVE, sc, sc.replace("PART-HOLD-BACK=1.500", "PART-HOLD-BACK=1.400")),
                         "PART-HOLD-BACK 1.400 < 3 x PART-TARGET 0.500 (4.4.3.8: SHOULD)")
        self.assertMedia(sub(LIVE, sc, sc.replace("PART-HOLD-BACK=1.500", "PART-HOLD-BACK=0.900")),
                         "PART-HOLD-BACK 0.900 < 2 x PART-TARGET 0.500 (4.4.3.8: MUST)")
        self.assertMedia(sub(LIVE, sc, sc.replace(",PART-HOLD-BACK=1.500", "")),
                         "no PART-HOLD-BACK")
        self.assertMedia(sub(LIVE, sc, sc.replace("CAN-SKIP-UNTIL=12.000", "CAN-SKIP-UNTIL=11.999")),
                         "CAN-SKIP-UNTIL 11.999 < 6 x EXT-X-TARGETDURATION 2")
        self.assertMedia(sub(LIVE, sc, sc.replace("CAN-SKIP-UNTIL=12.000,", "")),
                         "CAN-SKIP-DATERANGES without CAN-SKIP-UNTIL")
        self.assertMedia(sub(LIVE, sc, sc + ",HOLD-BACK=5.999"),
                         "HOLD-BACK 5.999 < 3 x EXT-X-TARGETDURATION 2")
        self.assertClean(check_media(sub(LIVE, sc, sc + ",HOLD-BACK=6.000"), reports=REPORTS))
        self.assertMedia(sub(LIVE, sc, sc.replace("CAN-BLOCK-RELOAD=YES,", "")),
                         "no CAN-BLOCK-RELOAD=YES")
        self.assertMedia(sub(LIVE, sc + "\n", ""), "no EXT-X-SERVER-CONTROL",
                         "EXT-X-PART-INF without EXT-X-SERVER-CONTROL")

    def test_attribute_types(self):
        self.assertMedia(sub(LIVE, 'URI="12.1.m4s"', "URI=12.1.m4s"),
                         "URI must be a quoted-string")
        self.assertMedia(sub(LIVE, "INDEPENDENT=YES", "INDEPENDENT=yes"),
                         "INDEPENDENT 'yes' is not one of YES")
        self.assertMedia(sub(LIVE, "DURATION=0.500", 'DURATION="0.500"'),
                         "DURATION must not be quoted")
        self.assertMedia(sub(LIVE, "DURATION=0.500", "DURATION=.5"),
                         "'.5' is no decimal-floating-point")
        self.assertMedia(sub(LIVE, "PART-TARGET=0.500", "PART-TARGET=0,5"), "(4.2)")
        self.assertMedia(sub(LIVE, 'URI="12.1.m4s"', 'URI="12.1.m4s",FOO=1'),
                         "unknown attribute FOO")
        self.assertMedia(sub(LIVE, 'DURATION=0.500,URI="12.1.m4s"', 'URI="12.1.m4s"'),
                         "required attribute DURATION missing")
        self.assertMedia(sub(LIVE, "TYPE=PART", "TYPE=SEGMENT"), "'SEGMENT' is not one of MAP/PART")
        self.assertMedia(sub(LIVE, "LAST-MSN=14,LAST-PART=3", "LAST-MSN=-1,LAST-PART=3"),
                         "LAST-MSN '-1' is no decimal-integer")

    # --- preload hint and rendition reports ------------------------------------

    def test_preload_hint(self):
        hint = '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="14.3.m4s"\n'
        self.assertMedia(sub(LIVE, "14.3.m4s", "14.4.m4s"),
                         "preload hint '14.4.m4s', but the part after the last one is '14.3.m4s'")
        self.assertMedia(sub(LIVE, "14.3.m4s", "14.2.m4s"), "names a part already listed")
        self.assertMedia(sub(LIVE, hint, ""), "no EXT-X-PRELOAD-HINT TYPE=PART in a live playlist")
        self.assertMedia(sub(LIVE, hint, hint + hint), "a second EXT-X-PRELOAD-HINT TYPE=PART")
        self.assertMedia(sub(ENDED, "#EXT-X-ENDLIST", hint + "#EXT-X-ENDLIST"),
                         "EXT-X-PRELOAD-HINT in a playlist with EXT-X-ENDLIST")
        # No part of segment 14 yet: the hint names 14.0.
        fresh = sub(LIVE, '#EXT-X-PART:DURATION=0.500,URI="14.0.m4s",INDEPENDENT=YES\n'
                    '#EXT-X-PART:DURATION=0.500,URI="14.1.m4s"\n'
                    '#EXT-X-PART:DURATION=0.500,URI="14.2.m4s"\n', "")
        self.assertMedia(fresh, "the part after the last one is '14.0.m4s'")
        self.assertClean(check_media(sub(fresh, "14.3.m4s", "14.0.m4s"), reports=REPORTS))

    def test_rendition_reports(self):
        rep = '#EXT-X-RENDITION-REPORT:URI="../480p/index.m3u8",LAST-MSN=14,LAST-PART=2'
        self.assertMedia(sub(LIVE, rep, rep.replace("../480p", "https://cdn/480p")),
                         "is not relative")
        self.assertMedia(sub(LIVE, rep, rep.replace(",LAST-PART=2", "")), "without LAST-PART")
        self.assertMedia(sub(LIVE, rep, rep.replace(",LAST-MSN=14", "")),
                         "required attribute LAST-MSN missing")
        self.assertMedia(sub(LIVE, rep, rep + "\n" + rep), "a second EXT-X-RENDITION-REPORT")
        self.assertMedia(sub(LIVE, rep + "\n", ""), "no EXT-X-RENDITION-REPORT for "
                         "['../480p/index.m3u8']", reports=REPORTS)
        self.assertMedia(LIVE, "EXT-X-RENDITION-REPORT for unexpected ['../1080p/index.m3u8']",
                         reports=REPORTS - {"../1080p/index.m3u8"})
        hint = '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="14.3.m4s"\n'
        self.assertMedia(sub(LIVE, hint, "") + hint, "EXT-X-RENDITION-REPORT before the preload hint")
        self.assertMedia(LIVE + '#EXT-X-PART:DURATION=0.500,URI="14.3.m4s"\n',
                         "EXT-X-PART after the preload hint / rendition reports")

    # --- LL-HLS or not ----------------------------------------------------------

    def test_ll_expectation(self):
        self.assertMedia(LIVE, "LL-HLS tags in a playlist without LL-HLS", ll=False)
        self.assertMedia(CLASSIC, "no EXT-X-PART-INF", "no EXT-X-SERVER-CONTROL",
                         "no EXT-X-PART in an LL-HLS playlist", ll=True)
        self.assertClean(check_media(CLASSIC, ll=None))
        self.assertClean(check_media(LIVE, ll=None))

    # --- delta updates ------------------------------------------------------------

    def test_delta_updates(self):
        # Skipping two leaves segment 22, which ends 14 s from the end of the
        # last segment, beyond the Skip Boundary of 12 s.
        self.assertCaught(check_delta(FULL, make_delta(FULL, 2)),
                          "ends 14.000 s from the end, beyond the Skip Boundary")
        # Skipping four also drops 23, which ends 12 s from the end.
        self.assertCaught(check_delta(FULL, make_delta(FULL, 4)),
                          "the last skipped segment ends 12.000 s from the end, within")
        # A line the delta changed or lost.
        self.assertCaught(check_delta(FULL, sub(DELTA_YES, "#EXT-X-DISCONTINUITY\n", "")),
                          "after EXT-X-SKIP, line 4 is")
        self.assertCaught(check_delta(FULL, sub(DELTA_YES, "DISCONTINUITY-SEQUENCE:5",
                                                "DISCONTINUITY-SEQUENCE:6")),
                          "header")
        self.assertCaught(check_delta(FULL, sub(DELTA_YES, "SKIPPED-SEGMENTS=3",
                                                "SKIPPED-SEGMENTS=11")),
                          "but the full playlist has 10 segments")
        self.assertCaught(check_delta(FULL, FULL), "not exactly one EXT-X-SKIP")
        # Tag rules of EXT-X-SKIP itself.
        skip = "#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n"
        moved = sub(DELTA_YES, skip, "")
        moved = sub(moved, "#EXTINF:2.000,\n23.m4s\n", "#EXTINF:2.000,\n23.m4s\n" + skip)
        self.assertMedia(moved, "EXT-X-SKIP after Media Segment lines")
        self.assertMedia(DELTA_YES + "#EXT-X-ENDLIST\n",
                         "EXT-X-SKIP in a playlist with EXT-X-ENDLIST")
        self.assertMedia(sub(DELTA_YES, ",CAN-SKIP-UNTIL=12.000,CAN-SKIP-DATERANGES=YES", ""),
                         "EXT-X-SKIP without CAN-SKIP-UNTIL")
        self.assertMedia(sub(DELTA_V2, ",CAN-SKIP-DATERANGES=YES", ""),
                         "RECENTLY-REMOVED-DATERANGES without CAN-SKIP-DATERANGES=YES")
        self.assertMedia(sub(DELTA_YES, skip, skip + skip), "EXT-X-SKIP appears more than once")
        # Segment numbers continue after the skipped ones.
        self.assertMedia(sub(DELTA_YES, "SKIPPED-SEGMENTS=3", "SKIPPED-SEGMENTS=2"),
                         "'23.m4s' has Media Sequence Number 22")


    # --- date ranges (4.4.5.1) ------------------------------------------------

    DR1 = ('#EXT-X-DATERANGE:ID="sluice-1",CLASS="com.sluice.metadata",'
           'START-DATE="2024-05-01T12:00:03.000Z",X-PAYLOAD="card"\n')
    DR2 = ('#EXT-X-DATERANGE:ID="sluice-2",CLASS="com.sluice.metadata",'
           'START-DATE="2024-05-01T12:00:07.000Z",X-PAYLOAD=0x7B7D\n')

    def with_dr(self, text, *lines):
        """text with date range lines after its EXT-X-MAP, as sluice renders them."""
        return sub(text, '#EXT-X-MAP:URI="init.mp4"\n', '#EXT-X-MAP:URI="init.mp4"\n' +
                   "".join(lines))

    def test_dateranges(self):
        live = self.with_dr(LIVE, self.DR1, self.DR2)
        self.assertClean(check_media(live, reports=REPORTS))
        self.assertClean(check_media(self.with_dr(ENDED, self.DR1), reports=REPORTS))
        # ID and START-DATE are required; values have their types.
        self.assertMedia(sub(live, 'ID="sluice-1",', ""), "required attribute ID missing")
        self.assertMedia(sub(live, ',START-DATE="2024-05-01T12:00:03.000Z"', ""),
                         "required attribute START-DATE missing")
        self.assertMedia(sub(live, 'START-DATE="2024-05-01T12:00:03.000Z"',
                             'START-DATE="yesterday"'), "is no ISO 8601 date")
        self.assertMedia(sub(live, 'ID="sluice-1"', "ID=1"), "ID must be a quoted-string")
        self.assertMedia(sub(live, 'CLASS="com.sluice.metadata",START-DATE="2024-05-01T12:00:03',
                             'CLASS=x,START-DATE="2024-05-01T12:00:03'),
                         "CLASS must be a quoted-string")
        # Client attributes are X- prefixed, with a quoted, hex or decimal value.
        self.assertMedia(sub(live, "X-PAYLOAD=\"card\"", "PAYLOAD=\"card\""),
                         "neither a defined attribute nor a client attribute")
        self.assertMedia(sub(live, "X-PAYLOAD=0x7B7D", "X-PAYLOAD=card"),
                         "client attribute X-PAYLOAD 'card' is no quoted-string")
        self.assertClean(check_media(sub(live, "X-PAYLOAD=0x7B7D", "X-PAYLOAD=12.5"),
                                     reports=REPORTS))
        # One ID, one set of values; sluice writes each ID once.
        twice = self.with_dr(LIVE, self.DR1, self.DR1)
        self.assertMedia(twice, "ID 'sluice-1' twice")
        clash = self.with_dr(LIVE, self.DR1, sub(self.DR1, "com.sluice.metadata", "other"))
        self.assertMedia(clash, "CLASS differs from line")
        # A playlist with a date range needs a date-time.
        no_pdt = re.sub(r"#EXT-X-PROGRAM-DATE-TIME:[^\n]*\n", "", live)
        self.assertMedia(no_pdt, "EXT-X-DATERANGE in a playlist without EXT-X-PROGRAM-DATE-TIME",
                         reports=REPORTS)
        # END-DATE and END-ON-NEXT rules.
        self.assertMedia(sub(live, 'X-PAYLOAD="card"',
                             'END-DATE="2024-05-01T12:00:02.000Z",X-PAYLOAD="card"'),
                         "END-DATE before START-DATE")
        self.assertMedia(sub(live, 'CLASS="com.sluice.metadata",START-DATE="2024-05-01T12:00:03',
                             'START-DATE="2024-05-01T12:00:03')
                         .replace('X-PAYLOAD="card"', 'END-ON-NEXT=YES', 1),
                         "END-ON-NEXT without CLASS")

    def test_daterange_delta_updates(self):
        full = self.with_dr(FULL, self.DR1, self.DR2)
        yes = self.with_dr(DELTA_YES, self.DR1, self.DR2)
        self.assertClean(check_delta(full, yes))
        # _HLS_skip=YES must keep every date range.
        self.assertCaught(check_delta(full, self.with_dr(DELTA_YES, self.DR2)),
                          "EXT-X-DATERANGE tags left out by an update that does not skip them")
        # v2 may leave some out, and lists what was removed...
        v2 = self.with_dr(DELTA_V2, self.DR2)
        self.assertClean(check_delta(full, v2))
        # ...but never one that is in the playlist.
        self.assertMedia(sub(v2, 'RECENTLY-REMOVED-DATERANGES=""',
                             'RECENTLY-REMOVED-DATERANGES="sluice-0\tsluice-2"'),
                         "RECENTLY-REMOVED-DATERANGES names 'sluice-2'", ll=None)
        # A delta may not invent one.
        self.assertCaught(check_delta(self.with_dr(FULL, self.DR1), yes),
                          "is not in the full playlist")

    # --- multivariant playlists -----------------------------------------------------

    def test_master(self):
        self.assertCaught(check_master(sub(MASTER, "#EXTM3U\n", "")), "first line is not #EXTM3U")
        self.assertCaught(check_master(sub(MASTER, "720p/index.m3u8\n", "")),
                          "EXT-X-STREAM-INF without its URI line")
        self.assertCaught(check_master(sub(MASTER, 'GROUP-ID="audio"', 'GROUP-ID="aac"')),
                          "AUDIO='audio' names no EXT-X-MEDIA TYPE=AUDIO group")
        self.assertCaught(check_master(sub(MASTER, "BANDWIDTH=1200000,", "")),
                          "required attribute BANDWIDTH missing")
        self.assertCaught(check_master(sub(MASTER, 'CODECS="avc1.4d401e,mp4a.40.2",', "")),
                          "without CODECS")
        self.assertCaught(check_master(sub(MASTER, "RESOLUTION=854x480", "RESOLUTION=854*480")),
                          "is no decimal-resolution")
        self.assertCaught(check_master(sub(MASTER, "FRAME-RATE=30.000", "FRAME-RATE=29.9700")),
                          "more than three decimals")
        self.assertCaught(check_master(sub(MASTER, "AUTOSELECT=YES", "AUTOSELECT=NO")),
                          "DEFAULT=YES with AUTOSELECT=NO")
        media = MASTER.split("\n")[3]
        self.assertCaught(check_master(sub(MASTER, media, media + "\n" + media)),
                          "NAME 'audio' twice", "a second DEFAULT=YES")
        self.assertCaught(check_master(MASTER + "#EXT-X-TARGETDURATION:2\n"),
                          "EXT-X-TARGETDURATION is a Media Playlist tag")
        self.assertCaught(check_master(sub(MASTER, "AVERAGE-BANDWIDTH=2800000",
                                           "AVERAGE-BANDWIDTH=3000000")),
                          "AVERAGE-BANDWIDTH above BANDWIDTH")
        self.assertCaught(check_master("#EXTM3U\n#EXT-X-VERSION:7\n"), "no EXT-X-STREAM-INF")
        self.assertCaught(check_master(sub(MASTER, '"audio/index.m3u8"', "audio/index.m3u8")),
                          "URI must be a quoted-string")
        self.assertCaught(check_master(MASTER + "stray.m3u8\n"), "not after EXT-X-STREAM-INF")

    def test_master_closed_captions(self):
        self.assertEqual(MASTER_CC.count('CLOSED-CAPTIONS="cc"'), 2)
        self.assertClean(check_master(MASTER_CC))
        for ok in ("CC4", "SERVICE1", "SERVICE9", "SERVICE42", "SERVICE63"):
            self.assertClean(check_master(sub(MASTER_CC, '"CC1"', f'"{ok}"')))
        # The group a variant names must exist, as a CLOSED-CAPTIONS group.
        self.assertCaught(check_master(sub(MASTER_CC, 'GROUP-ID="cc"', 'GROUP-ID="608"')),
                          "CLOSED-CAPTIONS='cc' names no EXT-X-MEDIA TYPE=CLOSED-CAPTIONS group")
        self.assertCaught(check_master(sub(MASTER_CC, "TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\"",
                                           "TYPE=SUBTITLES,GROUP-ID=\"cc\"")),
                          "names no EXT-X-MEDIA TYPE=CLOSED-CAPTIONS group")
        # INSTREAM-ID: required, and CC1-CC4 or SERVICE1-SERVICE63 only.
        self.assertCaught(check_master(sub(MASTER_CC, ',INSTREAM-ID="CC1"', "")),
                          "TYPE=CLOSED-CAPTIONS without INSTREAM-ID")
        for bad in ("CC0", "CC5", "cc1", "SERVICE0", "SERVICE64", "SERVICE007", "CC1 "):
            self.assertCaught(check_master(sub(MASTER_CC, '"CC1"', f'"{bad}"')),
                              f"INSTREAM-ID {bad!r} is none of CC1-CC4, SERVICE1-SERVICE63")
        # The captions are in the video: no URI.
        self.assertCaught(check_master(sub(MASTER_CC, 'INSTREAM-ID="CC1"',
                                           'INSTREAM-ID="CC1",URI="cc/index.m3u8"')),
                          "URI on TYPE=CLOSED-CAPTIONS")
        # NONE: on every variant (then no group is needed), or on none.
        none = MASTER.replace('AUDIO="audio"\n', 'AUDIO="audio",CLOSED-CAPTIONS=NONE\n')
        self.assertClean(check_master(none))
        self.assertCaught(check_master(sub(MASTER_CC, 'CLOSED-CAPTIONS="cc"',
                                           "CLOSED-CAPTIONS=NONE")),
                          "CLOSED-CAPTIONS=NONE but not on every EXT-X-STREAM-INF")
        self.assertCaught(check_master(sub(MASTER_CC, 'CLOSED-CAPTIONS="cc"',
                                           "CLOSED-CAPTIONS=cc")),
                          "CLOSED-CAPTIONS must be a quoted-string or NONE")

    # --- the renditions of one stream ---------------------------------------------------

    def ladder(self, edits=None):
        """LIVE as the 720p playlist of a four-rendition stream, and the
        other three as the same window reporting their own others."""
        pls = {"720p/index.m3u8": LIVE}
        for other in ("1080p", "480p", "audio"):
            pls[f"{other}/index.m3u8"] = LIVE.replace(f"../{other}/", "../720p/")
        for name, (old, new) in (edits or {}).items():
            pls[name] = sub(pls[name], old, new)
        return pls

    def test_renditions(self):
        audio = "audio/index.m3u8"
        self.assertClean(check_renditions(self.ladder()))
        self.assertClean(check_renditions({"360p/index.m3u8": CLASSIC, audio: CLASSIC}))
        self.assertCaught(check_renditions(self.ladder(
            {audio: ("TARGETDURATION:2", "TARGETDURATION:3")})),
            "EXT-X-TARGETDURATION differs between renditions")
        self.assertCaught(check_renditions(self.ladder(
            {audio: ("PART-HOLD-BACK=1.500", "PART-HOLD-BACK=1.600")})),
            "EXT-X-SERVER-CONTROL differs between renditions")
        # An audio rendition with longer parts needs a longer hold back for all.
        self.assertCaught(check_renditions(self.ladder(
            {audio: ("PART-TARGET=0.500", "PART-TARGET=0.600")})),
            "PART-HOLD-BACK 1.500 < 3 x the largest PART-TARGET 0.600")
        rep = '#EXT-X-RENDITION-REPORT:URI="../480p/index.m3u8",LAST-MSN=14,LAST-PART=2\n'
        self.assertCaught(check_renditions(self.ladder({"720p/index.m3u8": (rep, "")})),
                          "720p/index.m3u8: rendition reports name ['1080p/index.m3u8', "
                          "'audio/index.m3u8'], the other renditions are")
        self.assertCaught(check_renditions(self.ladder({"720p/index.m3u8": (
            '../480p/index.m3u8",LAST-MSN=14', '../480p/index.m3u8",LAST-MSN=16')})),
            "report says 480p/index.m3u8 is at segment 16, it is at 14")


class SluiceTest(unittest.TestCase):
    """Every playlist the real sluice serves passes the checker: the master,
    each media playlist and the set of them, while live and once ended. LL-HLS
    or not is whatever sluice writes by default (ll=None)."""

    def fetch_all(self, sluice):
        status, _, body = http(sluice.url("/hls/demo/master.m3u8"))
        self.assertEqual(status, 200)
        master = body.decode()
        uris = [l for l in master.splitlines() if l and not l.startswith("#")]
        uris += re.findall(r'#EXT-X-MEDIA:.*URI="([^"]+)"', master)
        playlists = {}
        for uri in uris:
            status, _, body = http(sluice.url("/hls/demo/" + uri))
            self.assertEqual(status, 200, uri)
            playlists[uri] = body.decode()
        return master, playlists

    def check_all(self, master, playlists):
        self.assertEqual(check_master(master), [], master)
        for uri, text in playlists.items():
            others = {"../" + u for u in playlists if u != uri}
            errors = check_media(text, ll=None,
                                 reports=others if "#EXT-X-PART-INF" in text else None)
            self.assertEqual(errors, [], f"{uri}:\n{text}")
        self.assertEqual(check_renditions(playlists), [])

    def test_served_playlists_pass(self):
        sluice = Sluice("--ladder", "480p,360p", "--preset", "ultrafast")
        pub = None
        try:
            pub = publish(sluice.rtmp_url("demo-secret-key"), seconds=8)

            def segments():
                status, _, body = http(sluice.url("/hls/demo/audio/index.m3u8"))
                return status == 200 and body.count(b"#EXTINF") >= 2
            wait_for(segments, 30, "two segments")
            master, playlists = self.fetch_all(sluice)
            self.assertEqual(len(playlists), 3, master)
            self.check_all(master, playlists)
            rc, err = finish(pub, 60)
            self.assertEqual(rc, 0, err)

            def ended():
                return all(b"#EXT-X-ENDLIST" in http(sluice.url("/hls/demo/" + uri))[2]
                           for uri in playlists)
            wait_for(ended, 30, "#EXT-X-ENDLIST everywhere")
            self.check_all(*self.fetch_all(sluice))
        finally:
            sluice.close(pub)


if __name__ == "__main__":
    unittest.main()
