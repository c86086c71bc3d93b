"""Timed metadata (issue 21) end to end, server side: the admin API's POST
/api/v1/streams/ID/metadata on a live ladder (a copied 720p, an encoded
360p and the audio rendition), and in-band data messages (onTextData,
@setDataFrame + onCuePoint) from a publisher written with test_ingest's RTMP
client, recorded.

What is checked, against the bytes and text sluice serves:
- every rendition's next part carries an emsg (version 1, scheme
  https://aomedia.org/emsg/ID3, the track's timescale) before its moof, with
  an ID3v2.4 TXXX "sluice" frame holding the payload, whose presentation
  time is the answer's media_time_ms and lies in that part (within a frame);
- media_time_ms is the live edge: no older than the newest part published
  when the request was made (within a frame);
- every media playlist holds the EXT-X-DATERANGE with START-DATE equal to
  the answer's program_date_time, and passes hlscheck (delta updates too);
- 400, 404 ("not live on this node"), 413, 429 with Retry-After;
- in-band metadata is stamped with its message's own time; the recording's
  VOD playlists keep the date ranges.
"""

import json
import os
import re
import shutil
import struct
import tempfile
import time
import unittest

import hlscheck
from harness import Sluice, http, publish, wait_for
from test_admin import api
from test_ingest import Rtmp, amf_obj, amf_str, flv_clip

KEY = "demo-secret-key"
RENDITIONS = ("720p", "360p", "audio")
FRAME_MS = 34  # one frame at 30 fps, rounded up
SCHEME = b"https://aomedia.org/emsg/ID3\x00"


# ---- boxes ----------------------------------------------------------------------


def boxes(data, start=0, end=None):
    """[(type, offset, size)] of the boxes in data[start:end]."""
    end = len(data) if end is None else end
    out, pos = [], start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if size < 8 or pos + size > end:
            raise AssertionError(f"bad box at {pos}: size {size}")
        out.append((kind.decode("latin-1"), pos, size))
        pos += size
    return out


def syncsafe(b):
    for x in b:
        assert x & 0x80 == 0, "not syncsafe"
    return b[0] << 21 | b[1] << 14 | b[2] << 7 | b[3]


def parse_emsg(box):
    """(timescale, presentation_time, id, payload) of an emsg v1 box whose
    message is an ID3v2.4 tag with one TXXX "sluice" frame; asserts the rest."""
    size, kind, version = struct.unpack(">I4sB", box[:9])
    assert kind == b"emsg" and size == len(box), (kind, size, len(box))
    assert version == 1 and box[9:12] == b"\x00\x00\x00", "emsg version 1, flags 0"
    timescale, pt, duration, eid = struct.unpack(">IQII", box[12:32])
    assert duration == 0xFFFFFFFF, duration
    rest = box[32:]
    assert rest.startswith(SCHEME), rest[:40]
    rest = rest[len(SCHEME):]
    assert rest[0] == 0, "value is the empty string"
    tag = rest[1:]
    assert tag[:6] == b"ID3\x04\x00\x00", tag[:6]
    assert syncsafe(tag[6:10]) == len(tag) - 10
    frame = tag[10:]
    assert frame[:4] == b"TXXX"
    fsize = syncsafe(frame[4:8])
    assert fsize == len(frame) - 10 and frame[8:10] == b"\x00\x00"
    body = frame[10:]
    assert body[0] == 3 and body[1:8] == b"sluice\x00", body[:8]
    return timescale, pt, eid, body[8:]


