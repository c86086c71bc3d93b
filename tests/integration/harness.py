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


# Processes of the Redis helpers below that are still running when the test
# process exits: a test that failed half-way (or a bench interrupted by a
# timeout) must not leave a redis-server or a sentinel behind.
_REDIS_PROCS = set()


def _kill_left_over_redis():
    for proc in list(_REDIS_PROCS):
        if proc.poll() is None:
            proc.kill()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass


import atexit as _atexit  # noqa: E402
_atexit.register(_kill_left_over_redis)


def _started_and_answering(server, timeout):
    """Registers server.proc (a redis-server or a sentinel just started) for
    the exit clean-up, then waits until it answers PING: True, or False when
    it exited or did not answer within timeout seconds."""
    _REDIS_PROCS.add(server.proc)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.cli("PING").strip() == "PONG":
            return True
        if server.proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False

# Arguments that make a master hand its data to a new replica at once: with
# Redis 7's defaults the first full sync waits 5 s (repl-diskless-sync-delay).
# Give them to every data node of a replicated set-up (any of them can become
# the master).
REPL_FAST = ("--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0")


def _password_in(args):
    """The --requirepass value in a redis-server argument list, or None."""
    args = list(args)
    for i, a in enumerate(args[:-1]):
        if a == "--requirepass":
            return args[i + 1]
    return None


def _parse_info(text):
    """INFO output -> dict of its key:value lines."""
    out = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            k, _, v = line.strip().partition(":")
            out[k] = v
    return out


