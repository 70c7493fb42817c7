#!/usr/bin/env python3
"""Driven by benches/events/run.sh: replays the Instacart sample's order lines as shopper events
and POSTs them in batches to /api/events from several keep-alive connections.

Every order line becomes a `purchase` (sent as the shop's backend, with the admin token) and
IMPRESSIONS impressions + CLICKS clicks by the same shopper's page (no token); each line names a
show (the order's hour of day) and a cue (its add-to-cart position), so analytics have something
to group. Prices are made up from the product id (the sample has none). Bodies are built before
the clock starts; the client then only sends them.

  load.py URL CSV CONNECTIONS BATCH LABEL SHOWS_JSON   (prints one JSON line; SHOWS_JSON maps
                                                       the hour "00".."23" to a show id)
  load.py --sqlite-floor CSV BATCH DB SCHEMA   (the same rows INSERTed straight into SQLite)
"""
import csv
import http.client
import json
import sqlite3
import sys
import threading
import time
import urllib.parse

TOKEN = "dev-admin-token"
IMPRESSIONS, CLICKS = 2, 1


def events_of(csv_path, shows):
    """(purchases, page events) of the sample; `shows` maps the order's hour to a show id."""
    purchases, page = [], []
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            product = row["product_id"]
            show = shows[f"{int(row['order_hour_of_day']):02d}"]
            cue = f"cue-{int(float(row['add_to_cart_order'] or 1)) % 20}"
            visitor = f"visitor-{row['user_id']}"
            common = {"show": show, "product": product, "cue": cue}
            price = f"{int(product) % 1500 / 100 + 0.99:.2f}"
            purchases.append({"type": "purchase", "user": f"user-{row['user_id']}",
                              "visitor": visitor, "order": row["order_id"], "quantity": 1,
                              "price": price, **common})
            for kind, n in (("impression", IMPRESSIONS), ("click", CLICKS)):
                page.extend({"type": kind, "visitor": visitor, **common} for _ in range(n))
    return purchases, page


def batches(events, size, token):
    for at in range(0, len(events), size):
        chunk = events[at:at + size]
        yield token, len(chunk), json.dumps({"events": chunk}).encode()


def interleave(a, b):
    """Purchase and page batches mixed evenly, as a live show sends them."""
    out, step = [], max(1, len(b) // max(1, len(a)))
    bi = 0
    for item in a:
        out.append(item)
        out.extend(b[bi:bi + step])
        bi += step
    out.extend(b[bi:])
    return out


def run_http(url, work, connections):
    parsed = urllib.parse.urlsplit(url)
    lock = threading.Lock()
    next_index = [0]
    latencies, failures = [], []

    def worker():
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
        local = []
        while True:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= len(work):
                break
            token, _, body = work[i]
            headers = {"Content-Type": "application/json"}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            t0 = time.perf_counter()
            conn.request("POST", "/api/events", body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            local.append(time.perf_counter() - t0)
            if response.status not in (200, 202, 204):
                failures.append((response.status, payload[:200]))
        conn.close()
        with lock:
            latencies.extend(local)

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, latencies, failures


def quantile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def sqlite_floor(csv_path, size, db, schema):
    """Inserts the same events, one transaction of one executemany per batch, WAL, the server's
    schema (its migration file): the storage floor without HTTP, JSON or validation."""
    purchases, page = events_of(csv_path, {f"{h:02d}": f"show-{h:02d}" for h in range(24)})
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    with open(schema) as f:
        conn.executescript(f.read())
    cols = ("type", "show", "product", "cue", "user", "visitor", "order_id", "quantity", "price",
            "ts_ms", "received_ms")
    sql = f"INSERT OR IGNORE INTO events ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    now = int(time.time() * 1000)
    rows = [(e["type"], e["show"], e.get("product"), e.get("cue"), e.get("user"), e.get("visitor"),
             e.get("order"), e.get("quantity", 1), e.get("price"), now, now)
            for e in purchases + page]
    start = time.perf_counter()
    for at in range(0, len(rows), size):
        conn.execute("BEGIN")
        conn.executemany(sql, rows[at:at + size])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    print(json.dumps({"peer": "sqlite-floor", "events": len(rows),
                      "events_per_s": round(len(rows) / elapsed)}))


def main():
    if sys.argv[1] == "--sqlite-floor":
        sqlite_floor(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
        return
    url, csv_path, connections, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    label = sys.argv[5]
    with open(sys.argv[6]) as f:
        shows = json.load(f)
    purchases, page = events_of(csv_path, shows)
    work = interleave(list(batches(purchases, size, TOKEN)), list(batches(page, size, None)))
    events = sum(n for _, n, _ in work)
    elapsed, latencies, failures = run_http(url, work, connections)
    print(json.dumps({
        "server": label, "connections": connections, "batch": size, "batches": len(work),
        "events": events, "purchases": len(purchases), "seconds": round(elapsed, 2),
        "events_per_s": round(events / elapsed),
        "p50_ms": round(quantile(latencies, 0.5) * 1000, 2),
        "p99_ms": round(quantile(latencies, 0.99) * 1000, 2),
        "failures": len(failures), "first_failure": repr(failures[0]) if failures else None,
    }))


if __name__ == "__main__":
    main()
