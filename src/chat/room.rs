//! One chat room as a sans-IO state machine: members, recent history, the pin, bans and
//! timeouts, per-user rate limits and slow mode. Time comes in as an argument (`now`).
//!
//! A post is two steps so a review hook can run in between without holding the room:
//! [`Room::check_post`] validates and applies the policy (and takes the rate-limit token),
//! [`Room::commit`] appends the accepted message. Everything the room decides is returned to the
//! caller, which broadcasts and persists it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::links::{self, STRIPPED, strip_links};
use super::proto::{
    Capability, ChatMessage, Link, MessageKind, ProductCard, RejectCode, Role, ServerMsg,
};

/// Longest username accepted in moderation requests.
const MAX_USERNAME: usize = 64;
/// Longest product card text field.
const MAX_CARD_FIELD: usize = 256;

/// What to do with links outside the allowlist in viewers' messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkPolicy {
    /// Replace them with "[link removed]" and deliver the rest.
    Strip,
    /// Refuse the message.
    Reject,
}

/// Room rules (from `[chat]`).
#[derive(Debug, Clone)]
pub struct RoomSettings {
    /// Messages kept in memory and sent on join.
    pub backfill: usize,
    /// Longest viewer text, characters.
    pub max_text_chars: usize,
    /// Longest host/moderator text, characters.
    pub max_staff_text_chars: usize,
    /// Viewers' link handling.
    pub link_policy: LinkPolicy,
    /// Domains viewers may link to.
    pub link_allowlist: Vec<String>,
    /// Per-user burst of messages.
    pub rate_burst: u32,
    /// Per-user sustained messages per second.
    pub rate_per_s: f64,
    /// Slow mode a room starts with.
    pub slow_mode: Duration,
}

/// Who is acting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Username; None = anonymous.
    pub user: Option<String>,
    /// Capabilities.
    pub caps: HashSet<Capability>,
}

impl Identity {
    /// Anonymous (read only).
    pub fn anonymous() -> Identity {
        Identity {
            user: None,
            caps: HashSet::new(),
        }
    }

    /// Has capability `cap`.
    pub fn can(&self, cap: Capability) -> bool {
        self.caps.contains(&cap)
    }

    /// The role messages are shown with.
    pub fn role(&self) -> Role {
        if self.can(Capability::Host) {
            Role::Host
        } else if self.can(Capability::Moderate) {
            Role::Moderator
        } else {
            Role::Viewer
        }
    }

    /// Hosts and moderators skip viewer rules (length, links, rate limits, slow mode).
    fn is_staff(&self) -> bool {
        self.role() != Role::Viewer
    }
}

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Code.
    pub code: RejectCode,
    /// Explanation.
    pub reason: String,
    /// When to retry.
    pub retry_after: Option<Duration>,
}

impl Rejection {
    fn new(code: RejectCode, reason: impl Into<String>) -> Rejection {
        Rejection {
            code,
            reason: reason.into(),
            retry_after: None,
        }
    }

    /// As a wire message.
    pub fn to_msg(&self, nonce: Option<String>) -> ServerMsg {
        ServerMsg::Rejected {
            nonce,
            code: self.code,
            reason: self.reason.clone(),
            retry_after_ms: self.retry_after.map(|d| d.as_millis() as u64),
        }
    }
}

/// A post that passed the rules, waiting for review and an id.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    /// Author.
    pub user: String,
    /// Author's role.
    pub role: Role,
    /// Kind.
    pub kind: MessageKind,
    /// Text after the link policy.
    pub text: String,
    /// Link.
    pub link: Option<Link>,
    /// Product card.
    pub product: Option<ProductCard>,
    /// Links were stripped.
    pub stripped: bool,
}

impl Draft {
    /// The message this draft becomes once accepted: id `id` in room `room`, sent at
    /// `sent_at_ms` (Unix ms), at the stream's `session` and `media_time_ms` if live.
    pub fn into_message(
        self,
        id: i64,
        room: String,
        sent_at_ms: i64,
        session: Option<String>,
        media_time_ms: Option<i64>,
    ) -> ChatMessage {
        ChatMessage {
            id,
            room,
            user: self.user,
            role: self.role,
            kind: self.kind,
            text: self.text,
            link: self.link,
            product: self.product,
            sent_at_ms,
            session,
            media_time_ms,
        }
    }
}

