#!/usr/bin/env python3
"""LL-HLS players for benches/cluster/run.sh: PLAYERS players on the edge node (B) and one probe on
the owner (A), each looping as hls.js does at the live edge: a blocking playlist reload for the
preload-hinted part (_HLS_msn/_HLS_part), then that part. Plain asyncio over keep-alive HTTP/1.1
connections (one per player), no dependency.

For every (msn, part) the probe on A and players on B both received, the edge's added latency is
the time B's blocking reload completed minus the time A's completed (same clock, same process).
Prints one JSON object: parts seen, the probe's request count, added latency percentiles (ms),
errors. Usage: players.py EDGE_MEDIA_URL OWNER_MEDIA_URL PLAYERS DURATION_S
"""

import asyncio
import json
import re
import sys
import time
from urllib.parse import urlsplit

HINT = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"')
MSN = re.compile(r"part(\d+)\.m4s")


class Conn:
    def __init__(self, url):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.reader = self.writer = None

    async def get(self, path):
        for attempt in range(2):
            try:
                if self.writer is None:
                    self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
                self.writer.write(
                    f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode()
                )
                await self.writer.drain()
                head = await self.reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                status = int(lines[0].split()[1])
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                if "content-length" in headers:
                    body = await self.reader.readexactly(int(headers["content-length"]))
                else:  # chunked
                    body = b""
                    while True:
                        size = int((await self.reader.readline()).strip(), 16)
                        chunk = await self.reader.readexactly(size + 2)
                        if size == 0:
                            break
                        body += chunk[:-2]
                return status, headers, body
            except (ConnectionError, asyncio.IncompleteReadError, OSError):
                self.writer = None
                if attempt:
                    raise
        raise RuntimeError("unreachable")


async def player(url, deadline, done, stats, name):
    """Loops until deadline; records completion time of each blocking reload in done[(msn, part)]."""
    split = urlsplit(url)
    base_path = split.path.rsplit("/", 1)[0]
    conn = Conn(url)
    status, _, body = await conn.get(split.path)
    if status != 200:
        stats["errors"] += 1
        return
    text = body.decode()
    while time.monotonic() < deadline:
        hint = HINT.search(text)
        if not hint:
            stats["errors"] += 1
            await asyncio.sleep(0.2)
            status, _, body = await conn.get(split.path)
            text = body.decode()
            continue
        uri = hint.group(1)
        # The part number is global; the playlist directive needs (msn, part index): read
        # them from the hinted part's position — the last EXT-X-PART of the playlist plus one.
        msn, index = next_part(text)
        status, _, body = await conn.get(f"{split.path}?_HLS_msn={msn}&_HLS_part={index}")
        now = time.monotonic()
        stats["requests"] += 1
        if status != 200:
            stats["errors"] += 1
            await asyncio.sleep(0.1)
            continue
        done.setdefault((msn, index), now)
        text = body.decode()
        status, _, _ = await conn.get(f"{base_path}/{uri}")
        stats["requests"] += 1
        if status != 200:
            stats["errors"] += 1
    if conn.writer:
        conn.writer.close()


def next_part(text):
    """(msn, part index) of the preload-hinted part: after the last listed part."""
    seq = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text).group(1))
    msn, index = seq, 0
    for line in text.splitlines():
        if line.startswith("#EXT-X-PART:"):
            index += 1
        elif line and not line.startswith("#"):
            msn += 1
            index = 0
    return msn, index


async def main():
    edge_url, owner_url, players, duration = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    deadline = time.monotonic() + duration
    probe_done, probe_stats = {}, {"requests": 0, "errors": 0}
    edge_done = [dict() for _ in range(players)]
    edge_stats = {"requests": 0, "errors": 0}
    tasks = [player(owner_url, deadline, probe_done, probe_stats, "probe")]
    tasks += [player(edge_url, deadline, edge_done[i], edge_stats, f"p{i}") for i in range(players)]
    await asyncio.gather(*tasks, return_exceptions=True)
    added = sorted(
        (t - probe_done[key]) * 1000.0
        for done in edge_done
        for key, t in done.items()
        if key in probe_done
    )

    def pct(p):
        return round(added[min(len(added) - 1, int(p / 100.0 * len(added)))], 1) if added else None

    print(json.dumps({
        "players": players,
        "parts_seen_by_probe": len(probe_done),
        "probe_requests": probe_stats["requests"],
        "edge_requests": edge_stats["requests"],
        "errors": edge_stats["errors"] + probe_stats["errors"],
        "samples": len(added),
        "added_ms_p50": pct(50),
        "added_ms_p99": pct(99),
    }))


asyncio.run(main())
