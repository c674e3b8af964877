//! The operator's front office for merchants: who may act for a merchant, which operator a
//! payment code at a till belongs to, and what makes an order. Decided here from the records
//! alone; the HTTP gateway (`server::gateway`) looks the records up and submits the commands
//! these rules build, so every rule is tested without a socket.

use thiserror::Error;

use crate::amount::Amount;
use crate::channels::acquiring::{city_of_region, Merchant, Order, TerminalKind};
use crate::channels::emvco::{MerchantQr, QrKind};
use crate::channels::payment_code::{CodeError, PAYMENT_CODE_DIGITS, PAYMENT_CODE_PREFIX};
use crate::command::Command;
use crate::error::CommandError;
use crate::ids::{EventId, MerchantId, OperatorId};
use crate::parties::{Denial, Operation, Party};

/// How long an order's QR stays payable unless the merchant says otherwise.
pub const ORDER_VALID_S_DEFAULT: u64 = 15 * 60;
/// Longest an order may stay open: a day covers a courier's round.
pub const ORDER_VALID_S_MAX: u64 = 24 * 3600;

/// How the caller stands to a merchant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    Merchant,
    Terminal(u16, TerminalKind),
    /// Staff of the merchant's operator.
    Staff,
}

/// Why a caller may not act for a merchant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum MerchantAccessError {
    /// The table refuses this kind of party (or this kind of terminal).
    #[error("{}", .denial.detail(*.operation))]
    Denied {
        operation: Operation,
        denial: Denial,
    },
    /// Another merchant, another merchant's terminal or another operator's staff.
    #[error("the credential presented may not act for merchant {0} here")]
    NotYourMerchant(MerchantId),
}

/// The table's answer for `operation` on `merchant`, then whether the caller is the merchant's
/// own: itself, one of its terminals, or its operator's staff.
pub fn standing(
    merchant: &Merchant,
    party: Party,
    operation: Operation,
) -> Result<Standing, MerchantAccessError> {
    let not_yours = MerchantAccessError::NotYourMerchant(merchant.id);
    if let Party::Terminal { merchant: own, .. } = party {
        if own != merchant.id {
            return Err(not_yours);
        }
    }
    let kind = |terminal| merchant.terminal(terminal).ok().flatten();
    operation
        .authorize(party, || match party {
            Party::Terminal { terminal, .. } => kind(terminal),
            _ => None,
        })
        .map_err(|denial| MerchantAccessError::Denied { operation, denial })?;
    match party {
        Party::Merchant(own) if own == merchant.id => Ok(Standing::Merchant),
        Party::Terminal { terminal, .. } => Ok(Standing::Terminal(
            terminal,
            kind(terminal).expect("authorized terminals are registered"),
        )),
        Party::Staff { operator, .. } if operator == merchant.operator => Ok(Standing::Staff),
        _ => Err(not_yours),
    }
}

/// A payment code as a till read it: whitespace dropped, and the operator that issued it, which
/// digits 3-4 name. Whether the code identifies a wallet is the issuing operator's to say.
pub fn route_payment_code(code: &str) -> Result<(String, OperatorId), CodeError> {
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let well_formed = digits.len() == PAYMENT_CODE_DIGITS
        && digits.starts_with(PAYMENT_CODE_PREFIX)
        && digits.bytes().all(|b| b.is_ascii_digit());
    if !well_formed {
        return Err(CodeError::Malformed(format!(
            "expected {PAYMENT_CODE_DIGITS} digits starting {PAYMENT_CODE_PREFIX}"
        )));
    }
    let operator = OperatorId(digits[2..4].parse().expect("two ASCII digits"));
    Ok((digits, operator))
}

/// An order's validity outside what the front office accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("valid_s {valid_s}: an order stays payable from 1 s to {ORDER_VALID_S_MAX} s")]
pub struct OrderValidityOutOfRange {
    pub valid_s: u64,
}

impl OrderValidityOutOfRange {
    pub fn code(&self) -> &'static str {
        "ORDER_VALIDITY_OUT_OF_RANGE"
    }
}

/// How long an order stays payable: what the merchant asked, or the default.
pub fn order_validity_s(asked: Option<u64>) -> Result<u64, OrderValidityOutOfRange> {
    let valid_s = asked.unwrap_or(ORDER_VALID_S_DEFAULT);
    if valid_s == 0 || valid_s > ORDER_VALID_S_MAX {
        return Err(OrderValidityOutOfRange { valid_s });
    }
    Ok(valid_s)
}

/// A new order as the merchant's caller asked for it.
pub struct NewOrder {
    pub reference: String,
    pub amount: Amount,
    pub valid_s: u64,
    pub cash_on_delivery: bool,
}

