//! Smart contracts as vetted templates: deterministic, replayable, holding money only in the
//! ledger. Nothing here moves money itself; the state machine does, through double-entry
//! transfers, and this book records what each contract holds, released and refunded.
//!
//! - **Escrow**: the payer's money is held by a two-phase transfer to the payee; the payer's
//!   confirmation posts it, and the ledger voids it at the deadline (back to the payer) if no
//!   confirmation came.
//! - **Prepaid**: a school term of `units` lessons at `unit_price`, paid up front into an escrow
//!   account; each confirmed lesson releases one price to the school; a cancellation by the
//!   parent, or the school closing, refunds the rest to the parent.
//! - **Recurring**: `amount` from payer to payee every `every_ms` from `first_ms`, `count` times
//!   (0: until cancelled) — wages, tax, housing fund, premiums. A run that the payer's balance or
//!   limits refuse is recorded as missed, with its reason, and the schedule goes on.
//!
//! The payer, the payee and the regulator read the same contract state.

use std::collections::BTreeSet;

use crate::amount::Amount;
use crate::codec::{DecodeError, Reader, Writer};
use crate::error::CommandError;
use crate::ids::{AccountId, ContractId, EventId, WalletId};

/// Longest purpose text ("wages November", "term fee, grade 3").
pub const PURPOSE_CHARS_MAX: usize = 64;
/// Most lessons one prepaid contract may hold.
pub const PREPAID_UNITS_MAX: u32 = 1_000;
/// Shortest period between recurring payments: a minute (tests and demos run fast schedules).
pub const RECURRING_PERIOD_MS_MIN: u64 = 60_000;
/// Runs executed per log entry at most, so one entry's work stays bounded after a long pause;
/// the rest run with the next entries.
pub const DUE_RUNS_PER_ENTRY_MAX: usize = 4_096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Template {
    Escrow {
        amount: Amount,
        deadline_ms: u64,
    },
    Prepaid {
        units: u32,
        unit_price: Amount,
    },
    Recurring {
        amount: Amount,
        first_ms: u64,
        every_ms: u64,
        /// Payments to make; 0 runs until cancelled.
        count: u32,
    },
}

