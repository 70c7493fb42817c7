#!/usr/bin/env bash
# Cluster playback benchmark (docs/benchmarks/cluster.md): one Redis, node A with an ffmpeg
# publisher (ladder off: one video rendition + audio; `-re -stream_loop -1 -c copy` of
# `bench_clip`'s pre-encoded 720p30 2.5 Mb/s clip, so no x264 encoder shares the two cores: OBS
# encodes on the host's machine), node B playing the stream from A.
# PLAYERS LL-HLS players on B and one probe player on A run for DURATION_S (benches/cluster/
# players.rs, the cluster_players bench target; CLIENT=python for players.py, which saturates
# past ~100 players on two cores), ROUNDS times. Per round:
#   - upstream requests per part: A's media_playlist and part requests during the window (from
#     A's /metrics, minus the probe's own) divided by the parts published in it;
#   - the edge's added latency: for each part, when a player on B got its blocking reload minus
#     when the probe on A got the same one, p50 and p99 (same process, same clock); then the same
#     players on A directly, as the floor (what the load client and the origin's own fan-out
#     add without the edge), alternating B, A, B, A.
#
#   benches/cluster/run.sh                                   # PLAYERS=1000 DURATION_S=30 ROUNDS=2
#   SKIP_BUILD=1 PLAYERS=100 DURATION_S=10 ROUNDS=1 benches/cluster/run.sh   # smoke run
#   BIN=target/debug/cuecast SKIP_BUILD=1 benches/cluster/run.sh            # another binary
#
# Environment: PLAYERS (1000), DURATION_S (30), ROUNDS (2), SKIP_BUILD=1 (use the existing
# release binaries), BIN (server binary to run, default $CARGO_TARGET_DIR/release/cuecast),
# PLAYERS_BIN (the players, default the newest release cluster_players), CLIENT (rust or python),
# WARMUP_S (5; rust players only: they start that long before the measured window, and A's
# counters are read by the players at the window's ends, so the players' first loads and catching
# up are not counted).
# Output: a markdown table on stdout (errors: the players' failed requests, by kind: io, timeout
# or the HTTP status); logs in a temporary directory removed at exit.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$HERE/../.." && pwd)"
PLAYERS="${PLAYERS:-1000}"
DURATION_S="${DURATION_S:-30}"
ROUNDS="${ROUNDS:-2}"
TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
BIN="${BIN:-$TARGET_DIR/release/cuecast}"
CLIENT="${CLIENT:-rust}"
WARMUP_S="${WARMUP_S:-5}"
# shellcheck source=../lib.sh
source "$root/benches/lib.sh"