impl NewOrder {
    /// The command that records it: credited to the terminal that presents it (0 when the
    /// merchant itself or its operator's staff makes it), payable for `valid_s` from `now_ms`.
    pub fn command(&self, merchant: MerchantId, standing: Standing, now_ms: u64) -> Command {
        let terminal = match standing {
            Standing::Terminal(number, _) => number,
            Standing::Merchant | Standing::Staff => 0,
        };
        Command::CreateOrder {
            merchant,
            reference: self.reference.clone(),
            amount: self.amount,
            expires_at_ms: now_ms + self.valid_s * 1000,
            terminal,
            cash_on_delivery: self.cash_on_delivery,
        }
    }
}

/// The request a merchant presents: its printed QR (no order), or an order's dynamic one.
pub fn presented_request(merchant: &Merchant, order: Option<&Order>) -> MerchantQr {
    MerchantQr {
        kind: match order {
            None => QrKind::Static,
            Some(order) => QrKind::Dynamic {
                amount: order.amount,
                order_id: order.reference.clone(),
                expires_at_s: order.expires_at_ms / 1000,
            },
        },
        operator: merchant.operator,
        merchant: merchant.id,
        name: merchant.name.clone(),
        city: city_of_region(merchant.region),
        mcc: merchant.mcc,
    }
}

/// A scanned or tapped request names the merchant's operator; a request naming another is
/// forged or stale, and paying it would route the money past the operator that vouches for it.
pub fn check_request_operator(
    merchant: &Merchant,
    request: &MerchantQr,
) -> Result<(), CommandError> {
    if merchant.operator != request.operator {
        return Err(CommandError::RequestMerchantMismatch {
            merchant: merchant.id,
            stated: request.operator,
            actual: merchant.operator,
        });
    }
    Ok(())
}

