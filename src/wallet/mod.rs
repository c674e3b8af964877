//! Wallets as the registration center sees them: pseudonymous, with a class, a status, limits
//! and the running totals the limits are checked against. Identity (phone, name, ID number) lives
//! only at the wallet's operator (`operator`). A holder's sub-wallets, pushed to merchant apps,
//! are in [`sub_wallet`].

pub mod class;
pub mod sub_wallet;

use crate::amount::Amount;
use crate::error::CommandError;
use crate::ids::{AccountId, OperatorId, WalletId};
use crate::time::{china_day, civil_year};

pub use class::{WalletClass, WalletStatus};

/// Limits of one wallet class; `None` means no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClassLimits {
    pub balance_cap: Option<Amount>,
    pub single_payment: Option<Amount>,
    pub daily: Option<Amount>,
    pub annual: Option<Amount>,
}

impl ClassLimits {
    /// DESIGN.md's defaults; each operator may configure its own.
    pub const fn default_for(class: WalletClass) -> ClassLimits {
        const fn yuan(y: i64) -> Option<Amount> {
            Some(Amount::from_yuan(y))
        }
        match class {
            WalletClass::Four => ClassLimits {
                balance_cap: yuan(10_000),
                single_payment: yuan(2_000),
                daily: yuan(5_000),
                annual: yuan(50_000),
            },
            WalletClass::Three => ClassLimits {
                balance_cap: yuan(20_000),
                single_payment: yuan(5_000),
                daily: yuan(10_000),
                annual: None,
            },
            WalletClass::Two => ClassLimits {
                balance_cap: yuan(500_000),
                single_payment: yuan(50_000),
                daily: yuan(100_000),
                annual: None,
            },
            WalletClass::One => ClassLimits {
                balance_cap: None,
                single_payment: None,
                daily: None,
                annual: None,
            },
        }
    }

    pub fn defaults() -> [ClassLimits; 4] {
        WalletClass::ALL.map(ClassLimits::default_for)
    }

    /// Each limit as fen, or -1 for none.
    pub(crate) fn encode(&self, out: &mut crate::codec::Writer) {
        for limit in [
            self.balance_cap,
            self.single_payment,
            self.daily,
            self.annual,
        ] {
            out.i64(limit.map_or(-1, Amount::fen));
        }
    }

    pub(crate) fn decode(
        input: &mut crate::codec::Reader<'_>,
    ) -> Result<ClassLimits, crate::codec::DecodeError> {
        let mut limit = || -> Result<Option<Amount>, crate::codec::DecodeError> {
            let fen = input.i64("limit")?;
            Ok((fen >= 0).then_some(Amount::from_fen(fen)))
        };
        Ok(ClassLimits {
            balance_cap: limit()?,
            single_payment: limit()?,
            daily: limit()?,
            annual: limit()?,
        })
    }
}

/// Sentinel for "no bank account bound".
const NO_ACCOUNT: u32 = u32::MAX;

/// A wallet in the registration center. Compact on purpose: ten million of them must fit in a
/// couple of hundred megabytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wallet {
    pub account: AccountId,
    pub operator: OperatorId,
    pub class: WalletClass,
    pub status: WalletStatus,
    bank_account: u32,
    /// Day number (China time) of `spent_today`.
    day: u32,
    spent_today: i64,
    /// Calendar year of `spent_this_year`.
    year: u16,
    spent_this_year: i64,
}

impl Wallet {
    pub fn new(account: AccountId, operator: OperatorId) -> Wallet {
        Wallet {
            account,
            operator,
            class: WalletClass::Four,
            status: WalletStatus::Active,
            bank_account: NO_ACCOUNT,
            day: 0,
            spent_today: 0,
            year: 0,
            spent_this_year: 0,
        }
    }

    pub fn bank_account(&self) -> Option<AccountId> {
        (self.bank_account != NO_ACCOUNT).then_some(AccountId(self.bank_account))
    }

    pub fn bind_bank_account(&mut self, account: AccountId) {
        assert_ne!(
            account.0, NO_ACCOUNT,
            "account id collides with the sentinel"
        );
        self.bank_account = account.0;
    }

    /// Paid so far on the day and in the year of `timestamp_ms`.
    pub fn spent(&self, timestamp_ms: u64) -> (Amount, Amount) {
        let day = china_day(timestamp_ms);
        if day == self.day {
            // Same day, same year: no calendar arithmetic on the hot path.
            return (
                Amount::from_fen(self.spent_today),
                Amount::from_fen(self.spent_this_year),
            );
        }
        let this_year = if civil_year(day as i64) as u16 == self.year {
            self.spent_this_year
        } else {
            0
        };
        (Amount::ZERO, Amount::from_fen(this_year))
    }

    pub fn ensure_active(&self, id: WalletId) -> Result<(), CommandError> {
        match self.status {
            WalletStatus::Active => Ok(()),
            WalletStatus::Frozen => Err(CommandError::WalletFrozen {
                wallet: id,
                status: self.status,
            }),
            WalletStatus::Closed => Err(CommandError::WalletClosed(id)),
        }
    }

