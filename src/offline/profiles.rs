//! Hardware wallet forms. Every form runs the same applet; what differs is the hardware around
//! it and the default offline caps, which the issuing operator may change per wallet.

use thiserror::Error;

use crate::amount::Amount;
use crate::certs::device::DeviceCaps;
use crate::offline::applet::RECORDS_MAX;
use crate::time::DAY_S;

const YEAR_S: u32 = 365 * DAY_S;

/// The physical wallet a secure element lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WalletForm {
    /// The embedded secure element of a phone.
    PhoneEse,
    /// A SIM card with a secure element, reached through the phone's NFC controller.
    SimCard,
    /// A card with no screen and no battery, powered by the reader's field.
    ContactlessCard,
    /// A student ID card whose daily cap a guardian sets.
    StudentCard,
    /// An anonymous card sold at a counter to visitors, with no online wallet behind it.
    VisitorCard,
}

impl WalletForm {
    pub const ALL: [WalletForm; 5] = [
        WalletForm::PhoneEse,
        WalletForm::SimCard,
        WalletForm::ContactlessCard,
        WalletForm::StudentCard,
        WalletForm::VisitorCard,
    ];

    pub fn name(self) -> &'static str {
        match self {
            WalletForm::PhoneEse => "phone eSE",
            WalletForm::SimCard => "SIM-card SE",
            WalletForm::ContactlessCard => "contactless card",
            WalletForm::StudentCard => "student ID card",
            WalletForm::VisitorCard => "visitor card",
        }
    }

    /// Whether the holder sees the amount before the tap; cards rely on the other side's screen.
    pub fn has_screen(self) -> bool {
        matches!(self, WalletForm::PhoneEse | WalletForm::SimCard)
    }

    /// Cards run only while in a reader's field, so a tap pulled away early tears them.
    pub fn powered_by_field(self) -> bool {
        !self.has_screen()
    }

    /// A visitor card is loaded with cash at a counter; there is no wallet to sync into.
    pub fn has_online_wallet(self) -> bool {
        self != WalletForm::VisitorCard
    }

    /// The defaults an operator starts from, in yuan: small enough to bound what a cloned or
    /// lost secure element can cost before the center blocks it. A card with no screen spends
    /// less between syncs than it may hold: a reader in a crowd meets no holder's eyes.
    pub fn default_caps(self) -> DeviceCaps {
        let (per_payment, balance, daily, payments, spend) = match self {
            WalletForm::PhoneEse => (1_000, 5_000, None, 50, 5_000),
            WalletForm::SimCard => (1_000, 3_000, None, 50, 3_000),
            WalletForm::ContactlessCard => (500, 2_000, None, 30, 1_000),
            WalletForm::StudentCard => (100, 500, Some(100), 30, 500),
            WalletForm::VisitorCard => (200, 1_000, None, 20, 1_000),
        };
        DeviceCaps {
            per_payment_cap: Amount::from_yuan(per_payment),
            balance_cap: Amount::from_yuan(balance),
            daily_cap: daily.map(Amount::from_yuan),
            payments_before_sync: payments,
            spend_before_sync: Amount::from_yuan(spend),
        }
    }

    /// How long the device certificate lasts; a visitor card only for the visit.
    pub fn default_validity_s(self) -> u32 {
        match self {
            WalletForm::PhoneEse | WalletForm::SimCard => 3 * YEAR_S,
            WalletForm::ContactlessCard | WalletForm::StudentCard => 5 * YEAR_S,
            WalletForm::VisitorCard => 90 * DAY_S,
        }
    }
}

/// Why an operator's caps for a profile were refused.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum ProfileError {
    #[error("every cap must be a positive amount")]
    CapNotPositive,
    #[error("the per-payment cap {per_payment} is above the balance cap {balance}")]
    PerPaymentAboveBalanceCap {
        per_payment: Amount,
        balance: Amount,
    },
    #[error("payments before sync must be between 1 and {max}, got {got}")]
    PaymentsBeforeSyncOutOfRange { got: u16, max: usize },
    #[error("a student card needs the guardian's daily cap")]
    DailyCapMissing,
    #[error("the spend-before-sync cap {spend} is below the per-payment cap {per_payment}")]
    SpendCapBelowPerPayment { spend: Amount, per_payment: Amount },
}

impl ProfileError {
    pub fn code(&self) -> &'static str {
        match self {
            ProfileError::CapNotPositive => "PROFILE_CAP_NOT_POSITIVE",
            ProfileError::PerPaymentAboveBalanceCap { .. } => "PROFILE_PER_PAYMENT_ABOVE_BALANCE",
            ProfileError::PaymentsBeforeSyncOutOfRange { .. } => "PROFILE_SYNC_COUNT_OUT_OF_RANGE",
            ProfileError::DailyCapMissing => "PROFILE_DAILY_CAP_MISSING",
            ProfileError::SpendCapBelowPerPayment { .. } => "PROFILE_SPEND_CAP_BELOW_PER_PAYMENT",
        }
    }
}

/// A form with the caps and certificate validity one operator issues it with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Profile {
    form: WalletForm,
    caps: DeviceCaps,
    validity_s: u32,
}

impl Profile {
    /// The form with its default caps.
    pub fn new(form: WalletForm) -> Profile {
        Profile {
            form,
            caps: form.default_caps(),
            validity_s: form.default_validity_s(),
        }
    }

