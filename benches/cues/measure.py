#!/usr/bin/env python3
"""Driven by benches/cues/run.sh: POSTs cues to a live cuecast stream and measures delay and
accuracy (see run.sh). Prints a Markdown table."""
import json
import re
import struct
import sys
import time
import urllib.request

BASE, COUNT, INTERVAL = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
TOKEN = "dev-admin-token"
BODY = json.dumps({
    "kind": "product", "at": "now", "duration_s": 15,
    "product": {"id": "sku-123", "title": "Rose perfume 50 ml", "price": "49.00", "currency": "USD",
                "image_url": "https://shop.example/i/sku-123.jpg",
                "cta": {"label": "Buy now", "url": "https://shop.example/p/sku-123"}},
    "data": {}}).encode()


def get(url):
    with urllib.request.urlopen(url, timeout=20) as r:
        return r.read()


def post():
    req = urllib.request.Request(f"{BASE}/api/streams/demo/cues", data=BODY, method="POST",
                                 headers={"Authorization": f"Bearer {TOKEN}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=20) as r:
        return json.loads(r.read())


def playlist_url(rendition):
    master = get(f"{BASE}/hls/demo/index.m3u8").decode()
    uri = next(u for u in re.findall(r'(?:URI=")?([^"\s]+/' + rendition + r'/playlist\.m3u8)', master))
    return f"{BASE}/hls/demo/{uri}"


def boxes(data):
    at = 0
    while at + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[at:at + 8])
        yield kind.decode("latin1"), data[at:at + size]
        at += size


def timescale(init):
    def find(data, path):
        for kind, b in boxes(data):
            if kind == path[0]:
                return b[8:] if len(path) == 1 else find(b[8:], path[1:])
    mdhd = find(init, ["moov", "trak", "mdia", "mdhd"])
    return struct.unpack(">I", mdhd[20:24] if mdhd[0] == 1 else mdhd[12:16])[0]


def sample_times(fragment):
    """Presentation times (ticks) of the samples of each moof/traf in a segment."""
    out = []
    for kind, moof in boxes(fragment):
        if kind != "moof":
            continue
        for k, traf in boxes(moof[8:]):
            if k != "traf":
                continue
            children = dict((kk, b[8:]) for kk, b in boxes(traf[8:]) if kk != "trun")
            tfhd, tfdt = children["tfhd"], children["tfdt"]
            flags = struct.unpack(">I", tfhd[0:4])[0] & 0xFFFFFF
            at, default = 8, 0
            at += 8 if flags & 1 else 0
            at += 4 if flags & 2 else 0
            if flags & 8:
                default = struct.unpack(">I", tfhd[at:at + 4])[0]
            dts = struct.unpack(">Q", tfdt[4:12])[0] if tfdt[0] == 1 else struct.unpack(">I", tfdt[4:8])[0]
            for kk, trun in boxes(traf[8:]):
                if kk != "trun":
                    continue
                t = trun[8:]
                version, tflags = t[0], struct.unpack(">I", t[0:4])[0] & 0xFFFFFF
                count = struct.unpack(">I", t[4:8])[0]
                at = 8 + (4 if tflags & 1 else 0) + (4 if tflags & 4 else 0)
                for _ in range(count):
                    duration = default
                    if tflags & 0x100:
                        duration = struct.unpack(">I", t[at:at + 4])[0]; at += 4
                    at += 4 if tflags & 0x200 else 0
                    at += 4 if tflags & 0x400 else 0
                    cto = 0
                    if tflags & 0x800:
                        cto = struct.unpack(">i" if version else ">I", t[at:at + 4])[0]; at += 4
                    out.append(dts + cto)
                    dts += duration
    return out


def pct(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    k = (len(v) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


video, audio = playlist_url("source"), playlist_url("audio")
visible, blocking, plain_get, cues = [], [], [], []
for _ in range(COUNT):
    text = get(video).decode()
    hint = re.search(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part(\d+)\.(\d+)\.m4s"', text)
    t = time.monotonic()
    get(video)
    plain_get.append(time.monotonic() - t)
    # The reload a LL-HLS player has in flight for the next part, sent just before the POST.
    import threading
    result = {}

    def held():
        body = get(f"{video}?_HLS_msn={hint.group(1)}&_HLS_part={hint.group(2)}").decode()
        result["t"], result["body"] = time.monotonic(), body
    th = threading.Thread(target=held)
    th.start()
    time.sleep(0.01)
    t0 = time.monotonic()
    cue = post()
    while cue["id"] not in get(video).decode():
        pass
    visible.append(time.monotonic() - t0)
    th.join()
    if cue["id"] in result["body"]:
        blocking.append(max(0.0, result["t"] - t0))
    else:  # the held reload was answered before the POST landed: the next one carries it
        body = get(f"{video}?_HLS_msn={hint.group(1)}&_HLS_part={int(hint.group(2)) + 1}").decode()
        blocking.append(time.monotonic() - t0 if cue["id"] in body else float("nan"))
    cues.append(cue)
    time.sleep(INTERVAL)

# emsg time error, once every cue's segment is complete.
time.sleep(5)
errors = {"source": [], "audio": []}
frame_errors = []
for name, url in (("source", video), ("audio", audio)):
    base = url.rsplit("/", 1)[0]
    ts = timescale(get(f"{base}/init.mp4"))
    text = get(url).decode()
    found = {}
    frames = []
    for uri in re.findall(r"^(seg\d+\.m4s)$", text, re.M):
        seg = get(f"{base}/{uri}")
        if name == "source":
            frames.extend(sample_times(seg))
        for kind, b in boxes(seg):
            if kind == "emsg":
                pt = struct.unpack(">Q", b[16:24])[0]
                payload = b[b.find(b"com.cuecast.cue\0") + 16:]
                found[json.loads(payload)["id"]] = pt
    for cue in cues:
        if cue["id"] in found:
            errors[name].append(abs(found[cue["id"]] / ts - cue["media_time_s"]) * 1000)
            if name == "source" and frames:
                pt = found[cue["id"]]
                frame_errors.append(min(abs(pt - f) for f in frames) / ts * 1000)

ms = lambda v: f"{v * 1000:.1f} ms"
print(f"| measure ({len(cues)} cues) | p50 | p99 | max |")
print("|---|---|---|---|")
print(f"| POST → DATERANGE in a playlist GET | {ms(pct(visible, 50))} | {ms(pct(visible, 99))} | {ms(max(visible))} |")
print(f"| POST → held next-part reload returns with it | {ms(pct(blocking, 50))} | {ms(pct(blocking, 99))} | {ms(max(blocking))} |")
print(f"| peer: plain playlist GET, same run | {ms(pct(plain_get, 50))} | {ms(pct(plain_get, 99))} | {ms(max(plain_get))} |")
if frame_errors:
    print(f"| emsg time vs nearest video frame PTS ({len(frame_errors)} cues) | {pct(frame_errors, 50):.3f} ms | {pct(frame_errors, 99):.3f} ms | {max(frame_errors):.3f} ms |")
for name, e in errors.items():
    if e:
        print(f"| emsg time vs media_time_s of the frame latest at POST, {name} ({len(e)} cues) | {pct(e, 50):.3f} ms | {pct(e, 99):.3f} ms | {max(e):.3f} ms |")
    else:
        print(f"| emsg time error, {name} | no emsg found | | |")
