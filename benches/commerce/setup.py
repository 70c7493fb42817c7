#!/usr/bin/env python3
"""Driven by benches/commerce/run.sh (Python stdlib only).

  setup.py catalog SAMPLE_CSV OUT_CSV
      One product per distinct product id of the Instacart sample (ids kept as they are, so the
      shopper events of benches/events name the same products). The sample has no names: titles
      are generated from grocery word lists as benches/catalog.rs does (brand, a made-up product
      line name, adjective, noun, size; category in Instacart's department > aisle style), the
      price as benches/events/load.py makes it up from the id. Prints the product count.

  setup.py floor OUT_CSV DB MIGRATION
      The SQLite floor beside `cuecast catalog import`: the same rows as the server stores them
      (id, the product's JSON, updated_at_ms) INSERTed with one executemany in one transaction
      (WAL, synchronous FULL, the server's migration). Prints the seconds.

  setup.py shows URL OUT_CSV HOSTS SHOWS OUT_DIR
      Through the API: HOSTS hosts (signup, `host` granted with the admin token, login) and SHOWS
      scheduled shows (stream `demo`, in the coming weeks, 6-12 catalog products each). Then
      writes the request paths wrk draws from (OUT_DIR/{product,search,shows,show}.paths) and,
      for the nginx peer, OUT_DIR/www/NAME.json: a real cuecast response of that read, the one of
      median size among the paths sampled. Prints one JSON line per read (paths, sizes).
"""
import csv
import json
import random
import sqlite3
import sys
import time
import urllib.parse
import urllib.request

TOKEN = "dev-admin-token"

BRANDS = ["Organic Valley", "Green Acres", "Sunrise", "Bella", "Nature's Path", "Old Mill",
          "Blue Harbor", "Happy Farms", "Golden Grove", "Pure Leaf", "Maple Ridge", "Coastal",
          "Urban Pantry", "Kettle", "Silver Spoon", "Wild Oats", "Red Barn", "Evergreen",
          "Morning Star", "Stonewall"]
ADJECTIVES = ["organic", "unsweetened", "roasted", "smoked", "creamy", "crunchy", "vanilla",
              "chocolate", "strawberry", "honey", "spicy", "original", "lightly salted",
              "whole grain", "gluten free", "sparkling", "cold brew", "extra virgin", "aged",
              "sweet", "garlic", "lemon", "cinnamon", "blueberry", "coconut", "almond", "toasted",
              "wild", "fresh", "reduced fat"]
NOUNS = [("yogurt", "dairy eggs > yogurt"), ("cheddar", "dairy eggs > packaged cheese"),
         ("milk", "dairy eggs > milk"), ("butter", "dairy eggs > butter"),
         ("granola", "breakfast > cereal"), ("oatmeal", "breakfast > hot cereal granola"),
         ("pancake mix", "breakfast > breakfast bakery"), ("coffee", "beverages > coffee"),
         ("tea", "beverages > tea"),
         ("sparkling water", "beverages > water seltzer sparkling water"),
         ("lemonade", "beverages > juice nectars"), ("tortilla chips", "snacks > chips pretzels"),
         ("crackers", "snacks > crackers"), ("cookies", "snacks > cookies cakes"),
         ("almonds", "snacks > nuts seeds dried fruit"),
         ("salsa", "pantry > preserved dips spreads"),
         ("pasta sauce", "dry goods pasta > pasta sauce"),
         ("spaghetti", "dry goods pasta > dry pasta"), ("olive oil", "pantry > oils vinegars"),
         ("peanut butter", "pantry > spreads"), ("bananas", "produce > fresh fruits"),
         ("spinach", "produce > packaged vegetables fruits"),
         ("avocado", "produce > fresh fruits"), ("tomatoes", "produce > fresh vegetables"),
         ("chicken breast", "meat seafood > poultry counter"),
         ("salmon fillet", "meat seafood > seafood counter"),
         ("bacon", "meat seafood > hot dogs bacon sausage"), ("ice cream", "frozen > ice cream ice"),
         ("frozen pizza", "frozen > frozen pizza"), ("sourdough bread", "bakery > bread"),
         ("bagels", "bakery > breakfast bakery"), ("hummus", "deli > fresh dips tapenades"),
         ("shampoo", "personal care > hair care"), ("toothpaste", "personal care > oral hygiene"),
         ("dish soap", "household > dish detergents"), ("paper towels", "household > paper goods")]
SYLLABLES = ["va", "lo", "ra", "ki", "me", "su", "ta", "no", "bel", "mar", "quin", "do", "ri", "sa",
             "lu", "ven", "tor", "ca", "mi", "zo", "pe", "gra", "fel", "ho"]
SIZES = ["8 oz", "12 oz", "16 oz", "32 oz", "1 lb", "2 lb", "6 ct", "12 ct", "1 gal", "500 ml"]
COLUMNS = ["id", "title", "brand", "category", "price", "currency", "image_url", "url",
           "availability", "attributes.size"]


