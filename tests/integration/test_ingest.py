"""Ingest that every encoder can talk to: abuse limits, connect/publish
variants seen in the wild, and hostile input, against the real sluice binary.

A small RTMP publisher written here (plain handshake, chunk writer, AMF0
encoder) replays FLV tags that ffmpeg encoded, so each test controls exactly
what goes on the wire: chunk sizes, header types, timestamps, which commands
are sent and in what order. Real clients (ffmpeg) publish beside it."""

import os
import socket
import struct
import subprocess
import tempfile
import time
import unittest

from harness import Sluice, finish, http, parse_media, publish, wait_for

KEY = "demo-secret-key"

# ---- AMF0 ------------------------------------------------------------------


def amf_str(s):
    b = s.encode()
    return b"\x02" + struct.pack(">H", len(b)) + b


def amf_num(v):
    return b"\x00" + struct.pack(">d", float(v))


def amf_null():
    return b"\x05"


def amf_bool(v):
    return b"\x01" + (b"\x01" if v else b"\x00")


def _amf_props(d):
    out = b""
    for k, v in d.items():
        kb = k.encode()
        out += struct.pack(">H", len(kb)) + kb + amf_value(v)
    return out + b"\x00\x00\x09"


def amf_obj(d):
    return b"\x03" + _amf_props(d)


def amf_ecma(d):
    return b"\x08" + struct.pack(">I", len(d)) + _amf_props(d)


def amf_value(v):
    if v is None:
        return amf_null()
    if isinstance(v, bool):
        return amf_bool(v)
    if isinstance(v, (int, float)):
        return amf_num(v)
    if isinstance(v, str):
        return amf_str(v)
    if isinstance(v, dict):
        return amf_obj(v)
    if isinstance(v, bytes):
        return v  # already encoded
    raise TypeError(v)


# ---- FLV tags from ffmpeg ------------------------------------------------------

_clips = {}


def flv_clip(kind="av", seconds=4, size="320x240", rate=25):
    """FLV tags [(type, ts_ms, body)] of a short ffmpeg-encoded clip, cached
    per process. kind: "av", "v" (video only) or "a" (audio only)."""
    key = (kind, seconds, size, rate)
    if key in _clips:
        return _clips[key]
    with tempfile.NamedTemporaryFile(suffix=".flv") as f:
        cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
        if "v" in kind:
            cmd += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}"]
        if "a" in kind:
            cmd += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
        cmd += ["-t", str(seconds)]
        if "v" in kind:
            cmd += ["-c:v", "libx264", "-preset", "ultrafast", "-g", str(rate), "-bf", "0",
                    "-pix_fmt", "yuv420p"]
        if "a" in kind:
            cmd += ["-c:a", "aac", "-b:a", "96k", "-ac", "2"]
        cmd += ["-f", "flv", f.name]
        subprocess.run(cmd, check=True, timeout=60)
        data = open(f.name, "rb").read()
    tags = []
    pos = 13  # header + first back pointer
    while pos + 11 <= len(data):
        t = data[pos]
        size_ = int.from_bytes(data[pos + 1:pos + 4], "big")
        ts = int.from_bytes(data[pos + 4:pos + 7], "big") | (data[pos + 7] << 24)
        body = data[pos + 11:pos + 11 + size_]
        tags.append((t, ts, body))
        pos += 11 + size_ + 4
    _clips[key] = tags
    return tags


# ---- a minimal RTMP publisher ----------------------------------------------------


