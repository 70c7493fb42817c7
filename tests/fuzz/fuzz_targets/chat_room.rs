//! A chat room's rules under a sequence of requests from its members. The first byte picks
//! the link policy; then each step is `[who u8][clock u8][length u8][frame]`: who acts
//! (anonymous, two viewers, a moderator, a host), how far the clock moves (in 10 ms steps), and
//! one client frame body (JSON) as it arrives on the wire. The room applies it the way the hub
//! does (accepted posts are committed with the next id; bans close the user's connections).
//! Checked after every step, the rules docs/chat.md promises: anonymous viewers never post,
//! banned users neither post nor join, viewers' posts respect the length, link, rate and slow
//! mode rules, a deleted message is gone from history and pin, the history is bounded.

#![no_main]

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cuecast::chat::proto::{Capability, ClientMsg, RejectCode};
use cuecast::chat::room::{Identity, LinkPolicy, Moderation, Room, RoomSettings, timeout_until};
use libfuzzer_sys::fuzz_target;

const BACKFILL: usize = 8;
const MAX_TEXT: usize = 40;
const BURST: u32 = 3;
const RATE_PER_S: f64 = 0.5;
const WALL_START_MS: i64 = 1_700_000_000_000;

fn person(name: &str, caps: &[Capability]) -> Identity {
    Identity {
        user: Some(name.to_string()),
        caps: caps.iter().copied().collect::<HashSet<_>>(),
    }
}

/// What the target remembers of a viewer's accepted posts.
#[derive(Default)]
struct Posts {
    first_ms: Option<u64>,
    last_ms: Option<u64>,
    count: u32,
}

