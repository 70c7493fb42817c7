//! The catalog end to end on a real server: upsert, get, search with a typo and a prefix,
//! facets, paging; bad rows named and nothing written; 413 and 401; `cuecast catalog import`
//! of CSV and JSON (a bad file writes nothing); a restart keeps the catalog; a cue and its
//! product given by id only, filled from the catalog.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Publisher, Server, call};

const TOKEN: &str = "dev-admin-token";

/// (status, JSON body) of an API call.
fn api(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<String>,
) -> (u16, serde_json::Value) {
    let (status, _, json) = call(method, url, token, body.as_deref());
    (status, json)
}

fn get(server: &Server, path: &str) -> (u16, serde_json::Value) {
    api("GET", &server.url(path), None, None)
}

fn product(id: &str, title: &str, brand: &str, category: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id, "title": title, "brand": brand, "category": category,
        "price": "49.00", "currency": "USD",
        "image_url": format!("https://shop.example/i/{id}.jpg"),
        "url": format!("https://shop.example/p/{id}"),
        "attributes": {"size": "50 ml"}, "availability": "in_stock"
    })
}

fn upsert(server: &Server, products: &serde_json::Value) -> (u16, serde_json::Value) {
    api(
        "POST",
        &server.url("/api/catalog/products"),
        Some(TOKEN),
        Some(products.to_string()),
    )
}

fn ids(page: &serde_json::Value) -> Vec<String> {
    page["products"]
        .as_array()
        .expect("products")
        .iter()
        .map(|p| p["id"].as_str().expect("id").to_string())
        .collect()
}

fn facet(page: &serde_json::Value, name: &str) -> Vec<(String, u64)> {
    page["facets"][name]
        .as_array()
        .expect("facet")
        .iter()
        .map(|f| {
            (
                f["value"].as_str().unwrap_or_default().to_string(),
                f["count"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

fn sample() -> serde_json::Value {
    serde_json::json!([
        product("sku-1", "Rose perfume", "Maison Rose", "beauty > fragrance"),
        product("sku-2", "Vanilla perfume", "Atelier", "beauty > fragrance"),
        product("sku-3", "Rose hand cream", "Maison Rose", "beauty > skin"),
        product("sku-4", "Organic bananas", "Farm", "grocery > fruit"),
    ])
}

#[test]
fn upsert_get_search_facets_and_bad_input() {
    let server = Server::start_with(&[
        ("CUECAST_CHAT_ENABLED", "false"),
        ("CUECAST_CATALOG_MAX_REQUEST_BYTES", "65536"),
    ]);
    let (status, body) = upsert(&server, &sample());
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["upserted"], 4);

    let (status, body) = get(&server, "/api/catalog/products/sku-1");
    assert_eq!(status, 200);
    assert_eq!(body["title"], "Rose perfume");
    assert_eq!(body["category"], "beauty > fragrance");
    assert_eq!(body["attributes"]["size"], "50 ml");
    assert_eq!(get(&server, "/api/catalog/products/nope").0, 404);

    // One typo in a two-word query.
    let (status, page) = get(&server, "/api/catalog/products?q=rose%20perfme");
    assert_eq!(status, 200, "{page}");
    assert_eq!(ids(&page), ["sku-1"]);
    // The last word as a prefix; facets over every match.
    let (_, page) = get(&server, "/api/catalog/products?q=perf&limit=1");
    assert_eq!(page["total"], 2);
    assert_eq!(ids(&page).len(), 1);
    assert_eq!(facet(&page, "category"), [("beauty".to_string(), 2)]);
    assert_eq!(
        facet(&page, "brand"),
        [("Atelier".to_string(), 1), ("Maison Rose".to_string(), 1)]
    );
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let (_, next) = get(
        &server,
        &format!("/api/catalog/products?q=perf&limit=1&cursor={cursor}"),
    );
    assert_eq!(ids(&next).len(), 1);
    assert_ne!(ids(&next), ids(&page));
    assert!(next["next_cursor"].is_null());
    // Browsing a category, drilled down one level.
    let (_, page) = get(&server, "/api/catalog/products?category=beauty");
    assert_eq!(ids(&page), ["sku-1", "sku-2", "sku-3"]);
    assert_eq!(
        facet(&page, "category"),
        [
            ("beauty > fragrance".to_string(), 2),
            ("beauty > skin".to_string(), 1)
        ]
    );

    // A bad row: 400 naming row, field and value; nothing of the batch written.
    let mut bad = serde_json::json!([
        product("new-0", "New 0", "B", "c"),
        product("new-1", "New 1", "B", "c"),
        product("new-2", "New 2", "B", "c"),
        product("new-3", "New 3", "B", "c"),
    ]);
    bad[3]["price"] = "12,5".into();
    let (status, body) = upsert(&server, &bad);
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], "products[3].price");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("not a decimal \"12,5\""),
        "{body}"
    );
    assert_eq!(get(&server, "/api/catalog/products/new-0").0, 404);

    let (status, body) = get(&server, "/api/catalog/products?limit=1000");
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("limit")),
        "{body}"
    );
    let (status, body) = get(&server, "/api/catalog/products?colour=red");
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("colour")),
        "{body}"
    );
    let (status, body) = get(&server, "/api/catalog/products?cursor=garbage");
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("cursor")),
        "{body}"
    );

    // 413 over catalog.max_request_bytes.
    let big: Vec<serde_json::Value> = (0..300)
        .map(|i| {
            product(
                &format!("big-{i}"),
                "A fairly long product title",
                "Brand",
                "a > b",
            )
        })
        .collect();
    let (status, body) = upsert(&server, &serde_json::Value::Array(big));
    assert_eq!(status, 413, "{body}");
    assert_eq!(get(&server, "/api/catalog/products/big-0").0, 404);

    // Writes need the admin token.
    let url = server.url("/api/catalog/products/sku-4");
    assert_eq!(api("DELETE", &url, None, None).0, 401);
    assert_eq!(api("DELETE", &url, Some("wrong"), None).0, 401);
    assert_eq!(
        call(
            "POST",
            &server.url("/api/catalog/products"),
            None,
            Some("[]")
        )
        .0,
        401
    );
    assert_eq!(api("DELETE", &url, Some(TOKEN), None).0, 204);
    assert_eq!(api("DELETE", &url, Some(TOKEN), None).0, 404);
    assert_eq!(get(&server, "/api/catalog/products/sku-4").0, 404);
    let (_, page) = get(&server, "/api/catalog/products?q=bananas");
    assert_eq!(page["total"], 0);
}

