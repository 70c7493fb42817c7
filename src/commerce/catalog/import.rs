//! Product batches as the API and `cuecast catalog import` take them: a JSON array, or CSV with a
//! header row (pure parsing; every row normalized and validated, the first bad one named by its
//! row, field and reason).

use std::collections::BTreeMap;

use super::model::{Availability, CatalogProduct};
use crate::commerce::product::{FieldError, invalid};

/// The CSV columns with a field of their own; `attributes` takes a JSON object, and any
/// `attributes.NAME` column one attribute.
pub const CSV_COLUMNS: &[&str] = &[
    "id",
    "title",
    "brand",
    "category",
    "price",
    "currency",
    "image_url",
    "url",
    "availability",
    "attributes",
];

/// Prefix of a CSV column holding one attribute (`attributes.size`).
const ATTRIBUTE_COLUMN: &str = "attributes.";

/// The path of row `index` in error names: `products[3]`.
fn row(index: usize) -> String {
    format!("products[{index}]")
}

/// Normalizes and validates each product, naming the first bad one.
fn checked(products: Vec<CatalogProduct>) -> Result<Vec<CatalogProduct>, FieldError> {
    products
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let p = p.normalized();
            p.validate(&row(i)).map(|()| p)
        })
        .collect()
}

/// Parses a JSON array of products.
pub fn parse_json(body: &[u8]) -> Result<Vec<CatalogProduct>, FieldError> {
    let rows: Vec<serde_json::Value> = serde_json::from_slice(body).map_err(|err| {
        invalid(
            "products",
            format!("must be a JSON array of products: {err}"),
        )
    })?;
    let products = rows
        .into_iter()
        .enumerate()
        .map(|(i, value)| {
            serde_path_to_error::deserialize(value).map_err(|err| {
                let path = err.path().to_string();
                let field = if path == "." {
                    row(i)
                } else {
                    format!("{}.{path}", row(i))
                };
                invalid(&field, err.into_inner().to_string())
            })
        })
        .collect::<Result<Vec<CatalogProduct>, FieldError>>()?;
    checked(products)
}

/// Parses CSV with a header row naming [`CSV_COLUMNS`] (and `attributes.NAME` columns); empty
/// cells are absent fields. Errors name the data row (`products[0]` is the line after the
/// header) and its line.
pub fn parse_csv(text: &[u8]) -> Result<Vec<CatalogProduct>, FieldError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text);
    let header: Vec<String> = reader
        .headers()
        .map_err(|err| invalid("header", format!("unreadable CSV header: {err}")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    for name in &header {
        if !CSV_COLUMNS.contains(&name.as_str()) && !name.starts_with(ATTRIBUTE_COLUMN) {
            return Err(invalid(
                "header",
                format!(
                    "unknown column {name:?} (columns: {}, attributes.NAME)",
                    CSV_COLUMNS.join(", ")
                ),
            ));
        }
    }
    for required in ["id", "title", "price", "currency"] {
        if !header.iter().any(|h| h == required) {
            return Err(invalid("header", format!("missing column {required:?}")));
        }
    }
    let mut products = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record
            .map_err(|err| invalid(&row(i), format!("unreadable CSV (line {line}): {err}")))?;
        products.push(from_record(&header, &record, i).map_err(|mut err| {
            err.reason = format!("{} (line {line})", err.reason);
            err
        })?);
    }
    checked(products).map_err(|mut err| {
        if let Some(index) = row_index(&err.field) {
            err.reason = format!("{} (line {})", err.reason, index + 2);
        }
        err
    })
}

/// The row index named by an error's field (`products[3].price` → 3).
fn row_index(field: &str) -> Option<usize> {
    field
        .strip_prefix("products[")?
        .split(']')
        .next()?
        .parse()
        .ok()
}

fn from_record(
    header: &[String],
    record: &csv::StringRecord,
    index: usize,
) -> Result<CatalogProduct, FieldError> {
    let mut cells: BTreeMap<&str, String> = BTreeMap::new();
    let mut attributes = BTreeMap::new();
    for (name, cell) in header.iter().zip(record.iter()) {
        let cell = cell.trim();
        if cell.is_empty() {
            continue;
        }
        if let Some(attribute) = name.strip_prefix(ATTRIBUTE_COLUMN) {
            attributes.insert(attribute.to_string(), cell.to_string());
        } else {
            cells.insert(name.as_str(), cell.to_string());
        }
    }
    let at = row(index);
    let field = |name: &str| format!("{at}.{name}");
    if let Some(json) = cells.remove("attributes") {
        let parsed: BTreeMap<String, String> = serde_json::from_str(&json).map_err(|err| {
            invalid(
                &field("attributes"),
                format!("must be a JSON object of strings: {err}"),
            )
        })?;
        attributes.extend(parsed);
    }
    let mut take_required = |name: &str| {
        cells
            .remove(name)
            .ok_or_else(|| invalid(&field(name), "required"))
    };
    let id = take_required("id")?;
    let title = take_required("title")?;
    let price = take_required("price")?;
    let currency = take_required("currency")?;
    let availability = match cells.remove("availability") {
        None => Availability::default(),
        Some(value) => Availability::parse(&value).ok_or_else(|| {
            invalid(
                &field("availability"),
                format!("unknown availability {value:?} (in_stock, low_stock, sold_out)"),
            )
        })?,
    };
    Ok(CatalogProduct {
        id,
        title,
        brand: cells.remove("brand"),
        category: cells.remove("category"),
        price,
        currency,
        image_url: cells.remove("image_url"),
        url: cells.remove("url"),
        attributes,
        availability,
    })
}

