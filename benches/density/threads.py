#!/usr/bin/env python3
"""Per-thread CPU and context switches of a running process (stdlib only).

Usage: python3 -B benches/density/threads.py PID [SECONDS]

Samples /proc/PID/task/*/stat (utime+stime) and /proc/PID/task/*/status (voluntary and
nonvoluntary context switches) at the start and end of SECONDS (default 15) and prints them per
thread name, digits folded (`cmafmux12:src` -> `cmafmux#:src`), as % of one core and switches/s.
Used for the per-thread table in docs/benchmarks/density.md ("Part-aligned batching"): start cuecast and the
publishers as benches/density/run.sh does, then run this against cuecast's pid. measure.py uses its
snapshot() and groups() to record every case's per-thread CPU over the measured window.
"""

import collections
import os
import re
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def snapshot(pid):
    """{tid: (name, cpu ticks, voluntary, nonvoluntary)} for the threads alive now."""
    threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                status = f.read()
        except (FileNotFoundError, ProcessLookupError):
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        cpu = int(fields[11]) + int(fields[12])
        vol = int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", status, re.M).group(1))
        invol = int(re.search(r"^nonvoluntary_ctxt_switches:\s+(\d+)", status, re.M).group(1))
        threads[tid] = (name, cpu, vol, invol)
    return threads


def groups(before, after, elapsed):
    """{thread name with digits folded: [count, % of a core, voluntary/s, nonvoluntary/s]} of
    the threads alive at both snapshots, heaviest first."""
    out = collections.defaultdict(lambda: [0, 0, 0, 0])
    for tid, (name, cpu, vol, invol) in after.items():
        if tid not in before:
            continue
        _, cpu0, vol0, invol0 = before[tid]
        group = out[re.sub(r"\d+", "#", name)]
        group[0] += 1
        group[1] += cpu - cpu0
        group[2] += vol - vol0
        group[3] += invol - invol0
    return {name: [count, 100 * cpu / CLK_TCK / elapsed, vol / elapsed, invol / elapsed]
            for name, (count, cpu, vol, invol) in sorted(out.items(), key=lambda g: -g[1][1])}


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    pid = int(sys.argv[1])
    seconds = float(sys.argv[2]) if len(sys.argv) == 3 else 15.0
    before = snapshot(pid)
    start = time.monotonic()
    time.sleep(seconds)
    after = snapshot(pid)
    elapsed = time.monotonic() - start
    print(f"{'thread':24} {'count':>5} {'cpu %':>7} {'vol/s':>8} {'invol/s':>8}")
    total = [0, 0, 0]
    for name, (count, cpu, vol, invol) in groups(before, after, elapsed).items():
        print(f"{name:24} {count:5} {cpu:7.2f} {vol:8.0f} {invol:8.0f}")
        total = [total[0] + cpu, total[1] + vol, total[2] + invol]
    print(f"{'all threads':24} {'':5} {total[0]:7.2f} {total[1]:8.0f} {total[2]:8.0f}")


if __name__ == "__main__":
    main()
