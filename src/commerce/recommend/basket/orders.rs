//! Reads order lines in the Instacart layout (`order_id,user_id,order_number,product_id`,
//! optionally `add_to_cart_order` and `days_since_prior_order`; other columns such as
//! `order_dow` or a leading unnamed index are ignored), columns found by the header in any
//! order, into each shopper's orders in `order_number` order, each with its day on the
//! shopper's clock when the file has the days between orders, and splits them the way the
//! evaluation protocol does.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::Baskets;

/// Columns the reader needs.
const REQUIRED: [&str; 4] = ["order_id", "user_id", "order_number", "product_id"];

/// Why an orders file cannot be read. Lines are 1-based lines of the file (the header is 1).
#[derive(Debug, thiserror::Error)]
pub enum OrdersError {
    /// The file cannot be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Not CSV (or a row with the wrong number of fields).
    #[error("line {line}: {source}")]
    Csv {
        /// Where.
        line: u64,
        /// The CSV reader's complaint.
        source: csv::Error,
    },
    /// The header lacks a column the reader needs.
    #[error("line 1: missing column `{column}` (need order_id, user_id, order_number, product_id)")]
    MissingColumn {
        /// The column.
        column: &'static str,
    },
    /// A cell is empty or not the number it should be.
    #[error("line {line}, column `{column}`: {reason}, got {value:?}")]
    Value {
        /// Where.
        line: u64,
        /// The column's name.
        column: &'static str,
        /// The cell.
        value: String,
        /// What was expected.
        reason: &'static str,
    },
    /// One order's lines disagree on its shopper or number.
    #[error(
        "line {line}, column `{column}`: order {order} was {before} on an earlier line, here {now}"
    )]
    Inconsistent {
        /// Where.
        line: u64,
        /// `user_id` or `order_number`.
        column: &'static str,
        /// The order id.
        order: String,
        /// Its earlier value.
        before: String,
        /// This line's value.
        now: String,
    },
    /// No order lines at all.
    #[error("no order lines")]
    Empty,
}

/// One order.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    /// `order_id`.
    pub id: String,
    /// `order_number`: the order's place in its shopper's history.
    pub number: u64,
    /// Its products in `add_to_cart_order` (file order without that column), each once.
    pub products: Vec<String>,
    /// `days_since_prior_order`: days since the shopper's previous order (`None`: the first
    /// order, an empty cell or a file without the column).
    pub days_since_prior: Option<f32>,
    /// The order's day on the shopper's clock: 0 for their first order, then the running sum
    /// of `days_since_prior` (`None` without the column, or from an order whose days since the
    /// one before are unknown or whose number skips one, on).
    pub day: Option<f64>,
}

/// Every shopper's orders, oldest first; shoppers in the order of their first line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Orders {
    /// `(user_id, orders)`.
    pub users: Vec<(String, Vec<Order>)>,
}

/// Orders split for one evaluation: what models see, and each shopper's held-out order.
#[derive(Debug, Clone)]
pub struct Split {
    /// The orders before the held-out one.
    pub train: Baskets,
    /// Per shopper with a held-out order: `(user_id, its products)`.
    pub held_out: Vec<(String, Vec<String>)>,
    /// The day of each held-out order on its shopper's clock (as `train`'s baskets' days), in
    /// `held_out`'s order: when the shopper came back, the query time a server would have
    /// (nothing of what they bought); `None` unknown.
    pub held_out_days: Vec<Option<f64>>,
}

impl Orders {
    /// Reads a CSV file ([`Orders::read`]).
    pub fn read_file(path: &Path) -> Result<Orders, OrdersError> {
        let file = std::fs::File::open(path).map_err(|source| OrdersError::Io {
            path: path.to_owned(),
            source,
        })?;
        Orders::read(std::io::BufReader::new(file))
    }

