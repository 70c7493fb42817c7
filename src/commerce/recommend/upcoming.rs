//! Upcoming shows for a shopper (sans-IO): each scheduled show is described by the tastes it
//! serves — its featured products, their categories and brands, its host, its tags — and a
//! shopper by the tastes of their events (weighted like popularity: a purchase says more than
//! a click). A show's score blends the cosine between the two (affinity) with how much its
//! products trend and how soon it starts; a shopper without a history gets trending and
//! soonest only (`fallback`). Time is Unix milliseconds, passed in.

use std::collections::HashMap;
use std::fmt;

/// Most tastes kept per shopper; past it, the weakest goes.
pub const MAX_TASTES: usize = 256;

/// What a taste is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Facet {
    /// A category path (every prefix counts).
    Category,
    /// A brand.
    Brand,
    /// A product.
    Product,
    /// A show's host.
    Host,
    /// A show's tag.
    Tag,
}

impl fmt::Display for Facet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Facet::Category => "category",
            Facet::Brand => "brand",
            Facet::Product => "product",
            Facet::Host => "host",
            Facet::Tag => "tag",
        })
    }
}

/// A taste: a facet and its value.
pub type Taste = (Facet, String);

/// A shopper's tastes and how strongly.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    weights: HashMap<Taste, f64>,
}

impl Profile {
    /// Adds `weight` to `taste`.
    pub fn add(&mut self, taste: Taste, weight: f64) {
        if !(weight.is_finite() && weight > 0.0) {
            return;
        }
        if !self.weights.contains_key(&taste) && self.weights.len() >= MAX_TASTES {
            let weakest = self
                .weights
                .iter()
                .min_by(|a, b| a.1.total_cmp(b.1))
                .map(|(t, _)| t.clone());
            if let Some(weakest) = weakest {
                self.weights.remove(&weakest);
            }
        }
        *self.weights.entry(taste).or_default() += weight;
    }

    /// Whether nothing is known of the shopper.
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    fn norm(&self) -> f64 {
        self.weights.values().map(|w| w * w).sum::<f64>().sqrt()
    }

    /// Approximate heap bytes.
    pub fn memory_bytes(&self) -> usize {
        self.weights.keys().map(|(_, t)| t.len() + 48).sum()
    }
}

/// A scheduled show as the ranking sees it.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The show's id.
    pub show: String,
    /// When it is scheduled to start, Unix ms.
    pub starts_at_ms: i64,
    /// The tastes it serves and their weights.
    pub tastes: HashMap<Taste, f64>,
    /// How much its products trend, 0..=1.
    pub trend: f64,
}

/// The blend.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    /// Of the affinity.
    pub affinity: f64,
    /// Of the products' trend.
    pub trending: f64,
    /// Of the soonness.
    pub soon: f64,
    /// A show this many ms away gets half the soonness of one starting now.
    pub soon_half_ms: f64,
}

/// A ranked show.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    /// The show's id.
    pub show: String,
    /// When it starts, Unix ms.
    pub starts_at_ms: i64,
    /// The blended score.
    pub score: f64,
    /// Why.
    pub reason: String,
}

/// "in 3 h 5 min" (or "now").
fn until(ms: i64) -> String {
    let minutes = ms.max(0) / 60_000;
    match (minutes / 60, minutes % 60) {
        (0, 0) => "now".into(),
        (0, m) => format!("in {m} min"),
        (h, 0) => format!("in {h} h"),
        (h, m) => format!("in {h} h {m} min"),
    }
}

