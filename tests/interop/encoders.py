#!/usr/bin/env python3
"""The encoder matrix (issue 18), run by hand, not in CI:

    tests/interop/encoders.py [--seconds 60] [--only NAME[,NAME]] [--no-busy] [--list]

One case per encoder configuration. Each case starts a fresh sluice
(SLUICE_BIN, default build/sluice) with the default ladder on free loopback
ports, publishes with that encoder for --seconds (over RTMP; obs-srt and
ffmpeg-srt over SRT, MPEG-TS) while three players watch, and checks what a
viewer would notice:

  - the claim check: the same encoder configuration writes a local FLV file
    (OBS: its own recording of the stream, sharing the stream's encoder), and
    the FLV tags are read here to check it is what the case claims (frame
    rate, keyframe interval, B-frames, open-GOP keyframes, variable frame
    rate, audio sample rate and channels, audio ahead of video);
  - the stream status from the admin API every 2 s: transcode.restarts (the
    worker restarts; must stay 0), reconnects, renditions, last_error,
    ingest.protocol (must be the case's: rtmp or srt);
  - hlscheck (tests/integration/hlscheck.py, RFC 8216bis) on the master and
    every rendition's playlist every 10 s and once more after the end;
  - players: ffmpeg reading the master (-f null), GStreamer playbin3 with
    fakesinks (sync=true), and a per-rendition reader that fetches every new
    segment of every rendition and decodes init + segment with ffmpeg;
  - at the end every rendition's ended playlist decoded by ffmpeg (-f null);
  - sluice's warn/error log lines counted by kind.

While it runs, a second stream ("busy", a 720p30 ffmpeg publish, its ladder
transcoded) shares the same sluice so the machine is loaded by two ladders
plus the players; --no-busy leaves it out.

It prints one markdown table (date, sluice commit) and per-case details,
and writes them with every sluice log to build/interop/DATE/. Exit status 0
when every case passed. Python stdlib only; every process it starts is in
its own session and is killed on the way out, Ctrl-C included.
"""

import argparse
import collections
import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import hlscheck  # noqa: E402
from harness import free_port, parse_master, parse_media  # noqa: E402

KEY = "interop-secret-key"
BUSY_KEY = "busy-secret-key"
SEGMENT_TARGET = 2.0  # sluice's default --segment-duration

# ---------------------------------------------------------------------------
# Processes: every one in its own session, all killed on the way out.

_procs = []
_procs_lock = threading.Lock()


def spawn(cmd, log_path=None, env=None, stdout=None, stderr=None):
    """Popen in a new session (so its whole group can be killed), logged to
    log_path when given."""
    f = open(log_path, "ab") if log_path else None
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                         stdout=stdout if stdout is not None else (f or subprocess.DEVNULL),
                         stderr=stderr if stderr is not None else (f or subprocess.DEVNULL),
                         env=env, start_new_session=True)
    if f:
        f.close()
    with _procs_lock:
        _procs.append(p)
    return p


def kill_group(p, sig=signal.SIGTERM, wait=5.0):
    """Signal p's process group, then SIGKILL it if p is still there after wait."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(wait)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(p.pid, signal.SIGKILL)  # leftovers of the group, if any
    except (ProcessLookupError, PermissionError):
        pass
    if p.poll() is None:
        p.wait(10)


def cleanup_all():
    with _procs_lock:
        procs = list(_procs)
        _procs.clear()
    for p in procs:
        try:
            kill_group(p, signal.SIGTERM, 3.0)
        except Exception:
            pass


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt


def children_named(pid, name):
    """Pids of descendants of pid whose comm is name."""
    kids = collections.defaultdict(list)
    comm = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        rest = st[st.rfind(")") + 2:].split()
        kids[int(rest[1])].append(int(d))
        comm[int(d)] = st[st.find("(") + 1:st.rfind(")")]
    out, todo = [], [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            todo.append(c)
            if comm.get(c) == name:
                out.append(c)
    return out


# ---------------------------------------------------------------------------
# HTTP

def get(url, timeout=10):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        return None, str(e).encode()


class ObsWebSocket:
    """Just enough of a WebSocket client (RFC 6455) and of obs-websocket's
    protocol 5 (Hello, Identify, Request) to ask OBS to stop its outputs:
    OBS 29.0 on Linux ignores SIGINT and SIGTERM kills it without an
    unpublish, which leaves the stream waiting --reconnect-window for it."""

    def __init__(self, port, timeout=10):
        import base64
        import socket
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           f"Sec-WebSocket-Version: 13\r\n"
                           f"Sec-WebSocket-Protocol: obswebsocket.json\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("obs-websocket closed during the handshake")
            head += chunk
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise ConnectionError(f"obs-websocket refused the upgrade: {head[:200]!r}")
        self.buf = head.split(b"\r\n\r\n", 1)[1]
        hello = self.recv()
        self.send({"op": 1, "d": {"rpcVersion": hello["d"].get("rpcVersion", 1)}})
        if self.recv().get("op") != 2:
            raise ConnectionError("obs-websocket did not identify us")

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("obs-websocket closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = int.from_bytes(self._read(2), "big")
            elif n == 127:
                n = int.from_bytes(self._read(8), "big")
            payload = self._read(n)
            if b0 & 0x0F == 1:
                return json.loads(payload)
            if b0 & 0x0F == 8:
                raise ConnectionError("obs-websocket closed")

    def send(self, obj):
        data = json.dumps(obj).encode()
        mask = os.urandom(4)
        head = bytes([0x81])
        if len(data) < 126:
            head += bytes([0x80 | len(data)])
        else:
            head += bytes([0x80 | 126]) + len(data).to_bytes(2, "big")
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def request(self, kind, timeout=15):
        rid = os.urandom(4).hex()
        self.send({"op": 6, "d": {"requestType": kind, "requestId": rid}})
        deadline = time.time() + timeout
        while time.time() < deadline:
            msg = self.recv()
            if msg.get("op") == 7 and msg["d"].get("requestId") == rid:
                return msg["d"]
        raise TimeoutError(f"no answer to {kind}")

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------------------
# The claim check: FLV tags read directly.

def flv_facts(path):
    """What an FLV file holds, from its tags: video frame rate and frame
    durations, keyframe interval, reordered frames (B-frames), keyframes
    without an IDR slice (open GOP), AAC sample rate and channels, and when
    audio and video start."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:3] != b"FLV":
        raise ValueError(f"{path}: not an FLV file")
    off = int.from_bytes(data[5:9], "big") + 4
    v_dts, pts_list, keys, key_non_idr, idrs = [], [], [], 0, []
    a_first, a_rate, a_ch, nal_len, profile = None, None, None, 4, None
    rates = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350]
    while off + 11 <= len(data):
        ttype = data[off] & 0x1F
        size = int.from_bytes(data[off + 1:off + 4], "big")
        ts = int.from_bytes(data[off + 4:off + 7], "big") | (data[off + 7] << 24)
        body = data[off + 11:off + 11 + size]
        off += 11 + size + 4
        if len(body) < size:
            break  # a cut last tag
        if ttype == 9 and len(body) >= 5 and (body[0] & 0x0F) == 7:
            cts = int.from_bytes(body[2:5], "big", signed=True)
            if body[1] == 0 and len(body) > 9:
                nal_len = (body[9] & 3) + 1
                profile = body[6]  # AVCProfileIndication
            elif body[1] == 1:
                v_dts.append(ts)
                pts_list.append(ts + cts)
                if body[0] >> 4 == 1:
                    keys.append(ts)
                    p, idr = 5, False
                    while p + nal_len <= len(body):
                        n = int.from_bytes(body[p:p + nal_len], "big")
                        if p + nal_len < len(body) and body[p + nal_len] & 0x1F == 5:
                            idr = True
                        p += nal_len + n
                    if not idr:
                        key_non_idr += 1
                    else:
                        idrs.append(ts)
        elif ttype == 8 and len(body) >= 2 and body[0] >> 4 == 10:
            if body[1] == 0 and len(body) >= 4:
                idx = ((body[2] & 7) << 1) | (body[3] >> 7)
                a_rate = rates[idx] if idx < len(rates) else None
                a_ch = (body[3] >> 3) & 0x0F
            elif body[1] == 1 and a_first is None:
                a_first = ts
    out = {"frames": len(v_dts), "profile": profile}
    if len(v_dts) > 1:
        span = (v_dts[-1] - v_dts[0]) / 1000
        out["fps"] = round((len(v_dts) - 1) / span, 2) if span > 0 else None
        deltas = [b - a for a, b in zip(v_dts, v_dts[1:])]
        out["frame_ms"] = (min(deltas), max(deltas))
        out["frame_ms_kinds"] = len(set(deltas))
    gaps = [(b - a) / 1000 for a, b in zip(keys, keys[1:])]
    out["keyint_s"] = (min(gaps), max(gaps)) if gaps else None
    igaps = [(b - a) / 1000 for a, b in zip(idrs, idrs[1:])]
    out["idr_s"] = (min(igaps), max(igaps)) if igaps else None
    out["keyframes"] = len(keys)
    out["keyframes_not_idr"] = key_non_idr
    # A frame shown before one decoded earlier: B-frames (reordering).
    top, reordered = None, 0
    for p in pts_list:
        if top is not None and p < top:
            reordered += 1
        top = p if top is None else max(top, p)
    out["reordered"] = reordered
    out["audio"] = (a_rate, a_ch)
    out["audio_lead_s"] = (round((v_dts[0] - a_first) / 1000, 2)
                           if v_dts and a_first is not None else None)
    return out