impl Template {
    pub fn name(&self) -> &'static str {
        match self {
            Template::Escrow { .. } => "escrow",
            Template::Prepaid { .. } => "prepaid",
            Template::Recurring { .. } => "recurring",
        }
    }

    /// What opening the contract takes from the payer at once. A prepaid term's units × price
    /// above the largest amount a command may carry is refused, in debug and release builds alike.
    pub fn funding(&self) -> Result<Amount, CommandError> {
        match *self {
            Template::Escrow { amount, .. } => Ok(amount),
            Template::Prepaid { units, unit_price } => unit_price
                .fen()
                .checked_mul(i64::from(units))
                .map(Amount::from_fen)
                .filter(|total| *total <= Amount::MAX)
                .ok_or(CommandError::ContractFundingTooLarge { units, unit_price }),
            Template::Recurring { .. } => Ok(Amount::ZERO),
        }
    }

    /// Checks the terms make sense at `now_ms`.
    pub fn check(&self, now_ms: u64) -> Result<(), CommandError> {
        let invalid = |why| Err(CommandError::ContractTermsInvalid(why));
        match *self {
            Template::Escrow {
                amount,
                deadline_ms,
            } => {
                if amount.fen() <= 0 {
                    return invalid("an escrow holds a positive amount");
                }
                if deadline_ms <= now_ms {
                    return invalid("an escrow's deadline is in the future");
                }
            }
            Template::Prepaid { units, unit_price } => {
                if units == 0 || units > PREPAID_UNITS_MAX {
                    return invalid("a prepaid contract holds 1 to 1,000 units");
                }
                if unit_price.fen() <= 0 {
                    return invalid("a unit's price is positive");
                }
                self.funding()?;
            }
            Template::Recurring {
                amount, every_ms, ..
            } => {
                if amount.fen() <= 0 {
                    return invalid("a recurring payment is a positive amount");
                }
                if every_ms < RECURRING_PERIOD_MS_MIN {
                    return invalid("recurring payments are at least a minute apart");
                }
            }
        }
        Ok(())
    }

    pub(crate) fn encode(&self, out: &mut Writer) {
        match *self {
            Template::Escrow {
                amount,
                deadline_ms,
            } => out.u8(1).i64(amount.fen()).u64(deadline_ms),
            Template::Prepaid { units, unit_price } => out.u8(2).u32(units).i64(unit_price.fen()),
            Template::Recurring {
                amount,
                first_ms,
                every_ms,
                count,
            } => out
                .u8(3)
                .i64(amount.fen())
                .u64(first_ms)
                .u64(every_ms)
                .u32(count),
        };
    }

    pub(crate) fn decode(input: &mut Reader<'_>) -> Result<Template, DecodeError> {
        let offset = input.offset();
        let amount = |input: &mut Reader<'_>| input.i64("amount").map(Amount::from_fen);
        Ok(match input.u8("contract template")? {
            1 => Template::Escrow {
                amount: amount(input)?,
                deadline_ms: input.u64("deadline")?,
            },
            2 => Template::Prepaid {
                units: input.u32("units")?,
                unit_price: amount(input)?,
            },
            3 => Template::Recurring {
                amount: amount(input)?,
                first_ms: input.u64("first run")?,
                every_ms: input.u64("period")?,
                count: input.u32("run count")?,
            },
            _ => {
                return Err(DecodeError {
                    what: "contract template",
                    offset,
                })
            }
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContractStatus {
    Active,
    /// Everything it held was released (or every run made).
    Completed,
    /// Cancelled by a party; what it held went back to the payer.
    Cancelled,
    /// An escrow whose deadline passed unconfirmed; the ledger gave the money back.
    Expired,
}

impl ContractStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ContractStatus::Active => "active",
            ContractStatus::Completed => "completed",
            ContractStatus::Cancelled => "cancelled",
            ContractStatus::Expired => "expired",
        }
    }

    fn from_u8(value: u8) -> Option<ContractStatus> {
        [
            ContractStatus::Active,
            ContractStatus::Completed,
            ContractStatus::Cancelled,
            ContractStatus::Expired,
        ]
        .into_iter()
        .find(|status| *status as u8 == value)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contract {
    pub id: ContractId,
    pub payer: WalletId,
    pub payee: WalletId,
    pub template: Template,
    pub purpose: String,
    pub opened_at_ms: u64,
    pub status: ContractStatus,
    /// The prepaid contract's escrow account.
    pub escrow: Option<AccountId>,
    /// The escrow contract's two-phase transfer.
    pub hold: Option<EventId>,
    pub released: Amount,
    pub refunded: Amount,
    /// Lessons confirmed (prepaid), runs made (recurring).
    pub delivered: u32,
    /// Recurring runs the payer's balance or limits refused.
    pub missed: u32,
    /// The refusal code of the last missed run.
    pub last_miss: Option<String>,
    pub next_run_ms: Option<u64>,
}

impl Contract {
    /// What the contract still holds for the payee.
    pub fn holding(&self) -> Amount {
        match self.template {
            Template::Recurring { .. } => Amount::ZERO,
            _ if self.status != ContractStatus::Active => Amount::ZERO,
            template => {
                let funded = template
                    .funding()
                    .expect("a contract's terms were checked when it opened");
                Amount::from_fen(funded.fen() - self.released.fen() - self.refunded.fen())
            }
        }
    }

    pub fn is_party(&self, wallet: WalletId) -> bool {
        wallet == self.payer || wallet == self.payee
    }
}

/// Every contract and the recurring schedule. Opening keys live in the one idempotency index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Contracts {
    all: Vec<Contract>,
    /// (due time, contract): recurring runs waiting for their time.
    due: BTreeSet<(u64, u32)>,
}

impl Contracts {
    /// The books to damage: only for tests that prove the audit catches it.
    #[cfg(test)]
    pub(crate) fn all_mut_for_test(&mut self) -> &mut [Contract] {
        &mut self.all
    }

    pub fn get(&self, id: ContractId) -> Result<&Contract, CommandError> {
        id.index()
            .checked_sub(1)
            .and_then(|i| self.all.get(i))
            .ok_or(CommandError::UnknownContract(id))
    }

    pub(crate) fn get_mut(&mut self, id: ContractId) -> Result<&mut Contract, CommandError> {
        id.index()
            .checked_sub(1)
            .and_then(|i| self.all.get_mut(i))
            .ok_or(CommandError::UnknownContract(id))
    }

    pub fn all(&self) -> &[Contract] {
        &self.all
    }

    pub fn next_id(&self) -> ContractId {
        ContractId(self.all.len() as u32 + 1)
    }

    pub(crate) fn insert(&mut self, contract: Contract) {
        debug_assert_eq!(contract.id, self.next_id());
        if let Some(due) = contract.next_run_ms {
            self.due.insert((due, contract.id.0));
        }
        self.all.push(contract);
    }

    /// When the next recurring run falls due, if one is scheduled.
    pub fn next_due_ms(&self) -> Option<u64> {
        self.due.first().map(|(at, _)| *at)
    }

    /// Recurring runs due at `now_ms`, oldest first, at most `max`.
    pub(crate) fn take_due(&mut self, now_ms: u64, max: usize) -> Vec<(u64, ContractId)> {
        let mut taken = Vec::new();
        while taken.len() < max {
            match self.due.first().copied() {
                Some((at, id)) if at <= now_ms => {
                    self.due.remove(&(at, id));
                    taken.push((at, ContractId(id)));
                }
                _ => break,
            }
        }
        taken
    }

    /// Schedules the contract's next run after one at `ran_at_ms`, or completes it.
    pub(crate) fn after_run(&mut self, id: ContractId, ran_at_ms: u64) {
        let Ok(contract) = self.get_mut(id) else {
            return;
        };
        let Template::Recurring {
            every_ms, count, ..
        } = contract.template
        else {
            return;
        };
        let runs = contract.delivered + contract.missed;
        if count != 0 && runs >= count {
            contract.status = ContractStatus::Completed;
            contract.next_run_ms = None;
            return;
        }
        let next = ran_at_ms.saturating_add(every_ms);
        contract.next_run_ms = Some(next);
        self.due.insert((next, id.0));
    }

    /// Takes a cancelled contract off the schedule.
    pub(crate) fn unschedule(&mut self, id: ContractId) {
        if let Ok(contract) = self.get_mut(id) {
            if let Some(due) = contract.next_run_ms.take() {
                self.due.remove(&(due, id.0));
            }
        }
    }

    pub(crate) fn encode(&self, out: &mut Writer) {
        out.u32(self.all.len() as u32);
        for c in &self.all {
            out.u32(c.payer.0).u32(c.payee.0);
            c.template.encode(out);
            out.str(&c.purpose)
                .u64(c.opened_at_ms)
                .u8(c.status as u8)
                .u32(c.escrow.map_or(u32::MAX, |a| a.0))
                .u64(c.hold.map_or(u64::MAX, |h| h.0))
                .i64(c.released.fen())
                .i64(c.refunded.fen())
                .u32(c.delivered)
                .u32(c.missed)
                .opt_str(c.last_miss.as_deref())
                .u64(c.next_run_ms.unwrap_or(u64::MAX));
        }
    }

    pub(crate) fn decode(input: &mut Reader<'_>) -> Result<Contracts, DecodeError> {
        let mut book = Contracts::default();
        for index in 0..input.u32("contract count")? {
            let id = ContractId(index + 1);
            let payer = WalletId(input.u32("contract payer")?);
            let payee = WalletId(input.u32("contract payee")?);
            let template = Template::decode(input)?;
            let purpose = input.string("contract purpose")?;
            let opened_at_ms = input.u64("contract opened")?;
            let offset = input.offset();
            let status =
                ContractStatus::from_u8(input.u8("contract status")?).ok_or(DecodeError {
                    what: "contract status",
                    offset,
                })?;
            let contract = Contract {
                id,
                payer,
                payee,
                template,
                purpose,
                opened_at_ms,
                status,
                escrow: Some(input.u32("escrow account")?)
                    .filter(|a| *a != u32::MAX)
                    .map(AccountId),
                hold: Some(input.u64("escrow hold")?)
                    .filter(|h| *h != u64::MAX)
                    .map(EventId),
                released: Amount::from_fen(input.i64("released")?),
                refunded: Amount::from_fen(input.i64("refunded")?),
                delivered: input.u32("delivered")?,
                missed: input.u32("missed")?,
                last_miss: input.opt_string("last miss")?,
                next_run_ms: Some(input.u64("next run")?).filter(|t| *t != u64::MAX),
            };
            if let Some(due) = contract.next_run_ms {
                book.due.insert((due, id.0));
            }
            book.all.push(contract);
        }
        Ok(book)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recurring(count: u32) -> Contract {
        Contract {
            id: ContractId(1),
            payer: WalletId(1),
            payee: WalletId(2),
            template: Template::Recurring {
                amount: Amount::from_fen(100),
                first_ms: 1_000,
                every_ms: 60_000,
                count,
            },
            purpose: "wages".into(),
            opened_at_ms: 0,
            status: ContractStatus::Active,
            escrow: None,
            hold: None,
            released: Amount::ZERO,
            refunded: Amount::ZERO,
            delivered: 0,
            missed: 0,
            last_miss: None,
            next_run_ms: Some(1_000),
        }
    }

    #[test]
    fn terms_are_checked() {
        let now = 10;
        let bad = [
            Template::Escrow {
                amount: Amount::from_fen(1),
                deadline_ms: now,
            },
            Template::Escrow {
                amount: Amount::ZERO,
                deadline_ms: now + 1,
            },
            Template::Prepaid {
                units: 0,
                unit_price: Amount::from_fen(1),
            },
            Template::Prepaid {
                units: PREPAID_UNITS_MAX + 1,
                unit_price: Amount::from_fen(1),
            },
            Template::Prepaid {
                units: 40,
                unit_price: Amount::from_fen(-1),
            },
            Template::Recurring {
                amount: Amount::from_fen(1),
                first_ms: 0,
                every_ms: RECURRING_PERIOD_MS_MIN - 1,
                count: 1,
            },
        ];
        for template in bad {
            assert_eq!(
                template.check(now).unwrap_err().code(),
                "CONTRACT_TERMS_INVALID",
                "{template:?}"
            );
        }
        let term = Template::Prepaid {
            units: 40,
            unit_price: Amount::from_fen(15_000),
        };
        term.check(now).unwrap();
        assert_eq!(term.funding(), Ok(Amount::from_fen(600_000)));
    }

    #[test]
    fn a_prepaid_term_above_the_largest_amount_is_refused_at_the_boundary() {
        let units = PREPAID_UNITS_MAX;
        let at_most = Amount::from_fen(Amount::MAX.fen() / i64::from(units));
        let fits = Template::Prepaid {
            units,
            unit_price: at_most,
        };
        fits.check(0).unwrap();
        assert_eq!(fits.funding(), Ok(Amount::MAX));
        for unit_price in [
            Amount::from_fen(at_most.fen() + 1),
            // Wraps to 3.84 in i64 arithmetic: the figure that was once accepted as funded.
            Amount::from_fen(18_446_744_073_709_552),
            Amount::MAX,
        ] {
            let over = Template::Prepaid { units, unit_price };
            let error = over.check(0).unwrap_err();
            assert_eq!(error.code(), "CONTRACT_FUNDING_TOO_LARGE", "{unit_price}");
            assert_eq!(over.funding(), Err(error));
        }
    }

    #[test]
    fn the_schedule_runs_due_contracts_in_time_order_and_completes_them() {
        let mut book = Contracts::default();
        book.insert(recurring(2));
        assert!(book.take_due(999, 10).is_empty());
        let due = book.take_due(1_000, 10);
        assert_eq!(due, vec![(1_000, ContractId(1))]);
        book.get_mut(ContractId(1)).unwrap().delivered += 1;
        book.after_run(ContractId(1), 1_000);
        assert_eq!(book.get(ContractId(1)).unwrap().next_run_ms, Some(61_000));
        assert_eq!(book.take_due(61_000, 10).len(), 1);
        book.get_mut(ContractId(1)).unwrap().missed += 1;
        book.after_run(ContractId(1), 61_000);
        let done = book.get(ContractId(1)).unwrap();
        assert_eq!(
            (done.status, done.next_run_ms),
            (ContractStatus::Completed, None)
        );
        assert!(book.take_due(u64::MAX, 10).is_empty());
    }

    #[test]
    fn the_book_round_trips_through_its_snapshot_encoding() {
        let mut book = Contracts::default();
        book.insert(recurring(0));
        let mut escrow = recurring(0);
        escrow.id = ContractId(2);
        escrow.template = Template::Escrow {
            amount: Amount::from_fen(500),
            deadline_ms: 9,
        };
        escrow.hold = Some(EventId(44));
        escrow.next_run_ms = None;
        escrow.last_miss = Some("INSUFFICIENT_FUNDS".into());
        book.insert(escrow);
        let mut out = Writer::new();
        book.encode(&mut out);
        let decoded = Contracts::decode(&mut Reader::new(&out.bytes)).unwrap();
        assert_eq!(decoded, book);
    }
}
