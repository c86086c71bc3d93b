"""Webhooks (control/webhook.c, docs/webhooks.md) against a real HTTP server
in the test: publish authorisation (accept, accept with an id, reject,
timeout, webhook down) seen from a real RTMP publisher, and stream events
(signed, unique delivery ids, retried with the same id)."""

import hashlib
import hmac
import json
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import Sluice, finish, free_port, http, publish, wait_for
import re

from test_ingest import Rtmp, flv_clip

SECRET = "whsec-test-secret"


def key_hash(key):
    return hashlib.sha256(key.encode()).hexdigest()


class Hook:
    """A webhook receiver on loopback. `decide(request)` returns
    (status, body bytes, delay seconds) for each request; every request is
    recorded as a dict with its arrival time, headers and parsed body."""

    def __init__(self, decide):
        self.decide = decide
        self.requests = []
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(n)
                req = {"t": time.time(), "path": self.path, "raw": raw,
                       "headers": {k.lower(): v for k, v in self.headers.items()},
                       "body": json.loads(raw)}
                with hook.lock:
                    req["seq"] = len(hook.requests)
                    hook.requests.append(req)
                status, body, delay = hook.decide(req)
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # sluice gave up on us (timeout)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/sluice"

    def of(self, event):
        with self.lock:
            return [r for r in self.requests if r["body"].get("event") == event]

    def wait(self, event, n=1, timeout=15, stream_id=None):
        def got():
            rs = [r for r in self.of(event) if stream_id is None or r["body"].get("stream_id") == stream_id]
            return rs if len(rs) >= n else None
        return wait_for(got, timeout, f"{n} x {event}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def check_signed(test, req, secret=SECRET):
    """What a receiver does (docs/webhooks.md): HMAC over TIMESTAMP.BODY."""
    h = req["headers"]
    ts = h["x-sluice-timestamp"]
    want = "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + req["raw"],
                                hashlib.sha256).hexdigest()
    test.assertTrue(hmac.compare_digest(h["x-sluice-signature"], want), "bad signature")
    test.assertLess(abs(time.time() - int(ts)), 60)
    test.assertEqual(h["x-sluice-event"], req["body"]["event"])
    test.assertEqual(h["x-sluice-delivery"], req["body"]["delivery"])
    test.assertEqual(h["content-type"], "application/json")


def raw_publish(sl, key, wait_start=True):
    """A raw RTMP publisher up to its publish command; returns (client,
    offset of the bytes received after that command)."""
    c = Rtmp(sl.rtmp_port)
    c.handshake()
    assert c.connect()
    # As OBS and ffmpeg do: FCPublish before publish. Its answer carries the
    # code NetStream.Publish.Start, so it must wait for the accept too.
    c.command("releaseStream", 2, None, key)
    c.command("FCPublish", 3, None, key)
    c.command("createStream", 4, None)
    assert c.wait(b"_result\x00\x40\x10")
    since = len(c.received)
    c.command("publish", 5, None, key, "live", msid=1, csid=8)
    return c, since


