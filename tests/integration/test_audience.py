"""Audience beacons end to end (issue 22) against the real sluice and a real
ffmpeg publisher: beacons posted to `POST /beacon/ID` the way a player page
does (urllib, `text/plain` as navigator.sendBeacon sends, and
`application/json`) become the stream's audience in the status API, in
`/hls/ID/viewers.json` and in the `sluice_audience_*` metrics (labels stream
and rendition only): three sessions on two renditions are three viewers with
the right per-rendition counts, a stalled one gives a rebuffer ratio above 0,
an `ended` beacon takes a viewer off at the next scan, a session that goes
silent is gone after --audience-timeout, and the broadcast's totals (peak,
sessions, watch time) stay in the idle status as `audience.last`. With no
beacons, an ffmpeg reader pulling the playlists is counted by requests
(`source` "requests"). Two nodes sharing a redis-server show the same
audience on both admin APIs.

The beacon endpoint and the --audience-* options belong to the origin (built
beside the aggregation); a binary without them skips this module, saying so.
"""

import json
import re
import subprocess
import time
import unittest
import urllib.error
import urllib.request

from harness import SLUICE_BIN, Sluice, http, parse_master, publish, shared_redis, wait_for
from test_metrics import parse_metrics, promtool_check

REDIS_DB = 12
KEY = "demo-secret-key"
TIMEOUT_S = 10

FAMILIES = ("sluice_audience_viewers", "sluice_audience_request_viewers",
            "sluice_audience_rendition_viewers", "sluice_audience_peak_viewers",
            "sluice_audience_sessions_total", "sluice_audience_watch_seconds_total",
            "sluice_audience_stalled", "sluice_audience_rebuffer_ratio",
            "sluice_audience_startup_seconds_p50", "sluice_audience_startup_seconds_p90",
            "sluice_audience_latency_seconds_p50", "sluice_audience_latency_seconds_p90",
            "sluice_audience_errors")


def has_beacons():
    out = subprocess.run([SLUICE_BIN, "--help"], capture_output=True, timeout=30)
    return b"--audience-timeout" in out.stdout + out.stderr


