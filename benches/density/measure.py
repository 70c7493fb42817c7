#!/usr/bin/env python3
"""Measuring side of benches/density/run.sh (stdlib only).

Subcommands:
  freeport N                     print N free TCP ports on 127.0.0.1
  wait-http URL TIMEOUT          wait until URL answers 200
  wait-tcp PORT TIMEOUT          wait until 127.0.0.1:PORT accepts connections
  rss --pid PID [--tree]         print VmRSS in kB (summed over PID and its descendants with --tree)
  case ...                       one measured case (see `case --help`), appends a JSON line
  report RESULTS.jsonl OUT.md    markdown table from the case lines

CPU is utime+stime from /proc/PID/stat: for a process it covers all its threads (live and
exited), so for cuecast it is the whole server; for nginx it is summed over master + workers.
"""

import argparse
import json
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import threads as per_thread  # benches/density/threads.py

CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- /proc helpers

def stat_fields(pid):
    """Fields of /proc/PID/stat after the command name (index 0 = state)."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    return data[data.rindex(")") + 2:].split()


def cpu_ticks(pid):
    try:
        fields = stat_fields(pid)
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def threads(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def dir_kb(path):
    """Size of the files under path (recursively), KiB."""
    total = 0
    for entry in os.scandir(path):
        if entry.is_file():
            total += entry.stat().st_size
        elif entry.is_dir(follow_symlinks=False):
            total += dir_kb(entry.path) * 1024
    return total // 1024


def descendants(root):
    """root and all its descendant pids."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(stat_fields(entry)[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def alive(pid):
    try:
        return stat_fields(pid)[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return False


def machine_ticks():
    """(busy, total) jiffies over all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    total = sum(parts[:8])  # guest time is already inside user/nice
    return total - idle, total


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# ---------------------------------------------------------------- playlists

def parse_media_playlist(text):
    """(media_sequence, segment count, part count) of a media playlist."""
    seq = 0
    m = re.search(r"^#EXT-X-MEDIA-SEQUENCE:(\d+)", text, re.M)
    if m:
        seq = int(m.group(1))
    segs = len(re.findall(r"^#EXTINF:", text, re.M))
    parts = len(re.findall(r"^#EXT-X-PART:", text, re.M))
    return seq, segs, parts


def http_get(url, timeout=5.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, ""
    except (urllib.error.URLError, OSError) as e:
        return 0, str(e)


def check_cuecast(base, name):
    """State of one cuecast stream: video media playlist via the multivariant playlist."""
    url = f"{base}/hls/{name}/index.m3u8"
    status, body = http_get(url)
    if status != 200:
        return {"ok": False, "why": f"multivariant {status}"}
    uris = [l.strip() for l in body.splitlines() if l.strip() and not l.startswith("#")]
    if not uris:
        return {"ok": False, "why": "multivariant without variant"}
    media_url = urllib.parse.urljoin(url, uris[0])
    status, text = http_get(media_url)
    if status != 200:
        return {"ok": False, "why": f"media playlist {status}"}
    seq, segs, parts = parse_media_playlist(text)
    return {"ok": segs > 0, "last": seq + segs, "segs": segs, "parts": parts,
            "why": "" if segs > 0 else "no segment"}


def check_nginx(hls_dir, key):
    path = os.path.join(hls_dir, f"{key}.m3u8")
    try:
        with open(path) as f:
            text = f.read()
        age = time.time() - os.stat(path).st_mtime
    except FileNotFoundError:
        return {"ok": False, "why": "no playlist file"}
    seq, segs, parts = parse_media_playlist(text)
    return {"ok": segs > 0, "last": seq + segs, "segs": segs, "parts": parts, "age_s": age,
            "why": "" if segs > 0 else "no segment"}


def check_floor(floor_dir, name):
    """State of one stream of the floor writer: how many video segments it wrote."""
    try:
        count = len(os.listdir(os.path.join(floor_dir, name, "video")))
    except FileNotFoundError:
        return {"ok": False, "why": "no directory"}
    return {"ok": count > 0, "last": count, "why": "" if count else "no segment"}


def check_all(args):
    out = {}
    for i in range(1, args.n + 1):
        if args.server == "floor":
            out[i] = check_floor(args.floor_dir, f"s{i}")
        elif args.server.startswith("cuecast"):
            out[i] = check_cuecast(args.http_base, f"s{i}")
        else:
            out[i] = check_nginx(args.hls_dir, f"{args.key_prefix}{i}")
    return out


# ---------------------------------------------------------------- one case

def log_counts(path):
    """(warnings, errors, first few such lines) of a cuecast (tracing) or nginx error log."""
    warn = err = 0
    samples = []
    if not path or not os.path.exists(path):
        return 0, 0, []
    with open(path, errors="replace") as f:
        for line in f:
            if re.match(r"^\S+\s+WARN\s", line) or re.search(r"\[warn\]", line):
                warn += 1
            elif re.match(r"^\S+\s+ERROR\s", line) or re.search(r"\[(error|crit|alert|emerg)\]", line):
                err += 1
            else:
                continue
            if len(samples) < 5:
                samples.append(line.rstrip()[:300])
    return warn, err, samples


def run_case(args):
    pids = lambda: descendants(args.pid) if args.tree else [args.pid]
    publishers = [int(p) for p in args.publisher_pids.split(",") if p]

    before = check_all(args)
    load_start = loadavg()

    server_pids = pids()
    c0 = {p: cpu_ticks(p) for p in server_pids}
    tasks0 = per_thread.snapshot(args.pid)
    pub0 = sum(cpu_ticks(p) for p in publishers)
    m0 = machine_ticks()
    t0 = time.monotonic()
    rss_samples = []
    end = t0 + args.measure
    while True:
        rss_samples.append(sum(rss_kb(p) for p in pids()))
        now = time.monotonic()
        if now >= end:
            break
        time.sleep(min(1.0, end - now))
    server_pids_end = pids()
    c1 = {p: cpu_ticks(p) for p in server_pids_end}
    tasks1 = per_thread.snapshot(args.pid)
    pub1 = sum(cpu_ticks(p) for p in publishers)
    m1 = machine_ticks()
    wall = time.monotonic() - t0
    load_end = loadavg()
    # Processes present at both ends count their difference; a worker that appeared
    # meanwhile counts in full (nginx keeps its single worker, cuecast is one process).
    dticks = sum(c1[p] - c0.get(p, 0) for p in c1)

    after = check_all(args)
    served = 0
    problems = []
    for i in range(1, args.n + 1):
        a, b = before[i], after[i]
        if b["ok"] and a.get("ok") and b["last"] > a["last"]:
            served += 1
        else:
            problems.append(f"{i}: before={a.get('why') or a.get('last')} after={b.get('why') or b.get('last')}")
    sample = next((after[i] for i in after if after[i].get("ok")), {})
    pubs_alive = sum(1 for p in publishers if alive(p))

    cpu_pct = dticks / CLK_TCK / wall * 100.0
    busy, total = m1[0] - m0[0], m1[1] - m0[1]
    result = {
        "server": args.server,
        "n": args.n,
        "measure_s": round(wall, 2),
        "cpu_pct_core": cpu_pct,
        "cpu_pct_per_stream": cpu_pct / args.n,
        "rss_kb_start": rss_samples[0],
        "rss_kb_end": rss_samples[-1],
        "hls_dir_kb": dir_kb(args.hls_dir) if args.hls_dir else None,
        "recordings_dir_kb": dir_kb(args.recordings_dir) if args.recordings_dir else None,
        "rss_kb_peak": max(rss_samples),
        "rss_kb_mean": sum(rss_samples) / len(rss_samples),
        "idle_rss_kb": args.idle_rss_kb,
        "server_procs": len(server_pids_end),
        "server_threads": sum(threads(p) for p in server_pids_end),
        "publishers_alive": pubs_alive,
        "streams_served": served,
        "problems": problems[:20],
        "segments_in_playlist": sample.get("segs"),
        "parts_in_playlist": sample.get("parts"),
        "publishers_cpu_pct_core": (pub1 - pub0) / CLK_TCK / wall * 100.0,
        "machine_busy_pct": 100.0 * busy / total if total else 0.0,
        "nproc": os.cpu_count(),
        "loadavg_start": load_start,
        "loadavg_end": load_end,
        # The server's own threads (not its descendants'), by name with digits folded:
        # [count, % of a core, voluntary switches/s, nonvoluntary/s].
        "threads_cpu": per_thread.groups(tasks0, tasks1, wall),
        "log_warn": log_counts(args.log)[0],
        "log_error": log_counts(args.log)[1],
        "log_samples": log_counts(args.log)[2],
    }
    with open(args.out, "a") as f:
        f.write(json.dumps(result) + "\n")
    print(f"  {args.server} N={args.n}: CPU {cpu_pct:.1f} % of a core "
          f"({cpu_pct / args.n:.2f} %/stream), RSS {rss_samples[-1] / 1024:.1f} MiB "
          f"(idle {args.idle_rss_kb / 1024:.1f}), served {served}/{args.n}, "
          f"publishers alive {pubs_alive}/{len(publishers)}, machine busy "
          f"{result['machine_busy_pct']:.0f} %, load {load_end}", flush=True)
    for p in problems[:5]:
        print(f"    not served: stream {p}", flush=True)


# ---------------------------------------------------------------- report

def report(args):
    rows = [json.loads(l) for l in open(args.results) if l.strip()]
    meta = json.loads(open(args.meta).read()) if args.meta else {}
    mib = lambda kb: kb / 1024.0
    by = {(r["n"], r["server"]): r for r in rows}
    out = []
    out.append(f"# Density and memory — passthrough publishers, cuecast vs nginx-rtmp\n")
    if meta:
        out.append(f"- date: {meta.get('date')}  commit: {meta.get('commit')}")
        out.append(f"- machine: {meta.get('nproc')} cores ({meta.get('cpu')}), "
                   f"loadavg before the run: {meta.get('loadavg')}")
        out.append(f"- clip: {meta.get('clip')}")
        out.append(f"- warmup {meta.get('warmup_s')} s, measurement {meta.get('measure_s')} s per case; "
                   f"cuecast window {meta.get('window_s')} s, nginx-rtmp hls_playlist_length "
                   f"{meta.get('window_s')} s, hls_fragment 2s")
        out.append("")
    out.append("| N | server | publishers alive | streams served | server CPU (% of a core) "
               "| CPU %/stream | cuecast/nginx CPU | recording on/off CPU | RSS total (MiB) | RSS/stream (MiB) "
               "| (RSS − idle)/stream (MiB) | idle RSS (MiB) | machine busy (%) | loadavg end |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        n = r["n"]
        ratio = ""
        if r["server"].startswith("cuecast") and (n, "nginx-rtmp") in by:
            ng = by[(n, "nginx-rtmp")]["cpu_pct_per_stream"]
            ratio = f"{r['cpu_pct_per_stream'] / ng:.2f}" if ng > 0 else "∞"
        rec = ""
        if r["server"] == "cuecast" and (n, "cuecast-norec") in by:
            off = by[(n, "cuecast-norec")]["cpu_pct_per_stream"]
            rec = f"{r['cpu_pct_per_stream'] / off:.2f}" if off > 0 else "∞"
        out.append(
            f"| {n} | {r['server']} | {r['publishers_alive']}/{n} | {r['streams_served']}/{n} "
            f"| {r['cpu_pct_core']:.1f} | {r['cpu_pct_per_stream']:.2f} | {ratio} | {rec} "
            f"| {mib(r['rss_kb_end']):.1f} | {mib(r['rss_kb_end']) / n:.2f} "
            f"| {mib(r['rss_kb_end'] - r['idle_rss_kb']) / n:.2f} | {mib(r['idle_rss_kb']):.1f} "
            f"| {r['machine_busy_pct']:.0f} | {r['loadavg_end']} |")
    out.append("")
    out.append("CPU: utime+stime of the server (cuecast: the process, all threads; nginx-rtmp: master, "
               "worker and cache manager) over the measurement window, as % of one core; per stream = / N. RSS: VmRSS at "
               "the end of the window (nginx: summed over its processes); idle RSS is measured after "
               "start, before any publisher. Served = media playlist answered with segments and its last "
               "segment number advanced across the window. Machine busy = all cores, all processes "
               "(publishers included), % of the whole machine.")
    summary = []
    mean = lambda xs: sum(xs) / len(xs)
    for n in sorted({r["n"] for r in rows}):
        cpu = lambda server: [r["cpu_pct_core"] for r in rows if r["n"] == n and r["server"] == server]
        on, off, floor = cpu("cuecast"), cpu("cuecast-norec"), cpu("floor")
        if on and off and sum(off) > 0:
            pairs = ", ".join(f"{a / b:.2f}×" for a, b in zip(on, off) if b > 0)
            summary.append(f"- N={n}: recording on/off, pooled over {len(on)} on and {len(off)} off "
                           f"runs: {mean(on):.1f} / {mean(off):.1f} % of a core = **{mean(on) / mean(off):.2f}×** "
                           f"(+{(mean(on) - mean(off)) / n:.3f} % of a core per stream; run by run, in order: {pairs})")
            writers = [r["threads_cpu"].get("cuecast-rec-s#", [0, 0])[1] for r in rows
                       if r["n"] == n and r["server"] == "cuecast" and "threads_cpu" in r]
            if writers:
                summary.append(f"  - its writer threads (cuecast-rec-*): {mean(writers):.2f} % of a core "
                               f"({mean(writers) / n:.3f} %/stream) of the +{mean(on) - mean(off):.2f} recording adds")
        if floor and off and sum(off) > 0:
            summary.append(f"- N={n}: floor (benches/density/floor.py: the same segment bytes, one file and one "
                           f"write per segment) {mean(floor):.2f} % of a core ({mean(floor) / n:.3f} %/stream): "
                           f"(cuecast-norec + floor) / cuecast-norec = **{(mean(off) + mean(floor)) / mean(off):.2f}×**")
    if summary:
        out.append("")
        out.extend(summary)
    notes = []
    for r in rows:
        if r.get("threads_cpu") and r["server"].startswith("cuecast"):
            top = list(r["threads_cpu"].items())[:8]
            notes.append(f"- {r['server']} N={r['n']} per thread (% of a core): "
                         + ", ".join(f"{name} ×{g[0]} {g[1]:.2f}" for name, g in top))
        if r["log_warn"] or r["log_error"]:
            notes.append(f"- {r['server']} N={r['n']}: {r['log_warn']} warning and {r['log_error']} error "
                         f"lines in its log by the end of the window, first: "
                         + " / ".join(f"`{l}`" for l in r.get("log_samples", [])[:2]))
        if r["server"] == "cuecast" and r.get("parts_in_playlist") is not None:
            notes.append(f"- cuecast N={r['n']}: a sampled video playlist listed {r['segments_in_playlist']} "
                         f"segments and {r['parts_in_playlist']} LL-HLS parts")
        notes.append(f"- {r['server']} N={r['n']}: {r['server_procs']} process(es), {r.get('server_threads')} "
                     f"threads; publishers (ffmpeg) used {r['publishers_cpu_pct_core']:.0f} % of a core; "
                     f"peak RSS in window {mib(r['rss_kb_peak']):.1f} MiB")
        start, end_ = r.get("rss_kb_start"), r["rss_kb_end"]
        if start and end_ > start * 1.05:
            notes.append(f"  - {r['server']} N={r['n']}: RSS still grew by {mib(end_ - start) / r['n']:.2f} MiB/stream "
                         f"during the window ({mib(start):.0f} → {mib(end_):.0f} MiB): not steady yet — "
                         f"a longer WARMUP_S gives the steady-state figure")
        if r.get("recordings_dir_kb") is not None:
            notes.append(f"  - {r['server']} N={r['n']}: its recordings took {mib(r['recordings_dir_kb']):.0f} MiB "
                         f"on disk by the end of the window")
        if r.get("hls_dir_kb") is not None:
            notes.append(f"  - {r['server']} N={r['n']}: its HLS files (on disk / page cache, not in RSS) took "
                         f"{mib(r['hls_dir_kb']):.0f} MiB ({mib(r['hls_dir_kb']) / r['n']:.1f} MiB/stream)")
        for p in r["problems"][:5]:
            notes.append(f"  - {r['server']} N={r['n']} not served: stream {p}")
    if notes:
        out.append("")
        out.extend(notes)
    text = "\n".join(out) + "\n"
    with open(args.out, "w") as f:
        f.write(text)
    print(text)


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("freeport"); p.add_argument("count", type=int)
    p = sub.add_parser("wait-http"); p.add_argument("url"); p.add_argument("timeout", type=float)
    p = sub.add_parser("wait-tcp"); p.add_argument("port", type=int); p.add_argument("timeout", type=float)
    p = sub.add_parser("rss"); p.add_argument("--pid", type=int, required=True); p.add_argument("--tree", action="store_true")
    p = sub.add_parser("case")
    p.add_argument("--server", choices=["cuecast", "cuecast-norec", "nginx-rtmp", "floor"], required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--tree", action="store_true", help="sum over the pid's descendants too")
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--measure", type=float, required=True)
    p.add_argument("--idle-rss-kb", type=int, required=True)
    p.add_argument("--publisher-pids", default="")
    p.add_argument("--http-base", default="")
    p.add_argument("--hls-dir", default="")
    p.add_argument("--recordings-dir", default="")
    p.add_argument("--floor-dir", default="", help="where the floor writer writes (server floor)")
    p.add_argument("--key-prefix", default="")
    p.add_argument("--log", default="", help="server log: its warning/error lines are counted")
    p.add_argument("--out", required=True)
    p = sub.add_parser("report"); p.add_argument("results"); p.add_argument("out"); p.add_argument("--meta")
    args = ap.parse_args()

    if args.cmd == "freeport":
        socks = []
        for _ in range(args.count):
            s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
        print(" ".join(str(s.getsockname()[1]) for s in socks))
        for s in socks:
            s.close()
    elif args.cmd == "wait-http":
        end = time.monotonic() + args.timeout
        while time.monotonic() < end:
            if http_get(args.url, timeout=1.0)[0] == 200:
                return 0
            time.sleep(0.2)
        return 1
    elif args.cmd == "wait-tcp":
        end = time.monotonic() + args.timeout
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", args.port), timeout=1.0).close()
                return 0
            except OSError:
                time.sleep(0.2)
        return 1
    elif args.cmd == "rss":
        print(sum(rss_kb(p) for p in (descendants(args.pid) if args.tree else [args.pid])))
    elif args.cmd == "case":
        run_case(args)
    elif args.cmd == "report":
        report(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
