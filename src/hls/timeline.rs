//! A stream's media timeline and publisher continuity, pure: every time comes in as an
//! argument (sans-IO, like [`super::packager`]). [`super::stream::HlsStream`] keeps them behind
//! locks and reads its [`Clock`]; these types decide.
//!
//! - [`Timeline`] maps media time to wall-clock time for EXT-X-PROGRAM-DATE-TIME and knows where
//!   a continuing publish's media must start, so timestamps and dates stay monotonic across a
//!   reconnect's seam.
//! - [`Continuity`] decides whether a new publisher continues the session: a publisher lost
//!   less than the grace period ago is resumed; a grace timer of an older publish generation
//!   ends nothing.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// Where a stream reads the time.
pub trait Clock: Send + Sync {
    /// Monotonic time, for durations (grace periods, retention).
    fn now(&self) -> Instant;
    /// Wall-clock time, for EXT-X-PROGRAM-DATE-TIME and session ids.
    fn wall(&self) -> DateTime<Utc>;
}

/// The system clocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn wall(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to (tests).
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct ManualClock {
    /// Monotonic time at creation.
    start: Instant,
    /// Wall-clock time at creation.
    wall: DateTime<Utc>,
    /// How far it was advanced.
    elapsed: std::sync::Mutex<Duration>,
}

#[cfg(test)]
impl ManualClock {
    /// A clock standing at wall-clock `wall`.
    pub(crate) fn new(wall: DateTime<Utc>) -> ManualClock {
        ManualClock {
            start: Instant::now(),
            wall,
            elapsed: std::sync::Mutex::new(Duration::ZERO),
        }
    }

    /// Moves both clocks on by `by`.
    pub(crate) fn advance(&self, by: Duration) {
        *self.elapsed.lock().unwrap_or_else(|e| e.into_inner()) += by;
    }

    fn elapsed(&self) -> Duration {
        *self.elapsed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + self.elapsed()
    }

    fn wall(&self) -> DateTime<Utc> {
        self.wall + chrono::Duration::from_std(self.elapsed()).unwrap_or_default()
    }
}

/// Media-time margin added after the previous publish's last timestamp when a new publish
/// continues the stream (covers the last frame's duration).
pub const CONTINUE_MARGIN_NS: u64 = 100_000_000;

/// The media timeline of a stream.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Timeline {
    /// (media time ns, wall clock): PROGRAM-DATE-TIME = wall + (pts − media).
    anchor: Option<(u64, DateTime<Utc>)>,
    /// Latest media timestamp pushed (ns, after continuation offsets).
    media_end: Option<u64>,
    /// Continuing another node's timeline: the next [`Timeline::reanchor`] keeps the old
    /// owner's dates instead of the wall clock, so PROGRAM-DATE-TIME runs on without the
    /// failover's gap (players that lost their playlist's overlap find the seam by date).
    keep_anchor: bool,
    /// With `keep_anchor`: the date the continuing media starts at (the old owner's seam, see
    /// [`super::handoff::StreamHandoff::seam_date`]); `None`: the old owner's date of that
    /// media time.
    seam_date: Option<DateTime<Utc>>,
}

/// `n` nanoseconds as a date offset (saturating past ≈ 292 years).
pub(crate) fn nanos(n: u64) -> chrono::Duration {
    chrono::Duration::nanoseconds(i64::try_from(n).unwrap_or(i64::MAX))
}

/// Wall clock of `pts_ns` through the anchor (`media`, `wall`).
fn wall_at(media: u64, wall: DateTime<Utc>, pts_ns: u64) -> DateTime<Utc> {
    let offset = i64::try_from(pts_ns).unwrap_or(i64::MAX) - i64::try_from(media).unwrap_or(0);
    wall + chrono::Duration::nanoseconds(offset)
}

impl Timeline {
    /// A timeline continuing another node's (see [`super::handoff`]): its media end,
    /// PROGRAM-DATE-TIME anchor and seam date.
    pub fn continuing(
        media_end: Option<u64>,
        anchor: Option<(u64, DateTime<Utc>)>,
        seam_date: Option<DateTime<Utc>>,
    ) -> Timeline {
        Timeline {
            anchor,
            media_end,
            keep_anchor: anchor.is_some(),
            seam_date,
        }
    }

    /// The latest media timestamp recorded, ns.
    pub fn media_end(&self) -> Option<u64> {
        self.media_end
    }

    /// The PROGRAM-DATE-TIME anchor: media time ns and its wall clock.
    pub fn anchor_point(&self) -> Option<(u64, DateTime<Utc>)> {
        self.anchor
    }

    /// Anchors media time `media_ns` to `wall` (first call wins).
    pub fn anchor(&mut self, media_ns: u64, wall: DateTime<Utc>) {
        self.anchor.get_or_insert((media_ns, wall));
    }

