//! A show as stored and served, and the create/update request with its validation (every error
//! names its field: `title: must not be empty`, `tags[2]: longer than 64 characters`).

use std::collections::HashSet;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;

use super::state::{ShowState, State};
use crate::commerce::product::{FieldError, MAX_PRODUCT_ID, MAX_TITLE, check_text, check_url};
use crate::users::canonical_username;

/// Longest description, characters.
pub const MAX_DESCRIPTION: usize = 5000;
/// Most tags of a show.
pub const MAX_TAGS: usize = 20;
/// Longest tag, characters.
pub const MAX_TAG: usize = 64;
/// Most featured products of a show.
pub const MAX_PRODUCTS: usize = 200;

/// A live-shopping show: a scheduled broadcast by a host on one of the configured streams,
/// featuring catalog products in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Show {
    /// Unique id (`show-` + 16 hex digits).
    pub id: String,
    /// Title.
    pub title: String,
    /// Description (may be empty).
    pub description: String,
    /// The host's username.
    pub host: String,
    /// The configured stream it is broadcast on.
    pub stream: String,
    /// Cover image (http/https).
    pub cover_image_url: Option<String>,
    /// Tags, in the order given.
    pub tags: Vec<String>,
    /// Featured catalog product ids, in order.
    pub products: Vec<String>,
    /// State, schedule and the session it is live on.
    pub status: ShowState,
}

/// RFC 3339 in UTC with milliseconds.
pub fn rfc3339(date: DateTime<Utc>) -> String {
    date.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Show {
    /// The API's JSON of the show.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "host": self.host,
            "stream": self.stream,
            "scheduled_start": rfc3339(self.status.scheduled_start),
            "cover_image_url": self.cover_image_url,
            "tags": self.tags,
            "products": self.products,
            "state": self.status.state.as_str(),
            "started_at": self.status.started_at.map(rfc3339),
            "ended_at": self.status.ended_at.map(rfc3339),
            "playback_url": format!("/hls/{}/index.m3u8", self.stream),
        })
    }
}

/// The JSON body of `POST /api/shows` (create) and `PATCH /api/shows/{id}` (change the fields
/// given).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShowRequest {
    /// Title (required to create).
    pub title: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// The host's username: only the admin names it (creating a show for a host, or handing
    /// one over); a host's own shows are theirs.
    pub host: Option<String>,
    /// Stream name (required to create).
    pub stream: Option<String>,
    /// RFC 3339 (required to create).
    pub scheduled_start: Option<String>,
    /// Cover image URL; `""` removes it.
    pub cover_image_url: Option<String>,
    /// Tags.
    pub tags: Option<Vec<String>>,
    /// Featured catalog product ids, in order.
    pub products: Option<Vec<String>>,
    /// `live` or `ended`: the manual override (PATCH only).
    #[schema(pattern = "^(live|ended)$")]
    pub state: Option<String>,
}

/// A validated [`ShowRequest`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Edit {
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New host (canonical username).
    pub host: Option<String>,
    /// New stream.
    pub stream: Option<String>,
    /// New start.
    pub scheduled_start: Option<DateTime<Utc>>,
    /// New cover (`Some(None)` removes it).
    pub cover_image_url: Option<Option<String>>,
    /// New tags.
    pub tags: Option<Vec<String>>,
    /// New products.
    pub products: Option<Vec<String>>,
    /// Override.
    pub state: Option<State>,
}

fn invalid(field: &str, reason: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_string(),
        reason: reason.into(),
    }
}

fn check_list(
    field: &str,
    items: &[String],
    max_items: usize,
    max_len: usize,
) -> Result<(), FieldError> {
    if items.len() > max_items {
        return Err(invalid(field, format!("more than {max_items} items")));
    }
    let mut seen = HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{field}[{i}]");
        check_text(&at, item, max_len, true)?;
        if !seen.insert(item.as_str()) {
            return Err(invalid(&at, format!("`{item}` is listed twice")));
        }
    }
    Ok(())
}

