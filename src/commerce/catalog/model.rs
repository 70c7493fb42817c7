//! A catalog product: the fields a shop loads, their validation (pure) and the display data cues
//! and chat product cards take from it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::commerce::product::{
    Cta, FieldError, MAX_PRODUCT_ID, MAX_TITLE, Product, check_currency, check_price, check_text,
    check_url, invalid,
};

/// Longest brand.
pub const MAX_BRAND: usize = 128;
/// Longest category path, characters.
pub const MAX_CATEGORY: usize = 256;
/// Deepest category path (`a > b > c` is 3).
pub const MAX_CATEGORY_DEPTH: usize = 8;
/// Most attributes on one product.
pub const MAX_ATTRIBUTES: usize = 64;
/// Longest attribute name.
pub const MAX_ATTRIBUTE_NAME: usize = 64;
/// Longest attribute value.
pub const MAX_ATTRIBUTE_VALUE: usize = 1024;
/// The call-to-action label of a catalog product's card (its `url` is the target).
pub const CTA_LABEL: &str = "Shop now";
/// What separates the levels of a category path.
pub const CATEGORY_SEPARATOR: &str = " > ";

/// Whether a product can be bought now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// In stock (the default).
    #[default]
    InStock,
    /// A few left.
    LowStock,
    /// None left.
    SoldOut,
}

impl Availability {
    /// The wire name (`in_stock`).
    pub fn as_str(self) -> &'static str {
        match self {
            Availability::InStock => "in_stock",
            Availability::LowStock => "low_stock",
            Availability::SoldOut => "sold_out",
        }
    }

    /// Parses a wire name.
    pub fn parse(value: &str) -> Option<Availability> {
        [
            Availability::InStock,
            Availability::LowStock,
            Availability::SoldOut,
        ]
        .into_iter()
        .find(|a| a.as_str() == value)
    }
}

/// A product of the shop's catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogProduct {
    /// The shop's product reference (SKU): letters, digits, `-`, `_`, `.`, `:`.
    #[schema(min_length = 1)]
    pub id: String,
    /// Display title.
    pub title: String,
    /// Brand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    /// Category path, most general first: `beauty > fragrance`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Price as a decimal string (`49.00`).
    pub price: String,
    /// ISO 4217 currency code (`USD`).
    pub currency: String,
    /// Product image (http/https).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// The shop's product page (http/https).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Free-form attributes (`{"size": "50 ml"}`), searched with the rest.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// Stock state.
    #[serde(default)]
    pub availability: Availability,
}

/// The levels of a category path (`beauty > fragrance` → `["beauty", "fragrance"]`), trimmed;
/// empty levels are kept so validation can name them.
pub fn category_levels(category: &str) -> Vec<&str> {
    category.split('>').map(str::trim).collect()
}

/// A category path written the one way it is stored and matched: levels joined by ` > `.
pub fn normalize_category(category: &str) -> String {
    category_levels(category).join(CATEGORY_SEPARATOR)
}

fn check_id(field: &str, id: &str) -> Result<(), FieldError> {
    check_text(field, id, MAX_PRODUCT_ID, true)?;
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
    {
        return Err(invalid(
            field,
            format!("{bad:?} is not allowed (letters, digits, '-', '_', '.', ':')"),
        ));
    }
    Ok(())
}

impl CatalogProduct {
    /// Trims text fields and writes the category path the one way ([`normalize_category`]).
    pub fn normalized(mut self) -> CatalogProduct {
        self.id = self.id.trim().to_string();
        self.title = self.title.trim().to_string();
        self.brand = self
            .brand
            .map(|b| b.trim().to_string())
            .filter(|b| !b.is_empty());
        self.category = self
            .category
            .filter(|c| !c.trim().is_empty())
            .map(|c| normalize_category(&c));
        self.price = self.price.trim().to_string();
        self.currency = self.currency.trim().to_string();
        self
    }

    /// Checks every field; `at` is the product's path (`products[3]`), used in error names.
    pub fn validate(&self, at: &str) -> Result<(), FieldError> {
        let path = |name: &str| format!("{at}.{name}");
        check_id(&path("id"), &self.id)?;
        check_text(&path("title"), &self.title, MAX_TITLE, true)?;
        if let Some(brand) = &self.brand {
            check_text(&path("brand"), brand, MAX_BRAND, true)?;
        }
        if let Some(category) = &self.category {
            let field = path("category");
            check_text(&field, category, MAX_CATEGORY, true)?;
            let levels = category_levels(category);
            if levels.iter().any(|l| l.is_empty()) {
                return Err(invalid(
                    &field,
                    format!("empty level in {category:?} (write it like \"beauty > fragrance\")"),
                ));
            }
            if levels.len() > MAX_CATEGORY_DEPTH {
                return Err(invalid(
                    &field,
                    format!("deeper than {MAX_CATEGORY_DEPTH} levels"),
                ));
            }
        }
        check_price(&path("price"), &self.price)?;
        check_currency(&path("currency"), &self.currency)?;
        if let Some(url) = &self.image_url {
            check_url(&path("image_url"), url)?;
        }
        if let Some(url) = &self.url {
            check_url(&path("url"), url)?;
        }
        if self.attributes.len() > MAX_ATTRIBUTES {
            return Err(invalid(
                &path("attributes"),
                format!("more than {MAX_ATTRIBUTES} attributes"),
            ));
        }
        for (name, value) in &self.attributes {
            let field = format!("{at}.attributes.{name}");
            check_text(&field, name, MAX_ATTRIBUTE_NAME, true)?;
            check_text(&field, value, MAX_ATTRIBUTE_VALUE, false)?;
        }
        Ok(())
    }

