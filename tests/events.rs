//! Shopper events end to end against a real server: page events and shop purchases carrying cue
//! ids add up per cue, per product and per show in `/api/shows/{id}/analytics` (checked against
//! numbers worked out by hand), visitors are linked to the users they log in as, a restart keeps
//! every event; bad batches are refused whole with the field named, oversized ones with 413,
//! a page's purchase with 403, a client over its rate with 429.

mod common;

use common::{Server, call};
use serde_json::{Value, json};

const ADMIN: &str = "dev-admin-token";
thread_local! {
    /// The show this test's events go to, made by [`open_show`] (each test runs on its own
    /// thread, with its own server).
    static SHOW: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// The id of this test's show.
fn show() -> String {
    SHOW.with(|id| id.borrow().clone())
}

/// Schedules a show on stream `demo` as the host whose token is `host`, and makes it this
/// test's show: events name it, and they name an existing show or get 404.
fn open_show(server: &Server, host: &str) {
    let body = json!({ "title": "Spring drop", "stream": "demo",
                       "scheduled_start": "2030-01-01T18:00:00Z" })
    .to_string();
    let (status, _, created) = call("POST", &server.url("/api/shows"), Some(host), Some(&body));
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("show id").to_string();
    SHOW.with(|show| *show.borrow_mut() = id);
}

/// POSTs `events` (a JSON array) to /api/events; (status, Retry-After, body).
fn post(server: &Server, token: Option<&str>, events: Value) -> (u16, Option<String>, Value) {
    let body = json!({ "events": events }).to_string();
    let (status, headers, body) = call("POST", &server.url("/api/events"), token, Some(&body));
    let retry_after = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, retry_after, body)
}

fn analytics(server: &Server, token: Option<&str>) -> (u16, Value) {
    let url = server.url(&format!("/api/shows/{}/analytics", show()));
    let (status, _, body) = call("GET", &url, token, None);
    (status, body)
}

/// Signs `user` up, grants `caps` as admin, logs in again: a token carrying them.
fn user_with(server: &Server, user: &str, caps: &[&str]) -> String {
    let creds = json!({ "username": user, "password": "long enough" }).to_string();
    let (status, _, _) = call("POST", &server.url("/api/signup"), None, Some(&creds));
    assert_eq!(status, 201, "signup {user}");
    let url = server.url(&format!("/api/users/{user}/capabilities"));
    let grant = json!({ "capabilities": caps }).to_string();
    assert_eq!(call("PUT", &url, Some(ADMIN), Some(&grant)).0, 200);
    let (status, _, body) = call("POST", &server.url("/api/login"), None, Some(&creds));
    assert_eq!(status, 200, "login {user}: {body}");
    body["token"].as_str().expect("token").to_string()
}

/// A page event of visitor `v` in the show.
fn page(kind: &str, visitor: &str, product: Option<&str>, cue: Option<&str>) -> Value {
    let mut event = json!({ "type": kind, "visitor": visitor, "show": show() });
    if let Some(product) = product {
        event["product"] = product.into();
    }
    if let Some(cue) = cue {
        event["cue"] = cue.into();
    }
    event
}

/// The counts of an analytics entry, in the order of [`counts`]' arguments.
fn counts(entry: &Value) -> (u64, u64, u64, u64, u64, u64, String) {
    let n = |key: &str| {
        entry[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key} in {entry}"))
    };
    (
        n("impressions"),
        n("clicks"),
        n("cta_clicks"),
        n("add_to_carts"),
        n("purchases"),
        n("units"),
        entry["revenue"].as_str().expect("revenue").to_string(),
    )
}

fn find<'a>(list: &'a Value, key: &str, id: &str) -> &'a Value {
    list.as_array()
        .and_then(|items| items.iter().find(|item| item[key] == id))
        .unwrap_or_else(|| panic!("no {key} {id} in {list}"))
}