def products_of(sample_csv):
    ids = []
    seen = set()
    with open(sample_csv, newline="") as f:
        for row in csv.DictReader(f):
            pid = row["product_id"]
            if pid not in seen:
                seen.add(pid)
                ids.append(pid)
    ids.sort(key=int)
    rng = random.Random(25)
    out = []
    for pid in ids:
        brand = rng.choice(BRANDS)
        noun, category = rng.choice(NOUNS)
        adjective = rng.choice(ADJECTIVES)
        size = rng.choice(SIZES)
        line = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()
        out.append({
            "id": pid,
            "title": f"{brand} {line} {adjective} {noun} {size}",
            "brand": brand,
            "category": category,
            "price": f"{int(pid) % 1500 / 100 + 0.99:.2f}",
            "currency": "USD",
            "image_url": f"https://shop.example/i/{pid}.jpg",
            "url": f"https://shop.example/p/{pid}",
            "availability": "in_stock",
            "attributes.size": size,
        })
    return out


def read_catalog(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def cmd_catalog(sample_csv, out_csv):
    products = products_of(sample_csv)
    with open(out_csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(products)
    print(len(products))


def cmd_floor(out_csv, db, migration):
    rows = read_catalog(out_csv)
    now = int(time.time() * 1000)
    docs = []
    for r in rows:
        doc = {k: v for k, v in r.items() if not k.startswith("attributes.")}
        doc["attributes"] = {"size": r["attributes.size"]}
        docs.append((r["id"], json.dumps(doc), now))
    start = time.monotonic()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.executescript(open(migration).read())
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO catalog_products (id, doc, updated_at_ms) VALUES (?, ?, ?)", docs)
    conn.execute("COMMIT")
    conn.close()
    print(f"{time.monotonic() - start:.3f}")


def call(url, method="GET", body=None, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=30) as r:
        raw = r.read()
    return raw


def queries_of(products, count, rng):
    """Two words of at least 4 letters of a product's title, in title order (as a shopper who saw
    the product would type them): `creamy yogurt`, `Organic granola`, `Kimesu coffee`..."""
    out = []
    while len(out) < count:
        p = rng.choice(products)
        words = [w for w in p["title"].split(" ") if len(w) >= 4 and w.isalpha()]
        words = list(dict.fromkeys(words))
        if len(words) < 2:
            continue
        a, b = sorted(rng.sample(range(len(words)), 2))
        out.append(f"{words[a]} {words[b]}")
    return out


def cmd_shows(url, out_csv, hosts, shows, out_dir):
    import os
    products = read_catalog(out_csv)
    ids = [p["id"] for p in products]
    rng = random.Random(2025)
    tokens = []
    for i in range(hosts):
        name = f"host{i + 1}"
        password = "correct horse battery"
        call(f"{url}/api/signup", "POST", {"username": name, "password": password})
        call(f"{url}/api/users/{name}/capabilities", "PUT",
             {"capabilities": ["send", "host"]}, TOKEN)
        login = json.loads(call(f"{url}/api/login", "POST",
                                {"username": name, "password": password}))
        tokens.append(login["token"])
    show_ids = []
    now = time.time()
    for i in range(shows):
        featured = rng.sample(ids, rng.randint(6, 12))
        lead = next(p for p in products if p["id"] == featured[0])
        start = time.gmtime(now + 86400 * (1 + i % 28) + 3600 * (i % 12))
        body = {
            "title": f"{lead['brand']} live: {lead['category'].split(' > ')[-1]} picks #{i + 1}",
            "description": "Tastings, recipes and this week's deals from the aisle, "
                           "with a product card for everything we open.",
            "stream": "demo",
            "scheduled_start": time.strftime("%Y-%m-%dT%H:00:00Z", start),
            "cover_image_url": f"https://shop.example/covers/{i + 1}.jpg",
            "tags": ["grocery", lead["category"].split(" > ")[0].replace(" ", "-")],
            "products": featured,
        }
        created = json.loads(call(f"{url}/api/shows", "POST", body, tokens[i % hosts]))
        show_ids.append(created["id"])

    reads = {
        "product": [f"/api/catalog/products/{pid}" for pid in ids],
        "search": ["/api/catalog/products?q=" + urllib.parse.quote(q)
                   for q in queries_of(products, 500, rng)],
        "shows": ["/api/shows?state=scheduled"],
        "show": [f"/api/shows/{sid}" for sid in show_ids],
    }
    os.makedirs(f"{out_dir}/www", exist_ok=True)
    for name, paths in reads.items():
        with open(f"{out_dir}/{name}.paths", "w") as f:
            f.write("\n".join(paths) + "\n")
        sample = paths if len(paths) <= 500 else rng.sample(paths, 500)
        bodies = sorted((call(url + p) for p in sample), key=len)
        median = bodies[len(bodies) // 2]
        with open(f"{out_dir}/www/{name}.json", "wb") as f:
            f.write(median)
        extra = {}
        if name == "search":
            totals = [json.loads(b)["total"] for b in bodies]
            extra = {"queries_with_hits": sum(1 for t in totals if t > 0),
                     "median_total": sorted(totals)[len(totals) // 2]}
        if name == "shows":
            extra = {"shows": len(json.loads(median)["shows"])}
        print(json.dumps({"read": name, "paths": len(paths), "sampled": len(sample),
                          "bytes_min": len(bodies[0]), "bytes_median": len(median),
                          "bytes_max": len(bodies[-1]), **extra}))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "catalog":
        cmd_catalog(*args)
    elif cmd == "floor":
        cmd_floor(*args)
    elif cmd == "shows":
        cmd_shows(args[0], args[1], int(args[2]), int(args[3]), args[4])
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
