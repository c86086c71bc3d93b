"""sluice's player page (/player/ID, web/player.*) in a real browser:
Debian's chromium driven by playwright-core (tests/browser/player_page.mjs).
Opened before the stream is live it shows the offline state; publishing then
starts playback without a reload; the quality selector lists every rung and
picking one loads that rung's media; the latency badge shows a number; after
a pause "Go live" appears and returns to the live edge; the
page sends audience beacons and no sid, and the origin counts one viewer; ?embed=1 hides the page chrome and
passes its token through; without MediaSource the browser's own HLS plays,
or the page says why it cannot; after the broadcast ends the page waits
offline instead of replaying the ended playlists. With --playback-secret the
page's token reaches every request (once) and every beacon, and a page
without one says so. Screenshots go to build-dir/screenshots/."""

import base64
import hashlib
import hmac
import json
import os
import select
import subprocess
import tempfile
import time
import unittest

from harness import ROOT, SLUICE_BIN, Sluice, http, publish, wait_for

KEY = "demo-secret-key"
SCRIPT = os.path.join(ROOT, "tests", "browser", "player_page.mjs")


class PlayerPageTest(unittest.TestCase):

    def test_offline_live_quality_latency_golive_viewers_embed_fallbacks_end(self):
        shots = os.path.join(os.path.dirname(os.path.abspath(SLUICE_BIN)), "screenshots")
        os.makedirs(shots, exist_ok=True)
        # The source copied as 480p and one rung encoded: two rungs to pick.
        # A 480p source keeps the sanitizer build's decode and encode light
        # beside chromium on two cores, and without overload protection the
        # encoded rung cannot be dropped while the test waits to switch to it.
        sluice = Sluice("--ladder", "480p,360p", "--preset", "ultrafast",
                        "--overload-protection", "off")
        node = pub = None
        errf = tempfile.TemporaryFile()
        try:
            node = subprocess.Popen(
                ["node", SCRIPT, sluice.url(""), sluice.admin_url(""), "demo", shots, "75"],
                stdout=subprocess.PIPE, stderr=errf)
            lines = []
            deadline = time.time() + 100
            # Publish once the page shows its offline state; stop when told.
            while time.time() < deadline:
                ready, _, _ = select.select([node.stdout], [], [], 0.5)
                if not ready:
                    if node.poll() is not None:
                        break
                    continue
                line = node.stdout.readline().decode()
                if not line:
                    break
                lines.append(line)
                if '"phase":"offline"' in line:
                    pub = publish(sluice.rtmp_url(KEY), seconds=120, size="854x480")
                elif '"phase":"stop-publishing"' in line and pub is not None:
                    # The seller stops: ffmpeg unpublishes on SIGTERM (a
                    # kill would be a drop the stream waits for).
                    pub.terminate()
                    pub.communicate()
                    pub = None
            node.wait(timeout=10)
            errf.seek(0)
            err = errf.read()
            rest = [l for l in "".join(lines).splitlines() if l.strip()]
            self.assertTrue(rest, err.decode(errors="replace")[-3000:])
            result = json.loads(rest[-1])
            print(f"\n  player page: levels {result['levels']}, media per picked rung "
                  f"{result['switches']}, badge {result['latencyText']!r}, "
                  f"go live {result.get('goLive')}, viewers {result['viewers']}, "
                  f"beacons {result.get('beacons')}, "
                  f"native HLS {result.get('nativeHls')}", end="")
            self.assertEqual(result["problems"], [], result)
            self.assertEqual(result["phases"],
                             ["offline", "playing", "embed", "fallbacks", "ended"])
            self.assertEqual(node.returncode, 0)
            for name in ("player.png", "player-offline.png", "player-embed.png"):
                self.assertTrue(os.path.getsize(os.path.join(shots, name)) > 0, name)
        finally:
            if node is not None and node.poll() is None:
                node.kill()
                node.communicate()
            errf.close()
            sluice.close(pub)

    def test_signed_playback_token_passed_through(self):
        secret = "player-page-test-secret"
        sluice = Sluice("--ladder", "360p", "--preset", "ultrafast", "--playback-secret", secret)
        pub = None
        try:
            pub = publish(sluice.rtmp_url(KEY), seconds=60, size="640x360")

            def live():
                s, _, b = http(sluice.admin_url("/api/v1/streams/demo"))
                return s == 200 and json.loads(b)["state"] == "live"
            wait_for(live, 20, "the stream to go live")
            out = subprocess.run(["node", SCRIPT, "--signed", sluice.url(""), "demo",
                                  mint_token(secret, "demo")], capture_output=True, timeout=90)
            lines = out.stdout.decode().strip().splitlines()
            self.assertTrue(lines, out.stderr.decode(errors="replace")[-3000:])
            result = json.loads(lines[-1])
            print(f"\n  signed: {result.get('requests')} requests and {result.get('beacons')} beacons "
                  f"with the token; "
                  f"without: {result.get('refused')!r}", end="")
            self.assertEqual(result["problems"], [], result)
            self.assertEqual(out.returncode, 0)
        finally:
            sluice.close(pub)


def mint_token(secret, stream_id, ttl=3600):
    """A playback token as docs/cdn.md "Signed playback" mints it."""
    exp = str(int(time.time()) + ttl)
    msg = "|".join(["sluice-v1", stream_id, exp, "", ""]).encode()
    sig = base64.urlsafe_b64encode(hmac.new(secret.encode(), msg, hashlib.sha256).digest())
    return "~".join([exp, "", "", sig.rstrip(b"=").decode()])


if __name__ == "__main__":
    unittest.main()
