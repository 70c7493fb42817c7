//! Per-moment attribution: a show's events summed per product cue, per product and for the whole
//! show. A pure fold over the store's grouped rows; revenue is exact ([`Amount`]).

use std::collections::BTreeMap;

use super::model::EventType;
use crate::commerce::money::Amount;

/// A group of a show's events with the same cue, product, type and unit price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The cue on screen, if the events named one.
    pub cue: Option<String>,
    /// The product, if any (not for `view_show`).
    pub product: Option<String>,
    /// Their type.
    pub kind: EventType,
    /// Their unit price (purchases, add-to-carts that sent one).
    pub price: Option<Amount>,
    /// How many events.
    pub events: u64,
    /// Their quantities summed.
    pub quantity: u64,
}

/// What a cue, a product or a whole show brought.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// `view_show` events.
    pub views: u64,
    /// Product impressions.
    pub impressions: u64,
    /// Product card clicks.
    pub clicks: u64,
    /// Call-to-action clicks.
    pub cta_clicks: u64,
    /// Add-to-cart events.
    pub add_to_carts: u64,
    /// Purchase lines.
    pub purchases: u64,
    /// Units purchased.
    pub units: u64,
    /// Σ price × quantity of the purchases.
    pub revenue: Amount,
}

impl Counts {
    fn add(&mut self, group: &Group) {
        let n = group.events;
        match group.kind {
            EventType::ViewShow => self.views += n,
            EventType::Impression => self.impressions += n,
            EventType::Click => self.clicks += n,
            EventType::CtaClick => self.cta_clicks += n,
            EventType::AddToCart => self.add_to_carts += n,
            EventType::Purchase => {
                self.purchases += n;
                self.units += group.quantity;
                let price = group.price.unwrap_or(Amount::ZERO);
                self.revenue = self.revenue.plus(price.times(group.quantity));
            }
        }
    }

    /// The JSON of the API (`revenue` a decimal string).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "views": self.views,
            "impressions": self.impressions,
            "clicks": self.clicks,
            "cta_clicks": self.cta_clicks,
            "add_to_carts": self.add_to_carts,
            "purchases": self.purchases,
            "units": self.units,
            "revenue": self.revenue.to_string(),
        })
    }
}

/// A show's attribution.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Analytics {
    /// Every event of the show.
    pub totals: Counts,
    /// Events that named a cue, per cue id.
    pub cues: BTreeMap<String, Counts>,
    /// Events that named a product, per product id.
    pub products: BTreeMap<String, Counts>,
    /// Per cue, the products its events named (what the cue sold).
    pub cue_products: BTreeMap<String, BTreeMap<String, Counts>>,
    /// Distinct shoppers (users, and visitors not linked to a user); not a sum, so the store
    /// counts it and the caller sets it.
    pub shoppers: u64,
}

impl Analytics {
    /// Folds `groups` (in any order) into the show's figures.
    pub fn fold<'a>(groups: impl IntoIterator<Item = &'a Group>) -> Analytics {
        let mut out = Analytics::default();
        for group in groups {
            out.totals.add(group);
            if let Some(cue) = &group.cue {
                out.cues.entry(cue.clone()).or_default().add(group);
                if let Some(product) = &group.product {
                    out.cue_products
                        .entry(cue.clone())
                        .or_default()
                        .entry(product.clone())
                        .or_default()
                        .add(group);
                }
            }
            if let Some(product) = &group.product {
                out.products.entry(product.clone()).or_default().add(group);
            }
        }
        out
    }

    /// The body of `GET /api/shows/{id}/analytics`.
    pub fn to_json(&self, show: &str, currency: &str) -> serde_json::Value {
        let cues: Vec<_> = self
            .cues
            .iter()
            .map(|(cue, counts)| {
                let mut json = counts.to_json();
                let products: Vec<_> = self
                    .cue_products
                    .get(cue)
                    .into_iter()
                    .flatten()
                    .map(|(product, counts)| with_id("product", product, counts))
                    .collect();
                json["cue"] = cue.as_str().into();
                json["products"] = products.into();
                json
            })
            .collect();
        let products: Vec<_> = self
            .products
            .iter()
            .map(|(product, counts)| with_id("product", product, counts))
            .collect();
        serde_json::json!({
            "show": show,
            "currency": currency,
            "shoppers": self.shoppers,
            "totals": self.totals.to_json(),
            "cues": cues,
            "products": products,
        })
    }
}

