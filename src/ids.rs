//! Typed identifiers. Each is dense (an index into the state machine's tables) so that lookups are
//! array indexing, and each prints with a prefix so a reader never mistakes one for another.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq, Clone)]
#[error("{text:?} is not a {kind} id (expected e.g. {example})")]
pub struct IdParseError {
    pub kind: &'static str,
    pub example: &'static str,
    pub text: String,
}

macro_rules! dense_id {
    ($(#[$doc:meta])* $name:ident($inner:ty), $prefix:literal, $width:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub $inner);

        impl $name {
            pub const fn index(self) -> usize {
                self.0 as usize
            }

            /// Where the id sits in a table of ids numbered from 1: its number less one, checked;
            /// `None` for id 0, which names nothing.
            pub const fn slot(self) -> Option<usize> {
                (self.0 as usize).checked_sub(1)
            }

            /// Only the printed form, every digit of its width (`W0000000042`): where a file
            /// is compared or hashed as published, each id has exactly one spelling.
            pub fn parse_canonical(text: &str) -> Result<Self, IdParseError> {
                match text.parse::<Self>() {
                    Ok(id) if id.to_string() == text => Ok(id),
                    _ => Err(IdParseError {
                        kind: $kind,
                        example: concat!($prefix, "0000000001"),
                        text: text.to_string(),
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{:0", $width, "}"), self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;
            fn from_str(text: &str) -> Result<Self, IdParseError> {
                let error = || IdParseError {
                    kind: $kind,
                    example: concat!($prefix, "1"),
                    text: text.to_string(),
                };
                let digits = text.trim().strip_prefix($prefix).ok_or_else(error)?;
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(error());
                }
                digits.parse().map($name).map_err(|_| error())
            }
        }
    };
}

dense_id!(
    /// A designated operator (a commercial bank or licensed wallet operator).
    OperatorId(u16), "OP", 2, "operator"
);
dense_id!(
    /// A wallet, pseudonymous: the registration center and analysis center know only this.
    WalletId(u32), "W", 10, "wallet"
);
dense_id!(
    /// An account in one of the three ledgers.
    AccountId(u32), "A", 10, "account"
);
dense_id!(
    /// A merchant registered at an operator.
    MerchantId(u32), "M", 8, "merchant"
);
dense_id!(
    /// A sub-wallet a holder pushed to one merchant: the only name that merchant ever sees.
    SubWalletId(u32), "SW", 8, "sub-wallet"
);
dense_id!(
    /// A smart contract instantiated from a vetted template.
    ContractId(u32), "C", 8, "contract"
);
dense_id!(
    /// A secure-element device (hardware wallet).
    DeviceId(u64), "D", 12, "device"
);
dense_id!(
    /// The position of an event in the ledger's ordered event stream; a transfer's id.
    EventId(u64), "T", 12, "transfer"
);
dense_id!(
    /// A red-packet campaign (a sponsor's lottery of restricted e-CNY packets).
    CampaignId(u32), "RP", 6, "campaign"
);
dense_id!(
    /// One logged de-anonymization: an operator linking one of its wallets to its holder.
    IdentityLookupId(u32), "DL", 8, "de-anonymization"
);
dense_id!(
    /// A member of an operator's staff, with one credential and one role.
    StaffId(u32), "ST", 6, "staff member"
);

/// A client-chosen key that makes a money-moving command safe to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IdempotencyKey(pub u128);

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// The one syntax of an idempotency key: 1 to 32 hex digits, or a UUID in its usual 8-4-4-4-12
/// form. Nothing else — no sign, no `0x`, no dashes elsewhere — so a key has one reading.
impl FromStr for IdempotencyKey {
    type Err = IdParseError;
    fn from_str(text: &str) -> Result<Self, IdParseError> {
        let malformed = || IdParseError {
            kind: "idempotency key",
            example:
                "0f3a… (1 to 32 hex digits, or a UUID such as 123e4567-e89b-12d3-a456-426614174000)",
            text: text.to_string(),
        };
        let is_uuid = text.len() == UUID_CHARS
            && UUID_DASHES_AT.iter().all(|&at| text.as_bytes()[at] == b'-');
        // Only the four dashes of the UUID form are dropped: any other is not a hex digit.
        let hex: String = if is_uuid {
            text.char_indices()
                .filter(|(at, _)| !UUID_DASHES_AT.contains(at))
                .map(|(_, c)| c)
                .collect()
        } else {
            text.to_string()
        };
        if hex.is_empty() || hex.len() > 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(malformed());
        }
        u128::from_str_radix(&hex, 16)
            .map(IdempotencyKey)
            .map_err(|_| malformed())
    }
}

/// A UUID's text: 36 characters, dashes at these offsets.
const UUID_CHARS: usize = 36;
const UUID_DASHES_AT: [usize; 4] = [8, 13, 18, 23];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_with_their_prefix_and_parse_back() {
        assert_eq!(WalletId(42).to_string(), "W0000000042");
        assert_eq!("W0000000042".parse::<WalletId>().unwrap(), WalletId(42));
        assert_eq!("OP3".parse::<OperatorId>().unwrap(), OperatorId(3));
        assert_eq!(OperatorId(3).to_string(), "OP03");
        assert!("A12".parse::<WalletId>().is_err());
        assert!("W".parse::<WalletId>().is_err());
        assert!("W-1".parse::<WalletId>().is_err());
        assert!("W99999999999".parse::<WalletId>().is_err());
    }

    #[test]
    fn an_ids_slot_is_its_number_less_one_and_id_zero_has_none() {
        assert_eq!(WalletId(1).slot(), Some(0));
        assert_eq!(OperatorId(u16::MAX).slot(), Some(usize::from(u16::MAX) - 1));
        assert_eq!(WalletId(0).slot(), None);
        assert_eq!(SubWalletId(0).slot(), None);
    }

    #[test]
    fn idempotency_keys_accept_uuids() {
        let key: IdempotencyKey = "123e4567-e89b-12d3-a456-426614174000".parse().unwrap();
        assert_eq!(key.to_string(), "123e4567e89b12d3a456426614174000");
        assert_eq!(key.to_string().parse::<IdempotencyKey>(), Ok(key));
        assert_eq!("1f".parse::<IdempotencyKey>(), Ok(IdempotencyKey(0x1f)));
        for stray in [
            "xyz",
            "",
            "+1f",
            "-1f",
            "1-f",
            "0x1f",
            " 1f",
            "123e4567e89b12d3a456-426614174000",
            "123e4567-e89b-12d3-a456426614174000-",
            "123e4567-e89b-12d3-a456-4266141740001",
            "123e4567e89b12d3a4564266141740001",
        ] {
            assert!(stray.parse::<IdempotencyKey>().is_err(), "{stray:?}");
        }
    }

    #[test]
    fn a_uuid_has_dashes_only_where_a_uuid_has_them() {
        // 36 characters with dashes at the UUID's four places, and more dashes elsewhere: not a
        // UUID, and not hex digits either.
        for stray in [
            "A22------------------------------c--",
            "123e4567-e89b-12d3-a456-4266141740-0",
            "--------------------------------1234",
        ] {
            assert!(stray.parse::<IdempotencyKey>().is_err(), "{stray:?}");
        }
    }

    #[test]
    fn canonical_ids_have_every_digit() {
        assert_eq!(WalletId::parse_canonical("W0000000313"), Ok(WalletId(313)));
        for other in ["W313", "W00000000313", " W0000000313", "w0000000313"] {
            assert!(WalletId::parse_canonical(other).is_err(), "{other:?}");
        }
    }
}