fuzz_target!(|data: &[u8]| {
    let Some((&policy, mut rest)) = data.split_first() else {
        return;
    };
    let settings = Arc::new(RoomSettings {
        backfill: BACKFILL,
        max_text_chars: MAX_TEXT,
        max_staff_text_chars: 200,
        link_policy: if policy & 1 == 0 {
            LinkPolicy::Strip
        } else {
            LinkPolicy::Reject
        },
        link_allowlist: vec!["shop.example".to_string()],
        rate_burst: BURST,
        rate_per_s: RATE_PER_S,
        slow_mode: Duration::ZERO,
    });
    let mut room = Room::new("demo", settings, Vec::new(), HashMap::new(), None, None);
    let people = [
        Identity::anonymous(),
        person("ann", &[Capability::Send]),
        person("bob", &[Capability::Send]),
        person("mod", &[Capability::Send, Capability::Moderate]),
        person("hos", &[Capability::Send, Capability::Host]),
    ];
    let start = Instant::now();
    let mut elapsed_ms: u64 = 0;
    let mut next_id: i64 = 1;
    let mut posts: HashMap<String, Posts> = HashMap::new();
    for (conn, who) in people.iter().enumerate() {
        room.join(conn as u64, who, 0, WALL_START_MS)
            .expect("nobody is banned yet");
    }

    while rest.len() >= 3 {
        let index = usize::from(rest[0]) % people.len();
        let who = &people[index];
        elapsed_ms += u64::from(rest[1]) * 10;
        let len = usize::from(rest[2]).min(rest.len() - 3);
        let frame = &rest[3..3 + len];
        rest = &rest[3 + len..];
        let now = start + Duration::from_millis(elapsed_ms);
        let now_ms = WALL_START_MS + elapsed_ms as i64;
        let Ok(msg) = serde_json::from_slice::<ClientMsg>(frame) else {
            continue;
        };
        let banned = who
            .user
            .as_deref()
            .is_some_and(|u| room.ban_of(u, now_ms).is_some());
        let viewer =
            who.user.is_some() && !who.can(Capability::Moderate) && !who.can(Capability::Host);
        match msg {
            ClientMsg::Hello { backfill, .. } => {
                let want = backfill.map_or(BACKFILL, |n| n as usize);
                let joined = room.join(index as u64, who, want, now_ms);
                assert_eq!(joined.is_err(), banned, "join while banned: {banned}");
                if let Ok(backlog) = joined {
                    assert!(backlog.len() <= want.min(BACKFILL));
                }
            }
            ClientMsg::Post {
                text,
                link,
                product,
                ..
            } => {
                let had_link = link.is_some();
                let result = room.check_post(who, &text, link, product.map(|p| *p), now, now_ms);
                match result {
                    Ok(draft) => {
                        assert!(who.user.is_some(), "an anonymous post was accepted");
                        assert!(!banned, "a banned user's post was accepted");
                        if viewer {
                            assert!(draft.text.chars().count() <= MAX_TEXT, "{draft:?}");
                            assert!(!had_link && draft.product.is_none(), "{draft:?}");
                            let seen = posts.entry(draft.user.clone()).or_default();
                            if let (Some(last), false) = (seen.last_ms, room.slow_mode().is_zero())
                            {
                                let gap = elapsed_ms - last;
                                assert!(
                                    gap >= room.slow_mode().as_millis() as u64,
                                    "slow mode let a post through after {gap} ms"
                                );
                            }
                            let first = *seen.first_ms.get_or_insert(elapsed_ms);
                            seen.last_ms = Some(elapsed_ms);
                            seen.count += 1;
                            // A token bucket never lets more through than its burst plus what
                            // refilled since the first post.
                            let allowed = f64::from(BURST)
                                + RATE_PER_S * (elapsed_ms - first) as f64 / 1000.0;
                            assert!(
                                f64::from(seen.count) <= allowed + 1e-6,
                                "{} posts in {} ms",
                                seen.count,
                                elapsed_ms - first
                            );
                        }
                        let message = room.commit(draft.into_message(
                            next_id,
                            "demo".into(),
                            now_ms,
                            None,
                            None,
                        ));
                        assert_eq!(message.id, next_id);
                        next_id += 1;
                    }
                    Err(rejection) => {
                        if who.user.is_none() {
                            assert_eq!(rejection.code, RejectCode::LoginRequired);
                        }
                        if let Some(wait) = rejection.retry_after {
                            assert!(wait <= Duration::from_secs(86_400 * 2), "{wait:?}");
                        }
                    }
                }
            }
            ClientMsg::Delete { id } => {
                if room.delete(who, id).is_ok() {
                    assert!(room.pinned().is_none_or(|m| m.id != id));
                    let history = room
                        .join(u64::MAX, &Identity::anonymous(), usize::MAX, now_ms)
                        .expect("anonymous viewers can always join");
                    room.leave(u64::MAX);
                    assert!(
                        history.iter().all(|m| m.id != id),
                        "deleted {id} still there"
                    );
                }
            }
            ClientMsg::Pin { id } => {
                if room.pin(who, Some(id)).is_ok() {
                    assert_eq!(room.pinned().map(|m| m.id), Some(id));
                }
            }
            ClientMsg::Unpin {} => {
                if room.pin(who, None).is_ok() {
                    assert!(room.pinned().is_none());
                }
            }
            ClientMsg::Timeout { user, seconds } => {
                let until = timeout_until(now_ms, seconds);
                ban(
                    &mut room,
                    who,
                    &user.to_ascii_lowercase(),
                    Some(until),
                    now_ms,
                );
            }
            ClientMsg::Ban { user } => {
                ban(&mut room, who, &user.to_ascii_lowercase(), None, now_ms);
            }
            ClientMsg::Unban { user } => {
                let user = user.to_ascii_lowercase();
                if room.unban(who, &user).is_ok() {
                    assert!(room.ban_of(&user, now_ms).is_none());
                }
            }
            ClientMsg::SlowMode { seconds } => {
                let _ = room.set_slow_mode(who, seconds);
                assert!(room.slow_mode() <= Duration::from_secs(86_400));
            }
        }
        let history = room
            .join(u64::MAX, &Identity::anonymous(), usize::MAX, now_ms)
            .expect("anonymous viewers can always join");
        room.leave(u64::MAX);
        assert!(history.len() <= BACKFILL, "history holds {}", history.len());
        assert!(
            history.windows(2).all(|w| w[0].id < w[1].id),
            "history out of order"
        );
    }
});

/// A ban or timeout as the hub applies it: the user's connections are closed (they leave).
fn ban(room: &mut Room, who: &Identity, user: &str, until: Option<i64>, now_ms: i64) {
    let Ok(Moderation::Banned { kick, .. }) = room.ban(who, user, until) else {
        return;
    };
    for conn in kick {
        room.leave(conn);
    }
    if until.is_none_or(|until| until > now_ms) {
        assert!(room.ban_of(user, now_ms).is_some(), "{user} not banned");
        assert!(
            room.check_post(
                &person(user, &[Capability::Send]),
                "hi",
                None,
                None,
                Instant::now(),
                now_ms
            )
            .is_err(),
            "{user} can still post"
        );
    }
}
