#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for FUZZ_SECONDS each (default 60) with libFuzzer
# and AddressSanitizer, from seed corpora that tests/fuzz/seeds.py captures from real publishers.
# A crash stops the run and leaves the input in tests/fuzz/artifacts/<target>/; replay it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -O --fuzz-dir tests/fuzz <target> <file>
# Installs cargo-fuzz if missing. RUSTC_BOOTSTRAP=1 lets the stable toolchain take the
# sanitizer flags cargo-fuzz passes (this machine has no nightly). See docs/fuzzing.md.
#
#   tests/fuzz/run.sh                     # all targets, 60 s each
#   FUZZ_SECONDS=600 tests/fuzz/run.sh rtmp_session flv_tags
set -euo pipefail
cd "$(dirname "$0")"
root="$(cd ../.. && pwd)"
if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
"$root/.ci/setup" --test
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1

if [ ! -d corpus ]; then
  (cd "$root" && cargo build --release --locked --bin cuecast)
  python3 -B seeds.py "$root/target/release/cuecast"
fi

seconds="${FUZZ_SECONDS:-60}"
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list --fuzz-dir .)
fi
for target in "${targets[@]}"; do
  # RTMP sessions and FLV tag runs need room for several messages.
  case "$target" in
    rtmp_session) max_len=65536 ;;
    flv_tags) max_len=16384 ;;
    *) max_len=4096 ;;
  esac
  mkdir -p "corpus/$target"
  echo "fuzz: $target for ${seconds} s"
  cargo fuzz run -O --fuzz-dir . "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -max_len="$max_len" -print_final_stats=1 2>&1 \
    | grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|ERROR|panicked|SUMMARY|Test unit written" \
    || { echo "fuzz: $target found a crash (or did not build): see above and artifacts/$target/"; exit 1; }
done
echo "fuzz: all targets ran clean"