/// When a `timeout` of `seconds` given at `now_ms` (Unix ms) ends; at most a year.
pub fn timeout_until(now_ms: i64, seconds: u64) -> i64 {
    now_ms.saturating_add((seconds.min(366 * 86_400) * 1000) as i64)
}

/// A ban or timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ban {
    /// Until when (None = until unbanned), as a wall clock in Unix ms.
    pub until_ms: Option<i64>,
}

/// A moderation outcome the caller must act on.
#[derive(Debug, Clone, PartialEq)]
pub enum Moderation {
    /// Broadcast this and persist the deletion.
    Deleted(i64),
    /// Broadcast this (the new pin) and persist it.
    Pinned(Option<Arc<ChatMessage>>),
    /// Close these member connections; persist the ban.
    Banned {
        /// The user.
        user: String,
        /// The ban.
        ban: Ban,
        /// Connections to close.
        kick: Vec<u64>,
    },
    /// Persist the lifted ban.
    Unbanned(String),
    /// Broadcast and persist.
    SlowMode(u64),
}

/// Per-user token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A room.
#[derive(Debug)]
pub struct Room {
    /// Name (stream name).
    pub name: String,
    settings: Arc<RoomSettings>,
    /// Recent messages, oldest first, at most `settings.backfill`.
    history: VecDeque<Arc<ChatMessage>>,
    /// The pinned message.
    pinned: Option<Arc<ChatMessage>>,
    /// Current slow mode.
    slow_mode: Duration,
    /// Connected members: connection id → username.
    members: HashMap<u64, Option<String>>,
    /// Bans and timeouts by username.
    bans: HashMap<String, Ban>,
    /// Rate-limit buckets by username.
    buckets: HashMap<String, Bucket>,
    /// Last accepted post per user (slow mode).
    last_post: HashMap<String, Instant>,
}

impl Room {
    /// A room with `history` (oldest first), `bans`, pin and slow mode as stored.
    pub fn new(
        name: &str,
        settings: Arc<RoomSettings>,
        history: Vec<ChatMessage>,
        bans: HashMap<String, Ban>,
        pinned: Option<ChatMessage>,
        slow_mode: Option<Duration>,
    ) -> Room {
        let keep = history.len().saturating_sub(settings.backfill);
        Room {
            name: name.to_string(),
            slow_mode: slow_mode.unwrap_or(settings.slow_mode),
            history: history.into_iter().skip(keep).map(Arc::new).collect(),
            pinned: pinned.map(Arc::new),
            settings,
            members: HashMap::new(),
            bans,
            buckets: HashMap::new(),
            last_post: HashMap::new(),
        }
    }

    /// Members connected.
    pub fn presence(&self) -> usize {
        self.members.len()
    }

    /// The room's current slow mode.
    pub fn slow_mode(&self) -> Duration {
        self.slow_mode
    }

    /// The pinned message.
    pub fn pinned(&self) -> Option<&Arc<ChatMessage>> {
        self.pinned.as_ref()
    }

    /// The ban of `user` in force at `now_ms`, if any.
    pub fn ban_of(&self, user: &str, now_ms: i64) -> Option<Ban> {
        self.bans
            .get(user)
            .copied()
            .filter(|ban| ban.until_ms.is_none_or(|until| until > now_ms))
    }

    /// Adds connection `conn`; refused when the user is banned. Returns the backfill (the last
    /// `want` messages, oldest first).
    pub fn join(
        &mut self,
        conn: u64,
        who: &Identity,
        want: usize,
        now_ms: i64,
    ) -> Result<Vec<Arc<ChatMessage>>, Ban> {
        if let Some(user) = &who.user
            && let Some(ban) = self.ban_of(user, now_ms)
        {
            return Err(ban);
        }
        self.members.insert(conn, who.user.clone());
        let skip = self.history.len().saturating_sub(want);
        Ok(self.history.iter().skip(skip).cloned().collect())
    }

    /// Removes connection `conn`.
    pub fn leave(&mut self, conn: u64) {
        self.members.remove(&conn);
    }

