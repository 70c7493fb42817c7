#!/usr/bin/env bash
# Chat across nodes (issue #30, docs/benchmarks/cluster.md): delivery latency for one room whose
# members are spread over three cuecast nodes sharing a Redis server (started here on a private
# port), against the same members on one node, in the same run. Started once for the whole run:
# a private redis-server, nodes A, B and C clustered on it (CUECAST_CLUSTER_*), and node S, a
# single node without Redis (the default deployment). Then for each member count in MEMBERS,
# ROUNDS times, alternated, one run per configuration in CONFIGS:
#   1   the members on S (one node, in-memory fan-out: the floor);
#   1r  the members on A only (one clustered node: what Redis alone costs);
#   3   the members split round-robin over A, B and C (the senders too).
# Each run is benches/chat_load.rs over native QUIC: SENDERS host accounts post RATE msg/s in
# total; after WARMUP_S, for MEASURE_S, post → arrival latency p50/p99 at the members (1 in
# members/200 sampled), deliveries counted at every member, and the CPU of the servers involved
# (nodes + redis-server). The summary gives, per configuration, the largest member count whose
# median p99 holds ≤ 100 ms with ≥ 95 % delivered and no member lost.
#
# Usage: benches/cluster/chat.sh
#   MEMBERS=500,1000,2000,3000 CONFIGS=1,3 ROUNDS=2 RATE=50 SENDERS=6 MEASURE_S=10 WARMUP_S=3
#   PROFILE=release (cargo profile of both binaries)  SKIP_BUILD=1 (use the built binaries)
#   BIN=path/to/cuecast  OUT=target/cluster_chat (runs.jsonl, node logs)
# Output: a markdown table of every run and the summary on stdout.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
MEMBERS=${MEMBERS:-500,1000,2000,3000}
CONFIGS=${CONFIGS:-1,3}
ROUNDS=${ROUNDS:-2}
RATE=${RATE:-50}
SENDERS=${SENDERS:-6}
SECONDS_MEASURED=${MEASURE_S:-10}
WARMUP_S=${WARMUP_S:-3}
PROFILE=${PROFILE:-release}
OUT=${OUT:-$root/target/cluster_chat}
case "$PROFILE" in dev) dir=debug ;; *) dir=$PROFILE ;; esac
target="${CARGO_TARGET_DIR:-$root/target}"

if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
if [ "${SKIP_BUILD:-}" != 1 ]; then
  cargo build --profile "$PROFILE" --locked --bin cuecast --bench chat_load >&2
fi
bin=${BIN:-$target/$dir/cuecast}
load=$(ls -t "$target/$dir"/deps/chat_load-* 2>/dev/null | grep -v '\.d$' | head -n1 || true)
[ -x "$bin" ] && [ -n "$load" ] && [ -x "$load" ] || { echo "build first (or unset SKIP_BUILD)" >&2; exit 1; }
. "$root/benches/lib.sh"
mkdir -p "$OUT"
: >"$OUT/runs.jsonl"
ulimit -n 65536 2>/dev/null || true

start_redis "$OUT/redis.log"
redis=$redis_pid

# cluster_node NAME CLUSTERED: a node on a fixed HTTP port (its node_url), chat on port 0; sets
# NAME_url and NAME_pid.
cluster_node() {
  start_node "$1" "$bin" "$OUT/$1.log" "$2" CUECAST_RECORDINGS_ENABLED=false CUECAST_CHAT_BACKFILL=0 \
    CUECAST_CHAT_MAX_CONNECTIONS_PER_IP=100000 CUECAST_CHAT_MAX_CONNECTIONS=100000 \
    CUECAST_SERVER_DATA_DIR="$work/$1"
}
cluster_node a 1
cluster_node b 1
cluster_node c 1
cluster_node s 0
for name in a b c s; do
  listen_port "$OUT/$name.log" chat >/dev/null
  url=${name}_url
  wait_healthy "${!url}"
done

