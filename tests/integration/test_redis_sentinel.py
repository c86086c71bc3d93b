"""Redis high availability through Sentinel (issue 27), end to end: one
master, one replica and three sentinels (redis-server --sentinel), an
ingest node and two origins on redis-sentinel://, a live stream watched by
sluice-viewers and by blocking-reload pollers, the master killed with
SIGKILL while the API creates streams. Measured and printed: kill -> first
new part through each origin, the longest playlist hold, viewer errors.
Also: separate data and sentinel credentials with a Redis 6 ACL user, and an
unknown master name. Real redis-server, ffmpeg and sluice processes."""

import json
import os
import re
import subprocess
import threading
import time
import unittest
import urllib.request

from harness import (REPL_FAST, SLUICE_BIN, RedisSentinel, RedisServer, Sluice, check_no_tilt,
                     http, parse_media, publish, sentinel_cluster, stop_cluster, wait_for)
from test_load_tool import VIEWERS_BIN, ll_ready
from test_metrics import promtool_check
from test_redis import stop_all

KEY = "demo-secret-key"
DEMO = (("demo", KEY),)
DB = 7
REND = "360p"

_cluster = None


def setUpModule():
    global _cluster
    _cluster = sentinel_cluster()


def tearDownModule():
    if _cluster:
        stop_cluster(*_cluster)


def sentinel_url(sentinels, name="sluice", db=DB, userinfo="", query=""):
    hosts = ",".join(s.address() for s in sentinels)
    return f"redis-sentinel://{userinfo}{hosts}/{name}?db={db}{query}"


