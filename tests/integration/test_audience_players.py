"""Audience beacons (docs/audience.md) from ten players in one Debian
chromium, behind the nginx CDN configuration of deploy/nginx/ (driving
tests/browser/audience.mjs, which says what it checks).

The topology of a real deployment, on loopback: a redis-server of the
test's own; sluice A (ingest and origin) and sluice B (origin only) on it,
both with --audience-timeout 15 (players beacon every 10 s; 10 let a viewer drop out between two) and the CDN as a trusted proxy; ffmpeg
publishing a 854x480 source to A with a two-rung ladder (480p copied, 360p
encoded: light enough for the sanitizer build beside ten players on two
cores); nginx with deploy/nginx/cdn.conf in front of both origins, as
deploy/local-cluster.sh runs it. Every player, beacon and viewers.json
request goes through nginx; the admin APIs of both origins are read
directly.

SLUICE_AUDIENCE_FAKE=1 runs the browser side against beacons answered in
the browser (no server endpoint): the scaffold the player side was built on."""

import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import ROOT, SLUICE_BIN, RedisServer, Sluice, free_port, http, publish, wait_for

KEY = "demo-secret-key"
SCRIPT = os.path.join(ROOT, "tests", "browser", "audience.mjs")
SHOTS = os.path.join(os.path.dirname(os.path.abspath(SLUICE_BIN)), "screenshots")
TIMEOUT_S = 15