def describe_facts(f):
    names = {66: "Baseline", 77: "Main", 100: "High", 110: "High 10", 122: "High 4:2:2",
             244: "High 4:4:4"}
    parts = [names.get(f.get("profile"), f"profile {f.get('profile')}"), f"{f.get('fps')} fps"]
    if f.get("frame_ms"):
        parts.append("frame %d-%d ms" % f["frame_ms"])
    if f.get("keyint_s"):
        parts.append("keyint %.2f-%.2f s" % f["keyint_s"])
    else:
        parts.append(f"{f['keyframes']} keyframe(s)")
    parts.append(f"{f['reordered']} reordered (B)")
    if f["keyframes_not_idr"]:
        parts.append(f"{f['keyframes_not_idr']} keyframe tags without an IDR")
        if f.get("idr_s"):
            parts.append("IDR every %.2f-%.2f s" % f["idr_s"])
    parts.append("%s Hz %s ch" % f["audio"])
    if f.get("audio_lead_s") is not None:
        parts.append(f"audio lead {f['audio_lead_s']:.2f} s")
    return ", ".join(parts)


def check_claims(f, claims):
    """Violations of a case's claims by the facts of its FLV."""
    bad = []
    if "fps" in claims:
        lo, hi = claims["fps"]
        if f.get("fps") is None or not lo <= f["fps"] <= hi:
            bad.append(f"fps {f.get('fps')} not in {lo}-{hi}")
    if "keyint" in claims:
        lo, hi = claims["keyint"]
        ki = f.get("keyint_s")
        if ki is None or ki[0] < lo or ki[1] > hi:
            bad.append(f"keyint {ki} not within {lo}-{hi} s")
    if claims.get("bframes") and f["reordered"] == 0:
        bad.append("no B-frames (no reordered frame)")
    if claims.get("bframes") is False and f["reordered"]:
        bad.append(f"{f['reordered']} reordered frames where none were wanted")
    if "idr" in claims:
        lo, hi = claims["idr"]
        ii = f.get("idr_s")
        if ii is None or ii[0] < lo or ii[1] > hi:
            bad.append(f"IDR interval {ii} not within {lo}-{hi} s")
    if claims.get("open_gop") and not f["keyframes_not_idr"]:
        bad.append("no non-IDR keyframe (open GOP not seen)")
    if claims.get("vfr") and f.get("frame_ms_kinds", 0) < 3:
        bad.append(f"frame durations {f.get('frame_ms')} look constant")
    if "profile" in claims and f.get("profile") != claims["profile"]:
        bad.append(f"H.264 profile_idc {f.get('profile')} != {claims['profile']}")
    if "audio" in claims and tuple(f["audio"]) != tuple(claims["audio"]):
        bad.append(f"audio {f['audio']} != {claims['audio']}")
    if "audio_lead" in claims:
        lo, hi = claims["audio_lead"]
        al = f.get("audio_lead_s")
        if al is None or not lo <= al <= hi:
            bad.append(f"audio lead {al} not in {lo}-{hi} s")
    return bad


# ---------------------------------------------------------------------------
# The cases

class Case:
    kind = "ffmpeg"
    protocol = "rtmp"  # what the publisher comes over (the status must say so)

    def __init__(self, name, config, claims):
        self.name, self.config, self.claims = name, config, claims

    def start(self, url, seconds, work):
        """Starts the publisher; returns its Popen."""
        return spawn(self.cmd(url, seconds, realtime=True), os.path.join(work, "publisher.log"))

    def stop(self, proc, work):
        kill_group(proc, signal.SIGINT, 10)

    def local_file(self, work, seconds=14):
        """Writes the claim-check FLV with the same encoder settings;
        returns its path (None: made during the live run instead)."""
        path = os.path.join(work, "claim.flv")
        p = spawn(self.cmd(path, seconds, realtime=False), os.path.join(work, "claim.log"))
        try:
            p.wait(180)
        except subprocess.TimeoutExpired:
            kill_group(p)
            raise RuntimeError("the claim-check encode did not finish in 180 s")
        if p.returncode != 0:
            with open(os.path.join(work, "claim.log"), errors="replace") as f:
                raise RuntimeError(f"the claim-check encode failed ({p.returncode}): {f.read()[-500:]}")
        return path


class FfmpegCase(Case):
    def __init__(self, name, config, claims, rate=30, video=(), ar=48000, ac=2, vf=None,
                 video_input=(), srt=False):
        super().__init__(name, config, claims)
        self.protocol = "srt" if srt else "rtmp"
        self.rate, self.video, self.ar, self.ac = rate, list(video), ar, ac
        self.vf, self.video_input = vf, list(video_input)

    def cmd(self, out, seconds, realtime):
        re_ = ["-re"] if realtime else []
        c = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "warning", "-y"]
        c += re_ + self.video_input + ["-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate={self.rate}"]
        c += re_ + ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={self.ar}"]
        c += ["-t", str(seconds), "-map", "0:v", "-map", "1:a"]
        if self.vf:
            c += ["-vf", self.vf, "-fps_mode", "vfr"]
        c += ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
              "-b:v", "2500k", "-maxrate", "2500k", "-bufsize", "5000k"] + self.video
        c += ["-c:a", "aac", "-b:a", "128k", "-ar", str(self.ar), "-ac", str(self.ac)]
        # The live publish over SRT is MPEG-TS; the claim-check file is FLV.
        return c + ["-f", "mpegts" if out.startswith("srt://") else "flv", out]


class GstCase(Case):
    kind = "gst"

    def __init__(self, name, config, claims, x264="", fmt="I420"):
        super().__init__(name, config, claims)
        self.x264, self.fmt = x264, fmt

    def cmd(self, out, seconds, realtime):
        sink = (f"rtmp2sink location={out}" if out.startswith("rtmp://")
                else f"filesink location={out}")
        pipeline = (
            f"videotestsrc is-live=true pattern=smpte horizontal-speed=4 num-buffers={seconds * 30} "
            f"! video/x-raw,format={self.fmt},width=1280,height=720,framerate=30/1 ! x264enc {self.x264} "
            f"! h264parse ! queue ! flvmux name=mux streamable=true ! {sink} "
            f"audiotestsrc is-live=true wave=sine num-buffers={int(seconds * 44100 / 1024)} "
            f"! audio/x-raw,rate=44100,channels=2 ! audioconvert ! avenc_aac ! aacparse "
            f"! queue ! mux.")
        return ["gst-launch-1.0", "-q", "-e"] + pipeline.split()