    /// Reads CSV order lines with a header row.
    pub fn read(input: impl Read) -> Result<Orders, OrdersError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(input);
        let csv_error = |source: csv::Error| OrdersError::Csv {
            line: source.position().map_or(1, |p| p.line()),
            source,
        };
        let header = reader.headers().map_err(csv_error)?.clone();
        let find = |name: &str| header.iter().position(|h| h.trim() == name);
        let mut columns = [0usize; 4];
        for (slot, name) in columns.iter_mut().zip(REQUIRED) {
            *slot = find(name).ok_or(OrdersError::MissingColumn { column: name })?;
        }
        let [order_col, user_col, number_col, product_col] = columns;
        let cart_col = find("add_to_cart_order");
        let days_col = find("days_since_prior_order");

        // order id → (user, number, days since the prior order, lines (cart position,
        // product)).
        struct Building {
            user: String,
            number: u64,
            days: Option<f32>,
            lines: Vec<(f64, String)>,
        }
        let mut orders: HashMap<String, Building> = HashMap::new();
        let mut first_seen: Vec<String> = Vec::new();
        let mut record = csv::StringRecord::new();
        while reader.read_record(&mut record).map_err(csv_error)? {
            let line = record.position().map_or(0, |p| p.line());
            let cell = |col: usize, column: &'static str| -> Result<&str, OrdersError> {
                match record.get(col).map(str::trim) {
                    Some(value) if !value.is_empty() => Ok(value),
                    other => Err(OrdersError::Value {
                        line,
                        column,
                        value: other.unwrap_or_default().to_owned(),
                        reason: "empty",
                    }),
                }
            };
            let order = cell(order_col, "order_id")?;
            let user = cell(user_col, "user_id")?;
            let number = whole_number(cell(number_col, "order_number")?).ok_or_else(|| {
                OrdersError::Value {
                    line,
                    column: "order_number",
                    value: record.get(number_col).unwrap_or_default().to_owned(),
                    reason: "not a whole number ≥ 0",
                }
            })?;
            let product = cell(product_col, "product_id")?;
            let cart = match cart_col {
                None => f64::INFINITY,
                Some(col) => {
                    let raw = record.get(col).unwrap_or_default().trim();
                    if raw.is_empty() {
                        f64::INFINITY
                    } else {
                        raw.parse::<f64>()
                            .ok()
                            .filter(|x| x.is_finite())
                            .ok_or_else(|| OrdersError::Value {
                                line,
                                column: "add_to_cart_order",
                                value: raw.to_owned(),
                                reason: "not a number",
                            })?
                    }
                }
            };
            let days = match days_col {
                None => None,
                Some(col) => {
                    let raw = record.get(col).unwrap_or_default().trim();
                    if raw.is_empty() {
                        None
                    } else {
                        let days = raw
                            .parse::<f32>()
                            .ok()
                            .filter(|x| x.is_finite() && *x >= 0.0)
                            .ok_or_else(|| OrdersError::Value {
                                line,
                                column: "days_since_prior_order",
                                value: raw.to_owned(),
                                reason: "not a number of days ≥ 0",
                            })?;
                        Some(days)
                    }
                }
            };
            match orders.get_mut(order) {
                Some(building) => {
                    if building.user != user {
                        return Err(OrdersError::Inconsistent {
                            line,
                            column: "user_id",
                            order: order.to_owned(),
                            before: building.user.clone(),
                            now: user.to_owned(),
                        });
                    }
                    if building.number != number {
                        return Err(OrdersError::Inconsistent {
                            line,
                            column: "order_number",
                            order: order.to_owned(),
                            before: building.number.to_string(),
                            now: number.to_string(),
                        });
                    }
                    if building.days.is_none() {
                        building.days = days;
                    }
                    building.lines.push((cart, product.to_owned()));
                }
                None => {
                    first_seen.push(order.to_owned());
                    orders.insert(
                        order.to_owned(),
                        Building {
                            user: user.to_owned(),
                            number,
                            days,
                            lines: vec![(cart, product.to_owned())],
                        },
                    );
                }
            }
        }
        if orders.is_empty() {
            return Err(OrdersError::Empty);
        }
        let mut by_user: HashMap<String, Vec<Order>> = HashMap::new();
        let mut user_order: Vec<String> = Vec::new();
        for id in first_seen {
            let Some(mut building) = orders.remove(&id) else {
                continue;
            };
            // A stable sort: lines without a cart position keep their file order, last.
            building.lines.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut products: Vec<String> = Vec::with_capacity(building.lines.len());
            for (_, product) in building.lines {
                if !products.contains(&product) {
                    products.push(product);
                }
            }
            let entry = by_user.entry(building.user.clone()).or_default();
            if entry.is_empty() {
                user_order.push(building.user);
            }
            entry.push(Order {
                id,
                number: building.number,
                products,
                days_since_prior: building.days,
                day: None,
            });
        }
        let users = user_order
            .into_iter()
            .map(|user| {
                let mut list = by_user.remove(&user).unwrap_or_default();
                list.sort_by_key(|o| o.number);
                if days_col.is_some() {
                    clock(&mut list);
                }
                (user, list)
            })
            .collect();
        Ok(Orders { users })
    }

    /// Number of orders.
    pub fn orders(&self) -> usize {
        self.users.iter().map(|(_, o)| o.len()).sum()
    }

    /// Drops each shopper's last `drop_last` orders, holds out the last remaining one and puts
    /// the earlier ones in `train`: `drop_last` 0 is the test split, 1 the validation split.
    /// Shoppers with no order left to hold out are left out.
    pub fn split(&self, drop_last: usize) -> Split {
        let mut train = Baskets::new();
        let mut held_out = Vec::new();
        let mut held_out_days = Vec::new();
        for (user, orders) in &self.users {
            let Some(kept) = orders.len().checked_sub(drop_last) else {
                continue;
            };
            let Some((last, earlier)) = orders[..kept].split_last() else {
                continue;
            };
            for order in earlier {
                train.push_at(user, order.products.iter().map(String::as_str), order.day);
            }
            held_out.push((user.clone(), last.products.clone()));
            held_out_days.push(last.day);
        }
        Split {
            train,
            held_out,
            held_out_days,
        }
    }
}

