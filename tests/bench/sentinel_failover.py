#!/usr/bin/env python3
"""How long Redis Sentinel itself takes to fail over, without sluice (issue 27;
run by hand or by tests/bench/redis_failover.sh, never by tests/run.sh).

One master, one replica and three sentinels on loopback
(harness.sentinel_cluster). Then --runs times: kill -9 the current master,
measure

  switch   kill -> the first +switch-master any sentinel publishes (pub/sub)
  promote  kill -> the replica answers ROLE with "master" (polled every 10 ms)
  convert  the old master restarted empty -> Sentinel has turned it into a
           replica of the new master (it answers role:slave); the next kill
           waits until it is synced and no sentinel flags it down

at each --down-after value, idle and/or under --load x264 (an ffmpeg libx264
encode of 720p testsrc2 on every core for the whole phase). A TILT of any
sentinel is recorded per run (the box stalled > 2 s) and that run's numbers
are reported apart.

Before measuring it checks the harness itself (role(), master_addr(),
ready(), events(), tilt_seen(), stop_cluster leaves no process): the
self-check the integration suite does not spend time on.

    python3 tests/bench/sentinel_failover.py [--runs 10] [--down-after 1000,5000]
        [--load none,x264] [--json out.jsonl]

Prints a markdown table (min / median / p90 / max, seconds). Bounded: each
wait has a timeout of down-after + 15 s; everything is stopped at the end."""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

from harness import (REPL_FAST, check_no_tilt, sentinel_cluster,  # noqa: E402
                     stop_cluster)


