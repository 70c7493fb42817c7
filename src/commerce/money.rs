//! Exact decimal amounts of money: the decimal strings of prices (`"49.00"`) as integers of
//! millionths, so sums never go through a float.

use std::fmt;

/// Digits after the point an amount may have.
pub const MAX_FRACTION_DIGITS: usize = 6;
/// Digits before the point an amount may have.
pub const MAX_WHOLE_DIGITS: usize = 15;
/// Millionths per unit.
const SCALE: i128 = 1_000_000;

/// A non-negative amount, exact to [`MAX_FRACTION_DIGITS`] decimal places (held in millionths;
/// `i128`, so sums of any realistic number of amounts cannot overflow).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(i128);

impl Amount {
    /// Zero.
    pub const ZERO: Amount = Amount(0);

    /// Parses a decimal string such as `49.00`: digits, an optional fraction, never a float
    /// (`1e3`, `49,00`, `-1` and `.5` are refused).
    pub fn parse(text: &str) -> Option<Amount> {
        let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole)
            || !digits(fraction)
            || whole.len() > MAX_WHOLE_DIGITS
            || fraction.len() > MAX_FRACTION_DIGITS
        {
            return None;
        }
        let whole: i128 = whole.parse().ok()?;
        let padded = format!("{fraction:0<width$}", width = MAX_FRACTION_DIGITS);
        let fraction: i128 = padded.parse().ok()?;
        Some(Amount(whole * SCALE + fraction))
    }

    /// `self × quantity`, saturating.
    pub fn times(self, quantity: u64) -> Amount {
        Amount(self.0.saturating_mul(i128::from(quantity)))
    }

    /// `self + other`, saturating.
    pub fn plus(self, other: Amount) -> Amount {
        Amount(self.0.saturating_add(other.0))
    }
}

impl fmt::Display for Amount {
    /// At least two decimals, more only when needed: `49.00`, `3.50`, `0.125`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / SCALE;
        let fraction = format!("{:06}", self.0 % SCALE);
        let fraction = fraction.trim_end_matches('0');
        write!(f, "{whole}.{fraction:0<2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_decimal_strings_only() {
        assert_eq!(Amount::parse("49.00"), Some(Amount(49_000_000)));
        assert_eq!(Amount::parse("0.000001"), Some(Amount(1)));
        assert_eq!(Amount::parse("7"), Some(Amount(7_000_000)));
        for bad in [
            "",
            ".5",
            "5.",
            "-1",
            "1e3",
            "49,00",
            " 1",
            "0.0000001",
            "1234567890123456",
        ] {
            assert_eq!(Amount::parse(bad), None, "{bad:?}");
        }
        assert!(Amount::parse("999999999999999.999999").is_some());
    }

    #[test]
    fn sums_exactly_where_floats_do_not() {
        // 0.1 + 0.2 is 0.30000000000000004 in f64.
        let sum = Amount::parse("0.1")
            .unwrap()
            .plus(Amount::parse("0.2").unwrap());
        assert_eq!(sum.to_string(), "0.30");
        let many = (0..1000).fold(Amount::ZERO, |acc, _| {
            acc.plus(Amount::parse("0.01").unwrap())
        });
        assert_eq!(many.to_string(), "10.00");
        assert_eq!(
            Amount::parse("19.99").unwrap().times(3).to_string(),
            "59.97"
        );
        assert_eq!(Amount::parse("0.125").unwrap().to_string(), "0.125");
        assert_eq!(Amount::parse("3.5").unwrap().to_string(), "3.50");
        assert_eq!(Amount::ZERO.to_string(), "0.00");
        let huge = Amount::parse("999999999999999.999999").unwrap();
        assert_eq!(huge.times(u64::MAX).plus(huge), Amount(i128::MAX));
    }
}