class Rtmp:
    """Plain handshake, chunk writer, and a byte log of what the server sent
    (status codes are found by substring: they are short and never split)."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.chunk_size = 128
        self.received = b""
        self.last = {}  # csid -> (ts, len, type, stream id) for header compression

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def handshake(self):
        c1 = struct.pack(">II", 0, 0) + os.urandom(1528)
        self.sock.sendall(b"\x03" + c1)
        s = b""
        while len(s) < 3073:
            d = self.sock.recv(3073 - len(s))
            if not d:
                raise ConnectionError("closed during handshake")
            s += d
        self.sock.sendall(s[1:1537])  # C2 echoes S1

    def chunk(self, csid, mtype, msid, ts, payload, compress=False):
        """One message as chunks. compress: type-1 headers with a timestamp
        delta when this chunk stream already has a message (what librtmp
        and ffmpeg send), else every message on a type-0 absolute header."""
        out = bytearray()
        prev = self.last.get(csid)
        if compress and prev and prev[3] == msid and ts >= prev[0]:
            delta = ts - prev[0]
            fmt, field = 1, delta
        else:
            fmt, field = 0, ts
        ext = field >= 0xFFFFFF
        f24 = 0xFFFFFF if ext else field

        def basic(fmt_):
            if csid < 64:
                return bytes([(fmt_ << 6) | csid])
            if csid < 320:
                return bytes([(fmt_ << 6), csid - 64])
            return bytes([(fmt_ << 6) | 1]) + struct.pack("<H", csid - 64)
        out += basic(fmt)
        out += f24.to_bytes(3, "big") + len(payload).to_bytes(3, "big") + bytes([mtype])
        if fmt == 0:
            out += struct.pack("<I", msid)
        if ext:
            out += struct.pack(">I", field)
        pos = 0
        first = True
        while first or pos < len(payload):
            if not first:
                out += basic(3)
                if ext:
                    out += struct.pack(">I", field)
            n = min(self.chunk_size, len(payload) - pos)
            out += payload[pos:pos + n]
            pos += n
            first = False
        self.last[csid] = (ts, len(payload), mtype, msid)
        return bytes(out)

    def send(self, csid, mtype, msid, ts, payload, compress=False):
        self.sock.sendall(self.chunk(csid, mtype, msid, ts, payload, compress))

    def set_chunk_size(self, n):
        self.send(2, 1, 0, 0, struct.pack(">I", n))
        self.chunk_size = n

    def command(self, *values, msid=0, csid=3):
        self.send(csid, 20, msid, 0, b"".join(amf_value(v) for v in values))

    def wait(self, marker, timeout=10, since=0):
        """Reads until marker (bytes) was received (at or after offset
        `since`); True, or False on close/timeout."""
        deadline = time.time() + timeout
        while marker not in self.received[since:]:
            left = deadline - time.time()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                return False
            except OSError:
                return False
            if not d:
                return False
            self.received += d
        return True

    def closed_by_peer(self, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.time()))
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                return False
            except OSError:
                return True
            if not d:
                return True
            self.received += d
        return False

    def connect(self, app="live", extra=None, tc_url=None):
        obj = {"app": app, "type": "nonprivate", "flashVer": "FMLE/3.0 (compatible; FMSc/1.0)",
               "tcUrl": tc_url or f"rtmp://127.0.0.1/{app}"}
        obj.update(extra or {})
        self.command("connect", 1, obj)
        return self.wait(b"NetConnection.Connect.Success")

    def publish(self, name, kind="live", release=True, fcpublish=True, args=None):
        if release:
            self.command("releaseStream", 2, None, name)
        if fcpublish:
            self.command("FCPublish", 3, None, name)
        self.command("createStream", 4, None)
        if not self.wait(b"_result\x00\x40\x10"):  # _result for transaction 4
            return False
        extra = [kind] if kind is not None else []
        since = len(self.received)  # onFCPublish also says NetStream.Publish.Start
        self.command("publish", 5, None, name, *(args if args is not None else extra), msid=1,
                     csid=8)
        return self.wait(b"NetStream.Publish.Start", since=since)

    def send_tags(self, tags, ts_offset=0, compress=True, pace=0.0, metadata=b""):
        """Sends FLV tags on the publish stream (audio csid 4, video 6)."""
        for t, ts, body in tags:
            wire_ts = (ts + ts_offset) & 0xFFFFFFFF
            if t == 18:
                self.send(5, 18, 1, wire_ts, body, compress)
            elif t == 8:
                self.send(4, 8, 1, wire_ts, body, compress)
            elif t == 9:
                self.send(6, 9, 1, wire_ts, body, compress)
            if pace:
                time.sleep(pace)


def metadata_body(width=320, height=240):
    return amf_str("@setDataFrame") + amf_str("onMetaData") + amf_ecma(
        {"width": width, "height": height, "framerate": 25, "videocodecid": 7,
         "audiocodecid": 10, "encoder": "sluice-test"})


def stop(sl):
    try:
        return sl.stop()
    finally:
        sl.kill()


def ended_playlist(sl, rendition, timeout=20):
    def ended():
        s, _, b = http(sl.url(f"/hls/demo/{rendition}/index.m3u8"))
        return s == 200 and parse_media(b.decode())["endlist"] and b.decode()
    return parse_media(wait_for(ended, timeout, f"{rendition} with ENDLIST"))


def decodes(sl, path="/hls/demo/master.m3u8"):
    out = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", sl.url(path),
                          "-f", "null", "-"], capture_output=True, timeout=60)
    return out.returncode == 0 and out.stderr.decode().strip() == "", out.stderr.decode()[-2000:]


# ---- abuse limits ------------------------------------------------------------------


class LimitsTest(unittest.TestCase):

    def test_connection_limits_idle_timeout_and_counters(self):
        sl = Sluice("--rtmp-max-connections", "6", "--rtmp-max-connections-per-ip", "4",
                    "--rtmp-idle-timeout", "700", "--rtmp-handshake-timeout", "500")
        try:
            conns = [socket.create_connection(("127.0.0.1", sl.rtmp_port), timeout=5)
                     for _ in range(4)]
            time.sleep(0.2)
            # The fifth from the same address is closed at accept.
            extra = Rtmp(sl.rtmp_port)
            self.assertTrue(extra.closed_by_peer(3), "fifth connection from one address")
            extra.close()
            # The silent four hit the handshake timeout.
            for c in conns:
                c.settimeout(3)
                self.assertEqual(c.recv(10), b"")
                c.close()
            # A handshake without a publish hits the idle timeout.
            r = Rtmp(sl.rtmp_port)
            r.handshake()
            t0 = time.time()
            self.assertTrue(r.closed_by_peer(5))
            self.assertLess(time.time() - t0, 3)
            r.close()
        finally:
            log = stop(sl)
        self.assertIn("too many connections from this address", log)
        self.assertIn("no publish within 700 ms", log)
        self.assertRegex(log, r"totals: \d+ connections, refused 0 \(limit\) 1 \(per address\)")
        self.assertRegex(log, r"timeouts 4 \(handshake\) 1 \(idle\)")

    def test_max_connections_total(self):
        sl = Sluice("--rtmp-max-connections", "2")
        try:
            held = [socket.create_connection(("127.0.0.1", sl.rtmp_port), timeout=5)
                    for _ in range(2)]
            time.sleep(0.2)
            r = Rtmp(sl.rtmp_port)
            self.assertTrue(r.closed_by_peer(3), "third connection over the total limit")
            r.close()
            for c in held:
                c.close()
        finally:
            log = stop(sl)
        self.assertIn("connection limit reached", log)
        self.assertRegex(log, r"refused 1 \(limit\) 0 \(per address\)")

    def test_bad_keys_lock_the_address_out(self):
        sl = Sluice("--rtmp-max-key-failures", "3", "--rtmp-key-lockout", "60")
        try:
            for i in range(3):
                r = Rtmp(sl.rtmp_port)
                r.handshake()
                self.assertTrue(r.connect())
                self.assertFalse(r.publish(f"wrong-key-{i}"))
                self.assertIn(b"NetStream.Publish.BadName", r.received)
                r.close()
            # Locked out: even the right key cannot get in now.
            r = Rtmp(sl.rtmp_port)
            self.assertTrue(r.closed_by_peer(3))
            r.close()
        finally:
            log = stop(sl)
        self.assertIn("address locked out for 60 s", log)
        self.assertIn("locked out after repeated bad stream keys", log)
        self.assertRegex(log, r"3 bad keys, 1 lockouts")

    def test_max_publishers(self):
        sl = Sluice("--rtmp-max-publishers", "1", streams=(("demo", KEY), ("two", "key-two")))
        try:
            a = Rtmp(sl.rtmp_port)
            a.handshake()
            self.assertTrue(a.connect())
            self.assertTrue(a.publish(KEY))
            b = Rtmp(sl.rtmp_port)
            b.handshake()
            self.assertTrue(b.connect())
            self.assertFalse(b.publish("key-two"))
            self.assertIn(b"NetStream.Publish.Failed", b.received)
            a.close()
            b.close()
        finally:
            log = stop(sl)
        self.assertIn("publisher limit reached", log)
        self.assertRegex(log, r"refused 0 \(limit\) 0 \(per address\) 0 \(locked out\) 1 \(publishers\)")

    def test_faster_than_real_time_is_throttled_not_dropped(self):
        # 8 s of media pushed as fast as the socket takes it into a queue
        # far smaller than that: reading pauses, nothing is dropped.
        # A worker slowed to about 60 frames/s keeps the publisher waiting.
        sl = Sluice("--rtmp-queue-bytes", "1048576", "--ladder", "360p", "--passthrough", "never",
                    "--debug-slow-encode", "150", "--overload-protection", "off")
        try:
            pub = publish(sl.rtmp_url(KEY), seconds=8, size="640x360", realtime=False,
                          extra=("-b:v", "3000k"))
            rc, err = finish(pub, 90)
            self.assertEqual(rc, 0, err)
            pl = ended_playlist(sl, "360p", 60)
            self.assertAlmostEqual(sum(s["duration"] for s in pl["segments"]), 8, delta=1.5)
        finally:
            log = stop(sl)
        self.assertIn("reading paused", log)
        self.assertRegex(log, r"throttled [1-9]\d* times, 0 packets dropped")
        self.assertRegex(log, r"publish ended .* 0 dropped")


# ---- connect/publish variants ---------------------------------------------------------


class VariantsTest(unittest.TestCase):
    """Each case publishes a 4 s clip with our own client and checks the
    result ends with a playlist that ffmpeg decodes."""

    @classmethod
    def setUpClass(cls):
        flv_clip("av")

    def run_case(self, kind="av", chunk_size=None, ts_offset=0, compress=True,
                 app="live", publish_kw=None, connect_extra=None, meta="before",
                 expect_seconds=4.0):
        sl = Sluice("--segment-duration", "1")
        try:
            r = Rtmp(sl.rtmp_port)
            r.handshake()
            if chunk_size:
                r.set_chunk_size(chunk_size)
            self.assertTrue(r.connect(app=app, extra=connect_extra), r.received[-300:])
            self.assertTrue(r.publish(KEY, **(publish_kw or {})), r.received[-300:])
            tags = [t for t in flv_clip(kind) if t[0] != 18]
            md = (18, 0, metadata_body())
            if meta == "before":
                tags = [md] + tags
            elif meta == "after":
                tags = tags[:3] + [md] + tags[3:]
            r.send_tags(tags, ts_offset=ts_offset, compress=compress)
            r.command("FCUnpublish", 6, None, KEY)
            r.command("deleteStream", 7, None, 1)
            time.sleep(0.2)
            r.close()
            rendition = "audio" if kind == "a" else "240p"
            pl = ended_playlist(sl, rendition, 30)
            total = sum(s["duration"] for s in pl["segments"])
            self.assertAlmostEqual(total, expect_seconds, delta=0.7)
            ok, err = decodes(sl, f"/hls/demo/{rendition}/index.m3u8")
            self.assertTrue(ok, err)
        finally:
            log = stop(sl)
        self.assertIn("publish started", log)
        return log

    def test_chunk_size_128_type0_absolute(self):
        self.run_case(chunk_size=None, compress=False)

    def test_chunk_size_65536(self):
        self.run_case(chunk_size=65536)

    def test_chunk_size_4096_no_metadata(self):
        self.run_case(chunk_size=4096, meta=None)

    def test_timestamps_start_high_and_wrap(self):
        # Starts 2 s before 2^32 ms: the wrap falls in the middle of the clip,
        # through the extended-timestamp field.
        self.run_case(ts_offset=(1 << 32) - 2000)

    def test_timestamps_start_high_absolute(self):
        self.run_case(ts_offset=0x7FFFFF00, compress=False)

    def test_app_query_string_publish_record_no_fcpublish(self):
        self.run_case(app="live?token=abc", publish_kw={"kind": "record", "release": False,
                                                       "fcpublish": False})

    def test_publish_append_extra_fields_metadata_after(self):
        self.run_case(publish_kw={"kind": "append", "args": ["append", 1, {"x": 1}]},
                      connect_extra={"fpad": False, "capabilities": 15, "audioCodecs": 3191,
                                     "videoCodecs": 252, "videoFunction": 1,
                                     "objectEncoding": 0, "extra": {"nested": {"a": 1}}},
                      meta="after")

    def test_publish_without_type_and_key_with_query(self):
        sl_key = KEY + "?token=xyz&foo=1"
        sl = Sluice()
        try:
            r = Rtmp(sl.rtmp_port)
            r.handshake()
            self.assertTrue(r.connect(extra=None, tc_url="rtmp://h/live?x=1"))
            self.assertTrue(r.publish(sl_key, args=[]))
            r.close()
        finally:
            log = stop(sl)
        self.assertNotIn("xyz", log)

    def test_minimal_connect_object_and_bare_commands(self):
        # connect with nothing but "app", createStream without its null
        # argument, publish without a type, no releaseStream/FCPublish.
        sl = Sluice()
        try:
            r = Rtmp(sl.rtmp_port)
            r.handshake()
            r.command("connect", 1, {"app": "live"})
            self.assertTrue(r.wait(b"NetConnection.Connect.Success"))
            r.command("createStream", 2)
            self.assertTrue(r.wait(b"_result\x00\x40\x00"))  # transaction 2
            since = len(r.received)
            r.command("publish", 0, None, KEY, msid=1, csid=8)
            self.assertTrue(r.wait(b"NetStream.Publish.Start", since=since))
            r.close()
        finally:
            log = stop(sl)
        self.assertIn("publish started", log)

    def test_video_only(self):
        self.run_case(kind="v")

    def test_audio_only(self):
        self.run_case(kind="a")


# ---- interop matrix with real clients ------------------------------------------------

GST_VIDEO = ("videotestsrc num-buffers=100 ! video/x-raw,width=320,height=240,framerate=25/1 ! "
             "x264enc speed-preset=ultrafast tune=zerolatency key-int-max=25 ! h264parse ! "
             "flvmux name=m streamable=true ! {sink} "
             "audiotestsrc num-buffers=188 samplesperbuffer=1024 ! "
             "audio/x-raw,rate=48000,channels=2 ! audioconvert ! avenc_aac ! aacparse ! m.")


class InteropTest(unittest.TestCase):
    """Each real client publishes a 4 s clip; the result ends with a playlist
    that ffmpeg decodes from the origin."""

    def check_client(self, cmd, timeout=60, seconds=4.0):
        sl = Sluice()
        try:
            url = sl.rtmp_url(KEY)
            argv = [a.format(url=url, port=sl.rtmp_port) for a in cmd]
            out = subprocess.run(argv, capture_output=True, timeout=timeout)
            self.assertEqual(out.returncode, 0, out.stderr.decode(errors="replace")[-2000:])
            pl = ended_playlist(sl, "240p", 30)
            self.assertAlmostEqual(sum(s["duration"] for s in pl["segments"]), seconds, delta=1.0)
            ok, err = decodes(sl)
            self.assertTrue(ok, err)
        finally:
            log = stop(sl)
        self.assertIn("publish started", log)
        self.assertIn("video config: H.264", log)
        self.assertIn("audio config: AAC", log)
        return log

    FFMPEG = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
              "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
              "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "4",
              "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p",
              "-c:a", "aac", "-ac", "2"]

    def test_ffmpeg_native(self):
        self.check_client(self.FFMPEG + ["-f", "flv", "{url}"])

    def test_ffmpeg_flashver_buffer_conn(self):
        self.check_client(self.FFMPEG + [
            "-rtmp_flashver", "FMLE/3.0 (compatible; FMSc/1.0)", "-rtmp_buffer", "100",
            "-rtmp_conn", "S:extra-string B:1 O:1 NS:nested:value O:0",
            "-f", "flv", "{url}"])

    def test_ffmpeg_app_and_playpath_options(self):
        self.check_client(self.FFMPEG + [
            "-rtmp_app", "live", "-rtmp_playpath", KEY + "?token=abc",
            "-rtmp_tcurl", "rtmp://127.0.0.1:{port}/live", "-f", "flv",
            "rtmp://127.0.0.1:{port}/"])

    def test_gstreamer_rtmp2sink(self):
        self.check_client(["gst-launch-1.0", "-q", "-e"] + GST_VIDEO.format(
            sink="rtmp2sink location={url}").split())

    def test_gstreamer_rtmpsink_librtmp(self):
        # librtmp options follow the URL after a space: one argument, quoted
        # for gst-launch's own parser.
        argv = GST_VIDEO.format(sink="rtmpsink LOCATION").split()
        argv[argv.index("LOCATION")] = 'location="{url} live=1"'
        self.check_client(["gst-launch-1.0", "-q", "-e"] + argv)


# ---- hostile input beside a live stream ------------------------------------------------


class HostileTest(unittest.TestCase):
    """Each attack is refused or cut while a real publisher streams beside
    it; the live playlist keeps advancing and the sanitizers stay quiet
    (Sluice.stop checks the log)."""

    @classmethod
    def setUpClass(cls):
        cls.sluice = Sluice("--segment-duration", "1", "--rtmp-handshake-timeout", "1500")
        cls.pub = publish(cls.sluice.rtmp_url(KEY), seconds=30, size="320x240", gop=25)
        wait_for(lambda: cls.last_segment() is not None, 20, "the live playlist")

    @classmethod
    def tearDownClass(cls):
        cls.pub.kill()
        cls.pub.communicate()
        cls.log = stop(cls.sluice)

    @classmethod
    def last_segment(cls):
        s, _, b = http(cls.sluice.url("/hls/demo/240p/index.m3u8"))
        if s != 200:
            return None
        text = b.decode()
        segs = parse_media(text)["segments"]
        if not segs:
            return None
        return segs[-1]["uri"]

    def setUp(self):
        self.before = self.last_segment()

    def tearDown(self):
        # The live stream went on: a newer segment than before the attack.
        wait_for(lambda: (self.last_segment() or "") not in ("", self.before), 10,
                 "the live playlist to advance")
        self.assertIsNone(self.pub.poll(), "the live publisher is still running")

    def connected(self):
        r = Rtmp(self.sluice.rtmp_port)
        r.handshake()
        self.assertTrue(r.connect())
        return r

    def test_garbage(self):
        for payload in (os.urandom(5000), b"\x03" + os.urandom(1536) + os.urandom(1536) +
                        os.urandom(4000), b"GET / HTTP/1.0\r\n\r\n" * 50):
            r = Rtmp(self.sluice.rtmp_port)
            try:
                r.sock.sendall(payload)
            except OSError:
                pass
            self.assertTrue(r.closed_by_peer(5))
            r.close()
        # Garbage after a good connect.
        r = self.connected()
        r.sock.sendall(b"\xff" * 3000)
        self.assertTrue(r.closed_by_peer(5))
        r.close()

    def test_truncated_handshakes(self):
        for payload in (b"\x03", b"\x03" + b"\x00" * 700, b"\x03" + b"\x00" * 1536):
            r = Rtmp(self.sluice.rtmp_port)
            r.sock.sendall(payload)
            t0 = time.time()
            self.assertTrue(r.closed_by_peer(5))
            self.assertLess(time.time() - t0, 4)
            r.close()
        # Cut by the client half way: nothing to wait for on our side.
        r = Rtmp(self.sluice.rtmp_port)
        r.sock.sendall(b"\x03" + b"\x00" * 1000)
        r.close()

    def test_oversized_chunk_size_and_message(self):
        r = self.connected()
        r.send(2, 1, 0, 0, struct.pack(">I", 0x7FFFFFFF))
        self.assertTrue(r.closed_by_peer(5))
        r.close()
        r = self.connected()
        r.set_chunk_size(65536)
        # Announces a 16 MiB message: over --rtmp-max-message-size.
        r.sock.sendall(bytes([6]) + b"\x00\x00\x00" + 0xFFFFFF.to_bytes(3, "big") +
                       b"\x09" + struct.pack("<I", 1) + b"\x00" * 1000)
        self.assertTrue(r.closed_by_peer(5))
        r.close()

    def test_ten_thousand_chunk_stream_ids(self):
        r = self.connected()
        out = bytearray()
        for csid in range(64, 10064):
            # A message of 50 bytes started on each, 10 bytes of it sent.
            out += bytes([1]) + struct.pack("<H", csid - 64) + b"\x00\x00\x00" + \
                (50).to_bytes(3, "big") + b"\x09" + struct.pack("<I", 1) + b"\x00" * 10
        try:
            r.sock.sendall(bytes(out))
        except OSError:
            pass
        self.assertTrue(r.closed_by_peer(5))
        r.close()

    def test_deep_amf_nesting(self):
        r = Rtmp(self.sluice.rtmp_port)
        r.handshake()
        depth = 5000
        body = amf_str("connect") + amf_num(1) + b"\x03" + \
            (b"\x00\x01a\x03" * depth) + (b"\x00\x00\x09" * (depth + 1))
        r.set_chunk_size(65536)
        r.send(3, 20, 0, 0, body)
        self.assertTrue(r.closed_by_peer(5))
        r.close()
        # A long string is refused as well.
        r = Rtmp(self.sluice.rtmp_port)
        r.handshake()
        r.set_chunk_size(65536)
        r.send(3, 20, 0, 0, amf_str("connect") + amf_num(1) +
               b"\x0c" + struct.pack(">I", 200000) + b"x" * 200000)
        self.assertTrue(r.closed_by_peer(5))
        r.close()

    def test_slowloris_handshakes(self):
        socks = [socket.create_connection(("127.0.0.1", self.sluice.rtmp_port), timeout=5)
                 for _ in range(10)]
        t0 = time.time()
        closed = set()
        # One byte each every 100 ms: the handshake timeout (1.5 s) cuts them.
        while len(closed) < len(socks) and time.time() - t0 < 6:
            for i, s in enumerate(socks):
                if i in closed:
                    continue
                try:
                    s.sendall(b"\x03" if time.time() - t0 < 0.15 else b"\x00")
                except OSError:
                    closed.add(i)
            time.sleep(0.1)
        for s in socks:
            s.close()
        self.assertEqual(len(closed), len(socks))
        self.assertLess(time.time() - t0, 4)

    def test_zzz_counters(self):
        # Runs last (alphabetical): the totals so far are in the log at stop,
        # checked here on the live log for what must already have happened.
        log = self.sluice.log()
        self.assertIn("handshake not completed within 1500 ms", log)
        self.assertIn("peer crossed a limit", log)
        self.assertIn("command over the AMF0 limits", log)


# ---- RTMPS ------------------------------------------------------------------------------


def make_cert(directory, cn):
    """A self-signed certificate and key (PEM) for cn; returns (cert, key)."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", f"/CN={cn}",
                    "-keyout", key + ".new", "-out", cert + ".new"],
                   check=True, capture_output=True, timeout=30)
    # Renamed into place so a reload never reads a half-written file.
    os.replace(key + ".new", key)
    os.replace(cert + ".new", cert)
    return cert, key


