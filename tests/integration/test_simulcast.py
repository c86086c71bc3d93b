"""Simulcast (docs/simulcast.md): one sluice
sends one live stream to three real third-party receivers at once, and
keeps doing so through their faults.

- nginx with Debian's libnginx-mod-rtmp (record all) gets the `source`;
- a second sluice gets the 360p rung (transcoded) over RTMPS, with a
  self-signed certificate (destinations are not verified);
- ffmpeg as an SRT listener gets the 480p rung (the source copied) as
  MPEG-TS.

Faults: nginx is down when the stream starts (retrying, the playlists are
fine), comes up (live within a few seconds), is killed mid-stream (the
others go on) and comes back (a new recording). The RTMPS receiver is
stopped with SIGSTOP for a few seconds: the origin keeps publishing its
parts on schedule (the longest gap between two new parts, with and without
the stop, is printed and bounded). Then the publisher drops and another
joins within the reconnect window: the outputs stay and their timestamps
go on. Under --rungs on-demand nobody but the RTMPS output asks for 360p,
which keeps it encoding. Webhooks come once per connection and once per
outage. The destinations' keys never show in sluice's log, the API,
/metrics or a webhook."""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from harness import Sluice, free_port, http, publish, wait_for
from test_ingest import make_cert
from test_webhook import Hook

KEY = "demo-secret-key"
NGX_KEY = "ngx-dest-secret"
RELAY_KEY = "relay-dest-secret"
SRT_KEY = "srt-dest-secret"
SECRETS = (NGX_KEY, RELAY_KEY, SRT_KEY)


def start_nginx_rtmp(ngx, port):
    """nginx-rtmp recording every publish into ngx/rec (a new file each); one
    process (no master), so that a SIGKILL takes its connections down."""
    os.makedirs(os.path.join(ngx, "rec"), exist_ok=True)
    user = "user root;" if os.geteuid() == 0 else ""
    conf = f"""{user}
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
master_process off;
daemon off;
pid {ngx}/nginx.pid;
error_log {ngx}/error.log info;
events {{ worker_connections 64; }}
rtmp {{ server {{ listen 127.0.0.1:{port};
  application live {{ live on; record all; record_path {ngx}/rec; record_unique on; }} }} }}
"""
    path = os.path.join(ngx, "nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    args = ["nginx", "-p", ngx, "-e", os.path.join(ngx, "error.log"), "-c", path]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_proc(p, sig=signal.SIGTERM):
    if p is not None and p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def decode_errors(path):
    r = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "null", "-"],
                       capture_output=True, timeout=60)
    return r.returncode, r.stderr.decode(errors="replace")


def ffprobe_size(path):
    r = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries",
                        "stream=width,height", "-of", "csv=p=0", path],
                       capture_output=True, timeout=30, check=True)
    w, h = r.stdout.decode().strip().split(",")[:2]
    return int(w), int(h)


def video_dts(path):
    r = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries",
                        "packet=dts_time", "-of", "csv=p=0", path],
                       capture_output=True, timeout=60, check=True)
    vals = (line.split(",")[0].strip() for line in r.stdout.decode().splitlines())
    return [float(x) for x in vals if x not in ("", "N/A")]


class PartClock:
    """Polls a media playlist and notes when each new part appears."""

    def __init__(self, url):
        self.url, self.seen, self.times = url, set(), []

    def poll_for(self, seconds):
        """Polls for `seconds`; returns the longest gap between new parts."""
        start = time.time()
        first = None
        gap = 0.0
        last = None
        while time.time() - start < seconds:
            s, _, body = http(self.url, timeout=5)
            now = time.time()
            if s == 200:
                for line in body.decode().splitlines():
                    if line.startswith("#EXT-X-PART:"):
                        uri = line.split('URI="', 1)[1].split('"', 1)[0]
                        if uri not in self.seen:
                            self.seen.add(uri)
                            if last is not None:
                                gap = max(gap, now - last)
                            last = now
                            first = first or now
            time.sleep(0.05)
        if last is not None:
            gap = max(gap, time.time() - last)
        return gap


