#!/usr/bin/env bash
# RTMPS vs RTMP ingest cost, same server, same run: N publishers of one pre-encoded 1080p30
# H.264 6 Mb/s + AAC clip (`ffmpeg -re -stream_loop -1 -c copy`, so the publishers' own cost is
# a copy) into one cuecast, over plain RTMP (the floor) and over RTMPS (TLS, the development
# certificate, `-tls_verify 0`), in alternating rounds: rtmp, rtmps, rtmp, rtmps, ... For each
# round: warm up, then read the server's CPU time (utime+stime from /proc) over a window, and
# check that every stream's playlist advanced. Prints every round, then per protocol the median
# CPU and the median of the paired rtmps/rtmp ratios.
#
#   benches/rtmps/run.sh                           # N=4, 3 rounds, 10 s warmup, 30 s measured (~5 min)
#   N=1 ROUNDS=1 WARMUP_S=5 MEASURE_S=10 benches/rtmps/run.sh
#
# Environment: N, ROUNDS, WARMUP_S, MEASURE_S, SKIP_BUILD=1 (use target/release/cuecast as is),
# BIN (another cuecast binary).
# Output: a markdown table on stdout. Linux only (reads /proc).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
N="${N:-4}"
ROUNDS="${ROUNDS:-3}"
WARMUP_S="${WARMUP_S:-10}"
MEASURE_S="${MEASURE_S:-30}"
BIN="${BIN:-$ROOT/target/release/cuecast}"
. "$ROOT/benches/lib.sh"

[ "${SKIP_BUILD:-0}" = 1 ] || (cd "$ROOT" && cargo build --release --locked --bin cuecast >&2)

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

CLIP="$work/clip.mp4"
ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=1920x1080:rate=30 \
  -f lavfi -i sine=frequency=440:sample_rate=48000 -t 10 -c:v libx264 -preset ultrafast \
  -b:v 6M -maxrate 6M -bufsize 12M -g 60 -keyint_min 60 -sc_threshold 0 -pix_fmt yuv420p \
  -c:a aac -ac 2 -b:a 128k "$CLIP"

streams=""
for ((i = 1; i <= N; i++)); do streams+="${streams:+,}{name=\"s$i\",key=\"k$i\"}"; done
CUECAST_STREAMS="[$streams]" CUECAST_RTMP_LISTEN=127.0.0.1:0 CUECAST_RTMPS_LISTEN=127.0.0.1:0 \
  CUECAST_HTTP_LISTEN=127.0.0.1:0 CUECAST_SRT_ENABLED=false CUECAST_CHAT_ENABLED=false \
  CUECAST_RTMP_MAX_CONNECTIONS_PER_IP=256 \
  CUECAST_SERVER_DATA_DIR="$work/data" CUECAST_INGEST_RECONNECT_GRACE_S=0 CUECAST_MEDIA_LADDER="[]" \
  RUST_LOG=warn,cuecast::listen=info "$BIN" serve 2>"$work/server.log" &
SERVER=$!; pids+=("$SERVER")
rtmp=$(listen_port "$work/server.log" rtmp); rtmps=$(listen_port "$work/server.log" rtmps)
http=$(listen_port "$work/server.log" http)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$http/healthz" >/dev/null && break; sleep 0.1; done
hz=$(getconf CLK_TCK)

segments() {
  for ((i = 1; i <= N; i++)); do
    local master uri
    master=$(curl -sf "http://127.0.0.1:$http/hls/s$i/index.m3u8" || true)
    uri=$(printf '%s\n' "$master" | grep -m1 '/source/playlist.m3u8' || true)
    if [ -z "$uri" ]; then echo -1; continue; fi
    curl -sf "http://127.0.0.1:$http/hls/s$i/$uri" | grep -c '^seg' || echo 0
  done
}

# One round over `rtmp` or `rtmps`: prints "CPU% advancing".
round() {
  local proto=$1 pubs=() url
  for ((i = 1; i <= N; i++)); do
    if [ "$proto" = rtmp ]; then
      url=(-f flv "rtmp://127.0.0.1:$rtmp/live/k$i")
    else
      url=(-f flv -tls_verify 0 "rtmps://127.0.0.1:$rtmps/live/k$i")
    fi
    ffmpeg -hide_banner -loglevel error -nostdin -re -stream_loop -1 -i "$CLIP" -c copy "${url[@]}" \
      >/dev/null 2>>"$work/pub-$proto.log" &
    pubs+=($!); pids+=($!)
  done
  sleep "$WARMUP_S"
  local before; before=$(segments | tr '\n' ' ')
  local t0; t0=$(ticks "$SERVER")
  sleep "$MEASURE_S"
  local t1; t1=$(ticks "$SERVER")
  local after; after=$(segments | tr '\n' ' ')
  local advanced=0 b a
  read -ra b <<<"$before"; read -ra a <<<"$after"
  for ((i = 0; i < N; i++)); do [ "${a[$i]}" -gt "${b[$i]}" ] && advanced=$((advanced + 1)); done
  for pid in "${pubs[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pubs[@]}"; do wait "$pid" 2>/dev/null || true; done
  sleep 3   # the streams end (grace 0) before the next round starts them again
  python3 -c "print(round(100 * ($t1 - $t0) / $hz / $MEASURE_S, 2), $advanced)"
}

echo "| round | protocol | publishers | server CPU, % of one core | per stream | streams advancing |"
echo "|---|---|---|---|---|---|"
plain=(); tls=()
for ((r = 1; r <= ROUNDS; r++)); do
  for proto in rtmp rtmps; do
    read -r cpu advanced <<<"$(round "$proto")"
    per=$(python3 -c "print(round($cpu / $N, 3))")
    echo "| $r | $proto | $N | $cpu | $per | $advanced/$N |"
    if [ "$proto" = rtmp ]; then plain+=("$cpu"); else tls+=("$cpu"); fi
  done
done
python3 - "${plain[*]}" "${tls[*]}" <<'PY'
import statistics, sys
plain = [float(x) for x in sys.argv[1].split()]
tls = [float(x) for x in sys.argv[2].split()]
ratios = [t / p for p, t in zip(plain, tls) if p > 0]
print()
print(f"median server CPU: rtmp {statistics.median(plain):.2f} %, rtmps {statistics.median(tls):.2f} % of one core; "
      f"rtmps/rtmp paired ratio median {statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f})")
PY
refused=$(curl -sf "http://127.0.0.1:$http/metrics" | grep '^cuecast_rtmps_handshake_failures_total' | awk '{s += $2} END {print s + 0}')
echo "RTMPS handshake failures during the run: $refused"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