def fragment_time(data):
    """(base media decode time, duration) of the first moof of a CMAF chunk,
    in its track's timescale."""
    top = boxes(data)
    moof = next((o, s) for k, o, s in top if k == "moof")
    traf = next((o, s) for k, o, s in boxes(data, moof[0] + 8, moof[0] + moof[1]) if k == "traf")
    base, default_dur, total = None, 0, 0
    for k, o, s in boxes(data, traf[0] + 8, traf[0] + traf[1]):
        if k == "tfhd":
            flags = int.from_bytes(data[o + 9:o + 12], "big")
            p = o + 16  # track_ID
            for bit in (0x01, 0x02):  # base-data-offset (8), sample-description-index (4)
                if flags & bit:
                    p += 8 if bit == 0x01 else 4
            if flags & 0x08:
                default_dur = struct.unpack(">I", data[p:p + 4])[0]
        elif k == "tfdt":
            v = data[o + 8]
            base = struct.unpack(">Q" if v == 1 else ">I",
                                 data[o + 12:o + (20 if v == 1 else 16)])[0]
        elif k == "trun":
            flags = int.from_bytes(data[o + 9:o + 12], "big")
            count = struct.unpack(">I", data[o + 12:o + 16])[0]
            p = o + 16 + (4 if flags & 0x01 else 0) + (4 if flags & 0x04 else 0)
            per = sum(4 for bit in (0x100, 0x200, 0x400, 0x800) if flags & bit)
            for i in range(count):
                total += struct.unpack(">I", data[p:p + 4])[0] if flags & 0x100 else default_dur
                p += per
    return base, total


def emsgs_before_moof(data):
    """The emsg boxes of a CMAF chunk or segment (chunks back to back),
    asserting each one is followed by a moof (other emsgs between): it
    belongs to that fragment."""
    out, top = [], boxes(data)
    for i, (kind, off, size) in enumerate(top):
        if kind != "emsg":
            continue
        nxt = next((k for k, _, _ in top[i + 1:] if k != "emsg"), None)
        assert nxt == "moof", f"emsg followed by {nxt}, not by a moof"
        out.append(parse_emsg(data[off:off + size]))
    return out


# ---- playlists ------------------------------------------------------------------


DR_RE = re.compile(r"#EXT-X-DATERANGE:(.*)")


def dateranges(text):
    """{ID: attributes} of a media playlist's date ranges."""
    out = {}
    for m in DR_RE.finditer(text):
        attrs, errors = hlscheck.parse_attr_list(m.group(1))
        assert not errors, errors
        out[attrs["ID"]] = attrs
    return out


def part_uris(text):
    """Every part a playlist names, oldest first."""
    return re.findall(r'#EXT-X-PART:[^\n]*URI="(\d+\.\d+\.m4s)"', text)


def payload_attr(attrs):
    v = attrs["X-PAYLOAD"]
    if isinstance(v, hlscheck.Quoted):
        return str(v).encode()
    assert v[:2] in ("0x", "0X"), v
    return bytes.fromhex(v[2:])


def post(sl, sid, body=None, raw=None):
    return api(sl, "POST", f"/api/v1/streams/{sid}/metadata", body=body, raw=raw)


