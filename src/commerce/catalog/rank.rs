//! Ranking (pure): a product's recent popularity as an exponentially decayed sum of weighted
//! events, and its blend with the text score; and the opaque page cursor of listings.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::commerce::product::{FieldError, invalid};

/// A product's recent popularity: the sum of its events' weights, each halved every
/// `half_life` seconds since it happened. Kept as the value at the last update.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Popularity {
    /// Decayed sum at `at`.
    value: f64,
    /// Seconds (any fixed origin, e.g. the Unix epoch) of the last update.
    at: f64,
}

/// The factor a value decays by over `elapsed` seconds with `half_life` seconds.
fn decay(elapsed: f64, half_life: f64) -> f64 {
    if elapsed <= 0.0 {
        1.0
    } else {
        (-elapsed / half_life * std::f64::consts::LN_2).exp()
    }
}

impl Popularity {
    /// The popularity at `now` (seconds).
    pub fn at(&self, now: f64, half_life: f64) -> f64 {
        self.value * decay(now - self.at, half_life)
    }

    /// Adds an event of `weight` at `now`. An event older than the last update counts decayed
    /// by its age, so events may arrive out of order.
    pub fn record(&mut self, weight: f64, now: f64, half_life: f64) {
        if now >= self.at {
            self.value = self.at(now, half_life) + weight;
            self.at = now;
        } else {
            self.value += weight * decay(self.at - now, half_life);
        }
    }
}

/// The final score of a text match: the text score raised by popularity, `text · (1 + weight ·
/// ln(1 + popularity))`. Text relevance stays first (a product no one bought still ranks by how
/// well it matches) and popularity separates comparable matches; `weight` 0 turns it off.
pub fn blend(text_score: f32, popularity: f64, weight: f64) -> f32 {
    let boost = 1.0 + weight * popularity.max(0.0).ln_1p();
    (f64::from(text_score) * boost) as f32
}

/// Where the next page of a listing starts (opaque to clients: base64 of `a:<id>` or `o:<n>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// Browsing by id: the page starts after this id.
    After(String),
    /// Search results: the page starts at this rank.
    Offset(usize),
}

impl Cursor {
    /// The opaque form.
    pub fn encode(&self) -> String {
        let raw = match self {
            Cursor::After(id) => format!("a:{id}"),
            Cursor::Offset(n) => format!("o:{n}"),
        };
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Parses the opaque form; an error on `cursor` otherwise.
    pub fn decode(value: &str) -> Result<Cursor, FieldError> {
        let bad = || invalid("cursor", "not a cursor returned by this API");
        let raw = URL_SAFE_NO_PAD.decode(value).map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        match raw.split_once(':') {
            Some(("a", id)) => Ok(Cursor::After(id.to_string())),
            Some(("o", n)) => n.parse().map(Cursor::Offset).map_err(|_| bad()),
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: f64 = 3600.0;

    #[test]
    fn popularity_halves_every_half_life() {
        let mut p = Popularity::default();
        p.record(8.0, 1000.0, HOUR);
        assert_eq!(p.at(1000.0, HOUR), 8.0);
        assert!((p.at(1000.0 + HOUR, HOUR) - 4.0).abs() < 1e-9);
        assert!((p.at(1000.0 + 3.0 * HOUR, HOUR) - 1.0).abs() < 1e-9);
        p.record(1.0, 1000.0 + HOUR, HOUR);
        assert!((p.at(1000.0 + HOUR, HOUR) - 5.0).abs() < 1e-9);
    }

    #[test]
    fn a_late_event_counts_decayed_by_its_age() {
        let mut p = Popularity::default();
        p.record(1.0, 2.0 * HOUR, HOUR);
        p.record(4.0, HOUR, HOUR);
        assert!((p.at(2.0 * HOUR, HOUR) - 3.0).abs() < 1e-9);
    }

    #[test]
    fn recent_beats_old_at_equal_counts() {
        let (mut old, mut recent) = (Popularity::default(), Popularity::default());
        for i in 0..10 {
            old.record(1.0, f64::from(i), HOUR);
            recent.record(1.0, 5.0 * HOUR + f64::from(i), HOUR);
        }
        let now = 6.0 * HOUR;
        assert!(recent.at(now, HOUR) > 4.0 * old.at(now, HOUR));
    }

    #[test]
    fn blend_keeps_text_first_and_breaks_ties_by_popularity() {
        assert_eq!(blend(2.0, 0.0, 0.5), 2.0);
        assert_eq!(blend(2.0, 100.0, 0.0), 2.0);
        assert!(blend(2.0, 10.0, 0.5) > blend(2.0, 1.0, 0.5));
        // A much better text match is not overtaken by moderate popularity.
        assert!(blend(10.0, 0.0, 0.5) > blend(2.0, 20.0, 0.5));
        assert_eq!(blend(2.0, -3.0, 0.5), 2.0);
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_named() {
        for c in [Cursor::After("sku-1:x".into()), Cursor::Offset(40)] {
            assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        }
        for bad in ["", "!!", "eDox", &URL_SAFE_NO_PAD.encode("o:x")] {
            assert_eq!(Cursor::decode(bad).unwrap_err().field, "cursor", "{bad}");
        }
    }
}