class ObsCase(Case):
    """OBS Studio (Debian's obs-studio) headless under xvfb-run, with a
    profile and scene collection written here: a custom RTMP server, x264,
    one scene holding a media source that loops a file made with ffmpeg.
    It also records (sharing the stream's encoder) into an FLV: the claim
    check reads that."""
    kind = "obs"

    def __init__(self, name, config, claims, advanced=False, srt=False):
        super().__init__(name, config, claims)
        self.advanced = advanced
        self.protocol = "srt" if srt else "rtmp"

    def local_file(self, work, seconds=14):
        return None  # OBS's own recording, made during the live run

    def recording(self, work):
        rec = os.path.join(work, "obs-rec")
        files = sorted(os.listdir(rec)) if os.path.isdir(rec) else []
        return os.path.join(rec, files[-1]) if files else None

    def write_config(self, work, url):
        # SRT: the whole URL (stream id included) is the server and the key
        # field stays empty, as docs/ingest.md tells OBS users; OBS 29 picks
        # its MPEG-TS output (ffmpeg_mpegts_muxer) for an srt:// server.
        server, key = (url, "") if url.startswith("srt://") else url.rsplit("/", 1)
        home = os.path.join(work, "obs-home")
        conf = os.path.join(home, ".config", "obs-studio")
        prof = os.path.join(conf, "basic", "profiles", "interop")
        os.makedirs(prof, exist_ok=True)
        os.makedirs(os.path.join(conf, "basic", "scenes"), exist_ok=True)
        rec = os.path.join(work, "obs-rec")
        os.makedirs(rec, exist_ok=True)
        media = os.path.join(work, "..", "obs-media.mp4")
        if not os.path.exists(media):
            subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
                            "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
                            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                            "-t", "20", "-c:v", "libx264", "-preset", "veryfast",
                            "-pix_fmt", "yuv420p", "-b:v", "4000k", "-c:a", "aac", "-ac", "2",
                            media], check=True, timeout=300)
        media = os.path.abspath(media)
        # FirstRun/LastVersion: no auto-configuration wizard, no "what's new".
        # obs-websocket (29.0 keeps its settings here) on a free port without
        # authentication, only for the script to ask for Stop Streaming; it
        # listens on every interface (it has no bind option), for the run only.
        self.ws_port = free_port()
        with open(os.path.join(conf, "global.ini"), "w") as f:
            f.write("[General]\nFirstRun=true\nLastVersion=486539266\nEnableAutoUpdates=false\n"
                    "Pre19Defaults=false\nPre21Defaults=false\nPre23Defaults=false\n"
                    "Pre24.1Defaults=false\n\n"
                    "[Basic]\nProfile=interop\nProfileDir=interop\nSceneCollection=interop\n"
                    "SceneCollectionFile=interop\nConfigOnNewProfile=false\n\n"
                    "[BasicWindow]\nWarnBeforeStartingStream=false\nWarnBeforeStoppingStream=false\n"
                    "WarnBeforeStoppingRecord=false\nSysTrayEnabled=false\n\n"
                    f"[OBSWebSocket]\nFirstLoad=false\nServerEnabled=true\nServerPort={self.ws_port}\n"
                    "AuthRequired=false\nAlertsEnabled=false\n")
        video = ("[Video]\nBaseCX=1280\nBaseCY=720\nOutputCX=1280\nOutputCY=720\n"
                 "FPSType=0\nFPSCommon=30\n\n[Audio]\nSampleRate=48000\nChannelSetup=Stereo\n")
        with open(os.path.join(prof, "basic.ini"), "w") as f:
            if self.advanced:
                # Advanced output: x264 with the settings in streamEncoder.json;
                # the recording uses the stream's encoder (RecEncoder=none).
                f.write("[General]\nName=interop\n\n[Output]\nMode=Advanced\n\n"
                        f"[AdvOut]\nEncoder=obs_x264\nTrackIndex=1\nRecType=Standard\n"
                        f"RecFilePath={rec}\nRecFormat=flv\nRecEncoder=none\nRecTracks=1\n"
                        f"AudioEncoder=ffmpeg_aac\nRecAudioEncoder=ffmpeg_aac\n\n" + video)
                with open(os.path.join(prof, "streamEncoder.json"), "w") as g:
                    json.dump({"rate_control": "CBR", "bitrate": 2500, "keyint_sec": 2,
                               "preset": "veryfast", "profile": "high", "tune": ""}, g)
            else:
                # Simple output, x264 at OBS's defaults for a custom server
                # (no keyframe interval set: x264's own 250 frames).
                f.write("[General]\nName=interop\n\n[Output]\nMode=Simple\n\n"
                        f"[SimpleOutput]\nStreamEncoder=x264\nVBitrate=2500\nABitrate=160\n"
                        f"Preset=veryfast\nUseAdvanced=false\nFilePath={rec}\nRecFormat=flv\n"
                        f"RecQuality=Stream\n\n" + video)
        with open(os.path.join(prof, "service.json"), "w") as f:
            json.dump({"type": "rtmp_custom",
                       "settings": {"server": server, "key": key, "use_auth": False,
                                    "bwtest": False}}, f)
        scene = {
            "name": "interop", "current_scene": "interop", "current_program_scene": "interop",
            "scene_order": [{"name": "interop"}], "transitions": [],
            "current_transition": "Fade", "transition_duration": 300,
            "sources": [
                {"id": "scene", "versioned_id": "scene", "name": "interop", "enabled": True,
                 "flags": 0, "mixers": 0, "volume": 1.0,
                 "settings": {"custom_size": False, "id_counter": 1, "items": [
                     {"name": "media", "id": 1, "visible": True, "locked": False, "rot": 0.0,
                      "align": 5, "pos": {"x": 0.0, "y": 0.0}, "scale": {"x": 1.0, "y": 1.0},
                      "bounds_type": 0, "bounds_align": 0, "bounds": {"x": 0.0, "y": 0.0},
                      "crop_left": 0, "crop_top": 0, "crop_right": 0, "crop_bottom": 0}]}},
                {"id": "ffmpeg_source", "versioned_id": "ffmpeg_source", "name": "media",
                 "enabled": True, "flags": 0, "mixers": 255, "volume": 1.0, "muted": False,
                 "monitoring_type": 0,
                 "settings": {"is_local_file": True, "local_file": media, "looping": True,
                              "restart_on_activate": True, "close_when_inactive": False,
                              "hw_decode": False}}]}
        with open(os.path.join(conf, "basic", "scenes", "interop.json"), "w") as f:
            json.dump(scene, f)
        return home

    def start(self, url, seconds, work):
        home = self.write_config(work, url)
        env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"),
                   LIBGL_ALWAYS_SOFTWARE="1")
        env.pop("DISPLAY", None)
        env.pop("WAYLAND_DISPLAY", None)
        cmd = ["xvfb-run", "-a", "-s", "-screen 0 1280x1024x24 +extension GLX",
               "obs", "--profile", "interop", "--collection", "interop", "--scene", "interop",
               "--startstreaming", "--startrecording", "--minimize-to-tray", "--multi",
               "--disable-updater", "--disable-missing-files-check"]
        return spawn(cmd, os.path.join(work, "publisher.log"), env=env)

    def stop(self, proc, work):
        """Stop Streaming and Stop Recording through obs-websocket (as a user
        would click), then end the process group. Returns a note."""
        note = "stopped through obs-websocket"
        try:
            ws = ObsWebSocket(self.ws_port)
            try:
                for req, status in (("StopStream", "GetStreamStatus"), ("StopRecord", "GetRecordStatus")):
                    st = ws.request(req).get("requestStatus", {})
                    if not st.get("result"):
                        note += f"; {req}: {st}"
                    # The stop is asynchronous, and a loaded OBS takes seconds
                    # to flush: wait until the output says it is inactive.
                    deadline = time.time() + 30
                    while time.time() < deadline:
                        d = ws.request(status).get("responseData") or {}
                        if not d.get("outputActive", False):
                            break
                        time.sleep(0.5)
                    else:
                        note += f"; {req}: output still active after 30 s"
                time.sleep(1)
            finally:
                ws.close()
        except (OSError, ValueError) as e:
            note = f"obs-websocket failed ({e}); OBS killed"
        kill_group(proc, signal.SIGTERM, 5)
        return note