def role_of(port):
    """ROLE's first element over a raw socket ('' when nothing answers): a
    redis-cli per poll would cost more than the 10 ms resolution."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(b"*1\r\n$4\r\nROLE\r\n")
            data = b""
            while data.count(b"\r\n") < 3:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        lines = data.split(b"\r\n")
        return lines[2].decode() if len(lines) > 2 and lines[0].startswith(b"*") else ""
    except OSError:
        return ""


def wait(fn, timeout, what, sentinels):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.01)
    check_no_tilt(sentinels)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def self_check():
    """The harness does what tests rely on; ~3 s."""
    t = time.time()
    m, r, ss = sentinel_cluster()
    try:
        assert m.role() == "master" and r.role() == "slave", (m.role(), r.role())
        assert r.replication()["master_link_status"] == "up"
        assert all(s.master_addr() == ("127.0.0.1", m.port) for s in ss)
        assert all(s.ready(3, 1) for s in ss) and not any(s.ready(4, 1) for s in ss)
        assert not any(s.tilt_seen() for s in ss)
        ev = ss[0].events()
        m.cli("SET", "k", "v")
        wait(lambda: r.cli("GET", "k").strip() == "v", 5, "replication", ss)
        ev.close()
        assert role_of(m.port) == "master" and role_of(r.port) == "slave"
    finally:
        stop_cluster(m, r, ss)
    pids = [p for p in (m.proc, r.proc, *[s.proc for s in ss]) if p.poll() is None]
    assert not pids, "stop_cluster left processes running"
    for s in ss:
        assert not os.path.exists(s.dir), "sentinel dir left behind"
    return time.time() - t


def load_start(kind):
    if kind == "none":
        return None
    if kind == "x264":
        return subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-f", "lavfi",
             "-i", "testsrc2=size=1280x720:rate=60", "-t", "3600", "-c:v", "libx264",
             "-preset", "medium", "-f", "null", "-"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    raise SystemExit(f"unknown --load {kind}")


def load_stop(proc):
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()


def one_phase(down_after, load, runs, out):
    rows = []
    lp = load_start(load)
    m, r, ss = sentinel_cluster(down_after_ms=down_after)
    evs = [s.events() for s in ss]
    master, replica = m, r
    try:
        for i in range(runs):
            t_load = os.getloadavg()[0]
            t0 = time.time()
            master.kill()
            limit = down_after / 1000 + 15
            promote = wait(lambda: role_of(replica.port) == "master" and time.time(),
                           limit, "promotion", ss) - t0

            def first_switch():
                ts = [e.first("+switch-master", t0) for e in evs]
                ts = [t for t in ts if t]
                return min(ts) if ts else None
            switch = wait(first_switch, limit, "+switch-master", ss) - t0
            tilt = any(s.tilt_seen() for s in ss)
            # The old master comes back empty and without --replicaof:
            # Sentinel must convert it.
            t1 = time.time()
            master.start(args=REPL_FAST)
            try:
                wait(lambda: master.role() == "slave", 30, "conversion", ss)
                convert = time.time() - t1
            except AssertionError:
                # Seen once in 40 kills (under load): no sentinel converted
                # it within 30 s. Recorded; made a replica by hand so the
                # remaining runs go on.
                convert = None
                master.cli("REPLICAOF", "127.0.0.1", str(replica.port))
            # Ready for the next kill: synced, and no sentinel still flags it
            # down (master-link-status in SENTINEL REPLICAS lags by one
            # 10 s INFO period; the failover refreshes it every second).
            wait(lambda: master.replication().get("master_link_status") == "up"
                 and all(any(x.get("port") == str(master.port) and x.get("flags") == "slave"
                             for x in s.replicas()) for s in ss), limit + 15, "resync", ss)
            row = {"down_after_ms": down_after, "load": load, "run": i + 1,
                   "switch_s": round(switch, 3), "promote_s": round(promote, 3),
                   "convert_s": round(convert, 3) if convert is not None else None, "tilt": tilt,
                   "loadavg": round(t_load, 2)}
            rows.append(row)
            print(json.dumps(row), flush=True)
            if out:
                out.write(json.dumps(row) + "\n")
                out.flush()
            master, replica = replica, master
    finally:
        for e in evs:
            e.close()
        stop_cluster(m, r, ss)
        load_stop(lp)
    return rows


def stats(values):
    v = sorted(values)
    if not v:
        return "-"
    p90 = v[min(len(v) - 1, int(round(0.9 * (len(v) - 1))))]
    return (f"{v[0]:.2f} / {statistics.median(v):.2f} / {p90:.2f} / {v[-1]:.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--down-after", default="1000,5000")
    ap.add_argument("--load", default="none,x264")
    ap.add_argument("--json", default=None)
    ap.add_argument("--no-self-check", action="store_true")
    a = ap.parse_args()
    t_all = time.time()
    if not a.no_self_check:
        print(f"harness self-check ok ({self_check():.1f} s)", flush=True)
    out = open(a.json, "a") if a.json else None
    table = []
    for load in a.load.split(","):
        for da in [int(x) for x in a.down_after.split(",")]:
            rows = one_phase(da, load, a.runs, out)
            good = [x for x in rows if not x["tilt"]]
            table.append((da, load, len(rows), len(rows) - len(good),
                          stats([x["switch_s"] for x in good]),
                          stats([x["promote_s"] for x in good]),
                          stats([x["convert_s"] for x in good if x["convert_s"] is not None]) +
                          "".join(f" ({n} not converted in 30 s)" for n in
                                  [sum(1 for x in good if x["convert_s"] is None)] if n),
                          max(x["loadavg"] for x in rows)))
    print()
    print(f"Sentinel failover without sluice, {os.cpu_count()} cores, redis-server "
          f"{subprocess.run(['redis-server', '--version'], capture_output=True, text=True).stdout.split()[2]}, "
          "seconds: min / median / p90 / max")
    print()
    print("| down-after ms | load | runs | TILT runs | kill -> +switch-master | kill -> ROLE master "
          "| old master back -> converted | max loadavg |")
    print("|---|---|---|---|---|---|---|---|")
    for row in table:
        print("| %d | %s | %d | %d | %s | %s | %s | %.1f |" % row)
    print(f"\ntotal {time.time() - t_all:.0f} s")


if __name__ == "__main__":
    main()