    /// Wall-clock time of media time `pts_ns` through the anchor; without one, `pts_ns` is
    /// anchored to `wall` first.
    pub fn program_date_time(&mut self, pts_ns: u64, wall: DateTime<Utc>) -> DateTime<Utc> {
        let (media, anchor_wall) = *self.anchor.get_or_insert((pts_ns, wall));
        wall_at(media, anchor_wall, pts_ns)
    }

    /// Media time (ns) of wall-clock `date` through the anchor; `None` before the anchor's
    /// media time 0 or without an anchor.
    pub fn media_time_at(&self, date: DateTime<Utc>) -> Option<u64> {
        let (media, wall) = self.anchor?;
        let offset = (date - wall).num_nanoseconds()?;
        u64::try_from(i64::try_from(media).ok()?.checked_add(offset)?).ok()
    }

    /// Records media up to `end_ns` (after any continuation offset).
    pub fn note_media(&mut self, end_ns: u64) {
        self.media_end = Some(self.media_end.map_or(end_ns, |e| e.max(end_ns)));
    }

    /// Where the next publish's media continues: the media end plus [`CONTINUE_MARGIN_NS`]
    /// (`None` before any media).
    pub fn continue_at(&self) -> Option<u64> {
        self.media_end
            .map(|end| end.saturating_add(CONTINUE_MARGIN_NS))
    }

    /// A new publish continues the stream at media time `media_ns` at wall-clock `wall`:
    /// PROGRAM-DATE-TIME carries on from `wall`, never going back before the previous
    /// publish's mapping of `media_ns` (a publisher that ran ahead of real time).
    ///
    /// On a timeline [continuing](Self::continuing) another node's, the first call dates
    /// `media_ns` at the old owner's seam date (never later than the old owner's own date of
    /// `media_ns`), or keeps the old anchor without one.
    pub fn reanchor(&mut self, media_ns: u64, wall: DateTime<Utc>) {
        let seam_date = self.seam_date.take();
        if std::mem::take(&mut self.keep_anchor)
            && let Some((media, anchor_wall)) = self.anchor
        {
            if let Some(seam) = seam_date {
                self.anchor = Some((media_ns, seam.min(wall_at(media, anchor_wall, media_ns))));
            }
            return;
        }
        let wall = match self.anchor {
            Some((media, anchor_wall)) => wall.max(wall_at(media, anchor_wall, media_ns)),
            None => wall,
        };
        self.anchor = Some((media_ns, wall));
    }
}

/// Publisher presence, for continuity across reconnects.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Continuity {
    /// When the last publisher was lost (`None` while one is publishing or never lost).
    interrupted_at: Option<Instant>,
    /// Bumped by every resume and takeover, so a stale grace timer cannot end a resumed
    /// stream.
    generation: u64,
}

impl Continuity {
    /// The current publish generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// When the publisher was lost, while nobody has resumed the stream.
    pub fn interrupted_at(&self) -> Option<Instant> {
        self.interrupted_at
    }

    /// The publisher of `generation` was lost at `now`. False — nothing changes — if another
    /// publisher has taken over since. A second loss keeps the first instant.
    pub fn interrupt(&mut self, generation: u64, now: Instant) -> bool {
        if self.generation != generation {
            return false;
        }
        self.interrupted_at.get_or_insert(now);
        true
    }

    /// Another publisher takes over a stream that has not `ended`: a new generation.
    pub fn take_over(&mut self, ended: bool) -> bool {
        if ended {
            return false;
        }
        self.interrupted_at = None;
        self.generation += 1;
        true
    }

    /// A publisher is back at `now`: the stream continues (a new generation) if it is
    /// interrupted, has not `ended`, and was lost no more than `grace` before `now`.
    pub fn resume(&mut self, grace: Duration, ended: bool, now: Instant) -> bool {
        match self.interrupted_at {
            Some(at) if !ended && now.saturating_duration_since(at) <= grace => {
                self.interrupted_at = None;
                self.generation += 1;
                true
            }
            _ => false,
        }
    }