def cases():
    k2 = ["-g", "60", "-keyint_min", "60", "-sc_threshold", "0"]
    a48 = (48000, 2)
    return [
        ObsCase("obs", "OBS 29 Simple output, x264 veryfast CBR 2500k, keyint auto (at most 250 "
                "frames; scene cuts on), "
                "media source 720p30, AAC 160k 48 kHz stereo",
                {"fps": (29, 31), "keyint": (0.5, 8.4), "audio": a48}),
        ObsCase("obs-srt", "OBS 29 Simple output as obs, over SRT: custom server "
                "srt://HOST:PORT?streamid=KEY, key empty (OBS sends MPEG-TS)",
                {"fps": (29, 31), "keyint": (0.5, 8.4), "audio": a48}, srt=True),
        ObsCase("obs-advanced-keyint-2s", "OBS 29 Advanced output, x264 veryfast CBR 2500k, scene cuts on, "
                "keyint 2 s, profile high", {"fps": (29, 31), "keyint": (0.5, 2.1), "audio": a48},
                advanced=True),
        # x264enc's bframes property reads 0, but an unset property leaves the
        # preset's (medium: 3, adaptive), so no B-frame claim either way.
        # No frame rate or keyframe claim for GStreamer: its live source on a
        # starved machine stamps frames as they come (uneven, some 0 ms apart)
        # and x264enc then makes IDRs well inside key-int-max; the claim
        # check prints what the file holds.
        # I420 as a camera gives it: with no format in the caps videotestsrc
        # hands x264enc 4:4:4 and the stream is High 4:4:4 (the -y444 case).
        GstCase("gst-x264enc-default", "GStreamer videotestsrc 720p30 I420 ! x264enc (no "
                "properties: medium, 2048k, keyint auto) ! flvmux, avenc_aac 44.1 kHz stereo ! rtmp2sink",
                {"audio": (44100, 2), "profile": 100}),
        GstCase("gst-x264enc-default-y444", "as gst-x264enc-default, the caps without a format: "
                "videotestsrc negotiates Y444, x264enc encodes High 4:4:4 Predictive",
                {"audio": (44100, 2), "profile": 244}, fmt="Y444"),
        GstCase("gst-rtmp2sink-x264-zerolatency", "GStreamer x264enc tune=zerolatency "
                "speed-preset=veryfast key-int-max=60 bitrate=2500, avenc_aac 44.1 kHz ! rtmp2sink",
                {"audio": (44100, 2), "bframes": False, "profile": 100},
                x264="tune=zerolatency speed-preset=veryfast key-int-max=60 bitrate=2500"),
        FfmpegCase("ffmpeg-bframes-opengop", "ffmpeg libx264 veryfast -bf 3 open-gop=1, "
                   "no fixed GOP (keyint 250, scenecut on), 720p30",
                   {"fps": (29, 31), "bframes": True, "open_gop": True, "audio": a48},
                   video=["-bf", "3", "-x264-params", "open-gop=1"]),
        FfmpegCase("ffmpeg-srt", "ffmpeg 720p30 GOP 2 s, -f mpegts srt://HOST:PORT?streamid=KEY",
                   {"fps": (29, 31), "keyint": (1.9, 2.1), "audio": a48},
                   video=k2 + ["-bf", "0"], srt=True),
        FfmpegCase("ffmpeg-vfr", "ffmpeg 720p30 with ~25% of frames dropped at random "
                   "(select, -fps_mode vfr), -g 60 frames", {"vfr": True, "audio": a48},
                   video=k2 + ["-bf", "0"], vf="select='gt(random(0)\\,0.25)'"),
        FfmpegCase("ffmpeg-25fps", "ffmpeg 720p25, GOP 2 s (-g 50), no B-frames",
                   {"fps": (24.5, 25.5), "keyint": (1.9, 2.1), "audio": a48},
                   rate=25, video=["-g", "50", "-keyint_min", "50", "-sc_threshold", "0", "-bf", "0"]),
        FfmpegCase("ffmpeg-60fps", "ffmpeg 720p60, GOP 2 s (-g 120), no B-frames",
                   {"fps": (59, 61), "keyint": (1.9, 2.1), "audio": a48},
                   rate=60, video=["-g", "120", "-keyint_min", "120", "-sc_threshold", "0", "-bf", "0"]),
        FfmpegCase("ffmpeg-gop-0.5s", "ffmpeg 720p30, keyframe every 0.5 s (-g 15)",
                   {"fps": (29, 31), "keyint": (0.45, 0.55), "audio": a48},
                   video=["-g", "15", "-keyint_min", "15", "-sc_threshold", "0", "-bf", "0"]),
        FfmpegCase("ffmpeg-gop-6s", "ffmpeg 720p30, keyframe every 6 s (-g 180)",
                   {"fps": (29, 31), "keyint": (5.9, 6.1), "audio": a48},
                   video=["-g", "180", "-keyint_min", "180", "-sc_threshold", "0", "-bf", "0"]),
        FfmpegCase("ffmpeg-44k-mono", "ffmpeg 720p30 GOP 2 s, AAC 44.1 kHz mono",
                   {"fps": (29, 31), "keyint": (1.9, 2.1), "audio": (44100, 1)},
                   ar=44100, ac=1, video=k2 + ["-bf", "0"]),
        FfmpegCase("ffmpeg-audio-first", "ffmpeg 720p30 GOP 2 s, video starts 1.5 s after "
                   "audio (-itsoffset 1.5 on the video input)",
                   {"fps": (29, 31), "keyint": (1.9, 2.1), "audio": a48, "audio_lead": (1.3, 1.7)},
                   video=k2 + ["-bf", "0"], video_input=["-itsoffset", "1.5"]),
    ]


# ---------------------------------------------------------------------------
# One live run

def free_udp_port():
    """A loopback UDP port nothing is bound to (for --srt-listen)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))
        return u.getsockname()[1]


class Sluice:
    def __init__(self, binary, work, busy, srt=False):
        self.rtmp, self.http, self.admin = free_port(), free_port(), free_port()
        self.log_path = os.path.join(work, "sluice.log")
        # SRT off unless the case publishes over it (its default, 0.0.0.0:9000,
        # would be shared by every sluice of the run); a UDP port of its own.
        self.srt = free_udp_port() if srt else None
        cmd = [binary, "--rtmp-listen", f"127.0.0.1:{self.rtmp}",
               "--http-listen", f"127.0.0.1:{self.http}",
               "--admin-listen", f"127.0.0.1:{self.admin}", "--stream", f"demo:{KEY}",
               "--srt-listen", f"127.0.0.1:{self.srt}" if srt else "off"]
        if busy:
            cmd += ["--stream", f"busy:{BUSY_KEY}"]
        # The binary may be replaced under us (the lead rebuilds it): a start
        # that cannot exec it is tried again for up to 60 s.
        deadline = time.time() + 60
        while True:
            try:
                self.proc = spawn(cmd, self.log_path)
                break
            except OSError as e:
                if time.time() > deadline:
                    raise
                print(f"   sluice binary not executable yet ({e}); retrying", flush=True)
                time.sleep(3)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sluice exited at start ({self.proc.returncode}): {self.log()[-800:]}")
            if " ready " in self.log():
                return
            time.sleep(0.1)
        raise RuntimeError("sluice not ready in 20 s")

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def url(self, path):
        return f"http://127.0.0.1:{self.http}/hls/demo/{path}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                kill_group(self.proc, signal.SIGKILL, 1)
                return "killed (did not stop within 20 s of SIGTERM)"
        return f"exit {self.proc.returncode}"


class Run:
    """The shared record of one case's live run, filled by its threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.published = threading.Event()  # the publisher is done: no more stall counting
        self.status = {"polls": 0, "restarts": 0, "reconnects": 0, "renditions": set(),
                       "last_error": None, "dropped_rungs": 0, "preset_steps": 0, "fps": [],
                       "protocols": set()}
        self.hls_checks = 0
        self.hls_violations = collections.Counter()
        self.durations = collections.defaultdict(dict)  # rendition -> {uri: seconds}
        self.target = 0
        self.walker = {"segments": 0, "decoded": 0, "decode_errors": [], "http_errors": 0, "stalls": 0,
                       "dup_ts_segments": 0}