/// A merchant refunds only its own sales; another merchant's sale looks like no sale at all.
pub fn check_own_payment(
    merchant: MerchantId,
    payment: EventId,
    paid_to: MerchantId,
) -> Result<(), CommandError> {
    if paid_to != merchant {
        return Err(CommandError::NotAMerchantPayment(payment));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::acquiring::OrderStatus;
    use crate::channels::emvco::Mcc;
    use crate::ids::{StaffId, WalletId};
    use crate::parties::StaffRole;

    fn snack_shop() -> Merchant {
        Merchant {
            id: MerchantId(7),
            operator: OperatorId(1),
            wallet: WalletId(40),
            name: "Snack shop".into(),
            mcc: Mcc::new(5814).unwrap(),
            region: 320_500,
            terminals: vec![
                TerminalKind::Pos,
                TerminalKind::ScanGun,
                TerminalKind::Courier,
            ],
        }
    }

    fn staff(operator: u16) -> Party {
        Party::Staff {
            operator: OperatorId(operator),
            staff: StaffId(1),
            role: StaffRole::Administrator,
        }
    }

    fn till(merchant: u32, terminal: u16) -> Party {
        Party::Terminal {
            merchant: MerchantId(merchant),
            terminal,
        }
    }

    #[test]
    fn a_merchant_its_terminals_and_its_operators_staff_act_for_it() {
        let shop = snack_shop();
        let read = Operation::ReadMerchant;
        assert_eq!(
            standing(&shop, Party::Merchant(MerchantId(7)), read),
            Ok(Standing::Merchant)
        );
        assert_eq!(
            standing(&shop, till(7, 2), read),
            Ok(Standing::Terminal(2, TerminalKind::ScanGun))
        );
        assert_eq!(standing(&shop, staff(1), read), Ok(Standing::Staff));
    }

    #[test]
    fn no_one_else_acts_for_a_merchant() {
        let shop = snack_shop();
        let read = Operation::ReadMerchant;
        let refusal = MerchantAccessError::NotYourMerchant(MerchantId(7));
        let not_yours = Err(refusal);
        assert_eq!(
            standing(&shop, Party::Merchant(MerchantId(8)), read),
            not_yours
        );
        assert_eq!(standing(&shop, till(8, 1), read), not_yours);
        assert_eq!(standing(&shop, staff(2), read), not_yours);
        assert_eq!(
            refusal.to_string(),
            "the credential presented may not act for merchant M00000007 here"
        );
        // The table refuses the holder before the merchant is asked.
        assert!(matches!(
            standing(&shop, Party::Holder(WalletId(1)), read),
            Err(MerchantAccessError::Denied { .. })
        ));
    }

    #[test]
    fn a_terminal_does_only_what_its_kind_may() {
        let shop = snack_shop();
        // A courier's device presents orders but does not read payment codes.
        assert_eq!(
            standing(&shop, till(7, 3), Operation::CreateOrder),
            Ok(Standing::Terminal(3, TerminalKind::Courier))
        );
        let refused = standing(&shop, till(7, 3), Operation::ChargeCode).unwrap_err();
        assert!(
            matches!(
                refused,
                MerchantAccessError::Denied {
                    denial: Denial::TerminalNotAllowed,
                    ..
                }
            ),
            "{refused:?}"
        );
        // A terminal number the merchant never registered, where the kind decides.
        let unknown = standing(&shop, till(7, 9), Operation::CreateOrder).unwrap_err();
        assert!(
            matches!(
                unknown,
                MerchantAccessError::Denied {
                    denial: Denial::UnknownTerminal,
                    ..
                }
            ),
            "{unknown:?}"
        );
        // Only the merchant refunds.
        assert!(standing(&shop, till(7, 1), Operation::Refund).is_err());
        assert_eq!(
            standing(&shop, Party::Merchant(MerchantId(7)), Operation::Refund),
            Ok(Standing::Merchant)
        );
    }

    #[test]
    fn digits_three_and_four_route_a_payment_code_to_its_operator() {
        assert_eq!(
            route_payment_code("28 03 1234 5678 9012 34"),
            Ok(("280312345678901234".to_string(), OperatorId(3)))
        );
        assert_eq!(
            route_payment_code("281112345678901234").map(|(_, op)| op),
            Ok(OperatorId(11))
        );
        for bad in [
            "",
            "2803123456789012",
            "2803123456789012345",
            "190312345678901234",
            "28031234567890123x",
            "２８0312345678901234",
        ] {
            assert!(
                matches!(route_payment_code(bad), Err(CodeError::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn an_order_stays_payable_from_a_second_to_a_day() {
        assert_eq!(order_validity_s(None), Ok(ORDER_VALID_S_DEFAULT));
        assert_eq!(order_validity_s(Some(1)), Ok(1));
        assert_eq!(order_validity_s(Some(86_400)), Ok(ORDER_VALID_S_MAX));
        for valid_s in [0, 86_401, u64::MAX] {
            let refused = order_validity_s(Some(valid_s)).unwrap_err();
            assert_eq!(refused, OrderValidityOutOfRange { valid_s });
            assert_eq!(refused.code(), "ORDER_VALIDITY_OUT_OF_RANGE");
        }
    }

    #[test]
    fn an_order_is_credited_to_the_terminal_that_presents_it() {
        let order = NewOrder {
            reference: "TILL-0001".into(),
            amount: Amount::from_fen(6_660),
            valid_s: 900,
            cash_on_delivery: false,
        };
        let now_ms = 1_700_000_000_000;
        let by = |standing| match order.command(MerchantId(7), standing, now_ms) {
            Command::CreateOrder {
                merchant,
                terminal,
                expires_at_ms,
                amount,
                ..
            } => {
                assert_eq!((merchant, amount), (MerchantId(7), order.amount));
                assert_eq!(expires_at_ms, now_ms + 900_000);
                terminal
            }
            other => panic!("an order made {other:?}"),
        };
        assert_eq!(by(Standing::Terminal(3, TerminalKind::Courier)), 3);
        assert_eq!(by(Standing::Merchant), 0);
        assert_eq!(by(Standing::Staff), 0);
    }

    #[test]
    fn a_merchant_presents_its_printed_qr_or_an_orders() {
        let shop = snack_shop();
        let printed = presented_request(&shop, None);
        assert_eq!(printed.kind, QrKind::Static);
        assert_eq!(
            (printed.operator, printed.merchant),
            (OperatorId(1), shop.id)
        );
        assert_eq!(printed.city, city_of_region(320_500));
        let order = Order {
            merchant: shop.id,
            reference: "TILL-0001".into(),
            amount: Amount::from_fen(6_660),
            expires_at_ms: 1_700_000_900_999,
            terminal: 1,
            cash_on_delivery: false,
            status: OrderStatus::Open,
        };
        assert_eq!(
            presented_request(&shop, Some(&order)).kind,
            QrKind::Dynamic {
                amount: order.amount,
                order_id: "TILL-0001".into(),
                expires_at_s: 1_700_000_900,
            }
        );
    }

    #[test]
    fn a_request_naming_another_operator_or_another_merchants_sale_is_refused() {
        let shop = snack_shop();
        let mut request = presented_request(&shop, None);
        assert_eq!(check_request_operator(&shop, &request), Ok(()));
        request.operator = OperatorId(2);
        assert_eq!(
            check_request_operator(&shop, &request).unwrap_err().code(),
            "REQUEST_MERCHANT_MISMATCH"
        );
        let sale = EventId(12);
        assert_eq!(check_own_payment(shop.id, sale, shop.id), Ok(()));
        assert_eq!(
            check_own_payment(shop.id, sale, MerchantId(8)),
            Err(CommandError::NotAMerchantPayment(sale))
        );
    }
}
