#!/usr/bin/env bash
# Origin throughput: sluice against nginx serving the same bytes (issue 6).
# A benchmark run by hand, not part of tests/run.sh.
#
#   tests/bench/origin.sh                 # sluice vs nginx (the default)
#   MODE=stores tests/bench/origin.sh     # memory store vs Redis store (issue 4),
#                                         # see tests/bench/origin_stores.sh
#
# What one run does, all on loopback:
#  1. installs nginx with apt-get when it is missing (nginx-light, else nginx);
#     without it the run stops with a clear message and exit status 2;
#  2. builds a release sluice in build-bench/ (-Dtests=false), unless
#     SLUICE_BIN names a binary;
#  3. starts sluice on the memory store and publishes with ffmpeg for
#     PUBLISH_SECONDS (default 14): stream "bench", 720p H.264 at 4 Mb/s
#     (copied, not transcoded) with 2 s segments (~1 MB) and 0.6 s LL-HLS parts
#     (~300 kB), and stream "benchlow" at 1.2 Mb/s (2 s segments, ~300 kB),
#     whose segment stands in for a part when sluice's playlists carry no
#     EXT-X-PART lines (the table says so);
#  4. waits for the publishers to end (nothing changes while measuring: an
#     ended stream's objects stay for --ended-ttl), picks the media playlist,
#     the segment closest to 1 MB and the part closest to 300 kB, fetches
#     those exact bytes from sluice into an nginx root, generates an nginx
#     config (worker_processes auto, sendfile, tcp_nopush, keep-alive,
#     access_log off, the same Content-Type, Cache-Control and CORS headers
#     as sluice) and checks that both serve identical bytes (sha256);
#  5. for each object runs wrk against sluice, then nginx, alternately
#     (BENCH_ROUNDS rounds, medians reported) and prints a Markdown table:
#     req/s of each, the ratio, the p50/p99 latency of each, and the CPU
#     time each server spent per request (user+system, from /proc; nginx's
#     master and workers summed): the figure that least depends on what
#     else the machine runs, wrk included.
#
# Knobs (environment): BENCH_THREADS (wrk -t, default 2), BENCH_CONNS (wrk -c,
# default 64), BENCH_SECONDS (wrk -d, default 10), BENCH_ROUNDS (default 1),
# PUBLISH_SECONDS (default 14), NGINX_SENDFILE (default on; off is faster on
# loopback for 1 MB objects), SLUICE_BIN (skip the build), SLUICE_ARGS
# (extra sluice options, e.g. "--http-threads 4"), KEEP=1 (keep the work
# directory). Everything started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
root=$(pwd)

if [ "${MODE:-nginx}" = stores ]; then
  if [ -z "${SLUICE_BIN:-}" ]; then
    [ -d build-bench ] || meson setup build-bench --buildtype=release -Dtests=false >/dev/null
    meson compile -C build-bench >/dev/null
    export SLUICE_BIN=$root/build-bench/sluice
  fi
  exec bash tests/bench/origin_stores.sh
fi
[ "${MODE:-nginx}" = nginx ] || { echo "origin.sh: MODE is nginx (default) or stores" >&2; exit 2; }

threads=${BENCH_THREADS:-2}
conns=${BENCH_CONNS:-64}
secs=${BENCH_SECONDS:-10}
rounds=${BENCH_ROUNDS:-1}
pubsecs=${PUBLISH_SECONDS:-14}
seg_target=1000000
part_target=300000
key_a=bench-key-a
key_b=bench-key-b

die() { echo "origin.sh: $*" >&2; exit 2; }

for tool in wrk ffmpeg curl python3 sha256sum meson; do
  command -v "$tool" >/dev/null || die "$tool is missing (deploy/packages.sh test)"
done

# --- nginx ------------------------------------------------------------------
find_nginx() { command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true; }
nginx_bin=$(find_nginx)
if [ -z "$nginx_bin" ]; then
  echo "origin.sh: nginx not found; installing it with apt-get (nginx-light, else nginx)"
  sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo -n)
  export DEBIAN_FRONTEND=noninteractive
  apt() { timeout 300 "${sudo[@]}" apt-get "$@" >>/tmp/origin-bench-apt.log 2>&1; }
  : >/tmp/origin-bench-apt.log
  apt install -y -q nginx-light || apt install -y -q nginx ||
    { apt update -q; apt install -y -q nginx-light || apt install -y -q nginx; } || true
  nginx_bin=$(find_nginx)
  if [ -z "$nginx_bin" ]; then
    echo "origin.sh: ************************************************************" >&2
    echo "origin.sh: nginx could NOT be installed (apt-get failed; see" >&2
    echo "origin.sh: /tmp/origin-bench-apt.log). No comparison was made." >&2
    echo "origin.sh: ************************************************************" >&2
    tail -5 /tmp/origin-bench-apt.log >&2 || true
    exit 2
  fi