impl ShowRequest {
    /// Checks every field given; `streams` are the configured stream names.
    pub fn validate(self, streams: &[String]) -> Result<Edit, FieldError> {
        if let Some(title) = &self.title {
            check_text("title", title, MAX_TITLE, true)?;
        }
        if let Some(description) = &self.description {
            check_text("description", description, MAX_DESCRIPTION, false)?;
        }
        let host = match &self.host {
            Some(host) => Some(canonical_username(host).ok_or_else(|| {
                invalid("host", "is not a username (letters, digits, '_', '-', '.')")
            })?),
            None => None,
        };
        if let Some(stream) = &self.stream
            && !streams.contains(stream)
        {
            return Err(invalid(
                "stream",
                format!("no stream `{stream}` is configured"),
            ));
        }
        let scheduled_start = match &self.scheduled_start {
            Some(text) => Some(
                DateTime::parse_from_rfc3339(text)
                    .map_err(|_| {
                        invalid(
                            "scheduled_start",
                            "must be an RFC 3339 date such as 2026-12-06T18:00:00Z",
                        )
                    })?
                    .with_timezone(&Utc),
            ),
            None => None,
        };
        let cover_image_url = match self.cover_image_url {
            Some(url) if url.is_empty() => Some(None),
            Some(url) => {
                check_url("cover_image_url", &url)?;
                Some(Some(url))
            }
            None => None,
        };
        if let Some(tags) = &self.tags {
            check_list("tags", tags, MAX_TAGS, MAX_TAG)?;
        }
        if let Some(products) = &self.products {
            check_list("products", products, MAX_PRODUCTS, MAX_PRODUCT_ID)?;
        }
        let state = match &self.state {
            Some(name) => Some(
                State::parse(name)
                    .filter(|&s| s != State::Scheduled)
                    .ok_or_else(|| invalid("state", "must be \"live\" or \"ended\""))?,
            ),
            None => None,
        };
        Ok(Edit {
            title: self.title,
            description: self.description,
            host,
            stream: self.stream,
            scheduled_start,
            cover_image_url,
            tags: self.tags,
            products: self.products,
            state,
        })
    }
}

impl Edit {
    /// A new scheduled show `id` hosted by `host`. Needs a title, a stream and a start; the
    /// state is the stream's to set, not the creator's.
    pub fn create(self, id: String, host: String) -> Result<Show, FieldError> {
        if self.state.is_some() {
            return Err(invalid(
                "state",
                "a new show is scheduled; its stream takes it live (PATCH to override)",
            ));
        }
        let required = |field: &str| invalid(field, "required");
        let mut show = Show {
            id,
            title: self.title.clone().ok_or_else(|| required("title"))?,
            description: String::new(),
            host,
            stream: self.stream.clone().ok_or_else(|| required("stream"))?,
            cover_image_url: None,
            tags: Vec::new(),
            products: Vec::new(),
            status: ShowState::scheduled(
                self.scheduled_start
                    .ok_or_else(|| required("scheduled_start"))?,
            ),
        };
        self.apply(&mut show);
        Ok(show)
    }

