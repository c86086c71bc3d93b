# Shell helpers every tests/bench/*.sh script shares; sourced after the
# script has changed to the repository root (`. tests/bench/lib.sh`).

# A free TCP port on 127.0.0.1 (the kernel's pick).
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# PID... -> user+system clock ticks, summed (a process gone counts 0).
cpu_ticks() {
  local t=0 p
  for p in "$@"; do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0))); done
  echo "$t"
}

# PID... -> VmRSS in kB, summed.
rss_kb() {
  local t=0 p
  for p in "$@"; do t=$((t + $(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0))); done
  echo "$t"
}
