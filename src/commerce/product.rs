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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Cta {
    /// Button text.
    pub label: String,
    /// Where it leads (http/https).
    pub url: String,
}

/// The product a cue or a chat product card refers to, with display data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Product {
    /// The shop's product reference (SKU).
    #[schema(min_length = 1)]
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

/// A [`FieldError`] on `field`.
pub fn invalid(field: &str, reason: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// Where a product that carries only its catalog id gets its display data: implemented by the
/// catalog, used by cues and chat product cards so they depend on `commerce` only.
pub trait ProductLookup: Send + Sync {
    /// The display data of catalog product `id`, if the catalog has it.
    fn display(&self, id: &str) -> Option<Product>;

    /// Whether the catalog holds no product at all (a shop whose cues carry their products
    /// inline).
    fn is_empty(&self) -> bool {
        false
    }

    /// Whether `id` may be named where a catalog product is expected (a show's featured
    /// products, a shopper event): the catalog has it, or there is no catalog to check against.
    fn admits(&self, id: &str) -> bool {
        self.is_empty() || self.display(id).is_some()
    }
}

/// No catalog: fills nothing in, admits every product id.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCatalog;

impl ProductLookup for NoCatalog {
    fn display(&self, _id: &str) -> Option<Product> {
        None
    }

    fn is_empty(&self) -> bool {
        true
    }
}

impl Product {
    /// A product given by its catalog id only, to be filled from the catalog ([`Product::resolve`]).
    pub fn reference(id: impl Into<String>) -> Product {
        Product {
            id: id.into(),
            title: None,
            price: None,
            currency: None,
            image_url: None,
            cta: None,
        }
    }

    /// Whether only the id is given (no display field): such a product must come from the
    /// catalog.
    pub fn is_reference(&self) -> bool {
        self.title.is_none()
            && self.price.is_none()
            && self.currency.is_none()
            && self.image_url.is_none()
            && self.cta.is_none()
    }

    /// Fills the fields this product leaves out from `catalog` (its catalog entry); the fields it
    /// gives win. Price and currency travel together.
    pub fn filled_from(self, catalog: Product) -> Product {
        let (price, currency) = if self.price.is_none() && self.currency.is_none() {
            (catalog.price, catalog.currency)
        } else {
            (self.price, self.currency)
        };
        Product {
            id: self.id,
            title: self.title.or(catalog.title),
            price,
            currency,
            image_url: self.image_url.or(catalog.image_url),
            cta: self.cta.or(catalog.cta),
        }
    }

    /// This product completed from the catalog: a bare id must name a catalog product (else an
    /// error on `{at}.id`); a product with display fields is completed where the catalog knows
    /// it and kept as given where it does not.
    pub fn resolve(self, lookup: &dyn ProductLookup, at: &str) -> Result<Product, FieldError> {
        match lookup.display(&self.id) {
            Some(catalog) => Ok(self.filled_from(catalog)),
            None if self.is_reference() => Err(invalid(
                &format!("{at}.id"),
                format!("no catalog product {:?}", self.id),
            )),
            None => Ok(self),
        }
    }

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

/// A decimal string such as `49.00` (an exact [`super::money::Amount`], never a float).
pub fn check_price(field: &str, value: &str) -> Result<(), FieldError> {
    match super::money::Amount::parse(value) {
        Some(_) => Ok(()),
        None => Err(invalid(
            field,
            format!("not a decimal {value:?} (write it like \"49.00\")"),
        )),
    }
}

/// An ISO 4217 currency code: three upper-case letters (`USD`).
pub fn check_currency(field: &str, value: &str) -> Result<(), FieldError> {
    if value.len() != 3 || !value.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(invalid(field, "must be an ISO 4217 code such as \"USD\""));
    }
    Ok(())
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

    struct Catalog(Product);

    impl ProductLookup for Catalog {
        fn display(&self, id: &str) -> Option<Product> {
            (id == self.0.id).then(|| self.0.clone())
        }
    }

    #[test]
    fn a_bare_id_is_filled_from_the_catalog_and_given_fields_win() {
        let catalog = Catalog(product());
        assert!(Product::reference("sku-123").is_reference());
        assert!(!product().is_reference());
        assert_eq!(
            Product::reference("sku-123")
                .resolve(&catalog, "product")
                .unwrap(),
            product()
        );
        let partial = Product {
            title: Some("Live deal".into()),
            price: Some("39.00".into()),
            currency: Some("EUR".into()),
            ..Product::reference("sku-123")
        };
        let filled = partial.resolve(&catalog, "product").unwrap();
        assert_eq!(filled.title.as_deref(), Some("Live deal"));
        assert_eq!(filled.price.as_deref(), Some("39.00"));
        assert_eq!(filled.currency.as_deref(), Some("EUR"));
        assert_eq!(filled.image_url, product().image_url);
        assert_eq!(filled.cta, product().cta);
    }

    #[test]
    fn an_unknown_bare_id_is_an_error_on_the_id_and_a_full_product_stays() {
        let catalog = Catalog(product());
        let err = Product::reference("nope")
            .resolve(&catalog, "product")
            .unwrap_err();
        assert_eq!(err.field, "product.id");
        assert!(err.reason.contains("\"nope\""), "{err}");
        let outside = Product {
            id: "elsewhere".into(),
            ..product()
        };
        assert_eq!(
            outside.clone().resolve(&catalog, "product").unwrap(),
            outside
        );
    }

    #[test]
    fn price_errors_quote_the_value() {
        let err = check_price("products[3].price", "12,5").unwrap_err();
        assert_eq!(
            err.to_string(),
            "products[3].price: not a decimal \"12,5\" (write it like \"49.00\")"
        );
        check_price("p", "12").unwrap();
        check_price("p", "12.50").unwrap();
        assert!(check_currency("c", "EURO").is_err());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<Product>(r#"{"id":"a","colour":"red"}"#).unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }
}
