#!/usr/bin/env python3
"""The floor of recording's cost: a minimal writer of the same bytes (stdlib only).

Usage: python3 -B benches/density/floor.py --clip CLIP --n N --dir DIR [--segment-s 2]

Writes what cuecast's recording of N streams of CLIP writes, and nothing else: for each stream,
every segment duration, one new file per rendition (video, audio) holding that segment's bytes,
each file written with one open(O_CREAT|O_EXCL), one write() from one buffer and one close —
no temporary name, no rename, no journal, no manifest, no fsync. The segment sizes are CLIP's:
its packets (ffprobe) summed per segment of --segment-s seconds per track, so the files have the
sizes cuecast's segments have (less the few hundred bytes of CMAF boxes per part). The streams
are spread evenly over a segment duration, as independent publishers are, and CLIP loops as the
publishers' `-stream_loop -1` does. Runs until SIGTERM/SIGINT.

benches/density/run.sh runs it as the server `floor` (SERVERS="... floor ..."): its CPU time
(utime+stime) is measured over the same window as a server's, so (cuecast-norec + floor) /
cuecast-norec is the ratio recording would have if it cost only the kernel's write of its bytes
into the page cache (and ext4's allocation of a file per segment).
"""

import argparse
import os
import signal
import subprocess
import sys
import time


def segment_sizes(clip, segment_s):
    """{"video": [bytes per segment], "audio": [...]} of CLIP's packets."""
    kinds = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=index,codec_type", "-of", "csv=p=0", clip],
        check=True, capture_output=True, text=True).stdout.split()
    kind_of = {}
    for line in kinds:
        index, kind = line.split(",")[:2]
        kind_of[index] = kind
    packets = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "packet=stream_index,pts_time,size", "-of", "csv=p=0", clip],
        check=True, capture_output=True, text=True).stdout.split()
    sizes = {"video": {}, "audio": {}}
    for line in packets:
        index, pts, size = line.split(",")[:3]
        kind = kind_of.get(index)
        if kind not in sizes or pts == "N/A":
            continue
        k = int(float(pts) // segment_s)
        sizes[kind][k] = sizes[kind].get(k, 0) + int(size)
    out = {}
    for kind, by_segment in sizes.items():
        if by_segment:
            out[kind] = [by_segment.get(k, 0) for k in range(max(by_segment) + 1)]
    return out


def write_file(path, data):
    """One new file, one write of the memoryview `data` (looping only on a short write)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = data
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clip", required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--segment-s", type=float, default=2.0)
    args = ap.parse_args()

    sizes = segment_sizes(args.clip, args.segment_s)
    if not sizes:
        sys.exit(f"floor: no audio or video packets in {args.clip}")
    # A view: slicing it copies nothing (the bytes go from this buffer to the kernel only).
    buffer = memoryview(os.urandom(max(max(s) for s in sizes.values())))
    for i in range(1, args.n + 1):
        for kind in sizes:
            os.makedirs(os.path.join(args.dir, f"s{i}", kind), exist_ok=True)

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    start = time.monotonic()
    step = args.segment_s / args.n
    tick = 0  # one stream's segment per tick: stream tick % n, its segment tick // n
    while not stop:
        due = start + args.segment_s + tick * step  # a segment is complete a duration in
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
            continue
        i, msn = tick % args.n + 1, tick // args.n
        for kind, per_segment in sizes.items():
            size = per_segment[msn % len(per_segment)]
            write_file(os.path.join(args.dir, f"s{i}", kind, f"seg{msn}.m4s"), buffer[:size])
        tick += 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
