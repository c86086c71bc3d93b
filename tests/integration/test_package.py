"""The Debian package and `meson install` (issue 10): the .deb builds from a
copy of the tree (deploy/build-deb.sh), holds what an operator needs,
installs with apt offline, and the INSTALLED binary runs a real publish with
the INSTALLED config, as the service would run it (user sluice, no new
privileges, W^X memory enforced by the kernel, in /var/lib/sluice); the
systemd unit verifies and its hardening score holds; purge leaves nothing.

Needs root (CI runs as root): it installs and purges the package on this
machine. Not root is a failure, never a skip."""

import ctypes
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from harness import ROOT, SLUICE_BIN, SANITIZER_MARKS, free_port, http, publish, wait_for

PKG_FILES = [
    "/usr/bin/sluice",
    "/etc/sluice/sluice.conf",
    "/usr/share/man/man1/sluice.1.gz",
    "/lib/systemd/system/sluice.service",
    "/usr/share/doc/sluice/examples/low-ports.conf",
    "/usr/share/doc/sluice/copyright",
    "/usr/share/sluice/sluice-reload-certs",
] + ["/usr/share/sluice/web/" + f for f in (
    "player.html", "player.js", "player.css", "dashboard.html", "dashboard.js",
    "dashboard.css", "hls.min.js", "uPlot.iife.min.js", "uPlot.min.css")]

# What a purge must take away besides the package's own files.
PURGED = ["/etc/sluice", "/var/lib/sluice",
          "/etc/systemd/system/multi-user.target.wants/sluice.service"]

KEY = "pkg-test-publish-key-5d41402a"

PR_SET_NO_NEW_PRIVS = 38
PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1


def run(cmd, timeout=120, check=True, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d:\n%s\n%s" % (" ".join(cmd), p.returncode,
                                                       p.stdout[-3000:], p.stderr[-3000:]))
    return p


def help_options():
    """Every --NAME of `sluice --help` (the test's build)."""
    out = run([SLUICE_BIN, "--help"]).stdout
    names = re.findall(r"^  --([a-z0-9-]+)", out, re.M)
    assert len(names) > 50, out
    return names


def installed():
    p = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "sluice"], capture_output=True,
                       text=True)
    return "installed" in p.stdout or "config-files" in p.stdout


