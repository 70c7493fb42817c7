//! A product as shown to viewers: reference plus display data, and its validation.

use serde::{Deserialize, Serialize};

/// Longest product id.
pub const MAX_PRODUCT_ID: usize = 128;
/// Longest title.
pub const MAX_TITLE: usize = 256;
/// Longest CTA label.
pub const MAX_LABEL: usize = 64;
/// Longest URL.
pub const MAX_URL: usize = 2048;

/// A call to action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cta {
    /// Button text.
    pub label: String,
    /// Where it leads (http/https).
    pub url: String,
}

/// The product a cue or a chat product card refers to, with display data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Product {
    /// The shop's product reference (SKU).
    pub id: String,
    /// Display title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Price as a decimal string (`49.00`), never a float.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
    /// ISO 4217 currency code (`USD`); required with a price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Product image (http/https).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// Call to action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cta: Option<Cta>,
}

/// A field that failed validation, named by its JSON path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// JSON path of the field (`product.price`).
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

fn invalid(field: &str, reason: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_string(),
        reason: reason.into(),
    }
}

impl Product {
    /// Checks every field; `at` is the product's JSON path (`product`), used in error names.
    pub fn validate(&self, at: &str) -> Result<(), FieldError> {
        let path = |name: &str| format!("{at}.{name}");
        check_text(&path("id"), &self.id, MAX_PRODUCT_ID, true)?;
        if let Some(title) = &self.title {
            check_text(&path("title"), title, MAX_TITLE, true)?;
        }
        match (&self.price, &self.currency) {
            (Some(price), Some(currency)) => {
                check_price(&path("price"), price)?;
                check_currency(&path("currency"), currency)?;
            }
            (Some(_), None) => {
                return Err(invalid(
                    &path("currency"),
                    format!("required with {}", path("price")),
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    &path("price"),
                    format!("required with {}", path("currency")),
                ));
            }
            (None, None) => {}
        }
        if let Some(url) = &self.image_url {
            check_url(&path("image_url"), url)?;
        }
        if let Some(cta) = &self.cta {
            check_text(&path("cta.label"), &cta.label, MAX_LABEL, true)?;
            check_url(&path("cta.url"), &cta.url)?;
        }
        Ok(())
    }
}

/// Text of at most `max` characters, without control characters (`required`: not blank).
pub fn check_text(field: &str, value: &str, max: usize, required: bool) -> Result<(), FieldError> {
    if required && value.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(invalid(field, format!("longer than {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// An absolute http(s) URL with a host, safe to put in an attribute.
pub fn check_url(field: &str, value: &str) -> Result<(), FieldError> {
    check_text(field, value, MAX_URL, true)?;
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .ok_or_else(|| invalid(field, "must be an http:// or https:// URL"))?;
    if rest.is_empty() || rest.starts_with('/') || value.contains([' ', '"', '<', '>', '\\']) {
        return Err(invalid(field, "is not a valid URL"));
    }
    Ok(())
}

/// An ISO 4217 code: three upper-case letters (`USD`).
pub fn check_currency(field: &str, value: &str) -> Result<(), FieldError> {
    if value.len() != 3 || !value.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(invalid(field, "must be an ISO 4217 code such as \"USD\""));
    }
    Ok(())
}

/// A decimal string such as `49.00`: digits, an optional fraction, never a float.
fn check_price(field: &str, value: &str) -> Result<(), FieldError> {
    match super::money::Amount::parse(value) {
        Some(_) => Ok(()),
        None => Err(invalid(field, "must be a decimal string such as \"49.00\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product() -> Product {
        Product {
            id: "sku-123".into(),
            title: Some("Rose perfume 50 ml".into()),
            price: Some("49.00".into()),
            currency: Some("USD".into()),
            image_url: Some("https://shop.example/i/sku-123.jpg".into()),
            cta: Some(Cta {
                label: "Buy now".into(),
                url: "https://shop.example/p/sku-123".into(),
            }),
        }
    }

    fn field_of(p: &Product) -> String {
        p.validate("product").unwrap_err().field
    }

    #[test]
    fn a_full_product_is_valid_and_round_trips() {
        let p = product();
        p.validate("product").unwrap();
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Product>(&json).unwrap(), p);
        Product {
            id: "x".into(),
            title: None,
            price: None,
            currency: None,
            image_url: None,
            cta: None,
        }
        .validate("product")
        .unwrap();
    }

    #[test]
    fn each_bad_field_is_named() {
        let base = product();
        let cases: Vec<(Product, &str)> = vec![
            (
                Product {
                    id: " ".into(),
                    ..base.clone()
                },
                "product.id",
            ),
            (
                Product {
                    title: Some("a\nb".into()),
                    ..base.clone()
                },
                "product.title",
            ),
            (
                Product {
                    price: Some("49,00".into()),
                    ..base.clone()
                },
                "product.price",
            ),
            (
                Product {
                    price: Some("1e3".into()),
                    ..base.clone()
                },
                "product.price",
            ),
            (
                Product {
                    currency: Some("usd".into()),
                    ..base.clone()
                },
                "product.currency",
            ),
            (
                Product {
                    currency: None,
                    ..base.clone()
                },
                "product.currency",
            ),
            (
                Product {
                    price: None,
                    ..base.clone()
                },
                "product.price",
            ),
            (
                Product {
                    image_url: Some("javascript:alert(1)".into()),
                    ..base.clone()
                },
                "product.image_url",
            ),
            (
                Product {
                    cta: Some(Cta {
                        label: "Buy".into(),
                        url: "https://".into(),
                    }),
                    ..base.clone()
                },
                "product.cta.url",
            ),
            (
                Product {
                    cta: Some(Cta {
                        label: "x".repeat(MAX_LABEL + 1),
                        url: "https://a.b".into(),
                    }),
                    ..base.clone()
                },
                "product.cta.label",
            ),
        ];
        for (p, field) in cases {
            assert_eq!(field_of(&p), field, "{p:?}");
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<Product>(r#"{"id":"a","colour":"red"}"#).unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }
}
