#!/usr/bin/env bash
# Chat server CPU per delivered message (issue #30, docs/benchmarks/chat.md): one cuecast node
# (release build) and the Socket.IO peer (benches/socketio/server.js: one room, each post
# broadcast to it), both running for the whole run; then ROUNDS rounds of three runs, alternated
# QUIC, WebSocket, Socket.IO: MEMBERS members of one room, SENDERS senders posting RATE msg/s in
# total, WARMUP_S then MEASURE_S measured (benches/chat_load.rs, the same Rust load generator for
# the three). Per run: the server's utime+stime over the window (/proc of its process) divided by
# the messages the members counted, delivery latency p50/p99, and losses. The summary gives each
# transport's median over the rounds and its ratio to Socket.IO.
#
# Usage: benches/chat_cpu/run.sh
#   MEMBERS=1000 RATE=50 SENDERS=5 MEASURE_S=20 WARMUP_S=3 ROUNDS=3 TRANSPORTS=quic,ws,socketio
#   PROFILE=release (cargo profile of both binaries)  SKIP_BUILD=1 (use the built binaries)
#   BIN=path/to/cuecast (another server binary)  OUT=target/chat_cpu (runs.jsonl, logs)
# Needs node and npm (`npm ci` runs in benches/socketio when node_modules is missing).
# Output: a markdown table of every run and the summary on stdout.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
MEMBERS=${MEMBERS:-1000}
RATE=${RATE:-50}
SENDERS=${SENDERS:-5}
SECONDS_MEASURED=${MEASURE_S:-20}
WARMUP_S=${WARMUP_S:-3}
ROUNDS=${ROUNDS:-3}
TRANSPORTS=${TRANSPORTS:-quic,ws,socketio}
PROFILE=${PROFILE:-release}
OUT=${OUT:-$root/target/chat_cpu}
case "$PROFILE" in dev) dir=debug ;; *) dir=$PROFILE ;; esac
target="${CARGO_TARGET_DIR:-$root/target}"

if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
if [ "${SKIP_BUILD:-}" != 1 ]; then
  cargo build --profile "$PROFILE" --locked --bin cuecast --bench chat_load >&2
fi
bin=${BIN:-$target/$dir/cuecast}
load=$(ls -t "$target/$dir"/deps/chat_load-* 2>/dev/null | grep -v '\.d$' | head -n1 || true)
[ -x "$bin" ] && [ -n "$load" ] && [ -x "$load" ] || { echo "build first (or unset SKIP_BUILD)" >&2; exit 1; }
if [ ! -d benches/socketio/node_modules ]; then (cd benches/socketio && npm ci --no-audit --no-fund >&2); fi
. "$root/benches/lib.sh"
mkdir -p "$OUT"
: >"$OUT/runs.jsonl"
ulimit -n 65536 2>/dev/null || true

start_cuecast "$bin" "$OUT/cuecast.log" \
  CUECAST_CHAT_MAX_CONNECTIONS_PER_IP=100000 CUECAST_CHAT_MAX_CONNECTIONS=100000 \
  CUECAST_CHAT_BACKFILL=0 CUECAST_RECORDINGS_ENABLED=false CUECAST_SERVER_DATA_DIR="$work/data"
cuecast=$cuecast_pid
http=$(listen_port "$OUT/cuecast.log" http)
listen_port "$OUT/cuecast.log" chat >/dev/null
wait_healthy "http://127.0.0.1:$http"

node benches/socketio/server.js >"$OUT/socketio.log" 2>&1 &
socketio=$!; pids+=("$socketio")
sio_port=""
for _ in $(seq 100); do
  sio_port=$(sed -n 's/^listening port=//p' "$OUT/socketio.log")
  [ -n "$sio_port" ] && break; sleep 0.1
done
[ -n "$sio_port" ] || { echo "the Socket.IO server did not start" >&2; cat "$OUT/socketio.log" >&2; exit 1; }

echo "chat CPU: $MEMBERS members, $RATE msg/s from $SENDERS senders, ${WARMUP_S} s warm-up + ${SECONDS_MEASURED} s measured, $ROUNDS rounds of $TRANSPORTS, profile $PROFILE" >&2
IFS=, read -r -a transports <<<"$TRANSPORTS"
for round in $(seq "$ROUNDS"); do
  for t in "${transports[@]}"; do
    case "$t" in
      socketio) targets="http://127.0.0.1:$sio_port"; server=$socketio ;;
      *) targets="http://127.0.0.1:$http"; server=$cuecast ;;
    esac
    kill -0 "$server" 2>/dev/null || { echo "server process $server is gone (logs in $OUT)" >&2; exit 1; }
    line=$(CHAT_TRANSPORT=$t CHAT_TARGETS=$targets CHAT_PIDS=$server CHAT_MEMBERS=$MEMBERS \
      CHAT_RATE=$RATE CHAT_SENDERS=$SENDERS CHAT_SECONDS=$SECONDS_MEASURED CHAT_WARMUP_S=$WARMUP_S \
      "$load" --bench)
    echo "{\"round\": $round, \"run\": $line}" | tee -a "$OUT/runs.jsonl" >&2
    sleep 1
  done
done

python3 - "$OUT/runs.jsonl" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
names = {"quic": "cuecast QUIC", "ws": "cuecast WebSocket", "socketio": "Socket.IO 4.8.4 (node)"}
print("| round | transport | members | sent | delivered / expected | server CPU % | server CPU µs per delivered message | p50 ms | p99 ms | max ms | lost | load client CPU % |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in runs:
    x = r["run"]
    print(f"| {r['round']} | {names.get(x['transport'], x['transport'])} | {x['joined']}/{x['members']} | {x['sent']} | "
          f"{x['delivered']} / {x['expected']} ({x['delivered'] / max(1, x['expected']) * 100:.1f} %) | {x['server_cpu_pct']:.1f} | "
          f"{x['cpu_us_per_msg']:.2f} | {x['p50_ms']:.1f} | {x['p99_ms']:.1f} | {x['max_ms']:.1f} | {x['lost']} | {x['client_cpu_pct']:.1f} |")
by = {}
for r in runs:
    by.setdefault(r["run"]["transport"], []).append(r["run"])
med = lambda xs: statistics.median(xs) if xs else float("nan")
peer = med([x["cpu_us_per_msg"] for x in by.get("socketio", [])])
print()
print("| transport | runs | median server CPU µs per delivered message | × Socket.IO | median p50 ms | median p99 ms | delivered |")
print("|---|---|---|---|---|---|---|")
for t, xs in by.items():
    cpu = med([x["cpu_us_per_msg"] for x in xs])
    ratio = f"{cpu / peer:.2f}×" if peer == peer and peer > 0 else "—"
    got = sum(x["delivered"] for x in xs) / max(1, sum(x["expected"] for x in xs)) * 100
    print(f"| {names.get(t, t)} | {len(xs)} | {cpu:.2f} | {ratio} | {med([x['p50_ms'] for x in xs]):.1f} | {med([x['p99_ms'] for x in xs]):.1f} | {got:.1f} % |")
PY