def start_nginx(run_dir, port, origins):
    """nginx as the CDN: deploy/nginx/cdn.conf inside a wrapper like the one
    deploy/local-cluster.sh writes (everything in run_dir)."""
    ngx = os.path.join(run_dir, "nginx")
    os.makedirs(os.path.join(ngx, "cache"))
    os.makedirs(os.path.join(ngx, "temp"))
    user = "user root;" if os.geteuid() == 0 else ""
    upstream = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;" for p in origins)
    conf = f"""{user}
worker_processes 1;
daemon off;
pid {ngx}/nginx.pid;
error_log {ngx}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {ngx}/access.log;
    client_body_temp_path {ngx}/temp/body;
    proxy_temp_path {ngx}/temp/proxy;
    fastcgi_temp_path {ngx}/temp/fastcgi;
    uwsgi_temp_path {ngx}/temp/uwsgi;
    scgi_temp_path {ngx}/temp/scgi;
    types {{ application/vnd.apple.mpegurl m3u8; video/mp4 mp4 m4s; }}
    proxy_cache_path {ngx}/cache levels=1:2 keys_zone=sluice_cache:16m
                     max_size=1g inactive=10m use_temp_path=off;
    upstream sluice_origins {{
{upstream}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        include {ROOT}/deploy/nginx/cdn.conf;
    }}
}}
"""
    path = os.path.join(ngx, "nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    args = ["nginx", "-p", ngx, "-e", os.path.join(ngx, "error.log"), "-c", path]
    subprocess.run(args + ["-t", "-q"], check=True, capture_output=True, timeout=10)
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    def up():
        try:
            return http(f"http://127.0.0.1:{port}/healthz")[0] == 200
        except OSError:
            if proc.poll() is not None:
                raise AssertionError("nginx exited: " + open(os.path.join(ngx, "error.log")).read()[-2000:])
            return False
    wait_for(up, 10, "nginx answering")
    return proc


class AudiencePlayersTest(unittest.TestCase):

    def test_ten_players_through_the_cdn(self):
        os.makedirs(SHOTS, exist_ok=True)
        fake = os.environ.get("SLUICE_AUDIENCE_FAKE") == "1"
        run_dir = tempfile.mkdtemp(prefix="sluice-audience-")
        self.addCleanup(shutil.rmtree, run_dir, True)
        redis = RedisServer()
        self.addCleanup(redis.stop)
        common = ["--store", redis.url(), "--trusted-proxies", "127.0.0.1"]
        if not fake:
            common += ["--audience-timeout", str(TIMEOUT_S)]
        a = Sluice("--ladder", "480p,360p", "--preset", "ultrafast", "--overload-protection", "off",
                   *common)
        b = pub = nginx = None
        try:
            b = Sluice("--role", "origin", *common)
            cdn_port = free_port()
            nginx = start_nginx(run_dir, cdn_port, (a.http_port, b.http_port))
            cdn = f"http://127.0.0.1:{cdn_port}"
            # 15 frames a second: ten pages decode it on two cores.
            pub = publish(a.rtmp_url(KEY), seconds=150, size="854x480", rate=15, gop=30)

            def established():
                for r in ("480p", "360p", "audio"):
                    s, _, body = http(f"{cdn}/hls/demo/{r}/index.m3u8")
                    if s != 200 or body.count(b"#EXTINF") < 3:
                        return False
                return True
            wait_for(established, 45, "three segments in every rendition through the CDN")

            args = ["node", SCRIPT, cdn, a.admin_url(""), b.admin_url(""), "demo", SHOTS, "360p",
                    str(TIMEOUT_S)] + (["--fake"] if fake else [])
            t = time.time()
            out = subprocess.run(args, capture_output=True, timeout=150)
            took = time.time() - t
            lines = [l for l in out.stdout.decode().splitlines() if l.startswith("{")]
            self.assertTrue(lines, out.stdout.decode()[-2000:] + out.stderr.decode(errors="replace")[-4000:])
            result = json.loads(lines[-1])
            self.print_result(result, took)
            if result["problems"]:
                # Which beacons reached the CDN at the end, and what they got.
                with open(os.path.join(run_dir, "nginx", "access.log"), errors="replace") as f:
                    beacons = [l.strip() for l in f if "/beacon/" in l]
                self.fail(json.dumps(result)[:6000] + "\n" + out.stderr.decode(errors="replace")[-3000:] +
                          "\nlast beacons through the CDN:\n" + "\n".join(beacons[-30:]))
            self.assertEqual(out.returncode, 0)
            if not fake:
                # Through the CDN: the beacons reached the origins uncached,
                # and no media URL carried a per-viewer parameter.
                with open(os.path.join(run_dir, "nginx", "access.log")) as f:
                    log = f.read()
                self.assertIn("POST /beacon/demo", log)
                self.assertNotIn("sid=", log)
        finally:
            if pub is not None and pub.poll() is None:
                pub.kill()
                pub.communicate()
            if nginx is not None:
                nginx.terminate()
                nginx.wait(10)
            if b is not None:
                b.close()
            a.close()

    @staticmethod
    def print_result(r, took):
        t = r.get("times", {})
        gone = r.get("failedByThemselves") or []
        n = 10 - len(gone)
        print(f"\n  browser side {took:.0f} s{' (fake server)' if r.get('fake') else ''}: all {n} playing at "
              f"+{t.get('allPlaying')} s; {n} viewers on both origins {t.get('tenOnBoth')} s later", end="")
        for g in gone:
            print(f"\n  left out, its player threw before it played: {json.dumps(g)[:600]}", end="")
        aud = r.get("audienceAtTen") or {}
        print(f"\n  audience: viewers {aud.get('viewers')} ({aud.get('source')}), request-based "
              f"{aud.get('request_viewers')}, startup {aud.get('startup_ms')}, latency {aud.get('latency_ms')}",
              end="")
        print(f"\n  renditions: {json.dumps(r.get('renditions'))}", end="")
        print(f"\n  throttled: {json.dumps(r.get('throttled'))}", end="")
        print(f"\n  viewers.json via the CDN: {json.dumps(r.get('viewersJson'))}; shop badge "
              f"{r.get('shopBadge')!r}", end="")
        print(f"\n  dashboard of origin A: {json.dumps(r.get('dashboard'))}", end="")
        print(f"\n  closed: 1 after {t.get('closedToOne')} s (unload beacons), 0 after "
              f"{t.get('closedToZero')} s ({t.get('lastCrashedBeaconToZero')} s after the killed page's "
              f"last beacon; timeout {TIMEOUT_S} s); unload beacons the test saw: {r.get('endedSeen')}", end="")
        for p in r.get("pages", []):
            lb = p.get("lastBeacon", {})
            print(f"\n    {p['name']:12} {p['beacons']:3} beacons {p['states']} plays {p['rendition']}, "
                  f"last: {lb.get('rendition')} latency {lb.get('latency_ms')} ms startup "
                  f"{lb.get('startup_ms')} ms {lb.get('player')!r}"
                  f"{' player errors ' + str(p['playerErrors']) if p.get('playerErrors') else ''}", end="")


if __name__ == "__main__":
    unittest.main()
