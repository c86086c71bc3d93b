#!/usr/bin/env bash
# Ladder benchmark, run by hand (not part of tests/run.sh):
#   tests/bench/ladder.sh [SECONDS]          (default 30)
#   MODES="never auto" (default both), QUALITY=0 skips PSNR/SSIM,
#   KEEP=1 keeps the work directory (source and rung files).
# Builds a release sluice into build-bench/ (incrementally), makes a 1080p30 H.264
# + AAC source, then for two modes -- full transcode (every rung encoded)
# and passthrough auto (1080p copied) -- runs in one go:
#   sluice: the file published over RTMP (-c copy, as fast as sluice takes
#           it), the four-rung ladder packaged as CMAF HLS in memory;
#   ffmpeg: the equivalent command line (split + scale + libx264 with the
#           same rate control, GOP 2 s, no scene cut, fMP4 HLS on disk).
# Reports CPU-seconds per media-second, the ratio sluice/ffmpeg, speed
# (media seconds per wall second), max RSS, and per-rung PSNR/SSIM against
# the source scaled to the rung (bicubic), for both.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
root=$(pwd)
secs=${1:-30}
work=$(mktemp -d /tmp/sluice-bench-XXXXXX)
trap '[ "${KEEP:-0}" = 1 ] && echo "kept $work" || rm -rf "$work"; [ -n "${spid:-}" ] && kill "$spid" 2>/dev/null || true' EXIT
hz=$(getconf CLK_TCK)

[ -d build-bench ] || meson setup build-bench --buildtype=release -Dtests=false >/dev/null
meson compile -C build-bench >/dev/null
bin=$root/build-bench/sluice

echo "== source: ${secs} s 1920x1080 30 fps H.264 (testsrc2 + light grain, 8 Mb/s, GOP 2 s) + AAC-LC 48 kHz stereo"
src=$work/src.flv
ffmpeg -hide_banner -nostdin -loglevel error -y \
  -f lavfi -i "testsrc2=size=1920x1080:rate=30,noise=alls=4:allf=t" \
  -f lavfi -i "sine=frequency=440:sample_rate=48000" -t "$secs" \
  -c:v libx264 -preset veryfast -b:v 8000k -g 60 -keyint_min 60 -sc_threshold 0 -pix_fmt yuv420p \
  -c:a aac -b:a 128k -ac 2 -f flv "$src"
fps=30
src_frames=$((secs * fps))

# name width height kbps
rungs="1080p 1920 1080 5000
720p 1280 720 2800
480p 854 480 1400
360p 640 360 800"


# psnr_ssim FILE WIDTH HEIGHT -> "psnr ssim frames minpsnr": every frame of
# FILE paired with the source frame of the same number. Both streams get
# their first frame's time subtracted and their timestamps rounded to the
# frame grid (settb=1/fps), so frame k of either is the k-th source frame
# as long as the tool neither drops nor duplicates pictures (both tools here
# pass timestamps through: sluice always, ffmpeg with -fps_mode
# passthrough). The psnr/ssim filters then pair frames of equal timestamp.
# "frames" (pairs scored) and "minpsnr" (worst frame) expose a bad pairing:
# one dropped or repeated picture shifts every later pair by a frame, which
# on this moving source costs >10 dB per frame and shows as a low minimum.
# Checked by scoring a file against itself and against itself shifted by one
# frame (docs/benchmarks.md).
psnr_ssim() {
  local log=$work/psnr.log
  rm -f "$log"
  ffmpeg -hide_banner -nostdin -i "$1" -i "$src" -lavfi \
    "[0:v]setpts=PTS-STARTPTS,settb=1/$fps,split[m1][m2];[1:v]scale=$2:$3:flags=bicubic,setpts=PTS-STARTPTS,settb=1/$fps,split[r1][r2];[m1][r1]psnr=stats_file=$log;[m2][r2]ssim" \
    -fps_mode passthrough -f null - 2>&1 |
    awk -v lf="$log" '/PSNR/ {for(i=1;i<=NF;i++) if ($i ~ /^average:/) {sub("average:","",$i); p=$i}}
         /SSIM/ {for(i=1;i<=NF;i++) if ($i ~ /^All:/) {sub("All:","",$i); s=$i}}
         END {n=0; m=1e9; while ((getline l < lf) > 0) {n++; split(l, f, " ");
                for (i in f) if (f[i] ~ /^psnr_avg:/) {sub("psnr_avg:","",f[i]); if (f[i]+0 < m) m=f[i]+0}}
              if (m == 1e9) m = "inf"; printf "%.2f %.4f %d %s", p, s, n, m}'
}