def server_cert(port):
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw) as t:
            return t.getpeercert(binary_form=True), t.version()


class RtmpsTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sluice-tls-")
        self.cert, self.key = make_cert(self.dir, "sluice-test-one")
        self.tls_port = __import__("harness").free_port()
        self.sluice = Sluice("--rtmps-listen", f"127.0.0.1:{self.tls_port}",
                             "--tls-cert", self.cert, "--tls-key", self.key,
                             "--segment-duration", "1")

    def tearDown(self):
        stop(self.sluice)
        for f in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, f))
        os.rmdir(self.dir)

    def rtmps_url(self):
        return f"rtmps://127.0.0.1:{self.tls_port}/live/{KEY}"

    def test_publish_over_rtmps_and_reload_on_sighup(self):
        first, version = server_cert(self.tls_port)
        self.assertIn(version, ("TLSv1.2", "TLSv1.3"))
        pub = publish(self.rtmps_url(), seconds=6, size="320x240", gop=25)
        wait_for(lambda: http(self.sluice.url("/hls/demo/master.m3u8"))[0] == 200, 15,
                 "the master playlist over RTMPS")
        # A new certificate while the stream is live.
        make_cert(self.dir, "sluice-test-two")
        self.sluice.proc.send_signal(__import__("signal").SIGHUP)
        wait_for(lambda: "certificate reloaded" in self.sluice.log(), 5, "the reload")
        second, _ = server_cert(self.tls_port)
        self.assertNotEqual(first, second, "new connections get the new certificate")
        # A broken file: the reload fails and the current certificate stays.
        with open(self.cert, "w") as f:
            f.write("not a certificate\n")
        self.sluice.proc.send_signal(__import__("signal").SIGHUP)
        wait_for(lambda: "certificate reload failed" in self.sluice.log(), 5, "the failed reload")
        self.assertEqual(server_cert(self.tls_port)[0], second)
        rc, err = finish(pub, 40)
        self.assertEqual(rc, 0, err)
        pl = ended_playlist(self.sluice, "240p", 20)
        self.assertAlmostEqual(sum(s["duration"] for s in pl["segments"]), 6, delta=1.0)
        ok, err = decodes(self.sluice)
        self.assertTrue(ok, err)
        log = self.sluice.log()
        self.assertEqual(log.count("publish started"), 1, "the live stream was not dropped")
        self.assertRegex(log, r"rtmps#\d+ .*publish started")

    def test_tls_below_1_2_is_refused(self):
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        with socket.create_connection(("127.0.0.1", self.tls_port), timeout=5) as raw:
            with self.assertRaises(ssl.SSLError):
                ctx.wrap_socket(raw)

    def test_plain_rtmp_to_the_rtmps_port_fails_cleanly(self):
        url = f"rtmp://127.0.0.1:{self.tls_port}/live/{KEY}"
        pub = publish(url, seconds=2, size="320x240")
        t0 = time.time()
        rc, _ = finish(pub, 30)
        self.assertNotEqual(rc, 0)
        self.assertLess(time.time() - t0, 15)
        r = Rtmp(self.tls_port)
        r.sock.sendall(b"\x03" + b"\x00" * 1536)
        self.assertTrue(r.closed_by_peer(5))
        r.close()
        wait_for(lambda: "TLS handshake failed" in self.sluice.log(), 5, "the TLS failure log")
        self.assertEqual(http(self.sluice.url("/hls/demo/master.m3u8"))[0], 404)


