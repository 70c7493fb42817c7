//! Shopper events: the body of `POST /api/events`, its validation (every error names its field,
//! `events[3].type`), who may send what, and the clamping of client timestamps to the server
//! clock. Pure: the caller passes the sender, the time and the limits.

use std::fmt;

use serde::Deserialize;

use super::Limits;
use crate::commerce::money::Amount;
use crate::commerce::product::{FieldError, check_currency, check_text};

/// Longest id (show, product, cue, order, user, visitor), characters.
pub const MAX_ID: usize = 128;
/// Largest `quantity` of one add-to-cart or purchase line.
pub const MAX_QUANTITY: u32 = 10_000;

/// What a shopper did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// Opened the show.
    ViewShow,
    /// A product was shown (a cue's card appeared, a shelf item scrolled into view).
    Impression,
    /// Clicked a product card.
    Click,
    /// Clicked the card's call to action ("Buy now").
    CtaClick,
    /// Put the product in the cart.
    AddToCart,
    /// Bought it (from the shop's backend only).
    Purchase,
}

impl EventType {
    /// Every type, in the order of the docs.
    pub const ALL: [EventType; 6] = [
        EventType::ViewShow,
        EventType::Impression,
        EventType::Click,
        EventType::CtaClick,
        EventType::AddToCart,
        EventType::Purchase,
    ];

    /// The name in the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ViewShow => "view_show",
            EventType::Impression => "impression",
            EventType::Click => "click",
            EventType::CtaClick => "cta_click",
            EventType::AddToCart => "add_to_cart",
            EventType::Purchase => "purchase",
        }
    }

    /// Parses a type name.
    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Whether the event carries a quantity (and may carry a price).
    fn has_quantity(self) -> bool {
        matches!(self, EventType::AddToCart | EventType::Purchase)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who sent a batch, from its bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sender {
    /// No token: a shopper's page. Events name a `visitor`, never a `user`.
    Page,
    /// A shopper's login token: events are theirs (`user` is filled in, or must match).
    User(String),
    /// The shop's backend (a token with the `shop` capability) or the admin token: may send
    /// purchases and any `user`.
    Shop,
}

/// One validated event, its time on the server clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub kind: EventType,
    /// The logged-in user, if known.
    pub user: Option<String>,
    /// The page's anonymous visitor id, if sent.
    pub visitor: Option<String>,
    /// The show it happened in.
    pub show: String,
    /// The product (every type but `view_show`).
    pub product: Option<String>,
    /// The product cue on screen, for per-moment attribution.
    pub cue: Option<String>,
    /// The shop's order id (purchases).
    pub order: Option<String>,
    /// Units (1 unless an add-to-cart or purchase says otherwise).
    pub quantity: u32,
    /// Unit price (purchases; optional on add-to-cart).
    pub price: Option<Amount>,
    /// When it happened, Unix milliseconds, clamped to the server clock.
    pub ts_ms: i64,
}

/// A client timestamp: Unix milliseconds or an RFC 3339 string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Timestamp {
    Millis(i64),
    Text(String),
}

/// One event as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    #[serde(rename = "type")]
    kind: String,
    user: Option<String>,
    visitor: Option<String>,
    show: Option<String>,
    product: Option<String>,
    cue: Option<String>,
    order: Option<String>,
    quantity: Option<u32>,
    price: Option<String>,
    currency: Option<String>,
    ts: Option<Timestamp>,
}

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBatch {
    events: Vec<RawEvent>,
}

/// Why a batch was refused; nothing of it is recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// More events than `events.max_batch_events` (413).
    #[error("{count} events in one batch; the limit is {max}")]
    TooMany {
        /// Events sent.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Malformed or invalid fields (400), every one found, in order.
    #[error("{}", .0.first().map(ToString::to_string).unwrap_or_default())]
    Invalid(Vec<FieldError>),
    /// The sender may not send this (403): a purchase without a shop token, another user's id.
    #[error("{0}")]
    Forbidden(FieldError),
}

fn field_error(field: String, reason: impl Into<String>) -> FieldError {
    FieldError {
        field,
        reason: reason.into(),
    }
}