#[test]
fn attribution_adds_up_per_cue_and_product_links_visitors_and_survives_a_restart() {
    let mut server = Server::start();
    let host = user_with(&server, "hana", &["send", "host"]);
    open_show(&server, &host);
    let rose = Some("rose-50ml");
    let musk = Some("musk-30ml");
    let (c_rose, c_musk) = (Some("cue-rose"), Some("cue-musk"));

    // Three anonymous viewers watch the show while two product cues run.
    let mut events = Vec::new();
    for v in ["v1", "v2", "v3"] {
        events.push(page("view_show", v, None, None));
        events.push(page("impression", v, rose, c_rose));
    }
    events.push(page("click", "v1", rose, c_rose));
    events.push(page("click", "v2", rose, c_rose));
    events.push(page("cta_click", "v1", rose, c_rose));
    let mut cart = page("add_to_cart", "v1", rose, c_rose);
    cart["quantity"] = 2.into();
    cart["price"] = "49.00".into();
    events.push(cart);
    events.push(page("impression", "v2", musk, c_musk));
    events.push(page("impression", "v3", musk, c_musk));
    events.push(page("click", "v3", musk, c_musk));
    events.push(page("add_to_cart", "v3", musk, c_musk));
    // A click from the shelf, with no cue on screen.
    events.push(page("click", "v2", rose, None));
    let (status, _, body) = post(&server, None, Value::Array(events));
    assert_eq!((status, &body), (202, &json!({ "accepted": 15 })));

    // v2 logs in as dave; the page sends his token with the visitor id it kept.
    let dave = user_with(&server, "dave", &["send"]);
    let (status, _, body) = post(
        &server,
        Some(&dave),
        json!([page("view_show", "v2", None, None)]),
    );
    assert_eq!(status, 202, "{body}");

    // The shop's backend reports the orders: alice was visitor v1.
    let purchase = |order: &str, user: &str, product: &str, qty: u32, price: &str| {
        json!({ "type": "purchase", "order": order, "user": user, "show": show(),
                "product": product, "quantity": qty, "price": price })
    };
    let mut o1 = purchase("o1", "alice", "rose-50ml", 2, "49.00");
    o1["cue"] = "cue-rose".into();
    o1["visitor"] = "v1".into();
    let mut o2_musk = purchase("o2", "bob", "musk-30ml", 1, "19.99");
    o2_musk["cue"] = "cue-musk".into();
    // Bought while the musk cue was on screen: a cross-sell the musk moment gets credit for.
    let mut o2_rose = purchase("o2", "bob", "rose-50ml", 1, "45.50");
    o2_rose["cue"] = "cue-musk".into();
    let (status, _, body) = post(&server, Some(ADMIN), json!([o1.clone(), o2_musk, o2_rose]));
    assert_eq!(status, 202, "{body}");
    // The backend retries o1: recorded once.
    assert_eq!(post(&server, Some(ADMIN), json!([o1])).0, 202);
    // A shop's own token (the shop capability) works as the admin's does.
    let shop = user_with(&server, "shop-backend", &["shop"]);
    let o3 = purchase("o3", "carol", "musk-30ml", 3, "0.10");
    let (status, _, body) = post(&server, Some(&shop), json!([o3]));
    assert_eq!(status, 202, "{body}");

    // Who may read the figures.
    assert_eq!(analytics(&server, None).0, 401);
    assert_eq!(analytics(&server, Some(&dave)).0, 403);
    assert_eq!(analytics(&server, Some("v1.forged.token")).0, 401);
    // Another host may not read hana's show; an unknown show is 404.
    let ivan = user_with(&server, "ivan", &["send", "host"]);
    assert_eq!(analytics(&server, Some(&ivan)).0, 403);
    let unknown = server.url("/api/shows/show-0000000000000000/analytics");
    assert_eq!(call("GET", &unknown, Some(ADMIN), None).0, 404);
    let (status, figures) = analytics(&server, Some(&host));
    assert_eq!(status, 200, "{figures}");
    assert_eq!(analytics(&server, Some(ADMIN)), (200, figures.clone()));

    // By hand. cue-rose: 3 impressions, 2 clicks, 1 CTA, 1 add-to-cart, o1 (2 × 49.00).
    assert_eq!(figures["show"], show());
    assert_eq!(figures["currency"], "USD");
    let cues = &figures["cues"];
    assert_eq!(
        counts(find(cues, "cue", "cue-rose")),
        (3, 2, 1, 1, 1, 2, "98.00".into())
    );
    // cue-musk: 2 impressions, 1 click, 1 add-to-cart, o2's two lines (19.99 + 45.50).
    let musk_cue = find(cues, "cue", "cue-musk");
    assert_eq!(counts(musk_cue), (2, 1, 0, 1, 2, 2, "65.49".into()));
    assert_eq!(
        counts(find(&musk_cue["products"], "product", "rose-50ml")),
        (0, 0, 0, 0, 1, 1, "45.50".into())
    );
    assert_eq!(cues.as_array().map(Vec::len), Some(2));
    // Per product, with and without a cue: rose adds the shelf click; musk adds o3 (3 × 0.10).
    let products = &figures["products"];
    assert_eq!(
        counts(find(products, "product", "rose-50ml")),
        (3, 3, 1, 1, 2, 3, "143.50".into())
    );
    assert_eq!(
        counts(find(products, "product", "musk-30ml")),
        (2, 1, 0, 1, 2, 4, "20.29".into())
    );
    let totals = &figures["totals"];
    assert_eq!(counts(totals), (5, 4, 1, 2, 4, 7, "163.79".into()));
    assert_eq!(totals["views"], 4);
    // alice (was v1), dave (was v2), v3, bob, carol: 5, not 7.
    assert_eq!(figures["shoppers"], 5);

    // Events name a show and products that exist: an unknown show is 404 naming the field,
    // and once a catalog is loaded, so is a product it does not hold. Nothing is recorded.
    let stray = |show: &str, product: &str| json!([{ "type": "click", "visitor": "v9", "show": show, "product": product }]);
    let (status, _, body) = post(&server, Some(ADMIN), stray("show-0000000000000000", "x"));
    assert_eq!(
        (status, &body["field"]),
        (404, &json!("events[0].show")),
        "{body}"
    );
    let catalog = json!([{ "id": "rose-50ml", "title": "Rose 50 ml", "price": "49.00",
                           "currency": "USD" }])
    .to_string();
    let url = server.url("/api/catalog/products");
    assert_eq!(call("POST", &url, Some(ADMIN), Some(&catalog)).0, 200);
    let (status, _, body) = post(&server, Some(ADMIN), stray(&show(), "musk-30ml"));
    assert_eq!(
        (status, &body["field"]),
        (404, &json!("events[0].product")),
        "{body}"
    );
    assert_eq!(
        post(&server, Some(ADMIN), stray(&show(), "rose-50ml")).0,
        202
    );
    // With a catalog, a show's featured products must be in it.
    let show_url = server.url(&format!("/api/shows/{}", show()));
    let featured = |ids: Value| json!({ "products": ids }).to_string();
    let both = featured(json!(["rose-50ml", "musk-30ml"]));
    let (status, _, body) = call("PATCH", &show_url, Some(&host), Some(&both));
    assert_eq!(
        (status, &body["field"]),
        (400, &json!("products[1]")),
        "{body}"
    );
    let rose_only = featured(json!(["rose-50ml"]));
    let (status, _, body) = call("PATCH", &show_url, Some(&host), Some(&rose_only));
    assert_eq!(
        (status, &body["products"]),
        (200, &json!(["rose-50ml"])),
        "{body}"
    );
    let (_, after) = analytics(&server, Some(ADMIN));
    // That one click on top of the figures above.
    assert_eq!(
        counts(&after["totals"]),
        (5, 5, 1, 2, 4, 7, "163.79".into()),
        "{after}"
    );

    // A restart keeps every event.
    let data_dir = server.dir.path().join("data");
    server.terminate();
    assert!(
        server
            .wait_exit(std::time::Duration::from_secs(20))
            .is_some()
    );
    let restarted = Server::start_with(&[("CUECAST_SERVER_DATA_DIR", data_dir.to_str().unwrap())]);
    assert_eq!(analytics(&restarted, Some(ADMIN)), (200, after));
}

