#!/usr/bin/env bash
# The project's test command (README, docs/testing.md): installs what the tests
# need, builds with ASan+UBSan and -Werror into build-asan/, runs the unit
# and fuzz-corpus suites (meson), a short libFuzzer run of every parser
# (clang, build-fuzz/), then the integration suites against the real binary.
# Prints "N passed, N failed" last; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

passed=0
failed=0
# Each phase heading carries the minutes and seconds since the start: the
# suite has a time budget (docs/testing.md).
t0=$SECONDS
note() { printf '\n== [%d:%02d] %s\n' $(((SECONDS - t0) / 60)) $(((SECONDS - t0) % 60)) "$*"; }
count() { # count NAME RC
  if [ "$2" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $1"; fi
}
redis_pid=""
finish() {
  [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
  echo
  note "done"
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit $?
}

note "packages"
if ! deploy/packages.sh test; then
  echo "FAILED: package installation"
  failed=$((failed + 1))
  finish
fi

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$root/tests/lsan.supp:print_suppressions=0"

note "web dependencies (npm: hls.js, uPlot, embedded by the build)"
if ! deploy/web-deps.sh; then
  echo "FAILED: web dependencies"
  failed=$((failed + 1))
  finish
fi

note "build (ASan+UBSan, -Werror)"
if [ ! -d build-asan ]; then
  meson setup build-asan -Db_sanitize=address,undefined -Dwerror=true -Dbuildtype=debugoptimized >/dev/null
fi
if ! meson compile -C build-asan; then
  echo "FAILED: build"
  failed=$((failed + 1))
  finish
fi

# One redis-server of our own on a free loopback port for the Redis store's
# unit and integration tests (fault tests start their own besides).
redis_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis_dir=$(mktemp -d)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$redis_dir" \
  >/tmp/sluice-test-redis.log 2>&1 &
redis_pid=$!
for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
export SLUICE_TEST_REDIS_URL="redis://127.0.0.1:$redis_port"

note "unit and fuzz-corpus tests"
meson test -C build-asan --suite unit --suite fuzz --print-errorlogs --num-processes 2 >/tmp/sluice-meson-test.log 2>&1
tail -n 25 /tmp/sluice-meson-test.log
# One count per meson test, from its JSON log.
while read -r rc name; do
  count "$name" "$rc"
done < <(python3 - build-asan/meson-logs/testlog.json <<'PY'
import json, sys
for line in open(sys.argv[1]):
    t = json.loads(line)
    print(0 if t["result"] in ("OK", "EXPECTEDFAIL") else 1, t["name"])
PY
)

note "libFuzzer (clang, ${SLUICE_FUZZ_SECONDS:=5} s per parser)"
if [ ! -d build-fuzz ]; then
  CC=clang meson setup build-fuzz -Dfuzzing_engine=libfuzzer -Db_sanitize=address,undefined \
    -Db_lundef=false -Dbuildtype=debugoptimized >/dev/null
fi
if meson compile -C build-fuzz >/tmp/sluice-fuzz-build.log 2>&1; then
  # Two parsers at a time, one per core: the same fuzzing in half the time.
  fuzz_one() { # NAME BINARY: runs it, leaves its exit status in the .rc file
    local work
    work=$(mktemp -d)
    cp -r "tests/fuzz/corpus/$1/." "$work/" 2>/dev/null
    "$2" -max_total_time="$SLUICE_FUZZ_SECONDS" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="/tmp/sluice-fuzz-artifacts/$1-" \
      -print_final_stats=1 "$work" >"/tmp/sluice-fuzz-$1.log" 2>&1
    echo $? >"/tmp/sluice-fuzz-$1.rc"
    rm -rf "$work"
  }
  mkdir -p /tmp/sluice-fuzz-artifacts
  fuzz_names=()
  pair=()
  for f in build-fuzz/tests/fuzz/fuzz_*; do
    [ -f "$f" ] && [ -x "$f" ] || continue
    name=$(basename "$f" | sed 's/^fuzz_//')
    fuzz_names+=("$name")
    rm -f "/tmp/sluice-fuzz-$name.rc"
    fuzz_one "$name" "$f" &
    pair+=($!)
    if [ "${#pair[@]}" -eq 2 ]; then # each runs the same time: pairs keep both cores busy
      wait "${pair[@]}"
      pair=()
    fi
  done
  [ "${#pair[@]}" -gt 0 ] && wait "${pair[@]}"
  for name in "${fuzz_names[@]}"; do
    rc=$(cat "/tmp/sluice-fuzz-$name.rc" 2>/dev/null || echo 1)
    [ "$rc" -ne 0 ] && tail -n 40 "/tmp/sluice-fuzz-$name.log"
    echo "fuzz $name: $(grep -o 'stat::number_of_executed_units: [0-9]*' "/tmp/sluice-fuzz-$name.log" | awk '{print $2}') runs, exit $rc"
    count "libfuzzer_$name" "$rc"
  done
else
  tail -n 30 /tmp/sluice-fuzz-build.log
  count "libfuzzer build" 1
fi

note "browser test dependencies (npm: playwright-core, hls.js, shaka-player, video.js)"
if ! (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error); then
  echo "FAILED: npm ci in tests/browser"
  failed=$((failed + 1))
fi

note "integration (real build-asan/sluice, ffmpeg, curl, ffprobe, chromium)"
export SLUICE_BIN="$root/build-asan/sluice"
python3 tests/integration/run.py > >(tee /tmp/sluice-integration.log) 2>&1
last=$(tail -n 1 /tmp/sluice-integration.log)
if [[ "$last" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
  passed=$((passed + BASH_REMATCH[1]))
  failed=$((failed + BASH_REMATCH[2]))
else
  echo "FAILED: integration runner did not finish"
  failed=$((failed + 1))
fi

finish
