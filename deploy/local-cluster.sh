#!/usr/bin/env bash
# The multi-node topology of deploy/compose.yaml without containers, as
# processes on loopback ports: one redis-server, one sluice --role ingest,
# two sluice --role origin on the shared Redis store, and nginx with
# deploy/nginx/cdn.conf as the caching CDN in front of the two origins.
#
#   deploy/local-cluster.sh start     start everything, wait until ready, print the URLs
#   deploy/local-cluster.sh status    what is running
#   deploy/local-cluster.sh stop      SIGTERM everything, wait, report exit statuses
#
# Environment:
#   SLUICE_BIN         the sluice binary (default: build/sluice of this checkout)
#   CLUSTER_DIR        run directory: logs, pid files, nginx cache, the demo key
#                      (default: ./cluster-run)
#   CLUSTER_BASE_PORT  first of eight consecutive loopback ports (default 19350):
#                      +0 redis, +1 RTMP, +2 ingest admin, +3/+4 origin1 HTTP/admin,
#                      +5/+6 origin2 HTTP/admin, +7 the CDN
#   SLUICE_*           sluice options, reach every node (e.g. SLUICE_LADDER=480p,360p)
#
# Every process runs as the invoking user, detached into its own session with
# its output in CLUSTER_DIR/NAME.log; a small shell waits for each and writes
# its exit status into CLUSTER_DIR/NAME.exit. The demo stream key is made once
# (CLUSTER_DIR/demo-stream-key, mode 0600) and is printed only in the RTMP URL
# at the end of `start`; it reaches sluice through the environment, so it is
# not on any command line (ps) and not in any log.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
SLUICE_BIN=${SLUICE_BIN:-$root/build/sluice}
run=${CLUSTER_DIR:-$PWD/cluster-run}
base=${CLUSTER_BASE_PORT:-19350}

redis_port=$base
rtmp_port=$((base + 1))
ingest_admin=$((base + 2))
o1_http=$((base + 3)); o1_admin=$((base + 4))
o2_http=$((base + 5)); o2_admin=$((base + 6))
cdn_port=$((base + 7))
store="redis://127.0.0.1:$redis_port/0"

pieces=(cdn origin1 origin2 ingest redis)

die() { echo "local-cluster: $*" >&2; exit 1; }

need() {
    command -v "$1" >/dev/null 2>&1 || die "$1 not found (Debian: apt-get install $2)"
}