    /// Whether the grace timer of publish `generation` may end the stream: it is still
    /// interrupted and nobody resumed or took it over since.
    pub fn still_interrupted(&self, generation: u64) -> bool {
        self.interrupted_at.is_some() && self.generation == generation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    /// 2026-03-01T20:00:00Z.
    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_772_395_200, 0).expect("in range")
    }

    fn secs(s: f64) -> chrono::Duration {
        chrono::Duration::nanoseconds((s * 1e9) as i64)
    }

    #[test]
    fn resume_within_grace_and_expiry_after_it() {
        let start = Instant::now();
        let grace = Duration::from_secs(15);
        let mut continuity = Continuity::default();
        assert!(continuity.interrupt(0, start));
        // A second loss report (e.g. the pipeline and the session) keeps the first instant.
        assert!(continuity.interrupt(0, start + Duration::from_secs(3)));
        assert_eq!(continuity.interrupted_at(), Some(start));
        // Back exactly at the end of the grace period: continued.
        let mut at_grace = continuity.clone();
        assert!(at_grace.resume(grace, false, start + grace));
        assert_eq!(
            (at_grace.generation(), at_grace.interrupted_at()),
            (1, None)
        );
        // A nanosecond later: over; the grace timer ends the stream.
        let mut late = continuity.clone();
        assert!(!late.resume(grace, false, start + grace + Duration::from_nanos(1)));
        assert!(late.still_interrupted(0));
        // Not interrupted, or ended: nothing to resume.
        assert!(!Continuity::default().resume(grace, false, start));
        assert!(!continuity.clone().resume(grace, true, start));
    }

    #[test]
    fn a_stale_grace_timer_after_a_resume_ends_nothing() {
        let start = Instant::now();
        let mut continuity = Continuity::default();
        assert!(continuity.interrupt(0, start));
        assert!(continuity.resume(
            Duration::from_secs(15),
            false,
            start + Duration::from_secs(2)
        ));
        // The first publish's timer fires at 15 s: generation 0 is over.
        assert!(!continuity.still_interrupted(0));
        // Its late loss report changes nothing either.
        assert!(!continuity.interrupt(0, start + Duration::from_secs(16)));
        assert_eq!(continuity.interrupted_at(), None);
        // The resumed publisher is lost in turn: its own timer (generation 1) counts.
        assert!(continuity.interrupt(1, start + Duration::from_secs(20)));
        assert!(!continuity.still_interrupted(0));
        assert!(continuity.still_interrupted(1));
        // A takeover starts generation 2; generation 1's timer is stale.
        assert!(continuity.take_over(false));
        assert!(!continuity.still_interrupted(1));
        assert!(!continuity.take_over(true), "not after the end");
    }

    /// A timeline continuing another node's: the first reanchor dates the new media at the
    /// old owner's seam date (never later than the old owner's date of that media time), or
    /// keeps the old dates without one; later reanchors follow the wall clock again.
    #[test]
    fn a_continued_timeline_dates_its_first_media_at_the_seam() {
        let anchor = Some((0, t0()));
        let mut seamed = Timeline::continuing(Some(10 * S), anchor, Some(t0() + secs(8.0)));
        let first = seamed.continue_at().expect("media end");
        seamed.reanchor(first, t0() + secs(30.0));
        assert_eq!(seamed.program_date_time(first, t0()), t0() + secs(8.0));
        assert_eq!(seamed.program_date_time(first + S, t0()), t0() + secs(9.0));
        // A seam date later than the old owner's own date of the media: the old date.
        let mut late = Timeline::continuing(Some(10 * S), anchor, Some(t0() + secs(60.0)));
        late.reanchor(first, t0() + secs(30.0));
        assert_eq!(late.program_date_time(first, t0()), t0() + secs(10.1));
        // Without a seam date: the old owner's dates run on.
        let mut kept = Timeline::continuing(Some(10 * S), anchor, None);
        kept.reanchor(first, t0() + secs(30.0));
        assert_eq!(kept.program_date_time(first, t0()), t0() + secs(10.1));
        // The next publish (a reconnect to this node) is dated by the wall clock again.
        seamed.note_media(20 * S);
        let again = seamed.continue_at().expect("media end");
        seamed.reanchor(again, t0() + secs(40.0));
        assert_eq!(seamed.program_date_time(again, t0()), t0() + secs(40.0));
    }

    #[test]
    fn program_date_time_continues_across_the_seam() {
        let mut timeline = Timeline::default();
        // First publish: media 0 at t0; 10 s of media, then the publisher is lost.
        timeline.anchor(0, t0());
        timeline.anchor(5 * S, t0() + secs(100.0)); // first call wins
        assert_eq!(
            timeline.program_date_time(4 * S, t0() + secs(999.0)),
            t0() + secs(4.0)
        );
        timeline.note_media(10 * S);
        timeline.note_media(9 * S); // never goes back
        let seam = timeline.continue_at().expect("media seen");
        assert_eq!(seam, 10 * S + CONTINUE_MARGIN_NS);
        // Back 5 s later (wall t0 + 15 s): the new media starts at the seam, dated now.
        let mut resumed = timeline.clone();
        resumed.reanchor(seam, t0() + secs(15.0));
        assert_eq!(resumed.program_date_time(seam, t0()), t0() + secs(15.0));
        assert_eq!(
            resumed.program_date_time(seam + 2 * S, t0()),
            t0() + secs(17.0)
        );
        assert!(resumed.program_date_time(seam, t0()) > timeline.program_date_time(10 * S, t0()));
        assert_eq!(resumed.media_time_at(t0() + secs(16.0)), Some(seam + S));
        // A publisher that ran ahead of real time: dates never go back at the seam.
        let mut ahead = timeline.clone();
        ahead.reanchor(seam, t0() + secs(8.0));
        assert_eq!(ahead.program_date_time(seam, t0()), t0() + secs(10.1));
        // Before any anchor, a continuing publish anchors at its own instant.
        let mut fresh = Timeline::default();
        assert_eq!(fresh.continue_at(), None);
        fresh.reanchor(3 * S, t0());
        assert_eq!(
            fresh.media_time_at(t0() - secs(4.0)),
            None,
            "before media 0"
        );
    }
}