def beacon(sl, stream, session, state, rendition=None, json_type=False, **fields):
    """POSTs one beacon; returns the status code."""
    body = dict(session=session, state=state, **fields)
    if rendition is not None:
        body["rendition"] = rendition
    ctype = "application/json" if json_type else "text/plain;charset=UTF-8"
    req = urllib.request.Request(sl.url(f"/beacon/{stream}"), data=json.dumps(body).encode(),
                                 method="POST", headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def status(sl, stream="demo"):
    st, _, body = http(sl.admin_url(f"/api/v1/streams/{stream}"))
    assert st == 200, f"status of {stream}: {st}"
    return json.loads(body)


def viewers_json(sl, stream="demo"):
    st, hdrs, body = http(sl.url(f"/hls/{stream}/viewers.json"))
    assert st == 200, f"viewers.json of {stream}: {st}"
    return json.loads(body)


def metrics(sl):
    st, _, body = http(sl.admin_url("/metrics"))
    assert st == 200
    return body.decode()


def renditions_of(sl, stream="demo"):
    """Rendition names in the master playlist's variant URIs (NAME/index.m3u8)."""
    st, _, body = http(sl.url(f"/hls/{stream}/master.m3u8"))
    assert st == 200
    _, variants = parse_master(body.decode())
    return [uri.split("/")[0] for _, uri in variants]


def check_labels(text):
    """Every sluice_audience_* sample has only the labels stream and rendition."""
    for line in text.splitlines():
        if line.startswith("sluice_audience_"):
            labels = set(re.findall(r'(\w+)="', line.split(" ")[0]))
            assert labels <= {"stream", "rendition"}, f"labels of {line!r}"
            assert "stream" in labels, f"no stream label: {line!r}"


class AudienceTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not has_beacons():
            raise unittest.SkipTest("this sluice has no --audience-timeout: the beacon endpoint "
                                    "(origin/) is not in this build")

    def test_beacons_become_the_audience(self):
        sl = Sluice("--audience-timeout", str(TIMEOUT_S), "--segment-duration", "1",
                    "--ladder", "480p,360p", "--preset", "ultrafast", "--reconnect-window", "0")
        pub = None
        try:
            pub = publish(sl.rtmp_url(KEY), seconds=120, size="854x480")
            wait_for(lambda: http(sl.url("/hls/demo/master.m3u8"))[0] == 200, 30,
                     "the master playlist")
            rends = renditions_of(sl)
            self.assertGreaterEqual(len(rends), 2, rends)
            r0, r1 = rends[0], rends[1]
            a, b, c = "sessA-0123456789abcdef", "sessB-0123456789abcdef", "sessC-0123456789abcdef"

            # Three sessions on two renditions; C is stalled.
            self.assertEqual(beacon(sl, "demo", a, "playing", r0, watch_ms=8000, startup_ms=700,
                                    latency_ms=3000), 204)
            self.assertEqual(beacon(sl, "demo", b, "playing", r1, json_type=True, watch_ms=4000,
                                    startup_ms=1500, latency_ms=5000, player="test 1.0"), 204)
            self.assertEqual(beacon(sl, "demo", c, "stalled", r1, watch_ms=2000, stall_ms=3000,
                                    stalls=2, latency_ms=9000, errors=1), 204)
            c_last = time.time()  # C's last beacon
            doc = wait_for(lambda: (lambda d: d if d["audience"].get("beacon_viewers") == 3
                                    else None)(status(sl)), 8, "three beacon viewers")
            aud = doc["audience"]
            self.assertEqual(doc["viewers"], 3)
            self.assertEqual(aud["viewers"], 3)
            self.assertEqual(aud["source"], "beacons")
            self.assertEqual(aud["renditions"], {r0: 1, r1: 2})
            self.assertEqual(aud["states"], {"starting": 0, "playing": 2, "stalled": 1,
                                             "paused": 0})
            self.assertGreater(aud["rebuffer_ratio"], 0)
            self.assertAlmostEqual(aud["rebuffer_ratio"], 3000 / (14000 + 3000), places=3)
            self.assertEqual(aud["startup_ms"], {"p50": 700, "p90": 1500})
            self.assertEqual(aud["latency_ms"], {"p50": 5000, "p90": 9000})
            self.assertEqual(aud["errors"], 1)
            self.assertEqual(aud["peak"], 3)
            self.assertEqual(aud["sessions_total"], 3)
            self.assertIn("updated", aud)
            self.assertIn("request_viewers", aud)

            vj = wait_for(lambda: (lambda v: v if v.get("viewers") == 3 else None)(
                viewers_json(sl)), 6, "viewers.json at 3")
            self.assertTrue(vj["live"])

            text = metrics(sl)
            for fam in FAMILIES:
                self.assertIn(f"# HELP {fam} ", text)
                self.assertIn(f"# TYPE {fam} ", text)
            check_labels(text)
            m = parse_metrics(text)
            self.assertEqual(m[("sluice_audience_viewers", frozenset({("stream", "demo")}))], 3)
            self.assertEqual(m[("sluice_audience_rendition_viewers",
                                frozenset({("stream", "demo"), ("rendition", r1)}))], 2)
            self.assertEqual(m[("sluice_audience_stalled", frozenset({("stream", "demo")}))], 1)
            self.assertGreater(m[("sluice_audience_rebuffer_ratio",
                                  frozenset({("stream", "demo")}))], 0)
            rc, out = promtool_check(text)
            self.assertEqual(rc, 0, out)

            # A ends (sendBeacon at unload): the count drops at the next
            # flush and scan, not after the timeout.
            t0 = time.time()
            self.assertEqual(beacon(sl, "demo", a, "ended", r0, watch_ms=9000), 204)
            wait_for(lambda: status(sl)["viewers"] == 2, 5, "the ended session to leave")
            self.assertLess(time.time() - t0, 5)
            self.assertEqual(status(sl)["audience"]["peak"], 3)

            # C goes silent, B keeps beaconing: C is gone after the timeout.
            watch = [4000]

            def b_alive_c_gone():
                watch[0] += 1000
                beacon(sl, "demo", b, "playing", r1, watch_ms=watch[0])
                return status(sl)["viewers"] == 1
            wait_for(b_alive_c_gone, TIMEOUT_S + 8, "the silent session to time out",
                     interval=1.5)
            self.assertGreater(time.time() - c_last, TIMEOUT_S - 1, "gone before the timeout")
            aud = status(sl)["audience"]
            self.assertEqual(aud["renditions"], {r1: 1})
            self.assertEqual(aud["sessions_total"], 3)
            self.assertEqual(aud["peak"], 3)

            # The broadcast ends: the totals stay.
            pub.kill()
            pub.communicate()
            doc = wait_for(lambda: (lambda d: d if d["state"] == "idle" and
                                    "last" in d.get("audience", {}) else None)(status(sl)),
                           20, "the idle status with the last audience")
            self.assertEqual(doc["viewers"], 0)
            self.assertEqual(doc["audience"]["viewers"], 0)
            last = doc["audience"]["last"]
            self.assertEqual(last["peak"], 3)
            self.assertEqual(last["sessions_total"], 3)
            # A 9 s, B at least its last beacon, C 2 s.
            self.assertGreaterEqual(last["watch_time_s"], 9 + 5 + 2)
            self.assertIn("ended_at", last)
            vj = wait_for(lambda: (lambda v: v if not v.get("live") else None)(viewers_json(sl)),
                          10, "viewers.json not live")
            self.assertEqual(vj["viewers"], 0)
            m = parse_metrics(metrics(sl))
            self.assertNotIn(("sluice_audience_viewers", frozenset({("stream", "demo")})), m)
        finally:
            sl.close(pub)

    def test_requests_are_the_source_without_beacons(self):
        sl = Sluice("--audience-timeout", str(TIMEOUT_S), "--segment-duration", "1",
                    "--ladder", "360p", "--preset", "ultrafast")
        pub = reader = None
        try:
            pub = publish(sl.rtmp_url(KEY), seconds=60, size="640x360")
            wait_for(lambda: http(sl.url("/hls/demo/master.m3u8"))[0] == 200, 30,
                     "the master playlist")
            reader = subprocess.Popen(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
                                       "-i", sl.url("/hls/demo/master.m3u8"), "-t", "30",
                                       "-f", "null", "-"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            doc = wait_for(lambda: (lambda d: d if d["audience"].get("request_viewers", 0) >= 1
                                    and "peak" in d["audience"] else None)(status(sl)),
                           15, "the reader counted by requests")
            aud = doc["audience"]
            self.assertEqual(aud["source"], "requests")
            self.assertEqual(aud["beacon_viewers"], 0)
            self.assertEqual(aud["viewers"], aud["request_viewers"])
            self.assertEqual(doc["viewers"], aud["viewers"])
            self.assertIsNone(aud["startup_ms"])
            m = parse_metrics(metrics(sl))
            self.assertGreaterEqual(m[("sluice_audience_request_viewers",
                                       frozenset({("stream", "demo")}))], 1)
            self.assertGreaterEqual(viewers_json(sl)["viewers"], 1)
        finally:
            if reader and reader.poll() is None:
                reader.kill()
            if reader:
                reader.wait()
            sl.close(pub)

    def test_two_nodes_show_the_same_audience(self):
        port = shared_redis()
        subprocess.run(["redis-cli", "-p", str(port), "-n", str(REDIS_DB), "flushdb"],
                       check=True, capture_output=True)
        store = f"redis://127.0.0.1:{port}/{REDIS_DB}"
        ingest = Sluice("--store", store, "--segment-duration", "1", "--ladder", "360p",
                        "--preset", "ultrafast", "--audience-timeout", str(TIMEOUT_S),
                        streams=(("demo", KEY),))
        origin = pub = None
        try:
            origin = Sluice("--store", store, "--role", "origin", "--segment-duration", "1",
                            "--audience-timeout", str(TIMEOUT_S), streams=())
            pub = publish(ingest.rtmp_url(KEY), seconds=60, size="640x360")
            wait_for(lambda: http(origin.url("/hls/demo/master.m3u8"))[0] == 200, 30,
                     "the master playlist on the origin node")
            rend = renditions_of(origin)[0]
            # One session beacons to each node's public listener.
            s1, s2 = "nodeone-0123456789ab", "nodetwo-0123456789ab"
            self.assertEqual(beacon(origin, "demo", s1, "playing", rend, watch_ms=1000), 204)
            self.assertEqual(beacon(ingest, "demo", s2, "paused", rend, watch_ms=2000), 204)

            def both_at_two():
                a, b = status(ingest), status(origin)
                return (a, b) if a["viewers"] == 2 and b["viewers"] == 2 else None
            a, b = wait_for(both_at_two, 10, "both nodes at 2 viewers")
            self.assertEqual(b["state"], "live")
            for k in ("viewers", "source", "beacon_viewers", "renditions", "states", "peak",
                      "sessions_total"):
                self.assertEqual(a["audience"][k], b["audience"][k], k)
            self.assertEqual(b["audience"]["renditions"], {rend: 2})
            self.assertEqual(viewers_json(origin)["viewers"], 2)
            self.assertEqual(viewers_json(ingest)["viewers"], 2)
            # The metrics come from the node that aggregates (where it is live).
            self.assertIn('sluice_audience_viewers{stream="demo"} 2', metrics(ingest))
            self.assertNotIn('sluice_audience_viewers{stream="demo"}', metrics(origin))
        finally:
            try:
                if origin:
                    origin.close()
            finally:
                ingest.close(pub)


def put_record(port, db, stream, session, record, ttl_ms=30000):
    """Writes a session's meta record into the shared Redis the way the
    origin's flusher does (store_meta_put: field -> "<expiry ms> <value>",
    by the server's clock). record: the text of common/audience.h's format
    version 1, "1 STATE REND LATENCY STARTUP STALLS STALL_MS WATCH_MS DROPPED
    ERRORS"; spelled here only because this test stands in for the origin."""
    def cli(*args):
        return subprocess.run(["redis-cli", "-p", str(port), "-n", str(db), *args],
                              check=True, capture_output=True, timeout=10).stdout.decode()
    secs, usecs = cli("TIME").split()
    expiry = int(secs) * 1000 + int(usecs) // 1000 + ttl_ms
    key = f"sluice:{{{stream}}}:meta"
    cli("HSET", key, f"aud.{session}", f"{expiry} {record}")
    if int(cli("PTTL", key).strip()) < ttl_ms:
        cli("PEXPIRE", key, str(ttl_ms))


class AudienceStoreTest(unittest.TestCase):
    """The aggregation side alone, with the origin's records written straight
    into the shared Redis: runs without the beacon endpoint."""

    def test_records_in_the_store_become_the_audience_on_every_node(self):
        port = shared_redis()
        subprocess.run(["redis-cli", "-p", str(port), "-n", str(REDIS_DB), "flushdb"],
                       check=True, capture_output=True)
        store = f"redis://127.0.0.1:{port}/{REDIS_DB}"
        ingest = Sluice("--store", store, "--segment-duration", "1", "--ladder", "480p,360p",
                        "--preset", "ultrafast", "--reconnect-window", "0",
                        streams=(("demo", KEY),))
        origin = pub = None
        try:
            origin = Sluice("--store", store, "--role", "origin", "--segment-duration", "1",
                            streams=())
            pub = publish(ingest.rtmp_url(KEY), seconds=60, size="854x480")
            wait_for(lambda: http(ingest.url("/hls/demo/master.m3u8"))[0] == 200, 30,
                     "the master playlist")
            r0, r1 = renditions_of(ingest)[:2]
            put_record(port, REDIS_DB, "demo", "storeA-0123456789ab",
                       f"1 playing {r0} 3000 700 0 0 8000 0 0")
            put_record(port, REDIS_DB, "demo", "storeB-0123456789ab",
                       f"1 playing {r1} 5000 1500 0 0 4000 0 0")
            put_record(port, REDIS_DB, "demo", "storeC-0123456789ab",
                       f"1 stalled {r1} 9000 -1 2 3000 2000 5 1")
            put_record(port, REDIS_DB, "demo", "storeD-0123456789ab", "not a record")

            def both_at(n):
                a, b = status(ingest), status(origin)
                return (a, b) if a["viewers"] == n and b["viewers"] == n else None
            a, b = wait_for(lambda: both_at(3), 8, "both nodes at 3 viewers")
            for doc in (a, b):
                aud = doc["audience"]
                self.assertEqual(doc["state"], "live")
                self.assertEqual(aud["source"], "beacons")
                self.assertEqual(aud["renditions"], {r0: 1, r1: 2})
                self.assertEqual(aud["states"]["stalled"], 1)
                self.assertAlmostEqual(aud["rebuffer_ratio"], 3000 / 17000, places=3)
                self.assertEqual(aud["startup_ms"], {"p50": 700, "p90": 1500})
                self.assertEqual(aud["latency_ms"], {"p50": 5000, "p90": 9000})
                self.assertEqual((aud["dropped_frames"], aud["errors"]), (5, 1))
                self.assertEqual((aud["peak"], aud["sessions_total"]), (3, 3))
            text = metrics(ingest)
            for fam in FAMILIES:
                self.assertIn(f"# TYPE {fam} ", text)
            check_labels(text)
            rc, out = promtool_check(text)
            self.assertEqual(rc, 0, out)
            m = parse_metrics(text)
            self.assertEqual(m[("sluice_audience_rendition_viewers",
                                frozenset({("stream", "demo"), ("rendition", r1)}))], 2)
            self.assertEqual(m[("sluice_audience_startup_seconds_p90",
                                frozenset({("stream", "demo")}))], 1.5)
            self.assertNotIn('sluice_audience_viewers{stream="demo"}', metrics(origin))
            st, _, body = http(ingest.admin_url("/api/v1/stats"))
            self.assertEqual(json.loads(body)["audience"]["viewers"], 3)

            # An ended session: off at the next scan; peak stays.
            put_record(port, REDIS_DB, "demo", "storeA-0123456789ab",
                       f"1 ended {r0} 3000 700 0 0 9000 0 0", ttl_ms=5000)
            a, b = wait_for(lambda: both_at(2), 5, "both nodes at 2 viewers")
            self.assertEqual(b["audience"]["peak"], 3)

            # The broadcast ends: the totals stay, on both nodes.
            pub.kill()
            pub.communicate()

            def idle_with_last(sl):
                d = status(sl)
                return d if d["state"] == "idle" and "last" in d.get("audience", {}) else None
            for sl in (ingest, origin):
                doc = wait_for(lambda: idle_with_last(sl), 20, "the idle status with the totals")
                self.assertEqual(doc["viewers"], 0)
                last = doc["audience"]["last"]
                self.assertEqual((last["peak"], last["sessions_total"]), (3, 3))
                self.assertEqual(last["watch_time_s"], 15.0)
                self.assertIn("ended_at", last)
            self.assertNotIn('sluice_audience_viewers{stream="demo"}', metrics(ingest))
            self.assertIn("session record(s) left out", ingest.log())
        finally:
            try:
                if origin:
                    origin.close()
            finally:
                ingest.close(pub)


if __name__ == "__main__":
    unittest.main()
