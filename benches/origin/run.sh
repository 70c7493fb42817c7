#!/usr/bin/env bash
# The HLS origin under load beside nginx serving the same bytes as static files.
#
# A release `cuecast serve` (default config: 2 s segments, 200 ms parts, 30 s window, LL-HLS, no
# transcoding ladder) fed by ffmpeg over RTMP (640x360 30 fps H.264 + AAC, -re), and nginx
# (benches/lib.sh's `start_nginx`: `worker_processes auto`, keep-alive, no access log) serving
# static files that hold, for each object, the bytes cuecast served for it a moment before, with
# the same Content-Type and Cache-Control. For each object, ROUNDS rounds of wrk (CONNECTIONS
# connections, THREADS threads, WARMUP then DURATION, --latency) alternate cuecast, nginx,
# cuecast, nginx… (ABAB), the same URL every request:
#   playlist  /hls/demo/{session}/{rendition}/playlist.m3u8  the live media playlist (no
#             directives: a new version every 200 ms, rendered once per version and shared)
#   part      …/part{N}.m4s   the newest part listed before the pair of runs
#   segment   …/seg{N}.m4s    the newest complete segment listed before the pair of runs
# Before each pair the object is fetched again from cuecast and written to nginx's file, so both
# serve the same bytes (the playlist: the version of that moment; cuecast serves newer versions of
# the same size during the run). Prints one JSON line per run and, per object, the medians over
# rounds: req/s, p50/p99 latency, and cuecast / nginx.
#
# Usage: benches/origin/run.sh   (env: CONNECTIONS=50 THREADS=2 DURATION=10s WARMUP=2s ROUNDS=3
#        OBJECTS="playlist part segment" SKIP_BUILD=1 to use target/release/cuecast as built,
#        BIN=path/to/cuecast for another server binary).
#        wrk and nginx are installed with apt-get when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-2}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
ROUNDS=${ROUNDS:-3}
OBJECTS=${OBJECTS:-playlist part segment}

if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
if [ -z "${SKIP_BUILD:-}" ]; then
  cargo build --release --locked --bin cuecast >/dev/null 2>&1 || cargo build --release --locked --bin cuecast
fi
bin=${BIN:-$root/target/release/cuecast}

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || missing+=(nginx-light)
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi

. "$root/benches/lib.sh"

start_cuecast "$bin" "$work/server.log" CUECAST_SERVER_DATA_DIR="$work/data" CUECAST_MEDIA_LADDER="[]"
rtmp=$(listen_port "$work/server.log" rtmp)
http=$(listen_port "$work/server.log" http)
base="http://127.0.0.1:$http"
wait_healthy "$base"
ffmpeg -hide_banner -loglevel error -nostdin -re -stream_loop -1 \
  -f lavfi -i "testsrc2=size=640x360:rate=30" -f lavfi -i "sine=frequency=440:sample_rate=48000" \
  -c:v libx264 -preset ultrafast -tune zerolatency -pix_fmt yuv420p -g 60 -keyint_min 60 \
  -sc_threshold 0 -b:v 800k -c:a aac -ar 48000 -ac 2 -b:a 96k \
  -f flv "rtmp://127.0.0.1:$rtmp/live/demo-key" 2>"$work/ffmpeg.log" &
pids+=($!)

# The first variant's media playlist, once the stream is playable.
variant=""
for _ in $(seq 300); do
  variant=$(curl -sf "$base/hls/demo/index.m3u8" 2>/dev/null | grep -v '^#' | head -n1 || true)
  [ -n "$variant" ] && break
  sleep 0.1
done
[ -n "$variant" ] || { echo "the stream did not become playable" >&2; tail "$work/server.log" >&2; exit 1; }
dir="/hls/demo/${variant%/playlist.m3u8}"
sleep 8 # a few segments in the window

mkdir -p "$work/static$dir"
start_nginx "location / {
      root $work/static;
      types { video/mp4 m4s; }
      add_header Cache-Control 'public, max-age=86400, immutable';
    }
    location ~ \\.m3u8\$ {
      root $work/static;
      types { application/vnd.apple.mpegurl m3u8; }
      add_header Cache-Control 'public, max-age=1';
    }"

# `object_path NAME`: the URL path of NAME in the playlist as it is now.
object_path() {
  local playlist
  playlist=$(curl -sf "$base$dir/playlist.m3u8")
  case "$1" in
    playlist) echo "$dir/playlist.m3u8" ;;
    segment) echo "$dir/$(grep -v '^#' <<<"$playlist" | grep '^seg' | tail -n1)" ;;
    part) echo "$dir/$(grep -o 'EXT-X-PART:[^ ]*URI="part[0-9]*\.m4s"' <<<"$playlist" | tail -n1 | grep -o 'part[0-9]*\.m4s')" ;;
  esac
}

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); wrk -c $CONNECTIONS -t $THREADS -d $DURATION (after $WARMUP), $ROUNDS rounds ABAB"
: >"$work/wrk.jsonl"
for object in $OBJECTS; do
  for round in $(seq "$ROUNDS"); do
    path=$(object_path "$object")
    curl -sf -o "$work/static$path" "$base$path"
    echo "$path" >"$work/paths"
    echo "# $object round $round: $path, $(stat -c %s "$work/static$path") bytes" >&2
    wrk_run "cuecast $object" "$base" "$work/paths"
    wrk_run "nginx $object" "http://127.0.0.1:$nginx_port" "$work/paths"
  done
done

echo "# response heads (cuecast, then nginx), playlist:"
curl -s -o /dev/null -D - "$base$dir/playlist.m3u8" | tr -d '\r'
curl -s -o /dev/null -D - "http://127.0.0.1:$nginx_port$dir/playlist.m3u8" | tr -d '\r'

python3 - "$work/wrk.jsonl" <<'PY'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
print("\n| object | cuecast req/s (median) | nginx req/s (median) | cuecast / nginx req/s | per-pair ratios | cuecast p50 / p99 ms | nginx p50 / p99 ms | errors |")
print("|---|---|---|---|---|---|---|---|")
objects = []
for r in runs:
    o = r["label"].split(" ", 1)[1]
    if o not in objects:
        objects.append(o)
for o in objects:
    c = [r for r in runs if r["label"] == f"cuecast {o}"]
    n = [r for r in runs if r["label"] == f"nginx {o}"]
    med = lambda rs, k: statistics.median(r[k] for r in rs)
    pairs = ", ".join(f"{a['rps'] / b['rps']:.2f}" for a, b in zip(c, n))
    errors = sum(sum(r["errors"].values()) for r in c + n)
    print(f"| {o} | {med(c, 'rps'):,.0f} | {med(n, 'rps'):,.0f} | **{med(c, 'rps') / med(n, 'rps'):.2f}×** | {pairs} | "
          f"{med(c, 'p50_ms'):.2f} / {med(c, 'p99_ms'):.2f} | {med(n, 'p50_ms'):.2f} / {med(n, 'p99_ms'):.2f} | {errors} |")
PY
