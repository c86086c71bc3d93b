"""Runs every integration suite (tests/integration/test_*.py) with unittest
and prints "N passed, N failed" as its last line. A name filter may be given:
  python3 tests/integration/run.py test_publish.PublishTest.test_wrong_key"""

import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


class TimedResult(unittest.TextTestResult):
    """Records the wall time since the previous test ended, so a class's
    setUpClass is charged to its first test, and the slowest can be listed
    (the suite has a time budget: docs/testing.md)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.times = []
        self._last = time.time()

    def stopTest(self, test):
        now = time.time()
        self.times.append((now - self._last, test.id()))
        self._last = now
        super().stopTest(test)


def main():
    loader = unittest.TestLoader()
    if len(sys.argv) > 1:
        suite = loader.loadTestsFromNames(sys.argv[1:])
    else:
        suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    if not os.access(os.environ.get("SLUICE_BIN", os.path.join(HERE, "..", "..", "build", "sluice")), os.X_OK):
        print("sluice binary not found (set SLUICE_BIN)")
        print("0 passed, 1 failed")
        return 1
    start = time.time()
    runner = unittest.TextTestRunner(verbosity=2, stream=sys.stdout, resultclass=TimedResult)
    result = runner.run(suite)
    print("slowest tests:")
    for took, name in sorted(result.times, reverse=True)[:15]:
        print(f"  {took:6.1f} s  {name}")
    modules = {}
    for took, name in result.times:
        modules[name.split(".")[0]] = modules.get(name.split(".")[0], 0) + took
    print("by module: " + ", ".join(f"{m} {t:.0f}" for m, t in
                                    sorted(modules.items(), key=lambda kv: -kv[1])))
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    # A skipped test is not a pass.
    failed += len(result.skipped)
    passed = result.testsRun - failed
    print(f"integration: {time.time() - start:.0f} s")
    sys.stdout.flush()
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
