#!/usr/bin/env python3
"""Players against --rungs on-demand, run by hand (not part of
tests/run.sh; numbers in docs/interop.md, "Rungs on demand").

Each browser player of tests/browser/player_matrix.mjs plays alone (one
player watching a rung keeps it awake for every other), twice: against a
sluice with --rungs always (the baseline) and one with --rungs on-demand
--rung-idle 10. The ladder is 720p,480p,360p with --passthrough never, so
every rung can go idle. Before each player the script waits until nobody
has watched for the idle time (on-demand: every rung idle), so:

- start: the player starts on a cold rung (the first media playlist it
  asks for is held until the rung is back); its time to the first frame
  is compared with the baseline's;
- switch up: the page's network is held from its start
  (player_matrix.mjs --start-kbps auto) to a rate only 360p fits, so the
  player starts and stays on 360p and the rungs above go idle (nobody
  asks for them for --rung-idle); at --up s the throttle is lifted and the
  player switches up to a cold rung. The delay is from the lift to the
  first taller picture shown, against the baseline's (the player's own
  ABR reaction is in both).

Every run must show no error event, no stall after the first frame, no
failed request, and a switch up after the lift.

    SLUICE_BIN=build-rel/sluice python3 tests/interop/rungs_on_demand.py
        [--players hlsjs-ll,hlsjs,shaka-ll,shaka,videojs] [--down 3] [--up 30] [--seconds 45]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from harness import ROOT, Sluice, http, publish, wait_for  # noqa: E402

KEY = "demo-secret-key"
SCRIPT = os.path.join(ROOT, "tests", "browser", "player_matrix.mjs")
LADDER = ["720p", "480p", "360p"]


def active(sluice):
    s, _, b = http(sluice.admin_url("/api/v1/streams/demo"))
    if s != 200:
        return {}
    return {r["name"]: r.get("active", True) for r in json.loads(b).get("renditions", [])}


def play(sluice, player, a):
    master = sluice.url("/hls/demo/master.m3u8")
    out = subprocess.run(["node", SCRIPT, master, "--players", player, "--seconds", str(a.seconds),
                          "--start-timeout", "30", "--expect-heights", "720,480,360",
                          "--throttle", f"{a.down},{a.up}", "--start-kbps", "auto"],
                         capture_output=True, timeout=a.seconds + 150)
    res = [json.loads(l) for l in out.stdout.decode().splitlines() if l.startswith("{")]
    if not res:
        raise AssertionError(f"player_matrix.mjs gave no result: {out.stderr.decode()[-2000:]}")
    return res[0]


def switch_up_delay(r):
    """Seconds from the lift of the throttle to the first taller picture."""
    if len(r["throttled"]) < 2:
        return None
    lift = r["throttled"][1][0]
    hs = r["heights"]
    for i in range(1, len(hs)):
        if hs[i][0] >= lift and hs[i][1] > hs[i - 1][1]:
            return round(hs[i][0] - lift, 2)
    return None


def run_mode(mode, players, a):
    sluice = Sluice("--ladder", ",".join(LADDER), "--passthrough", "never", "--preset", a.preset,
                    "--rungs", mode, "--rung-idle", "10")
    pub = publish(sluice.rtmp_url(KEY), seconds=3600, size="1280x720", gop=60)
    rows = []
    try:
        wait_for(lambda: http(sluice.url("/hls/demo/master.m3u8"))[0] == 200, 60, "the master")
        for p in players:
            # Nobody has watched for the idle time: every rung cold
            # (on-demand), or the same pause (always).
            if mode == "on-demand":
                wait_for(lambda: active(sluice) and not any(active(sluice).values()), 60,
                         "every rung idle", interval=1)
            else:
                time.sleep(12)
            mark = len(sluice.log())
            r = play(sluice, p, a)
            wakes = [l for l in sluice.log()[mark:].splitlines() if "asked for; back" in l]
            # A player that started on the lowest rung has nothing to
            # switch down to: not a failure here.
            if r["heights"] and r["heights"][0][1] == 360:
                r["problems"] = [p for p in r["problems"] if p != "did not switch down under throttling"]
            rows.append({"mode": mode, "player": p, "start": r["firstFrameS"],
                         "switch_up": switch_up_delay(r), "stalls": len(r["stalls"]),
                         "errors": len(r["errors"]), "failed": len(r["failedRequests"]),
                         "down_up": f"{r['switchesDown']}/{r['switchesUp']}",
                         "played": r["played"], "wakes": len(wakes), "problems": r["problems"],
                         "first_error": r["errors"][0]["text"][:120] if r["errors"] else "",
                         "first_failed": r["failedRequests"][0] if r["failedRequests"] else ""})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    finally:
        notes = [l for l in sluice.log().splitlines() if re.search(r"idle|asked for|overload", l)]
        sluice.close(pub)
    return rows, notes


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--players", default="hlsjs-ll,hlsjs,shaka-ll,shaka,videojs")
    ap.add_argument("--seconds", type=int, default=45)
    ap.add_argument("--down", type=int, default=0)
    ap.add_argument("--up", type=int, default=30)
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--modes", default="always,on-demand")
    a = ap.parse_args()
    players = a.players.split(",")
    rows, notes = [], []
    for mode in a.modes.split(","):
        r, n = run_mode(mode, players, a)
        rows += r
        notes += n
    print(f"\nladder {','.join(LADDER)} ({a.preset}, --passthrough never), --rung-idle 10, "
          f"throttled to the 360p rate at {a.down}-{a.up} s, {a.seconds} s each, one player at a time\n")
    print("| player | mode | first frame s | switch up after the lift s | stalls | errors | failed requests "
          "| switches down/up | played | rung wakes |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    failed = False
    for r in sorted(rows, key=lambda r: (r["player"], r["mode"])):
        print(f"| {r['player']} | {r['mode']} | {r['start']} | {r['switch_up']} | {r['stalls']} | {r['errors']} "
              f"| {r['failed']} | {r['down_up']} | {','.join(map(str, r['played']))} | {r['wakes']} |")
        failed |= bool(r["problems"])
    print()
    for r in rows:
        for p in r["problems"]:
            print(f"- {r['player']} ({r['mode']}): {p}")
    print("\nsluice log (rungs on demand):")
    for l in notes[:80]:
        print(f"    {l}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