fi
nginx_version=$("$nginx_bin" -v 2>&1 | sed 's/.*nginx\///')

# --- sluice build -----------------------------------------------------------
if [ -n "${SLUICE_BIN:-}" ]; then
  bin=$SLUICE_BIN
else
  if [ ! -d build-bench ]; then
    meson setup build-bench --buildtype=release -Dtests=false >/dev/null || die "meson setup failed"
  fi
  meson compile -C build-bench >/dev/null || die "build failed"
  bin=$root/build-bench/sluice
fi
[ -x "$bin" ] || die "$bin not built"

# --- work dir, cleanup --------------------------------------------------------
work=$(mktemp -d /tmp/sluice-origin-bench-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_http() { # URL: up to 10 s
  for _ in $(seq 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done
  return 1
}

# --- sluice and the publishers ------------------------------------------------
rtmp=$(port); http=$(port)
# shellcheck disable=SC2086 # SLUICE_ARGS is a list of options
"$bin" --store memory --role ingest,origin \
  --stream "bench:$key_a" --stream "benchlow:$key_b" \
  --ladder 720p --passthrough auto --segment-duration 2 --part-duration 0.6 \
  --ended-ttl 3600 --rtmp-listen "127.0.0.1:$rtmp" --http-listen "127.0.0.1:$http" --admin-listen 127.0.0.1:0 \
  --log-level warn ${SLUICE_ARGS:-} >"$work/sluice.log" 2>&1 &
spid=$!
pids+=("$spid")
s_base="http://127.0.0.1:$http"
wait_http "$s_base/healthz" || { tail "$work/sluice.log" >&2; die "sluice did not start"; }

publish() { # KEY KBPS
  ffmpeg -hide_banner -nostdin -loglevel error -re \
    -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
    -t "$pubsecs" -c:v libx264 -preset veryfast -tune zerolatency -g 60 -keyint_min 60 \
    -sc_threshold 0 -pix_fmt yuv420p -b:v "${2}k" -maxrate "${2}k" -bufsize "${2}k" \
    -c:a aac -b:a 128k -f flv "rtmp://127.0.0.1:$rtmp/live/$1" >"$work/ffmpeg-$1.log" 2>&1 &
  pids+=($!)
}
echo "origin.sh: publishing for ${pubsecs} s (4 Mb/s and 1.2 Mb/s, 720p, 2 s segments, 0.6 s parts)"
publish "$key_a" 4000
fa=$!
publish "$key_b" 1200
fb=$!

# While live, remember the parts the newest live playlist names: an ended
# playlist lists none, and sluice keeps exactly those (the last segments')
# for --ended-ttl; older parts expire about 20 s after they were written.
pl_a=/hls/bench/720p/index.m3u8
pl_b=/hls/benchlow/720p/index.m3u8
: >"$work/parts"
deadline=$((SECONDS + pubsecs + 30))
while kill -0 "$fa" 2>/dev/null || kill -0 "$fb" 2>/dev/null; do
  [ $SECONDS -lt $deadline ] || die "the publishers did not finish in time"
  live=$(curl -s "$s_base$pl_a" | grep '^#EXT-X-PART:' | grep -o 'URI="[^"]*"' | cut -d'"' -f2 || true)
  [ -n "$live" ] && printf '%s\n' "$live" >"$work/parts"
  sleep 0.2
done
for p in "$fa" "$fb"; do wait "$p" || die "ffmpeg failed: $(cat "$work"/ffmpeg-*.log)"; done
# The stream ends once sluice has seen the publisher go: ENDLIST.
ended=0
for _ in $(seq 100); do
  if curl -s "$s_base$pl_a" | grep -q '^#EXT-X-ENDLIST' && curl -s "$s_base$pl_b" | grep -q '^#EXT-X-ENDLIST'; then
    ended=1; break
  fi
  sleep 0.1
done
[ $ended = 1 ] || echo "origin.sh: warning: no EXT-X-ENDLIST 10 s after the publishers ended"

size_of() { curl -s -o /dev/null -w '%{size_download}' "$s_base$1"; }
closest() { # TARGET PATH... -> the path whose size is closest to TARGET ("size path")
  local target=$1 best="" bestd=-1 p s d
  shift
  for p in "$@"; do
    s=$(size_of "$p")
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$s_base$p")" = 200 ] || continue
    d=$((s > target ? s - target : target - s))
    if [ $bestd -lt 0 ] || [ $d -lt $bestd ]; then best="$s $p"; bestd=$d; fi
  done
  echo "$best"
}
segs() { # PLAYLIST_PATH -> paths of its segments
  local dir=${1%/*}
  curl -s "$s_base$1" | grep -E '^[0-9]+\.m4s$' | sed "s|^|$dir/|"
}
mapfile -t seg_paths < <(segs "$pl_a")
[ ${#seg_paths[@]} -ge 2 ] || { tail "$work/sluice.log" >&2; die "the playlist lists fewer than 2 segments"; }
read -r seg_size seg_path < <(closest $seg_target "${seg_paths[@]}")
mapfile -t part_paths < <(sort -u "$work/parts" | grep -E '^[0-9]+\.[0-9]+\.m4s$' | sed "s|^|/hls/bench/720p/|" || true)
part_label="part \`720p/N.P.m4s\` (4 Mb/s, 0.6 s)"
part_size=; part_path=
if [ ${#part_paths[@]} -gt 0 ]; then
  read -r part_size part_path < <(closest $part_target "${part_paths[@]}") || true
fi
if [ -z "$part_path" ]; then
  mapfile -t low_paths < <(segs "$pl_b")
  [ ${#low_paths[@]} -ge 1 ] || die "the 1.2 Mb/s stream has no segments"
  read -r part_size part_path < <(closest $part_target "${low_paths[@]}")
  part_label="~300 kB: segment \`720p/N.m4s\` of a 1.2 Mb/s stream (no LL-HLS parts in the playlist yet)"
fi
pl_size=$(size_of "$pl_a")

names=(playlist part segment)
paths=("$pl_a" "$part_path" "$seg_path")
sizes=("$pl_size" "$part_size" "$seg_size")
labels=("media playlist \`720p/index.m3u8\`" "$part_label" "segment \`720p/N.m4s\` (4 Mb/s, 2 s)")

# --- nginx root and config ------------------------------------------------------
ng=$work/nginx
www=$work/www
mkdir -p "$ng" "$www"
nport=$(port)
n_base="http://127.0.0.1:$nport"
locations=
for i in 0 1 2; do
  p=${paths[$i]}
  mkdir -p "$www${p%/*}"
  curl -s -D "$work/hdr-$i" -o "$www$p" "$s_base$p"
  ctype=$(grep -i '^content-type:' "$work/hdr-$i" | head -1 | cut -d' ' -f2- | tr -d '\r')
  cache=$(grep -i '^cache-control:' "$work/hdr-$i" | head -1 | cut -d' ' -f2- | tr -d '\r')
  cors=$(grep -i '^access-control-allow-origin:' "$work/hdr-$i" | head -1 | cut -d' ' -f2- | tr -d '\r')
  expose=$(grep -i '^access-control-expose-headers:' "$work/hdr-$i" | head -1 | cut -d' ' -f2- | tr -d '\r')
  loc="        location = $p {
            default_type \"${ctype:-application/octet-stream}\";"
  [ -n "$cache" ] && loc+="
            add_header Cache-Control \"$cache\";"
  [ -n "$cors" ] && loc+="
            add_header Access-Control-Allow-Origin \"$cors\";"
  [ -n "$expose" ] && loc+="
            add_header Access-Control-Expose-Headers \"$expose\";"
  locations+="$loc
        }
"
done
# nginx's workers drop to "nobody" when started as root: let them read.
chmod 755 "$work"
chmod -R a+rX "$www"
cat >"$ng/nginx.conf" <<EOF
worker_processes auto;
pid $ng/nginx.pid;
error_log $ng/error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    sendfile ${NGINX_SENDFILE:-on};
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    open_file_cache max=64 inactive=60s;
    client_body_temp_path $ng/body;
    proxy_temp_path $ng/proxy;
    fastcgi_temp_path $ng/fastcgi;
    uwsgi_temp_path $ng/uwsgi;
    scgi_temp_path $ng/scgi;
    types { }
    server {
        listen 127.0.0.1:$nport;
        root $www;
$locations        location / {
            return 404;
        }
    }
}
EOF
"$nginx_bin" -t -q -p "$ng" -e "$ng/error.log" -c "$ng/nginx.conf" || die "nginx rejects the generated config ($ng/nginx.conf)"
"$nginx_bin" -p "$ng" -e "$ng/error.log" -c "$ng/nginx.conf" -g 'daemon off;' &
npid=$!
pids+=("$npid")
wait_http "$n_base${paths[0]}" || { cat "$ng/error.log" >&2; die "nginx did not start"; }

# --- same bytes? ----------------------------------------------------------------
for i in 0 1 2; do
  a=$(curl -s "$s_base${paths[$i]}" | sha256sum | cut -d' ' -f1)
  b=$(curl -s "$n_base${paths[$i]}" | sha256sum | cut -d' ' -f1)
  c=$(sha256sum <"$www${paths[$i]}" | cut -d' ' -f1)
  { [ "$a" = "$b" ] && [ "$a" = "$c" ]; } || die "${names[$i]} ${paths[$i]}: sluice and nginx serve different bytes"
  sct=$(curl -s -o /dev/null -w '%{content_type}' "$s_base${paths[$i]}")
  nct=$(curl -s -o /dev/null -w '%{content_type}' "$n_base${paths[$i]}")
  [ "$sct" = "$nct" ] || die "${names[$i]}: Content-Type differs ($sct / $nct)"
done
echo "origin.sh: sluice and nginx serve identical bytes (sha256) for ${paths[*]}"

# --- measure ---------------------------------------------------------------------
to_ms() { # "613.00us" / "1.20ms" / "1.01s" -> ms
  awk -v v="$1" 'BEGIN { u = v; sub(/^[0-9.]+/, "", u); n = v + 0;
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000;
    printf "%.2f", n }'
}
server_pids() { # SERVER -> its processes (nginx: the master and its workers)
  if [ "$1" = sluice ]; then echo "$spid"; else echo "$npid"; pgrep -P "$npid" || true; fi
}
hz=$(getconf CLK_TCK)
bench() { # NAME SERVER URL -> appends "name server rps p50 p99 cpu-us/req" to results
  local out rps p50 p99 bad c0 c1 n cpu
  mapfile -t sp < <(server_pids "$2")
  c0=$(cpu_ticks "${sp[@]}")
  out=$(wrk -t"$threads" -c"$conns" -d"${secs}s" --timeout 5s --latency "$3" 2>&1) || die "wrk failed: $out"
  c1=$(cpu_ticks "${sp[@]}")
  n=$(awk '/requests in/ { print $1 }' <<<"$out")
  cpu=$(awk -v c=$((c1 - c0)) -v n="${n:-0}" -v hz="$hz" 'BEGIN { printf "%.1f", (n > 0 ? c * 1e6 / hz / n : 0) }')
  rps=$(awk '/^Requests\/sec/ { print int($2) }' <<<"$out")
  p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
  p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
  bad=$(grep -E 'Non-2xx|Socket errors' <<<"$out" || true)
  # Error answers are not throughput: a run with any is no measurement.
  [ -z "$bad" ] || die "$2 answered $1 with errors ($bad): nothing to compare"
  echo "$1 $2 ${rps:-0} $p50 $p99 $cpu" >>"$work/results"
  printf '  %-8s %-6s %8s req/s  p50 %7s ms  p99 %7s ms  %6s CPU-us/req\n' "$1" "$2" "${rps:-0}" "$p50" "$p99" "$cpu"
}
: >"$work/results"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "origin.sh: wrk -t$threads -c$conns -d${secs}s --latency, $rounds round(s), sluice then nginx per object"
for r in $(seq "$rounds"); do
  [ "$rounds" = 1 ] || echo " round $r"
  for i in 0 1 2; do
    bench "${names[$i]}" sluice "$s_base${paths[$i]}"
    bench "${names[$i]}" nginx "$n_base${paths[$i]}"
  done
done

median() { # NAME SERVER COLUMN
  awk -v n="$1" -v s="$2" -v c="$3" '$1 == n && $2 == s { print $c }' "$work/results" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
echo
echo "origin: sluice vs nginx $nginx_version (sendfile ${NGINX_SENDFILE:-on}), wrk -t$threads -c$conns -d${secs}s, loopback, $(nproc) cores," \
  "median of $rounds round(s); latency in ms; load average before: $load0"
echo
echo "| object | size (bytes) | sluice req/s | nginx req/s | sluice / nginx | sluice p50 / p99 | nginx p50 / p99 | CPU-us/req sluice / nginx |"
echo "|---|---|---|---|---|---|---|---|"
for i in 0 1 2; do
  n=${names[$i]}
  srps=$(median "$n" sluice 3); nrps=$(median "$n" nginx 3)
  ratio=$(awk -v a="$srps" -v b="$nrps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
  echo "| ${labels[$i]} | ${sizes[$i]} | ${srps%.*} | ${nrps%.*} | $ratio |" \
    "$(median "$n" sluice 4) / $(median "$n" sluice 5) | $(median "$n" nginx 4) / $(median "$n" nginx 5) |" \
    "$(median "$n" sluice 6) / $(median "$n" nginx 6) |"
done
kill -0 "$spid" 2>/dev/null || die "sluice exited during the run"
