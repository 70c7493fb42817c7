#!/usr/bin/env bash
# The API contract, fuzzed: schemathesis (tests/api/requirements.txt) against a running
# `cuecast serve` with the OpenAPI document it serves at /api/openapi.json.
#
#   tests/api/schemathesis.sh [MAX_EXAMPLES]     (default 50 per operation: about 2.5 min on 2 cores; CI: .ci/test)
#
# The server runs on a scratch data dir with the built-in default config, every listener on
# port 0, an admin token of its own, and a little seeded data so operations meet valid ids: a
# catalog product (sku-1), a host account with a show on stream `demo`, an event. Three runs,
# each of every operation, positive and negative cases (--mode all), every check but the one
# excluded below:
#   1. with the admin token;
#   2. with the login token of a user without capabilities (the 403 answers);
#   3. without a token (the 401 answers).
# Exits non-zero on any finding (a 5xx, an answer that breaks the document, ...).
#
# The one excluded check, and why (no operation and no status code is excluded):
# - positive_data_acceptance expects a 2xx for every schema-valid request, but the API refuses
#   schema-valid data on purpose, by rules across fields and state that a schema does not say:
#   a click without its product, an admin's show without its `host`, a show on a stream that is
#   not configured, an id the catalog does not know (404), a cue on a stream that is not live
#   (404), a username with characters the account rules refuse. Each such answer is a documented
#   4xx with the error body naming the field, and status_code_conformance and
#   response_schema_conformance check it. (Where a rule is a plain value constraint, it is in the
#   document: non-empty ids, `limit` from 1, a show's `state` override, the capability names.)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
max_examples="${1:-50}"

# schemathesis, pinned, in a venv keyed by the requirements file (reinstalled when it changes).
req="$root/tests/api/requirements.txt"
venv="${XDG_CACHE_HOME:-$HOME/.cache}/cuecast/schemathesis-$(sha256sum "$req" | cut -c1-12)"
if [ ! -x "$venv/bin/schemathesis" ]; then
  echo "schemathesis: installing $(grep -v '^#' "$req" | tr '\n' ' ')into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
fi

if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
cargo build --locked --quiet --bin cuecast
bin="${CARGO_TARGET_DIR:-$root/target}/debug/cuecast"

. "$root/benches/lib.sh"   # $work, pids killed at exit, listen_port
admin="schemathesis-admin-token"
RUST_LOG="info,tower_http=warn" \
  CUECAST_RTMP_LISTEN=127.0.0.1:0 CUECAST_HTTP_LISTEN=127.0.0.1:0 \
  CUECAST_SRT_LISTEN=127.0.0.1:0 CUECAST_CHAT_LISTEN=127.0.0.1:0 \
  CUECAST_SERVER_DATA_DIR="$work/data" CUECAST_MEDIA_LADDER='[]' \
  CUECAST_API_ADMIN_TOKEN="$admin" \
  "$bin" serve >"$work/stdout" 2>"$work/server.log" &
pids+=($!)
port=$(listen_port "$work/server.log" http)
base="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -fs "$base/healthz" >/dev/null && break; sleep 0.1; done

# Seed: a product, a host with a show, an event.
call() { # METHOD PATH [BODY] [TOKEN] → body on stdout; fails on a non-2xx
  curl -fsS -X "$1" "$base$2" -H 'Content-Type: application/json' \
    -H "Authorization: Bearer ${4:-$admin}" ${3:+--data "$3"}
}
call POST /api/catalog/products \
  '[{"id":"sku-1","title":"Rose perfume 50 ml","price":"49.00","currency":"USD","category":"beauty > fragrance","brand":"Maison"}]' >/dev/null
curl -fsS -X POST "$base/api/signup" -H 'Content-Type: application/json' \
  --data '{"username":"showhost","password":"host-password"}' >/dev/null
call PUT /api/users/showhost/capabilities '{"capabilities":["send","host"]}' >/dev/null
start=$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)
show=$(call POST /api/shows "{\"title\":\"Spring launch\",\"stream\":\"demo\",\"host\":\"showhost\",\"scheduled_start\":\"$start\",\"products\":[\"sku-1\"]}" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
viewer=$(curl -fsS -X POST "$base/api/signup" -H 'Content-Type: application/json' \
  --data '{"username":"viewer","password":"viewer-password"}' |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
call POST /api/events "{\"events\":[{\"type\":\"click\",\"show\":\"$show\",\"product\":\"sku-1\",\"visitor\":\"v-1\"}]}" >/dev/null

# Seeded values schemathesis mixes into what it generates (half the time), so operations also
# meet ids that exist.
cat >"$work/schemathesis.toml" <<TOML
# Its state between runs (the failures it replays first) stays in target/, out of the tree.
[cache]
directory = "${CARGO_TARGET_DIR:-$root/target}/schemathesis"

[auth]
# Each run says which token it sends (none in the last): schemathesis signs no one up itself.
auto-signup = false

[dictionaries.stream]
values = ["demo"]
[dictionaries.id]
values = ["$show", "sku-1"]
[dictionaries.show]
values = ["$show"]
[dictionaries.product]
values = ["sku-1"]
[dictionaries.user]
values = ["showhost"]

[parameters]
"path.stream" = { dictionary = "stream", probability = 0.5 }
"path.room" = { dictionary = "stream", probability = 0.5 }
"path.id" = { dictionary = "id", probability = 0.5 }
"path.username" = { dictionary = "user", probability = 0.5 }
"body.stream" = { dictionary = "stream", probability = 0.5 }
"body.host" = { dictionary = "user", probability = 0.5 }
"body.events[*].show" = { dictionary = "show", probability = 0.5 }
"body.events[*].product" = { dictionary = "product", probability = 0.5 }
"body.products[*]" = { dictionary = "product", probability = 0.5 }
TOML

# One worker: with several, hypothesis parses lambdas' source on threads at once and CPython
# 3.11 can fail that ("AST constructor recursion depth mismatch"), a crash of the tool itself.
run() { # NAME, then extra schemathesis arguments
  local name="$1"
  shift
  echo "schemathesis: $name"
  "$venv/bin/schemathesis" --config-file "$work/schemathesis.toml" run "$base/api/openapi.json" \
    --mode all --checks all \
    --exclude-checks positive_data_acceptance \
    --max-examples "$max_examples" --seed 27 --workers 1 --request-timeout 10 \
    --suppress-health-check all --no-color "$@"
}
status=0
run "with the admin token" -H "Authorization: Bearer $admin" || status=1
run "with a login token without capabilities" -H "Authorization: Bearer $viewer" || status=1
run "without a token" || status=1
if [ "$status" -ne 0 ]; then
  echo "schemathesis: findings above; server log: " >&2
  grep -E "ERROR|WARN|panicked" "$work/server.log" | tail -20 >&2 || true
fi
exit "$status"
