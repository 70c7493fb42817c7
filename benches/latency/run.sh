#!/usr/bin/env bash
# LL-HLS latency, end to end, in one run:
#   1. ingest→servable: for each video frame, the time from its RTMP message reaching cuecast to the
#      moment the LL-HLS part holding it can be fetched (server metric
#      cuecast_ingest_to_part_seconds, exported at /metrics), p50/p90/p99;
#   2. live latency seen by hls.js (low-latency mode) in Debian's Chromium: wall clock minus the
#      playlist PROGRAM-DATE-TIME of the frame being shown (hls.playingDate), p50/p90, and hls.latency.
# Publisher: ffmpeg `-re -c copy` of a pre-encoded 720p30 2.5 Mbps H.264 + AAC clip, as OBS would
# send it (x264 veryfast, 2 s keyframe interval), once with B-frames (OBS's default) and once
# without (OBS x264 option bframes=0, the usual low-latency setting).
#
# Passthrough only (CUECAST_MEDIA_LADDER=[]): the transcoding ladder is measured by benches/ladder.
# Usage: benches/latency/run.sh            (DURATION_S=60 PLAY_S=30 VARIANTS="bframes nobframes")
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
DURATION_S=${DURATION_S:-60}
PLAY_S=${PLAY_S:-30}
WARMUP_S=${WARMUP_S:-8}
VARIANTS=${VARIANTS:-"bframes nobframes"}

.ci/setup --test >/dev/null
if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
cargo build --release --locked --bin cuecast >/dev/null 2>&1 || cargo build --release --locked --bin cuecast

. "$root/benches/lib.sh"

quantile() { grep -E "^cuecast_ingest_to_part_seconds\{quantile=\"$1\"\}" "$2" | awk '{printf "%.0f", $2*1000}'; }

echo "| publisher | ingest→part p50 | p90 | p99 | frames | hls.js PDT latency p50 | p90 | hls.latency p50 | stalls | startup |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for variant in $VARIANTS; do
  file=$(bench_clip "$variant")
  CUECAST_RTMP_LISTEN=127.0.0.1:0 CUECAST_RTMPS_ENABLED=false CUECAST_HTTP_LISTEN=127.0.0.1:0 CUECAST_SRT_ENABLED=false \
    CUECAST_SERVER_DATA_DIR="$work/data" RUST_LOG=warn,cuecast::listen=info CUECAST_MEDIA_LADDER='[]' \
    "$root/target/release/cuecast" serve 2>"$work/server-$variant.log" &
  server=$!; pids+=("$server")
  rtmp=$(listen_port "$work/server-$variant.log" rtmp); http=$(listen_port "$work/server-$variant.log" http)
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$http/healthz" >/dev/null && break; sleep 0.1; done
  ffmpeg -hide_banner -loglevel error -nostdin -re -stream_loop -1 -i "$file" -c copy -t "$DURATION_S" \
    -f flv "rtmp://127.0.0.1:$rtmp/live/demo-key" &
  publisher=$!; pids+=("$publisher")
  sleep "$WARMUP_S"
  node tests/browser/play.mjs --url "http://127.0.0.1:$http/hls/demo/index.m3u8" --seconds "$PLAY_S" \
    --json "$work/play-$variant.json" >/dev/null || echo "player failed for $variant" >&2
  curl -sf "http://127.0.0.1:$http/metrics" > "$work/metrics-$variant.txt"
  kill "$publisher" "$server" 2>/dev/null || true
  wait "$publisher" "$server" 2>/dev/null || true
  frames=$(grep '^cuecast_ingest_to_part_seconds_count' "$work/metrics-$variant.txt" | awk '{print $2}')
  player=$(python3 - "$work/play-$variant.json" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception:
    print("n/a | n/a | n/a | n/a | n/a"); sys.exit()
ms = lambda v: "n/a" if v is None else f"{v*1000:.0f} ms"
pdt = r.get("pdt_latency_s") or {}
lat = r.get("latency_s") or {}
print(f"{ms(pdt.get('p50'))} | {ms(pdt.get('p90'))} | {ms(lat.get('p50'))} | {r.get('stalls')} | {r.get('startup_ms')} ms")
PY
)
  echo "| $variant | $(quantile 0.5 "$work/metrics-$variant.txt") ms | $(quantile 0.9 "$work/metrics-$variant.txt") ms | $(quantile 0.99 "$work/metrics-$variant.txt") ms | $frames | $player |"
done
echo
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
