#!/usr/bin/env bash
# Density and memory benchmark: N concurrent passthrough RTMP publishers (ladder off:
# CUECAST_MEDIA_LADDER=[])
# (`ffmpeg -re -stream_loop -1 -c copy` of one pre-encoded 2.5 Mbps 720p30 clip) into cuecast and,
# in the same run, into nginx-rtmp (Debian nginx + libnginx-mod-rtmp, `hls on`). For each N and
# each server: start the server on free loopback ports, measure its idle RSS, start N publishers,
# warm up, measure the server's CPU time and RSS over a window, check that the streams are really
# served (playlists with segments that advance), stop everything, next case.
#
#   benches/density/run.sh                                  # COUNTS="20 50", 70 s warmup, 30 s measured
#   COUNTS=2 WARMUP_S=3 MEASURE_S=5 benches/density/run.sh  # smoke run (~1 min)
#   SERVERS="cuecast-norec cuecast nginx-rtmp" benches/density/run.sh
#                                                           # + recording off: its cost per stream
#   SKIP_BUILD=1 COUNTS=50 WARMUP_S=40 MEASURE_S=30 \
#     SERVERS="cuecast-norec cuecast floor cuecast-norec cuecast floor" benches/density/run.sh
#                                                           # recording's cost, alternated, with its
#                                                           # floor (docs/benchmarks/density.md)
#
# A default run takes ~8 minutes. Environment: COUNTS (publisher counts, "20 50"), WARMUP_S
# (2 × WINDOW_S + 10 = 70: until RSS is steady), MEASURE_S (30), WINDOW_S (cuecast hls.window_s and
# nginx-rtmp hls_playlist_length, 30), SERVERS ("cuecast nginx-rtmp"; `cuecast` records every
# stream as the default config does, `cuecast-norec` is cuecast with recordings.enabled = false,
# `floor` is no server but floor.py, a minimal writer of the bytes cuecast records, one file and
# one write per segment: the kernel's share of recording's cost; a server named twice runs twice,
# and the report pools the runs),
# SKIP_BUILD=1 (use the
# existing release binary), CUECAST_BIN (another cuecast binary, e.g. a copy of an older build;
# default $CARGO_TARGET_DIR/release/cuecast), CLIP_DIR (where the test clip is cached, default
# $CARGO_TARGET_DIR/bench-density-cache), CARGO_TARGET_DIR (default ./target).
# Output: markdown table on stdout and in $CARGO_TARGET_DIR/bench-density.md; per-case logs
# (server log, nginx error.log, publisher logs) and results.jsonl in $CARGO_TARGET_DIR/bench-density/.
# Linux only (reads /proc). Installs nginx, libnginx-mod-rtmp and ffmpeg with apt-get when missing.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
COUNTS="${COUNTS:-20 50}"
WINDOW_S="${WINDOW_S:-30}"
# cuecast holds a segment for about one window after it left the playlist (for players still
# fetching it), so its memory is steady only after ~2 windows of media: warm up that long, or
# the RSS figure is low (with 10 s: ~15 instead of ~22 MiB/stream at 2.6 Mb/s).
WARMUP_S="${WARMUP_S:-$((2 * WINDOW_S + 10))}"
MEASURE_S="${MEASURE_S:-30}"
SEGMENT_S=2   # cuecast's hls.segment_duration_s (default config) = the clip's GOP (g60 at 30 fps)
SERVERS="${SERVERS:-cuecast nginx-rtmp}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
CLIP_DIR="${CLIP_DIR:-$TARGET_DIR/bench-density-cache}"
OUT_DIR="$TARGET_DIR/bench-density"
REPORT="$TARGET_DIR/bench-density.md"
MEASURE=(python3 -B "$HERE/measure.py")
KEY_PREFIX="bench-key-"

