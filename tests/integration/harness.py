"""Shared helpers for the integration suites: start the real sluice binary
on free loopback ports, publish with real ffmpeg, fetch over HTTP, probe
with ffprobe. Every process a test starts is bounded in time and stopped by
the test itself."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SLUICE_BIN = os.environ.get("SLUICE_BIN", os.path.join(ROOT, "build", "sluice"))

# What the sanitizers print when they find something; any of these in a
# sluice log fails the test that ran it.
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "WARNING: ThreadSanitizer")


_HANDED_OUT = set()


def free_port():
    """A loopback port nothing listens on, never one this process handed out
    before: the kernel may give a port it just freed to the next bind(0), so
    two calls in a row once gave sluice the same RTMP and admin port."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError("no free loopback port that was not handed out already")


class Sluice:
    """One sluice process with its own ports, log file and state directory.

    state_dir: the --state-dir to give it (the memory store's registry), for
    a test that restarts sluice on the same one; the test owns that
    directory. Without it (and without --state-dir in args or
    SLUICE_STATE_DIR in env) each instance gets a fresh temporary one,
    removed when it stops, so instances never share a registry and none is
    left in the working directory."""

    def __init__(self, *args, streams=(("demo", "demo-secret-key"),), env=None, state_dir=None):
        self.rtmp_port = free_port()
        self.http_port = free_port()
        self.admin_port = free_port()
        self.streams = streams
        self.logf = tempfile.NamedTemporaryFile(prefix="sluice-", suffix=".log", delete=False)
        cmd = [SLUICE_BIN, "--rtmp-listen", f"127.0.0.1:{self.rtmp_port}",
               "--http-listen", f"127.0.0.1:{self.http_port}",
               "--admin-listen", f"127.0.0.1:{self.admin_port}"]
        for sid, key in streams:
            cmd += ["--stream", f"{sid}:{key}"]
        cmd += list(args)
        # No SRT listener unless the test asks for one: the default address
        # (0.0.0.0:9000) is one port for every sluice of both test lanes.
        if not any(a == "--srt-listen" or a.startswith("--srt-listen=") for a in args) and \
                "SLUICE_SRT_LISTEN" not in (env or {}):
            cmd += ["--srt-listen", "off"]
        self.state_dir, self._own_state_dir = state_dir, False
        given = any(a == "--state-dir" or a.startswith("--state-dir=") for a in args)
        if state_dir is None and not given and "SLUICE_STATE_DIR" not in (env or {}):
            self.state_dir, self._own_state_dir = tempfile.mkdtemp(prefix="sluice-state-"), True
        if self.state_dir is not None and not given:
            cmd += ["--state-dir", self.state_dir]
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT, env=full_env)
        self._wait_ready()

    def _wait_ready(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"sluice exited early ({self.proc.returncode}):\n{self.log()}")
            if "ready" in self.log():
                return
            time.sleep(0.05)
        raise AssertionError("sluice did not become ready:\n" + self.log())

    def log(self):
        with open(self.logf.name, errors="replace") as f:
            return f.read()

    def url(self, path):
        return f"http://127.0.0.1:{self.http_port}{path}"

    def admin_url(self, path):
        return f"http://127.0.0.1:{self.admin_port}{path}"

    def rtmp_url(self, key):
        return f"rtmp://127.0.0.1:{self.rtmp_port}/live/{key}"

    def stop(self, timeout=30):
        """SIGTERM, wait, and check a clean exit with a clean sanitizer log."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("sluice did not stop within %ds:\n%s" % (timeout, self.log()[-4000:]))
        log = self.log()
        for mark in SANITIZER_MARKS:
            if mark in log:
                raise AssertionError(f"sanitizer report in sluice log:\n{log[-8000:]}")
        for _, key in self.streams:
            if key in log:
                raise AssertionError("a stream key appears in the log")
        if self.proc.returncode != 0:
            raise AssertionError(f"sluice exited with {self.proc.returncode}:\n{log[-4000:]}")
        os.unlink(self.logf.name)
        self._remove_state_dir()
        return log

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._remove_state_dir()

    def _remove_state_dir(self):
        if self._own_state_dir and self.proc.poll() is not None:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def close(self, *publishers):
        """End of a test: kills the publishers still running, then stop()
        (clean exit checked), killing sluice if that check fails."""
        for pub in publishers:
            if pub is not None and pub.poll() is None:
                pub.kill()
            if pub is not None:
                pub.communicate()
        try:
            self.stop()
        finally:
            self.kill()


def http(url, method="GET", timeout=10, headers=None):
    """Returns (status, headers dict with lower-case names, body bytes)."""
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def wait_for(fn, timeout, what, interval=0.2):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def publish(url, seconds=10, size="1280x720", rate=30, gop=60, extra=(), realtime=True,
            bframes=0):
    """Starts ffmpeg publishing a synthetic H.264+AAC stream; returns Popen."""
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error"]
    if realtime:
        cmd += ["-re"]
    cmd += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", str(seconds),
            "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency" if not bframes else "film",
            "-bf", str(bframes), "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
            "-pix_fmt", "yuv420p", "-b:v", "1500k",
            "-c:a", "aac", "-b:a", "128k", "-ac", "2"]
    cmd += list(extra)
    cmd += ["-f", "flv", url]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc, timeout):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError("process did not finish in time: " + err.decode(errors="replace")[-2000:])
    return proc.returncode, err.decode(errors="replace")


def parse_master(text):
    """Returns (media list of attribute dicts, variants list of (attrs, uri))."""
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    assert lines[0] == "#EXTM3U", "master does not start with #EXTM3U"
    media, variants = [], []
    for i, l in enumerate(lines):
        if l.startswith("#EXT-X-MEDIA:"):
            media.append(parse_attrs(l.split(":", 1)[1]))
        elif l.startswith("#EXT-X-STREAM-INF:"):
            variants.append((parse_attrs(l.split(":", 1)[1]), lines[i + 1]))
    return media, variants


def parse_attrs(s):
    out = {}
    for m in re.finditer(r'([A-Z0-9-]+)=("([^"]*)"|[^,]*)', s):
        out[m.group(1)] = m.group(3) if m.group(3) is not None else m.group(2)
    return out


def parse_media(text):
    """Returns a dict: tags (name -> value of first), segments [{uri, duration, pdt}], endlist."""
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    assert lines[0] == "#EXTM3U", "media playlist does not start with #EXTM3U"
    tags, segs, cur = {}, [], {}
    for l in lines[1:]:
        if l.startswith("#EXTINF:"):
            cur["duration"] = float(l[8:].split(",")[0])
        elif l.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            cur["pdt"] = l.split(":", 1)[1]
        elif l.startswith("#"):
            name, _, value = l[1:].partition(":")
            tags.setdefault(name, value)
        else:
            cur["uri"] = l
            segs.append(cur)
            cur = {}
    return {"tags": tags, "segments": segs, "endlist": "EXT-X-ENDLIST" in tags}


def ffprobe_json(path_or_url, *args):
    out = subprocess.run(["ffprobe", "-v", "error", "-of", "json", *args, path_or_url],
                         capture_output=True, timeout=60)
    if out.returncode != 0:
        raise AssertionError("ffprobe failed: " + out.stderr.decode(errors="replace")[-2000:])
    return json.loads(out.stdout)


class RedisServer:
    """A redis-server of the test's own on a free loopback port, with no
    persistence; kill() and start() again on the same port stand for a
    Redis restart that comes back empty."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="sluice-redis-")
        self.proc = None
        self.start()

    def start(self, timeout=10):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.cli("PING").strip() == "PONG":
                return
            time.sleep(0.05)
        raise AssertionError(f"redis-server did not start on port {self.port}")

    def url(self, db=0):
        return f"redis://127.0.0.1:{self.port}/{db}"

    def cli(self, *args, db=0):
        out = subprocess.run(["redis-cli", "-p", str(self.port), "-n", str(db), *args],
                             capture_output=True, timeout=10)
        return out.stdout.decode(errors="replace")

    def clients(self):
        """Connected clients other than the redis-cli asking."""
        return [l for l in self.cli("CLIENT", "LIST").splitlines()
                if l.strip() and "cmd=client" not in l]

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


_shared_redis = None


def shared_redis():
    """Port of the shared test redis-server: the one tests/run.sh started
    (SLUICE_TEST_REDIS_URL), else one started here once for the whole run."""
    global _shared_redis
    url = os.environ.get("SLUICE_TEST_REDIS_URL")
    m = re.match(r"redis://127\.0\.0\.1:(\d+)", url or "")
    if m:
        return int(m.group(1))
    if _shared_redis is None:
        import atexit
        _shared_redis = RedisServer()
        atexit.register(_shared_redis.stop)
    return _shared_redis.port