/// Runs `cuecast catalog import FILE` on the server's data dir: (success, stdout + stderr).
fn import(server: &Server, file: &std::path::Path) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_cuecast"))
        .args(["catalog", "import"])
        .arg(file)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CUECAST_SERVER_DATA_DIR", server.dir.path().join("data"))
        .output()
        .expect("run cuecast catalog import");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn import_csv_and_json_and_a_restart_keeps_the_catalog() {
    let env = [("CUECAST_CHAT_ENABLED", "false")];
    let server = Server::start_with(&env);
    assert_eq!(upsert(&server, &sample()).0, 200);
    let files = tempfile::tempdir().expect("tempdir");
    let csv = files.path().join("products.csv");
    std::fs::write(
        &csv,
        "id,title,brand,category,price,currency,attributes.flavour,availability\n\
         tea-1,Earl Grey tea,Twinings,grocery > tea,4.50,GBP,bergamot,low_stock\n\
         tea-2,\"Green tea, sencha\",,grocery > tea,3.90,GBP,,\n",
    )
    .expect("write csv");
    let (ok, out) = import(&server, &csv);
    assert!(ok, "{out}");
    assert!(out.contains("imported 2 products"), "{out}");
    let json = files.path().join("products.json");
    std::fs::write(
        &json,
        serde_json::json!([product(
            "cof-1",
            "Espresso beans",
            "Lavazza",
            "grocery > coffee"
        )])
        .to_string(),
    )
    .expect("write json");
    let (ok, out) = import(&server, &json);
    assert!(ok, "{out}");
    assert!(out.contains("imported 1 products"), "{out}");
    let bad = files.path().join("bad.csv");
    std::fs::write(
        &bad,
        "id,title,price,currency\nok-1,Fine,1.00,USD\nbad-1,Broken,\"12,5\",USD\n",
    )
    .expect("write bad");
    let (ok, out) = import(&server, &bad);
    assert!(!ok, "{out}");
    assert!(
        out.contains("products[1].price") && out.contains("line 3"),
        "{out}"
    );

    let server = server.restart(&env);
    for id in ["sku-1", "sku-4", "tea-1", "tea-2", "cof-1"] {
        assert_eq!(
            get(&server, &format!("/api/catalog/products/{id}")).0,
            200,
            "{id}"
        );
    }
    assert_eq!(
        get(&server, "/api/catalog/products/ok-1").0,
        404,
        "the bad file wrote nothing"
    );
    let (_, tea) = get(&server, "/api/catalog/products/tea-1");
    assert_eq!(tea["attributes"]["flavour"], "bergamot");
    assert_eq!(tea["availability"], "low_stock");
    // The rebuilt index searches the imported rows (one typo) and the attributes.
    let (_, page) = get(&server, "/api/catalog/products?q=eral%20grey");
    assert_eq!(ids(&page), ["tea-1"]);
    let (_, page) = get(&server, "/api/catalog/products?q=bergamot");
    assert_eq!(ids(&page), ["tea-1"]);
    let (_, page) = get(&server, "/api/catalog/products?category=grocery");
    assert_eq!(page["total"], 4);
}

#[test]
fn a_cue_with_only_a_product_id_is_filled_from_the_catalog() {
    let server = Server::start_with(&[("CUECAST_CHAT_ENABLED", "false")]);
    assert_eq!(upsert(&server, &sample()).0, 200);
    let _publisher = Publisher::ffmpeg(&server.rtmp_url("demo-key"), 20);
    let url = server.url("/api/streams/demo/cues");
    let body = r#"{"kind": "product", "duration_s": 5, "product": {"id": "sku-1"}}"#;
    let deadline = Instant::now() + Duration::from_secs(30);
    let (status, cue) = loop {
        let (status, cue) = api("POST", &url, Some(TOKEN), Some(body.into()));
        // 404 until the stream is live, 503 until its first frame.
        if !matches!(status, 404 | 503) || Instant::now() > deadline {
            break (status, cue);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(status, 201, "{cue}");
    let product = &cue["product"];
    assert_eq!(product["id"], "sku-1");
    assert_eq!(product["title"], "Rose perfume");
    assert_eq!(product["price"], "49.00");
    assert_eq!(product["currency"], "USD");
    assert_eq!(product["cta"]["url"], "https://shop.example/p/sku-1");
    let unknown = r#"{"kind": "product", "product": {"id": "sku-404"}}"#;
    let (status, body) = api("POST", &url, Some(TOKEN), Some(unknown.into()));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], "product.id");
}