run_sluice() { # mode -> sets s_cpu s_wall s_rss; rung files in $work/s-*.mp4
  local passthrough=$1 rtmp http
  rtmp=$(port); http=$(port)
  "$bin" --rtmp-listen 127.0.0.1:$rtmp --http-listen 127.0.0.1:$http --admin-listen 127.0.0.1:0 --stream bench:bench-key \
    --passthrough "$passthrough" --overload-protection off --playlist-segments 1000 \
    --rtmp-queue-bytes 268435456 --log-level warn >"$work/sluice.log" 2>&1 &
  spid=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$http/healthz" && break; sleep 0.05; done
  local c0 t0 t1 c1
  c0=$(cpu_ticks $spid); t0=$(date +%s.%N)
  ffmpeg -hide_banner -nostdin -loglevel error -i "$src" -c copy -f flv "rtmp://127.0.0.1:$rtmp/live/bench-key"
  until curl -s "http://127.0.0.1:$http/hls/bench/360p/index.m3u8" | grep -q ENDLIST; do sleep 0.05; done
  t1=$(date +%s.%N); c1=$(cpu_ticks $spid)
  s_rss=$(awk '/VmHWM/ {print $2}' "/proc/$spid/status")
  s_cpu=$(echo "($c1 - $c0) / $hz" | bc -l); s_wall=$(echo "$t1 - $t0" | bc -l)
  while read -r name w h kbps; do
    python3 - "$http" "$name" "$work/s-$name.mp4" <<'PY'
import sys, urllib.request
port, name, out = sys.argv[1:]
base = f"http://127.0.0.1:{port}/hls/bench/{name}/"
pl = urllib.request.urlopen(base + "index.m3u8").read().decode()
with open(out, "wb") as f:
    f.write(urllib.request.urlopen(base + "init.mp4").read())
    for l in pl.splitlines():
        if l and not l.startswith("#"):
            f.write(urllib.request.urlopen(base + l).read())
PY
  done <<<"$rungs"
  kill $spid; wait $spid 2>/dev/null || true; spid=
}

run_ffmpeg() { # mode -> f_cpu f_wall f_rss; rung files in $work/f-*.mp4
  local passthrough=$1 out=$work/ff
  rm -rf "$out"; mkdir -p "$out"
  local v1080="-c:v:0 libx264 -preset:v:0 veryfast -profile:v:0 high -b:v:0 5000k -maxrate:v:0 7500k -bufsize:v:0 10000k"
  local split="[0:v]split=4[s0][s1][s2][s3];[s0]null[v0]"
  if [ "$passthrough" = auto ]; then
    v1080="-c:v:0 copy"; split="[0:v]split=3[s1][s2][s3]"
  fi
  local map0="-map [v0]"; [ "$passthrough" = auto ] && map0="-map 0:v"
  /usr/bin/time -f "%e %U %S %M" -o "$work/time" ffmpeg -hide_banner -nostdin -loglevel error -y -i "$src" \
    -filter_complex "$split;[s1]scale=1280:720[v1];[s2]scale=854:480[v2];[s3]scale=640:360[v3]" \
    $map0 -map "[v1]" -map "[v2]" -map "[v3]" -map 0:a \
    $v1080 \
    -c:v:1 libx264 -preset:v:1 veryfast -profile:v:1 high -b:v:1 2800k -maxrate:v:1 4200k -bufsize:v:1 5600k \
    -c:v:2 libx264 -preset:v:2 veryfast -profile:v:2 high -b:v:2 1400k -maxrate:v:2 2100k -bufsize:v:2 2800k \
    -c:v:3 libx264 -preset:v:3 veryfast -profile:v:3 high -b:v:3 800k -maxrate:v:3 1200k -bufsize:v:3 1600k \
    -g 60 -keyint_min 60 -sc_threshold 0 -c:a copy -fps_mode passthrough \
    -f hls -hls_time 2 -hls_playlist_type vod -hls_segment_type fmp4 \
    -var_stream_map "v:0,agroup:aud v:1,agroup:aud v:2,agroup:aud v:3,agroup:aud a:0,agroup:aud" \
    -master_pl_name master.m3u8 -hls_segment_filename "$out/%v_%d.m4s" "$out/%v.m3u8"
  read -r f_wall u s f_rss <"$work/time"
  f_cpu=$(echo "$u + $s" | bc -l)
  local i=0
  while read -r name w h kbps; do
    python3 - "$out" "$i" "$work/f-$name.mp4" <<'PY'
import sys, os, re
out, i, dst = sys.argv[1:]
pl = open(os.path.join(out, f"{i}.m3u8")).read()
init = re.search(r'EXT-X-MAP:URI="([^"]+)"', pl).group(1)
with open(dst, "wb") as f:
    f.write(open(os.path.join(out, init), "rb").read())
    for l in pl.splitlines():
        if l and not l.startswith("#"):
            f.write(open(os.path.join(out, l), "rb").read())
PY
    i=$((i + 1))
  done <<<"$rungs"
}