def poll_status(s, run):
    url = f"http://127.0.0.1:{s.admin}/api/v1/streams/demo"
    while not run.stop.wait(2.0):
        code, body = get(url, timeout=5)
        if code != 200:
            continue
        st = json.loads(body)
        with run.lock:
            r = run.status
            r["polls"] += 1
            tr = st.get("transcode") or {}
            r["restarts"] = max(r["restarts"], tr.get("restarts", 0))
            r["reconnects"] = max(r["reconnects"], tr.get("reconnects", 0))
            r["dropped_rungs"] = max(r["dropped_rungs"], tr.get("dropped_rungs", 0))
            r["preset_steps"] = max(r["preset_steps"], tr.get("preset_steps", 0))
            if tr.get("last_error"):
                r["last_error"] = tr["last_error"]
            for rend in st.get("renditions") or []:
                r["renditions"].add(rend["name"])
            if (st.get("ingest") or {}).get("protocol"):
                r["protocols"].add(st["ingest"]["protocol"])
            if (st.get("ingest") or {}).get("fps"):
                r["fps"].append(st["ingest"]["fps"])


def renditions_of(master_text):
    media, variants = parse_master(master_text)
    return [uri for _, uri in variants] + [m["URI"] for m in media if "URI" in m]


def hls_check_once(s, run, final=False):
    """hlscheck on the master, every rendition, and across them."""
    code, body = get(s.url("master.m3u8"))
    if code != 200:
        return
    master = body.decode(errors="replace")
    bad = list(hlscheck.check_master(master))
    # An ended playlist keeps no parts (they go three target durations from
    # the end): the last check takes whatever LL-HLS tags are still there.
    ll = None if final else True
    texts = {}
    for uri in renditions_of(master):
        code, b = get(s.url(uri))
        if code != 200:
            bad.append(f"{uri}: HTTP {code}")
            continue
        texts[uri] = b.decode(errors="replace")
        # An ended playlist keeps no parts: whatever LL-HLS tags are left.
        this_ll = None if "#EXT-X-ENDLIST" in texts[uri] else ll
        bad += [f"{uri.split('/')[0]}: {e}" for e in hlscheck.check_media(texts[uri], ll=this_ll)]
    bad += hlscheck.check_renditions(texts)
    with run.lock:
        run.hls_checks += 1
        for b in bad:
            run.hls_violations[re.sub(r"line \d+", "line N", b)] += 1


def hls_checker(s, run):
    while not run.stop.wait(10.0):
        try:
            hls_check_once(s, run)
        except Exception as e:  # a checker crash is a finding, not a script failure
            with run.lock:
                run.hls_violations[f"checker raised {type(e).__name__}: {e}"] += 1


def walker(s, run, work):
    """The per-rendition player: every new segment of every rendition is
    fetched and decoded (init + segment) by ffmpeg; a rendition without a
    new segment for more than 2 target durations + 1 s counts a stall."""
    seen = collections.defaultdict(set)
    inits = {}
    last_new = {}
    stalled = set()
    ended = set()
    tmp = os.path.join(work, "walker.mp4")
    rends = []
    independent = True
    while not run.stop.wait(1.0):
        # The master again every round: overload protection may drop a rung
        # from it (its playlist goes on with a stand-in's pictures for
        # players that still have it; new ones do not see it).
        code, body = get(s.url("master.m3u8"))
        if code == 200:
            rends = renditions_of(body.decode(errors="replace"))
            # Without EXT-X-INDEPENDENT-SEGMENTS (an open-GOP source copied)
            # a segment may start at a recovery point (see OPEN_GOP_START).
            independent = "#EXT-X-INDEPENDENT-SEGMENTS" in body.decode(errors="replace")
        if not rends:
            continue
        for uri in rends:
            if uri in ended:
                continue
            code, body = get(s.url(uri))
            if code != 200:
                with run.lock:
                    run.walker["http_errors"] += 1
                continue
            text = body.decode(errors="replace")
            pl = parse_media(text)
            td = int(pl["tags"].get("EXT-X-TARGETDURATION", "2") or 2)
            base = uri.rsplit("/", 1)[0]
            # Each segment's init segment: the EXT-X-MAP before it (it
            # changes at a discontinuity: a new configuration, or a dropped
            # rung carrying its stand-in's pictures).
            seg_map, cur_map = {}, None
            for line in text.splitlines():
                m = re.match(r'#EXT-X-MAP:URI="([^"]+)"', line)
                if m:
                    cur_map = m.group(1)
                elif line and not line.startswith("#"):
                    seg_map[line] = cur_map
            for name in set(seg_map.values()) - {None}:
                if (uri, name) not in inits:
                    c, init = get(s.url(f"{base}/{name}"))
                    if c == 200:
                        inits[(uri, name)] = init
            with run.lock:
                run.target = max(run.target, td)
                for seg in pl["segments"]:
                    run.durations[uri][seg["uri"]] = seg["duration"]
                if pl["endlist"] and pl["segments"]:
                    run.durations[uri]["__last__"] = pl["segments"][-1]["uri"]
            now = time.time()
            new = [seg for seg in pl["segments"] if seg["uri"] not in seen[uri]]
            for seg in new:
                seen[uri].add(seg["uri"])
                c, data = get(s.url(f"{base}/{seg['uri']}"))
                if c != 200:
                    with run.lock:
                        run.walker["http_errors"] += 1
                    continue
                with open(tmp, "wb") as f:
                    f.write(inits.get((uri, seg_map.get(seg["uri"])), b"") + data)
                ok, err, dups = decode(tmp, 60, open_gop_start=not independent)
                with run.lock:
                    run.walker["segments"] += 1
                    if dups:
                        run.walker["dup_ts_segments"] += 1
                        if run.walker["dup_ts_segments"] <= 2:
                            shutil.copy(tmp, os.path.join(work, f"dupts-{uri.split('/')[0]}-{seg['uri']}.mp4"))
                    if ok:
                        run.walker["decoded"] += 1
                    else:
                        if len(run.walker["decode_errors"]) < 3:  # kept for a closer look
                            shutil.copy(tmp, os.path.join(work, f"bad-{uri.split('/')[0]}-{seg['uri']}.mp4"))
                        run.walker["decode_errors"].append(f"{uri.split('/')[0]}/{seg['uri']}: {err[-200:]}")
            if new or uri not in last_new:
                last_new[uri] = now
                stalled.discard(uri)
            elif (now - last_new[uri] > 2 * td + 1 and uri not in stalled
                  and not run.published.is_set()):
                stalled.add(uri)
                with run.lock:
                    run.walker["stalls"] += 1
            if pl["endlist"]:
                ended.add(uri)


