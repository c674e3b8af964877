//! The coin: e-CNY counted in integer fen (0.01 yuan). Never a float.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// Fen per yuan.
pub const FEN_PER_YUAN: i64 = 100;

/// An amount of money in fen. Signed, because ledger balances of issuer and control accounts are
/// negative by design; amounts carried by commands are checked to be positive where they arrive.
///
/// ```
/// use ecny::Amount;
///
/// let snack: Amount = "66.60".parse().unwrap();
/// assert_eq!(snack.fen(), 6_660);
/// assert_eq!(snack.yuan_sign().to_string(), "¥66.60");
/// assert!("66.666".parse::<Amount>().is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(i64);

#[derive(Debug, Error, PartialEq, Eq, Clone)]
pub enum AmountError {
    #[error("amount {0:?} is not yuan as digits with at most two decimals and no separators, e.g. 66.60 or 1000")]
    Malformed(String),
    #[error("amount {0:?} has a sign; an amount takes no sign: write yuan as digits with at most two decimals, e.g. 66.60")]
    Signed(String),
    #[error("amount {0:?} is too large")]
    TooLarge(String),
}

impl Amount {
    pub const ZERO: Amount = Amount(0);
    /// Largest amount any single command may carry: 10^15 yuan keeps every sum far from overflow.
    pub const MAX: Amount = Amount(1_000_000_000_000_000 * FEN_PER_YUAN);

    pub const fn from_fen(fen: i64) -> Amount {
        Amount(fen)
    }

    pub const fn from_yuan(yuan: i64) -> Amount {
        Amount(yuan * FEN_PER_YUAN)
    }

    pub const fn fen(self) -> i64 {
        self.0
    }

    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }

    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }

    /// Display with the yuan sign, e.g. `¥66.60`.
    pub fn yuan_sign(self) -> YuanSign {
        YuanSign(self)
    }
}

impl std::ops::Neg for Amount {
    type Output = Amount;
    fn neg(self) -> Amount {
        Amount(-self.0)
    }
}

impl std::iter::Sum for Amount {
    fn sum<I: Iterator<Item = Amount>>(iter: I) -> Amount {
        Amount(iter.map(|a| a.0).sum())
    }
}

/// `66.60`, `-0.05`, `0.00`.
impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let text = format!("{sign}{}.{:02}", abs / 100, abs % 100);
        f.pad(&text)
    }
}

/// `¥66.60`.
pub struct YuanSign(Amount);

/// Groups thousands for people: `¥8,000.00`, `-¥1,234,567.89`.
impl fmt::Display for YuanSign {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let abs = self.0.fen().unsigned_abs();
        let digits = (abs / 100).to_string();
        let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, digit) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(digit);
        }
        let sign = if self.0.is_negative() { "-" } else { "" };
        f.pad(&format!("{sign}¥{grouped}.{:02}", abs % 100))
    }
}

/// Parses yuan as digits with at most two decimals: `66`, `66.6`, `66.60`. Nothing else — no
/// sign, no currency sign, no thousands separators, no spaces — so an amount has one spelling
/// on the command line, in requests and in files.
impl FromStr for Amount {
    type Err = AmountError;

    fn from_str(text: &str) -> Result<Amount, AmountError> {
        if text.starts_with(['-', '+']) {
            return Err(AmountError::Signed(text.to_string()));
        }
        let malformed = || AmountError::Malformed(text.to_string());
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) if !fraction.is_empty() => (whole, fraction),
            Some(_) => return Err(malformed()),
            None => (text, ""),
        };
        let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits_only(whole) || !digits_only(fraction) || fraction.len() > 2 {
            return Err(malformed());
        }
        let too_large = || AmountError::TooLarge(text.to_string());
        let yuan: i64 = whole.parse().map_err(|_| too_large())?;
        let fen_part: i64 = match fraction.len() {
            0 => 0,
            1 => fraction.parse::<i64>().map_err(|_| malformed())? * 10,
            _ => fraction.parse().map_err(|_| malformed())?,
        };
        yuan.checked_mul(FEN_PER_YUAN)
            .and_then(|f| f.checked_add(fen_part))
            .filter(|f| *f <= Amount::MAX.0)
            .map(Amount)
            .ok_or_else(too_large)
    }
}