#[test]
fn bad_batches_are_refused_whole_naming_the_field() {
    let server = Server::start_with(&[
        ("CUECAST_EVENTS_RATE_PER_CLIENT_PER_S", "1"),
        ("CUECAST_EVENTS_RATE_BURST_EVENTS", "150"),
    ]);
    let host = user_with(&server, "hana", &["send", "host"]);
    open_show(&server, &host);
    let click = || page("click", "v1", Some("p1"), Some("c1"));
    let with = |key: &str, value: Value| {
        let mut event = click();
        event[key] = value;
        event
    };
    let cases = [
        (
            with("type", "buy".into()),
            "events[1].type",
            r#"unknown type "buy""#,
        ),
        (with("show", Value::Null), "events[1].show", "required"),
        (
            with("product", 5.into()),
            "events[1].product",
            "invalid type",
        ),
        (
            with("quantity", 2.into()),
            "events[1].quantity",
            "not used with click",
        ),
        (
            with("price", "4.5".into()),
            "events[1].price",
            "not used with click",
        ),
        (with("ts", "yesterday".into()), "events[1].ts", "neither"),
        (
            with("colour", "red".into()),
            "events[1].colour",
            "unknown field `colour`",
        ),
        (
            with("visitor", Value::Null),
            "events[1].visitor",
            "one of user or visitor",
        ),
    ];
    for (bad, field, reason) in cases {
        let (status, _, body) = post(&server, None, json!([click(), bad]));
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["field"], field, "{body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            error.starts_with(field) && error.contains(reason),
            "{field}: {error}"
        );
    }
    // Every bad event of a batch is listed.
    let mut cart = page("add_to_cart", "v1", Some("p1"), None);
    cart["quantity"] = 0.into();
    let (status, _, body) = post(&server, None, json!([with("type", "buy".into()), cart]));
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["field"], "events[0].type");
    assert_eq!(body["errors"][1]["field"], "events[1].quantity");

    // Oversized: more events than events.max_batch_events, or a body over max_body_bytes.
    let (status, _, body) = post(&server, None, Value::Array(vec![click(); 101]));
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("101 events")
    );
    let padding = "x".repeat(70_000);
    let (status, _, _) = post(&server, None, json!([with("visitor", padding.into())]));
    assert_eq!(status, 413);

    // Purchases come from the shop's backend, not the page (nor a shopper's own token).
    let purchase = json!({ "type": "purchase", "visitor": "v1", "show": show(), "product": "p1",
                           "order": "o1", "price": "10.00" });
    let (status, _, body) = post(&server, None, json!([click(), purchase.clone()]));
    assert_eq!(
        (status, &body["field"]),
        (403, &json!("events[1].type")),
        "{body}"
    );
    let shopper = user_with(&server, "erin", &["send"]);
    assert_eq!(post(&server, Some(&shopper), json!([purchase])).0, 403);
    // A page cannot speak for a user; a shopper not for another.
    let (status, _, body) = post(&server, None, json!([with("user", "alice".into())]));
    assert_eq!((status, &body["field"]), (403, &json!("events[0].user")));
    assert_eq!(
        post(
            &server,
            Some(&shopper),
            json!([with("user", "alice".into())])
        )
        .0,
        403
    );
    assert_eq!(post(&server, Some("not-a-token"), json!([click()])).0, 401);

    // Nothing of a refused batch was recorded.
    let (status, figures) = analytics(&server, Some(ADMIN));
    assert_eq!(status, 200);
    assert_eq!(figures["totals"]["clicks"], 0, "{figures}");

    // Over the client's rate (1 event/s, 150 at once): 429 with Retry-After; the shop's backend
    // is not limited.
    let batch = Value::Array(vec![click(); 100]);
    assert_eq!(post(&server, None, batch.clone()).0, 202);
    let (status, retry_after, body) = post(&server, None, batch.clone());
    assert_eq!(status, 429, "{body}");
    let retry_after: u64 = retry_after
        .and_then(|s| s.parse().ok())
        .expect("Retry-After");
    assert!((45..=51).contains(&retry_after), "{retry_after}");
    assert_eq!(post(&server, Some(ADMIN), batch).0, 202);
    let (_, figures) = analytics(&server, Some(ADMIN));
    assert_eq!(figures["totals"]["clicks"], 200);
    assert_eq!(figures["cues"][0]["clicks"], 200);
}

