#!/usr/bin/env bash
# Redis high availability through Sentinel, measured (issue 27; figures in
# docs/benchmarks.md, "Redis failover").
#
# Two parts, both on loopback, every process started and stopped here:
#  1. Sentinel alone (tests/bench/sentinel_failover.py): a master, a replica
#     and three sentinels; RUNS x kill -9 the master: kill -> +switch-master,
#     kill -> the replica answers ROLE master, and how long Sentinel takes to
#     convert the old master once it is back; idle and under an x264 encode
#     (LOADS), for each down-after-milliseconds in DOWN_AFTER.
#  2. With sluice (tests/bench/redis_failover.py): an ingest node with a
#     2-rung ladder and two origins on redis-sentinel://, RUNS failovers
#     alternating the master: kill -> first new part through each origin,
#     the longest playlist hold, sluice-viewers' 503s and errors.
#
#   tests/bench/redis_failover.sh                  # release build in build-rel/ first
#   RUNS=3 DOWN_AFTER=1000 PART=sluice tests/bench/redis_failover.sh
#
# RUNS (default 10), DOWN_AFTER (default 1000,5000), LOADS (default
# none,x264; part 1 only), PART (all | sentinel | sluice), SLUICE_BIN
# (default build-rel/sluice). Raw JSON lines go to $OUT (default
# build-rel/redis_failover.jsonl). Takes about 10 min per part with the defaults.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${RUNS:-10}
down=${DOWN_AFTER:-1000,5000}
loads=${LOADS:-none,x264}
part=${PART:-all}
export SLUICE_BIN=${SLUICE_BIN:-build-rel/sluice}
out=${OUT:-build-rel/redis_failover.jsonl}
for tool in redis-server redis-cli ffmpeg python3; do
  command -v "$tool" >/dev/null || { echo "redis_failover.sh: $tool is missing"; exit 2; }
done
if [ "$part" != sentinel ]; then
  [ -x "$SLUICE_BIN" ] || { echo "redis_failover.sh: $SLUICE_BIN not built (meson setup build-rel -Dbuildtype=release && ninja -C build-rel)"; exit 2; }
fi
mkdir -p "$(dirname "$out")"
start=$(date +%s)
if [ "$part" = all ] || [ "$part" = sentinel ]; then
  echo "== Sentinel alone"
  timeout 3600 python3 tests/bench/sentinel_failover.py --runs "$runs" --down-after "$down" \
    --load "$loads" --json "$out"
fi
if [ "$part" = all ] || [ "$part" = sluice ]; then
  echo "== With sluice ($SLUICE_BIN)"
  timeout 3600 python3 tests/bench/redis_failover.py --runs "$runs" --down-after "$down" --json "$out"
fi
echo "redis_failover.sh: $(( $(date +%s) - start )) s"