/// Ranks `candidates` for `profile` (none or empty: the cold-start blend) at `now_ms`; the best
/// `limit`, and whether the cold-start blend was used.
pub fn rank(
    profile: Option<&Profile>,
    candidates: &[Candidate],
    now_ms: i64,
    weights: &Weights,
    limit: usize,
) -> (Vec<Ranked>, bool) {
    let profile = profile.filter(|p| !p.is_empty());
    let norm = profile.map_or(0.0, Profile::norm);
    let mut ranked: Vec<Ranked> = candidates
        .iter()
        .map(|c| {
            let away = c.starts_at_ms - now_ms;
            let soon = 1.0 / (1.0 + away.max(0) as f64 / weights.soon_half_ms);
            let mut score = weights.trending * c.trend + weights.soon * soon;
            let mut reason = format!("starts {}", until(away));
            if c.trend > 0.0 {
                reason.push_str(&format!("; its products trend ({:.0} %)", c.trend * 100.0));
            }
            if let Some(profile) = profile {
                let mut dot = 0.0;
                let mut best: Option<(&Taste, f64)> = None;
                for (taste, w) in &c.tastes {
                    if let Some(mine) = profile.weights.get(taste) {
                        let part = mine * w;
                        dot += part;
                        if best.is_none_or(|(_, b)| part > b) {
                            best = Some((taste, part));
                        }
                    }
                }
                let theirs = c.tastes.values().map(|w| w * w).sum::<f64>().sqrt();
                let affinity = dot / (norm * theirs).max(f64::MIN_POSITIVE);
                score += weights.affinity * affinity;
                if let Some(((facet, value), _)) = best {
                    reason = format!(
                        "matches your {facet} {value:?} (affinity {:.0} %); {reason}",
                        affinity * 100.0
                    );
                }
            }
            Ranked {
                show: c.show.clone(),
                starts_at_ms: c.starts_at_ms,
                score,
                reason,
            }
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.starts_at_ms.cmp(&b.starts_at_ms))
            .then(a.show.cmp(&b.show))
    });
    ranked.truncate(limit);
    (ranked, profile.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    fn weights() -> Weights {
        Weights {
            affinity: 0.6,
            trending: 0.25,
            soon: 0.15,
            soon_half_ms: 24.0 * HOUR as f64,
        }
    }

    fn show(id: &str, hours: i64, tastes: &[(Facet, &str)], trend: f64) -> Candidate {
        Candidate {
            show: id.into(),
            starts_at_ms: hours * HOUR,
            tastes: tastes
                .iter()
                .map(|(f, v)| ((*f, v.to_string()), 1.0))
                .collect(),
            trend,
        }
    }

    #[test]
    fn a_cold_shopper_gets_soonest_and_trending_a_known_one_their_tastes_explained() {
        let shows = [
            show(
                "cheese",
                48,
                &[(Facet::Category, "Dairy"), (Facet::Host, "ann")],
                0.0,
            ),
            show(
                "bread",
                2,
                &[(Facet::Category, "Bakery"), (Facet::Host, "bob")],
                0.0,
            ),
            show("hot", 30, &[(Facet::Category, "Snacks")], 0.9),
        ];
        let (cold, fallback) = rank(None, &shows, 0, &weights(), 10);
        assert!(fallback);
        let order: Vec<&str> = cold.iter().map(|r| r.show.as_str()).collect();
        assert_eq!(order, ["hot", "bread", "cheese"], "{cold:?}");
        assert!(cold[0].reason.contains("trend"), "{}", cold[0].reason);
        assert_eq!(cold[1].reason, "starts in 2 h");

        let mut profile = Profile::default();
        profile.add((Facet::Category, "Dairy".into()), 10.0);
        profile.add((Facet::Host, "ann".into()), 1.0);
        let (warm, fallback) = rank(Some(&profile), &shows, 0, &weights(), 10);
        assert!(!fallback);
        assert_eq!(warm[0].show, "cheese", "{warm:?}");
        assert!(
            warm[0]
                .reason
                .starts_with("matches your category \"Dairy\""),
            "{}",
            warm[0].reason
        );
        assert_ne!(warm, cold);
        let (empty, fallback) = rank(Some(&Profile::default()), &shows, 0, &weights(), 1);
        assert!(fallback && empty.len() == 1);
    }

    #[test]
    fn a_profile_keeps_its_strongest_tastes() {
        let mut p = Profile::default();
        for i in 0..MAX_TASTES + 10 {
            p.add((Facet::Product, format!("p{i}")), 1.0 + i as f64);
        }
        assert_eq!(p.weights.len(), MAX_TASTES);
        assert!(!p.weights.contains_key(&(Facet::Product, "p0".into())));
        assert!(
            p.weights
                .contains_key(&(Facet::Product, format!("p{}", MAX_TASTES + 9)))
        );
    }
}