log() { printf '[density %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ------------------------------------------------------------------ processes and cleanup
PUB_PIDS=()
SERVER_PID=""
FG_PID=""
TMP=""

# Runs a long step (sleep, measurement) as a waited-for child, so that a signal to this
# script runs the cleanup at once instead of after the step.
step() {
  "$@" &
  FG_PID=$!
  local rc=0
  wait "$FG_PID" || rc=$?
  FG_PID=""
  return "$rc"
}

# Sends $3 (TERM; "none" = already signalled) to a pid we started, waits up to $2 seconds,
# then KILLs it.
stop_pid() {
  local pid="$1" grace="${2:-5}" sig="${3:-TERM}"
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  [ "$sig" = none ] || kill "-$sig" "$pid" 2>/dev/null || true
  local i
  for ((i = 0; i < grace * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid still running after ${grace}s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

stop_publishers() {
  local pid
  for pid in "${PUB_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PUB_PIDS[@]}"; do stop_pid "$pid" 3 none; done
  PUB_PIDS=()
}

stop_server() {
  # cuecast: SIGTERM = graceful shutdown (grace 5 s + 1 s linger); nginx: SIGTERM = fast stop.
  stop_pid "$SERVER_PID" 10
  SERVER_PID=""
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "${#PUB_PIDS[@]}" -gt 0 ] || [ -n "$SERVER_PID" ]; then
    log "cleaning up"
  fi
  [ -n "$FG_PID" ] && stop_pid "$FG_PID" 2
  stop_publishers
  stop_server
  [ -n "$TMP" ] && rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ prerequisites
install_missing() {
  local missing=() p
  for p in nginx libnginx-mod-rtmp ffmpeg python3; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  log "installing ${missing[*]}"
  local sudo="" made_policy=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  # Installing nginx would start the system nginx service: forbid service starts for the
  # duration of the install when nothing forbids them already (policy-rc.d exit 101).
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" || { [ -n "$made_policy" ] && $sudo rm -f /usr/sbin/policy-rc.d; exit 1; }
  [ -n "$made_policy" ] && $sudo rm -f /usr/sbin/policy-rc.d
  return 0
}

"$ROOT/.ci/setup"          # cuecast's own build + GStreamer runtime packages (idempotent)
install_missing
RTMP_MODULE="$(dpkg -L libnginx-mod-rtmp | grep -m1 'ngx_rtmp_module\.so$')" \
  || die "libnginx-mod-rtmp has no ngx_rtmp_module.so"
command -v nginx >/dev/null || die "nginx not found after install"

if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "building cuecast (release)"
  (cd "$ROOT" && cargo build --release --locked --bin cuecast)
fi
CUECAST="${CUECAST_BIN:-$TARGET_DIR/release/cuecast}"
[ -x "$CUECAST" ] || die "$CUECAST not built"

# ------------------------------------------------------------------ the test clip (cached, never committed)
CLIP="$CLIP_DIR/clip-720p30-h264high-2500k-g60-aac48k-60s.mp4"
if [ ! -s "$CLIP" ]; then
  mkdir -p "$CLIP_DIR"
  log "encoding the 60 s test clip once into $CLIP (takes a minute or two)"
  # Noise keeps the encoder busy enough that it really spends ~2.5 Mbps (a clean test
  # pattern would come out far below); maxrate = bitrate with a 1 s buffer makes it CBR-ish.
  ffmpeg -hide_banner -nostdin -loglevel error -y \
    -f lavfi -i "testsrc2=size=1280x720:rate=30,noise=alls=14:allf=t" \
    -f lavfi -i "sine=frequency=440:sample_rate=48000" \
    -t 60 -map 0:v -map 1:a \
    -c:v libx264 -preset veryfast -profile:v high -pix_fmt yuv420p \
    -g 60 -keyint_min 60 -sc_threshold 0 \
    -b:v 2500k -minrate 2500k -maxrate 2500k -bufsize 2500k \
    -c:a aac -b:a 128k -ar 48000 -ac 2 \
    -movflags +faststart "$CLIP.tmp.mp4"
  mv "$CLIP.tmp.mp4" "$CLIP"
fi
CLIP_KBPS="$(ffprobe -v error -show_entries format=bit_rate -of csv=p=0 "$CLIP" | awk '{printf "%d", $1/1000}')"
CLIP_DESC="$(basename "$CLIP"), ${CLIP_KBPS} kb/s overall"

# ------------------------------------------------------------------ run
TMP="$(mktemp -d /tmp/cuecast-density.XXXXXX)"
chmod 755 "$TMP"                   # the nginx worker (user nobody) writes HLS below it
mkdir -p "$OUT_DIR"
rm -rf "$OUT_DIR"/N*-*/
RESULTS="$OUT_DIR/results.jsonl"
: > "$RESULTS"
COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
git -C "$ROOT" diff --quiet HEAD 2>/dev/null || COMMIT="$COMMIT+dirty"
python3 - "$OUT_DIR/meta.json" <<EOF
import json, os, sys
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
json.dump({"date": "$(date -u +%Y-%m-%dT%H:%MZ)", "commit": "$COMMIT", "nproc": os.cpu_count(),
           "cpu": cpu, "loadavg": " ".join(open("/proc/loadavg").read().split()[:3]),
           "clip": "$CLIP_DESC", "warmup_s": $WARMUP_S, "measure_s": $MEASURE_S,
           "window_s": $WINDOW_S}, open(sys.argv[1], "w"))
EOF
log "nproc $(nproc), loadavg $(cut -d' ' -f1-3 /proc/loadavg); clip $CLIP_DESC"

start_publishers() {   # $1 = N, $2 = rtmp port, $3 = case dir
  local n="$1" port="$2" dir="$3" i
  for ((i = 1; i <= n; i++)); do
    ffmpeg -hide_banner -nostdin -loglevel warning -re -stream_loop -1 -i "$CLIP" \
      -c copy -f flv "rtmp://127.0.0.1:$port/live/$KEY_PREFIX$i" \
      >"$dir/publisher-$i.log" 2>&1 </dev/null &
    PUB_PIDS+=($!)
    sleep 0.05
  done
}

run_case() {   # $1 = server, $2 = N
  local server="$1" n="$2" dir="$OUT_DIR/N$2-$1" ports rtmp_port http_port idle_kb
  rm -rf "$dir"; mkdir -p "$dir"
  read -r rtmp_port http_port <<<"$("${MEASURE[@]}" freeport 2)"
  log "case $server N=$n (rtmp :$rtmp_port)"
  local case_args=()
  if [ "$server" = cuecast ] || [ "$server" = cuecast-norec ]; then
    local streams="" i data="$TMP/cuecast-data-$n" recording=true
    [ "$server" = cuecast-norec ] && recording=false
    for ((i = 1; i <= n; i++)); do
      streams+="${streams:+,}{name=\"s$i\",key=\"$KEY_PREFIX$i\"}"
    done
    CUECAST_STREAMS="[$streams]" \
    CUECAST_RTMP_LISTEN="127.0.0.1:$rtmp_port" CUECAST_RTMPS_ENABLED=false \
    CUECAST_RTMP_MAX_CONNECTIONS_PER_IP=256 \
    CUECAST_SRT_ENABLED=false \
    CUECAST_HTTP_LISTEN="127.0.0.1:$http_port" \
    CUECAST_SERVER_DATA_DIR="$data" \
    CUECAST_MEDIA_PIPELINES_DIR="$ROOT/pipelines" \
    CUECAST_HLS_WINDOW_S="$WINDOW_S" \
    CUECAST_MEDIA_LADDER='[]' \
    CUECAST_RECORDINGS_ENABLED="$recording" \
    CUECAST_API_ADMIN_TOKEN="density-bench-$RANDOM$RANDOM" \
    RUST_LOG="${RUST_LOG:-info}" \
      "$CUECAST" serve >"$dir/cuecast.log" 2>&1 </dev/null &
    SERVER_PID=$!
    "${MEASURE[@]}" wait-http "http://127.0.0.1:$http_port/healthz" 20 \
      || { tail -20 "$dir/cuecast.log" >&2; die "cuecast did not start"; }
    case_args=(--http-base "http://127.0.0.1:$http_port" --log "$dir/cuecast.log")
    [ "$recording" = true ] && case_args+=(--recordings-dir "$data/recordings")
  elif [ "$server" = floor ]; then
    # Not a server: the minimal writer of the bytes cuecast records (floor.py), no publishers.
    local floor_dir="$TMP/floor-$n"
    mkdir -p "$floor_dir"
    python3 -B "$HERE/floor.py" --clip "$CLIP" --n "$n" --dir "$floor_dir" \
      --segment-s "$SEGMENT_S" >"$dir/floor.log" 2>&1 </dev/null &
    SERVER_PID=$!
    case_args=(--floor-dir "$floor_dir")
  else
    local prefix="$TMP/nginx-$n"
    mkdir -p "$prefix/hls"
    chmod 777 "$prefix/hls"
    sed -e "s|@PREFIX@|$prefix|g" -e "s|@RTMP_MODULE@|$RTMP_MODULE|g" \
        -e "s|@RTMP_PORT@|$rtmp_port|g" -e "s|@HLS_DIR@|$prefix/hls|g" \
        -e "s|@WINDOW_S@|$WINDOW_S|g" "$HERE/nginx-rtmp.conf.in" >"$prefix/nginx.conf"
    cp "$prefix/nginx.conf" "$dir/nginx.conf"
    nginx -p "$prefix" -e "$prefix/error.log" -c "$prefix/nginx.conf" \
      >"$dir/nginx.stdout.log" 2>&1 </dev/null &
    SERVER_PID=$!
    "${MEASURE[@]}" wait-tcp "$rtmp_port" 20 \
      || { cat "$dir/nginx.stdout.log" "$prefix/error.log" >&2 2>/dev/null; die "nginx did not start"; }
    case_args=(--tree --hls-dir "$prefix/hls" --key-prefix "$KEY_PREFIX" --log "$prefix/error.log")
  fi
  sleep 2
  local tree=()
  [ "$server" = nginx-rtmp ] && tree=(--tree)
  idle_kb="$("${MEASURE[@]}" rss --pid "$SERVER_PID" "${tree[@]}")"

  if [ "$server" = floor ]; then
    log "  floor writer of $n streams started; warming up ${WARMUP_S}s"
  else
    start_publishers "$n" "$rtmp_port" "$dir"
    log "  $n publishers started; warming up ${WARMUP_S}s"
  fi
  step sleep "$WARMUP_S"
  local pubs
  pubs="$(IFS=,; echo "${PUB_PIDS[*]}")"
  step "${MEASURE[@]}" case --server "$server" --pid "$SERVER_PID" --n "$n" --measure "$MEASURE_S" \
    --idle-rss-kb "$idle_kb" --publisher-pids "$pubs" "${case_args[@]}" --out "$RESULTS"

  stop_publishers
  stop_server
  [ "$server" = nginx-rtmp ] && cp "$TMP/nginx-$n/error.log" "$dir/error.log" 2>/dev/null || true
  # Keep only the logs that say something beyond what a publisher says when it is stopped.
  local f
  for f in "$dir"/*.log; do
    if ! grep -qvE 'Failed to update header with correct (duration|filesize)|Exiting normally, received signal' "$f"; then
      rm -f "$f"
    fi
  done
  rm -rf "$TMP/cuecast-data-$n" "$TMP/nginx-$n" "$TMP/floor-$n"
  sleep 3
}

for n in $COUNTS; do
  for server in $SERVERS; do
    case "$server" in
      cuecast|cuecast-norec|nginx-rtmp|floor) run_case "$server" "$n" ;;
      *) die "unknown server '$server' in SERVERS (cuecast, cuecast-norec, nginx-rtmp, floor)" ;;
    esac
  done
done

"${MEASURE[@]}" report "$RESULTS" "$REPORT" --meta "$OUT_DIR/meta.json"
log "report written to $REPORT; logs in $OUT_DIR/"
