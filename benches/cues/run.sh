#!/usr/bin/env bash
# Cue accuracy and delay, end to end: a release `cuecast serve` (default config: 2 s segments,
# 200 ms parts) fed by ffmpeg over RTMP (720p30 H.264 with B-frames + AAC, -re); measure.py POSTs
# cues ("at": "now") one after another and measures
#   1. POST → visible: from sending the POST to the first playlist GET that lists its DATERANGE
#      (the GET is sent as soon as the 201 arrives; peer figure: a plain playlist GET in the same run);
#   2. POST → next part's blocking reload: a player's reload held for the next part (sent just
#      before the POST) returns with the DATERANGE — the delay a LL-HLS player sees (≤ 1 part);
#   3. emsg time error: the cue's emsg presentation_time (video and audio rendition segments) vs
#      the media time of the frame that was latest at POST (the API's media_time_s), in ms.
#
# Usage: benches/cues/run.sh               (env: CUES=200 INTERVAL_S=0.25 WARMUP_S=8)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
CUES=${CUES:-200}
INTERVAL_S=${INTERVAL_S:-0.25}
WARMUP_S=${WARMUP_S:-8}

if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
cargo build --release --locked --bin cuecast >/dev/null 2>&1 || cargo build --release --locked --bin cuecast

. "$root/benches/lib.sh"

duration=$(python3 -c "print(int($WARMUP_S + $CUES * ($INTERVAL_S + 0.6) + 30))")
# A window long enough to keep every cue's segment fetchable for the emsg check; rate above the
# POST pace so no request is refused.
CUECAST_RTMP_LISTEN=127.0.0.1:0 CUECAST_RTMPS_ENABLED=false CUECAST_HTTP_LISTEN=127.0.0.1:0 CUECAST_SRT_ENABLED=false \
  CUECAST_SERVER_DATA_DIR="$work/data" CUECAST_HLS_WINDOW_S=$((duration + 60)) \
  CUECAST_CUES_RATE_PER_S=50 CUECAST_MEDIA_LADDER="[]" RUST_LOG=warn,cuecast::listen=info \
  "$root/target/release/cuecast" serve 2>"$work/server.log" &
pids+=($!)
rtmp=$(listen_port "$work/server.log" rtmp); http=$(listen_port "$work/server.log" http)
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$http/healthz" >/dev/null && break; sleep 0.1; done
ffmpeg -hide_banner -loglevel error -nostdin -re \
  -f lavfi -i "testsrc2=size=1280x720:rate=30" -f lavfi -i "sine=frequency=440:sample_rate=48000" \
  -t "$duration" -c:v libx264 -preset veryfast -profile:v high -pix_fmt yuv420p -bf 2 \
  -g 60 -keyint_min 60 -sc_threshold 0 -b:v 2500k -c:a aac -ar 48000 -ac 2 -b:a 128k \
  -f flv "rtmp://127.0.0.1:$rtmp/live/demo-key" 2>"$work/ffmpeg.log" &
pids+=($!)
sleep "$WARMUP_S"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 benches/cues/measure.py "http://127.0.0.1:$http" "$CUES" "$INTERVAL_S"