echo "cluster chat: members $MEMBERS, configurations $CONFIGS, $ROUNDS rounds, $RATE msg/s from $SENDERS senders, ${WARMUP_S} s warm-up + ${SECONDS_MEASURED} s measured, profile $PROFILE" >&2
IFS=, read -r -a counts <<<"$MEMBERS"
IFS=, read -r -a configs <<<"$CONFIGS"
for n in "${counts[@]}"; do
  for round in $(seq "$ROUNDS"); do
    for config in "${configs[@]}"; do
      case "$config" in
        1) targets=$s_url; servers=$s_pid ;;
        1r) targets=$a_url; servers="$a_pid,$redis" ;;
        3) targets="$a_url,$b_url,$c_url"; servers="$a_pid,$b_pid,$c_pid,$redis" ;;
        *) echo "CONFIGS: 1, 1r or 3, not $config" >&2; exit 2 ;;
      esac
      for pid in ${servers//,/ }; do
        kill -0 "$pid" 2>/dev/null || { echo "server process $pid is gone (logs in $OUT)" >&2; exit 1; }
      done
      line=$(CHAT_TRANSPORT=quic CHAT_TARGETS=$targets CHAT_PIDS=$servers CHAT_MEMBERS=$n \
        CHAT_RATE=$RATE CHAT_SENDERS=$SENDERS CHAT_SECONDS=$SECONDS_MEASURED CHAT_WARMUP_S=$WARMUP_S \
        "$load" --bench)
      echo "{\"round\": $round, \"config\": \"$config\", \"run\": $line}" | tee -a "$OUT/runs.jsonl" >&2
      sleep 1
    done
  done
done

python3 - "$OUT/runs.jsonl" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
names = {"1": "1 node", "1r": "1 node + Redis", "3": "3 nodes + Redis"}
print("| members | round | nodes | joined | delivered / expected | p50 ms | p99 ms | max ms | servers' CPU % (nodes + redis) | lost | load client CPU % |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for r in runs:
    x = r["run"]
    print(f"| {x['members']} | {r['round']} | {names[r['config']]} | {x['joined']} | {x['delivered']} / {x['expected']} "
          f"({x['delivered'] / max(1, x['expected']) * 100:.1f} %) | {x['p50_ms']:.1f} | {x['p99_ms']:.1f} | {x['max_ms']:.1f} | "
          f"{x['server_cpu_pct']:.1f} | {x['lost']} | {x['client_cpu_pct']:.1f} |")
groups = {}
for r in runs:
    groups.setdefault((r["config"], r["run"]["members"]), []).append(r["run"])
configs = list(dict.fromkeys(r["config"] for r in runs))
members = sorted({r["run"]["members"] for r in runs})
print()
print("| members | " + " | ".join(f"{names[c]}: median p99 ms" for c in configs) + " | " +
      " | ".join(f"{names[c]} ÷ 1 node" for c in configs if c != "1") + " |")
print("|---|" + "---|" * (len(configs) + len([c for c in configs if c != "1"])))
med = lambda xs: statistics.median(xs) if xs else float("nan")
best = {}
for n in members:
    p99 = {c: med([x["p99_ms"] for x in groups.get((c, n), [])]) for c in configs}
    for c in configs:
        xs = groups.get((c, n), [])
        ok = xs and p99[c] <= 100 and all(x["lost"] == 0 and x["delivered"] >= 0.95 * x["expected"] for x in xs)
        if ok:
            best[c] = max(best.get(c, 0), n)
    ratios = [f"{p99[c] / p99['1']:.2f}×" if "1" in p99 and p99["1"] > 0 else "—" for c in configs if c != "1"]
    print(f"| {n} | " + " | ".join(f"{p99[c]:.1f}" for c in configs) + " | " + " | ".join(ratios) + " |")
print()
for c in configs:
    print(f"- {names[c]}: largest member count holding p99 ≤ 100 ms (≥ 95 % delivered, none lost): {best.get(c, 'none')}")
PY
