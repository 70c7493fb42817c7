#!/usr/bin/env bash
# Soak (issue #31): PUBLISHERS ffmpeg publishers (a pre-encoded 360p clip looped with -c copy, as a
# steady encoder would send it), PLAYERS LL-HLS players (blocking reload for each next part, then
# the part), MEMBERS native QUIC chat members over one room per stream (SENDERS of them post a
# timestamped message every SEND_EVERY_S), for DURATION_S. Every SAMPLE_S the load generator
# (benches/soak/load.rs) writes one CSV row: server RSS and open fds (/proc), part publish delay
# (server metric, worst stream, p99 and max), the longest gap between two parts any player saw,
# chat delivery latency p50/p99 (post → each member). report.py prints the figures after WARMUP_S
# (RSS and fd growth, late parts, chat p99 spread) and plots them (PNG).
#
# Usage: benches/soak/run.sh
#   DURATION_S=3600 WARMUP_S=300 SAMPLE_S=10 PUBLISHERS=10 PLAYERS=200 MEMBERS=1000 SENDERS=50
#   SEND_EVERY_S=5 PROFILE=release OUT=target/soak  SKIP_BUILD=1 (use the built binaries)
#   SERVER_WRAPPER='heaptrack -o target/soak/ht' (runs the server under it; the server is then
#   killed with SIGKILL at the end, so the profile holds what it had allocated: diff two runs of
#   different lengths per allocation site — docs/benchmarks/soak.md, "where the growth is")
# Output: $OUT/soak.csv, $OUT/soak.png, $OUT/server.log; the summary on stdout.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
DURATION_S=${DURATION_S:-3600}
WARMUP_S=${WARMUP_S:-300}
SAMPLE_S=${SAMPLE_S:-10}
PUBLISHERS=${PUBLISHERS:-10}
PLAYERS=${PLAYERS:-200}
MEMBERS=${MEMBERS:-1000}
SENDERS=${SENDERS:-50}
SEND_EVERY_S=${SEND_EVERY_S:-5}
PROFILE=${PROFILE:-release}
OUT=${OUT:-$root/target/soak}
case "$PROFILE" in dev) dir=debug ;; *) dir=$PROFILE ;; esac
target="${CARGO_TARGET_DIR:-$root/target}"

if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
if [ -z "${SKIP_BUILD:-}" ]; then
  cargo build --profile "$PROFILE" --locked --bin cuecast --bench soak_load
fi
bin="$target/$dir/cuecast"
load=$(ls -t "$target/$dir"/deps/soak_load-* | grep -v '\.d$' | head -n1)
[ -x "$bin" ] && [ -x "$load" ] || { echo "build first (or unset SKIP_BUILD)" >&2; exit 1; }
. "$root/benches/lib.sh"
mkdir -p "$OUT"

# The publishers' media: 60 s of 360p30 H.264 (2 s GOP) + AAC, encoded once.
cache="$target/bench-media"; mkdir -p "$cache"
clip="$cache/soak-360p.flv"
if [ ! -s "$clip" ]; then
  ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i "testsrc2=size=640x360:rate=30" -f lavfi -i "sine=frequency=440:sample_rate=48000" -t 60 \
    -c:v libx264 -preset veryfast -profile:v high -pix_fmt yuv420p -g 60 -keyint_min 60 -sc_threshold 0 \
    -b:v 500k -maxrate 500k -bufsize 1000k -c:a aac -ar 48000 -ac 2 -b:a 64k -f flv "$clip"
fi

streams=""; names=""
for i in $(seq 0 $((PUBLISHERS - 1))); do
  streams+="${streams:+, }{name=\"soak$i\", key=\"soak-key-$i\"}"
  names+="${names:+,}soak$i"
done
CUECAST_STREAMS="[$streams]" CUECAST_RTMP_LISTEN=127.0.0.1:0 CUECAST_RTMPS_ENABLED=false \
  CUECAST_HTTP_LISTEN=127.0.0.1:0 CUECAST_SRT_ENABLED=false CUECAST_CHAT_LISTEN=127.0.0.1:0 \
  CUECAST_CHAT_MAX_CONNECTIONS_PER_IP=$((MEMBERS + 100)) CUECAST_SERVER_DATA_DIR="$work/data" \
  CUECAST_MEDIA_LADDER='[]' RUST_LOG=warn,cuecast::listen=info \
  ${SERVER_WRAPPER:-} "$bin" serve 2>"$OUT/server.log" &
server=$!; pids+=("$server"); wrapper=$server
if [ -n "${SERVER_WRAPPER:-}" ]; then
  # The wrapper starts the server as its child: sample and stop that one.
  for _ in $(seq 100); do
    child=$(pgrep -P "$wrapper" -f "^$bin serve" || true); [ -n "$child" ] && break; sleep 0.1
  done
  [ -n "$child" ] || { echo "no server under $SERVER_WRAPPER" >&2; exit 1; }
  server=$child; pids+=("$server")
fi
rtmp=$(listen_port "$OUT/server.log" rtmp); http=$(listen_port "$OUT/server.log" http)
listen_port "$OUT/server.log" chat >/dev/null
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$http/healthz" >/dev/null && break; sleep 0.1; done
for i in $(seq 0 $((PUBLISHERS - 1))); do
  ffmpeg -hide_banner -loglevel error -nostdin -re -stream_loop -1 -i "$clip" -c copy \
    -t "$((DURATION_S + 120))" -f flv "rtmp://127.0.0.1:$rtmp/live/soak-key-$i" &
  pids+=("$!")
done
for _ in $(seq 300); do
  curl -sf "http://127.0.0.1:$http/hls/soak$((PUBLISHERS - 1))/index.m3u8" >/dev/null && break
  sleep 0.1
done
media=$(curl -sf "http://127.0.0.1:$http/hls/soak0/index.m3u8" | grep -v '^#' | grep 'source/playlist.m3u8' | head -n1)
part_target=$(curl -sf "http://127.0.0.1:$http/hls/soak0/$media" | sed -n 's/^#EXT-X-PART-INF:PART-TARGET=//p')

echo "soak: $PUBLISHERS publishers, $PLAYERS players, $MEMBERS chat members ($SENDERS posting every ${SEND_EVERY_S} s), ${DURATION_S} s, profile $PROFILE" >&2
SOAK_HTTP="http://127.0.0.1:$http" SOAK_PID=$server SOAK_STREAMS=$names SOAK_PLAYERS=$PLAYERS \
  SOAK_MEMBERS=$MEMBERS SOAK_SENDERS=$SENDERS SOAK_SEND_EVERY_S=$SEND_EVERY_S DURATION_S=$DURATION_S \
  SAMPLE_S=$SAMPLE_S SOAK_CSV="$OUT/soak.csv" "$load" --bench

# The plot needs matplotlib: the system's, or a venv made once under target/ (pip).
python=python3
if ! python3 -c 'import matplotlib' 2>/dev/null; then
  venv="$target/bench-venv"
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
    python3 -m venv "$venv" && "$venv/bin/pip" install -q matplotlib || true
  fi
  [ -x "$venv/bin/python" ] && python="$venv/bin/python"
fi
if [ -n "${SERVER_WRAPPER:-}" ]; then kill -9 "$server"; wait "$wrapper" 2>/dev/null || true; fi
"$python" "$root/benches/soak/report.py" "$OUT/soak.csv" "$WARMUP_S" "${part_target:-0}" "$OUT/soak.png"
echo
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ), profile $PROFILE"