/// Parses and validates a batch sent by `sender` at `now_ms` (Unix ms): all or nothing.
pub fn parse_batch(
    body: &[u8],
    sender: &Sender,
    now_ms: i64,
    limits: &Limits,
) -> Result<Vec<Event>, BatchError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let batch: RawBatch = serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let field = if path == "." { "body".into() } else { path };
        BatchError::Invalid(vec![field_error(field, err.into_inner().to_string())])
    })?;
    if batch.events.len() > limits.max_batch_events {
        return Err(BatchError::TooMany {
            count: batch.events.len(),
            max: limits.max_batch_events,
        });
    }
    if batch.events.is_empty() {
        return Err(BatchError::Invalid(vec![field_error(
            "events".into(),
            "must hold at least one event",
        )]));
    }
    let mut events = Vec::with_capacity(batch.events.len());
    let mut errors = Vec::new();
    for (index, raw) in batch.events.into_iter().enumerate() {
        match check_event(index, raw, sender, now_ms, limits) {
            Ok(event) => events.push(event),
            Err(Refusal::Forbidden(err)) => return Err(BatchError::Forbidden(err)),
            Err(Refusal::Invalid(err)) => errors.push(err),
        }
    }
    if errors.is_empty() {
        Ok(events)
    } else {
        Err(BatchError::Invalid(errors))
    }
}

/// Why one event was refused.
enum Refusal {
    Invalid(FieldError),
    Forbidden(FieldError),
}

fn check_event(
    index: usize,
    raw: RawEvent,
    sender: &Sender,
    now_ms: i64,
    limits: &Limits,
) -> Result<Event, Refusal> {
    let name = |field: &str| format!("events[{index}].{field}");
    let bad = |field: &str, reason: String| Refusal::Invalid(field_error(name(field), reason));
    let id = |field: &str, value: Option<String>| -> Result<Option<String>, Refusal> {
        match value {
            Some(value) => check_text(&name(field), &value, MAX_ID, true)
                .map(|()| Some(value))
                .map_err(Refusal::Invalid),
            None => Ok(None),
        }
    };
    let kind = EventType::parse(&raw.kind)
        .ok_or_else(|| bad("type", format!("unknown type {:?}", raw.kind)))?;
    if kind == EventType::Purchase && *sender != Sender::Shop {
        return Err(Refusal::Forbidden(field_error(
            name("type"),
            "purchase events come from the shop's backend: they need a token with the shop \
             capability (or the admin token)",
        )));
    }
    let show = id("show", raw.show)?.ok_or_else(|| bad("show", "required".into()))?;
    let product = id("product", raw.product)?;
    if product.is_none() && kind != EventType::ViewShow {
        return Err(bad("product", format!("required for {kind}")));
    }
    let cue = id("cue", raw.cue)?;
    let visitor = id("visitor", raw.visitor)?;
    let user = match (sender, id("user", raw.user)?) {
        (Sender::Shop, user) => user,
        (Sender::User(me), None) => Some(me.clone()),
        (Sender::User(me), Some(user)) if user.eq_ignore_ascii_case(me) => Some(me.clone()),
        (Sender::User(_), Some(_)) => {
            return Err(Refusal::Forbidden(field_error(
                name("user"),
                "is not the user of the login token",
            )));
        }
        (Sender::Page, Some(_)) => {
            return Err(Refusal::Forbidden(field_error(
                name("user"),
                "needs that user's login token (pages send `visitor`)",
            )));
        }
        (Sender::Page, None) => None,
    };
    if user.is_none() && visitor.is_none() {
        return Err(bad("visitor", "one of user or visitor is required".into()));
    }
    let order = id("order", raw.order)?;
    match (&order, kind) {
        (None, EventType::Purchase) => return Err(bad("order", "required for purchase".into())),
        (Some(_), k) if k != EventType::Purchase => {
            return Err(bad("order", "only purchases carry an order".into()));
        }
        _ => {}
    }
    if !kind.has_quantity() && raw.quantity.is_some() {
        return Err(bad("quantity", format!("not used with {kind}")));
    }
    let quantity = raw.quantity.unwrap_or(1);
    if !(1..=MAX_QUANTITY).contains(&quantity) {
        return Err(bad("quantity", format!("must be 1 to {MAX_QUANTITY}")));
    }
    let price = match raw.price {
        Some(_) if !kind.has_quantity() => {
            return Err(bad("price", format!("not used with {kind}")));
        }
        Some(text) => Some(Amount::parse(&text).ok_or_else(|| {
            bad(
                "price",
                format!("{text:?} is not a decimal string such as \"49.00\""),
            )
        })?),
        None if kind == EventType::Purchase => {
            return Err(bad("price", "required for purchase".into()));
        }
        None => None,
    };
    if let Some(currency) = raw.currency {
        check_currency(&name("currency"), &currency).map_err(Refusal::Invalid)?;
        if currency != limits.currency {
            return Err(bad(
                "currency",
                format!("this server records amounts in {}", limits.currency),
            ));
        }
    }
    let ts_ms = match raw.ts {
        None => now_ms,
        Some(Timestamp::Millis(ms)) => clamp_ts(ms, now_ms, limits.max_clock_skew_ms),
        Some(Timestamp::Text(text)) => {
            let parsed = chrono::DateTime::parse_from_rfc3339(&text).map_err(|_| {
                bad(
                    "ts",
                    format!("{text:?} is neither Unix milliseconds nor an RFC 3339 time"),
                )
            })?;
            clamp_ts(parsed.timestamp_millis(), now_ms, limits.max_clock_skew_ms)
        }
    };
    Ok(Event {
        kind,
        user,
        visitor,
        show,
        product,
        cue,
        order,
        quantity,
        price,
        ts_ms,
    })
}