    /// A student card with the daily cap the guardian chose.
    pub fn student_card(guardian_daily_cap: Amount) -> Result<Profile, ProfileError> {
        let caps = DeviceCaps {
            daily_cap: Some(guardian_daily_cap),
            ..WalletForm::StudentCard.default_caps()
        };
        Profile::new(WalletForm::StudentCard).with_caps(caps)
    }

    /// The operator's own caps for this form.
    pub fn with_caps(self, caps: DeviceCaps) -> Result<Profile, ProfileError> {
        let amounts = [
            caps.per_payment_cap,
            caps.balance_cap,
            caps.spend_before_sync,
        ];
        let positive = |amount: &Amount| amount.is_positive() && *amount <= Amount::MAX;
        if !amounts.iter().chain(caps.daily_cap.iter()).all(positive) {
            return Err(ProfileError::CapNotPositive);
        }
        if caps.per_payment_cap > caps.balance_cap {
            return Err(ProfileError::PerPaymentAboveBalanceCap {
                per_payment: caps.per_payment_cap,
                balance: caps.balance_cap,
            });
        }
        if caps.spend_before_sync < caps.per_payment_cap {
            return Err(ProfileError::SpendCapBelowPerPayment {
                spend: caps.spend_before_sync,
                per_payment: caps.per_payment_cap,
            });
        }
        let payments = usize::from(caps.payments_before_sync);
        // The log holds every unsynced payment, so a larger count could never be used.
        if payments == 0 || payments > RECORDS_MAX {
            return Err(ProfileError::PaymentsBeforeSyncOutOfRange {
                got: caps.payments_before_sync,
                max: RECORDS_MAX,
            });
        }
        if self.form == WalletForm::StudentCard && caps.daily_cap.is_none() {
            return Err(ProfileError::DailyCapMissing);
        }
        Ok(Profile { caps, ..self })
    }

    pub fn with_validity_s(self, validity_s: u32) -> Profile {
        Profile { validity_s, ..self }
    }

    pub fn form(&self) -> WalletForm {
        self.form
    }

    pub fn caps(&self) -> DeviceCaps {
        self.caps
    }

    pub fn validity_s(&self) -> u32 {
        self.validity_s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_profile_is_valid() {
        for form in WalletForm::ALL {
            let profile = Profile::new(form);
            assert_eq!(
                profile.with_caps(form.default_caps()),
                Ok(profile),
                "{}",
                form.name()
            );
        }
    }

    #[test]
    fn cards_have_no_screen_and_run_on_the_readers_field() {
        assert!(WalletForm::PhoneEse.has_screen());
        assert!(!WalletForm::ContactlessCard.has_screen());
        assert!(WalletForm::ContactlessCard.powered_by_field());
        assert!(!WalletForm::VisitorCard.has_online_wallet());
        assert!(WalletForm::StudentCard.has_online_wallet());
    }

    #[test]
    fn a_visitor_card_has_the_lowest_caps_and_a_short_life() {
        let visitor = WalletForm::VisitorCard.default_caps();
        let phone = WalletForm::PhoneEse.default_caps();
        assert!(visitor.per_payment_cap < phone.per_payment_cap);
        assert!(visitor.balance_cap < phone.balance_cap);
        assert!(
            WalletForm::VisitorCard.default_validity_s()
                < WalletForm::PhoneEse.default_validity_s()
        );
    }

    #[test]
    fn a_guardian_sets_the_student_daily_cap() {
        let profile = Profile::student_card(Amount::from_yuan(30)).unwrap();
        assert_eq!(profile.caps().daily_cap, Some(Amount::from_yuan(30)));
        let without = DeviceCaps {
            daily_cap: None,
            ..profile.caps()
        };
        assert_eq!(
            profile.with_caps(without),
            Err(ProfileError::DailyCapMissing)
        );
        let zero = Profile::student_card(Amount::ZERO).unwrap_err();
        assert_eq!(zero.code(), "PROFILE_CAP_NOT_POSITIVE");
    }

    #[test]
    fn operators_cannot_set_caps_that_contradict_each_other() {
        let profile = Profile::new(WalletForm::PhoneEse);
        let inverted = DeviceCaps {
            per_payment_cap: Amount::from_yuan(9_000),
            ..profile.caps()
        };
        assert!(matches!(
            profile.with_caps(inverted),
            Err(ProfileError::PerPaymentAboveBalanceCap { .. })
        ));
        let too_many = DeviceCaps {
            payments_before_sync: RECORDS_MAX as u16 + 1,
            ..profile.caps()
        };
        assert!(profile.with_caps(too_many).is_err());
        let raised = DeviceCaps {
            per_payment_cap: Amount::from_yuan(2_000),
            ..profile.caps()
        };
        assert_eq!(profile.with_caps(raised).unwrap().caps(), raised);
        let starved = DeviceCaps {
            spend_before_sync: Amount::from_yuan(999),
            ..profile.caps()
        };
        assert_eq!(
            profile.with_caps(starved).unwrap_err().code(),
            "PROFILE_SPEND_CAP_BELOW_PER_PAYMENT"
        );
    }

    #[test]
    fn a_card_without_a_screen_spends_less_between_syncs_than_it_holds() {
        let card = WalletForm::ContactlessCard.default_caps();
        assert!(card.spend_before_sync < card.balance_cap);
        for form in WalletForm::ALL {
            let caps = form.default_caps();
            assert!(
                caps.spend_before_sync <= caps.balance_cap,
                "{}",
                form.name()
            );
        }
    }
}
