#!/usr/bin/env python3
"""Repeated Redis failovers under a live ladder, with sluice (issue 27; run by
tests/bench/redis_failover.sh, never by tests/run.sh).

The topology of tests/interop/redis_sentinel.py: a master, a replica and
three sentinels; an ingest node I1 (ladder 480p,360p from an 854x480
publish) and origins O1 and O2 on redis-sentinel://. Then --runs times,
alternating which data node is master: kill -9 the master and measure

  switch      kill -> the first +switch-master (sentinel pub/sub)
  new part    kill -> the first part newer than any before the kill that a
              blocking-reload poller could fetch, per origin
  hold        the longest blocking playlist reload from 1 s before the kill
              to 15 s after, per origin (a viewer's longest wait)
  503s        HTTP 503s (and other errors) counted by sluice-viewers (3 LL
              viewers per origin, started 2 s before the kill, for
              down-after + 10 s)
  backwards   answers whose last part or media sequence went backwards

then restart the old master empty, wait until Sentinel has converted it and
it is synced (and every sentinel sees it healthy), give the stream 3 s, and
go again. A run during which a sentinel entered TILT is reported apart.

    SLUICE_BIN=build-rel/sluice python3 tests/bench/redis_failover.py
        [--runs 10] [--down-after 1000,5000] [--json FILE]
"""

import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "interop"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ.setdefault("SLUICE_BIN", os.path.join(ROOT, "build-rel", "sluice"))

import redis_sentinel as rs  # noqa: E402
from harness import REPL_FAST, wait_for  # noqa: E402


def one_setting(down_after, runs, out):
    topo = rs.Topology(down_after)
    rows = []
    try:
        i1 = topo.node("--role", "ingest", *rs.LADDER)
        origins = [topo.node("--role", "origin", streams=()) for _ in range(2)]
        pub = topo.publish(i1, 3600)
        wait_for(lambda: all(rs.ll_live(o) for o in origins), 40, "live on both origins")
        pollers = [rs.Poller(o, f"/hls/demo/{rs.REND}/index.m3u8") for o in origins]
        for p in pollers:
            p.start()
        time.sleep(3)
        for i in range(runs):
            vsims = [rs.run_viewers(o, down_after / 1000 + 12) for o in origins]
            time.sleep(2)
            t0 = topo.kill_master()
            row = {"down_after_ms": down_after, "run": i + 1, "loadavg": round(os.getloadavg()[0], 2)}
            try:
                row["switch_s"] = round(topo.wait_switch(t0), 3)
                wait_for(lambda: all(p.first_new_after(t0) for p in pollers), 40,
                         "a new part through both origins", interval=0.05)
            except AssertionError as e:
                row["failed"] = str(e)[:300]
            for n, p in enumerate(pollers, 1):
                s = p.summary(t0, window=(-1, 15))
                row[f"new_part_O{n}_s"] = s["kill_to_new_part_s"]
                row[f"hold_O{n}_s"] = s["longest_hold_s"]
                row[f"backwards_O{n}"] = s["backwards"]
            for n, v in enumerate(vsims, 1):
                r = rs.viewers_result(v, 60)
                row[f"vsim_O{n}"] = {"errors": r.get("errors"), "http": r.get("http_errors"),
                                     "stalls": r.get("stalls"),
                                     "longest_ms": r.get("longest_blocking_reload_ms")}
            row["tilt"] = any(s.tilt_seen() for s in topo.sentinels)
            row["publisher_alive"] = pub.poll() is None
            print(json.dumps(row), flush=True)
            if out:
                out.write(json.dumps(row) + "\n")
                out.flush()
            rows.append(row)
            if "failed" in row:
                break
            old = topo.replica
            old.start(args=REPL_FAST)
            wait_for(lambda: old.role() == "slave" and
                     old.replication().get("master_link_status") == "up", 60,
                     "the old master converted and synced", interval=0.1)
            wait_for(lambda: all(any(x.get("port") == str(old.port) and x.get("flags") == "slave"
                                     for x in s.replicas()) for s in topo.sentinels), 30,
                     "every sentinel sees it healthy")
            time.sleep(3)
        for p in pollers:
            p.stop()
    finally:
        problems = topo.close()
    if problems:
        print(json.dumps({"down_after_ms": down_after, "shutdown_problems": problems}), flush=True)
    return rows


def fmt(values):
    v = sorted(x for x in values if x is not None)
    if not v:
        return "-"
    return f"{statistics.median(v):.2f} / {v[-1]:.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--down-after", default="1000,5000")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    rs.precheck()
    out = open(a.json, "a") if a.json else None
    t_all = time.time()
    table = []
    for da in [int(x) for x in a.down_after.split(",")]:
        rows = one_setting(da, a.runs, out)
        good = [r for r in rows if not r["tilt"] and "failed" not in r]
        n503 = sum(int((r[f"vsim_O{n}"]["http"] or {}).get("503", 0)) for r in good for n in (1, 2))
        errs = sum(int(r[f"vsim_O{n}"]["errors"] or 0) for r in good for n in (1, 2))
        table.append((da, len(rows), len(rows) - len(good),
                      fmt([r["switch_s"] for r in good]),
                      fmt([r["new_part_O1_s"] for r in good]), fmt([r["new_part_O2_s"] for r in good]),
                      fmt([max(r["hold_O1_s"], r["hold_O2_s"]) for r in good]),
                      fmt([max(r["vsim_O1"]["longest_ms"] or 0, r["vsim_O2"]["longest_ms"] or 0) / 1000
                           for r in good]),
                      n503, errs,
                      sum(r["backwards_O1"] + r["backwards_O2"] for r in good),
                      all(r["publisher_alive"] for r in rows)))
    print()
    print(f"Redis failover under a live ladder, {os.cpu_count()} cores; seconds, median / max")
    print()
    print("| down-after ms | failovers | void (TILT/failed) | kill -> +switch-master | kill -> new part O1 "
          "| kill -> new part O2 | longest hold (poller) | longest wait (viewer-sim) "
          "| viewer-sim 503s | viewer-sim errors | backwards | publisher kept |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in table:
        print("| %d | %d | %d | %s | %s | %s | %s | %s | %d | %d | %d | %s |" % row)
    print(f"\ntotal {time.time() - t_all:.0f} s")


if __name__ == "__main__":
    main()