class WebhookTest(unittest.TestCase):
    def start(self, decide, *args, streams=(("demo", "demo-secret-key"),), url=None,
              secret=SECRET):
        self.hook = Hook(decide)
        self.addCleanup(self.hook.close)
        extra = ["--webhook-url", url or self.hook.url, *args]
        if secret:
            extra += ["--webhook-secret", secret]
        sl = Sluice(*extra, streams=streams)
        self.addCleanup(sl.kill)
        return sl

    def test_accept_plays_and_events_are_signed(self):
        sl = self.start(lambda r: (200, b"", 0))
        pub = publish(sl.rtmp_url("demo-secret-key"), seconds=4, size="320x240", rate=25, gop=25)
        auth = self.hook.wait("publish")[0]["body"]
        self.assertEqual(auth["stream_key_hash"], key_hash("demo-secret-key"))
        self.assertEqual(auth["stream_id"], "demo")
        self.assertEqual(auth["app"], "live")
        self.assertEqual(auth["client_ip"], "127.0.0.1")
        self.assertNotIn("demo-secret-key", json.dumps(auth))
        live = self.hook.wait("stream.live")[0]["body"]
        self.assertEqual(live["stream_id"], "demo")
        self.assertEqual(live["data"]["client_ip"], "127.0.0.1")
        self.assertLess(abs(live["timestamp"] / 1000 - time.time()), 30)
        # Plays: the master playlist appears while it publishes.
        wait_for(lambda: http(sl.url("/hls/demo/master.m3u8"))[0] == 200, 15, "master playlist")
        rc, err = finish(pub, 30)
        self.assertEqual(rc, 0, err)
        idle = self.hook.wait("stream.idle")[0]
        self.assertEqual(idle["body"]["stream_id"], "demo")
        self.assertGreater(idle["seq"], self.hook.of("stream.live")[0]["seq"])
        # ffmpeg unpublished at the end of its input: not a drop.
        self.assertEqual(idle["body"]["data"], {"reason": "ended"})
        # The webhook's counters in /metrics: one accepted authorisation,
        # both events delivered, nothing queued.
        def delivered():
            text = http(sl.admin_url("/metrics"))[2].decode()
            return text if 'sluice_webhook_events_total{result="delivered"} 2' in text else None
        text = wait_for(delivered, 10, "two delivered events in /metrics")
        self.assertIn('sluice_webhook_auth_total{result="accepted"} 1', text)
        self.assertIn('sluice_webhook_auth_total{result="rejected"} 0', text)
        self.assertIn("sluice_webhook_events_queued 0", text)
        sl.stop()
        reqs = list(self.hook.requests)
        for r in reqs:
            check_signed(self, r)
        deliveries = [r["body"]["delivery"] for r in reqs]
        self.assertEqual(len(deliveries), len(set(deliveries)), "delivery ids repeat")
        self.assertEqual(len(self.hook.of("stream.live")), 1)
        self.assertEqual(len(self.hook.of("stream.idle")), 1)

    def test_unknown_key_accepted_with_id(self):
        other = "a-key-the-registry-does-not-know"

        def decide(r):
            if r["body"]["event"] == "publish" and r["body"]["stream_key_hash"] == key_hash(other):
                self.assertIsNone(r["body"]["stream_id"])
                return 200, b'{"id": "x"}', 0
            return 200, b"not json at all", 0
        sl = self.start(decide)
        c, since = raw_publish(sl, other)
        self.assertTrue(c.wait(b"NetStream.Publish.Start", since=since), c.received[since:])
        live = self.hook.wait("stream.live")[0]["body"]
        self.assertEqual(live["stream_id"], "x")
        wait_for(lambda: "publish started: stream x" in sl.log(), 5, "publish as x")
        # The registry's own key with a non-JSON 2xx body: accepted as itself.
        d, since_d = raw_publish(sl, "demo-secret-key")
        self.assertTrue(d.wait(b"NetStream.Publish.Start", since=since_d))
        self.hook.wait("stream.live", stream_id="demo")
        c.close()
        d.close()
        self.hook.wait("stream.idle", n=2)
        log = sl.stop()
        self.assertNotIn(other, log)

    def test_media_sent_while_waiting_is_kept(self):
        """A publisher that does not wait for Publish.Start: what it sends
        during the authorisation is buffered, then handled after the accept."""
        tags = flv_clip("av", seconds=2, size="160x120", rate=10)
        sl = self.start(lambda r: (200, b"", 0.7 if r["body"]["event"] == "publish" else 0))
        c, since = raw_publish(sl, "demo-secret-key")
        c.send_tags(tags)
        self.assertTrue(c.wait(b"NetStream.Publish.Start", since=since))
        c.command("deleteStream", 6, None, 1)
        wait_for(lambda: "publish ended" in sl.log(), 10, "publish end")
        m = re.search(r"publish ended \(deleteStream\).* (\d+) video and (\d+) audio packets",
                      sl.log())
        self.assertIsNotNone(m, sl.log()[-2000:])
        # Frames, not the decoder configurations or the end-of-sequence tag.
        video = sum(1 for t in tags if t[0] == 9 and t[2][1] == 1)
        audio = sum(1 for t in tags if t[0] == 8 and t[2][1] == 1)
        self.assertEqual((int(m.group(1)), int(m.group(2))), (video, audio))
        c.close()
        sl.stop()

    def test_reject(self):
        sl = self.start(lambda r: (403, b'{"error":"no"}', 0) if r["body"]["event"] == "publish"
                        else (200, b"", 0))
        c, since = raw_publish(sl, "demo-secret-key")
        self.assertTrue(c.wait(b"NetStream.Publish.Rejected", since=since), c.received[since:])
        self.assertTrue(c.closed_by_peer(5))
        self.assertNotIn(b"NetStream.Publish.Start", c.received)
        self.assertNotIn(b"onFCPublish", c.received)
        c.close()
        pub = publish(sl.rtmp_url("demo-secret-key"), seconds=2, size="160x120", rate=10)
        rc, _ = finish(pub, 20)
        self.assertNotEqual(rc, 0)
        self.assertEqual(len(self.hook.of("publish")), 2)
        time.sleep(0.5)
        self.assertEqual(self.hook.of("stream.live"), [])
        log = sl.stop()
        self.assertIn("refused by the webhook (HTTP 403)", log)
        self.assertIn("publish refused: not authorised (authorisation #", log)

    def test_timeout_refuses_and_does_not_block_others(self):
        slow, fast = "slow-stream-key", "fast-stream-key"

        def decide(r):
            if r["body"].get("stream_key_hash") == key_hash(slow):
                return 200, b"", 4.0
            return 200, b"", 0
        sl = self.start(decide, "--webhook-timeout", "2",
                        streams=(("slow", slow), ("fast", fast)))
        a, since_a = raw_publish(sl, slow)
        self.hook.wait("publish")
        t0 = time.time()
        b, since_b = raw_publish(sl, fast)
        self.assertTrue(b.wait(b"NetStream.Publish.Start", timeout=5, since=since_b))
        # Well before the slow one's 2 s timeout, on a busy sanitizer build.
        self.assertLess(time.time() - t0, 1.5, "a slow authorisation held up another publish")
        self.assertTrue(a.wait(b"NetStream.Publish.Rejected", timeout=5, since=since_a))
        self.assertNotIn(b"NetStream.Publish.Start", a.received[since_a:])
        self.assertTrue(a.closed_by_peer(5))
        a.close()
        b.close()
        log = sl.stop()
        self.assertIn("did not answer within 2.0 s", log)
        self.assertIn("publish started: stream fast", log)
        self.assertNotIn("publish started: stream slow", log)

    def test_webhook_down_refuses(self):
        sl = self.start(lambda r: (200, b"", 0), url=f"http://127.0.0.1:{free_port()}/hook")
        c, since = raw_publish(sl, "demo-secret-key")
        self.assertTrue(c.wait(b"NetStream.Publish.Rejected", timeout=5, since=since))
        self.assertNotIn(b"NetStream.Publish.Start", c.received[since:])
        c.close()
        log = sl.stop()
        line = [l for l in log.splitlines() if "webhook request failed" in l]
        self.assertTrue(line, log[-2000:])
        self.assertRegex(line[0], r"(?i)connect")
        self.assertIn("publish refused", log)

    def test_shutdown_while_waiting_and_live(self):
        """SIGTERM with one publish waiting for its answer and one stream
        live: a clean exit, and the live stream's stream.idle still goes out."""
        def decide(r):
            if r["body"].get("stream_key_hash") == key_hash("wait-key"):
                return 200, b"", 4.0
            return 200, b"", 0
        sl = self.start(decide, "--webhook-timeout", "5",
                        streams=(("demo", "demo-secret-key"), ("wait", "wait-key")))
        c, since = raw_publish(sl, "demo-secret-key")
        self.assertTrue(c.wait(b"NetStream.Publish.Start", since=since))
        self.hook.wait("stream.live")
        w, since_w = raw_publish(sl, "wait-key")
        self.hook.wait("publish", n=2)
        t0 = time.time()
        log = sl.stop()
        self.assertLess(time.time() - t0, 5)
        self.assertEqual(len(self.hook.wait("stream.idle", timeout=1)), 1)
        self.assertNotIn(b"NetStream.Publish.Start", w.received[since_w:])
        self.assertIn("publish 1 accepted 0 rejected 1 failed", log)
        c.close()
        w.close()

    def unknown_key_attempts(self, sl, n):
        for i in range(n):
            c, since = raw_publish(sl, f"not-a-registered-key-{i}")
            self.assertTrue(c.wait(b"NetStream.Publish.Rejected", timeout=5, since=since))
            c.close()

    def test_lockout_counts_refusals_and_outages_for_unknown_keys(self):
        # The webhook refuses unknown keys: they count as bad keys.
        sl = self.start(lambda r: (403, b"", 0), "--rtmp-max-key-failures", "2",
                        "--rtmp-key-lockout", "60")
        self.unknown_key_attempts(sl, 2)
        r = Rtmp(sl.rtmp_port)
        self.assertTrue(r.closed_by_peer(3), "not locked out after refusals")
        r.close()
        log = sl.stop()
        self.assertIn("address locked out for 60 s", log)
        self.assertIn("2 bad keys, 1 lockouts", log)
        # The webhook is down: a key the registry knows is refused but never
        # counted (an outage locks no registered publisher out)...
        sl = self.start(lambda r: (200, b"", 0), "--rtmp-max-key-failures", "2",
                        "--rtmp-key-lockout", "60", url=f"http://127.0.0.1:{free_port()}/")
        for _ in range(3):
            c, since = raw_publish(sl, "demo-secret-key")
            self.assertTrue(c.wait(b"NetStream.Publish.Rejected", timeout=5, since=since))
            c.close()
        # ...while unknown keys count: a failing authoriser cannot be asked
        # again and again for free (S11).
        self.unknown_key_attempts(sl, 2)
        r = Rtmp(sl.rtmp_port)
        self.assertTrue(r.closed_by_peer(3), "not locked out after unknown keys, webhook down")
        r.close()
        log = sl.stop()
        self.assertIn("authoriser unavailable", log)
        self.assertIn("2 bad keys, 1 lockouts", log)

    def test_lockout_counts_authoriser_timeouts(self):
        """S11: an unknown key whose authorisation times out counts as a bad
        key, so a slow webhook cannot be asked again and again for free."""
        sl = self.start(lambda r: (200, b"", 4.0), "--webhook-timeout", "1",
                        "--rtmp-max-key-failures", "2", "--rtmp-key-lockout", "60")
        self.unknown_key_attempts(sl, 2)
        r = Rtmp(sl.rtmp_port)
        self.assertTrue(r.closed_by_peer(3), "not locked out after authorisation timeouts")
        r.close()
        log = sl.stop()
        self.assertIn("did not answer within 1.0 s", log)
        self.assertIn("address locked out for 60 s", log)
        self.assertIn("2 bad keys, 1 lockouts", log)

    def test_waiting_authorisations_are_capped(self):
        """S11: at most 2 x --rtmp-max-publishers publishes wait for the
        webhook at once; the next one is refused at once, with a log line."""
        sl = self.start(lambda r: (200, b"", 3.0), "--webhook-timeout", "5",
                        "--rtmp-max-publishers", "1")
        waiting = [raw_publish(sl, "demo-secret-key") for _ in range(2)]
        self.hook.wait("publish", n=2)
        c, since = raw_publish(sl, "demo-secret-key")
        t0 = time.time()
        self.assertTrue(c.wait(b"NetStream.Publish.Failed", timeout=2, since=since))
        self.assertLess(time.time() - t0, 1.5)
        self.assertEqual(len(self.hook.of("publish")), 2, "the third one was sent to the webhook")
        for w, _ in waiting:
            w.close()
        c.close()
        log = sl.stop()
        self.assertIn("publish refused: 2 publishes already wait for authorisation", log)

    def test_event_retried_with_same_delivery(self):
        def decide(r):
            if r["body"]["event"] == "stream.live" and len(self.hook.of("stream.live")) == 1:
                return 500, b"", 0
            return 200, b"", 0
        sl = self.start(decide)
        c, since = raw_publish(sl, "demo-secret-key")
        self.assertTrue(c.wait(b"NetStream.Publish.Start", since=since))
        first, second = self.hook.wait("stream.live", n=2, timeout=10)
        self.assertEqual(first["body"]["delivery"], second["body"]["delivery"])
        self.assertEqual(first["raw"], second["raw"])
        self.assertGreaterEqual(second["t"] - first["t"], 0.9)  # backoff: 1 s
        self.assertLess(second["t"] - first["t"], 1.8)
        check_signed(self, first)
        check_signed(self, second)
        c.close()
        self.hook.wait("stream.idle")
        time.sleep(0.5)
        self.assertEqual(len(self.hook.of("stream.live")), 2)
        log = sl.stop()
        self.assertIn("not delivered (HTTP 500); retry 1 in 1.0 s", log)
        self.assertIn("events 2 delivered 1 retried 0 dropped 0 failed", log)


if __name__ == "__main__":
    unittest.main()
