#!/usr/bin/env python3
"""Writes the seed corpora for the ingest fuzz targets (tests/fuzz/corpus/).

Each target's input format is described at the top of its fuzz_*.c file.
Valid inputs come first, then malformed ones. Stdlib only; deterministic,
so re-running it leaves the tree unchanged.
"""
import hashlib
import hmac
import os
import random
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

# ---------------------------------------------------------------- AMF0

def a_num(v):
    return b"\x00" + struct.pack(">d", v)

def a_bool(v):
    return b"\x01" + (b"\x01" if v else b"\x00")

def a_str(s):
    if isinstance(s, str):
        s = s.encode()
    if len(s) > 0xFFFF:
        return b"\x0c" + struct.pack(">I", len(s)) + s
    return b"\x02" + struct.pack(">H", len(s)) + s

def a_key(k):
    k = k.encode()
    return struct.pack(">H", len(k)) + k

def a_obj(pairs, marker=b"\x03"):
    return marker + b"".join(a_key(k) + v for k, v in pairs) + b"\x00\x00\x09"

def a_ecma(pairs):
    return b"\x08" + struct.pack(">I", len(pairs)) + a_obj(pairs, b"")

def a_strict(items):
    return b"\x0a" + struct.pack(">I", len(items)) + b"".join(items)

A_NULL = b"\x05"
A_UNDEF = b"\x06"

def a_date(ms, tz=0):
    return b"\x0b" + struct.pack(">dh", ms, tz)

def cmd_connect(app="live", txn=1):
    return (a_str("connect") + a_num(txn) + a_obj([
        ("app", a_str(app)), ("type", a_str("nonprivate")),
        ("flashVer", a_str("FMLE/3.0 (compatible; FMSc/1.0)")),
        ("swfUrl", a_str("rtmp://127.0.0.1:1935/live")),
        ("tcUrl", a_str("rtmp://127.0.0.1:1935/live"))]))

def cmd(name, txn, *args):
    return a_str(name) + a_num(txn) + A_NULL + b"".join(args)

def metadata():
    return (a_str("@setDataFrame") + a_str("onMetaData") + a_ecma([
        ("duration", a_num(0)), ("width", a_num(1280)), ("height", a_num(720)),
        ("videodatarate", a_num(0)), ("framerate", a_num(30)), ("videocodecid", a_num(7)),
        ("audiodatarate", a_num(125)), ("audiosamplerate", a_num(48000)),
        ("audiosamplesize", a_num(16)), ("stereo", a_bool(False)), ("audiocodecid", a_num(10)),
        ("encoder", a_str("Lavf59.27.100")), ("filesize", a_num(0))]))

def amf0_corpus():
    all_types = (a_num(3.5) + a_bool(True) + a_str("hi") + a_obj([("k", A_NULL)]) + A_NULL +
                 A_UNDEF + a_ecma([("a", a_num(1))]) + a_strict([a_num(1), a_str("x")]) +
                 a_date(1.7e12, -60) + b"\x0c\x00\x00\x00\x02ok")
    deep = b""
    for _ in range(20):
        deep += b"\x03" + a_key("k")
    deep += A_NULL + b"\x00\x00\x09" * 20
    out = {
        "connect": cmd_connect(),
        "connect_query": cmd_connect("live?token=x"),
        "publish": cmd("publish", 5, a_str("secret"), a_str("live")),
        "fcpublish": cmd("FCPublish", 3, a_str("secret")),
        "create_stream": cmd("createStream", 4),
        "result": a_str("_result") + a_num(1) + a_obj([("fmsVer", a_str("FMS/3,0,1,123")),
                                                       ("capabilities", a_num(31))]) +
                  a_obj([("level", a_str("status")), ("code", a_str("NetConnection.Connect.Success"))]),
        "metadata": metadata(),
        "all_types": all_types,
        "long_string": a_str(b"y" * 70000)[:5000],  # truncated long string
        # malformed
        "truncated_object": a_obj([("level", a_str("status"))])[:-2],
        "deep_nesting": deep,
        "reference_marker": b"\x07\x00\x01",
        "typed_object": b"\x10\x00\x03abc\x00\x00\x09",
        "avmplus_switch": b"\x11\x02",
        "huge_long_string": b"\x0c\xff\xff\xff\xffabc",
        "huge_strict_array": b"\x0a\xff\xff\xff\xff\x05\x05",
        "object_end_top": b"\x00\x00\x09",
        "bad_object_end": b"\x03\x00\x00\x05",
        "empty": b"",
    }
    return out

