"""The memory store's registry on disk (--state-dir, store/store_state.c)
against the real binary: streams created, re-keyed, changed and deleted
through the admin API survive a kill -9 and a restart on the same state
directory (the created stream's key publishes, the rotated-away key is
refused); --stream seeds go on top of it (an API rotation of a configured
stream stands while the configuration is unchanged, a changed configured key
wins, a stream the configuration dropped goes); a state directory that
cannot be used is a clear startup error."""

import os
import shutil
import subprocess
import tempfile
import unittest

from harness import SLUICE_BIN, Sluice, finish, free_port, http, publish, wait_for
from test_admin import api


def refused(sl, key):
    """A publish with key is refused (BadName), and the log says so."""
    before = sl.log().count("publish refused: unknown stream key")
    rc, _ = finish(publish(sl.rtmp_url(key), seconds=2, size="320x240"), 30)
    wait_for(lambda: sl.log().count("publish refused: unknown stream key") > before, 10,
             "the refusal in the log")
    return rc != 0


def ids(sl):
    st, _, doc, _ = api(sl, "GET", "/api/v1/streams")
    assert st == 200, st
    return sorted(s["id"] for s in doc["streams"])


class StateDirTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sluice-state-test-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def start(self, streams=(("demo", "demo-secret-key"),), *args):
        return Sluice(*args, streams=streams, state_dir=self.dir)

    def test_streams_survive_kill_9(self):
        sl = self.start()
        secrets = []
        try:
            st, _, made, text = api(sl, "POST", "/api/v1/streams", {"name": "kept shop"})
            self.assertEqual(st, 201, text)
            st, _, rot, _ = api(sl, "POST", "/api/v1/streams", {"name": "rotated"})
            self.assertEqual(st, 201)
            st, _, gone, _ = api(sl, "POST", "/api/v1/streams", {"name": "deleted"})
            self.assertEqual(st, 201)
            st, _, rotated, _ = api(sl, "POST", f"/api/v1/streams/{rot['id']}/rotate-key")
            self.assertEqual(st, 200)
            self.assertNotEqual(rotated["stream_key"], rot["stream_key"])
            self.assertEqual(api(sl, "DELETE", f"/api/v1/streams/{gone['id']}")[0], 204)
            st, _, doc, _ = api(sl, "PATCH", f"/api/v1/streams/{made['id']}",
                                {"record": False, "ladder": {"rungs": ["360p"]}})
            self.assertEqual(st, 200)
            secrets = [made["stream_key"], rot["stream_key"], rotated["stream_key"],
                       gone["stream_key"]]
            # Answered means on disk: no clean shutdown needed.
            sl.proc.kill()
            sl.proc.wait()
            self.assertEqual(sl.proc.returncode, -9)
            # Keys are stored as hashes only.
            with open(os.path.join(self.dir, "registry.db"), "rb") as f:
                raw = f.read()
            wal = os.path.join(self.dir, "registry.db-wal")
            if os.path.exists(wal):
                with open(wal, "rb") as f:
                    raw += f.read()
            for k in secrets:
                self.assertNotIn(k.encode(), raw)
        finally:
            sl.kill()

        sl = self.start()
        pubs = []
        try:
            self.assertIn("stream registry: %s/registry.db (3 streams loaded)"
                          % os.path.realpath(self.dir), sl.log())
            self.assertEqual(ids(sl), sorted(["demo", made["id"], rot["id"]]))
            st, _, doc, _ = api(sl, "GET", f"/api/v1/streams/{made['id']}")
            self.assertEqual((st, doc["name"], doc["record"], doc["ladder"]),
                             (200, "kept shop", False, {"rungs": ["360p"]}))
            self.assertEqual(api(sl, "GET", f"/api/v1/streams/{gone['id']}")[0], 404)
            # The created stream's key still publishes.
            pub = publish(sl.rtmp_url(made["stream_key"]), seconds=30, size="320x240")
            pubs.append(pub)
            wait_for(lambda: http(sl.url(f"/hls/{made['id']}/master.m3u8"))[0] == 200, 30,
                     "the created stream's master playlist")
            # The key rotated away is refused, and so is the deleted stream's.
            self.assertTrue(refused(sl, rot["stream_key"]), "the rotated-away key published")
            self.assertTrue(refused(sl, gone["stream_key"]), "a deleted stream's key published")
            log = sl.log()
            for k in secrets:
                self.assertNotIn(k, log)
        finally:
            sl.close(*pubs)

    def test_seeds_on_top(self):
        # Start 1: two configured streams; demo is re-keyed through the API.
        sl = self.start((("demo", "demo-key-one-0001"), ("old", "old-key-0000001")))
        try:
            st, _, rot, _ = api(sl, "POST", "/api/v1/streams/demo/rotate-key")
            self.assertEqual(st, 200)
        finally:
            sl.kill()
        # Start 2, same configuration: the rotation stands (a restart does not
        # bring back a key that was rotated away).
        sl = self.start((("demo", "demo-key-one-0001"), ("old", "old-key-0000001")))
        try:
            self.assertIn("stream 'demo': keeps the key it was given through the API", sl.log())
            self.assertTrue(refused(sl, "demo-key-one-0001"))
            self.assertEqual(ids(sl), ["demo", "old"])
        finally:
            sl.close()
        # Start 3: demo's configured key changed, `old` left the
        # configuration: the operator's configuration wins.
        sl = self.start((("demo", "demo-key-two-0002"),))
        try:
            log = sl.log()
            self.assertIn("stream 'demo': the key from the configuration replaces the stored one",
                          log)
            self.assertIn("stream 'old' removed: it came from the configuration", log)
            self.assertEqual(ids(sl), ["demo"])
            self.assertTrue(refused(sl, rot["stream_key"]))
            self.assertNotIn(rot["stream_key"], log)
        finally:
            sl.close()

    def run_bad(self, state_dir):
        ports = [free_port() for _ in range(3)]
        return subprocess.run(
            [SLUICE_BIN, "--rtmp-listen", f"127.0.0.1:{ports[0]}",
             "--http-listen", f"127.0.0.1:{ports[1]}", "--admin-listen", f"127.0.0.1:{ports[2]}",
             "--state-dir", state_dir, "--stream", "demo:demo-secret-key"],
            capture_output=True, text=True, timeout=30)

    def test_unusable_state_dir_is_a_clear_error(self):
        afile = os.path.join(self.dir, "a-file")
        open(afile, "w").close()
        p = self.run_bad(afile)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(f"--state-dir {afile}: '{afile}' is not a directory", p.stderr)
        missing = os.path.join(self.dir, "no", "such")
        p = self.run_bad(missing)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(f"cannot create '{missing}': No such file or directory", p.stderr)
        # Two processes on one state directory: the second is refused.
        sl = self.start()
        try:
            p = self.run_bad(self.dir)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("registry.db is in use by another process", p.stderr)
        finally:
            sl.close()

    def test_none_keeps_memory_only_and_warns(self):
        sl = Sluice("--state-dir", "none")
        try:
            self.assertIn("--state-dir none: the stream registry is kept in memory only", sl.log())
            self.assertFalse(os.path.exists("none"))
        finally:
            sl.close()


if __name__ == "__main__":
    unittest.main()