class SimulcastTest(unittest.TestCase):

    def test_three_receivers_and_their_faults(self):
        t_start = time.time()
        marks = []

        def mark(what):
            marks.append(f"{what} {time.time() - t_start:.1f}")
        run_dir = tempfile.mkdtemp(prefix="sluice-simulcast-")
        self.addCleanup(shutil.rmtree, run_dir, True)
        cert, key = make_cert(run_dir, "relay.test")
        tls_port, ngx_port, srt_port = free_port(), free_port(), free_port()
        ngx_dir = os.path.join(run_dir, "nginx")
        ts_path = os.path.join(run_dir, "srt.ts")

        relay = Sluice("--rtmps-listen", f"127.0.0.1:{tls_port}", "--tls-cert", cert,
                       "--tls-key", key, "--preset", "ultrafast", "--segment-duration", "1",
                       "--overload-protection", "off", streams=(("relay", RELAY_KEY),))
        a = srt = pub = nginx = None
        hook = Hook(lambda r: (200, b"", 0))
        self.addCleanup(hook.close)
        try:
            # A short reconnect window, for the publisher's drop and return.
            # Rungs on demand with a 3 s idle time: nobody watches 360p (the
            # test reads 480p), so only the RTMPS output keeps it encoding.
            a = Sluice("--ladder", "480p,360p", "--preset", "ultrafast", "--segment-duration", "1",
                       "--rungs", "on-demand", "--debug-rung-idle", "3",
                       "--overload-protection", "off", "--reconnect-window", "4",
                       "--webhook-url", hook.url)
            srt = subprocess.Popen(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
                                    "-f", "mpegts", "-i", f"srt://127.0.0.1:{srt_port}?mode=listener",
                                    "-c", "copy", ts_path],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            outputs = {}
            for name, url, rendition in (
                    ("nginx", f"rtmp://127.0.0.1:{ngx_port}/live/{NGX_KEY}", "source"),
                    ("relay", f"rtmps://127.0.0.1:{tls_port}/live/{RELAY_KEY}", "360p"),
                    ("srt", f"srt://127.0.0.1:{srt_port}?streamid={SRT_KEY}", "480p"),
                    # Not in this broadcast's ladder: failed, with the reason.
                    ("720p", f"rtmp://127.0.0.1:{ngx_port}/live/{NGX_KEY}720", "720p")):
                s, _, body = http_json(a.admin_url("/api/v1/streams/demo/outputs"), "POST",
                                       {"url": url, "rendition": rendition})
                self.assertEqual(s, 201, body)
                outputs[name] = json.loads(body)["id"]

            def state(name):
                s, _, body = http(a.admin_url(f"/api/v1/streams/demo/outputs/{outputs[name]}"))
                self.assertEqual(s, 200, body)
                return json.loads(body)

            pub = publish(a.rtmp_url(KEY), seconds=40, size="854x480", rate=15, gop=15)
            clock = PartClock(a.url("/hls/demo/480p/index.m3u8"))
            wait_for(lambda: len(parts(a, "480p")) >= 3, 20, "parts of the 480p rung")
            mark("parts")
            wait_for(lambda: state("relay")["state"] == "live" and state("srt")["state"] == "live",
                     10, "the RTMPS and SRT outputs live")

            o = wait_for(lambda: (lambda o: o if o["state"] == "failed" else None)(state("720p")),
                         5, "the 720p output failed")
            self.assertIn("not in this broadcast's ladder (480p, 360p)", o["last_error"])
            # nginx is down: retrying with a reason, the stream itself is fine.
            o = wait_for(lambda: (lambda o: o if o["state"] == "retrying" else None)(state("nginx")),
                         10, "the nginx output retrying")
            self.assertIn("cannot connect", o["last_error"])
            self.assertIn("****", o["last_error"])
            normal_gap = clock.poll_for(1.5)

            # nginx comes up: live within a few seconds.
            mark("nginx up")
            nginx = start_nginx_rtmp(ngx_dir, ngx_port)
            t_up = time.time()
            wait_for(lambda: state("nginx")["state"] == "live", 15, "the nginx output live")
            up_after = time.time() - t_up
            clock.poll_for(0.5)
            # A change while live: the failed 720p output is moved to 360p
            # (through the API; the engine follows within ~2 s).
            st, _, body = http_json(a.admin_url(f"/api/v1/streams/demo/outputs/{outputs['720p']}"),
                                    "PATCH", {"rendition": "360p"})
            self.assertEqual(st, 200, body)

            # nginx killed and the RTMPS receiver stopped at once: the origin's
            # parts keep coming, the SRT output stays live; nginx comes back
            # (a new recording) while the receiver is still stopped.
            mark("nginx killed")
            stop_proc(nginx, signal.SIGKILL)
            relay.proc.send_signal(signal.SIGSTOP)
            try:
                dropped_before = state("nginx")["dropped_packets"]
                stopped_gap = clock.poll_for(2.0)
                o = state("nginx")
                self.assertEqual(o["state"], "retrying")
                # What it could not send while its destination was gone is
                # counted, not kept.
                self.assertGreater(o["dropped_packets"], dropped_before, o)
                self.assertEqual(state("srt")["state"], "live")
                mark("nginx back")
                nginx = start_nginx_rtmp(ngx_dir, ngx_port)
                stopped_gap = max(stopped_gap, clock.poll_for(1.5))
            finally:
                relay.proc.send_signal(signal.SIGCONT)
            wait_for(lambda: state("nginx")["state"] == "live", 15, "the nginx output back")
            # The publisher drops and a new one (its clock from 0 again) joins
            # within the reconnect window: the outputs stay connected and
            # their timestamps go on (checked in the recordings below).
            pub.kill()
            pub.communicate()
            pub = publish(a.rtmp_url(KEY), seconds=40, size="854x480", rate=15, gop=15)
            wait_for(lambda: "a publisher is back" in a.log(), 10, "the publisher back")
            mark("rejoined")
            relay_pl = relay.url("/hls/relay/360p/index.m3u8")
            before = media_seq(relay_pl)
            clock.poll_for(2.0)
            wait_for(lambda: state("720p")["state"] == "live", 12, "the patched output live")
            st, _, body = http_json(a.admin_url(f"/api/v1/streams/demo/outputs/{outputs['720p']}"),
                                    "DELETE", None)
            self.assertEqual(st, 204, body)
            self.assertGreater(media_seq(relay_pl), before, "the relay's playlist advances")
            for name in ("relay", "srt"):
                o = state(name)
                self.assertEqual(o["state"], "live", o)
                self.assertGreater(o["bytes"], 100000, o)
                self.assertEqual(o["retries"], 0, o)
            self.assertGreater(state("nginx")["retries"], 1)

            print(f"\nsimulcast: nginx live {up_after:.1f} s after it came up; longest gap "
                  f"between new parts: {normal_gap:.2f} s normally, {stopped_gap:.2f} s with the "
                  f"RTMPS receiver stopped and nginx killed")
            self.assertLess(stopped_gap, max(1.2, 2 * normal_gap + 0.3),
                            "a stopped receiver delays the origin's parts")

            # The metrics say the same as the API, per output.
            metrics = http(a.admin_url("/metrics"))[2].decode()
            for name, up in (("relay", 1), ("srt", 1)):
                m = re.search(r'^sluice_output_up\{[^}]*output="%s"[^}]*\} (\d+)$' % outputs[name],
                              metrics, re.M)
                self.assertTrue(m, f"no sluice_output_up for {name}")
                self.assertEqual(int(m.group(1)), up, name)
                m = re.search(r'^sluice_output_bytes_total\{[^}]*output="%s"[^}]*\} (\d+)$'
                              % outputs[name], metrics, re.M)
                self.assertTrue(m and int(m.group(1)) > 100000, f"sluice_output_bytes_total of {name}")
            # Secrets: never in the API, /metrics or the log.
            for path in ("/api/v1/streams/demo/outputs", "/api/v1/streams", "/metrics"):
                body = http(a.admin_url(path))[2].decode()
                for secret in SECRETS:
                    self.assertNotIn(secret, body, path)

            mark("new size")
            # Another return, at a new size: the source's outputs reconnect with
            # a new header (nginx: a third recording, 640x360), which is not an
            # outage. Its publish ends by itself: every output flushes and
            # closes.
            pub.kill()
            pub.communicate()
            pub = publish(a.rtmp_url(KEY), seconds=2, size="640x360", rate=15, gop=15)
            wait_for(lambda: a.log().count("a publisher is back") >= 2, 10, "the publisher back")
            wait_for(lambda: "output rtmp://127.0.0.1:%d/live/**** (source)" % ngx_port in a.log()
                     and "the video configuration changed; reconnecting" in a.log(), 10,
                     "the nginx output reconnecting for the new size")
            pub.communicate(timeout=20)
            pub = None
            wait_for(lambda: state("nginx")["state"] == "idle", 40, "the outputs closed")
            # Every nginx recording decodes with continuous timestamps: the
            # first (before the kill, possibly cut short) and the one after,
            # across the publisher's return.
            mark("ended")
            recs = sorted(r for r in os.listdir(os.path.join(ngx_dir, "rec"))
                          if r.startswith(NGX_KEY + "-"))
            patched = [r for r in os.listdir(os.path.join(ngx_dir, "rec"))
                       if r.startswith(NGX_KEY + "720-")]
            self.assertTrue(patched)
            self.assertEqual(ffprobe_size(os.path.join(ngx_dir, "rec", patched[0])), (640, 360))
            self.assertGreaterEqual(len(recs), 3, recs)
            sizes = [ffprobe_size(os.path.join(ngx_dir, "rec", r)) for r in recs]
            self.assertEqual(sizes[-1], (640, 360), sizes)
            self.assertEqual(sizes[-2], (854, 480), sizes)
            for rec in recs:
                path = os.path.join(ngx_dir, "rec", rec)
                rc, err = decode_errors(path)
                self.assertEqual(rc, 0, err)
                dts = video_dts(path)
                # The one nginx was killed under is short; the others are
                # 2 s or more at 15 fps.
                self.assertGreater(len(dts), 3 if rec == recs[0] else 20, rec)
                steps = [b - a_ for a_, b in zip(dts, dts[1:])]
                self.assertTrue(all(0.03 < d < 0.5 for d in steps), (rec, max(steps), min(steps)))
            mark("recordings")
            stop_proc(srt)
            rc, err = decode_errors(ts_path)
            self.assertEqual(rc, 0, err)
            dts = video_dts(ts_path)
            self.assertGreater(len(dts), 15 * 8)
            steps = [b - a_ for a_, b in zip(dts, dts[1:])]
            self.assertTrue(all(0.03 < d < 0.5 for d in steps), (max(steps), min(steps)))
            mark("srt")
            # The relay's own segments decode.
            seg = last_segment(relay, "relay", "360p")
            self.assertIsNotNone(seg)
            seg_path = os.path.join(run_dir, "relay.mp4")
            with open(seg_path, "wb") as f:
                f.write(http(relay.url("/hls/relay/360p/init.mp4"))[2] + http(relay.url(seg))[2])
            rc, err = decode_errors(seg_path)
            self.assertEqual(rc, 0, err)
            log = a.log()
            for secret in SECRETS:
                self.assertNotIn(secret, log)
            # The 360p rung had no viewer; its output kept it encoding.
            self.assertNotIn("rung 360p: not asked for", log)
            mark("relay")
            # Webhooks: output.live per connection, output.failed once per
            # outage (nginx: down at the start, killed), never a key.
            def events(event, name):
                return [r["body"] for r in hook.of(event)
                        if r["body"]["data"].get("output") == outputs[name]]
            wait_for(lambda: len(events("output.live", "nginx")) >= 2, 10, "nginx's output.live x2")
            # (The reconnection for the new size is not an outage.)
            self.assertEqual(len(events("output.failed", "nginx")), 2)
            wait_for(lambda: len(events("output.live", "nginx")) >= 3, 10, "nginx's output.live x3")
            self.assertEqual(len(events("output.live", "relay")), 1)
            self.assertIn("not in this broadcast's ladder",
                          events("output.failed", "720p")[0]["data"]["error"])
            # Deleted while live: stopped (the log says so).
            self.assertRegex(log, r"output=%s: output rtmp://\S+ stopped" % outputs["720p"])
            failed = events("output.failed", "nginx")[0]
            self.assertEqual(failed["stream_id"], "demo")
            self.assertEqual(failed["data"]["url"], f"rtmp://127.0.0.1:{ngx_port}/live/****")
            self.assertIn("cannot connect", failed["data"]["error"])
            self.assertIsNone(events("output.live", "srt")[0]["data"]["error"])
            for r in hook.requests:
                for secret in SECRETS:
                    self.assertNotIn(secret.encode(), r["raw"])
            self.assertIn("output rtmp://127.0.0.1:%d/live/**** live" % ngx_port, log)
            mark("checked")
            print("simulcast: seconds since the start: " + ", ".join(marks))
        finally:
            stop_proc(nginx)
            stop_proc(srt)
            if a is not None:
                a.close(pub)
            relay.proc.send_signal(signal.SIGCONT)
            relay.close()


def http_json(url, method, obj):
    import urllib.request
    import urllib.error
    data = json.dumps(obj).encode() if obj is not None else None
    req = urllib.request.Request(url, method=method, data=data,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def parts(sl, rendition):
    s, _, body = http(sl.url(f"/hls/demo/{rendition}/index.m3u8"))
    if s != 200:
        return []
    return [l for l in body.decode().splitlines() if l.startswith("#EXT-X-PART:")]


def media_seq(url):
    s, _, body = http(url)
    if s != 200:
        return -1
    text = body.decode()
    seq = 0
    for line in text.splitlines():
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            seq = int(line.split(":", 1)[1])
    return seq + text.count("#EXTINF")


def last_segment(sl, sid, rendition):
    s, _, body = http(sl.url(f"/hls/{sid}/{rendition}/index.m3u8"))
    if s != 200:
        return None
    segs = [l for l in body.decode().splitlines() if l and not l.startswith("#")]
    return f"/hls/{sid}/{rendition}/{segs[-1]}" if segs else None


if __name__ == "__main__":
    unittest.main()