class _RedisProcess:
    """What a started redis-server and a sentinel share (self.proc)."""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL (a crash: no goodbye to replicas or sentinels)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        _REDIS_PROCS.discard(self.proc)

    def _terminate(self):
        """SIGTERM, then SIGKILL after 10 s."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        _REDIS_PROCS.discard(self.proc)


class RedisServer(_RedisProcess):
    """A redis-server of the test's own on a free loopback port, with no
    persistence; kill() and start() again on the same port stand for a
    Redis restart that comes back empty.

    args: extra redis-server arguments appended to the command line, for
    example ("--replicaof", "127.0.0.1", str(master.port)) + REPL_FAST for a
    replica, or ("--requirepass", "pw") (cli() then authenticates with it)."""

    def __init__(self, port=None, args=()):
        self.port = port or free_port()
        self.args = tuple(str(a) for a in args)
        self.password = _password_in(self.args)
        self.dir = tempfile.mkdtemp(prefix="sluice-redis-")
        self.proc = None
        self.start()

    def start(self, timeout=10, args=None):
        """Starts (again) on the same port, empty. args: replaces the extra
        arguments for this and later starts (a returning master that must not
        come back with an old --replicaof, say)."""
        if args is not None:
            self.args = tuple(str(a) for a in args)
            self.password = _password_in(self.args)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not _started_and_answering(self, timeout):
            raise AssertionError(f"redis-server did not start on port {self.port} "
                                 f"(args {self.args})")

    def url(self, db=0):
        return f"redis://127.0.0.1:{self.port}/{db}"

    def cli(self, *args, db=0):
        auth = ["-a", self.password, "--no-auth-warning"] if self.password else []
        out = subprocess.run(["redis-cli", "-p", str(self.port), *auth, "-n", str(db), *args],
                             capture_output=True, timeout=10)
        return out.stdout.decode(errors="replace")

    def info(self, section=""):
        """INFO [section] as a dict ({} when the server does not answer)."""
        return _parse_info(self.cli("INFO", *([section] if section else [])))

    def replication(self):
        """INFO replication as a dict: role, master_link_status, connected_slaves, ..."""
        return self.info("replication")

    def role(self):
        """"master", "slave", or "" when the server does not answer."""
        return self.replication().get("role", "")

    def clients(self):
        """Connected clients other than the redis-cli asking."""
        return [l for l in self.cli("CLIENT", "LIST").splitlines()
                if l.strip() and "cmd=client" not in l]

    def stop(self):
        self._terminate()


class SentinelEvents:
    """A pub/sub client on one sentinel that records every event it publishes
    (PSUBSCRIBE *: +sdown, +odown, +switch-master, +tilt, ...) with the wall
    time it arrived, in a thread. A minimal RESP reader: redis-py is not
    installed and needs not be.

    events: list of (time.time(), channel, payload). Close with close()."""

    def __init__(self, port, password=None):
        import threading
        self.events = []
        self._lock = threading.Lock()
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self._file = self._sock.makefile("rb")
        if password:
            self._send("AUTH", password)
            if not self._read_reply().startswith(b"OK"):
                raise AssertionError("sentinel refused AUTH")
        self._send("PSUBSCRIBE", "*")
        self._read_reply()
        self._sock.settimeout(None)
        self._closed = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _send(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a.encode() if isinstance(a, str) else a
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self._sock.sendall(out)

    def _read_reply(self):
        line = self._file.readline()
        if not line:
            raise EOFError
        kind, rest = line[:1], line[1:-2]
        if kind in (b"+", b"-", b":"):
            return rest
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self._file.read(n + 2)
            return data[:-2]
        if kind == b"*":
            return [self._read_reply() for _ in range(int(rest))]
        raise AssertionError(f"bad RESP from sentinel: {line!r}")

    def _run(self):
        while not self._closed:
            try:
                msg = self._read_reply()
            except (EOFError, OSError, ValueError):
                return
            if isinstance(msg, list) and len(msg) == 4 and msg[0] == b"pmessage":
                with self._lock:
                    self.events.append((time.time(), msg[2].decode(errors="replace"),
                                        msg[3].decode(errors="replace")))

    def seen(self, channel, since=0.0):
        """[(t, payload)] of the events on channel received at or after since."""
        with self._lock:
            return [(t, p) for t, c, p in self.events if c == channel and t >= since]

    def first(self, channel, since=0.0):
        """Time of the first event on channel at or after since, or None."""
        got = self.seen(channel, since)
        return got[0][0] if got else None

    def close(self):
        self._closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()


class SentinelTilt(AssertionError):
    """A sentinel entered TILT mode (the box stalled for more than 2 s): a
    failover measured then says nothing about sluice."""


class RedisSentinel(_RedisProcess):
    """One Redis Sentinel of the test's own: `redis-server DIR/sentinel.conf
    --sentinel` (the redis-sentinel package only adds a symlink), watching
    the master 127.0.0.1:master_port under name, on a free loopback port.

    The sentinel rewrites its config file (epochs, replicas and sentinels it
    found), so every sentinel has its own temporary directory. extra: more
    sentinel.conf lines, e.g. "requirepass spw", "sentinel auth-pass sluice
    dpw", "sentinel auth-user sluice sluice"; a "requirepass" line also makes
    cli() authenticate. failover_timeout_ms stays 3000 so that repeated
    failovers in one test are not blocked for long."""

    def __init__(self, master_port, name="sluice", quorum=2, down_after_ms=1000, extra=(),
                 port=None, failover_timeout_ms=3000):
        self.port = port or free_port()
        self.name = name
        self.master_port = master_port
        self.down_after_ms = down_after_ms
        self.dir = tempfile.mkdtemp(prefix="sluice-sentinel-")
        self.conf = os.path.join(self.dir, "sentinel.conf")
        self.logfile = os.path.join(self.dir, "sentinel.log")
        self.password = None
        for line in extra:
            parts = line.split()
            if len(parts) == 2 and parts[0] == "requirepass":
                self.password = parts[1]
        with open(self.conf, "w") as f:
            f.write("\n".join([
                f"port {self.port}",
                "bind 127.0.0.1",
                "daemonize no",
                f"dir {self.dir}",
                f"logfile {self.logfile}",
                f"sentinel monitor {name} 127.0.0.1 {master_port} {quorum}",
                f"sentinel down-after-milliseconds {name} {down_after_ms}",
                f"sentinel failover-timeout {name} {failover_timeout_ms}",
                f"sentinel parallel-syncs {name} 1",
                *extra]) + "\n")
        self.proc = None
        self.start()

    def start(self, timeout=10):
        """Starts (again) with the config file as the sentinel last rewrote it."""
        self.proc = subprocess.Popen(["redis-server", self.conf, "--sentinel"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not _started_and_answering(self, timeout):
            raise AssertionError(f"sentinel did not start on port {self.port}:\n"
                                 f"{self.log_text()[-2000:]}")

    def address(self):
        return f"127.0.0.1:{self.port}"

    def cli(self, *args):
        auth = ["-a", self.password, "--no-auth-warning"] if self.password else []
        out = subprocess.run(["redis-cli", "-p", str(self.port), *auth, *args],
                             capture_output=True, timeout=10)
        return out.stdout.decode(errors="replace")

    def master_addr(self):
        """(host, port) the sentinel names as master now, or None."""
        lines = self.cli("SENTINEL", "get-master-addr-by-name", self.name).split()
        if len(lines) == 2 and lines[1].isdigit():
            return lines[0], int(lines[1])
        return None

    def _pairs(self, text):
        lines = text.splitlines()
        return dict(zip(lines[0::2], lines[1::2]))

    def master_info(self):
        """SENTINEL MASTER name as a dict (flags, num-slaves, num-other-sentinels, ...)."""
        return self._pairs(self.cli("SENTINEL", "MASTER", self.name))

    def replicas(self):
        """SENTINEL REPLICAS name: a list of dicts (ip, port, flags, master-link-status, ...)."""
        out = []
        # redis-cli prints the nested arrays flat; each replica starts with "name".
        block = []
        for line in self.cli("SENTINEL", "REPLICAS", self.name).splitlines():
            if line == "name" and block:
                out.append(self._pairs("\n".join(block)))
                block = []
            block.append(line)
        if block:
            out.append(self._pairs("\n".join(block)))
        return out

    def ready(self, n_sentinels, n_replicas):
        """True when this sentinel sees n_sentinels sentinels in all (itself
        included: num-other-sentinels == n_sentinels - 1), at least n_replicas
        healthy replicas (flags exactly "slave", link ok), and a master it
        does not think is down."""
        m = self.master_info()
        if not m or m.get("flags") != "master":
            return False
        if int(m.get("num-other-sentinels", -1)) < n_sentinels - 1:
            return False
        good = [r for r in self.replicas()
                if r.get("flags") == "slave" and r.get("master-link-status") == "ok"]
        return len(good) >= n_replicas

    def log_text(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def tilt_seen(self):
        """True when this sentinel's log shows it entered TILT mode."""
        return "+tilt" in self.log_text()

    def events(self):
        """A SentinelEvents subscriber on this sentinel (close it when done)."""
        return SentinelEvents(self.port, self.password)

    def stop(self, keep_dir=False):
        """SIGTERM; removes the directory (config, log) unless keep_dir."""
        self._terminate()
        if not keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def check_no_tilt(sentinels):
    """Raises SentinelTilt naming the sentinel when any entered TILT mode;
    call it before failing a failover wait on a timeout."""
    for s in sentinels:
        if s.tilt_seen():
            raise SentinelTilt(f"sentinel {s.address()} entered TILT (the box stalled > 2 s); "
                               "failover timings of this run are void")


def sentinel_cluster(down_after_ms=1000, name="sluice", quorum=2, sentinel_extra=(),
                     data_args=(), timeout=20):
    """One master, one replica and three sentinels on loopback, all started
    here. Returns (master, replica, [s1, s2, s3]) once every sentinel sees the
    two others and the replica, and the replica's link to the master is up
    (about 2-3 s: sentinels say hello every 2 s). data_args: extra arguments
    for both data nodes (REPL_FAST is always given). The caller stops them:
    stop_cluster(master, replica, sentinels)."""
    pw = _password_in(data_args)
    # Either node may be a replica later (a returning master is converted).
    data = (*REPL_FAST, *(("--masterauth", pw) if pw else ()), *data_args)
    master = RedisServer(args=data)
    replica = sentinels = None
    try:
        replica = RedisServer(args=(*data, "--replicaof", "127.0.0.1", str(master.port)))
        sentinels = []
        for _ in range(3):
            sentinels.append(RedisSentinel(master.port, name=name, quorum=quorum,
                                           down_after_ms=down_after_ms, extra=sentinel_extra))
        deadline = time.time() + timeout
        while time.time() < deadline:
            if replica.replication().get("master_link_status") == "up" and \
                    all(s.ready(3, 1) for s in sentinels):
                return master, replica, sentinels
            check_no_tilt(sentinels)
            time.sleep(0.1)
        raise AssertionError("sentinel cluster not ready within %ds: replica %s; %s" % (
            timeout, replica.replication().get("master_link_status"),
            [(s.port, s.master_info().get("num-other-sentinels"),
              [(r.get("port"), r.get("flags")) for r in s.replicas()]) for s in sentinels]))
    except BaseException:
        stop_cluster(master, replica, sentinels or [])
        raise


def stop_cluster(master, replica, sentinels):
    """Stops what sentinel_cluster started (sentinels first, so they do not
    fail over while the data nodes go)."""
    for s in sentinels:
        s.stop()
    for r in (master, replica):
        if r is not None:
            r.stop()
            shutil.rmtree(r.dir, ignore_errors=True)


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