    /// Checks a payment of `amount` out of this wallet against its class limits.
    pub fn check_outgoing(
        &self,
        limits: &ClassLimits,
        amount: Amount,
        timestamp_ms: u64,
    ) -> Result<(), CommandError> {
        let class = self.class;
        if let Some(limit) = limits.single_payment {
            if amount > limit {
                return Err(CommandError::LimitSinglePayment {
                    class,
                    amount,
                    limit,
                });
            }
        }
        self.check_totals_out(limits, amount, timestamp_ms)
    }

    /// Checks `amount` out of this wallet against the daily and annual limits alone: for a load
    /// into the holder's own secure element, whose offline payments its own caps bound.
    pub fn check_totals_out(
        &self,
        limits: &ClassLimits,
        amount: Amount,
        timestamp_ms: u64,
    ) -> Result<(), CommandError> {
        let class = self.class;
        let (today, this_year) = self.spent(timestamp_ms);
        if let Some(limit) = limits.daily {
            if today.fen() + amount.fen() > limit.fen() {
                return Err(CommandError::LimitDaily {
                    class,
                    amount,
                    limit,
                    used: today,
                });
            }
        }
        if let Some(limit) = limits.annual {
            if this_year.fen() + amount.fen() > limit.fen() {
                return Err(CommandError::LimitAnnual {
                    class,
                    amount,
                    limit,
                    used: this_year,
                });
            }
        }
        Ok(())
    }

    /// Checks that receiving `amount` keeps the balance within the class cap.
    pub fn check_incoming(
        &self,
        id: WalletId,
        limits: &ClassLimits,
        balance: Amount,
        amount: Amount,
    ) -> Result<(), CommandError> {
        match limits.balance_cap {
            Some(limit) if balance.fen() + amount.fen() > limit.fen() => {
                Err(CommandError::LimitBalanceCap {
                    wallet: id,
                    class: self.class,
                    amount,
                    limit,
                    balance,
                })
            }
            _ => Ok(()),
        }
    }

    /// Adds a completed outgoing payment to the running totals.
    pub fn record_outgoing(&mut self, amount: Amount, timestamp_ms: u64) {
        let day = china_day(timestamp_ms);
        if self.day != day {
            let year = civil_year(day as i64) as u16;
            if self.year != year {
                self.year = year;
                self.spent_this_year = 0;
            }
            self.day = day;
            self.spent_today = 0;
        }
        self.spent_today += amount.fen();
        self.spent_this_year += amount.fen();
    }

    pub(crate) fn encode(&self, out: &mut crate::codec::Writer) {
        out.u32(self.account.0)
            .u16(self.operator.0)
            .u8(self.class as u8)
            .u8(self.status as u8);
        out.u32(self.bank_account)
            .u32(self.day)
            .i64(self.spent_today)
            .u16(self.year)
            .i64(self.spent_this_year);
    }

    pub(crate) fn decode(
        input: &mut crate::codec::Reader<'_>,
    ) -> Result<Wallet, crate::codec::DecodeError> {
        let bad = |what, input: &crate::codec::Reader<'_>| crate::codec::DecodeError {
            what,
            offset: input.offset(),
        };
        Ok(Wallet {
            account: AccountId(input.u32("wallet account")?),
            operator: OperatorId(input.u16("wallet operator")?),
            class: WalletClass::from_u8(input.u8("class")?).ok_or_else(|| bad("class", input))?,
            status: WalletStatus::from_u8(input.u8("status")?)
                .ok_or_else(|| bad("status", input))?,
            bank_account: input.u32("bank account")?,
            day: input.u32("day")?,
            spent_today: input.i64("spent today")?,
            year: input.u16("year")?,
            spent_this_year: input.i64("spent this year")?,
        })
    }
}

/// A mainland mobile number: 11 digits starting with 1. Stored as an integer to keep the
/// operator's phone index small.
pub fn parse_phone(text: &str) -> Result<u64, CommandError> {
    let digits: String = text
        .trim()
        .trim_start_matches("+86")
        .chars()
        .filter(|c| *c != ' ' && *c != '-')
        .collect();
    let valid =
        digits.len() == 11 && digits.starts_with('1') && digits.bytes().all(|b| b.is_ascii_digit());
    if !valid {
        return Err(CommandError::MalformedPhone(text.to_string()));
    }
    Ok(digits.parse().expect("eleven digits fit in u64"))
}

/// Wallets of class 2 or better one identity (one resident ID number) may hold at one operator:
/// a class-2 wallet is the holder's main account, bound to their bank account.
pub const CLASS_TWO_WALLETS_PER_IDENTITY_MAX: usize = 1;
/// Characters of a resident ID number (GB 11643): 17 digits and a check character.
pub const ID_NUMBER_CHARS: usize = 18;
/// GB 11643 weights of the first 17 digits: 2^(17 - i) mod 11.
const ID_NUMBER_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// The check character for each weighted sum mod 11 (ISO 7064 MOD 11-2; 10 is written X).
const ID_NUMBER_CHECK: &[u8; 11] = b"10X98765432";