/// A file for `cuecast catalog import`: a JSON array when its first non-blank byte is `[`,
/// CSV otherwise.
pub fn parse_file(bytes: &[u8]) -> Result<Vec<CatalogProduct>, FieldError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => parse_json(bytes),
        _ => parse_csv(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &str = r#"[
        {"id": "sku-1", "title": "Rose perfume", "brand": "Maison Rose",
         "category": "beauty>fragrance", "price": "49.00", "currency": "USD",
         "attributes": {"size": "50 ml"}, "availability": "low_stock"},
        {"id": "sku-2", "title": "Oud", "price": "12", "currency": "EUR"}
    ]"#;

    #[test]
    fn json_rows_are_parsed_and_normalized() {
        let products = parse_json(JSON.as_bytes()).unwrap();
        assert_eq!(products.len(), 2);
        assert_eq!(products[0].category.as_deref(), Some("beauty > fragrance"));
        assert_eq!(products[0].availability, Availability::LowStock);
        assert_eq!(products[0].attributes["size"], "50 ml");
        assert_eq!(products[1].brand, None);
    }

    #[test]
    fn json_errors_name_row_and_field() {
        let bad = r#"[{"id":"a","title":"A","price":"1","currency":"USD"},
                     {"id":"b","title":"B","price":"1","currency":"USD"},
                     {"id":"c","title":"C","price":"1","currency":"USD"},
                     {"id":"d","title":"D","price":"12,5","currency":"USD"}]"#;
        let err = parse_json(bad.as_bytes()).unwrap_err();
        assert_eq!(err.field, "products[3].price");
        assert!(err.reason.starts_with("not a decimal \"12,5\""), "{err}");
        let err =
            parse_json(br#"[{"id":"a","title":"A","price":12.5,"currency":"USD"}]"#).unwrap_err();
        assert_eq!(err.field, "products[0].price");
        let err =
            parse_json(br#"[{"id":"a","title":"A","price":"1","currency":"USD","color":"red"}]"#)
                .unwrap_err();
        assert_eq!(err.field, "products[0].color");
        assert!(err.reason.contains("unknown field"), "{err}");
        let err = parse_json(br#"[{"id":"a","price":"1","currency":"USD"}]"#).unwrap_err();
        assert!(err.reason.contains("title"), "{err}");
        let err = parse_json(
            br#"[{"id":"a","title":"A","price":"1","currency":"USD","availability":"gone"}]"#,
        )
        .unwrap_err();
        assert_eq!(err.field, "products[0].availability");
        assert_eq!(parse_json(b"{}").unwrap_err().field, "products");
    }

    #[test]
    fn csv_rows_with_attribute_columns() {
        let csv = "id,title,brand,category,price,currency,attributes.size,attributes,availability\n\
                   sku-1,\"Rose perfume, 50 ml\",Maison Rose,beauty > fragrance,49.00,USD,50 ml,\"{\"\"note\"\":\"\"rose\"\"}\",sold_out\n\
                   sku-2,Oud,,,12,EUR,,,\n";
        let products = parse_csv(csv.as_bytes()).unwrap();
        assert_eq!(products.len(), 2);
        assert_eq!(products[0].title, "Rose perfume, 50 ml");
        assert_eq!(products[0].attributes["size"], "50 ml");
        assert_eq!(products[0].attributes["note"], "rose");
        assert_eq!(products[0].availability, Availability::SoldOut);
        assert_eq!(products[1].brand, None);
        assert!(products[1].attributes.is_empty());
        assert_eq!(parse_file(csv.as_bytes()).unwrap(), products);
        assert_eq!(parse_file(format!("  {JSON}").as_bytes()).unwrap().len(), 2);
    }

    #[test]
    fn csv_errors_name_row_field_and_line() {
        let err = parse_csv(b"id,title,price,currency\na,A,1,USD\nb,B,12,5,USD\n").unwrap_err();
        assert_eq!(err.field, "products[1]");
        assert!(err.reason.contains("line 3"), "{err}");
        let err = parse_csv(b"id,title,price,currency\na,A,1,USD\nb,B,\"12,5\",USD\n").unwrap_err();
        assert_eq!(err.field, "products[1].price");
        assert!(err.reason.contains("(line 3)"), "{err}");
        let err = parse_csv(b"id,title,price,currency\na,,1,USD\n").unwrap_err();
        assert_eq!(err.field, "products[0].title");
        let err = parse_csv(b"id,title,price,currency,colour\n").unwrap_err();
        assert_eq!(err.field, "header");
        assert!(err.reason.contains("colour"), "{err}");
        let err = parse_csv(b"id,title,currency\n").unwrap_err();
        assert!(err.reason.contains("price"), "{err}");
        let err = parse_csv(b"id,title,price,currency,attributes\na,A,1,USD,[1]\n").unwrap_err();
        assert_eq!(err.field, "products[0].attributes");
    }
}