    /// Validates a post and applies the policy; takes a rate-limit token when accepted.
    pub fn check_post(
        &mut self,
        who: &Identity,
        text: &str,
        link: Option<Link>,
        product: Option<ProductCard>,
        now: Instant,
        now_ms: i64,
    ) -> Result<Draft, Rejection> {
        let Some(user) = who.user.clone() else {
            return Err(Rejection::new(
                RejectCode::LoginRequired,
                "log in to chat (anonymous viewers can only read)",
            ));
        };
        if !who.can(Capability::Send) && !who.is_staff() {
            return Err(Rejection::new(
                RejectCode::Forbidden,
                "this account may not post",
            ));
        }
        if self.ban_of(&user, now_ms).is_some() {
            return Err(Rejection::new(RejectCode::Forbidden, "you are banned here"));
        }
        let text: String = text
            .chars()
            .filter(|c| !c.is_control() || *c == '\n')
            .collect();
        let text = text.trim().to_string();
        let role = who.role();
        let staff = who.is_staff();
        let limit = if staff {
            self.settings.max_staff_text_chars
        } else {
            self.settings.max_text_chars
        };
        let chars = text.chars().count();
        if chars > limit {
            return Err(Rejection::new(
                RejectCode::TooLong,
                format!("{chars} characters; at most {limit}"),
            ));
        }
        if link.is_some() && !staff {
            return Err(Rejection::new(
                RejectCode::Forbidden,
                "only hosts and moderators can attach links",
            ));
        }
        if product.is_some() && role != Role::Host {
            return Err(Rejection::new(
                RejectCode::Forbidden,
                "only hosts can post product cards",
            ));
        }
        if let Some(link) = &link {
            check_url("link.url", &link.url)?;
            check_len("link.label", link.label.as_deref())?;
        }
        if let Some(card) = &product {
            check_card(card)?;
        }
        if text.is_empty() && link.is_none() && product.is_none() {
            return Err(Rejection::new(RejectCode::Empty, "empty message"));
        }
        let (text, stripped) = if staff {
            (text, false)
        } else {
            let filtered = strip_links(&text, &self.settings.link_allowlist);
            if filtered.removed > 0 && self.settings.link_policy == LinkPolicy::Reject {
                return Err(Rejection::new(
                    RejectCode::LinkNotAllowed,
                    "links to that domain are not allowed",
                ));
            }
            // A replaced link can be longer than the link ("a.io" → "[link removed]"): the limit
            // holds for the text as delivered too, not only as typed.
            let delivered = filtered.text.chars().count();
            if delivered > limit {
                return Err(Rejection::new(
                    RejectCode::TooLong,
                    format!(
                        "{delivered} characters once links are removed (each becomes \"{STRIPPED}\"); at most {limit}"
                    ),
                ));
            }
            (filtered.text, filtered.removed > 0)
        };
        if !staff {
            self.take_token(&user, now)?;
        }
        let kind = if product.is_some() {
            MessageKind::Product
        } else if link.is_some() {
            MessageKind::Link
        } else {
            MessageKind::Chat
        };
        Ok(Draft {
            user,
            role,
            kind,
            text,
            link,
            product,
            stripped,
        })
    }