/// The GB 11643 check character of an ID number's first 17 digits.
pub fn id_number_check_character(first_17: &str) -> Option<char> {
    if first_17.len() != ID_NUMBER_CHARS - 1 || !first_17.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sum: u32 = first_17
        .bytes()
        .zip(ID_NUMBER_WEIGHTS)
        .map(|(digit, weight)| u32::from(digit - b'0') * weight)
        .sum();
    Some(char::from(ID_NUMBER_CHECK[(sum % 11) as usize]))
}

/// `first_17` digits completed with their check character: how demos and simulations make ID
/// numbers that pass the check.
pub fn id_number_from(first_17: &str) -> String {
    let check = id_number_check_character(first_17).expect("17 ASCII digits");
    format!("{first_17}{check}")
}

/// A resident ID number: 17 digits and the check character they call for (an upper-case X for 10).
pub fn check_id_number(text: &str) -> Result<(), CommandError> {
    let valid = text.len() == ID_NUMBER_CHARS
        && text.is_char_boundary(ID_NUMBER_CHARS - 1)
        && id_number_check_character(&text[..ID_NUMBER_CHARS - 1])
            .is_some_and(|check| text.ends_with(check));
    if valid {
        Ok(())
    } else {
        Err(CommandError::IdNumberInvalid(text.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::DAY_MS;

    #[test]
    fn id_numbers_carry_their_gb_11643_check_character() {
        // The standard's own example, and one whose check is 10 (X).
        for good in [
            "11010519491231002X",
            "440524188001010014",
            "110101199003074514",
        ] {
            check_id_number(good).unwrap();
        }
        for bad in [
            "110101199003074515",
            "11010519491231002x",
            "AAAAAAAAAAAAAAAAAA",
            "11010519491231002",
            "",
            "1101051949123100２X",
        ] {
            assert_eq!(
                check_id_number(bad).unwrap_err().code(),
                "ID_NUMBER_INVALID"
            );
        }
        assert_eq!(id_number_check_character("11010519491231002"), Some('X'));
    }

    /// 2026-11-23 12:00 in Beijing (04:00 UTC).
    const NOON_2026_11_23_MS: u64 = 1_795_406_400_000;

    #[test]
    fn class_four_limits_name_the_limit_broken() {
        let limits = ClassLimits::default_for(WalletClass::Four);
        let mut wallet = Wallet::new(AccountId(0), OperatorId(1));
        let t = NOON_2026_11_23_MS;
        let error = wallet
            .check_outgoing(&limits, Amount::from_yuan(2_001), t)
            .unwrap_err();
        assert_eq!(error.code(), "LIMIT_SINGLE_PAYMENT");
        assert!(error.to_string().contains("2000.00"), "{error}");
        wallet.record_outgoing(Amount::from_yuan(2_000), t);
        wallet.record_outgoing(Amount::from_yuan(2_000), t);
        let error = wallet
            .check_outgoing(&limits, Amount::from_yuan(1_001), t)
            .unwrap_err();
        assert_eq!(error.code(), "LIMIT_DAILY");
        // Next day the daily total starts again; the annual total does not.
        wallet
            .check_outgoing(&limits, Amount::from_yuan(1_001), t + DAY_MS)
            .unwrap();
        let cap = wallet.check_incoming(
            WalletId(0),
            &limits,
            Amount::from_yuan(9_000),
            Amount::from_yuan(1_001),
        );
        assert_eq!(cap.unwrap_err().code(), "LIMIT_BALANCE_CAP");
    }

    #[test]
    fn the_annual_limit_resets_with_the_year() {
        let limits = ClassLimits::default_for(WalletClass::Four);
        let mut wallet = Wallet::new(AccountId(0), OperatorId(1));
        for day in 0..10 {
            wallet.record_outgoing(Amount::from_yuan(5_000), NOON_2026_11_23_MS + day * DAY_MS);
        }
        let t = NOON_2026_11_23_MS + 10 * DAY_MS;
        assert_eq!(
            wallet
                .check_outgoing(&limits, Amount::from_fen(1), t)
                .unwrap_err()
                .code(),
            "LIMIT_ANNUAL"
        );
        wallet
            .check_outgoing(&limits, Amount::from_fen(1), t + 40 * DAY_MS)
            .unwrap();
    }

    #[test]
    fn phone_numbers_are_validated() {
        assert_eq!(parse_phone("138 0013 8000").unwrap(), 13_800_138_000);
        assert_eq!(parse_phone("+8613800138000").unwrap(), 13_800_138_000);
        for bad in [
            "",
            "1380013800",
            "23800138000",
            "1380013800x",
            "138001380001",
        ] {
            assert_eq!(
                parse_phone(bad).unwrap_err().code(),
                "MALFORMED_PHONE",
                "{bad}"
            );
        }
    }
}