    /// The display data of this product as a cue or a chat card shows it.
    pub fn display(&self) -> Product {
        Product {
            id: self.id.clone(),
            title: Some(self.title.clone()),
            price: Some(self.price.clone()),
            currency: Some(self.currency.clone()),
            image_url: self.image_url.clone(),
            cta: self.url.clone().map(|url| Cta {
                label: CTA_LABEL.to_string(),
                url,
            }),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A valid product with id `id`.
    pub(crate) fn sample(id: &str) -> CatalogProduct {
        CatalogProduct {
            id: id.into(),
            title: "Rose perfume 50 ml".into(),
            brand: Some("Maison Rose".into()),
            category: Some("beauty > fragrance".into()),
            price: "49.00".into(),
            currency: "USD".into(),
            image_url: Some("https://shop.example/i/1.jpg".into()),
            url: Some("https://shop.example/p/1".into()),
            attributes: BTreeMap::from([("size".into(), "50 ml".into())]),
            availability: Availability::InStock,
        }
    }

    #[test]
    fn a_full_product_is_valid_and_gives_its_display_data() {
        let p = sample("sku-1");
        p.validate("products[0]").unwrap();
        let d = p.display();
        assert_eq!(d.title.as_deref(), Some("Rose perfume 50 ml"));
        assert_eq!(d.price.as_deref(), Some("49.00"));
        assert_eq!(
            d.cta.as_ref().map(|c| c.url.as_str()),
            Some("https://shop.example/p/1")
        );
        d.validate("product").unwrap();
    }

    #[test]
    fn each_bad_field_is_named_with_its_row() {
        let base = sample("a");
        let cases: Vec<(CatalogProduct, &str)> = vec![
            (
                CatalogProduct {
                    id: "a b".into(),
                    ..base.clone()
                },
                "products[3].id",
            ),
            (
                CatalogProduct {
                    id: "a/b".into(),
                    ..base.clone()
                },
                "products[3].id",
            ),
            (
                CatalogProduct {
                    title: " ".into(),
                    ..base.clone()
                },
                "products[3].title",
            ),
            (
                CatalogProduct {
                    brand: Some("x".repeat(MAX_BRAND + 1)),
                    ..base.clone()
                },
                "products[3].brand",
            ),
            (
                CatalogProduct {
                    category: Some("beauty >  > x".into()),
                    ..base.clone()
                },
                "products[3].category",
            ),
            (
                CatalogProduct {
                    category: Some("a>b>c>d>e>f>g>h>i".into()),
                    ..base.clone()
                },
                "products[3].category",
            ),
            (
                CatalogProduct {
                    price: "12,5".into(),
                    ..base.clone()
                },
                "products[3].price",
            ),
            (
                CatalogProduct {
                    currency: "usd".into(),
                    ..base.clone()
                },
                "products[3].currency",
            ),
            (
                CatalogProduct {
                    image_url: Some("ftp://x".into()),
                    ..base.clone()
                },
                "products[3].image_url",
            ),
            (
                CatalogProduct {
                    url: Some("https://".into()),
                    ..base.clone()
                },
                "products[3].url",
            ),
            (
                CatalogProduct {
                    attributes: BTreeMap::from([("size".into(), "a\u{7}".into())]),
                    ..base.clone()
                },
                "products[3].attributes.size",
            ),
        ];
        for (p, field) in cases {
            let err = p.validate("products[3]").unwrap_err();
            assert_eq!(err.field, field, "{p:?}");
        }
        let err = CatalogProduct {
            price: "12,5".into(),
            ..base
        }
        .validate("products[3]")
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("products[3].price: not a decimal \"12,5\""),
            "{err}"
        );
    }

    #[test]
    fn normalization_trims_and_writes_categories_one_way() {
        let p = CatalogProduct {
            id: " a ".into(),
            brand: Some("  ".into()),
            category: Some("Beauty>Fragrance ".into()),
            ..sample("a")
        }
        .normalized();
        assert_eq!(p.id, "a");
        assert_eq!(p.brand, None);
        assert_eq!(p.category.as_deref(), Some("Beauty > Fragrance"));
    }

    #[test]
    fn availability_names_round_trip_and_default_to_in_stock() {
        for a in [
            Availability::InStock,
            Availability::LowStock,
            Availability::SoldOut,
        ] {
            assert_eq!(Availability::parse(a.as_str()), Some(a));
        }
        assert_eq!(Availability::parse("gone"), None);
        let p: CatalogProduct =
            serde_json::from_str(r#"{"id":"a","title":"T","price":"1","currency":"USD"}"#).unwrap();
        assert_eq!(p.availability, Availability::InStock);
    }
}
