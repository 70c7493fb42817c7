#!/usr/bin/env python3
"""Driven by benches/recs/run.sh (Python stdlib only; the catalog CSV and `call` come from
benches/commerce/setup.py).

  setup.py shop URL CATALOG_CSV SHOWS OUT_JSON
      Through the API: a host (signup, `host` granted with the admin token), SHOWS scheduled
      shows in the coming days (10 catalog products each, tags from their departments) and one
      live show (PATCHed live) featuring 20 products. Writes their ids to OUT_JSON.

  setup.py events URL SAMPLE_CSV SHOP_JSON CONNECTIONS BATCH
      Every order line of the Instacart sample as a `purchase` of `user-N` in order `order_id`
      (the admin token: the shop's backend) plus one `click` by the same shopper's page, in the
      live show, users' orders in `order_number` order, lines in `add_to_cart_order`; BATCH events
      per POST, the users split over CONNECTIONS keep-alive connections (each user's events from
      one connection, in order). Prints one JSON line (events, seconds, events/s).

  setup.py latency URL SAMPLE_CSV CATALOG_CSV SHOP_JSON RUNS
      Event to visible, RUNS times each: (a) bought-together — two orders pairing a product
      bought once in the sample with another; from the POST of the second order until
      `bought-together?product=A` ranks B first; (b) trending — 5 clicks on one of the 200 most bought
      products; from the POST until its score in `trending?category=<its aisle>&limit=100` rises. Polls as fast as
      one connection answers. Prints one JSON line per kind (p50/p99/max ms).

  setup.py paths URL SAMPLE_CSV CATALOG_CSV SHOP_JSON OUT_DIR
      The request paths wrk draws from, per query (OUT_DIR/NAME.paths) and all of them mixed
      (mix.paths), and for the nginx peer OUT_DIR/www/NAME.json: a real cuecast answer of the
      query, the median size of those sampled. Prints one JSON line per query.
"""
import csv
import http.client
import json
import os
import random
import statistics
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "commerce"))
from setup import TOKEN, call, read_catalog  # noqa: E402


def api(url, path, method="GET", body=None):
    return json.loads(call(url + path, method, body, TOKEN))


def cmd_shop(url, catalog_csv, shows, out_json):
    products = read_catalog(catalog_csv)
    rng = random.Random(26)
    name, password = "recs-host", "correct horse battery"
    call(f"{url}/api/signup", "POST", {"username": name, "password": password})
    call(f"{url}/api/users/{name}/capabilities", "PUT", {"capabilities": ["host"]}, TOKEN)
    now = time.time()
    ids = []
    for i in range(int(shows) + 1):
        featured = rng.sample(products, 20 if i == 0 else 10)
        start = now + (0 if i == 0 else 3600 * (2 + 7 * i))
        body = {"title": f"Show {i}", "stream": "demo", "host": name,
                "scheduled_start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start)),
                "tags": sorted({p["category"].split(" > ")[0] for p in featured})[:5],
                "products": [p["id"] for p in featured]}
        ids.append(api(url, "/api/shows", "POST", body)["id"])
    api(url, f"/api/shows/{ids[0]}", "PATCH", {"state": "live"})
    json.dump({"live": ids[0], "scheduled": ids[1:]}, open(out_json, "w"))


def lines_of(sample_csv):
    with open(sample_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    rows.sort(key=lambda r: (int(r["user_id"]), int(r["order_number"]),
                             int(float(r["add_to_cart_order"] or 0))))
    return rows


def cmd_events(url, sample_csv, shop_json, connections, batch):
    show = json.load(open(shop_json))["live"]
    connections, batch = int(connections), int(batch)
    per_user = {}
    for r in lines_of(sample_csv):
        user = f"user-{r['user_id']}"
        common = {"show": show, "product": r["product_id"]}
        per_user.setdefault(user, []).extend([
            {"type": "purchase", "user": user, "order": r["order_id"], "quantity": 1,
             "price": f"{int(r['product_id']) % 1500 / 100 + 0.99:.2f}", **common},
            {"type": "click", "visitor": f"visitor-{r['user_id']}", **common}])
    lanes = [[] for _ in range(connections)]
    for i, (user, events) in enumerate(sorted(per_user.items())):
        lanes[i % connections].extend(events)
    bodies = [[json.dumps({"events": lane[at:at + batch]}).encode()
               for at in range(0, len(lane), batch)] for lane in lanes]
    host = urllib.parse.urlparse(url)
    failures = []

    def send(lane):
        conn = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
        for body in lane:
            conn.request("POST", "/api/events", body, {"Content-Type": "application/json",
                                                        "Authorization": f"Bearer {TOKEN}"})
            r = conn.getresponse()
            r.read()
            if r.status != 202:
                failures.append(r.status)

    threads = [threading.Thread(target=send, args=(lane,)) for lane in bodies]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.monotonic() - start
    count = sum(len(lane) for lane in lanes)
    assert not failures, failures[:5]
    print(json.dumps({"events": count, "seconds": round(seconds, 2),
                      "events_per_s": round(count / seconds)}))


def percentiles(ms):
    ms = sorted(ms)
    return {"runs": len(ms), "p50_ms": round(statistics.median(ms), 2),
            "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 2),
            "max_ms": round(ms[-1], 2)}


def cmd_latency(url, sample_csv, catalog_csv, shop_json, runs):
    show = json.load(open(shop_json))["live"]
    runs = int(runs)
    counts = {}
    for r in lines_of(sample_csv):
        counts[r["product_id"]] = counts.get(r["product_id"], 0) + 1
    category = {p["id"]: p["category"] for p in read_catalog(catalog_csv)}
    once = sorted(p for p, n in counts.items() if n == 1)
    popular = sorted(counts, key=lambda p: -counts[p])[:200]
    rng = random.Random(7)
    host = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(host.hostname, host.port, timeout=30)

    def request(method, path, body=None):
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"null")

    def post(events):
        status, answer = request("POST", "/api/events", {"events": events})
        assert status == 202, answer

    def wait(path, accept):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status, answer = request("GET", path)
            assert status == 200, answer
            if accept(answer):
                return
        raise SystemExit(f"not visible within 10 s: {path}")

    together, trending = [], []
    for run in range(runs):
        a, b = once[run % len(once)], rng.choice(popular)

        def order(n):
            return [{"type": "purchase", "user": "latency", "show": show, "product": p,
                     "order": f"latency-{run}-{n}", "quantity": 1, "price": "1.00"}
                    for p in (a, b)]
        post(order(1))
        start = time.monotonic()
        post(order(2))
        wait(f"/api/recommendations/bought-together?product={a}&limit=1",
             lambda ans: [i["product_id"] for i in ans["items"]] == [b])
        together.append((time.monotonic() - start) * 1000)

        # A popular product: in its aisle's top 100 before the clicks, so a rise shows.
        c = rng.choice(popular)
        path = ("/api/recommendations/trending?limit=100&category="
                + urllib.parse.quote(category[c]))

        def score(ans):
            return next((i["score"] for i in ans["items"] if i["product_id"] == c), None)
        before = score(request("GET", path)[1])
        start = time.monotonic()
        post([{"type": "click", "visitor": f"latency-{run}", "show": show, "product": c}
              for _ in range(5)])
        wait(path, lambda ans: (s := score(ans)) is not None and (before is None or s > before))
        trending.append((time.monotonic() - start) * 1000)
    print(json.dumps({"visible": "bought-together", **percentiles(together)}))
    print(json.dumps({"visible": "trending", **percentiles(trending)}))


