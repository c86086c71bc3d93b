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

# FILE: the capacity benches' source, 20 s of 1080p30 H.264 (testsrc2 with
# grain, 6 Mb/s CBR-ish, GOP 2 s, no scene cut) + AAC-LC 48 kHz stereo, FLV.
clip_1080p30() {
  ffmpeg -hide_banner -nostdin -loglevel error \
    -f lavfi -i "testsrc2=size=1920x1080:rate=30,noise=alls=8:allf=t" \
    -f lavfi -i "sine=frequency=440:sample_rate=48000" -t 20 \
    -c:v libx264 -preset veryfast -b:v 6000k -maxrate 6000k -bufsize 12000k \
    -g 60 -keyint_min 60 -sc_threshold 0 -pix_fmt yuv420p \
    -c:a aac -b:a 128k -ac 2 -f flv "$1"
}