def hint_of(text):
    m = re.search(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="(\d+)\.(\d+)\.m4s"', text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def last_part(text):
    parts = re.findall(r'#EXT-X-PART:[^\n]*URI="(\d+)\.(\d+)\.m4s"', text)
    return (int(parts[-1][0]), int(parts[-1][1])) if parts else None


def post_json(url, body):
    req = urllib.request.Request(url, method="POST", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, None
    except OSError:
        return 0, None


class Poller(threading.Thread):
    """Blocking reloads of one origin's media playlist, as an LL-HLS player
    makes them: records every answer's hold, the media sequence and last
    part (which must never go back), the segment names (each N.m4s at
    sequence number N), and when each new part was fetchable."""

    def __init__(self, node):
        super().__init__(daemon=True)
        self.node = node
        self.stop = threading.Event()
        self.holds = []    # (start, seconds, status)
        self.parts = []    # (time fetchable, (msn, part))
        self.problems = []
        self.errors = 0
        self.text = None   # the last playlist answered

    def run(self):
        base = self.node.url(f"/hls/demo/{REND}/index.m3u8")
        text, last_seq, last_pos = None, -1, (-1, -1)
        while not self.stop.is_set():
            hint = hint_of(text) if text else None
            url = base + (f"?_HLS_msn={hint[0]}&_HLS_part={hint[1]}" if hint else "")
            t = time.time()
            try:
                st, _, body = http(url, timeout=15)
            except OSError:
                st, body = 0, b""
            self.holds.append((t, time.time() - t, st))
            if st != 200:
                self.errors += 1
                text = None
                time.sleep(0.2)
                continue
            text = self.text = body.decode()
            pl = parse_media(text)
            seq = int(pl["tags"].get("EXT-X-MEDIA-SEQUENCE", "0"))
            for i, seg in enumerate(pl["segments"]):
                if seg["uri"] != f"{seq + i}.m4s":
                    self.problems.append(f"segment {seq + i} named {seg['uri']}")
            pos = last_part(text) or (-1, -1)
            if seq < last_seq or pos < last_pos:
                self.problems.append(f"playlist went back: seq {last_seq}->{seq}, "
                                     f"part {last_pos}->{pos}")
            if pos > last_pos and pos != (-1, -1):
                pst = http(self.node.url(f"/hls/demo/{REND}/{pos[0]}.{pos[1]}.m4s"))[0]
                if pst == 200:
                    self.parts.append((time.time(), pos))
                else:
                    self.problems.append(f"part {pos} named but answered {pst}")
            last_seq, last_pos = max(last_seq, seq), max(last_pos, pos)

    def last_before(self, t0):
        before = [p for t, p in self.parts if t <= t0]
        return before[-1] if before else (-1, -1)

    def first_new_after(self, t0):
        ref = self.last_before(t0)
        for t, p in self.parts:
            if t > t0 and p > ref:
                return t
        return None


class LateRequest(threading.Thread):
    """One request made while the store is away: answered (after the
    failover), never 503."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url, self.status, self.took, self.body = url, None, None, b""

    def run(self):
        t = time.time()
        try:
            self.status, _, self.body = http(self.url, timeout=15)
        except OSError:
            self.status = 0
        self.took = time.time() - t


class Creator(threading.Thread):
    """POSTs /api/v1/streams to a node's admin API every 150 ms until
    stopped; records every answer."""

    def __init__(self, node):
        super().__init__(daemon=True)
        self.node = node
        self.stop = threading.Event()
        self.answers = []  # (time, status, id)

    def run(self):
        n = 0
        while not self.stop.is_set():
            n += 1
            t = time.time()
            st, doc = post_json(self.node.admin_url("/api/v1/streams"), {"name": f"burst {n}"})
            self.answers.append((t, st, doc["id"] if st == 201 and doc else None))
            self.stop.wait(max(0, 0.15 - (time.time() - t)))


class SentinelFailoverTest(unittest.TestCase):

    def test_kill_master_under_a_live_ladder(self):
        master, replica, sentinels = _cluster
        url = sentinel_url(sentinels)
        nodes, pub, viewers, pollers, creator, events = [], None, None, [], None, None
        try:
            ing = Sluice("--store", url, "--role", "ingest", streams=DEMO)
            nodes.append(ing)
            for _ in range(2):
                nodes.append(Sluice("--store", url, "--role", "origin", streams=()))
            origins = nodes[1:]
            pub = publish(ing.rtmp_url(KEY), seconds=60, size="640x360")
            wait_for(lambda: all(ll_ready(o, rend=REND) for o in origins), 25,
                     "the stream live on both origins")
            # sluice's clients on the master are named (CLIENT SETNAME).
            self.assertTrue(any("name=sluice-" in c for c in master.clients()))

            pollers = [Poller(o) for o in origins]
            for p in pollers:
                p.start()
            viewers = subprocess.Popen(
                [VIEWERS_BIN, *sum((["--url", f"http://127.0.0.1:{o.http_port}"] for o in origins),
                                   []),
                 "--stream", "demo", "--viewers", "4", "--duration", "8", "--json"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            creator = Creator(ing)
            creator.start()
            events = sentinels[0].events()
            time.sleep(1.5)
            wait_for(lambda: all(p.parts and p.text for p in pollers), 5, "the pollers' first parts")

            t0 = time.time()
            master.kill()
            # Requests that arrive during the outage (the origins lost the
            # master at once: its sockets closed): a blocking reload, a part
            # that was fetchable before and a plain reload; held through it,
            # not 503.
            time.sleep(0.4)
            late, plain = [], []
            for p in pollers:
                hint = hint_of(p.text)
                part = p.last_before(t0)
                base = p.node.url(f"/hls/demo/{REND}/")
                late.append(LateRequest(f"{base}index.m3u8?_HLS_msn={hint[0]}&_HLS_part={hint[1]}"))
                late.append(LateRequest(f"{base}{part[0]}.{part[1]}.m4s"))
                late.append(LateRequest(f"{base}index.m3u8"))  # hls.js's retry
                plain.append((late[-1], part))
            for lr in late:
                lr.start()
            st, _, body = http(origins[0].url("/readyz"))
            self.assertEqual(st, 503, body)
            self.assertRegex(body, rb"^store unreachable: no Redis master for \d+\.\d s "
                                   rb"\(redis-sentinel, failovers 0\)\n$")

            def resumed():
                check_no_tilt(sentinels)
                return all(p.first_new_after(t0) for p in pollers)
            wait_for(resumed, 20, "a new part through both origins after the kill", interval=0.1)
            first = [p.first_new_after(t0) - t0 for p in pollers]
            # With the early switch the parts come before the announcement.
            wait_for(lambda: events.first("+switch-master", t0), 8, "+switch-master",
                     interval=0.05)
            switched = events.first("+switch-master", t0)
            time.sleep(max(0, t0 + 4 - time.time()))
            creator.stop.set()
            creator.join(15)
            check_no_tilt(sentinels)

            # The origins held their blocking reloads through the outage.
            for lr in late:
                lr.join(15)
                self.assertEqual(lr.status, 200, f"{lr.url} during the outage")
            # The plain reload got a playlist newer than the one before the
            # kill, not the replica's copy of it (hls.js would wait half a
            # target duration before asking again).
            for lr, part in plain:
                self.assertGreater(last_part(lr.body.decode()), part, lr.url)
            longest = max(h for p in pollers for _, h, _ in p.holds)
            for p in pollers:
                self.assertEqual(p.problems, [], p.node.url(""))
                self.assertEqual(p.errors, 0, f"poller of {p.node.url('')}: "
                                 f"{[(round(t - t0, 2), st) for t, _, st in p.holds if st != 200]}")
            for f in first:
                self.assertLess(f, 8, first)
            # The origins resumed before Sentinel published +switch-master
            # (it promotes ~0.9 s before it announces).
            self.assertIsNotNone(switched, "no +switch-master seen")
            for f in first:
                self.assertLess(f, switched - t0, f"new part {first} s, +switch-master "
                                f"{switched - t0:.2f} s after the kill")

            # Every node follows the replica, now the master; one failover.
            for n in nodes:
                st, _, body = http(n.admin_url("/api/v1/stats"))
                self.assertEqual(st, 200)
                store = json.loads(body)["store"]
                self.assertEqual(store["mode"], "sentinel", store)
                self.assertTrue(store["connected"], store)
                self.assertEqual(store["master"], f"127.0.0.1:{replica.port}", store)
                self.assertEqual(store["master_name"], "sluice")
                self.assertEqual(store["failovers"], 1, store)
                # Followed when the replica said master, before Sentinel
                # announced it (store_redis.c, rs_early_probe).
                self.assertEqual(store["early_switches"], 1, store)
                self.assertIsNotNone(store["last_failover"])
                self.assertEqual(store["sentinels"], {"configured": 3, "reachable": 3})
                self.assertGreater(store["last_outage_ms"], 0)
            for n in origins:
                st, _, body = http(n.url("/readyz"))
                self.assertEqual(st, 200)
                self.assertTrue(body.startswith(b"ready\nstore: redis-sentinel, failovers 1, last "),
                                body)
                self.assertNotIn(str(replica.port).encode(), body)
            st, _, body = http(origins[0].admin_url("/metrics"))
            self.assertIn(f'sluice_store_master_info{{name="sluice",addr="127.0.0.1:{replica.port}"}} 1',
                          body.decode())
            self.assertIn("sluice_store_failovers_total 1", body.decode())
            self.assertIn("sluice_store_early_switches_total 1", body.decode())
            self.assertIn('sluice_store_sentinels{state="reachable"} 3', body.decode())
            rc, out = promtool_check(body.decode())
            self.assertEqual(rc, 0, out)

            # No lost stream, no duplicate key.
            def hgetall(key):
                lines = replica.cli("HGETALL", key, db=DB).split("\n")[:-1]
                return dict(zip(lines[0::2], lines[1::2]))
            by_id = hgetall("sluice:{registry}:by-id")
            by_key = hgetall("sluice:{registry}:by-key")
            made = [i for _, st, i in creator.answers if st == 201]
            statuses = [st for _, st, _ in creator.answers]
            self.assertGreater(len(made), 10, statuses)
            for sid in made:
                self.assertIn(sid, by_id, "a stream answered 201 is lost")
            self.assertEqual(len(by_id), len(by_key))
            for hexkey, sid in by_key.items():
                self.assertEqual(by_id.get(sid, "")[:64], hexkey, sid)
            self.assertTrue(set(statuses) <= {201, 503}, statuses)

            # The old master comes back empty: sluice neither connects to it
            # nor writes to it (it is not the master the sentinels name).
            master.start(args=REPL_FAST)
            back = time.time()
            while time.time() - back < 2:
                named = [c for c in master.clients() if "name=sluice-" in c]
                self.assertEqual(named, [])
                self.assertNotIn(f"db{DB}:", master.cli("INFO", "keyspace"))
                time.sleep(0.25)
            for o in origins:
                self.assertEqual(http(o.url(f"/hls/demo/{REND}/index.m3u8"))[0], 200)

            out, err = viewers.communicate(timeout=30)
            lines = [l for l in out.splitlines() if l.startswith("{")]
            self.assertEqual(len(lines), 1, err[-2000:])
            rep = json.loads(lines[0])
            self.assertIsNone(pub.poll(), "the publisher was cut")
            log = ing.log()
            self.assertNotIn("another node holds it now", log)
            self.assertNotIn("taken over", log)
            print(f"\n  failover: kill -> +switch-master "
                  f"{(switched - t0) if switched else float('nan'):.2f} s, -> first new part "
                  f"{', '.join(f'{f:.2f}' for f in first)} s (origins); longest playlist hold {longest:.2f} s; viewers: "
                  f"{rep['errors']} errors {rep.get('http_errors', {})}, {rep['stalls']} stalls;"
                  f" API: {statuses.count(201)} created, {statuses.count(503)} answered 503;"
                  f" requests made during the outage held {min(lr.took for lr in late):.2f}-"
                  f"{max(lr.took for lr in late):.2f} s",
                  end="")
            self.assertEqual(rep["errors"], 0, rep)
        finally:
            for p in pollers:
                p.stop.set()
            if events:
                events.close()
            if creator:
                creator.stop.set()
            if viewers and viewers.poll() is None:
                viewers.kill()
                viewers.communicate()
            if pub and pub.poll() is None:
                pub.kill()
                pub.communicate()
            stop_all(*nodes)

    def test_unknown_master_name(self):
        _, _, sentinels = _cluster
        n = Sluice("--store", sentinel_url(sentinels, name="nosuch"), "--role", "origin",
                   streams=())
        try:
            wait_for(lambda: "does not know master 'nosuch'" in n.log(), 5, "the log line")
            st, _, body = http(n.url("/readyz"))
            self.assertEqual(st, 503)
            self.assertTrue(body.startswith(b"store unreachable: no Redis master for "), body)
        finally:
            stop_all(n)


class SentinelCredentialsTest(unittest.TestCase):
    """The data nodes and the sentinels with different passwords, the data
    nodes' through a Redis 6 ACL user."""

    def test_separate_passwords_and_acl_user(self):
        data = RedisServer(args=("--requirepass", "x", "--user", "sluice", "on", ">dpw", "~*", "&*",
                                 "+@all"))
        sen = None
        nodes = []
        try:
            sen = RedisSentinel(data.port, quorum=1,
                                extra=("requirepass spw", "sentinel auth-user sluice sluice",
                                       "sentinel auth-pass sluice dpw"))
            good = sentinel_url([sen], db=3, userinfo="sluice:dpw@",
                                query="&sentinel-password=spw")
            n = Sluice("--store", good, "--role", "origin", streams=())
            nodes.append(n)
            wait_for(lambda: http(n.url("/readyz"))[0] == 200, 5, "ready with both passwords")
            self.assertTrue(any("name=sluice-" in c and "user=sluice" in c
                                for c in data.clients()), data.clients())

            bad = sentinel_url([sen], db=3, userinfo="sluice:dpw@",
                               query="&sentinel-password=wrongpw")
            b = Sluice("--store", bad, "--role", "origin", streams=())
            nodes.append(b)
            wait_for(lambda: "sentinel-password" in b.log(), 5, "the refusal in the log")
            self.assertEqual(http(b.url("/readyz"))[0], 503)
            for node in nodes:
                for secret in ("dpw", "spw", "wrongpw"):
                    self.assertNotIn(secret, node.log())

            out = subprocess.run([SLUICE_BIN, "--check-config", "--store", good],
                                 capture_output=True, text=True, timeout=30)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn("sluice:********@", out.stdout)
            self.assertIn("sentinel-password=********", out.stdout)
            self.assertNotIn("dpw", out.stdout + out.stderr)
            self.assertNotIn("spw", out.stdout + out.stderr)
        finally:
            stop_all(*nodes)
            if sen:
                sen.stop()
            data.stop()