# ---------------------------------------------------------------- FLV

AVCC = bytes([0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x19, 0x67, 0x64, 0x00, 0x1f, 0xac,
              0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00,
              0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x19, 0x60, 0x01, 0x00, 0x06, 0x68, 0xeb,
              0xe3, 0xcb, 0x22, 0xc0])

# hvcC and av1C that ffmpeg's mp4 muxer wrote for libx265 / libaom-av1 at 320x240.
HVCC = bytes.fromhex(
    "0101600000009000000000003cf000fcfdf8f800000f03200001001840010c01"
    "ffff01600000030090000003000003003cba0240210001002842010101600000"
    "030090000003000003003ca00a080f165ba4a4c2f0168080000003008000000c"
    "8422000100064401c073c189")
AV1C = bytes.fromhex(
    "81000c000a0b000000043cffbcdaf90040")

def flv_corpus():
    V, A, S = b"\x00", b"\x01", b"\x02"
    return {
        "avc_config": V + b"\x17\x00\x00\x00\x00" + AVCC,
        "avc_key": V + b"\x17\x01\x00\x00\x42" + b"\x00\x00\x00\x05\x65\x88\x84\x00\x10",
        "avc_inter_neg_cts": V + b"\x27\x01\xff\xff\xdf" + b"\x00\x00\x00\x03\x41\x9a\x02",
        "avc_eos": V + b"\x17\x02\x00\x00\x00",
        "video_info": V + b"\x57\x00",
        "aac_config": A + b"\xaf\x00\x11\x90",
        "aac_raw": A + b"\xaf\x01\x21\x10\x04\x60\x8c\x1c",
        "mp3": A + b"\x2f\xff\xfb\x90",
        "vp6": V + b"\x14\x00\x00",
        "enhanced_hevc": V + b"\x91hvc1\x00\x00\x00\x00\x01",
        # Enhanced RTMP: sequence start / coded frames (X) / end for each FourCC
        "ex_hevc_start": V + b"\x90hvc1" + HVCC,
        "ex_hevc_frames_cts": V + b"\x91hvc1\x00\x00\x28" + b"\x00\x00\x00\x03\x26\x01\xaf",
        "ex_hevc_frames_x": V + b"\xa3hvc1" + b"\x00\x00\x00\x03\x02\x01\xd0",
        "ex_hevc_end": V + b"\x92hvc1",
        "ex_av1_start": V + b"\x90av01" + AV1C,
        "ex_av1_frames": V + b"\x91av01" + b"\x12\x00\x32\x05\x10\x00\x00\x00\x00",
        "ex_avc1_frames": V + b"\x91avc1\xff\xff\xf0" + b"\x00\x00\x00\x02\x41\x9a",
        "ex_metadata": V + b"\x94hvc1" + a_str("colorInfo") + a_obj([]),
        "ex_command": V + b"\xd1hvc1\x00",
        "ex_modex": V + b"\x97\x07\x00\x00\x00\x00\x00\x00\x00\x01hvc1\x00\x00\x00\x01\x02",
        "ex_modex_long": V + b"\x97\xff\x01\x00" + b"\x00" * 257 + b"\x03av01\x12\x00",
        "ex_multitrack_one": V + b"\x96\x01hvc1\x00\x00\x00\x00\x00\x01\x02",
        "ex_multitrack_other_track": V + b"\x96\x01hvc1\x01\x00\x00\x00\x00\x01\x02",
        "ex_multitrack_many": V + b"\x96\x11hvc1\x00\x00\x00\x05",
        "ex_vp09": V + b"\x91vp09\x00",
        "ex_mpeg2ts_start": V + b"\x95av01\x00",
        "ex_bad_packet_type": V + b"\x98hvc1\x00",
        "ex_modex_loop": V + b"\x97" + b"\x00\x00\x07" * 12,
        "ex_start_no_body": V + b"\x90av01",
        "ex_audio_mp4a_start": A + b"\x90mp4a\x11\x90",
        "ex_audio_mp4a_frame": A + b"\x91mp4a\x21\x10\x04\x60",
        "ex_audio_multichannel": A + b"\x94mp4a\x01\x02\x00\x00\x00\x03",
        "ex_audio_opus": A + b"\x91Opus\x00",
        "ex_audio_multitrack": A + b"\x95\x01mp4a\x00\x21\x10",
        "ex_audio_modex": A + b"\x97\x00\x00\x01mp4a\x21",
        "script": S + metadata(),
        # malformed
        "empty_video": V,
        "truncated_avc": V + b"\x17\x01\x00",
        "avc_config_no_body": V + b"\x17\x00\x00\x00\x00",
        "avc_bad_packet_type": V + b"\x17\x05\x00\x00\x00\x01",
        "aac_bad_packet_type": A + b"\xaf\x07\x01",
        "aac_no_body": A + b"\xaf\x01",
        "enhanced_short": V + b"\x90hv",
    }