class FfmpegPlayer:
    """ffmpeg reading the master playlist to -f null; counts its warning and
    error lines, and stalls: its output time not moving for more than
    2 target durations + 1 s (from -progress)."""

    def __init__(self, url, work, run):
        self.errors = collections.Counter()
        self.stalls = 0
        self.out_time = 0
        self.log = os.path.join(work, "player-ffmpeg.log")
        self.proc = spawn(["ffmpeg", "-hide_banner", "-nostdin", "-v", "level+warning", "-progress",
                           "pipe:1", "-nostats", "-i", url, "-f", "null", "-"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.run = run
        threading.Thread(target=self._stderr, daemon=True).start()
        threading.Thread(target=self._progress, daemon=True).start()

    def _stderr(self):
        with open(self.log, "w") as f:
            for line in self.proc.stderr:
                line = line.decode(errors="replace")
                f.write(line)
                level = "error" if "[error]" in line or "[fatal]" in line else "warning"
                msg = re.sub(r"\[(warning|error|fatal)\] ", "", line.strip())
                msg = re.sub(r"^\[[^\]]*\] ", "", msg)
                self.errors[f"{level}: " + re.sub(r"\d+", "N", msg)[:90]] += 1

    def _progress(self):
        last_t, last_move, stalled = None, time.time(), False
        for line in self.proc.stdout:
            line = line.decode(errors="replace").strip()
            if line.startswith("out_time_us="):
                try:
                    t = int(line.split("=")[1])
                except ValueError:
                    continue
                now = time.time()
                thresh = 2 * max(self.run.target, 2) + 1
                if last_t is None or t > last_t:
                    last_t, last_move, stalled = t, now, False
                    self.out_time = t / 1e6
                elif now - last_move > thresh and not stalled and not self.run.published.is_set():
                    stalled = True
                    self.stalls += 1

    def summary(self):
        return {"stalls": self.stalls,
                "errors": sum(n for k, n in self.errors.items() if k.startswith("error")),
                "warnings": sum(n for k, n in self.errors.items() if k.startswith("warning")),
                "kinds": dict(self.errors.most_common(4)), "played_s": round(self.out_time, 1),
                "exit": self.proc.returncode}


class GstPlayer:
    """gst-launch-1.0 playbin3 with fakesinks that keep the clock (sync=true);
    counts ERROR and WARNING messages and stalls (a buffering message under
    100 % after it first played)."""

    def __init__(self, url, work):
        self.errors = collections.Counter()
        self.stalls = 0
        self.rebuffer_s = 0.0
        self.max_pct = 0
        self.playing = False
        self.eos = False
        self.log = os.path.join(work, "player-gst.log")
        self.proc = spawn(["gst-launch-1.0", "-m", "playbin3", f"uri={url}",
                           "video-sink=fakesink sync=true", "audio-sink=fakesink sync=true"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        # Buffering to 100 % the first time is the start; every drop under
        # 100 % after that is a stall, and the time until 100 % again is
        # counted as rebuffering.
        buffering, since = False, None
        with open(self.log, "w") as f:
            for line in self.proc.stdout:
                line = line.decode(errors="replace")
                if "(qos)" not in line and "(state-changed)" not in line:
                    f.write(line)
                m = re.search(r"buffer-percent=\(int\)(\d+)", line)
                if m:
                    pct = int(m.group(1))
                    if not self.eos:
                        self.max_pct = max(self.max_pct, pct)
                    if pct < 100 and self.playing and not buffering:
                        self.stalls += 1
                        since = time.time()
                    if pct >= 100:
                        self.playing = True
                        if since is not None:
                            self.rebuffer_s += time.time() - since
                            since = None
                    buffering = pct < 100
                if "Got EOS" in line:
                    self.eos = True
                for kind in ("ERROR", "WARNING"):
                    if line.startswith(kind) or f"({kind.lower()})" in line:
                        msg = re.sub(r"\d+", "N", line.strip())[:110]
                        self.errors[msg if msg.startswith(kind) else f"{kind}: {msg}"] += 1

    def summary(self):
        return {"stalls": self.stalls, "rebuffer_s": round(self.rebuffer_s, 1),
                "errors": sum(n for k, n in self.errors.items() if k.startswith("ERROR")),
                "warnings": sum(n for k, n in self.errors.items() if not k.startswith("ERROR")),
                "kinds": dict(self.errors.most_common(4)), "eos": self.eos,
                "played": self.playing, "max_buffer_pct": self.max_pct,
                "exit": self.proc.returncode}


def log_kinds(text):
    """sluice warn/error lines counted by kind (numbers, addresses and
    session ids taken out); the busy stream's are marked."""
    kinds = collections.Counter()
    for line in text.splitlines():
        m = re.match(r"^\S+\s+(warn|error)\s+(.*)$", line)
        if not m:
            continue
        msg = m.group(2)
        busy = "stream=busy" in msg
        msg = re.sub(r"^(rtmp#\d+ )?(\S+:\d+ )?(stream=\S+: )?", "", msg)
        msg = re.sub(r"\d+(\.\d+)?", "N", msg)[:100]
        kinds[f"{m.group(1)}{' [busy]' if busy else ''}: {msg}"] += 1
    return kinds


DUP_TS = "non monotonically increasing dts to muxer"


def split_decode_errors(stderr):
    """ffmpeg -v error output -> (decoder/demuxer error lines, repeated-timestamp
    count). The null muxer's "non monotonically increasing dts" means two
    decoded pictures with the same (or a going-back) timestamp: the pictures
    decoded, their timing is wrong. Counted apart ("Last message repeated N
    times" included)."""
    errors, dups, last_dup = [], 0, False
    for line in stderr.splitlines():
        m = re.match(r"\s*Last message repeated (\d+) times", line)
        if m:
            if last_dup:
                dups += int(m.group(1))
            else:
                errors.append(line.strip())
            continue
        last_dup = DUP_TS in line
        if last_dup:
            dups += 1
        elif line.strip():
            errors.append(line.strip())
    return errors, dups


# What an H.264 decoder says when it starts at an open-GOP recovery point:
# the leading B-frames refer to pictures before the file. Expected when a
# segment of a rendition whose master leaves out EXT-X-INDEPENDENT-SEGMENTS
# is decoded alone (a player decoding on from the segment before does not
# meet it; the whole-rendition decode still judges that).
OPEN_GOP_START = re.compile(r"mmco: unref short failure|reference picture missing during reorder"
                            r"|Missing reference picture|co located POCs unavailable")


def dup_lines(url, keep=3):
    """The first repeated-timestamp lines of a whole rendition's decode, with
    the pictures' pts (-debug_ts is too much; showinfo is per picture)."""
    try:
        out = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-i", url, "-vf", "showinfo",
                              "-f", "null", "-"], capture_output=True, timeout=120)
    except subprocess.TimeoutExpired:
        return ["timed out"]
    lines, last_pts = [], None
    for line in out.stderr.decode(errors="replace").splitlines():
        m = re.search(r"n:\s*(\d+) pts:\s*(-?\d+) pts_time:(\S+)", line)
        if m:
            last_pts = f"picture {m.group(1)} at {m.group(3)} s"
        elif DUP_TS in line and len(lines) < keep:
            lines.append(f"{line.split('] ', 1)[-1].strip()} (after {last_pts})")
    return lines or ["not seen again"]


def decode(path_or_url, timeout, open_gop_start=False):
    """(decoded without a decoder error, error text, repeated timestamps)."""
    try:
        out = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", path_or_url,
                              "-f", "null", "-"], capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout} s", 0
    errors, dups = split_decode_errors(out.stderr.decode(errors="replace"))
    if open_gop_start:
        errors = [e for e in errors if not OPEN_GOP_START.search(e)]
    return out.returncode == 0 and not errors, "\n".join(errors)[-300:], dups