/// Sets the days of one shopper's orders (sorted by number): the first 0, each next one the
/// day before plus its days since the prior order, unknown from an order without them or
/// whose number is not the one before's plus 1.
fn clock(orders: &mut [Order]) {
    let mut day: Option<f64> = None;
    let mut number: Option<u64> = None;
    for (i, order) in orders.iter_mut().enumerate() {
        day = if i == 0 {
            Some(0.0)
        } else {
            match (day, order.days_since_prior) {
                (Some(day), Some(gap)) if number.map(|n| n + 1) == Some(order.number) => {
                    Some(day + f64::from(gap))
                }
                _ => None,
            }
        };
        number = Some(order.number);
        order.day = day;
    }
}

/// `"12"` or `"12.0"` as 12.
fn whole_number(text: &str) -> Option<u64> {
    if let Ok(n) = text.parse::<u64>() {
        return Some(n);
    }
    let x = text.parse::<f64>().ok()?;
    (x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x < 9.0e15).then_some(x as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = ",order_id,user_id,order_number,order_dow,order_hour_of_day,days_since_prior_order,product_id,add_to_cart_order,reordered
0,10,1,2,2,8,,b,2.0,0.0
1,10,1,2,2,8,,a,1.0,0.0
2,11,1,1,2,8,,c,1.0,0.0
3,12,2,1,2,8,,a,1.0,0.0
4,13,1,3,2,8,3.0,d,1.0,1.0
";

    #[test]
    fn reads_the_instacart_layout_into_ordered_histories() {
        let orders = Orders::read(SAMPLE.as_bytes()).unwrap();
        assert_eq!(orders.orders(), 4);
        let (user, list) = &orders.users[0];
        assert_eq!(user, "1");
        let numbers: Vec<u64> = list.iter().map(|o| o.number).collect();
        assert_eq!(numbers, [1, 2, 3]);
        // add_to_cart_order, not file order.
        assert_eq!(list[1].products, ["a", "b"]);
        // The days since the prior order, and the day on the shopper's clock.
        let days: Vec<Option<f32>> = list.iter().map(|o| o.days_since_prior).collect();
        assert_eq!(days, [None, None, Some(3.0)]);
        // Order 2 has no days since order 1 (an empty cell): its day, and every later one, is
        // unknown.
        let clock: Vec<Option<f64>> = list.iter().map(|o| o.day).collect();
        assert_eq!(clock, [Some(0.0), None, None]);
    }

    #[test]
    fn days_add_up_to_each_orders_day_on_the_shoppers_clock() {
        let text = "order_id,user_id,order_number,product_id,days_since_prior_order
1,u,1,a,
2,u,2,b,7.0
2,u,2,c,7.0
3,u,3,a,30
4,u,4,a,0
5,v,1,a,
5,v,1,b,
6,v,3,a,2
";
        let orders = Orders::read(text.as_bytes()).unwrap();
        let days = |user: usize| -> Vec<Option<f64>> {
            orders.users[user].1.iter().map(|o| o.day).collect()
        };
        assert_eq!(days(0), [Some(0.0), Some(7.0), Some(37.0), Some(37.0)]);
        // v's order 2 is missing: the clock stops at order 3.
        assert_eq!(days(1), [Some(0.0), None]);
        // The split carries the days: the held-out order's is the query time.
        let test = orders.split(0);
        assert_eq!(test.held_out_days, [Some(37.0), None]);
        let validation = orders.split(1);
        assert_eq!(validation.held_out_days, [Some(37.0), Some(0.0)]);
        let u = validation.train.user_ix("u").unwrap();
        assert_eq!(validation.train.days(u), [Some(0.0), Some(7.0)]);
        // Without the column, no day is known.
        let plain = "order_id,user_id,order_number,product_id\n1,u,1,a\n2,u,2,b\n";
        let orders = Orders::read(plain.as_bytes()).unwrap();
        assert!(orders.users[0].1.iter().all(|o| o.day.is_none()));
        assert_eq!(orders.split(0).held_out_days, [None]);
        // A day that is not a number is an error naming the line.
        let bad = "order_id,user_id,order_number,product_id,days_since_prior_order\n1,u,1,a,x\n";
        let err = Orders::read(bad.as_bytes()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("line 2, column `days_since_prior_order`"),
            "{err}"
        );
    }

    #[test]
    fn columns_are_found_by_name_in_any_order() {
        let text = "product_id,order_number,user_id,order_id\nx,1,u,o1\ny,2,u,o2\n";
        let orders = Orders::read(text.as_bytes()).unwrap();
        assert_eq!(orders.users[0].1[1].products, ["y"]);
    }

    #[test]
    fn split_holds_out_the_last_order_or_the_one_before() {
        let orders = Orders::read(SAMPLE.as_bytes()).unwrap();
        let test = orders.split(0);
        assert_eq!(test.held_out[0], ("1".to_owned(), vec!["d".to_owned()]));
        assert_eq!(test.train.baskets(), 2); // user 1's first two; user 2's only order is held out
        assert_eq!(test.held_out.len(), 2);
        let validation = orders.split(1);
        assert_eq!(validation.held_out.len(), 1); // user 2 has nothing left
        assert_eq!(validation.held_out[0].1, ["a", "b"]);
        assert_eq!(validation.train.baskets(), 1);
    }

    #[test]
    fn errors_name_the_line_and_column() {
        let missing = "order_id,user_id,product_id\n1,2,3\n";
        let err = Orders::read(missing.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("`order_number`"), "{err}");

        let bad = "order_id,user_id,order_number,product_id\n1,2,3,p\n1,2,x,q\n";
        let err = Orders::read(bad.as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 3, column `order_number`: not a whole number ≥ 0, got \"x\""
        );

        let empty = "order_id,user_id,order_number,product_id\n1,,3,p\n";
        let err = Orders::read(empty.as_bytes()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("line 2, column `user_id`: empty"),
            "{err}"
        );

        let moved = "order_id,user_id,order_number,product_id\n1,2,3,p\n1,9,3,q\n";
        let err = Orders::read(moved.as_bytes()).unwrap_err();
        assert!(
            err.to_string().starts_with("line 3, column `user_id`"),
            "{err}"
        );

        let ragged = "order_id,user_id,order_number,product_id\n1,2,3\n";
        let err = Orders::read(ragged.as_bytes()).unwrap_err();
        assert!(err.to_string().starts_with("line 2:"), "{err}");

        let none = "order_id,user_id,order_number,product_id\n";
        assert!(matches!(
            Orders::read(none.as_bytes()),
            Err(OrdersError::Empty)
        ));
    }
}