running() { # NAME: its pid when it is alive
    local f="$run/$1.pid" pid
    [ -s "$f" ] || return 1
    pid=$(cat "$f")
    kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

port_busy() { # PORT: something accepts connections on it
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

log_tail() {
    local f
    for f in "$run/$1.log" "$run/nginx/error.log"; do
        [ "$1" = cdn ] || [ "$f" = "$run/$1.log" ] || continue
        [ -s "$f" ] || continue
        echo "--- last lines of $f:" >&2
        tail -n 20 "$f" >&2 || true
    done
}

# spawn NAME CMD...: runs CMD detached (own session, no terminal, output to
# NAME.log); NAME.pid gets the command's pid, NAME.exit its exit status.
spawn() {
    local name=$1; shift
    rm -f "$run/$name.pid" "$run/$name.exit"
    # shellcheck disable=SC2016 # expanded by the inner sh, not here
    PIECE="$run/$name" setsid sh -c '"$@" & echo $! > "$PIECE.pid.tmp" && mv "$PIECE.pid.tmp" "$PIECE.pid"
                  wait $!; echo $? > "$PIECE.exit"' \
        sh "$@" </dev/null >"$run/$name.log" 2>&1 &
    local t=0
    while [ ! -s "$run/$name.pid" ]; do
        sleep 0.05; t=$((t + 1))
        [ $t -lt 100 ] || die "$name: could not be started"
    done
}

# wait_ready NAME SECONDS CHECK...: polls CHECK until it succeeds; fails with
# the log's tail when NAME exits or the time runs out.
wait_ready() {
    local name=$1 secs=$2; shift 2
    local deadline=$((SECONDS + secs))
    while ! "$@" >/dev/null 2>&1; do
        if ! running "$name" >/dev/null; then
            echo "local-cluster: $name exited while starting (status $(cat "$run/$name.exit" 2>/dev/null || echo '?'))" >&2
            log_tail "$name"
            exit 1
        fi
        if [ $SECONDS -ge $deadline ]; then
            echo "local-cluster: $name not ready after ${secs}s" >&2
            log_tail "$name"
            exit 1
        fi
        sleep 0.1
    done
}

ok_url() { curl -fsS -o /dev/null --max-time 2 "$1"; }
ingest_connected() {
    curl -fsS --max-time 2 "http://127.0.0.1:$ingest_admin/api/v1/stats" |
        grep -Eq '"connected": ?true'
}

write_nginx_conf() {
    mkdir -p "$run/nginx/cache" "$run/nginx/temp"
    local user=""
    # A root master would hand the workers to "nobody", who cannot use the
    # run directory: keep them as the invoking user.
    [ "$(id -u)" -ne 0 ] || user="user $(id -un) $(id -gn);"
    cat > "$run/nginx/nginx.conf" <<CONF
# Written by deploy/local-cluster.sh; the CDN behaviour is in $here/nginx/cdn.conf.
$user
worker_processes 1;
daemon off;
pid $run/nginx/nginx.pid;
error_log $run/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log $run/nginx/access.log;
    client_body_temp_path $run/nginx/temp/body;
    proxy_temp_path $run/nginx/temp/proxy;
    fastcgi_temp_path $run/nginx/temp/fastcgi;
    uwsgi_temp_path $run/nginx/temp/uwsgi;
    scgi_temp_path $run/nginx/temp/scgi;
    types { application/vnd.apple.mpegurl m3u8; video/mp4 mp4 m4s; }
    proxy_cache_path $run/nginx/cache levels=1:2 keys_zone=sluice_cache:16m
                     max_size=1g inactive=10m use_temp_path=off;
    upstream sluice_origins {
        server 127.0.0.1:$o1_http max_fails=1 fail_timeout=5s;
        server 127.0.0.1:$o2_http max_fails=1 fail_timeout=5s;
        keepalive 32;
    }
    server {
        listen 127.0.0.1:$cdn_port;
        include $here/nginx/cdn.conf;
    }
}
CONF
}

start() {
    need redis-server redis-server
    need redis-cli redis-tools
    need nginx nginx
    need curl curl
    need setsid util-linux
    [ -x "$SLUICE_BIN" ] || die "sluice binary $SLUICE_BIN not found (build it, or set SLUICE_BIN)"
    mkdir -p "$run"
    local p name
    for name in "${pieces[@]}"; do
        if pid=$(running "$name"); then
            die "$name is already running (pid $pid) in $run: run '$0 stop' first"
        fi
    done
    for p in $redis_port $rtmp_port $ingest_admin $o1_http $o1_admin $o2_http $o2_admin $cdn_port; do
        port_busy "$p" && die "port $p is in use (set CLUSTER_BASE_PORT to another range of 8 ports)"
    done
    local keyfile="$run/demo-stream-key"
    if [ ! -s "$keyfile" ]; then
        (umask 077; head -c 18 /dev/urandom | base64 | tr '+/' '-_' > "$keyfile")
    fi
    chmod 600 "$keyfile"

    # Anything that fails from here on takes down what was started.
    trap 'echo "local-cluster: start failed; stopping what was started" >&2; stop >/dev/null 2>&1 || true' EXIT
    trap 'exit 1' INT TERM

    mkdir -p "$run/redis"
    spawn redis redis-server --port "$redis_port" --bind 127.0.0.1 --save "" \
        --appendonly no --dir "$run/redis"
    wait_ready redis 10 redis-cli -p "$redis_port" ping

    # The same flags as deploy/compose.yaml, on loopback addresses.
    SLUICE_STREAM="demo:$(cat "$keyfile")" spawn ingest "$SLUICE_BIN" --role ingest \
        --store "$store" --rtmp-listen "127.0.0.1:$rtmp_port" \
        --admin-listen "127.0.0.1:$ingest_admin"
    spawn origin1 "$SLUICE_BIN" --role origin --store "$store" \
        --http-listen "127.0.0.1:$o1_http" --admin-listen "127.0.0.1:$o1_admin" \
        --trusted-proxies 127.0.0.1
    spawn origin2 "$SLUICE_BIN" --role origin --store "$store" \
        --http-listen "127.0.0.1:$o2_http" --admin-listen "127.0.0.1:$o2_admin" \
        --trusted-proxies 127.0.0.1
    wait_ready ingest 30 ingest_connected
    wait_ready origin1 30 ok_url "http://127.0.0.1:$o1_http/readyz"
    wait_ready origin2 30 ok_url "http://127.0.0.1:$o2_http/readyz"

    write_nginx_conf
    nginx -t -q -p "$run/nginx" -e "$run/nginx/error.log" -c "$run/nginx/nginx.conf" \
        >"$run/cdn.log" 2>&1 || { log_tail cdn; die "nginx refused $run/nginx/nginx.conf"; }
    spawn cdn nginx -p "$run/nginx" -e "$run/nginx/error.log" -c "$run/nginx/nginx.conf"
    wait_ready cdn 10 ok_url "http://127.0.0.1:$cdn_port/readyz"
    trap - EXIT INT TERM

    cat <<MSG
sluice local cluster is up (run directory $run)
  publish:  rtmp://127.0.0.1:$rtmp_port/live/$(cat "$keyfile")
  play:     http://127.0.0.1:$cdn_port/hls/demo/master.m3u8   (through the CDN)
  player:   http://127.0.0.1:$cdn_port/player/demo
  admin:    http://127.0.0.1:$ingest_admin/dashboard   (API: http://127.0.0.1:$ingest_admin/api/v1/streams)
  origins:  http://127.0.0.1:$o1_http  http://127.0.0.1:$o2_http   redis: $store
  stop:     $0 stop
MSG
}

# stop_group NAME...: SIGTERM to those running, then waits for each.
stop_group() {
    local name pid failed=0 status
    local -a stopping=()
    for name in "$@"; do
        if pid=$(running "$name"); then
            kill -TERM "$pid" 2>/dev/null || true
            stopping+=("$name")
        elif [ -e "$run/$name.exit" ]; then
            echo "$name: not running (exited with status $(cat "$run/$name.exit"))"
        fi
    done
    for name in ${stopping[@]+"${stopping[@]}"}; do
        wait_exit "$name" 30 || failed=1
        status=$(cat "$run/$name.exit" 2>/dev/null || echo killed)
        echo "$name: stopped (exit status $status)"
        [ "$status" = 0 ] || failed=1
    done
    return $failed
}

stop() {
    local failed=0
    # Redis last: the sluice nodes still write to it while they stop.
    stop_group cdn origin1 origin2 ingest || failed=1
    stop_group redis || failed=1
    return $failed
}

# wait_exit NAME SECONDS: waits for NAME's exit status; SIGKILL after SECONDS.
wait_exit() {
    local name=$1 secs=$2 pid
    local deadline=$((SECONDS + secs))
    while [ ! -e "$run/$name.exit" ]; do
        if [ $SECONDS -ge $deadline ]; then
            if pid=$(running "$name"); then
                echo "$name: did not stop within ${secs}s, killed" >&2
                kill -KILL "$pid" 2>/dev/null || true
            fi
            sleep 0.2
            return 1
        fi
        sleep 0.1
    done
}

status() {
    local name pid any=0
    for name in "${pieces[@]}"; do
        if pid=$(running "$name"); then
            echo "$name: running (pid $pid)"
            any=1
        elif [ -e "$run/$name.exit" ]; then
            echo "$name: exited (status $(cat "$run/$name.exit"))"
        else
            echo "$name: not started"
        fi
    done
    [ $any = 1 ]
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