def run_case(case, args, work):
    os.makedirs(work, exist_ok=True)
    row = {"name": case.name, "config": case.config, "notes": []}
    t0 = time.time()

    # 1. The claim check, on a local file made with the same settings.
    claim_path = None
    try:
        claim_path = case.local_file(work)
    except Exception as e:
        row["claim"] = f"local encode failed: {e}"
    if claim_path:
        f = flv_facts(claim_path)
        bad = check_claims(f, case.claims)
        row["claim"] = ("ok: " if not bad else "MISMATCH (" + "; ".join(bad) + "): ") + describe_facts(f)

    # 2. sluice, the busy stream, the publisher.
    s = Sluice(args.sluice, work, args.busy, srt=case.protocol == "srt")
    run = Run()
    threads, busy, pub = [], None, None
    players = []
    try:
        if args.busy:
            busy = spawn(FfmpegCase("busy", "", {}, video=["-g", "60", "-bf", "0"]).cmd(
                f"rtmp://127.0.0.1:{s.rtmp}/live/{BUSY_KEY}", args.seconds + 120, True),
                os.path.join(work, "busy.log"))
        url = (f"srt://127.0.0.1:{s.srt}?streamid={KEY}" if case.protocol == "srt"
               else f"rtmp://127.0.0.1:{s.rtmp}/live/{KEY}")
        pub = case.start(url, args.seconds, work)
        pub_start = time.time()
        for fn, a in ((poll_status, (s, run)), (hls_checker, (s, run)), (walker, (s, run, work))):
            th = threading.Thread(target=fn, args=a, daemon=True)
            th.start()
            threads.append(th)
        # Players start once the master playlist is there (sluice serves it
        # once every rendition has segments: with long GOPs that takes a while).
        deadline = time.time() + args.seconds + 30
        while time.time() < deadline and get(s.url("master.m3u8"))[0] != 200:
            if pub.poll() is not None:
                break
            time.sleep(0.5)
        if get(s.url("master.m3u8"))[0] == 200:
            players = [FfmpegPlayer(s.url("master.m3u8"), work, run), GstPlayer(s.url("master.m3u8"), work)]
            row["first_playlist_s"] = round(time.time() - pub_start, 1)
        else:
            row["notes"].append("no master playlist during the publish: players not started")
        # 3. The publish runs its course.
        if case.kind == "obs":
            while time.time() - pub_start < args.seconds and pub.poll() is None:
                time.sleep(0.5)
            if pub.poll() is not None:
                row["notes"].append(f"OBS exited by itself ({pub.returncode}) after "
                                    f"{time.time() - pub_start:.0f} s")
            row["notes"].append(case.stop(pub, work))
        else:
            try:
                pub.wait(args.seconds + 60)
            except subprocess.TimeoutExpired:
                row["notes"].append("publisher still running 60 s after its end; stopped")
                case.stop(pub, work)
            if pub.returncode not in (0, None):
                row["notes"].append(f"publisher exit {pub.returncode}")
        row["published_s"] = round(time.time() - pub_start, 1)
        run.published.set()
        if busy:
            kill_group(busy, signal.SIGINT, 5)
        # 4. The end: every rendition ends (EXT-X-ENDLIST), the players finish.
        rends = []
        # 60 s: a publisher that drops instead of unpublishing leaves the
        # stream waiting --reconnect-window (30 s) before it ends.
        deadline = time.time() + 60
        while time.time() < deadline:
            # The master again each time: a rung that overload protection
            # dropped leaves it (and its playlist goes).
            code, body = get(s.url("master.m3u8"))
            if code == 200:
                rends = renditions_of(body.decode(errors="replace"))
            if rends and all(get(s.url(u))[0] == 200 and b"#EXT-X-ENDLIST" in get(s.url(u))[1]
                             for u in rends):
                break
            time.sleep(1)
        else:
            row["notes"].append("not every rendition had EXT-X-ENDLIST 60 s after the publish")
        for p in players:
            try:
                p.proc.wait(30)
            except subprocess.TimeoutExpired:
                kill_group(p.proc, signal.SIGINT, 5)
        time.sleep(2)  # the walker's last round
        run.stop.set()
        for th in threads:
            th.join(70)
        hls_check_once(s, run, final=True)
        # 5. Every rendition decoded whole (the ended playlist's window).
        decoded, failures, dup = [], [], {}
        for u in rends:
            ok, err, dups = decode(s.url(u), 120)
            (decoded if ok else failures).append(u.split("/")[0])
            if not ok:
                row["notes"].append(f"decode {u}: {err}")
            if dups:
                dup[u.split("/")[0]] = dups
                # Where: the null muxer's line names the two timestamps.
                row["notes"].append(f"repeated timestamps in {u}: " + "; ".join(dup_lines(s.url(u))))
        row["decoded"] = f"{len(decoded)}/{len(rends)}" + (f" (failed: {', '.join(failures)})" if failures else "")
        if dup:
            row["decoded"] += "; repeated timestamps: " + ", ".join(f"{k} {n}" for k, n in dup.items())
        row["dup_ts"] = dup
        row["decode_ok"] = bool(rends) and not failures
        row["rendition_names"] = [u.split("/")[0] for u in rends]
    finally:
        run.stop.set()
        for p in [pub, busy] + [pl.proc for pl in players]:
            if p is not None:
                kill_group(p, signal.SIGTERM, 3)
        row["sluice_exit"] = s.stop()
        if claim_path is None and case.kind == "obs":
            rec = case.recording(work)
            if rec:
                try:
                    f = flv_facts(rec)
                    bad = check_claims(f, case.claims)
                    row["claim"] = (("ok: " if not bad else "MISMATCH (" + "; ".join(bad) + "): ")
                                    + describe_facts(f) + " (OBS's recording)")
                except Exception as e:
                    row["claim"] = f"OBS recording unreadable: {e}"
            else:
                row["claim"] = "no OBS recording"
    log = s.log()
    with run.lock:
        st = run.status
        row["restarts"] = st["restarts"]
        row["reconnects"] = st["reconnects"]
        row["last_error"] = st["last_error"]
        row["status_polls"] = st["polls"]
        row["status_renditions"] = sorted(st["renditions"])
        row["overload"] = f"preset steps {st['preset_steps']}, dropped rungs {st['dropped_rungs']}"
        row["ingest_fps"] = (min(st["fps"]), max(st["fps"])) if st["fps"] else None
        row["ingest_protocols"] = sorted(st["protocols"])
        row["hls_checks"] = run.hls_checks
        row["hls_violations"] = dict(run.hls_violations)
        durs = []
        audio_durs = []
        for uri, d in run.durations.items():
            last = d.get("__last__")
            vals = [v for k, v in d.items() if k not in ("__last__", last)]
            (audio_durs if uri.startswith("audio") else durs).extend(vals)
        row["seg_video"] = (min(durs), max(durs)) if durs else None
        row["seg_audio"] = (min(audio_durs), max(audio_durs)) if audio_durs else None
        row["target"] = run.target
        row["walker"] = dict(run.walker)
    row["restart_lines"] = [l for l in log.splitlines()
                            if re.search(r"restart|worker failed", l) and " info " not in l][:6]
    row["log_kinds"] = dict(log_kinds(log))
    row["publish_lines"] = []
    for l in log.splitlines():
        if "stream=demo" in l and re.search(
                r"metadata:|video config|audio config|ladder for|packaging started|publish ended", l):
            l = l.split(" ", 1)[1]
            if l not in row["publish_lines"]:  # flvmux repeats onMetaData every few seconds
                row["publish_lines"].append(l)
    row["players"] = {"ffmpeg": players[0].summary() if players else None,
                      "gst": players[1].summary() if len(players) > 1 else None}
    row["seconds"] = round(time.time() - t0)
    why = []
    if row["restarts"]:
        why.append(f"{row['restarts']} worker restarts")
    if row["hls_violations"]:
        why.append(f"hlscheck: {row['hls_violations'][:3]}")
    if not row.get("decode_ok", False):
        why.append("a rendition did not decode whole")
    if row["walker"]["decode_errors"]:
        why.append(f"segments that did not decode: {row['walker']['decode_errors'][:3]}")
    if not row["claim"].startswith("ok"):
        why.append(f"claim check: {row['claim']}")
    if row["hls_checks"] == 0:
        why.append("no playlist checked")
    if row["ingest_protocols"] != [case.protocol]:
        why.append(f"the status said ingest.protocol {row['ingest_protocols']}, not {case.protocol!r}")
    row["why"] = why
    row["pass"] = not why
    row["timestamps_ok"] = not row.get("dup_ts") and not row["walker"]["dup_ts_segments"]
    return row


# ---------------------------------------------------------------------------
# Report

def fmt_range(r, target=None):
    if not r:
        return "-"
    s = f"{r[0]:.2f}-{r[1]:.2f}"
    return s


def player_cell(p):
    if not p:
        return "not started"
    s = f"{p['stalls']} stall"
    if p.get("rebuffer_s"):
        s += f" ({p['rebuffer_s']:.0f} s)"
    s += f" / {p['errors']} err / {p['warnings']} warn"
    if "eos" in p:
        s += ", EOS" if p["eos"] else ", no EOS"
    return s