log() { printf '[cluster %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [ "${SKIP_BUILD:-}" != 1 ]; then
  log "building the release binary"
  (cd "$root" && cargo build --release --locked --bin cuecast --bench cluster_players >&2)
fi
[ -x "$BIN" ] || { log "no binary at $BIN"; exit 1; }
if [ "$CLIENT" = rust ]; then
  PLAYERS_BIN="${PLAYERS_BIN:-$( (ls -t "$TARGET_DIR"/release/deps/cluster_players-* 2>/dev/null || true) | grep -v '\.d$' | head -n1)}"
  [ -n "$PLAYERS_BIN" ] && [ -x "$PLAYERS_BIN" ] || { log "no cluster_players binary (unset SKIP_BUILD)"; exit 1; }
fi
# players EDGE_URL OWNER_URL: one round of players, one JSON line.
players() {
  if [ "$CLIENT" = rust ]; then
    PLAYERS_WARMUP_S="$WARMUP_S" OWNER_METRICS="http://127.0.0.1:$a_port/metrics" \
      "$PLAYERS_BIN" --bench "$1" "$2" "$PLAYERS" "$DURATION_S"
  else
    python3 -B "$HERE/players.py" "$1" "$2" "$PLAYERS" "$DURATION_S"
  fi
}
ulimit -n 65536 2>/dev/null || true

clip=$(bench_clip bframes)
start_redis "$work/redis.log"

# cluster_node NAME: a cuecast node in the cluster on a fixed HTTP port (its node_url), RTMP on
# port 0.
cluster_node() {
  start_node "$1" "$BIN" "$work/$1.log" 1 RUST_LOG=info CUECAST_CHAT_ENABLED=false \
    CUECAST_RECORDINGS_ENABLED=false CUECAST_MEDIA_LADDER='[]' CUECAST_SERVER_DATA_DIR="$work/$1" \
    CUECAST_STREAMS='[{name="demo", key="demo-key"}]'
}
cluster_node a
cluster_node b
rtmp_a=$(listen_port "$work/a.log" rtmp)
listen_port "$work/b.log" http >/dev/null

ffmpeg -hide_banner -loglevel error -nostdin -re -stream_loop -1 -i "$clip" -c copy \
  -f flv "rtmp://127.0.0.1:$rtmp_a/live/demo-key" >"$work/ffmpeg.log" 2>&1 &
pids+=($!)

# The source rendition's media playlist URL on a node (from its multivariant playlist).
media_url() {
  local port="$1" master uri
  for _ in $(seq 100); do
    master=$(curl -fsS "http://127.0.0.1:$port/hls/demo/index.m3u8" 2>/dev/null) && break
    sleep 0.2
  done
  uri=$(printf '%s\n' "$master" | grep -v '^#' | grep 'playlist.m3u8' | head -n1)
  echo "http://127.0.0.1:$port/hls/demo/$uri"
}
url_a=$(media_url "$a_port")
url_b=$(media_url "$b_port")
log "A: $url_a"
log "B: $url_b"
sleep 3

# A's request counters (media_playlist and part 2xx) and the video parts A published (the
# count of its part publish delay summary: one per part of the passthrough video rendition).
counts() {
  curl -fsS "http://127.0.0.1:$a_port/metrics" | awk '
    /^cuecast_hls_requests_total\{kind="media_playlist",status="2xx"\}/ {p=$2}
    /^cuecast_hls_requests_total\{kind="part",status="2xx"\}/ {q=$2}
    /^cuecast_stream_part_publish_delay_seconds_count\{stream="demo"\}/ {n=$2}
    END {print p+0, q+0, n+0}'
}

# Each round runs the players on B (through the edge), then the same players on A directly (the
# floor: what the players and the origin's own fan-out add, without the edge), alternating.
echo "| round | players on | players | parts published on A | parts seen by the probe | upstream playlist req/part | upstream part req/part | after the probe on A, p50 (ms) | p99 (ms) | errors |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for round in $(seq "$ROUNDS"); do
  for where in B A; do
    url=$url_b; [ "$where" = A ] && url=$url_a
    read -r pl0 pa0 n0 < <(counts)
    result=$(players "$url" "$url_a")
    read -r pl1 pa1 n1 < <(counts)
    python3 - "$result" "$pl0" "$pa0" "$pl1" "$pa1" "$round" "$where" "$n0" "$n1" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
pl0, pa0, pl1, pa1, rnd = (int(float(x)) for x in sys.argv[2:7])
where = sys.argv[7]
published = int(float(sys.argv[9])) - int(float(sys.argv[8]))
owner = r.get("owner")
if owner:  # the rust players read A's counters over their measured window
    published = int(owner["parts_published"])
    pl0, pa0, pl1, pa1 = 0, 0, int(owner["playlist_requests"]), int(owner["part_requests"])
# Per part A published in the window (the probe, in the players' process, can fall behind).
parts = max(1, published)
probe_each = r["probe_requests"] / 2  # one playlist + one part request per part
if where == "B":
    playlists = f"{(pl1 - pl0 - probe_each) / parts:.2f}"
    part_reqs = f"{(pa1 - pa0 - probe_each) / parts:.2f}"
else:
    playlists = part_reqs = "(direct)"
kinds = ", ".join(f"{k} {v}" for k, v in (r.get("failures") or {}).items())
errors = f"{r['errors']} ({kinds})" if kinds else f"{r['errors']}"
print(f"| {rnd} | {where} | {r['players']} | {published} | {r['parts_seen_by_probe']} | {playlists} | {part_reqs} | {r['added_ms_p50']} | {r['added_ms_p99']} | {errors} |")
PY
  done
done
log "B's edge counters:"
curl -fsS "http://127.0.0.1:$b_port/metrics" | grep '^cuecast_edge' >&2