class LiveMetadataTest(unittest.TestCase):
    """One live broadcast for the API tests: 1 s segments, a 12-segment
    window (delta updates), the source copied as 720p and 360p encoded."""

    @classmethod
    def setUpClass(cls):
        cls.sl = Sluice("--ladder", "720p,360p", "--preset", "ultrafast",
                        "--segment-duration", "1", "--playlist-segments", "12",
                        streams=(("demo", KEY), ("idle", "idle-secret-key")))
        cls.pub = publish(cls.sl.rtmp_url(KEY), seconds=70, size="1280x720", gop=30)
        try:
            def ready():
                return all(len(part_uris(cls.playlist(r))) >= 3 for r in RENDITIONS)
            wait_for(ready, 40, "parts in every rendition")
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.sl.close(cls.pub)

    @classmethod
    def playlist(cls, rend, query=""):
        status, _, body = http(cls.sl.url(f"/hls/demo/{rend}/index.m3u8{query}"))
        return body.decode() if status == 200 else ""

    def part(self, rend, uri):
        status, _, body = http(self.sl.url(f"/hls/demo/{rend}/{uri}"))
        self.assertEqual(status, 200, uri)
        return body

    def find_emsg(self, rend, eid, after, timeout=15):
        """(part bytes, emsg) of the first part after `after` (a part URI)
        whose emsg has id eid, waiting for the rendition to publish it."""
        seen = set()
        deadline = time.time() + timeout
        def key(u):
            return tuple(int(x) for x in u.split(".")[:2])
        while time.time() < deadline:
            for uri in part_uris(self.playlist(rend)):
                if uri in seen or (after and key(uri) <= key(after)):
                    continue
                seen.add(uri)
                data = self.part(rend, uri)
                for e in emsgs_before_moof(data):
                    if e[2] == eid:
                        return uri, data, e
            time.sleep(0.1)
        self.fail(f"{rend}: no part after {after} with emsg {eid} in {timeout} s")

    def test_post_reaches_every_rendition_and_playlist(self):
        # The live edge before: the newest part of the copied rendition.
        text = self.playlist("720p")
        newest = {r: part_uris(self.playlist(r))[-1] for r in RENDITIONS}
        base, dur = fragment_time(self.part("720p", newest["720p"]))
        edge_before_ms = (base + dur) * 1000 // 90000
        payload = {"title": "Blue mug", "price": "12.00", "note": "caf\u00e9 \"quoted\""}
        text = json.dumps(payload)
        st, hdrs, doc, raw = post(self.sl, "demo", {"payload": text})
        self.assertEqual(st, 202, raw)
        self.assertEqual(set(doc), {"id", "media_time_ms", "program_date_time"})
        eid, media_ms, pdt = doc["id"], doc["media_time_ms"], doc["program_date_time"]
        self.assertTrue(0 < eid < 2**32)
        self.assertRegex(pdt, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        # The live edge: at least as new as what was published before.
        self.assertGreaterEqual(media_ms, edge_before_ms - FRAME_MS)

        for rend in RENDITIONS:
            uri, data, (ts, pt, got_id, got) = self.find_emsg(rend, eid, newest[rend])
            self.assertEqual(got, text.encode(), rend)
            # The presentation time is the stamp, in the track's timescale.
            self.assertEqual(ts, 90000 if rend != "audio" else 48000, rend)
            self.assertEqual(pt, media_ms * ts // 1000, rend)
            # ...and the part holding the emsg holds that time (a frame of slack:
            # a part may have closed on the stamped frame just before the item came).
            start, length = fragment_time(data)
            self.assertLessEqual(start - ts * FRAME_MS // 1000, pt, f"{rend} {uri}")
            self.assertLess(pt, start + length, f"{rend} {uri}")
            # Only the part with the item carries it.
            self.assertEqual(sum(1 for e in emsgs_before_moof(data) if e[2] == eid), 1)

        # Every media playlist: the date range, START-DATE = the answer's.
        for rend in RENDITIONS:
            def has_it():
                t = self.playlist(rend)
                return f'"sluice-{eid}"' in t and t
            t = wait_for(has_it, 10, f"the date range in {rend}")
            attrs = dateranges(t)[f"sluice-{eid}"]
            self.assertEqual(attrs["START-DATE"], pdt, rend)
            self.assertEqual(attrs["CLASS"], "com.sluice.metadata")
            # The payload has '"': a hexadecimal-sequence of its UTF-8 bytes.
            self.assertEqual(payload_attr(attrs), text.encode())
            self.assertTrue(attrs["X-PAYLOAD"].startswith("0x"))
            self.assertEqual(hlscheck.check_media(t, ll=True), [], f"{rend}:\n{t}")

        # A quoted-string payload, and delta updates that stay consistent.
        st, _, doc2, raw = post(self.sl, "demo", {"payload": "plain text, ok"})
        self.assertEqual(st, 202, raw)
        def both():
            t = self.playlist("720p")
            return f'"sluice-{doc2["id"]}"' in t and t
        t = wait_for(both, 10, "the second date range")
        self.assertEqual(payload_attr(dateranges(t)[f'sluice-{doc2["id"]}']), b"plain text, ok")
        self.assertIn('X-PAYLOAD="plain text, ok"', t)
        self.assertGreater(doc2["id"], eid)
        def long_enough():
            return self.playlist("720p").count("#EXTINF") >= 9
        wait_for(long_enough, 30, "a window long enough to skip")
        for query in ("?_HLS_skip=YES", "?_HLS_skip=v2"):
            for attempt in range(10):
                full, delta = self.playlist("720p"), self.playlist("720p", query)
                errors = hlscheck.check_delta(full, delta)
                if not errors:
                    break
                time.sleep(0.05)  # a part was published between the two reads
            self.assertEqual(errors, [], f"{query}:\n{full}\n----\n{delta}")

    def test_refusals(self):
        # 404: no such stream; a stream that exists but is not live here.
        st, _, doc, _ = post(self.sl, "nosuch", {"payload": "x"})
        self.assertEqual(st, 404)
        st, _, doc, _ = post(self.sl, "idle", {"payload": "x"})
        self.assertEqual(st, 404)
        self.assertIn("not live on this node", doc["error"])
        # 400: no payload, not a string, not JSON, not UTF-8, not an object.
        for raw in (b"{}", b'{"payload": 5}', b'{"payload": null}', b"payload=x",
                    b'{"payload": "\xff\xfe"}', b'["x"]', b""):
            st, _, doc, body = post(self.sl, "demo", raw=raw)
            self.assertEqual(st, 400, (raw, body))
        # 413: over 1024 bytes (UTF-8 bytes, not characters); 1024 is fine.
        st, _, _, body = post(self.sl, "demo", {"payload": "\u00e9" * 513})
        self.assertEqual(st, 413, body)
        st, _, _, body = post(self.sl, "demo", {"payload": "a" * 1024})
        self.assertEqual(st, 202, body)
        # Method.
        st, _, _, _ = api(self.sl, "GET", "/api/v1/streams/demo/metadata")
        self.assertEqual(st, 405)

    def test_rate_limit(self):
        time.sleep(2.5)  # a full bucket, whatever ran before
        codes = []
        for i in range(14):
            st, hdrs, doc, _ = post(self.sl, "demo", {"payload": f"burst {i}"})
            codes.append(st)
            if st == 429:
                self.assertGreaterEqual(int(hdrs["retry-after"]), 1)
                self.assertIn("5 metadata items a second", doc["error"])
        self.assertEqual(codes[:10], [202] * 10, codes)
        self.assertIn(429, codes[10:], codes)
        time.sleep(0.5)  # 5 a second: two more by now
        st, _, _, body = post(self.sl, "demo", {"payload": "after the pause"})
        self.assertEqual(st, 202, body)
        time.sleep(2.5)  # leave a full bucket to the next test


class ReconnectMetadataTest(unittest.TestCase):
    """A publisher that drops and comes back within the reconnect window:
    the date ranges already in the playlists stay (same START-DATE), the
    API says 404 while nobody publishes, and answers again once the new
    input is packaged, with a later date-time."""

    def test_date_ranges_survive_a_reconnect(self):
        sl = Sluice("--ladder", "360p", "--preset", "ultrafast", "--segment-duration", "1",
                    "--reconnect-window", "20")
        pubs = []
        try:
            pubs.append(publish(sl.rtmp_url(KEY), seconds=60, size="640x360", gop=30))

            def playlist():
                st, _, b = http(sl.url("/hls/demo/360p/index.m3u8"))
                return b.decode() if st == 200 else ""
            wait_for(lambda: len(part_uris(playlist())) >= 3, 30, "parts")
            st, _, doc, raw = post(sl, "demo", {"payload": "before the drop"})
            self.assertEqual(st, 202, raw)
            rid = f"sluice-{doc['id']}"
            wait_for(lambda: rid in playlist(), 10, "the date range")
            pubs[0].kill()
            pubs[0].communicate()
            wait_for(lambda: "waiting up to 20 s for it to come back" in sl.log(), 15, "the drop")
            st, _, doc404, _ = post(sl, "demo", {"payload": "nobody there"})
            self.assertEqual(st, 404)
            self.assertIn("not live on this node", doc404["error"])
            pubs.append(publish(sl.rtmp_url(KEY), seconds=60, size="640x360", gop=30))
            wait_for(lambda: "#EXT-X-DISCONTINUITY" in playlist(), 30, "the resumed input")

            def stamped():
                st, _, d, _ = post(sl, "demo", {"payload": "after the reconnect"})
                return st == 202 and d
            doc2 = wait_for(stamped, 15, "a stamp on the new input", interval=0.5)
            self.assertGreater(doc2["id"], doc["id"])
            self.assertGreater(doc2["program_date_time"], doc["program_date_time"])
            text = wait_for(lambda: f'sluice-{doc2["id"]}' in playlist() and playlist(), 10,
                            "the second date range")
            drs = dateranges(text)
            self.assertEqual(drs[rid]["START-DATE"], doc["program_date_time"])
            self.assertEqual(drs[f'sluice-{doc2["id"]}']["START-DATE"],
                             doc2["program_date_time"])
            self.assertEqual(hlscheck.check_media(text, ll=True), [], text)
        finally:
            sl.close(*pubs)


class InBandMetadataTest(unittest.TestCase):
    """In-band data messages from a publisher: onTextData with a "text"
    field and @setDataFrame + onCuePoint with a plain string, stamped with
    their own timestamps; the broadcast recorded, its VOD playlists keep
    the date ranges."""

    def test_in_band_and_recording(self):
        tmp = tempfile.mkdtemp(prefix="sluice-meta-")
        rec_dir = os.path.join(tmp, "recordings")
        sl = Sluice("--segment-duration", "1", "--record", "--recordings-dir", rec_dir)
        try:
            r = Rtmp(sl.rtmp_port)
            r.handshake()
            self.assertTrue(r.connect(), r.received[-300:])
            self.assertTrue(r.publish(KEY), r.received[-300:])
            tags = [t for t in flv_clip("av", seconds=6) if t[0] != 18]
            first_ts = min(ts for t, ts, _ in tags if t in (8, 9))
            at1, at2 = first_ts + 2000, first_ts + 3500
            text_data = amf_str("onTextData") + amf_obj({"trackid": 1, "text": "in band one"})
            cue = amf_str("@setDataFrame") + amf_str("onCuePoint") + amf_str('{"cue":2}')
            out = []
            for tag in tags:
                if tag[1] >= at1 and text_data:
                    out.append((18, at1, text_data))
                    text_data = None
                if tag[1] >= at2 and cue:
                    out.append((18, at2, cue))
                    cue = None
                out.append(tag)
            r.send_tags(out, pace=0.004)
            r.command("FCUnpublish", 6, None, KEY)
            r.command("deleteStream", 7, None, 1)
            time.sleep(0.2)
            r.close()

            def ended():
                st, _, b = http(sl.url("/hls/demo/240p/index.m3u8"))
                return st == 200 and "#EXT-X-ENDLIST" in b.decode() and b.decode()
            text = wait_for(ended, 30, "the ended playlist")
            drs = dateranges(text)
            got = sorted(payload_attr(a) for a in drs.values())
            self.assertEqual(got, [b"in band one", b'{"cue":2}'], text)
            self.assertEqual(hlscheck.check_media(text, ll=None), [], text)
            # Stamped with their own times: on the stream timeline (first frame
            # at 1 s), in the 240p segments.
            want = {b"in band one": at1 - first_ts + 1000, b'{"cue":2}': at2 - first_ts + 1000}
            found = {}
            for uri in [l for l in text.splitlines() if l and not l.startswith("#")]:
                st, _, data = http(sl.url(f"/hls/demo/240p/{uri}"))
                self.assertEqual(st, 200)
                for ts, pt, eid, payload in emsgs_before_moof(data):
                    found[payload] = pt * 1000 // ts
            self.assertEqual(found, want)

            # The recording's VOD playlists keep them.
            def ready():
                for rid in os.listdir(rec_dir) if os.path.isdir(rec_dir) else []:
                    try:
                        with open(os.path.join(rec_dir, rid, "recording.json")) as f:
                            if json.load(f)["state"] == "ready":
                                return rid
                    except (OSError, ValueError):
                        pass
                return None
            rid = wait_for(ready, 30, "the recording")
            for rend in ("240p", "audio"):
                with open(os.path.join(rec_dir, rid, rend, "index.m3u8")) as f:
                    vod = f.read()
                self.assertEqual(hlscheck.check_media(vod, ll=False), [], vod)
                vdrs = dateranges(vod)
                self.assertEqual(sorted(payload_attr(a) for a in vdrs.values()),
                                 [b"in band one", b'{"cue":2}'], vod)
                self.assertEqual({k: v["START-DATE"] for k, v in vdrs.items()},
                                 {k: v["START-DATE"] for k, v in drs.items()})
        finally:
            try:
                sl.stop()
            finally:
                sl.kill()
                shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