# ---------------------------------------------------------------- RTMP chunks

def basic(fmt, csid):
    if csid < 64:
        return bytes([fmt << 6 | csid])
    if csid < 320:
        return bytes([fmt << 6, csid - 64])
    return bytes([fmt << 6 | 1, (csid - 64) & 0xFF, (csid - 64) >> 8])

def chunk_msg(csid, mtype, msid, ts, payload, chunk=128):
    """A whole message: type 0 header, type 3 continuations."""
    ext = ts >= 0xFFFFFF
    h = basic(0, csid) + struct.pack(">I", min(ts, 0xFFFFFF))[1:] + \
        struct.pack(">I", len(payload))[1:] + bytes([mtype]) + struct.pack("<I", msid)
    if ext:
        h += struct.pack(">I", ts)
    out = h + payload[:chunk]
    for off in range(chunk, len(payload), chunk):
        out += basic(3, csid) + (struct.pack(">I", ts) if ext else b"") + payload[off:off + chunk]
    return out

def hdr(fmt, csid, ts, length=0, mtype=0):
    out = basic(fmt, csid)
    if fmt <= 2:
        out += struct.pack(">I", ts)[1:]
    if fmt <= 1:
        out += struct.pack(">I", length)[1:] + bytes([mtype])
    return out

def publisher_session():
    s = chunk_msg(3, 20, 0, 0, cmd_connect())
    s += chunk_msg(2, 1, 0, 0, struct.pack(">I", 4096))
    s += chunk_msg(2, 5, 0, 0, struct.pack(">I", 2500000), 4096)
    s += chunk_msg(3, 20, 0, 0, cmd("releaseStream", 2, a_str("secret")), 4096)
    s += chunk_msg(3, 20, 0, 0, cmd("FCPublish", 3, a_str("secret")), 4096)
    s += chunk_msg(3, 20, 0, 0, cmd("createStream", 4), 4096)
    s += chunk_msg(8, 20, 1, 0, cmd("publish", 5, a_str("secret"), a_str("live")), 4096)
    s += chunk_msg(4, 18, 1, 0, metadata(), 4096)
    s += chunk_msg(6, 9, 1, 0, b"\x17\x00\x00\x00\x00" + AVCC, 4096)
    s += chunk_msg(4, 8, 1, 0, b"\xaf\x00\x11\x90", 4096)
    rnd = random.Random(7)
    frame = b"\x17\x01\x00\x00\x42" + bytes(rnd.randrange(256) for _ in range(6000))
    s += chunk_msg(6, 9, 1, 0, frame, 4096)
    s += hdr(1, 6, 33, 9, 9) + b"\x27\x01\x00\x00\x21\x00\x00\x00\x00"   # type 1
    s += hdr(2, 4, 21) + b"\xaf\x01\x21\x10"                                # type 2 (len 4)
    s += hdr(3, 4, 0) + b"\xaf\x01\x21\x11"                                 # type 3 new msg
    s += chunk_msg(2, 4, 0, 0, b"\x00\x06\x00\x00\x01\x00", 4096)          # ping request
    s += chunk_msg(3, 20, 0, 0, cmd("FCUnpublish", 6, a_str("secret")), 4096)
    s += chunk_msg(3, 20, 0, 0, cmd("deleteStream", 7, a_num(1)), 4096)
    return s