impl Amount {
    /// Reads back what `Display` printed, sign included (a day's net settlement may be below
    /// zero): an optional `-`, then the same form as `from_str`.
    pub fn parse_signed(text: &str) -> Result<Amount, AmountError> {
        match text.strip_prefix('-') {
            Some(rest) => rest
                .parse::<Amount>()
                .map(|amount| -amount)
                .map_err(|_| AmountError::Malformed(text.to_string())),
            None => text.parse(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn snack_shop_amount_parses_and_displays() {
        let amount: Amount = "66.60".parse().unwrap();
        assert_eq!(amount.fen(), 6660);
        assert_eq!(amount.to_string(), "66.60");
        assert_eq!(amount.yuan_sign().to_string(), "¥66.60");
        assert_eq!("66.6".parse::<Amount>().unwrap(), amount);
        assert_eq!("1000".parse::<Amount>().unwrap(), Amount::from_yuan(1000));
        assert_eq!(Amount::parse_signed("-0.05").unwrap().to_string(), "-0.05");
        assert_eq!(Amount::from_fen(-5).to_string(), "-0.05");
        assert_eq!(Amount::from_fen(-5).yuan_sign().to_string(), "-¥0.05");
        assert_eq!(
            Amount::from_yuan(8_000).yuan_sign().to_string(),
            "¥8,000.00"
        );
        assert_eq!(
            Amount::from_fen(-123_456_789).yuan_sign().to_string(),
            "-¥1,234,567.89"
        );
        assert_eq!(Amount::from_yuan(100).yuan_sign().to_string(), "¥100.00");
    }

    #[test]
    fn malformed_amounts_are_refused_with_the_text() {
        for bad in [
            "", ".", "1.", ".5", "1.234", "abc", "1e3", "1.-2", "¥", "1 000", "NaN", "1,000",
            "1,000.00", "¥66.60", " 66.60", "66.60 ", "1_000", "٣", "66.6.0",
        ] {
            let refused = bad.parse::<Amount>();
            assert!(
                matches!(&refused, Err(AmountError::Malformed(text)) if text == bad),
                "{bad:?} should be malformed, got {refused:?}"
            );
        }
        // A sign is named, so that `--amount -5` says why it is refused.
        for signed in ["-5", "+5", "-0.05", "--1"] {
            let refused = signed.parse::<Amount>().unwrap_err();
            assert_eq!(refused, AmountError::Signed(signed.into()));
            assert!(refused.to_string().contains("no sign"), "{refused}");
        }
        assert!(matches!(
            "99999999999999999999".parse::<Amount>(),
            Err(AmountError::TooLarge(_))
        ));
    }

    #[test]
    fn checked_arithmetic_reports_overflow() {
        assert_eq!(
            Amount::from_fen(i64::MAX).checked_add(Amount::from_fen(1)),
            None
        );
        assert_eq!(
            Amount::from_fen(i64::MIN).checked_sub(Amount::from_fen(1)),
            None
        );
        assert_eq!(
            Amount::from_fen(5).checked_sub(Amount::from_fen(7)),
            Some(Amount::from_fen(-2))
        );
    }

    proptest! {
        #[test]
        fn display_then_parse_round_trips(fen in -Amount::MAX.fen()..=Amount::MAX.fen()) {
            let amount = Amount::from_fen(fen);
            prop_assert_eq!(Amount::parse_signed(&amount.to_string()).unwrap(), amount);
            if !amount.is_negative() {
                prop_assert_eq!(amount.to_string().parse::<Amount>().unwrap(), amount);
            }
        }

        #[test]
        fn only_digits_with_up_to_two_decimals_parse(text in "[0-9.,¥+ -]{0,8}") {
            let canonical = {
                let (whole, fraction) = text.split_once('.').unwrap_or((&text, "0"));
                let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
                digits(whole) && digits(fraction) && fraction.len() <= 2
            };
            prop_assert_eq!(text.parse::<Amount>().is_ok(), canonical, "{:?}", text);
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(text in ".{0,24}") {
            let _ = text.parse::<Amount>();
            let _ = Amount::parse_signed(&text);
        }
    }
}