def purge():
    return run(["apt-get", "purge", "-y", "-q", "sluice"], timeout=120, check=False,
               env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def service_sandbox():
    """preexec_fn: what sluice.service applies that the kernel can enforce
    without systemd as PID 1 (runs after the switch to user sluice)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    # MemoryDenyWriteExecute=yes: no mapping may become executable after it
    # was writable. A codec that generated code at run time fails here.
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_MDWE")


class PackageTest(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.fail("test_package.py installs and purges the sluice .deb: run it as root "
                      "(CI does); it is not skipped")
        self.tmp = tempfile.mkdtemp(prefix="sluice-pkg-test-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.times = {}

    def tearDown(self):
        # Never leave the package behind, whatever failed.
        if installed():
            purge()
        print("\n  package test times: " +
              ", ".join("%s %.1f s" % kv for kv in self.times.items()))

    def assert_every_option(self, page):
        """The rendered man page has an entry (a line starting with the
        option) for every option of --help."""
        missing = [n for n in help_options()
                   if not re.search(r"(?m)^\s+--%s(?=\s|$)" % re.escape(n), page)]
        self.assertEqual(missing, [], "options of --help without an entry in sluice(1)")

    def timed(self, name, fn, *args, **kw):
        t = time.time()
        try:
            return fn(*args, **kw)
        finally:
            self.times[name] = time.time() - t

    # ---- meson install -----------------------------------------------------

    def test_meson_install_destdir(self):
        """`meson install --destdir` of the test's own build: the files of a
        source install, a unit with the prefix's paths that verifies, a
        config that is exactly --print-config, a man page naming every
        option of --help."""
        build = os.path.dirname(os.path.abspath(SLUICE_BIN))
        self.assertTrue(os.path.isdir(os.path.join(build, "meson-private")),
                        "SLUICE_BIN is not in a meson build directory: " + build)
        dest = os.path.join(self.tmp, "dest")
        self.timed("meson install", run, ["meson", "install", "-C", build, "--no-rebuild",
                                          "--quiet", "--destdir", dest])
        intro = run(["meson", "introspect", build, "--buildoptions"]).stdout
        opts = {o["name"]: o["value"] for o in json.loads(intro)}
        prefix = opts["prefix"]
        sysconf = os.path.join(prefix, opts["sysconfdir"])
        want = [os.path.join(prefix, opts["bindir"], "sluice"),
                os.path.join(sysconf, "sluice", "sluice.conf"),
                os.path.join(prefix, opts["mandir"], "man1", "sluice.1"),
                os.path.join(prefix, "lib/systemd/system/sluice.service"),
                os.path.join(prefix, opts["datadir"], "doc/sluice/examples/low-ports.conf"),
                os.path.join(prefix, opts["datadir"], "sluice/sluice-reload-certs")]
        want += [os.path.join(prefix, opts["datadir"], "sluice/web", os.path.basename(f))
                 for f in PKG_FILES if "/web/" in f]
        for f in want:
            self.assertTrue(os.path.isfile(dest + f), "meson install did not install " + f)
        self.assertNotIn("sluice-viewers", os.listdir(dest + os.path.join(prefix, "bin")))
        self.assertTrue(os.access(dest + want[5], os.X_OK), "the certbot hook is not executable")

        conf = open(dest + want[1]).read()
        self.assertEqual(conf, run([SLUICE_BIN, "--print-config"]).stdout)

        unit = open(dest + want[3]).read()
        self.assertIn("ExecStart=%s --config %s/sluice/sluice.conf\n" % (want[0], sysconf), unit)
        self.assertNotRegex(unit, r"@[a-z]+@")  # every path substituted
        # verify checks that ExecStart exists and that `man sluice(1)` (the
        # unit's Documentation=) finds a page: point both at the DESTDIR.
        unit_path = os.path.join(self.tmp, "sluice.service")
        with open(unit_path, "w") as f:
            f.write(unit.replace(want[0], dest + want[0]))
        p = run(["systemd-analyze", "verify", unit_path], check=False,
                env=dict(os.environ, MANPATH=dest + os.path.join(prefix, opts["mandir"])))
        self.assertEqual((p.returncode, p.stderr.strip()), (0, ""), p.stdout)

        page = run(["man", "--nh", "--nj", "-l", dest + want[2]],
                   env=dict(os.environ, MANWIDTH="200", LC_ALL="C", MANPAGER="cat")).stdout
        self.assert_every_option(page)

    # ---- the Debian package ------------------------------------------------

    def test_deb_builds_installs_runs_and_purges(self):
        if installed():
            print("\n  sluice was installed before the test: purging it first")
            purge()
        out = os.path.join(self.tmp, "out")
        os.mkdir(out)
        # From a copy of the tree: the checkout and its parent stay clean.
        def outputs():  # what dpkg-buildpackage leaves next to the tree it builds
            return sorted(f for f in os.listdir(os.path.dirname(ROOT))
                          if re.search(r"\.(deb|ddeb|buildinfo|changes)$", f))
        before = outputs()
        p = self.timed("build .deb", run, [os.path.join(ROOT, "deploy/build-deb.sh"), out],
                       timeout=600, env=dict(os.environ, DEB_BUILD_OPTIONS="parallel=2 noddebs"))
        deb = p.stdout.strip().splitlines()[-1]
        self.assertTrue(re.search(r"/sluice_0\.1\.0-1_[a-z0-9]+\.deb$", deb), deb)
        self.assertEqual(outputs(), before)
        self.assertFalse(os.path.exists(os.path.join(ROOT, "debian", "sluice")))

        listing = run(["dpkg-deb", "-c", deb]).stdout
        for f in PKG_FILES:
            self.assertIn(" ." + f + "\n", listing)
        self.assertRegex(listing, r"(?m)^-rwxr-xr-x .* \./usr/share/sluice/sluice-reload-certs$")
        fields = run(["dpkg-deb", "-f", deb, "Depends"]).stdout
        for lib in ("libavcodec", "libavformat", "libmicrohttpd", "libhiredis", "adduser"):
            self.assertIn(lib, fields)
        self.assertNotRegex(fields, r"\bffmpeg\b")  # the libraries, not the tool

        p = self.timed("apt install", run, ["apt-get", "install", "-y", "-q",
                                            "--no-install-recommends", deb],
                       timeout=180, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        # Offline: the runtime libraries are there already, nothing else comes.
        self.assertIn("0 upgraded, 1 newly installed, 0 to remove", p.stdout)
        self.addCleanup(lambda: installed() and purge())
        self.assertEqual(run(["/usr/bin/sluice", "--version"]).stdout, "sluice 0.1.0\n")
        self.assertIn("/etc/sluice/sluice.conf",
                      run(["dpkg-query", "-W", "-f=${Conffiles}", "sluice"]).stdout)
        user = run(["getent", "passwd", "sluice"]).stdout.split(":")
        self.assertEqual((user[5], user[6].strip()), ("/var/lib/sluice", "/usr/sbin/nologin"))
        st = os.stat("/var/lib/sluice")
        self.assertEqual((st.st_uid, st.st_mode & 0o777), (int(user[2]), 0o750))
        # Enabled (the symlink deb-systemd-helper makes), not started.
        self.assertTrue(os.path.islink(PURGED[2]), "sluice.service is not enabled")

        # The unit: verifies against the installed binary, and the hardening
        # holds (systemd's own exposure score, 0 best .. 10 worst).
        p = run(["systemd-analyze", "verify", "/lib/systemd/system/sluice.service"], check=False)
        self.assertEqual((p.returncode, p.stderr.strip()), (0, ""), p.stdout)
        p = run(["systemd-analyze", "security", "--offline=true", "--threshold=20",
                 "/lib/systemd/system/sluice.service"], check=False)
        score = re.search(r"Overall exposure level for sluice.service: ([0-9.]+)", p.stdout)
        self.assertTrue(score, p.stdout[-2000:] + p.stderr)
        print("\n  systemd-analyze security exposure: " + score.group(1))
        self.assertEqual(p.returncode, 0, "exposure above 2.0:\n" + p.stdout[-3000:])

        # The man page renders, with every option of --help.
        with gzip.open("/usr/share/man/man1/sluice.1.gz", "rt") as f:
            self.assertIn(".TH", f.read())
        page = run(["man", "--nh", "--nj", "-l", "/usr/share/man/man1/sluice.1.gz"],
                   env=dict(os.environ, MANWIDTH="200", LC_ALL="C", MANPAGER="cat")).stdout
        for section in ("NAME", "SYNOPSIS", "OPTIONS", "FILES", "SIGNALS", "EXIT STATUS",
                        "ENVIRONMENT", "SEE ALSO"):
            self.assertRegex(page, r"(?m)^%s$" % section)
        self.assert_every_option(page)

        # The installed config: what --print-config says, and it checks out.
        conf = open("/etc/sluice/sluice.conf").read()
        self.assertEqual(conf, run(["/usr/bin/sluice", "--print-config"]).stdout)
        p = run(["/usr/bin/sluice", "--check-config", "--config", "/etc/sluice/sluice.conf"],
                check=False, env={"PATH": "/usr/bin:/bin"})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.endswith("configuration OK\n"), p.stdout[-500:])
        bad = os.path.join(self.tmp, "bad.conf")
        with open(bad, "w") as f:
            f.write(conf.replace("#segment-duration = 2", "segment-duration = soon"))
        p = run(["/usr/bin/sluice", "--check-config", "--config", bad], check=False,
                env={"PATH": "/usr/bin:/bin"})
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertRegex(p.stderr, r"bad\.conf:\d+ \(segment-duration\): 'soon' is not a number")
        self.assertNotIn("configuration OK", p.stdout)

        self.timed("publish through the installed binary", self.publish_installed)

        self.timed("apt purge", purge)
        self.assertFalse(installed())
        for f in PKG_FILES + PURGED:
            self.assertFalse(os.path.lexists(f), f + " is still there after purge")
        for db in ("passwd", "group"):
            p = run(["getent", db, "sluice"], check=False)
            self.assertNotEqual(p.returncode, 0, "%s entry sluice left: %s" % (db, p.stdout))

    def publish_installed(self):
        """The installed binary with the installed config, as the service
        runs it, plus loopback ports and a stream: an ffmpeg publish is
        transcoded (one x264 rung, so swscale and x264 run under W^X) and a
        segment is served."""
        ports = {n: free_port() for n in ("rtmp", "http", "admin")}
        logpath = os.path.join(self.tmp, "sluice.log")
        log = open(logpath, "w")
        proc = subprocess.Popen(
            ["/usr/bin/sluice", "--config", "/etc/sluice/sluice.conf",
             "--rtmp-listen", "127.0.0.1:%d" % ports["rtmp"],
             "--http-listen", "127.0.0.1:%d" % ports["http"],
             "--admin-listen", "127.0.0.1:%d" % ports["admin"],
             "--stream", "pkg:" + KEY, "--ladder", "360p", "--passthrough", "never",
             "--segment-duration", "1", "--part-duration", "0"],
            stdout=log, stderr=subprocess.STDOUT, cwd="/var/lib/sluice", user="sluice",
            group="sluice", extra_groups=[], preexec_fn=service_sandbox,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
        log.close()
        pub = None

        def logtext():
            with open(logpath, errors="replace") as f:
                return f.read()
        try:
            wait_for(lambda: proc.poll() is not None or "ready" in logtext(), 20,
                     "the installed sluice to be ready", interval=0.05)
            self.assertIsNone(proc.poll(), logtext())
            base = "http://127.0.0.1:%d/hls/pkg/" % ports["http"]
            pub = publish("rtmp://127.0.0.1:%d/live/%s" % (ports["rtmp"], KEY), seconds=8,
                          size="640x360")

            def segment():
                s, _, body = http(base + "360p/index.m3u8")
                if s != 200:
                    return None
                names = re.findall(r"^(\d+\.m4s)$", body.decode(), re.M)
                return names[0] if names else None
            seg = wait_for(segment, 20, "a 360p segment in the media playlist")
            s, _, master = http(base + "master.m3u8")
            self.assertEqual(s, 200)
            self.assertIn("360p/index.m3u8", master.decode())
            s, hdrs, body = http(base + "360p/" + seg)
            self.assertEqual(s, 200)
            self.assertGreater(len(body), 1000)
            self.assertIn(b"moof", body[:200])
            s, _, init = http(base + "360p/init.mp4")
            self.assertEqual(s, 200)
            self.assertIn(b"avc1", init)  # encoded by x264 here, not copied
        finally:
            if pub is not None and pub.poll() is None:
                pub.kill()
            if pub is not None:
                pub.communicate()
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        text = logtext()
        self.assertEqual(proc.returncode, 0, text[-4000:])
        self.assertNotIn(KEY, text)
        for mark in SANITIZER_MARKS:
            self.assertNotIn(mark, text)


if __name__ == "__main__":
    unittest.main()
