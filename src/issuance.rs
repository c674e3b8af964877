//! The central bank's issuance vault: e-CNY is issued to an operator only against reserves it
//! gives up (100 % backing) and redeemed back only up to what it gave.

use crate::amount::Amount;
use crate::error::CommandError;
use crate::ids::{AccountId, EventId};
use crate::ledger::{Ledger, Leg, TransferKind};
use crate::operator::Operator;

/// Running totals per operator, kept beside the ledger so the audit can cross-check them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IssuanceTotals {
    pub issued: Amount,
    pub redeemed: Amount,
}

impl IssuanceTotals {
    pub fn outstanding(&self) -> Amount {
        Amount::from_fen(self.issued.fen() - self.redeemed.fen())
    }
}

/// Issues `amount` to `operator`: its reserves move to backing, and the same e-CNY moves from the
/// central bank's issuance account into its vault, atomically.
pub fn issue(
    ledger: &mut Ledger,
    totals: &mut IssuanceTotals,
    issuance_account: AccountId,
    operator: &Operator,
    amount: Amount,
    timestamp_ms: u64,
) -> Result<EventId, CommandError> {
    let available = ledger.account(operator.reserve)?.available();
    if available < amount {
        return Err(CommandError::InsufficientReserves {
            operator: operator.id,
            available,
            needed: amount,
        });
    }
    let legs = [
        Leg {
            debit: operator.reserve,
            credit: operator.backing,
            amount,
            kind: TransferKind::Issuance,
        },
        Leg {
            debit: issuance_account,
            credit: operator.vault,
            amount,
            kind: TransferKind::Issuance,
        },
    ];
    let id = ledger.transfer_linked(&legs, timestamp_ms)?;
    totals.issued = totals
        .issued
        .checked_add(amount)
        .ok_or(CommandError::Overflow)?;
    Ok(id)
}

/// Redeems `amount` of `operator`'s vault back into reserves, never more than it gave up.
pub fn redeem(
    ledger: &mut Ledger,
    totals: &mut IssuanceTotals,
    issuance_account: AccountId,
    operator: &Operator,
    amount: Amount,
    timestamp_ms: u64,
) -> Result<EventId, CommandError> {
    let backing = ledger.account(operator.backing)?.balance;
    if backing < amount {
        return Err(CommandError::RedemptionExceedsBacking {
            operator: operator.id,
            backing,
            asked: amount,
        });
    }
    let available = ledger.account(operator.vault)?.available();
    if available < amount {
        return Err(CommandError::VaultInsufficient {
            operator: operator.id,
            available,
            needed: amount,
        });
    }
    let legs = [
        Leg {
            debit: operator.vault,
            credit: issuance_account,
            amount,
            kind: TransferKind::Redemption,
        },
        Leg {
            debit: operator.backing,
            credit: operator.reserve,
            amount,
            kind: TransferKind::Redemption,
        },
    ];
    let id = ledger.transfer_linked(&legs, timestamp_ms)?;
    totals.redeemed = totals
        .redeemed
        .checked_add(amount)
        .ok_or(CommandError::Overflow)?;
    Ok(id)
}
