"""Runs every integration suite (tests/integration/test_*.py) with unittest
and prints "N passed, N failed" as its last line. A name filter may be given:
  python3 tests/integration/run.py test_publish.PublishTest.test_wrong_key

The whole run goes in two lanes at once (docs/testing.md, "Time budget"):
the modules of SIDE_LANE, which mostly wait (webhook and abuse timeouts,
restarts, refusals) and use little CPU, run in a second process beside the
others; the main lane runs the modules with players (node, chromium) last,
after the side lane is done with its share of the CPU. SLUICE_TEST_LANES=1
runs everything in one lane, in name order."""

import glob
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

# Measured with "cores used by module" (below): under 0.2 of a core each,
# no player, no shared Redis, no check of a publisher's real-time rate.
SIDE_LANE = ("test_alerts", "test_beacons", "test_deploy", "test_input_limits",
             "test_ladder_per_stream", "test_origin_http", "test_recording_disk",
             "test_rtmp_limits", "test_rungs_on_demand", "test_shutdown", "test_state", "test_vod",
             "test_web_assets", "test_webhook")
# Modules that drive players in chromium: the main lane's last, so that the
# side lane (about two minutes) has finished before they start.
PLAYER_MODULES = ("test_audience_players", "test_clips", "test_cluster", "test_dashboard", "test_metadata_players",
                  "test_player", "test_player_matrix", "test_player_page", "test_reconnect")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


class TimedResult(unittest.TextTestResult):
    """Records the wall time since the previous test ended, so a class's
    setUpClass is charged to its first test, and the slowest can be listed
    (the suite has a time budget: docs/testing.md)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.times = []
        self.cpu = {}
        self._last = time.time()
        self._last_cpu = self._cpu_now()

    @staticmethod
    def _cpu_now():
        # This process and every child it waited for (sluice, ffmpeg, node
        # and the chromium node waited for): the CPU a test cost.
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def stopTest(self, test):
        now, cpu = time.time(), self._cpu_now()
        self.times.append((now - self._last, test.id()))
        module = test.id().split(".")[0]
        self.cpu[module] = self.cpu.get(module, 0) + cpu - self._last_cpu
        self._last, self._last_cpu = now, cpu
        super().stopTest(test)


def all_modules():
    return sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(HERE, "test_*.py")))


def run_suite(names):
    """Runs the named tests; returns (passed, failed, times, cpu)."""
    suite = unittest.TestLoader().loadTestsFromNames(names)
    runner = unittest.TextTestRunner(verbosity=2, stream=sys.stdout, resultclass=TimedResult)
    result = runner.run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    # A skipped test is not a pass.
    failed += len(result.skipped)
    return result.testsRun - failed, failed, result.times, result.cpu


def report(times, cpu):
    print("slowest tests:")
    for took, name in sorted(times, reverse=True)[:15]:
        print(f"  {took:6.1f} s  {name}")
    modules = {}
    for took, name in times:
        modules[name.split(".")[0]] = modules.get(name.split(".")[0], 0) + took
    order = sorted(modules.items(), key=lambda kv: -kv[1])
    print("by module: " + ", ".join(f"{m} {t:.0f}" for m, t in order))
    # CPU seconds per wall second (2.0: both cores busy): which modules wait
    # rather than work.
    print("cores used by module: " + ", ".join(f"{m} {cpu.get(m, 0) / t:.2f}" for m, t in order if t > 0))


def main():
    args = sys.argv[1:]
    side_out = None
    if args[:1] == ["--side-lane"]:
        # The second lane, started by the first: its results for the first to merge.
        side_out = args[1]
        args = list(SIDE_LANE)
    if not os.access(os.environ.get("SLUICE_BIN", os.path.join(HERE, "..", "..", "build", "sluice")), os.X_OK):
        print("sluice binary not found (set SLUICE_BIN)")
        print("0 passed, 1 failed")
        return 1
    start = time.time()
    side = None
    if args:
        names = args
    elif os.environ.get("SLUICE_TEST_LANES") == "1":
        names = all_modules()
    else:
        mods = [m for m in all_modules() if m not in SIDE_LANE]
        names = [m for m in mods if m not in PLAYER_MODULES] + [m for m in mods if m in PLAYER_MODULES]
        fd, side_json = tempfile.mkstemp(prefix="sluice-side-lane-", suffix=".json")
        os.close(fd)
        side_log = tempfile.TemporaryFile(mode="w+")
        side = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--side-lane", side_json],
                                stdout=side_log, stderr=subprocess.STDOUT)
        print(f"side lane (pid {side.pid}, its output at the end): {', '.join(SIDE_LANE)}")
        sys.stdout.flush()
    passed, failed, times, cpu = run_suite(names)
    if side_out:
        with open(side_out, "w") as f:
            json.dump({"passed": passed, "failed": failed, "times": times, "cpu": cpu}, f)
        return 0 if failed == 0 else 1
    if side:
        side.wait()
        side_log.seek(0)
        print("\n==== side lane ====")
        sys.stdout.write(side_log.read())
        try:
            with open(side_json) as f:
                r = json.load(f)
            passed += r["passed"]
            failed += r["failed"]
            times += [tuple(t) for t in r["times"]]
            for m, c in r["cpu"].items():
                cpu[m] = cpu.get(m, 0) + c
        except (OSError, ValueError, KeyError) as e:
            print(f"side lane gave no results ({e}): counted as one failure")
            failed += 1
        os.unlink(side_json)
    report(times, cpu)
    print(f"integration: {time.time() - start:.0f} s")
    sys.stdout.flush()
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
