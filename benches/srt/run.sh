#!/usr/bin/env bash
# SRT vs RTMP ingest cost, same server, same run: N publishers of one pre-encoded 720p30 H.264 +
# AAC clip (`ffmpeg -re -stream_loop -1 -c copy`) into one cuecast, first over RTMP (FLV), then
# over SRT (MPEG-TS, one UDP port, stream ids `publish:live/KEY`). For each protocol: warm up,
# then read the server's CPU time (utime+stime from /proc) and RSS over a window, and check that
# every stream's playlist advanced.
#
#   benches/srt/run.sh                          # N=10, 20 s warmup, 30 s measured (~2.5 min)
#   N=4 WARMUP_S=5 MEASURE_S=10 benches/srt/run.sh
#
# Environment: N, WARMUP_S, MEASURE_S, SKIP_BUILD=1 (use target/release/cuecast as is).
# Output: a markdown table on stdout. Linux only (reads /proc).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
N="${N:-10}"
WARMUP_S="${WARMUP_S:-20}"
MEASURE_S="${MEASURE_S:-30}"
BIN="$ROOT/target/release/cuecast"
. "$ROOT/benches/lib.sh"

[ "${SKIP_BUILD:-0}" = 1 ] || (cd "$ROOT" && cargo build --release --locked --bin cuecast >&2)

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

CLIP="$work/clip.mp4"
ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=1280x720:rate=30 \
  -f lavfi -i sine=frequency=440:sample_rate=48000 -t 20 -c:v libx264 -preset veryfast \
  -b:v 2500k -maxrate 2500k -bufsize 5000k -g 60 -keyint_min 60 -sc_threshold 0 -pix_fmt yuv420p \
  -c:a aac -ac 2 -b:a 128k "$CLIP"

streams=""
for ((i = 1; i <= N; i++)); do streams+="${streams:+,}{name=\"s$i\",key=\"k$i\"}"; done
CUECAST_STREAMS="[$streams]" CUECAST_RTMP_LISTEN=127.0.0.1:0 CUECAST_RTMPS_ENABLED=false \
  CUECAST_HTTP_LISTEN=127.0.0.1:0 CUECAST_SRT_LISTEN=127.0.0.1:0 \
  CUECAST_SRT_MAX_CONNECTIONS_PER_IP=256 CUECAST_RTMP_MAX_CONNECTIONS_PER_IP=256 \
  CUECAST_SERVER_DATA_DIR="$work/data" CUECAST_INGEST_RECONNECT_GRACE_S=0 CUECAST_MEDIA_LADDER="[]" CUECAST_CHAT_ENABLED=false \
  RUST_LOG=warn,cuecast::listen=info "$BIN" serve 2>"$work/server.log" &
SERVER=$!; pids+=("$SERVER")
rtmp=$(listen_port "$work/server.log" rtmp); http=$(listen_port "$work/server.log" http)
srt=$(listen_port "$work/server.log" srt)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$http/healthz" >/dev/null && break; sleep 0.1; done
hz=$(getconf CLK_TCK)

last_msns() {
  for ((i = 1; i <= N; i++)); do
    local master uri
    master=$(curl -sf "http://127.0.0.1:$http/hls/s$i/index.m3u8" || true)
    uri=$(printf '%s\n' "$master" | grep -m1 '/source/playlist.m3u8' || true)
    if [ -z "$uri" ]; then echo -1; continue; fi
    curl -sf "http://127.0.0.1:$http/hls/s$i/$uri" | grep -c '^seg' || echo 0
  done
}

run() {
  local proto=$1 pubs=()
  for ((i = 1; i <= N; i++)); do
    if [ "$proto" = rtmp ]; then
      out=(-f flv "rtmp://127.0.0.1:$rtmp/live/k$i")
    else
      out=(-f mpegts -srt_streamid "publish:live/k$i" "srt://127.0.0.1:$srt")
    fi
    ffmpeg -hide_banner -loglevel error -nostdin -re -stream_loop -1 -i "$CLIP" -c copy "${out[@]}" \
      2>>"$work/pub-$proto.log" &
    pubs+=($!); pids+=($!)
  done
  sleep "$WARMUP_S"
  local before_msn; before_msn=$(last_msns | tr '\n' ' ')
  local t0; t0=$(ticks "$SERVER")
  sleep "$MEASURE_S"
  local t1; t1=$(ticks "$SERVER")
  local rss; rss=$(rss_kib "$SERVER")
  local after_msn; after_msn=$(last_msns | tr '\n' ' ')
  local advanced=0
  read -ra b <<<"$before_msn"; read -ra a <<<"$after_msn"
  for ((i = 0; i < N; i++)); do [ "${a[$i]}" -gt "${b[$i]}" ] && advanced=$((advanced + 1)); done
  for pid in "${pubs[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pubs[@]}"; do wait "$pid" 2>/dev/null || true; done
  local cpu; cpu=$(python3 -c "print(round(100 * ($t1 - $t0) / $hz / $MEASURE_S, 2))")
  local per; per=$(python3 -c "print(round($cpu / $N, 3))")
  printf '| %s | %d | %s | %s | %d MiB | %d/%d |\n' "$proto" "$N" "$cpu" "$per" $((rss / 1024)) "$advanced" "$N"
  sleep 5
}

echo "| protocol | publishers | server CPU, % of one core | per stream | RSS at end | streams advancing |"
echo "|---|---|---|---|---|---|"
run rtmp
run srt
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
