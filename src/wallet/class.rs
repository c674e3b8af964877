//! A wallet's class and status: plain values that the errors, the commands and the operator's
//! rules all name, so they live apart from the wallet rules that need those modules.

use std::fmt;

/// KYC class: 4 is anonymous (phone only), 1 is verified in person at a branch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum WalletClass {
    One = 1,
    Two = 2,
    Three = 3,
    Four = 4,
}

impl WalletClass {
    pub const ALL: [WalletClass; 4] = [
        WalletClass::One,
        WalletClass::Two,
        WalletClass::Three,
        WalletClass::Four,
    ];

    pub fn from_u8(value: u8) -> Option<WalletClass> {
        WalletClass::ALL
            .into_iter()
            .find(|class| *class as u8 == value)
    }

    /// What a holder must bring to reach this class.
    pub fn requirement(self) -> &'static str {
        match self {
            WalletClass::Four => "a mobile phone number",
            WalletClass::Three => "real name and ID number, verified remotely",
            WalletClass::Two => "real name, ID number and a bound bank account",
            WalletClass::One => "verification in person at a branch",
        }
    }
}

impl fmt::Display for WalletClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", *self as u8)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum WalletStatus {
    Active = 0,
    Frozen = 1,
    Closed = 2,
}

impl WalletStatus {
    pub fn from_u8(value: u8) -> Option<WalletStatus> {
        [
            WalletStatus::Active,
            WalletStatus::Frozen,
            WalletStatus::Closed,
        ]
        .into_iter()
        .find(|status| *status as u8 == value)
    }
}

impl fmt::Display for WalletStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WalletStatus::Active => "active",
            WalletStatus::Frozen => "frozen",
            WalletStatus::Closed => "closed",
        })
    }
}