#[test]
fn shoppers_clicks_raise_a_product_in_catalog_search_also_after_a_restart() {
    let mut server = Server::start();
    let host = user_with(&server, "hana", &["send", "host"]);
    open_show(&server, &host);
    let catalog = json!([
        { "id": "rose-a", "title": "Rose perfume", "price": "10.00", "currency": "USD" },
        { "id": "rose-b", "title": "Rose perfume", "price": "10.00", "currency": "USD" },
    ])
    .to_string();
    let url = server.url("/api/catalog/products");
    assert_eq!(call("POST", &url, Some(ADMIN), Some(&catalog)).0, 200);
    let first_of = |server: &Server| {
        let search = server.url("/api/catalog/products?q=rose%20perfume");
        let (status, _, body) = call("GET", &search, None, None);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["total"], 2, "{body}");
        body["products"][0]["id"].as_str().expect("id").to_string()
    };
    let first = || first_of(&server);
    // The same text score for both: whichever ranks second gets the shoppers' attention.
    let before = first();
    let other = if before == "rose-a" {
        "rose-b"
    } else {
        "rose-a"
    };
    let clicks: Vec<Value> = ["v1", "v2", "v3"]
        .iter()
        .map(|v| page("click", v, Some(other), None))
        .collect();
    assert_eq!(post(&server, None, Value::Array(clicks)).0, 202);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while first() != other {
        assert!(
            std::time::Instant::now() < deadline,
            "{other} never ranked first after three clicks"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Popularity is rebuilt from the recorded events at startup.
    server = server.restart(&[]);
    assert_eq!(first_of(&server), other);
}

/// Waits until the current second of the minute is below 50, so that what follows (a few
/// seconds) falls in one minute.
fn away_from_a_minute_boundary() {
    use std::time::{SystemTime, UNIX_EPOCH};
    let since = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
    let second = since.as_secs() % 60;
    if second >= 50 {
        std::thread::sleep(std::time::Duration::from_secs(61 - second));
    }
}

#[test]
fn heartbeats_count_distinct_viewers_now_and_per_minute() {
    let server = Server::start();
    let host = user_with(&server, "hana", &["host"]);
    open_show(&server, &host);
    let show_url = server.url(&format!("/api/shows/{}", show()));

    // Before it goes live: no viewers, an empty timeline.
    let (status, _, body) = call("GET", &format!("{show_url}/viewers"), None, None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({ "now": 0, "timeline": [] }));
    let (_, _, body) = call("GET", &show_url, None, None);
    assert_eq!(body["viewers"], 0, "{body}");

    away_from_a_minute_boundary();
    let live = json!({ "state": "live" }).to_string();
    let (status, _, body) = call("PATCH", &show_url, Some(&host), Some(&live));
    assert_eq!(status, 200, "{body}");

    // Three visitors; two of them send a second heartbeat (as the page does every 20 s).
    let heartbeat =
        |visitor: &str| json!({ "type": "view_show", "visitor": visitor, "show": show() });
    let (status, _, body) = post(&server, None, json!([heartbeat("v1"), heartbeat("v2")]));
    assert_eq!(status, 202, "{body}");
    let (status, _, body) = post(&server, None, json!([heartbeat("v3")]));
    assert_eq!(status, 202, "{body}");
    let (status, _, body) = post(&server, None, json!([heartbeat("v1"), heartbeat("v2")]));
    assert_eq!(status, 202, "{body}");

    let (_, _, body) = call("GET", &show_url, None, None);
    assert_eq!(body["viewers"], 3, "{body}");
    let (_, _, list) = call("GET", &server.url("/api/shows"), None, None);
    let listed = find(&list["shows"], "id", &show());
    assert_eq!(listed["viewers"], 3, "{listed}");

    let (status, _, body) = call("GET", &format!("{show_url}/viewers"), None, None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["now"], 3, "{body}");
    let timeline = body["timeline"].as_array().expect("timeline");
    assert_eq!(timeline.len(), 1, "one minute on air: {body}");
    assert_eq!(timeline[0]["viewers"], 3, "{body}");
    let t = timeline[0]["t"].as_str().expect("t");
    assert!(
        t.ends_with(":00Z") && t.len() == 20,
        "a whole minute in RFC 3339: {t}"
    );

    // An unknown show is 404.
    let (status, _, _) = call("GET", &server.url("/api/shows/show-0/viewers"), None, None);
    assert_eq!(status, 404);
}
