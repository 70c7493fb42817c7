#!/usr/bin/env python3
"""Builds the fuzz targets' seed corpora in tests/fuzz/corpus/<target>/ (not committed).

Real peers wherever a peer exists: the RTMP seeds are the exact bytes ffmpeg and GStreamer's
rtmp2sink send while publishing to a running `cuecast serve` (captured by a relay in the
middle); the FLV tag seeds are the tags of an FLV file ffmpeg writes, plus Enhanced RTMP HEVC and
AV1 tags built around the hvcC / av1C records that ffmpeg's libx265 / libaom write into MP4.
The rest (AMF0, chat frames, HTTP inputs, emsg/ID3) are small hand-written valid inputs.

    python3 tests/fuzz/seeds.py CUECAST_BINARY
"""

import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
HANDSHAKE = 1 + 2 * 1536


def write(target, name, data):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def relay_capture(upstream_port, limit=200_000):
    """Listens on a port; relays one connection to upstream, keeping what the client sent."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    captured = bytearray()

    def run():
        client, _ = server.accept()
        upstream = socket.create_connection(("127.0.0.1", upstream_port))

        def back():
            try:
                while (data := upstream.recv(65536)):
                    client.sendall(data)
            except OSError:
                pass  # the client side closed first

        threading.Thread(target=back, daemon=True).start()
        while len(captured) < limit and (data := client.recv(65536)):
            captured.extend(data)
            upstream.sendall(data)
        client.close()
        upstream.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return server.getsockname()[1], captured, thread


def run(args, **kw):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)


def rtmp_seeds(cuecast, work):
    rtmp_port = free_port()
    env = dict(os.environ,
               CUECAST_RTMP_LISTEN=f"127.0.0.1:{rtmp_port}",
               CUECAST_RTMPS_ENABLED="false",
               CUECAST_HTTP_LISTEN=f"127.0.0.1:{free_port()}",
               CUECAST_SRT_LISTEN=f"127.0.0.1:{free_port(socket.SOCK_DGRAM)}",
               CUECAST_CHAT_LISTEN=f"127.0.0.1:{free_port(socket.SOCK_DGRAM)}",
               CUECAST_SERVER_DATA_DIR=os.path.join(work, "data"),
               CUECAST_MEDIA_LADDER="[]")
    server = subprocess.Popen([cuecast, "serve"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", rtmp_port)).close()
                break
            except OSError:
                time.sleep(0.1)
        publishers = {
            "ffmpeg": lambda port: ["ffmpeg", "-hide_banner", "-nostdin", "-re",
                                    "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
                                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                                    "-t", "2", "-c:v", "libx264", "-profile:v", "high",
                                    "-preset", "veryfast", "-g", "30", "-bf", "2", "-b:v", "300k",
                                    "-c:a", "aac", "-b:a", "64k", "-f", "flv",
                                    f"rtmp://127.0.0.1:{port}/live/demo-key"],
            "rtmp2sink": lambda port: ["gst-launch-1.0", "-q",
                                       "videotestsrc", "num-buffers=60", "!",
                                       "video/x-raw,width=320,height=240,framerate=30/1", "!",
                                       "x264enc", "key-int-max=30", "!", "h264parse", "!",
                                       "flvmux", "name=m", "streamable=true", "!",
                                       "rtmp2sink", f"location=rtmp://127.0.0.1:{port}/live/demo-key",
                                       "audiotestsrc", "num-buffers=90", "!",
                                       "audio/x-raw,rate=48000", "!", "voaacenc", "!",
                                       "aacparse", "!", "m."],
        }
        for name, command in publishers.items():
            port, captured, thread = relay_capture(rtmp_port)
            subprocess.run(command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=60, check=False)
            thread.join(timeout=10)
            stream = bytes(captured[HANDSHAKE:])
            if len(stream) < 1000:
                raise SystemExit(f"seeds: captured only {len(stream)} bytes from {name}")
            # First byte: the slice size the target feeds with (1 + 64 * b).
            for cut, slicing in [(4_000, 0), (16_000, 3), (60_000, 64)]:
                write("rtmp_session", f"{name}-{cut}", bytes([slicing]) + stream[:cut])
    finally:
        server.terminate()
        server.wait(timeout=10)


def flv_tags(path):
    """(type, timestamp, body) of each tag of an FLV file."""
    data = open(path, "rb").read()
    at = struct.unpack(">I", data[5:9])[0] + 4
    while at + 11 <= len(data):
        kind = data[at]
        size = int.from_bytes(data[at + 1:at + 4], "big")
        ts = int.from_bytes(data[at + 4:at + 7], "big") | (data[at + 7] << 24)
        body = data[at + 11:at + 11 + size]
        yield kind, ts, body
        at += 11 + size + 4


def tag(video, ts, body):
    return bytes([1 if video else 0]) + struct.pack("<IH", ts, len(body)) + body


def mp4_box(data, name):
    at = data.find(name)
    if at < 4:
        raise SystemExit(f"seeds: no {name!r} box")
    size = struct.unpack(">I", data[at - 4:at])[0]
    return data[at + 4:at - 4 + size]


def flv_seeds(work):
    flv = os.path.join(work, "clip.flv")
    run(["ffmpeg", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30", "-f", "lavfi",
         "-i", "sine=sample_rate=48000", "-t", "1", "-c:v", "libx264", "-bf", "2", "-g", "15",
         "-c:a", "aac", "-b:a", "32k", "-f", "flv", flv])
    tags = [tag(kind == 9, ts, body) for kind, ts, body in flv_tags(flv) if kind in (8, 9)]
    write("flv_tags", "h264-aac", b"".join(tags[:12]))
    # Enhanced RTMP: [IsExHeader | FrameType << 4 | PacketType] FourCC payload.
    hevc = os.path.join(work, "hevc.mp4")
    run(["ffmpeg", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30", "-frames:v", "2",
         "-c:v", "libx265", "-x265-params", "log-level=error", "-tag:v", "hvc1", hevc])
    hvcc = mp4_box(open(hevc, "rb").read(), b"hvcC")
    ex = lambda frame, packet, fourcc, payload: bytes([0x80 | frame << 4 | packet]) + fourcc + payload
    write("flv_tags", "ertmp-hevc", tag(True, 0, ex(1, 0, b"hvc1", hvcc))
          + tag(True, 0, ex(1, 1, b"hvc1", b"\x00\x00\x00" + b"\x00\x00\x00\x05\x26\x01\xaf\x00\x00"))
          + tag(True, 33, ex(2, 3, b"hvc1", b"\x00\x00\x00\x05\x02\x01\xd0\x00\x00"))
          + tag(True, 66, ex(1, 2, b"hvc1", b"")))
    av1 = os.path.join(work, "av1.mp4")
    run(["ffmpeg", "-y", "-f", "lavfi", "-i", "testsrc2=size=64x64:rate=30", "-frames:v", "1",
         "-c:v", "libaom-av1", "-cpu-used", "8", av1])
    av1c = mp4_box(open(av1, "rb").read(), b"av1C")
    write("flv_tags", "ertmp-av1", tag(True, 0, ex(1, 0, b"av01", av1c))
          + tag(True, 0, ex(1, 1, b"av01", b"\x12\x00\x0a\x0b\x00\x00\x00\x24\xc4\xff\xdf\x00\x68")))


def amf0_string(s):
    return b"\x02" + struct.pack(">H", len(s)) + s.encode()


def hand_written():
    connect = (amf0_string("connect") + b"\x00" + struct.pack(">d", 1)
               + b"\x03" + struct.pack(">H", 3) + b"app" + amf0_string("live")
               + struct.pack(">H", 5) + b"tcUrl" + amf0_string("rtmp://h/live")
               + struct.pack(">H", 10) + b"fourCcList" + b"\x0a" + struct.pack(">I", 2)
               + amf0_string("hvc1") + amf0_string("av01") + b"\x00\x00\x09")
    write("amf0", "connect", connect)
    write("amf0", "ecma-array", b"\x08" + struct.pack(">I", 1) + struct.pack(">H", 5) + b"width"
          + b"\x00" + struct.pack(">d", 1280) + b"\x00\x00\x09" + b"\x05\x06\x01\x01")

    def frame(obj):
        body = json.dumps(obj).encode()
        return struct.pack(">I", len(body)) + body

    client = (frame({"type": "hello", "version": 1, "room": "demo", "token": "t", "backfill": 5})
              + frame({"type": "post", "text": "is it dishwasher safe?", "nonce": "n1",
                       "link": {"url": "https://shop.example/mug", "label": "Buy"},
                       "product": {"id": "sku", "title": "Mug", "price": "9.00", "currency": "USD",
                                   "cta": {"label": "Buy", "url": "https://shop.example"}}})
              + frame({"type": "delete", "id": 4}) + frame({"type": "slow_mode", "seconds": 5})
              + frame({"type": "timeout", "user": "x", "seconds": 60}))
    server = (frame({"type": "welcome", "room": "demo", "user": None, "capabilities": []})
              + frame({"type": "message", "id": 42, "room": "demo", "user": "hannah",
                       "role": "host", "kind": "link", "text": "mug of the day",
                       "link": {"url": "https://shop.example/mug", "label": "Buy"},
                       "sent_at_ms": 1764028800000, "session": "19ab3c",
                       "media_time_ms": 81234})
              + frame({"type": "presence", "count": 3}))
    write("chat_frames", "session", bytes([min(len(client), 255)]) + client + server)

    # chat_room: [policy] then steps [who][clock ×10 ms][length][frame body]; who: 0 anonymous,
    # 1 and 2 viewers (ann, bob), 3 a moderator, 4 a host.
    def step(who, clock, obj):
        body = json.dumps(obj).encode()
        return bytes([who, clock, len(body)]) + body

    product = {"id": "sku", "title": "Mug", "price": "9.00", "currency": "USD"}
    write("chat_room", "moderation", bytes([0]) + b"".join([
        step(4, 1, {"type": "post", "text": "mug of the day", "product": product}),
        step(1, 10, {"type": "post", "text": "love it https://shop.example/mug"}),
        step(2, 10, {"type": "post", "text": "cheaper at http://evil.example"}),
        step(0, 10, {"type": "post", "text": "anonymous hello"}),
        step(4, 5, {"type": "pin", "id": 2}),
        step(3, 5, {"type": "delete", "id": 2}),
        step(3, 5, {"type": "timeout", "user": "Bob", "seconds": 2}),
        step(2, 5, {"type": "post", "text": "am I muted?"}),
        step(2, 1, {"type": "hello", "version": 1, "room": "demo"}),
        step(2, 250, {"type": "hello", "version": 1, "room": "demo", "backfill": 3}),
        step(3, 1, {"type": "slow_mode", "seconds": 3}),
        step(1, 1, {"type": "post", "text": "one"}),
        step(1, 1, {"type": "post", "text": "two"}),
        step(3, 1, {"type": "ban", "user": "ann"}),
        step(3, 1, {"type": "unban", "user": "ann"}),
        step(4, 1, {"type": "unpin"}),
    ]))

    # packager: steps [flags][duration ms u16 LE]; flags 1 fragment start, 2 independent,
    # 4 new init, 8 interruption, 16 end.
    def chunk(flags, ms):
        return bytes([flags]) + struct.pack("<H", ms)

    live = b"".join(chunk(3 if i % 10 == 0 else 0, 200) for i in range(80))
    write("packager", "live-200ms", live)
    bframes = b"".join(chunk(3 if i % 9 == 0 else 0, [233, 267, 200][i % 3]) for i in range(60))
    write("packager", "bframes-reconnect-end", bframes + chunk(8 | 4 | 3, 200)
          + b"".join(chunk(3 if i % 10 == 0 else 0, 200) for i in range(1, 30)) + chunk(16, 0))

    http = {
        "directives": b"\x00_HLS_msn=10&_HLS_part=2&_HLS_skip=v2",
        "streamid": b"\x01#!::r=live/demo-key,m=publish",
        "streamid-plain": b"\x01publish:live/demo-key",
        "token": b"\x02eyJ1IjoiaCJ9.c2ln",
        "links": b"\x03see https://shop.example/x and www.evil.example/y or evil.example",
        "cue": b"\x04" + json.dumps({"kind": "product", "at": {"media_time_s": 12.5},
                                     "duration_s": 15,
                                     "product": {"id": "sku-123", "title": "Rose perfume",
                                                 "price": "49.00", "currency": "USD",
                                                 "image_url": "https://shop.example/i.jpg",
                                                 "cta": {"label": "Buy",
                                                         "url": "https://shop.example/b"}},
                                     "data": {"a": 1}}).encode(),
    }
    for name, data in http.items():
        write("http_inputs", name, data)

    def id3_frame(fid, payload):
        size = len(payload)
        syncsafe = bytes([(size >> 21) & 0x7f, (size >> 14) & 0x7f, (size >> 7) & 0x7f, size & 0x7f])
        return fid + syncsafe + b"\x00\x00" + payload

    frames = id3_frame(b"TXXX", b"\x03cuecast\x00{\"kind\":\"product\"}") + id3_frame(
        b"PRIV", b"com.cuecast\x00\x01\x02")
    n = len(frames)
    tag3 = b"ID3\x04\x00\x00" + bytes([(n >> 21) & 0x7f, (n >> 14) & 0x7f, (n >> 7) & 0x7f,
                                      n & 0x7f]) + frames
    scheme = b"https://aomedia.org/emsg/ID3\x00\x00"
    body = b"\x01\x00\x00\x00" + struct.pack(">IQII", 90000, 900000, 0xFFFFFFFF, 7) + scheme + tag3
    write("cue_carriage", "emsg-id3", struct.pack(">I", 8 + len(body)) + b"emsg" + body)
    write("cue_carriage", "id3", tag3)


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    with tempfile.TemporaryDirectory() as work:
        hand_written()
        flv_seeds(work)
        rtmp_seeds(os.path.abspath(sys.argv[1]), work)
    for target in sorted(os.listdir(CORPUS)):
        print(f"seeds: {target}: {len(os.listdir(os.path.join(CORPUS, target)))} inputs")


if __name__ == "__main__":
    main()