    /// Slow mode, then the token bucket; both only for viewers.
    fn take_token(&mut self, user: &str, now: Instant) -> Result<(), Rejection> {
        if !self.slow_mode.is_zero()
            && let Some(last) = self.last_post.get(user)
        {
            let next = *last + self.slow_mode;
            if next > now {
                return Err(Rejection {
                    retry_after: Some(next - now),
                    ..Rejection::new(
                        RejectCode::SlowMode,
                        format!(
                            "slow mode: one message every {} s",
                            self.slow_mode.as_secs()
                        ),
                    )
                });
            }
        }
        let burst = f64::from(self.settings.rate_burst.max(1));
        let rate = self.settings.rate_per_s.max(1e-6);
        let bucket = self.buckets.entry(user.to_string()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = now;
        if bucket.tokens < 1.0 {
            let wait = Duration::from_secs_f64((1.0 - bucket.tokens) / rate);
            return Err(Rejection {
                retry_after: Some(wait),
                ..Rejection::new(RejectCode::RateLimited, "too many messages; slow down")
            });
        }
        bucket.tokens -= 1.0;
        self.last_post.insert(user.to_string(), now);
        Ok(())
    }

    /// Appends an accepted message to the history.
    pub fn commit(&mut self, message: ChatMessage) -> Arc<ChatMessage> {
        let message = Arc::new(message);
        self.history.push_back(Arc::clone(&message));
        while self.history.len() > self.settings.backfill {
            self.history.pop_front();
        }
        message
    }

    /// Deletes message `id` (moderate). Messages older than the in-memory history can be deleted
    /// too: the caller removes them from the store.
    pub fn delete(&mut self, who: &Identity, id: i64) -> Result<Moderation, Rejection> {
        require(who, Capability::Moderate)?;
        self.history.retain(|m| m.id != id);
        if self.pinned.as_ref().is_some_and(|m| m.id == id) {
            self.pinned = None;
        }
        Ok(Moderation::Deleted(id))
    }

    /// Pins message `id` (host); only messages still in the room's history.
    pub fn pin(&mut self, who: &Identity, id: Option<i64>) -> Result<Moderation, Rejection> {
        require(who, Capability::Host)?;
        let message = match id {
            Some(id) => Some(
                self.history
                    .iter()
                    .find(|m| m.id == id)
                    .cloned()
                    .ok_or_else(|| {
                        Rejection::new(RejectCode::NotFound, format!("no recent message {id}"))
                    })?,
            ),
            None => None,
        };
        self.pinned = message.clone();
        Ok(Moderation::Pinned(message))
    }

    /// Bans `user` until `until_ms` (None = until unbanned) and returns its connections to close.
    pub fn ban(
        &mut self,
        who: &Identity,
        user: &str,
        until_ms: Option<i64>,
    ) -> Result<Moderation, Rejection> {
        require(who, Capability::Moderate)?;
        check_username(user)?;
        if who.user.as_deref() == Some(user) {
            return Err(Rejection::new(RejectCode::Invalid, "cannot ban yourself"));
        }
        let ban = Ban { until_ms };
        self.bans.insert(user.to_string(), ban);
        let kick = self
            .members
            .iter()
            .filter(|(_, member)| member.as_deref() == Some(user))
            .map(|(conn, _)| *conn)
            .collect();
        Ok(Moderation::Banned {
            user: user.to_string(),
            ban,
            kick,
        })
    }

    /// Lifts a ban or timeout.
    pub fn unban(&mut self, who: &Identity, user: &str) -> Result<Moderation, Rejection> {
        require(who, Capability::Moderate)?;
        check_username(user)?;
        self.bans.remove(user);
        Ok(Moderation::Unbanned(user.to_string()))
    }

    /// Sets slow mode.
    pub fn set_slow_mode(&mut self, who: &Identity, seconds: u64) -> Result<Moderation, Rejection> {
        require(who, Capability::Moderate)?;
        if seconds > 86_400 {
            return Err(Rejection::new(
                RejectCode::Invalid,
                "slow mode is at most 86400 s",
            ));
        }
        self.slow_mode = Duration::from_secs(seconds);
        Ok(Moderation::SlowMode(seconds))
    }
}

impl Room {
    /// Applies a message accepted on any node (cluster mode, in the room's stream order).
    /// Returns it, or None when the room already holds a message with its id (its own replay,
    /// or a message loaded from a shared store).
    pub fn apply_message(&mut self, message: ChatMessage) -> Option<Arc<ChatMessage>> {
        if self.history.iter().any(|m| m.id == message.id) {
            return None;
        }
        Some(self.commit(message))
    }

    /// Puts the history in id order (cluster mode: ids are taken in the room's stream order,
    /// so after merging the store's messages with the stream's, id order is the room's order).
    pub fn sort_history(&mut self) {
        self.history.make_contiguous().sort_by_key(|m| m.id);
    }

    /// Applies a deletion decided on any node; true when it removed the pin.
    pub fn apply_delete(&mut self, id: i64) -> bool {
        self.history.retain(|m| m.id != id);
        if self.pinned.as_ref().is_some_and(|m| m.id == id) {
            self.pinned = None;
            return true;
        }
        false
    }

    /// Applies a pin (or unpin) decided on any node.
    pub fn apply_pin(&mut self, message: Option<ChatMessage>) -> Option<Arc<ChatMessage>> {
        self.pinned = message.map(Arc::new);
        self.pinned.clone()
    }