fn with_id(key: &str, id: &str, counts: &Counts) -> serde_json::Value {
    let mut json = counts.to_json();
    json[key] = id.into();
    json
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(
        cue: Option<&str>,
        product: Option<&str>,
        kind: EventType,
        price: Option<&str>,
        events: u64,
        quantity: u64,
    ) -> Group {
        Group {
            cue: cue.map(Into::into),
            product: product.map(Into::into),
            kind,
            price: price.and_then(Amount::parse),
            events,
            quantity,
        }
    }

    #[test]
    fn sums_per_cue_per_product_and_per_show() {
        use EventType::*;
        let groups = [
            group(None, None, ViewShow, None, 10, 10),
            group(Some("c1"), Some("p1"), Impression, None, 8, 8),
            group(Some("c1"), Some("p1"), Click, None, 4, 4),
            group(Some("c1"), Some("p1"), CtaClick, None, 3, 3),
            group(Some("c1"), Some("p1"), AddToCart, Some("19.99"), 2, 5),
            group(Some("c1"), Some("p1"), Purchase, Some("19.99"), 2, 3),
            group(Some("c1"), Some("p1"), Purchase, Some("17.50"), 1, 1),
            group(Some("c2"), Some("p2"), Purchase, Some("0.10"), 3, 3),
            group(Some("c2"), Some("p1"), Click, None, 1, 1),
            group(None, Some("p1"), Purchase, Some("0.20"), 1, 1),
        ];
        let a = Analytics::fold(&groups);
        assert_eq!(a.totals.views, 10);
        assert_eq!(a.totals.impressions, 8);
        assert_eq!(a.totals.clicks, 5);
        assert_eq!(a.totals.purchases, 7);
        assert_eq!(a.totals.units, 8);
        // 3 × 19.99 + 17.50 + 3 × 0.10 + 0.20 = 59.97 + 17.50 + 0.30 + 0.20
        assert_eq!(a.totals.revenue.to_string(), "77.97");
        let c1 = &a.cues["c1"];
        assert_eq!(
            (c1.impressions, c1.clicks, c1.cta_clicks, c1.add_to_carts),
            (8, 4, 3, 2)
        );
        assert_eq!((c1.purchases, c1.units), (3, 4));
        assert_eq!(c1.revenue.to_string(), "77.47");
        let c2 = &a.cues["c2"];
        assert_eq!((c2.clicks, c2.purchases), (1, 3));
        assert_eq!(c2.revenue.to_string(), "0.30", "0.1 three times, exactly");
        assert_eq!(a.cue_products["c2"]["p1"].clicks, 1);
        assert_eq!(a.cue_products["c2"]["p2"].revenue.to_string(), "0.30");
        let p1 = &a.products["p1"];
        assert_eq!((p1.clicks, p1.purchases, p1.units), (5, 4, 5));
        assert_eq!(p1.revenue.to_string(), "77.67");
        assert_eq!(a.products.len(), 2);
        assert!(
            !a.cues.contains_key(""),
            "events without a cue only count per product and show"
        );

        let json = a.to_json("s1", "USD");
        assert_eq!(json["totals"]["revenue"], "77.97");
        assert_eq!(json["cues"][0]["cue"], "c1");
        assert_eq!(json["cues"][0]["products"][0]["product"], "p1");
        assert_eq!(json["cues"][1]["products"][1]["revenue"], "0.30");
        assert_eq!(json["products"][1]["product"], "p2");
        assert_eq!(json["currency"], "USD");
    }

    #[test]
    fn an_empty_show_is_all_zero() {
        let a = Analytics::fold(&[]);
        assert_eq!(a, Analytics::default());
        let json = a.to_json("s", "USD");
        assert_eq!(json["totals"]["revenue"], "0.00");
        assert_eq!(json["cues"], serde_json::json!([]));
    }
}