def cmd_paths(url, sample_csv, catalog_csv, shop_json, out_dir):
    shop = json.load(open(shop_json))
    rng = random.Random(2026)
    rows = lines_of(sample_csv)
    counts = {}
    for r in rows:
        counts[r["product_id"]] = counts.get(r["product_id"], 0) + 1
    products = sorted(counts)
    users = sorted({f"user-{r['user_id']}" for r in rows})
    orders = {}
    for r in rows:
        orders.setdefault(r["order_id"], []).append(r["product_id"])
    carts = [ps[:3] for ps in orders.values() if len(ps) >= 3]
    aisles = sorted({p["category"] for p in read_catalog(catalog_csv)})
    departments = sorted({a.split(" > ")[0] for a in aisles})
    q = urllib.parse.quote
    base = "/api/recommendations"
    queries = {
        "together": [f"{base}/bought-together?product={rng.choice(products)}"
                     for _ in range(2000)],
        "cart": [f"{base}/bought-together?" + "&".join(f"product={p}" for p in rng.choice(carts))
                 for _ in range(2000)],
        "related": [f"{base}/related?product={rng.choice(products)}" for _ in range(2000)],
        "trending": [f"{base}/trending"]
                    + [f"{base}/trending?category={q(c)}" for c in departments + aisles]
                    + [f"{base}/trending?window=900", f"{base}/trending?window=21600"],
        "foryou": [f"{base}/for-you?user={u}" for u in users] + [f"{base}/for-you"],
        "upcoming": [f"{base}/upcoming-shows?user={u}" for u in users]
                    + [f"{base}/upcoming-shows"],
        "show": [f"/api/shows/{shop['live']}/products"]
                + [f"/api/shows/{s}/products" for s in shop["scheduled"]],
    }
    os.makedirs(f"{out_dir}/www", exist_ok=True)
    mix = []
    for name, paths in queries.items():
        with open(f"{out_dir}/{name}.paths", "w") as f:
            f.write("\n".join(paths) + "\n")
        mix.extend(rng.sample(paths, min(len(paths), 300)))
        sample = paths if len(paths) <= 200 else rng.sample(paths, 200)
        answers = [call(url + p, token=TOKEN) for p in sample]
        bodies = sorted(answers, key=len)
        median = bodies[len(bodies) // 2]
        with open(f"{out_dir}/www/{name}.json", "wb") as f:
            f.write(median)
        parsed = [json.loads(b) for b in answers]
        print(json.dumps({"query": name, "paths": len(paths), "sampled": len(sample),
                          "bytes_median": len(median),
                          "empty": sum(1 for a in parsed if not a["items"]),
                          "fallback": sum(1 for a in parsed if a["fallback"])}))
    rng.shuffle(mix)
    with open(f"{out_dir}/mix.paths", "w") as f:
        f.write("\n".join(mix) + "\n")
    sample = sorted((call(url + p, token=TOKEN) for p in rng.sample(mix, 300)), key=len)
    with open(f"{out_dir}/www/mix.json", "wb") as f:
        f.write(sample[len(sample) // 2])
    print(json.dumps({"query": "mix", "paths": len(mix),
                      "bytes_median": len(sample[len(sample) // 2])}))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    {"shop": cmd_shop, "events": cmd_events, "latency": cmd_latency,
     "paths": cmd_paths}[cmd](*args)


if __name__ == "__main__":
    main()