    /// Applies a ban decided on any node; returns this node's connections of `user` to close.
    pub fn apply_ban(&mut self, user: &str, ban: Ban) -> Vec<u64> {
        self.bans.insert(user.to_string(), ban);
        self.members
            .iter()
            .filter(|(_, member)| member.as_deref() == Some(user))
            .map(|(conn, _)| *conn)
            .collect()
    }

    /// Applies a lifted ban.
    pub fn apply_unban(&mut self, user: &str) {
        self.bans.remove(user);
    }

    /// Applies a slow mode set on any node.
    pub fn apply_slow_mode(&mut self, seconds: u64) {
        self.slow_mode = Duration::from_secs(seconds.min(86_400));
    }
}

fn require(who: &Identity, cap: Capability) -> Result<(), Rejection> {
    if who.can(cap) {
        Ok(())
    } else {
        Err(Rejection::new(
            RejectCode::Forbidden,
            format!("needs the `{}` capability", cap.as_str()),
        ))
    }
}

fn check_username(user: &str) -> Result<(), Rejection> {
    if user.is_empty() || user.len() > MAX_USERNAME {
        return Err(Rejection::new(RejectCode::Invalid, "invalid username"));
    }
    Ok(())
}

fn check_url(field: &str, url: &str) -> Result<(), Rejection> {
    if links::is_web_url(url) {
        Ok(())
    } else {
        Err(Rejection::new(
            RejectCode::InvalidLink,
            format!("{field}: not an http(s) URL"),
        ))
    }
}

fn check_len(field: &str, value: Option<&str>) -> Result<(), Rejection> {
    match value {
        Some(v) if v.chars().count() > MAX_CARD_FIELD => Err(Rejection::new(
            RejectCode::TooLong,
            format!("{field}: at most {MAX_CARD_FIELD} characters"),
        )),
        _ => Ok(()),
    }
}

/// A card needs a title to show; every field follows the product rules of cues
/// ([`crate::commerce::Product::validate`]). A bad URL is `invalid_link`, anything else `invalid`.
fn check_card(card: &ProductCard) -> Result<(), Rejection> {
    if card.title.is_none() {
        return Err(Rejection::new(
            RejectCode::Invalid,
            "product.title: required on a product card",
        ));
    }
    card.validate("product").map_err(|e| {
        let code = if e.field.ends_with("url") {
            RejectCode::InvalidLink
        } else {
            RejectCode::Invalid
        };
        Rejection::new(code, e.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Arc<RoomSettings> {
        Arc::new(RoomSettings {
            backfill: 3,
            max_text_chars: 10,
            max_staff_text_chars: 100,
            link_policy: LinkPolicy::Strip,
            link_allowlist: vec!["shop.example".into()],
            rate_burst: 2,
            rate_per_s: 1.0,
            slow_mode: Duration::ZERO,
        })
    }

    fn who(user: &str, caps: &[Capability]) -> Identity {
        Identity {
            user: Some(user.into()),
            caps: caps.iter().copied().collect(),
        }
    }

    fn room() -> Room {
        Room::new("demo", settings(), Vec::new(), HashMap::new(), None, None)
    }

    fn message(id: i64, draft: Draft) -> ChatMessage {
        draft.into_message(id, "demo".into(), 0, None, None)
    }

    #[test]
    fn anonymous_cannot_post_and_length_is_limited() {
        let mut room = room();
        let now = Instant::now();
        let err = room
            .check_post(&Identity::anonymous(), "hi", None, None, now, 0)
            .unwrap_err();
        assert_eq!(err.code, RejectCode::LoginRequired);
        let viewer = who("v", &[Capability::Send]);
        let err = room
            .check_post(&viewer, "12345678901", None, None, now, 0)
            .unwrap_err();
        assert_eq!(err.code, RejectCode::TooLong);
        let err = room
            .check_post(&viewer, "  ", None, None, now, 0)
            .unwrap_err();
        assert_eq!(err.code, RejectCode::Empty);
        assert!(
            room.check_post(&viewer, "hello", None, None, now, 0)
                .is_ok()
        );
    }

    /// Found by the `chat_room` fuzz target: "a.io b.io" is 9 characters as typed but 29 once
    /// both links are replaced, over the 10-character limit.
    #[test]
    fn the_length_limit_holds_after_links_are_replaced() {
        let mut room = room();
        let now = Instant::now();
        let viewer = who("v", &[Capability::Send]);
        let err = room
            .check_post(&viewer, "a.io b.io", None, None, now, 0)
            .unwrap_err();
        assert_eq!(err.code, RejectCode::TooLong);
        assert!(
            err.reason.contains("once links are removed"),
            "{}",
            err.reason
        );
        // A post that was refused took no rate-limit token: the next two (the burst) pass.
        assert!(room.check_post(&viewer, "one", None, None, now, 0).is_ok());
        assert!(room.check_post(&viewer, "two", None, None, now, 0).is_ok());
    }

    #[test]
    fn viewer_links_are_stripped_or_rejected_host_links_kept() {
        // Room for "x [link removed]" (16 characters) once the link is replaced.
        let mut room = Room::new(
            "demo",
            Arc::new(RoomSettings {
                max_text_chars: 20,
                ..(*settings()).clone()
            }),
            Vec::new(),
            HashMap::new(),
            None,
            None,
        );
        let now = Instant::now();
        let viewer = who("v", &[Capability::Send]);
        let draft = room
            .check_post(&viewer, "x evil.io", None, None, now, 0)
            .unwrap();
        assert_eq!(draft.text, "x [link removed]");
        assert!(draft.stripped);
        let link = Some(Link {
            url: "https://evil.io".into(),
            label: None,
        });
        let err = room
            .check_post(&viewer, "x", link.clone(), None, now, 0)
            .unwrap_err();
        assert_eq!(err.code, RejectCode::Forbidden);
        let host = who("h", &[Capability::Send, Capability::Host]);
        let draft = room
            .check_post(&host, "see https://evil.io", link, None, now, 0)
            .unwrap();
        assert_eq!(draft.kind, MessageKind::Link);
        assert_eq!(draft.text, "see https://evil.io");

        let mut strict = Room::new(
            "demo",
            Arc::new(RoomSettings {
                link_policy: LinkPolicy::Reject,
                max_text_chars: 100,
                ..(*settings()).clone()
            }),
            Vec::new(),
            HashMap::new(),
            None,
            None,
        );
        let err = strict
            .check_post(&viewer, "evil.io", None, None, now, 0)
            .unwrap_err();
        assert_eq!(err.code, RejectCode::LinkNotAllowed);
        assert!(
            strict
                .check_post(&viewer, "shop.example", None, None, now, 0)
                .is_ok()
        );
    }

    #[test]
    fn rate_limit_and_slow_mode() {
        let mut room = room();
        let t0 = Instant::now();
        let viewer = who("v", &[Capability::Send]);
        assert!(room.check_post(&viewer, "1", None, None, t0, 0).is_ok());
        assert!(room.check_post(&viewer, "2", None, None, t0, 0).is_ok());
        let err = room
            .check_post(&viewer, "3", None, None, t0, 0)
            .unwrap_err();
        assert_eq!(err.code, RejectCode::RateLimited);
        assert_eq!(err.retry_after, Some(Duration::from_secs(1)));
        let t1 = t0 + Duration::from_secs(1);
        assert!(room.check_post(&viewer, "4", None, None, t1, 0).is_ok());
        // Another user has their own bucket.
        assert!(
            room.check_post(&who("w", &[Capability::Send]), "x", None, None, t1, 0)
                .is_ok()
        );

        let moderator = who("m", &[Capability::Moderate]);
        assert!(room.set_slow_mode(&viewer, 5).is_err());
        room.set_slow_mode(&moderator, 5).unwrap();
        let t2 = t1 + Duration::from_secs(3);
        let err = room
            .check_post(&viewer, "5", None, None, t2, 0)
            .unwrap_err();
        assert_eq!(err.code, RejectCode::SlowMode);
        assert_eq!(err.retry_after, Some(Duration::from_secs(2)));
        // Staff are exempt.
        for _ in 0..5 {
            assert!(room.check_post(&moderator, "m", None, None, t2, 0).is_ok());
        }
        let t3 = t1 + Duration::from_secs(5);
        assert!(room.check_post(&viewer, "6", None, None, t3, 0).is_ok());
    }

    #[test]
    fn history_backfill_delete_pin() {
        let mut room = room();
        let now = Instant::now();
        let host = who("h", &[Capability::Host, Capability::Moderate]);
        for id in 1..=5 {
            let draft = room.check_post(&host, "m", None, None, now, 0).unwrap();
            room.commit(message(id, draft));
        }
        let backfill = room.join(1, &Identity::anonymous(), 2, 0).unwrap();
        assert_eq!(backfill.iter().map(|m| m.id).collect::<Vec<_>>(), [4, 5]);
        let backfill = room.join(2, &Identity::anonymous(), 100, 0).unwrap();
        assert_eq!(backfill.iter().map(|m| m.id).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(room.presence(), 2);
        room.leave(1);
        assert_eq!(room.presence(), 1);

        assert!(room.pin(&host, Some(1)).is_err(), "1 left the history");
        assert!(matches!(
            room.pin(&host, Some(4)),
            Ok(Moderation::Pinned(Some(_)))
        ));
        assert!(room.pin(&who("v", &[Capability::Send]), Some(4)).is_err());
        assert_eq!(room.delete(&host, 4), Ok(Moderation::Deleted(4)));
        assert!(room.pinned().is_none());
        let backfill = room.join(3, &Identity::anonymous(), 100, 0).unwrap();
        assert_eq!(backfill.iter().map(|m| m.id).collect::<Vec<_>>(), [3, 5]);
    }

    #[test]
    fn bans_kick_and_refuse_timeouts_expire() {
        let mut room = room();
        let moderator = who("m", &[Capability::Moderate]);
        let bob = who("bob", &[Capability::Send]);
        room.join(1, &bob, 0, 0).unwrap();
        room.join(2, &moderator, 0, 0).unwrap();
        let Ok(Moderation::Banned { kick, .. }) = room.ban(&moderator, "bob", Some(10_000)) else {
            panic!("ban")
        };
        assert_eq!(kick, [1]);
        assert!(room.join(3, &bob, 0, 5_000).is_err());
        let err = room
            .check_post(&bob, "hi", None, None, Instant::now(), 5_000)
            .unwrap_err();
        assert_eq!(err.code, RejectCode::Forbidden);
        assert!(room.join(3, &bob, 0, 10_001).is_ok(), "timeout over");
        room.ban(&moderator, "bob", None).unwrap();
        assert!(room.join(4, &bob, 0, i64::MAX).is_err());
        room.unban(&moderator, "bob").unwrap();
        assert!(room.join(4, &bob, 0, 0).is_ok());
        assert!(room.ban(&bob, "m", None).is_err());
        assert!(room.ban(&moderator, "m", None).is_err());
    }

    #[test]
    fn product_cards_are_validated_and_host_only() {
        let mut room = room();
        let now = Instant::now();
        let card = ProductCard {
            id: "sku".into(),
            title: Some("Mug".into()),
            price: Some("9.99".into()),
            currency: Some("EUR".into()),
            image_url: Some("https://shop.example/mug.jpg".into()),
            cta: Some(crate::commerce::Cta {
                label: "Buy".into(),
                url: "https://shop.example/mug".into(),
            }),
        };
        let moderator = who("m", &[Capability::Moderate]);
        assert!(
            room.check_post(&moderator, "", None, Some(card.clone()), now, 0)
                .is_err()
        );
        let host = who("h", &[Capability::Host]);
        let draft = room
            .check_post(&host, "", None, Some(card.clone()), now, 0)
            .unwrap();
        assert_eq!(draft.kind, MessageKind::Product);
        let bad = ProductCard {
            cta: Some(crate::commerce::Cta {
                label: "Buy".into(),
                url: "javascript:x".into(),
            }),
            ..card.clone()
        };
        let err = room
            .check_post(&host, "", None, Some(bad), now, 0)
            .unwrap_err();
        assert_eq!(err.code, RejectCode::InvalidLink);
        let untitled = ProductCard {
            title: None,
            ..card.clone()
        };
        let err = room
            .check_post(&host, "", None, Some(untitled), now, 0)
            .unwrap_err();
        assert_eq!(err.code, RejectCode::Invalid);
        let bad_price = ProductCard {
            price: Some("9,99".into()),
            ..card
        };
        let err = room
            .check_post(&host, "", None, Some(bad_price), now, 0)
            .unwrap_err();
        assert_eq!(err.code, RejectCode::Invalid);
        assert!(err.reason.contains("product.price"), "{}", err.reason);
    }
}
