"""Timed metadata as players and people see it (docs/metadata.md), in
Debian's chromium (tests/browser/metadata.mjs).

test_players_receive_posted_metadata: a live two-rung ladder; items posted
through the admin API and one through the dashboard's "Send test product
card" button. hls.js (pinned to each rung in turn), Shaka Player (low
latency) and video.js must each receive every
payload in both forms (the emsg/ID3 box and the EXT-X-DATERANGE), know of it
before it plays, and place it where the stamped program date-time is; the
player page must show each product card, with its title, link and picture
as given (and without the fields it must refuse), on the first frame at or
after the stamped time, and nothing for a payload that is not a card. The
offsets are printed (docs/benchmarks.md "Timed metadata sync"). Then the
broadcast ends and hls.js replays two items from its recording.

The same players against a server part faked in the browser (the scaffold
the player side was built on before the endpoint existed) is
tests/interop/metadata_fake.py, run by hand.

test_player_page_cards_from_injected_cues: the player page's side alone, on
any sluice: the browser test puts a DATERANGE into the playlists the page
loads and hls.js-like cues into its metadata track, and checks the
de-duplication of the two forms, hex payloads, untrusted fields, the timing
and items in the past."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest
import urllib.error
import urllib.request

from harness import ROOT, SLUICE_BIN, Sluice, http, publish, wait_for

KEY = "demo-secret-key"
SCRIPT = os.path.join(ROOT, "tests", "browser", "metadata.mjs")
SHOTS = os.path.join(os.path.dirname(os.path.abspath(SLUICE_BIN)), "screenshots")


def established(sluice, renditions):
    """Three whole segments in every rendition's playlist: players join an
    established stream, as viewers do (Shaka in low-latency mode fails to
    start on a single segment: see test_player_matrix.py)."""
    def ready():
        for r in renditions:
            status, _, body = http(sluice.url(f"/hls/demo/{r}/index.m3u8"))
            if status != 200 or body.count(b"#EXTINF") < 3:
                return False
        return http(sluice.url("/hls/demo/master.m3u8"))[0] == 200
    wait_for(ready, 45, "three segments in every rendition's playlist")


def post_json(url, doc):
    """POST a JSON body; returns (status, body bytes)."""
    req = urllib.request.Request(url, method="POST", data=json.dumps(doc).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def run_node(args, timeout):
    node = subprocess.Popen(["node", SCRIPT] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        stdout, stderr = node.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        node.kill()
        stdout, stderr = node.communicate()
        raise AssertionError(f"metadata.mjs ran over {timeout} s:\n" + stderr.decode(errors="replace")[-3000:])
    lines = [l for l in stdout.decode().splitlines() if l.startswith("{")]
    if not lines:
        raise AssertionError("metadata.mjs printed no result:\n" + stdout.decode()[-2000:] +
                             stderr.decode(errors="replace")[-3000:])
    return json.loads(lines[-1]), node.returncode


def print_offsets(result):
    """The measured offsets (seconds; metadata.mjs says what each is)."""
    print()
    for name, r in result.get("players", {}).items():
        print(f"  {name:6} lead {r.get('lead')}\n         enter {r.get('enter')}\n"
              f"         pdt {r.get('pdt')}\n         daterange-emsg {r.get('daterange')}")
        if name == "videojs":
            print(f"         cuechange {r.get('cuechange')}")
        if name == "hlsjs":
            print(f"         cues kept on its metadata track, per item: "
                  f"{[o.get('trackCues') for o in r.get('items', [])]}")
            print(f"         renditions (hls.js fragment type:level) that carried each item: "
                  f"{[o.get('rungs') for o in r.get('items', [])]}")
    page = result.get("page", {})
    print(f"  player page: card on the frame at +{page.get('frame')} s; cards seen "
          f"{[c.get('title') for c in page.get('seen', [])]}; dashboard {result.get('dashboard')}", end="")


class MetadataPlayersTest(unittest.TestCase):

    def run_e2e(self, mode, before=None, after=None, args=()):
        """Runs metadata.mjs in mode (e2e or e2e-fake) on a live two-rung
        ladder, after before(sluice) if given, and checks its result. The
        source is copied as 480p and one rung encoded, as the player page's
        test runs it: light enough for the sanitizer build beside three
        browser pages on two cores."""
        os.makedirs(SHOTS, exist_ok=True)
        sluice = Sluice("--ladder", "480p,360p", "--preset", "ultrafast", "--overload-protection", "off", *args)
        pub = None
        try:
            pub = publish(sluice.rtmp_url(KEY), seconds=180, size="854x480")
            established(sluice, ("480p", "360p", "audio"))
            if before:
                before(sluice)
            # A binary of another branch (SLUICE_BIN) embeds older pages:
            # the browser then gets this tree's.
            args = [mode, sluice.url(""), sluice.admin_url(""), "demo", SHOTS]
            with open(os.path.join(ROOT, "web", "player.js"), "rb") as f:
                if http(sluice.url("/assets/player.js"))[2] != f.read():
                    print("\n  the binary's pages differ from this tree's: served from web/", end="")
                    args += ["--local-web", os.path.join(ROOT, "web")]
            result, rc = run_node(args, 240)
            print_offsets(result)
            self.assertEqual(result["problems"], [], json.dumps(result)[:6000])
            self.assertEqual(rc, 0)
            if after:
                after(sluice, pub, result)
        finally:
            sluice.close(pub)

    def test_players_receive_posted_metadata(self):
        def probe(sluice):
            # A text item of this test's own, read straight from the
            # playlists: every rendition lists it, quoted.
            status, body = post_json(sluice.admin_url("/api/v1/streams/demo/metadata"),
                                     {"payload": "probe from python"})
            self.assertEqual(status, 202, body)
            item = json.loads(body)
            for r in ("480p", "360p", "audio"):
                def listed():
                    s, _, b = http(sluice.url(f"/hls/demo/{r}/index.m3u8"))
                    return s == 200 and f'ID="sluice-{item["id"]}"'.encode() in b and b
                text = wait_for(listed, 10, f"the DATERANGE in {r}").decode()
                line = next(l for l in text.splitlines() if f'ID="sluice-{item["id"]}"' in l)
                self.assertIn('X-PAYLOAD="probe from python"', line)
                self.assertIn(f'START-DATE="{item["program_date_time"]}"', line)
        rec = tempfile.mkdtemp(prefix="sluice-meta-rec-")
        self.addCleanup(shutil.rmtree, rec, True)

        def replay(sluice, pub, result):
            # The broadcast ends (ffmpeg stops on SIGTERM: an unpublish), its
            # recording is finalized; hls.js replays two items from it.
            pub.terminate()
            pub.communicate(timeout=20)

            def ready():
                st, _, body = http(sluice.admin_url("/api/v1/streams/demo/recordings"))
                if st != 200:
                    return None
                recs = json.loads(body)
                recs = recs.get("recordings", recs) if isinstance(recs, dict) else recs
                return next((r["id"] for r in recs if r.get("state") == "ready"), None)
            rid = wait_for(ready, 30, "the recording ready")
            items = os.path.join(rec, "items.json")
            with open(items, "w") as f:
                json.dump(result["items"], f)
            replayed, rc = run_node(["replay", sluice.url(""), rid, items, SHOTS], 90)
            print("\n  replay (hls.js, /vod/): " + "; ".join(
                f"item {o.get('id')} lead {o.get('lead')} enter {o.get('enter')} frame {o.get('frame')} "
                f"pdt {o.get('pdt')} daterange-emsg {o.get('daterange')}" for o in replayed.get("items", [])), end="")
            self.assertEqual(replayed["problems"], [], json.dumps(replayed)[:6000])
            self.assertEqual(rc, 0)
        self.run_e2e("e2e", probe, replay,
                     ("--record", "--recordings-dir", rec, "--reconnect-window", "0"))

    def test_player_page_cards_from_injected_cues(self):
        os.makedirs(SHOTS, exist_ok=True)
        sluice = Sluice("--ladder", "360p", "--preset", "ultrafast")
        pub = None
        try:
            pub = publish(sluice.rtmp_url(KEY), seconds=120, size="640x360")
            established(sluice, ("360p", "audio"))
            result, rc = run_node(["stub", sluice.url(""), "demo", SHOTS], 150)
            print(f"\n  stub: card B shown {result.get('frame')} s after its time; items "
                  f"{[(c['payload'][:20], c['source'], c['shown'], c['skipped']) for c in result.get('cards', [])]}",
                  end="")
            self.assertEqual(result["problems"], [], json.dumps(result)[:6000])
            self.assertEqual(rc, 0)
        finally:
            sluice.close(pub)


if __name__ == "__main__":
    unittest.main()