def table(rows):
    out = ["| case | encoder config | claim check | restarts | hlscheck | renditions decoded | "
           "segment s video (audio), target 2 | sluice warn/error | players: ffmpeg master; gst "
           "playbin3; per-rendition | result |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['name']} | {r.get('config', '')} | - | - | - | - | - | - | - | "
                       f"ERROR: {r['error']} |")
            continue
        viol = sum(r["hls_violations"].values())
        hls = f"{r['hls_checks']} checks, " + ("0 violations" if not viol else f"**{viol} violations**")
        kinds = r["log_kinds"]
        lk = "; ".join(f"{k} x{n}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:4]) or "none"
        if len(kinds) > 4:
            lk += f"; +{len(kinds) - 4} kinds"
        w = r["walker"]
        players = (f"{player_cell(r['players']['ffmpeg'])}; {player_cell(r['players']['gst'])}; "
                   f"{w['stalls']} stall / {len(w['decode_errors']) + w['http_errors']} err "
                   f"({w['decoded']}/{w['segments']} seg decoded"
                   + (f", {w['dup_ts_segments']} with repeated timestamps" if w["dup_ts_segments"] else "")
                   + ")")
        seg = (f"{fmt_range(r['seg_video'])} ({fmt_range(r['seg_audio'])}), "
               f"TARGETDURATION {r['target']}")
        claim = r["claim"].replace("|", "/")
        restarts = str(r["restarts"]) if r["restarts"] == 0 else f"**{r['restarts']}**"
        if r["reconnects"]:
            restarts += f" ({r['reconnects']} reconnects)"
        decoded = r["decoded"]
        if "dropped rungs 0" not in r["overload"]:
            decoded += f" ({r['overload'].split(', ')[1]} by overload protection)"
        out.append(f"| {r['name']} | {r['config']} | {claim} | {restarts} | {hls} | "
                   f"{decoded} | {seg} | {lk.replace('|', '/')} | {players} | "
                   f"{('PASS' if r['timestamps_ok'] else 'PASS, **repeated timestamps**') if r['pass'] else '**FAIL**'} |")
    return "\n".join(out)


def details(r):
    out = [f"### {r['name']}", ""]
    if "error" in r:
        return "\n".join(out + [f"script error: {r['error']}", ""])
    out.append(f"- {r['config']}; {r['seconds']} s for the case, published {r.get('published_s')} s, "
               f"first playlist after {r.get('first_playlist_s')} s")
    out.append(f"- claim check: {r['claim']}")
    out.append(f"- status API: {r['status_polls']} polls, restarts {r['restarts']}, reconnects "
               f"{r['reconnects']}, renditions {r['status_renditions']}, {r['overload']}, ingest "
               f"{'/'.join(r.get('ingest_protocols') or ['?'])} fps {r['ingest_fps']}, "
               f"last_error {r['last_error']!r}")
    out.append(f"- sluice: {r['sluice_exit']}")
    for l in r["publish_lines"]:
        out.append(f"  - `{l}`")
    for k, n in sorted(r["log_kinds"].items(), key=lambda kv: -kv[1]):
        out.append(f"- log x{n}: `{k}`")
    for l in r["restart_lines"]:
        out.append(f"- restart line: `{l}`")
    for k, n in r["hls_violations"].items():
        out.append(f"- hlscheck x{n}: {k}")
    for name, p in r["players"].items():
        out.append(f"- player {name}: {p}")
    w = r["walker"]
    out.append(f"- per-rendition player: {w['decoded']}/{w['segments']} segments decoded, "
               f"{w['http_errors']} HTTP errors, {w['stalls']} stalls")
    for e in w["decode_errors"][:5]:
        out.append(f"  - decode error: {e}")
    for n in r["notes"]:
        out.append(f"- note: {n}")
    return "\n".join(out + [""])


def commit_of(path):
    d = os.path.dirname(os.path.abspath(path))
    for cand in (d, os.path.dirname(d)):
        try:
            c = subprocess.run(["git", "-C", cand, "rev-parse", "--short=12", "HEAD"],
                               capture_output=True, timeout=10, text=True)
            if c.returncode == 0:
                dirty = subprocess.run(["git", "-C", cand, "status", "--porcelain", "-uno"],
                                       capture_output=True, timeout=10, text=True).stdout.strip()
                return c.stdout.strip() + ("-dirty" if dirty else "")
        except Exception:
            pass
    return "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=60, help="publish time per case (default 60)")
    ap.add_argument("--only", action="append", default=[],
                    help="run only these cases (repeatable, or comma separated)")
    ap.add_argument("--no-busy", dest="busy", action="store_false",
                    help="no second (busy) stream beside the case's")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--out", help="results directory (default build/interop/DATE)")
    ap.add_argument("--sluice", default=os.environ.get("SLUICE_BIN", os.path.join(ROOT, "build", "sluice")))
    args = ap.parse_args()
    all_cases = cases()
    if args.list:
        for c in all_cases:
            print(f"{c.name:34} {c.config}")
        return 0
    only = {n for o in args.only for n in o.split(",") if n}
    unknown = only - {c.name for c in all_cases}
    if unknown:
        ap.error(f"unknown case(s): {', '.join(sorted(unknown))} (see --list)")
    todo = [c for c in all_cases if not only or c.name in only]
    if not os.access(args.sluice, os.X_OK):
        ap.error(f"no sluice binary at {args.sluice} (set SLUICE_BIN)")
    need = ["ffmpeg", "ffprobe", "gst-launch-1.0"] + (["obs", "xvfb-run"] if any(c.kind == "obs" for c in todo) else [])
    missing = [t for t in need if not shutil.which(t)]
    if missing:
        ap.error("missing tools: " + ", ".join(missing) + " (see tests/interop/README.md)")

    signal.signal(signal.SIGTERM, _on_sigterm)
    stamp = datetime.datetime.now(datetime.timezone.utc)
    out_dir = args.out or os.path.join(ROOT, "build", "interop", stamp.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(out_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="sluice-interop-")
    # One binary for the whole matrix: a copy, so that a rebuild of
    # SLUICE_BIN during the run (another engineer's) cannot mix binaries.
    original = args.sluice
    args.sluice = os.path.join(work, "sluice")
    shutil.copy2(original, args.sluice)
    version = subprocess.run([args.sluice, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    import hashlib
    with open(args.sluice, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    built = datetime.datetime.fromtimestamp(os.path.getmtime(original), datetime.timezone.utc)
    head = (f"## sluice encoder matrix, {stamp.strftime('%Y-%m-%d %H:%M UTC')}\n\n"
            f"sluice `{original}` ({version}, source tree at commit {commit_of(original)}, "
            f"binary built {built.strftime('%H:%M UTC')}, sha256 {digest}); tests at commit "
            f"{commit_of(__file__)}; {args.seconds} s per publish; busy stream "
            f"{'on (a second 720p30 ladder)' if args.busy else 'off'}; {os.cpu_count()} cores, "
            f"load average at start {os.getloadavg()[0]:.2f}\n")
    print(head, flush=True)
    rows = []
    t_all = time.time()
    try:
        for c in todo:
            print(f"-- {c.name}: {c.config}", flush=True)
            try:
                row = run_case(c, args, os.path.join(work, c.name))
            except KeyboardInterrupt:
                raise
            except Exception as e:
                row = {"name": c.name, "config": c.config, "error": f"{type(e).__name__}: {e}"}
            rows.append(row)
            case_dir = os.path.join(work, c.name)
            dst = os.path.join(out_dir, c.name)
            os.makedirs(dst, exist_ok=True)
            for fn in ("sluice.log", "publisher.log", "player-ffmpeg.log", "player-gst.log", "claim.log"):
                if os.path.exists(os.path.join(case_dir, fn)):
                    shutil.copy(os.path.join(case_dir, fn), dst)
            for fn in os.listdir(case_dir) if os.path.isdir(case_dir) else []:
                if fn.startswith(("bad-", "dupts-")) or fn == "claim.flv":  # undecodable segments, the claim file
                    shutil.copy(os.path.join(case_dir, fn), dst)
            obs_logs = os.path.join(case_dir, "obs-home", ".config", "obs-studio", "logs")
            if os.path.isdir(obs_logs):
                shutil.copytree(obs_logs, os.path.join(dst, "obs-logs"), dirs_exist_ok=True)
            print(("   PASS" if row.get("pass") else "   FAIL") + f" ({row.get('seconds', '?')} s)"
                  + ("" if row.get("pass") else
                     f": {row.get('error') or '; '.join(row.get('why') or []) or row.get('notes') or ''}"),
                  flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", flush=True)
    finally:
        cleanup_all()
        shutil.rmtree(work, ignore_errors=True)
    total = time.time() - t_all
    report = (head + f"\ntotal run time {total / 60:.1f} min, load average at the end "
              f"{os.getloadavg()[0]:.2f}\n\n" + table(rows) + "\n\n## Details\n\n"
              + "\n".join(details(r) for r in rows))
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write(report)
    with open(os.path.join(out_dir, "rows.json"), "w") as f:
        json.dump(rows, f, indent=1, default=list)
    print()
    print(report)
    print(f"results and logs: {out_dir}")
    return 0 if rows and all(r.get("pass") for r in rows) and len(rows) == len(todo) else 1


if __name__ == "__main__":
    sys.exit(main())