# ---- Enhanced RTMP (HEVC, AV1) ------------------------------------------------------------


def _box(path, name):
    data = open(path, "rb").read()
    i = data.find(name)
    size = int.from_bytes(data[i - 4:i], "big")
    return data[i + 4:i - 4 + size]


def _annexb_nals(data):
    out, i, n = [], 0, len(data)
    starts = []
    while True:
        j = data.find(b"\x00\x00\x01", i)
        if j < 0:
            break
        starts.append(j + 3)
        i = j + 3
    for k, st in enumerate(starts):
        end = starts[k + 1] - 3 if k + 1 < len(starts) else n
        nal = data[st:end]
        while nal.endswith(b"\x00"):  # the 4-byte start code's leading zero
            nal = nal[:-1]
        out.append(nal)
    return out


def hevc_frames(size="640x360", seconds=3, rate=25):
    """(hvcC, [(ts_ms, key, hvcc_sample)]) from libx265 via Annex B."""
    with tempfile.TemporaryDirectory() as d:
        raw, mp4 = os.path.join(d, "v.hevc"), os.path.join(d, "v.mp4")
        subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
                        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}",
                        "-t", str(seconds), "-c:v", "libx265", "-preset", "ultrafast",
                        "-x265-params", f"bframes=0:keyint={rate}:aud=1:log-level=error",
                        "-pix_fmt", "yuv420p", raw], check=True, timeout=120)
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "hevc",
                        "-i", raw, "-c", "copy", mp4], check=True, timeout=60)
        hvcc = _box(mp4, b"hvcC")
        data = open(raw, "rb").read()
    frames, cur = [], []
    for nal in _annexb_nals(data) + [b"\x46\x01"]:  # a final AUD flushes the last one
        t = (nal[0] >> 1) & 0x3f
        if t == 35:  # access unit delimiter
            if cur:
                key = any(16 <= ((x[0] >> 1) & 0x3f) <= 21 for x in cur)
                body = b"".join(struct.pack(">I", len(x)) + x for x in cur)
                frames.append((len(frames) * 1000 // rate, key, body))
            cur = []
        elif t not in (32, 33, 34):  # parameter sets are in the hvcC
            cur.append(nal)
    return hvcc, frames


def av1_frames(size="640x360", seconds=3, rate=25):
    """(av1C, [(ts_ms, key, obus)]) from libaom-av1 via the low-overhead OBU stream."""
    with tempfile.TemporaryDirectory() as d:
        raw, mp4 = os.path.join(d, "v.obu"), os.path.join(d, "v.mp4")
        subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
                        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}",
                        "-t", str(seconds), "-c:v", "libaom-av1", "-cpu-used", "8",
                        "-usage", "realtime", "-g", str(rate), "-pix_fmt", "yuv420p", raw],
                       check=True, timeout=120)
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", raw,
                        "-c", "copy", mp4], check=True, timeout=60)
        av1c = _box(mp4, b"av1C")
        data = open(raw, "rb").read()
    frames, cur, key, pos = [], b"", False, 0

    def flush():
        if cur:
            frames.append((len(frames) * 1000 // rate, key, cur))
    while pos < len(data):
        h = data[pos]
        t = (h >> 3) & 0x0f
        hl = 2 if h & 0x04 else 1
        size_, n, shift = 0, 0, 0
        while True:  # leb128
            b = data[pos + hl + n]
            size_ |= (b & 0x7f) << shift
            n += 1
            shift += 7
            if not b & 0x80:
                break
        obu = data[pos:pos + hl + n + size_]
        payload = data[pos + hl + n:pos + hl + n + size_]
        pos += hl + n + size_
        if t == 2:  # temporal delimiter: a new temporal unit
            flush()
            cur, key = b"", False
            continue
        if t in (3, 6) and payload and not payload[0] & 0x80 and (payload[0] >> 5) & 3 == 0:
            key = True  # KEY_FRAME
        cur += obu
    flush()
    return av1c, frames


class EnhancedRtmpTest(unittest.TestCase):
    """A synthetic Enhanced RTMP publisher (the FourCC video header OBS 29.1+
    sends for HEVC and AV1): the ladder comes out as H.264 that decodes."""

    def publish_enhanced(self, fourcc, record, frames, extended_x=False):
        sl = Sluice("--segment-duration", "1")
        try:
            r = Rtmp(sl.rtmp_port)
            r.handshake()
            r.set_chunk_size(4096)
            self.assertTrue(r.connect(extra={"fourCcList": "x"}))
            # Enhanced RTMP v2: the FourCCs we take come back in the result.
            self.assertIn(b"\x00\x0afourCcList\x0a\x00\x00\x00\x03\x02\x00\x04avc1"
                          b"\x02\x00\x04hvc1\x02\x00\x04av01", r.received)
            self.assertTrue(r.publish(KEY))
            r.send(5, 18, 1, 0, amf_str("@setDataFrame") + amf_str("onMetaData") + amf_ecma(
                {"width": 640, "height": 360, "framerate": 25,
                 "videocodecid": float(int.from_bytes(fourcc, "big"))}))
            r.send(6, 9, 1, 0, bytes([0x90]) + fourcc + record)  # SequenceStart, key
            for i, (ts, key, body) in enumerate(frames):
                ft = 1 if key else 2
                if fourcc == b"av01":
                    head = bytes([0x80 | ft << 4 | 1]) + fourcc
                elif extended_x and i % 2:
                    head = bytes([0x80 | ft << 4 | 3]) + fourcc  # CodedFramesX
                else:
                    head = bytes([0x80 | ft << 4 | 1]) + fourcc + b"\x00\x00\x00"
                r.send(6, 9, 1, ts, head + body, compress=True)
            r.send(6, 9, 1, frames[-1][0], bytes([0x80 | 1 << 4 | 2]) + fourcc)  # SequenceEnd
            r.command("deleteStream", 7, None, 1)
            time.sleep(0.2)
            r.close()
            pl = ended_playlist(sl, "360p", 60)
            self.assertAlmostEqual(sum(s["duration"] for s in pl["segments"]), 3, delta=0.6)
            s, _, b = http(sl.url("/hls/demo/master.m3u8"))
            self.assertEqual(s, 200)
            self.assertRegex(b.decode(), r'CODECS="avc1\.')
            probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v",
                                    "-show_entries", "stream=codec_name,width,height", "-of",
                                    "csv=p=0", sl.url("/hls/demo/360p/index.m3u8")],
                                   capture_output=True, timeout=60)
            lines = {l for l in probe.stdout.decode().split() if l}
            self.assertEqual(lines, {"h264,640,360"}, probe.stderr)
            ok, err = decodes(sl)
            self.assertTrue(ok, err)
        finally:
            log = stop(sl)
        return log

    def test_hevc(self):
        hvcc, frames = hevc_frames()
        self.assertEqual(len(frames), 75)
        log = self.publish_enhanced(b"hvc1", hvcc, frames, extended_x=True)
        self.assertIn("video config: HEVC (Enhanced RTMP) hvc1.1.6.L", log)
        self.assertRegex(log, r"ladder for 640x360: 360p 640x360 (?!copy)")

    def test_av1(self):
        av1c, frames = av1_frames()
        self.assertEqual(len(frames), 75)
        log = self.publish_enhanced(b"av01", av1c, frames)
        self.assertIn("video config: AV1 (Enhanced RTMP) av01.0.", log)
        self.assertRegex(log, r"ladder for 640x360: 360p 640x360 (?!copy)")


if __name__ == "__main__":
    unittest.main()
