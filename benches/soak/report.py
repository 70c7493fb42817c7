"""Summary and plot of a soak CSV (benches/soak/run.sh): report.py CSV WARMUP_S PART_TARGET_S PNG.

Growth is the mean of the last three samples over the mean of the first three after the
warm-up; the RSS slope over the last half of the samples after it tells a plateau from a steady
climb. A part is late when the server's part publish delay (worst stream, largest quantile
over its latest 1024 parts) exceeds the part target, the time a part spans; the longest gap a
player saw between two parts is printed beside it. Chat p99 steadiness: the spread of the
per-sample p99 after the warm-up (median and max)."""
import csv
import statistics
import sys

path, warmup, part_target, png = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(open(path))]
if not rows:
    sys.exit("no samples")
after = [r for r in rows if r["t_s"] >= warmup] or rows


def growth(key):
    head = statistics.mean(r[key] for r in after[:3])
    tail = statistics.mean(r[key] for r in after[-3:])
    return (tail - head) / head * 100 if head else float("nan")


def finite(values):
    return [v for v in values if v == v]


chat_p99 = finite(r["chat_p99_ms"] for r in after)
late = sum(1 for r in after if part_target and r["part_delay_max_ms"] > part_target * 1000)
print(f"samples: {len(rows)} ({len(after)} after the {warmup:.0f} s warm-up), last at {rows[-1]['t_s']:.0f} s")
print()
print("| figure | value | goal |")
print("|---|---|---|")
print(f"| RSS after warm-up → end | {after[0]['rss_kb']/1024:.0f} → {after[-1]['rss_kb']/1024:.0f} MB ({growth('rss_kb'):+.1f} %) | < 5 % growth |")
half = after[len(after) // 2:]
if len(half) >= 2 and half[-1]["t_s"] > half[0]["t_s"]:
    slope = (half[-1]["rss_kb"] - half[0]["rss_kb"]) / 1024 / ((half[-1]["t_s"] - half[0]["t_s"]) / 3600)
    print(f"| RSS slope over the last half of the run | {slope:+.1f} MB/h | ≈ 0 |")
print(f"| open fds after warm-up → end | {after[0]['fds']:.0f} → {after[-1]['fds']:.0f} ({growth('fds'):+.1f} %) | < 5 % growth |")
print(f"| part publish delay, worst p99 / max over samples | {max(r['part_delay_p99_ms'] for r in after):.0f} / {max(r['part_delay_max_ms'] for r in after):.0f} ms (part target {part_target*1000:.0f} ms) | no part later than its deadline |")
print(f"| samples with a part past the part target | {late} of {len(after)} | 0 |")
print(f"| longest gap between two parts at a player | {max(r['part_gap_max_ms'] for r in after):.0f} ms | |")
print(f"| parts fetched by players / player errors | {rows[-1]['parts']:.0f} / {rows[-1]['player_errors']:.0f} | |")
print(f"| chat members joined / deliveries measured | {rows[-1]['chat_members']:.0f} / {sum(r['chat_deliveries'] for r in rows):.0f} | |")
if chat_p99:
    print(f"| chat delivery p99 per sample: median / max | {statistics.median(chat_p99):.0f} / {max(chat_p99):.0f} ms | steady |")
print(f"| chat reconnects/errors | {rows[-1]['chat_errors']:.0f} | |")

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("\n(no matplotlib: no plot)")
    sys.exit()
t = [r["t_s"] / 60 for r in rows]
fig, axes = plt.subplots(4, 1, figsize=(9, 10), sharex=True)
axes[0].plot(t, [r["rss_kb"] / 1024 for r in rows])
axes[0].set_ylabel("RSS (MB)")
axes[1].plot(t, [r["fds"] for r in rows])
axes[1].set_ylabel("open fds")
axes[2].plot(t, [r["part_delay_p99_ms"] for r in rows], label="publish delay p99")
axes[2].plot(t, [r["part_delay_max_ms"] for r in rows], label="publish delay max")
axes[2].plot(t, [r["part_gap_max_ms"] for r in rows], label="player gap max", alpha=0.6)
if part_target:
    axes[2].axhline(part_target * 1000, color="red", linestyle="--", label="part target")
axes[2].set_ylabel("ms")
axes[2].legend(fontsize=8)
axes[3].plot(t, [r["chat_p50_ms"] for r in rows], label="chat p50")
axes[3].plot(t, [r["chat_p99_ms"] for r in rows], label="chat p99")
axes[3].set_ylabel("chat delivery (ms)")
axes[3].legend(fontsize=8)
axes[3].set_xlabel("minutes")
for ax in axes:
    ax.axvline(warmup / 60, color="grey", linestyle=":")
fig.suptitle("cuecast soak")
fig.tight_layout()
fig.savefig(png, dpi=90)
print(f"\nplot: {png}")