/// A client's time on the server clock: never in the future (a client clock ahead gives "now"),
/// never more than `max_skew_ms` in the past (a page buffering events while offline, or a wrong
/// clock, cannot file events into another day).
pub fn clamp_ts(ts_ms: i64, now_ms: i64, max_skew_ms: i64) -> i64 {
    ts_ms.clamp(now_ms.saturating_sub(max_skew_ms), now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn limits() -> Limits {
        Limits {
            max_batch_events: 3,
            max_clock_skew_ms: 60_000,
            currency: "USD".into(),
        }
    }

    fn parse(body: &str, sender: &Sender) -> Result<Vec<Event>, BatchError> {
        parse_batch(body.as_bytes(), sender, NOW, &limits())
    }

    /// The field named by the first error of a refused batch.
    fn refused(body: &str, sender: &Sender) -> (String, String) {
        match parse(body, sender) {
            Err(BatchError::Invalid(errors)) => (errors[0].field.clone(), errors[0].to_string()),
            Err(BatchError::Forbidden(err)) => (err.field.clone(), format!("403 {err}")),
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn a_page_batch_becomes_events() {
        let body = r#"{"events": [
            {"type": "view_show", "visitor": "v1", "show": "s1", "ts": 1799999999000},
            {"type": "click", "visitor": "v1", "show": "s1", "product": "p1", "cue": "c1"},
            {"type": "add_to_cart", "visitor": "v1", "show": "s1", "product": "p1",
             "quantity": 2, "price": "9.50", "currency": "USD", "ts": "2027-01-15T08:00:30Z"}]}"#;
        let events = parse(body, &Sender::Page).unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].kind, EventType::ViewShow);
        assert_eq!(events[0].ts_ms, 1_799_999_999_000);
        assert_eq!(events[0].product, None);
        assert_eq!(events[1].ts_ms, NOW, "no ts: now");
        assert_eq!(events[1].cue.as_deref(), Some("c1"));
        assert_eq!(events[1].quantity, 1);
        assert_eq!(events[2].quantity, 2);
        assert_eq!(events[2].price, Amount::parse("9.5"));
        assert_eq!(events[2].visitor.as_deref(), Some("v1"));
        assert_eq!(events[2].user, None);
        // NOW is 2027-01-15T08:00:00Z: 30 s ahead of the server clock is clamped to now.
        assert_eq!(events[2].ts_ms, NOW);
    }

    #[test]
    fn every_field_error_names_its_field() {
        let page = Sender::Page;
        let cases = [
            (
                r#"{"events": [{"type": "buy", "visitor": "v", "show": "s"}]}"#,
                "events[0].type",
            ),
            (
                r#"{"events": [{"visitor": "v", "show": "s"}]}"#,
                "events[0]",
            ),
            (
                r#"{"events": [{"type": "view_show", "visitor": "v"}]}"#,
                "events[0].show",
            ),
            (
                r#"{"events": [{"type": "view_show", "visitor": "v", "show": ""}]}"#,
                "events[0].show",
            ),
            (
                r#"{"events": [{"type": "click", "visitor": "v", "show": "s"}]}"#,
                "events[0].product",
            ),
            (
                r#"{"events": [{"type": "click", "show": "s", "product": "p"}]}"#,
                "events[0].visitor",
            ),
            (
                r#"{"events": [{"type": "click", "visitor": "v", "show": "s", "product": "p", "quantity": 2}]}"#,
                "events[0].quantity",
            ),
            (
                r#"{"events": [{"type": "add_to_cart", "visitor": "v", "show": "s", "product": "p", "quantity": 0}]}"#,
                "events[0].quantity",
            ),
            (
                r#"{"events": [{"type": "add_to_cart", "visitor": "v", "show": "s", "product": "p", "quantity": -1}]}"#,
                "events[0].quantity",
            ),
            (
                r#"{"events": [{"type": "add_to_cart", "visitor": "v", "show": "s", "product": "p", "quantity": 10001}]}"#,
                "events[0].quantity",
            ),
            (
                r#"{"events": [{"type": "add_to_cart", "visitor": "v", "show": "s", "product": "p", "price": 4.5}]}"#,
                "events[0].price",
            ),
            (
                r#"{"events": [{"type": "add_to_cart", "visitor": "v", "show": "s", "product": "p", "price": "4,5"}]}"#,
                "events[0].price",
            ),
            (
                r#"{"events": [{"type": "click", "visitor": "v", "show": "s", "product": "p", "price": "4.5"}]}"#,
                "events[0].price",
            ),
            (
                r#"{"events": [{"type": "add_to_cart", "visitor": "v", "show": "s", "product": "p", "currency": "EUR"}]}"#,
                "events[0].currency",
            ),
            (
                r#"{"events": [{"type": "add_to_cart", "visitor": "v", "show": "s", "product": "p", "currency": "usd"}]}"#,
                "events[0].currency",
            ),
            (
                r#"{"events": [{"type": "click", "visitor": "v", "show": "s", "product": "p", "order": "o"}]}"#,
                "events[0].order",
            ),
            (
                r#"{"events": [{"type": "click", "visitor": "v", "show": "s", "product": "p", "ts": "yesterday"}]}"#,
                "events[0].ts",
            ),
            (
                r#"{"events": [{"type": "click", "visitor": "v\u0001", "show": "s", "product": "p"}]}"#,
                "events[0].visitor",
            ),
            (
                r#"{"events": [{"type": "click", "visitor": "v", "show": "s", "product": "p", "colour": "red"}]}"#,
                "events[0]",
            ),
            (
                r#"{"events": [{"type": "view_show", "visitor": "v", "show": "s"}, {"type": "view_show", "visitor": "v", "show": 7}]}"#,
                "events[1].show",
            ),
            (r#"{"events": []}"#, "events"),
            (r#"{"events": {}}"#, "events"),
            (r#"[]"#, "body"),
            (
                r#"{"events": [{"type": "click", "visitor": "v", "show": "s", "product": "p", "cue": "c"}"#,
                "events",
            ),
        ];
        for (body, field) in cases {
            let (got, message) = refused(body, &page);
            assert!(got.starts_with(field), "{body}: {got} ({message})");
            assert!(
                message.starts_with(&got) || message.starts_with("403"),
                "{message}"
            );
        }
        let (field, message) = refused(
            r#"{"events": [{"type": "buy", "visitor": "v", "show": "s"}]}"#,
            &page,
        );
        assert_eq!(field, "events[0].type");
        assert_eq!(message, r#"events[0].type: unknown type "buy""#);
        let shop_only = [
            (
                r#"{"events": [{"type": "purchase", "user": "u", "show": "s", "product": "p", "price": "1.00"}]}"#,
                "events[0].order",
            ),
            (
                r#"{"events": [{"type": "purchase", "user": "u", "show": "s", "product": "p", "order": "o"}]}"#,
                "events[0].price",
            ),
        ];
        for (body, field) in shop_only {
            assert_eq!(refused(body, &Sender::Shop).0, field, "{body}");
        }
    }

    #[test]
    fn every_bad_event_of_a_batch_is_reported() {
        let body = r#"{"events": [
            {"type": "buy", "visitor": "v", "show": "s"},
            {"type": "view_show", "visitor": "v", "show": "s"},
            {"type": "click", "visitor": "v", "show": "s"}]}"#;
        let Err(BatchError::Invalid(errors)) = parse(body, &Sender::Page) else {
            panic!("refused");
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["events[0].type", "events[2].product"]);
    }

    #[test]
    fn batches_over_the_limit_are_too_many() {
        let one = r#"{"type": "view_show", "visitor": "v", "show": "s"}"#;
        let body = format!(r#"{{"events": [{one},{one},{one},{one}]}}"#);
        assert_eq!(
            parse(&body, &Sender::Page),
            Err(BatchError::TooMany { count: 4, max: 3 })
        );
        let body = format!(r#"{{"events": [{one},{one},{one}]}}"#);
        assert_eq!(parse(&body, &Sender::Page).map(|e| e.len()), Ok(3));
    }

    #[test]
    fn who_may_send_what() {
        let purchase = r#"{"events": [{"type": "purchase", "user": "alice", "visitor": "v",
            "show": "s", "product": "p", "order": "o1", "quantity": 3, "price": "2.50"}]}"#;
        let (field, message) = refused(purchase, &Sender::Page);
        assert_eq!(field, "events[0].type");
        assert!(message.contains("shop capability"), "{message}");
        assert_eq!(
            refused(purchase, &Sender::User("alice".into())).0,
            "events[0].type",
            "a shopper's own token does not make a purchase believable"
        );
        let events = parse(purchase, &Sender::Shop).unwrap();
        assert_eq!(events[0].user.as_deref(), Some("alice"));
        assert_eq!(events[0].price, Amount::parse("2.5"));
        assert_eq!(events[0].order.as_deref(), Some("o1"));

        let click = |user: &str| {
            format!(
                r#"{{"events": [{{"type": "click", {user} "visitor": "v", "show": "s", "product": "p"}}]}}"#
            )
        };
        assert_eq!(
            refused(&click(r#""user": "alice","#), &Sender::Page),
            (
                "events[0].user".into(),
                "403 events[0].user: needs that user's login token (pages send `visitor`)".into()
            )
        );
        let alice = Sender::User("alice".into());
        assert_eq!(
            refused(&click(r#""user": "bob","#), &alice).0,
            "events[0].user"
        );
        let events = parse(&click(""), &alice).unwrap();
        assert_eq!(
            events[0].user.as_deref(),
            Some("alice"),
            "filled in from the token"
        );
        let events = parse(&click(r#""user": "ALICE","#), &alice).unwrap();
        assert_eq!(events[0].user.as_deref(), Some("alice"));
        assert_eq!(events[0].visitor.as_deref(), Some("v"));
    }

    #[test]
    fn timestamps_are_clamped_to_the_server_clock() {
        assert_eq!(clamp_ts(NOW - 5_000, NOW, 60_000), NOW - 5_000);
        assert_eq!(clamp_ts(NOW + 5_000, NOW, 60_000), NOW, "ahead: now");
        assert_eq!(clamp_ts(NOW - 61_000, NOW, 60_000), NOW - 60_000);
        assert_eq!(clamp_ts(i64::MIN, NOW, 60_000), NOW - 60_000);
        assert_eq!(clamp_ts(i64::MAX, NOW, 60_000), NOW);
        let body = r#"{"events": [
            {"type": "view_show", "visitor": "v", "show": "s", "ts": 0},
            {"type": "view_show", "visitor": "v", "show": "s", "ts": "2020-01-01T00:00:00+02:00"},
            {"type": "view_show", "visitor": "v", "show": "s", "ts": 1799999990000}]}"#;
        let times: Vec<_> = parse(body, &Sender::Page)
            .unwrap()
            .iter()
            .map(|e| e.ts_ms)
            .collect();
        assert_eq!(times, [NOW - 60_000, NOW - 60_000, NOW - 10_000]);
    }

    #[test]
    fn type_names_round_trip() {
        for kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Some(kind));
            assert_eq!(kind.to_string(), kind.as_str());
        }
        assert_eq!(EventType::parse("buy"), None);
    }
}
