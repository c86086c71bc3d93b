"""The multi-node topology as operators start it: deploy/local-cluster.sh
(redis-server, one --role ingest and two --role origin sluice on the shared
Redis store, nginx with deploy/nginx/cdn.conf as the CDN) driven as a
whole, with SLUICE_BIN as the sluice binary. ffmpeg publishes through the
ingest node and everything is read through the CDN port only: ffmpeg decodes
both video renditions, a second viewer's media requests are cache hits,
concurrent requests for a part not produced yet become one origin request,
playlists are never served older than their max-age, and one origin killed
with SIGKILL does not interrupt playback. `local-cluster.sh stop` then
stops every process cleanly (sluice exit 0, no sanitizer report, no stream
key in any log) and leaves none behind.

The steps share one cluster and run in order (test_1_..., test_5_...)."""

import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

from harness import (ROOT, SANITIZER_MARKS, SLUICE_BIN, http, parse_master, parse_media, publish,
                     wait_for)

SCRIPT = os.path.join(ROOT, "deploy", "local-cluster.sh")
PIECES = ("cdn", "origin1", "origin2", "ingest", "redis")


def free_port_range(n):
    """A base port with n consecutive free loopback ports after it."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n > 65000:
            continue
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no free range of %d ports" % n)


def metric_sum(port, kind):
    """sluice_http_requests_total of one request kind, all status codes."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(int(m.group(1)) for m in re.finditer(
        r'sluice_http_requests_total\{kind="%s",code="\d+"\} (\d+)' % kind, text))


class ClusterTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.run_dir = tempfile.mkdtemp(prefix="sluice-cluster-")
        cls.base = free_port_range(8)
        cls.env = dict(os.environ, SLUICE_BIN=SLUICE_BIN, CLUSTER_DIR=cls.run_dir,
                       CLUSTER_BASE_PORT=str(cls.base))
        cls.cdn = f"http://127.0.0.1:{cls.base + 7}"
        cls.origin_http = {"origin1": cls.base + 3, "origin2": cls.base + 5}
        cls.origin_admin = {"origin1": cls.base + 4, "origin2": cls.base + 6}
        cls.pub = None
        cls.stopped = False
        t = time.time()
        out = subprocess.run([SCRIPT, "start"], env=cls.env, capture_output=True, timeout=90)
        cls.start_seconds = time.time() - t
        if out.returncode != 0:
            cls._cleanup()
            raise AssertionError("local-cluster.sh start failed:\n" +
                                 out.stdout.decode() + out.stderr.decode())
        cls.start_output = out.stdout.decode()
        with open(os.path.join(cls.run_dir, "demo-stream-key")) as f:
            cls.key = f.read().strip()
        m = re.search(r"publish:\s+(rtmp://\S+)", cls.start_output)
        assert m, cls.start_output
        cls.rtmp_url = m.group(1)
        # 854x480 H.264: the 480p rung is the source copied, 360p is encoded.
        cls.pub = publish(cls.rtmp_url, seconds=60, size="854x480")

    @classmethod
    def _cleanup(cls):
        if cls.pub is not None and cls.pub.poll() is None:
            cls.pub.kill()
            cls.pub.communicate()
        if not cls.stopped:
            subprocess.run([SCRIPT, "stop"], env=cls.env, capture_output=True, timeout=120)
        shutil.rmtree(cls.run_dir, ignore_errors=True)

    @classmethod
    def tearDownClass(cls):
        cls._cleanup()

    def cdn_get(self, path, headers=None):
        return http(self.cdn + path, headers=headers)

    def media_playlist(self, rendition, base=None):
        s, h, b = http((base or self.cdn) + f"/hls/demo/{rendition}/index.m3u8")
        self.assertEqual(s, 200, b)
        return h, b.decode()

    def wait_live(self):
        def ready():
            s, _, b = self.cdn_get("/hls/demo/master.m3u8")
            if s != 200:
                return None
            _, variants = parse_master(b.decode())
            if len(variants) < 2:
                return None
            for _, uri in variants:
                s, _, b = self.cdn_get("/hls/demo/" + uri)
                if s != 200 or len(parse_media(b.decode())["segments"]) < 3:
                    return None
            return variants
        return wait_for(ready, 30, "two renditions with three segments through the CDN")

    def test_0_same_flags_as_compose(self):
        """The nodes run with the flags deploy/compose.yaml gives the same
        roles (local-cluster.sh adds loopback addresses and admin ports)."""
        doc = compose()
        for local, svc in (("ingest", "ingest"), ("origin1", "origin1"), ("origin2", "origin2")):
            with open(os.path.join(self.run_dir, local + ".pid")) as f:
                pid = int(f.read())
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().decode().split("\0")
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = {e.split("=", 1)[0] for e in f.read().decode().split("\0") if "=" in e}
            command = doc["services"][svc]["command"]
            self.assertEqual(argv[argv.index("--role") + 1], command[command.index("--role") + 1])
            self.assertLessEqual(flag_names(command), flag_names(argv), local)
            compose_env = set(doc["services"][svc].get("environment", {}))
            # The admin token: compose's admin listener is on 0.0.0.0, the
            # local cluster's on loopback, which needs none.
            self.assertLessEqual(compose_env - {"SLUICE_ADMIN_TOKEN"}, env, local)
            # The key reaches sluice through its environment, never argv.
            self.assertNotIn(self.key, " ".join(argv))

    def test_1_plays_through_cdn(self):
        """ffmpeg reads the master through the CDN and decodes video from
        both renditions (480p copied, 360p transcoded)."""
        variants = self.wait_live()
        names = sorted(uri.split("/")[0] for _, uri in variants)
        self.assertEqual(names, ["360p", "480p"])
        procs = []
        for i in range(len(variants)):
            procs.append((variants[i][0]["RESOLUTION"], subprocess.Popen(
                ["ffmpeg", "-hide_banner", "-nostdin", "-v", "error",
                 "-i", self.cdn + "/hls/demo/master.m3u8", "-map", f"0:v:{i}", "-t", "3",
                 "-f", "framecrc", "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)))
        for res, p in procs:
            out, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, err.decode(errors="replace"))
            frames = [l for l in out.decode().splitlines() if l and not l.startswith("#")]
            w, h = res.split("x")
            self.assertIn(f"#dimensions 0: {w}x{h}", out.decode())
            self.assertGreaterEqual(len(frames), 60, f"{res}: {len(frames)} frames decoded")

    def test_2_second_viewer_hits_cache(self):
        """Media that nobody fetched yet: the first viewer's requests are
        MISSes, a second viewer's the same bytes as HITs. And 30 viewers at
        once asking for a part that is not produced yet cause exactly one
        origin request (the cache lock), all answered with the same bytes."""
        self.wait_live()
        _, text = self.media_playlist("360p")
        newest = int(parse_media(text)["segments"][-1]["uri"].split(".")[0])

        def newer():
            _, t = self.media_playlist("360p")
            pl = parse_media(t)
            segs = [s["uri"] for s in pl["segments"] if int(s["uri"].split(".")[0]) > newest]
            return segs and (pl, t)
        pl, text = wait_for(newer, 10, "a new 360p segment")
        fresh = [s["uri"] for s in pl["segments"] if int(s["uri"].split(".")[0]) > newest]
        init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', text).group(1)
        parts = re.findall(r'#EXT-X-PART:[^\n]*URI="([^"]+)"', text)[-2:]
        first = {}
        for uri in fresh + parts:
            s, h, b = self.cdn_get("/hls/demo/360p/" + uri)
            self.assertEqual(s, 200, uri)
            self.assertEqual(h.get("x-cache-status"), "MISS", f"first viewer, {uri}")
            first[uri] = b
        s, h, _ = self.cdn_get("/hls/demo/360p/" + init)
        self.assertEqual(s, 200)
        for uri in [init] + fresh + parts:
            s, h, b = self.cdn_get("/hls/demo/360p/" + uri)
            self.assertEqual(s, 200, uri)
            self.assertEqual(h.get("x-cache-status"), "HIT", f"second viewer, {uri}")
            if uri in first:
                self.assertEqual(b, first[uri], uri)

        # The preload hint names the part after the newest one: not produced
        # yet (and asked for by nobody), the origin holds it until it is. 30
        # LL-HLS viewers each ask for it and for the blocking reload that
        # waits for it, all at once.
        _, text = self.media_playlist("360p")
        hint = re.search(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="((\d+)\.(\d+)\.m4s)"', text)
        self.assertIsNotNone(hint, text)
        urls = {"part": "/hls/demo/360p/" + hint.group(1),
                "playlist": f"/hls/demo/360p/index.m3u8?_HLS_msn={hint.group(2)}"
                            f"&_HLS_part={hint.group(3)}"}

        def origin_requests():
            return {k: sum(metric_sum(p, k) for p in self.origin_admin.values()) for k in urls}
        before = origin_requests()
        results = {k: [] for k in urls}

        def viewer(kind):
            results[kind].append(self.cdn_get(urls[kind]))
        threads = [threading.Thread(target=viewer, args=(k,)) for _ in range(30) for k in urls]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        after = origin_requests()
        for kind in urls:
            got = results[kind]
            self.assertEqual(sorted({r[0] for r in got}), [200], kind)
            self.assertEqual(after[kind] - before[kind], 1, f"origin {kind} requests for 30 viewers")
            self.assertEqual(len({r[2] for r in got}), 1, kind)
            self.assertEqual([r[1]["x-cache-status"] for r in got].count("MISS"), 1, kind)
        self.assertIn(hint.group(1), results["playlist"][0][2].decode())

    def test_3_playlists_are_fresh(self):
        """A playlist from the CDN is never older than one fetched from an
        origin just before (max-age=0: nginx does not store it), and it
        carries the origin's Cache-Control."""
        self.wait_live()
        for _ in range(8):
            oh, otext = self.media_playlist("480p", f"http://127.0.0.1:{self.origin_http['origin2']}")
            ch, ctext = self.media_playlist("480p")
            self.assertEqual(ch["cache-control"], oh["cache-control"])
            self.assertEqual(ch["cache-control"], "public, max-age=0")
            self.assertEqual(ch.get("x-cache-status"), "MISS")
            o, c = parse_media(otext), parse_media(ctext)
            oseq = int(o["tags"]["EXT-X-MEDIA-SEQUENCE"]) + len(o["segments"])
            cseq = int(c["tags"]["EXT-X-MEDIA-SEQUENCE"]) + len(c["segments"])
            self.assertGreaterEqual(cseq, oseq)
            if cseq == oseq:
                self.assertGreaterEqual(ctext.count("#EXT-X-PART:"), otext.count("#EXT-X-PART:"))
            time.sleep(0.15)

    def test_4_origin_killed(self):
        """SIGKILL one origin: for 8 s more through the CDN, every playlist,
        segment and part request is answered 200, and new segments keep
        coming (one first seen 6 s or more after the kill)."""
        self.wait_live()
        _, text = self.media_playlist("480p")
        newest = int(parse_media(text)["segments"][-1]["uri"].split(".")[0])
        with open(os.path.join(self.run_dir, "origin1.pid")) as f:
            os.kill(int(f.read()), signal.SIGKILL)
        start = time.time()
        new = {}
        errors = []
        requests = 0
        # 8 s at least; up to 12 s while no new segment was seen after 6 s
        # (a loaded machine may package a little late).
        while time.time() - start < 8 or (time.time() - start < 12 and
                                          max(new.values(), default=0) < 6):
            s, h, b = self.cdn_get("/hls/demo/480p/index.m3u8")
            requests += 1
            if s != 200:
                errors.append(("playlist", s))
                continue
            text = b.decode()
            for seg in parse_media(text)["segments"]:
                n = int(seg["uri"].split(".")[0])
                if n > newest and n not in new:
                    new[n] = round(time.time() - start, 1)
                    s, _, _ = self.cdn_get("/hls/demo/480p/" + seg["uri"])
                    requests += 1
                    if s != 200:
                        errors.append((seg["uri"], s))
            for uri in re.findall(r'#EXT-X-PART:[^\n]*URI="([^"]+)"', text)[-1:]:
                s, _, _ = self.cdn_get("/hls/demo/480p/" + uri)
                requests += 1
                if s != 200:
                    errors.append((uri, s))
            time.sleep(0.2)
        self.assertEqual(errors, [])
        self.assertGreaterEqual(len(new), 3, new)
        self.assertGreaterEqual(max(new.values()), 6, new)
        # nginx did try the dead origin and went on to the other one.
        with open(os.path.join(self.run_dir, "nginx", "error.log")) as f:
            log = f.read()
        self.assertIn(f"127.0.0.1:{self.origin_http['origin1']}", log)
        self.assertRegex(log, r"connect\(\) failed \(111: Connection refused\)|"
                              r"Connection reset by peer|prematurely closed")
        print(f"\n  after the kill: {requests} requests through the CDN, no error; "
              f"new segments first seen at {sorted(new.values())} s")

    def test_5_stop(self):
        """`stop`: every survivor exits 0, origin1 is reported killed,
        nothing is left running, no log holds the stream key or a
        sanitizer report."""
        type(self).pub.kill()
        type(self).pub.communicate()
        out = subprocess.run([SCRIPT, "stop"], env=self.env, capture_output=True, timeout=120)
        type(self).stopped = True
        text = out.stdout.decode() + out.stderr.decode()
        self.assertEqual(out.returncode, 0, text)
        exits = {}
        for name in PIECES:
            with open(os.path.join(self.run_dir, name + ".exit")) as f:
                exits[name] = f.read().strip()
        self.assertEqual(exits, {"cdn": "0", "origin1": "137", "origin2": "0", "ingest": "0",
                                 "redis": "0"}, text)
        self.assertIn("origin1: not running (exited with status 137)", text)
        for name in PIECES:
            with open(os.path.join(self.run_dir, name + ".pid")) as f:
                pid = int(f.read())
            self.assertFalse(os.path.exists(f"/proc/{pid}"), f"{name} (pid {pid}) still running")
        # Nothing started by the script left: no process names the run
        # directory or one of the cluster's ports on its command line.
        marks = [self.run_dir] + [f"127.0.0.1:{p}" for p in range(self.base, self.base + 8)]
        left = []
        for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
            try:
                with open(cmdline, "rb") as f:
                    args = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if any(m in args for m in marks):
                left.append(args)
        self.assertEqual(left, [])
        logs = glob.glob(os.path.join(self.run_dir, "*.log")) + \
            glob.glob(os.path.join(self.run_dir, "nginx", "*.log"))
        self.assertGreaterEqual(len(logs), 7)
        for path in logs:
            with open(path, errors="replace") as f:
                log = f.read()
            self.assertNotIn(self.key, log, path)
            for mark in SANITIZER_MARKS:
                self.assertNotIn(mark, log, path)
        self.assertNotIn(self.key, text)
        self.assertEqual(oct(os.stat(os.path.join(self.run_dir, "demo-stream-key")).st_mode & 0o777),
                         "0o600")
        # A second stop is harmless.
        again = subprocess.run([SCRIPT, "stop"], env=self.env, capture_output=True, timeout=30)
        self.assertEqual(again.returncode, 0, again.stderr.decode())


if __name__ == "__main__":
    unittest.main()


class ClusterStartFailureTest(unittest.TestCase):
    """local-cluster.sh start refuses a busy port before starting anything,
    and when a piece does not come up it says which, shows its log, and
    stops what it had started."""

    def setUp(self):
        self.run_dir = tempfile.mkdtemp(prefix="sluice-cluster-fail-")
        self.addCleanup(shutil.rmtree, self.run_dir, True)
        self.base = free_port_range(8)
        self.env = dict(os.environ, SLUICE_BIN=SLUICE_BIN, CLUSTER_DIR=self.run_dir,
                        CLUSTER_BASE_PORT=str(self.base))

    def start(self, **env):
        out = subprocess.run([SCRIPT, "start"], env=dict(self.env, **env), capture_output=True,
                             timeout=60)
        self.addCleanup(subprocess.run, [SCRIPT, "stop"], env=self.env, capture_output=True,
                        timeout=60)
        return out.returncode, out.stdout.decode(), out.stderr.decode()

    def test_busy_port(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", self.base + 7))
            s.listen()
            rc, out, err = self.start()
        self.assertEqual(rc, 1)
        self.assertIn(f"port {self.base + 7} is in use", err)
        self.assertFalse(glob.glob(os.path.join(self.run_dir, "*.pid")))

    def test_piece_that_fails(self):
        rc, out, err = self.start(SLUICE_SEGMENT_DURATION="soon")
        self.assertEqual(rc, 1)
        self.assertIn("ingest exited while starting (status 2)", err)
        self.assertIn("'soon' is not a number", err)         # the log's tail
        self.assertIn("stopping what was started", err)
        self.assertNotIn("publish:", out)
        st = subprocess.run([SCRIPT, "status"], env=self.env, capture_output=True, timeout=30)
        self.assertEqual(st.returncode, 1)                    # nothing running
        self.assertIn("redis: exited (status 0)", st.stdout.decode())
        for name in ("redis", "ingest", "origin1", "origin2"):
            with open(os.path.join(self.run_dir, name + ".pid")) as f:
                self.assertFalse(os.path.exists(f"/proc/{int(f.read())}"), name)


def compose():
    """deploy/compose.yaml as data, parsed by the npm `yaml` package
    (tests/browser/compose_json.mjs): no YAML parser in Python."""
    out = subprocess.run(["node", os.path.join(ROOT, "tests", "browser", "compose_json.mjs"),
                          os.path.join(ROOT, "deploy", "compose.yaml")],
                         capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr.decode()
    return json.loads(out.stdout)


def interpolate(value, env):
    """Compose's ${VAR}, ${VAR:?message}, ${VAR:-default} and $$."""
    def one(m):
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if name in env:
            return env[name]
        if op == ":-":
            return arg
        raise AssertionError(f"compose needs {name}: {arg}")
    value = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:\?|:-)([^}]*))?\}", one, value)
    return value.replace("$$", "$")


def dockerfile_stages():
    with open(os.path.join(ROOT, "deploy", "docker", "Dockerfile")) as f:
        text = re.sub(r"\\\n", " ", f.read())
    lines = [l.strip() for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")]
    stages = []
    for l in lines:
        if l.startswith("FROM "):
            stages.append([])
        stages[-1].append(l)
    return stages


def flag_names(argv):
    return {a for a in argv if a.startswith("--")}


class DeployFilesTest(unittest.TestCase):
    """What can be checked of the container files without a container
    engine: the compose command lines against the real binary, the compose
    nginx configuration with nginx -t, the image's package list against
    dpkg-shlibdeps."""

    SECRETS = {"SLUICE_DEMO_KEY": "compose-demo-key-0123456789",
               "SLUICE_ADMIN_TOKEN": "compose-admin-token-0123456789"}

    def sluice_services(self, doc):
        out = {}
        for name, svc in doc["services"].items():
            if svc.get("build", {}).get("dockerfile") == "deploy/docker/Dockerfile":
                self.assertEqual(svc.get("image"), "sluice:latest", name)
                out[name] = svc
        return out

    def test_compose_command_lines_are_accepted(self):
        doc = compose()
        services = self.sluice_services(doc)
        self.assertEqual(sorted(services), ["ingest", "origin1", "origin2"])
        entry = [l for l in dockerfile_stages()[-1] if l.startswith("ENTRYPOINT ")]
        self.assertEqual(len(entry), 1)
        entrypoint = json.loads(entry[0][len("ENTRYPOINT "):])
        self.assertEqual(entrypoint[:3], ["/usr/bin/sluice", "--config", "/etc/sluice/sluice.conf"])
        tmp = tempfile.mkdtemp(prefix="sluice-compose-")
        self.addCleanup(shutil.rmtree, tmp, True)
        # The image's /etc/sluice/sluice.conf is what `meson install`
        # generates with --print-config; a binary without that option gets
        # an empty file (flags and environment beat the file either way).
        conf = os.path.join(tmp, "sluice.conf")
        printed = subprocess.run([SLUICE_BIN, "--print-config"], capture_output=True, timeout=60)
        with open(conf, "wb") as f:
            f.write(printed.stdout if printed.returncode == 0 else b"[sluice]\n")
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        roles = {}
        for name, svc in services.items():
            env = dict(base_env)
            for k, v in svc.get("environment", {}).items():
                env[k] = interpolate(str(v), self.SECRETS)
            argv = [SLUICE_BIN, "--config", conf] + entrypoint[3:] + svc["command"]
            out = subprocess.run(argv + ["--check-config"], env=env, capture_output=True,
                                 timeout=60)
            text = out.stdout.decode() + out.stderr.decode()
            self.assertEqual(out.returncode, 0, f"{name}: {svc['command']}\n{text}")
            self.assertIn("configuration OK", out.stdout.decode())
            for secret in self.SECRETS.values():
                self.assertNotIn(secret, text)
            role = re.search(r"^role = (\S+)", out.stdout.decode(), re.M).group(1)
            store = re.search(r"^store = (\S+)", out.stdout.decode(), re.M).group(1)
            self.assertEqual(store, "redis://redis:6379/0", name)
            self.assertIn(store.split("//")[1].split(":")[0], doc["services"], "store host")
            roles[name] = role
            if role == "origin":
                # Its healthcheck asks the port it listens on.
                port = re.search(r"^http-listen = \S+:(\d+)", out.stdout.decode(), re.M).group(1)
                self.assertIn(f"127.0.0.1:{port}/readyz", " ".join(svc["healthcheck"]["test"]))
            # The check fails for real on a bad command line.
            bad = subprocess.run(argv + ["--no-such-option", "--check-config"], env=env,
                                 capture_output=True, timeout=60)
            self.assertEqual(bad.returncode, 2)
        self.assertEqual(roles, {"ingest": "ingest", "origin1": "origin", "origin2": "origin"})
        self.assertNotIn(self.SECRETS["SLUICE_DEMO_KEY"], json.dumps(doc))

    def test_compose_nginx_config_passes_nginx_t(self):
        doc = compose()
        cdn = doc["services"]["cdn"]
        self.assertTrue(cdn["image"].startswith("nginx:1.22"), cdn["image"])
        # The mounted directory is deploy/nginx, and nginx reads its nginx.conf.
        mounts = dict(v.split(":")[:2] for v in cdn["volumes"])
        self.assertEqual(mounts.get("./nginx"), "/etc/nginx/sluice")
        conf_arg = cdn["command"][cdn["command"].index("-c") + 1]
        self.assertEqual(conf_arg, "/etc/nginx/sluice/nginx.conf")
        with open(os.path.join(ROOT, "deploy", "nginx", "nginx.conf")) as f:
            conf = f.read()
        self.assertIn("include cdn.conf;", conf)
        # Every origin service is in the upstream with the port it listens on.
        upstream = re.findall(r"^\s*server\s+([\w.-]+):(\d+)", conf, re.M)
        origins = {}
        for name, svc in self.sluice_services(doc).items():
            if "origin" in svc["command"][svc["command"].index("--role") + 1]:
                listen = svc["command"][svc["command"].index("--http-listen") + 1]
                origins[name] = listen.rsplit(":", 1)[1]
        self.assertEqual(sorted(upstream), sorted(origins.items()))
        cache_path = re.search(r"proxy_cache_path\s+(\S+)", conf).group(1)
        self.assertIn(cache_path, [v.split(":")[1] for v in cdn["volumes"]])
        # nginx -t resolves upstream host names: the compose service names
        # only resolve inside the compose network, so the test copy points
        # them at 127.0.0.1, and keeps its cache in a temporary directory.
        tmp = tempfile.mkdtemp(prefix="sluice-nginx-")
        self.addCleanup(shutil.rmtree, tmp, True)
        for name in origins:
            conf, n = re.subn(rf"\bserver\s+{name}:", "server 127.0.0.1:", conf)
            self.assertEqual(n, 1, name)
        conf = conf.replace(cache_path, os.path.join(tmp, "cache"))
        with open(os.path.join(tmp, "nginx.conf"), "w") as f:
            f.write(conf)
        shutil.copy(os.path.join(ROOT, "deploy", "nginx", "cdn.conf"), tmp)
        out = subprocess.run(["nginx", "-t", "-p", tmp, "-e", os.path.join(tmp, "error.log"),
                              "-c", os.path.join(tmp, "nginx.conf")],
                             capture_output=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr.decode())
        self.assertIn("test is successful", out.stderr.decode())

    def test_image_runtime_packages_match_shlibdeps(self):
        """The runtime stage installs exactly the packages dpkg-shlibdeps
        names for the binary (a missing library would make the image fail
        at start), plus curl (HEALTHCHECK) and ca-certificates."""
        stages = dockerfile_stages()
        self.assertEqual(len(stages), 2)
        for s in stages:
            self.assertRegex(s[0], r"^FROM debian:12-slim\b")
        build = " ".join(stages[0])
        for step in ("deploy/packages.sh build", "deploy/web-deps.sh", "--prefix=/usr",
                     "meson install -C build --destdir /stage"):
            self.assertIn(step, build)
        runtime = " ".join(stages[1])
        m = re.search(r"apt-get install ((?:-\S+\s+)*)(.*?)(?:>|&&)", runtime)
        listed = set(m.group(2).split())
        self.assertIn("USER sluice", stages[1])
        self.assertIn("EXPOSE 1935 8080 8081", stages[1])
        self.assertTrue(any(l.startswith("HEALTHCHECK ") and "/healthz" in l for l in stages[1]))

        tmp = tempfile.mkdtemp(prefix="sluice-shlibs-")
        self.addCleanup(shutil.rmtree, tmp, True)
        os.mkdir(os.path.join(tmp, "debian"))
        with open(os.path.join(tmp, "debian", "control"), "w") as f:
            f.write("Source: sluice\n\nPackage: sluice\nArchitecture: any\n")
        out = subprocess.run(["dpkg-shlibdeps", "-O", os.path.abspath(SLUICE_BIN)], cwd=tmp,
                             capture_output=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr.decode())
        deps = out.stdout.decode().split("=", 1)[1]
        needed = {d.strip().split()[0] for d in deps.split(",")}
        # The sanitizer runtimes of a test build are not in a release build.
        needed = {p for p in needed if not re.match(r"lib(asan|ubsan|lsan|tsan)\d", p)}
        self.assertIn("libavcodec59", needed)
        self.assertEqual(listed - {"curl", "ca-certificates"}, needed)