def chunk_corpus():
    ext = chunk_msg(6, 9, 1, 0x01000000, bytes(300))             # ext ts on type 3 too
    ext += hdr(1, 6, 0xFFFFFF, 2, 9) + struct.pack(">I", 0x01000000) + b"\x27\x01"
    ext += hdr(3, 6, 0) + struct.pack(">I", 0x01000000) + b"\x27\x02"
    abort = chunk_msg(2, 1, 0, 0, struct.pack(">I", 64))
    abort += chunk_msg(5, 9, 1, 0, bytes(200), 64)[:12 + 64]      # first chunk only
    abort += chunk_msg(2, 2, 0, 0, struct.pack(">I", 5), 64)
    abort += chunk_msg(5, 9, 1, 10, b"\x17\x02\x00\x00\x00", 64)
    many = b"".join(chunk_msg(3 + i, 8, 1, 0, b"\xaf\x01\x00") for i in range(12))
    big_csid = chunk_msg(64, 8, 1, 0, b"\xaf\x01\x00") + chunk_msg(65599, 8, 1, 5, b"\xaf\x01\x01")
    interleaved = chunk_msg(6, 9, 1, 0, bytes(range(256)) * 2)
    interleaved = interleaved[:12 + 128] + chunk_msg(4, 8, 1, 0, b"\xaf\x01\x05") + interleaved[12 + 128:]
    out = {
        "publisher_session": publisher_session(),
        "extended_timestamps": ext,
        "abort": abort,
        "big_csids": big_csid,
        "interleaved": interleaved,
        "zero_length": chunk_msg(4, 8, 1, 0, b""),
        # malformed / over limits
        "type1_first": hdr(1, 4, 10, 3, 8) + b"abc",
        "type3_first": hdr(3, 4, 0) + b"abc",
        "header_mid_message": chunk_msg(4, 8, 1, 0, bytes(200))[:140] + chunk_msg(4, 8, 1, 0, b"x"),
        "huge_length": hdr(0, 4, 0, 0xFFFFFF, 9) + b"\x01\x00\x00\x00" + bytes(64),
        "too_many_csids": many,
        "chunk_size_zero": chunk_msg(2, 1, 0, 0, b"\x00\x00\x00\x00"),
        "chunk_size_huge": chunk_msg(2, 1, 0, 0, b"\x7f\xff\xff\xff") + chunk_msg(3, 20, 0, 0, bytes(10)),
        "chunk_size_short": chunk_msg(2, 1, 0, 0, b"\x00\x10"),
        "truncated": publisher_session()[:777],
    }
    # Prefix: split seed, writer chunk-size selector.
    return {k: bytes([i * 37 & 0xFF, i & 3]) + v for i, (k, v) in enumerate(sorted(out.items()))}

# ---------------------------------------------------------------- handshake

FP = b"Genuine Adobe Flash Player 001"
TAIL = bytes([0xf0, 0xee, 0xc2, 0x4a, 0x80, 0x68, 0xbe, 0xe8, 0x2e, 0x00, 0xd0, 0xd1, 0x02, 0x9e,
              0x7e, 0x57, 0x6e, 0xec, 0x5d, 0x2d, 0x29, 0x80, 0x6f, 0xab, 0x93, 0xb8, 0xe6, 0x36,
              0xcf, 0xeb, 0x31, 0xae])

def c1_for(scheme, seed):
    rnd = random.Random(seed)
    c1 = bytearray(rnd.randrange(256) for _ in range(1536))
    c1[0:4] = b"\x00\x00\x00\x00"
    if scheme is None:
        c1[4:8] = b"\x00\x00\x00\x00"
        return bytes(c1)
    c1[4:8] = bytes([9, 0, 124, 2])
    base = 772 if scheme else 8
    off = sum(c1[base:base + 4]) % 728 + base + 4
    msg = bytes(c1[:off]) + bytes(c1[off + 32:])
    c1[off:off + 32] = hmac.new(FP, msg, hashlib.sha256).digest()
    return bytes(c1)

def handshake_corpus():
    c2 = bytes(random.Random(3).randrange(256) for _ in range(1536))
    after = chunk_msg(3, 20, 0, 0, cmd_connect())
    out = {
        "plain": b"\x03" + c1_for(None, 1) + c2 + after,
        "digest_scheme0": b"\x03" + c1_for(0, 2) + c2 + after,
        "digest_scheme1": b"\x03" + c1_for(1, 3) + c2,
        "bad_digest": b"\x03" + c1_for(0, 4)[:100] + b"\x00" + c1_for(0, 4)[101:] + c2,
        "rtmpe": b"\x06" + c1_for(0, 5),
        "http": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "truncated_c1": b"\x03" + c1_for(0, 6)[:700],
        "no_c2": b"\x03" + c1_for(None, 7),
    }
    return {k: bytes([i * 53 & 0xFF]) + v for i, (k, v) in enumerate(sorted(out.items()))}

def write(name, files):
    d = os.path.join(CORPUS, name)
    os.makedirs(d, exist_ok=True)
    for fname, data in files.items():
        with open(os.path.join(d, fname), "wb") as f:
            f.write(data)
    print(f"{name}: {len(files)} files", file=sys.stderr)

def main():
    write("amf0", amf0_corpus())
    write("flv", flv_corpus())
    write("rtmp_chunk", chunk_corpus())
    write("rtmp_handshake", handshake_corpus())

if __name__ == "__main__":
    main()