report() { # mode title
  printf '\n== %s (%s s of 1080p30, %s cores, load before: %s)\n' "$2" "$secs" "$(nproc)" "$load0"
  printf '%-8s %12s %10s %9s %10s\n' "" "CPU-s/s" "speed" "RSS MB" ""
  printf '%-8s %12.3f %9.2fx %9.0f\n' sluice "$(echo "$s_cpu / $secs" | bc -l)" "$(echo "$secs / $s_wall" | bc -l)" "$(echo "$s_rss / 1024" | bc -l)"
  printf '%-8s %12.3f %9.2fx %9.0f\n' ffmpeg "$(echo "$f_cpu / $secs" | bc -l)" "$(echo "$secs / $f_wall" | bc -l)" "$(echo "$f_rss / 1024" | bc -l)"
  printf '%-8s %12.3f %10s %9.2f\n' ratio "$(echo "$s_cpu / $f_cpu" | bc -l)" "" "$(echo "$s_rss / $f_rss" | bc -l)"
  if [ "$1" = auto ] && [ -n "${f_cpu_full:-}" ]; then
    printf '%-8s %12.3f   (sluice passthrough / ffmpeg full ladder, same run)\n' ratio "$(echo "$s_cpu / $f_cpu_full" | bc -l)"
  fi
  [ "${QUALITY:-1}" = 1 ] || return 0
  printf '%-6s %9s %9s %7s %8s %8s %11s %7s %7s %7s\n' rung "sl PSNR" "ff PSNR" dPSNR "sl SSIM" "ff SSIM" "frames s/f" "sl kb/s" "ff kb/s" target
  while read -r name w h kbps; do
    local sp ss sn sm fp fs fn fm sk fk d
    read -r sp ss sn sm <<<"$(psnr_ssim "$work/s-$name.mp4" "$w" "$h")"
    read -r fp fs fn fm <<<"$(psnr_ssim "$work/f-$name.mp4" "$w" "$h")"
    sk=$(ffprobe -v error -select_streams v -show_entries packet=size -of csv=p=0 "$work/s-$name.mp4" | awk -v s="$secs" '{b+=$1} END {printf "%.0f", b*8/s/1000}')
    fk=$(ffprobe -v error -select_streams v -show_entries packet=size -of csv=p=0 "$work/f-$name.mp4" | awk -v s="$secs" '{b+=$1} END {printf "%.0f", b*8/s/1000}')
    case "$sp$fp" in *inf*) d=copy ;; *) d=$(printf '%+.2f' "$(echo "$sp - $fp" | bc -l)") ;; esac
    printf '%-6s %9s %9s %7s %8s %8s %11s %7s %7s %7s\n' "$name" "$sp" "$fp" "$d" "$ss" "$fs" "$sn/$fn" "$sk" "$fk" "$kbps"
    # A pairing error shows as missing frames or a frame far below average.
    for x in "sluice $sn $sm $sp" "ffmpeg $fn $fm $fp"; do
      read -r who n m a <<<"$x"
      if [ "$n" != "$src_frames" ]; then echo "   WARNING: $who $name: $n frames scored, source has $src_frames"; fi
      case "$a" in inf) ;; *) if [ "$(echo "$m < $a - 8" | bc -l)" = 1 ]; then echo "   WARNING: $who $name: worst frame $m dB against $a average: pairing?"; fi ;; esac
    done
  done <<<"$rungs"

}

load0=$(cut -d' ' -f1-3 /proc/loadavg)
for mode in ${MODES:-never auto}; do
  load0=$(cut -d' ' -f1-3 /proc/loadavg)
  run_sluice $mode
  run_ffmpeg $mode
  [ $mode = never ] && f_cpu_full=$f_cpu
  if [ $mode = never ]; then report $mode "full transcode (--passthrough never)"; else report $mode "passthrough auto (1080p copied)"; fi
done