    /// Applies the fields (all but the state) to `show`.
    pub fn apply(&self, show: &mut Show) {
        let set = |target: &mut String, value: &Option<String>| {
            if let Some(value) = value {
                target.clone_from(value);
            }
        };
        set(&mut show.title, &self.title);
        set(&mut show.description, &self.description);
        set(&mut show.host, &self.host);
        set(&mut show.stream, &self.stream);
        if let Some(start) = self.scheduled_start {
            show.status.scheduled_start = start;
        }
        if let Some(cover) = &self.cover_image_url {
            show.cover_image_url.clone_from(cover);
        }
        if let Some(tags) = &self.tags {
            show.tags.clone_from(tags);
        }
        if let Some(products) = &self.products {
            show.products.clone_from(products);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streams() -> Vec<String> {
        vec!["demo".into()]
    }

    fn request(json: serde_json::Value) -> Result<Edit, FieldError> {
        serde_json::from_value::<ShowRequest>(json)
            .expect("well typed")
            .validate(&streams())
    }

    fn field_of(json: serde_json::Value) -> String {
        let err = request(json).expect_err("refused");
        assert!(err.to_string().starts_with(&err.field), "{err}");
        err.field
    }

    #[test]
    fn a_full_request_creates_a_scheduled_show() {
        let edit = request(serde_json::json!({
            "title": "Spring fragrances",
            "description": "Three new scents",
            "stream": "demo",
            "scheduled_start": "2026-12-06T19:00:00+01:00",
            "cover_image_url": "https://shop.example/cover.jpg",
            "tags": ["beauty", "fragrance"],
            "products": ["sku-1", "sku-2"],
        }))
        .expect("valid");
        let show = edit
            .create("show-1".into(), "alice".into())
            .expect("complete");
        assert_eq!(
            show.status,
            ShowState::scheduled(
                DateTime::parse_from_rfc3339("2026-12-06T18:00:00Z")
                    .expect("date")
                    .into()
            )
        );
        let json = show.to_json();
        assert_eq!(json["scheduled_start"], "2026-12-06T18:00:00.000Z");
        assert_eq!(json["state"], "scheduled");
        assert_eq!(json["products"], serde_json::json!(["sku-1", "sku-2"]));
        assert_eq!(json["host"], "alice");
        assert_eq!(json["started_at"], serde_json::Value::Null);
    }

    #[test]
    fn each_bad_field_is_named() {
        let base = || {
            serde_json::json!({
                "title": "t", "stream": "demo", "scheduled_start": "2026-12-06T18:00:00Z"
            })
        };
        let with = |key: &str, value: serde_json::Value| {
            let mut json = base();
            json[key] = value;
            json
        };
        assert_eq!(field_of(with("title", " ".into())), "title");
        assert_eq!(
            field_of(with("title", "x".repeat(MAX_TITLE + 1).into())),
            "title"
        );
        assert_eq!(
            field_of(with("description", "a\u{7}b".into())),
            "description"
        );
        assert_eq!(field_of(with("stream", "nope".into())), "stream");
        assert_eq!(
            field_of(with("scheduled_start", "tomorrow".into())),
            "scheduled_start"
        );
        assert_eq!(
            field_of(with("cover_image_url", "ftp://x".into())),
            "cover_image_url"
        );
        assert_eq!(field_of(with("host", "no spaces".into())), "host");
        assert_eq!(
            field_of(with("tags", serde_json::json!(["a", ""]))),
            "tags[1]"
        );
        assert_eq!(
            field_of(with("tags", serde_json::json!(["a", "a"]))),
            "tags[1]"
        );
        let many: Vec<String> = (0..=MAX_TAGS).map(|i| i.to_string()).collect();
        assert_eq!(field_of(with("tags", serde_json::json!(many))), "tags");
        let long = "p".repeat(MAX_PRODUCT_ID + 1);
        assert_eq!(
            field_of(with("products", serde_json::json!(["ok", long]))),
            "products[1]"
        );
        assert_eq!(field_of(with("state", "scheduled".into())), "state");
        // Missing required fields are named when creating.
        for key in ["title", "stream", "scheduled_start"] {
            let mut json = base();
            json.as_object_mut().expect("object").remove(key);
            let err = request(json)
                .expect("fields valid")
                .create("id".into(), "h".into())
                .expect_err("incomplete");
            assert_eq!(err.field, key);
        }
        let err = request(with("state", "live".into()))
            .expect("valid")
            .create("id".into(), "h".into())
            .expect_err("no state on create");
        assert_eq!(err.field, "state");
        // Unknown fields are refused by the parser.
        assert!(serde_json::from_value::<ShowRequest>(with("colour", "red".into())).is_err());
    }

    #[test]
    fn an_edit_changes_only_the_fields_given() {
        let mut show = request(serde_json::json!({
            "title": "t", "stream": "demo", "scheduled_start": "2026-12-06T18:00:00Z",
            "cover_image_url": "https://x.example/c.png", "tags": ["a"],
        }))
        .expect("valid")
        .create("id".into(), "alice".into())
        .expect("complete");
        let before = show.clone();
        request(serde_json::json!({"products": ["b", "a"], "cover_image_url": ""}))
            .expect("valid")
            .apply(&mut show);
        assert_eq!(show.products, ["b", "a"]);
        assert_eq!(show.cover_image_url, None);
        assert_eq!(
            (&show.title, &show.tags, &show.status),
            (&before.title, &before.tags, &before.status)
        );
    }
}
