//! Smart contracts applied: each template's money moves as ledger transfers (a two-phase hold for
//! escrow, an escrow account for prepaid terms, scheduled payments for recurring ones), checked by
//! the same wallet rules as any payment. Recurring runs fall due inside `apply_entry`, at the
//! entry's time, so replay runs them at the same points.

use super::*;
use crate::programs::contracts::{
    Contract, ContractStatus, Contracts, Template, DUE_RUNS_PER_ENTRY_MAX, PURPOSE_CHARS_MAX,
};

impl StateMachine {
    pub fn contracts(&self) -> &Contracts {
        &self.contracts
    }

    /// A contract's status as its parties see it: an escrow whose hold the ledger voided at the
    /// deadline has expired, though no command told the book.
    pub fn contract_status(&self, contract: &Contract) -> ContractStatus {
        match (contract.status, contract.hold) {
            (ContractStatus::Active, Some(hold))
                if !self.ledger.pending().contains_key(&hold.0) =>
            {
                ContractStatus::Expired
            }
            (status, _) => status,
        }
    }

    /// What the contract still holds for its payee, as its parties see it.
    pub fn contract_holding(&self, contract: &Contract) -> Amount {
        if self.contract_status(contract) == ContractStatus::Active {
            contract.holding()
        } else {
            Amount::ZERO
        }
    }

    /// Opens a contract under the payer's idempotency key: a retry answers the contract the key
    /// opened, the key on another command is refused.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn open_contract(
        &mut self,
        origin: Origin,
        payer: WalletId,
        payee: WalletId,
        template: Template,
        purpose: String,
        by: Keyed,
        auth: Option<HolderAuth>,
        now: u64,
    ) -> CommandResult {
        self.own_wallet(origin, payer)?.ensure_active(payer)?;
        self.check_holder_auth(payer, &auth, now)?;
        let id = self.contracts.next_id();
        let show = |first: u64| ContractId(first as u32).to_string();
        let first = self.claimed(payer, by, u64::from(id.0), show, |state| {
            state.open_new_contract(origin, (payer, payee), template, purpose, now)?;
            Ok(u64::from(id.0))
        })?;
        Ok(Outcome::Contract(ContractId(first as u32)))
    }

    /// Opens a contract and funds it at once; a refusal changes nothing.
    fn open_new_contract(
        &mut self,
        origin: Origin,
        (payer, payee): (WalletId, WalletId),
        template: Template,
        purpose: String,
        now: u64,
    ) -> Result<(), CommandError> {
        template.check(now)?;
        if purpose.chars().count() > PURPOSE_CHARS_MAX || purpose.chars().any(char::is_control) {
            return Err(CommandError::ContractTermsInvalid(
                "a purpose is at most 64 printable characters",
            ));
        }
        if payer == payee {
            return Err(CommandError::SameWallet);
        }
        self.wallet(payee)?.ensure_active(payee)?;
        let id = self.contracts.next_id();
        let mut contract = Contract {
            id,
            payer,
            payee,
            template,
            purpose,
            opened_at_ms: now,
            status: ContractStatus::Active,
            escrow: None,
            hold: None,
            released: Amount::ZERO,
            refunded: Amount::ZERO,
            delivered: 0,
            missed: 0,
            last_miss: None,
            next_run_ms: None,
        };
        match template {
            Template::Escrow {
                amount,
                deadline_ms,
            } => {
                check_amount(amount)?;
                let mut leg = self.check_payment(origin, payer, payee, amount, now)?;
                leg.kind = TransferKind::PendingHold;
                contract.hold = Some(self.ledger.hold(leg, deadline_ms, now)?);
                self.wallet_mut(payer).record_outgoing(amount, now);
            }
            Template::Prepaid { .. } => {
                let total = template.funding()?;
                check_amount(total)?;
                let from = self.wallet(payer)?;
                from.check_outgoing(
                    self.operator(from.operator)?.limits_for(from.class),
                    total,
                    now,
                )?;
                let available = self.ledger.account(from.account)?.available();
                if available < total {
                    return Err(CommandError::InsufficientFunds {
                        available,
                        needed: total,
                    });
                }
                let (debit, operator) = (from.account, from.operator);
                // The escrow is opened only once the funding is sure, so a refusal changes nothing.
                let escrow = self.ledger.open_account(AccountKind::Escrow, operator);
                let leg = Leg {
                    debit,
                    credit: escrow,
                    amount: total,
                    kind: TransferKind::ContractFunding,
                };
                self.ledger.transfer(leg, now)?;
                self.wallet_mut(payer).record_outgoing(total, now);
                contract.escrow = Some(escrow);
            }
            Template::Recurring { first_ms, .. } => contract.next_run_ms = Some(first_ms.max(now)),
        }
        self.contracts.insert(contract);
        Ok(())
    }

    fn active_contract(&self, id: ContractId) -> Result<Contract, CommandError> {
        let contract = self.contracts.get(id)?;
        match self.contract_status(contract) {
            ContractStatus::Active => Ok(contract.clone()),
            status => Err(CommandError::ContractNotActive {
                contract: id,
                status: status.as_str(),
            }),
        }
    }

    pub(super) fn confirm_contract(
        &mut self,
        origin: Origin,
        id: ContractId,
        units: u32,
        by: Keyed,
        auth: Option<HolderAuth>,
        now: u64,
    ) -> CommandResult {
        let contract = self.contracts.get(id)?.clone();
        self.own_wallet(origin, contract.payer)?;
        self.check_holder_auth(contract.payer, &auth, now)?;
        let (payer, payee) = (contract.payer, contract.payee);
        match contract.template {
            Template::Escrow { amount, .. } => self.keyed(payer, by, |state| {
                let contract = state.active_contract(id)?;
                let hold = contract
                    .hold
                    .expect("an escrow holds by a two-phase transfer");
                let posted = state.ledger.resolve(hold, true, now)?;
                let book = state.contracts.get_mut(id)?;
                book.status = ContractStatus::Completed;
                book.released = amount;
                book.delivered = 1;
                Ok(posted)
            }),
            Template::Prepaid { unit_price, .. } => {
                if units == 0 {
                    return Err(CommandError::ContractTermsInvalid(
                        "confirm at least one delivered unit",
                    ));
                }
                let asked = Amount::from_fen(unit_price.fen().saturating_mul(i64::from(units)));
                self.keyed(payer, by, |state| {
                    let contract = state.active_contract(id)?;
                    let holding = contract.holding();
                    if asked > holding {
                        return Err(CommandError::ContractExceedsHoldings {
                            contract: id,
                            holding,
                            asked,
                        });
                    }
                    let to = state.wallet(payee)?;
                    to.ensure_active(payee)?;
                    let leg = Leg {
                        debit: contract.escrow.expect("a prepaid contract has an escrow"),
                        credit: to.account,
                        amount: asked,
                        kind: TransferKind::ContractRelease,
                    };
                    let released = state.ledger.transfer(leg, now)?;
                    let book = state.contracts.get_mut(id)?;
                    book.released = Amount::from_fen(book.released.fen() + asked.fen());
                    book.delivered += units;
                    if book.holding() == Amount::ZERO {
                        book.status = ContractStatus::Completed;
                    }
                    Ok(released)
                })
            }
            Template::Recurring { .. } => Err(CommandError::ContractTemplateMismatch(
                "a recurring contract pays on its schedule; there is nothing to confirm",
            )),
        }
    }

    pub(super) fn cancel_contract(
        &mut self,
        origin: Origin,
        id: ContractId,
        by_payee: bool,
        auth: Option<HolderAuth>,
        now: u64,
    ) -> CommandResult {
        let contract = self.contracts.get(id)?.clone();
        let party = if by_payee {
            contract.payee
        } else {
            contract.payer
        };
        self.own_wallet(origin, party)?;
        self.check_holder_auth(party, &auth, now)?;
        match self.contract_status(&contract) {
            // A retried cancellation finds its work done.
            ContractStatus::Cancelled => return Ok(Outcome::Done),
            ContractStatus::Active => {}
            status => {
                return Err(CommandError::ContractNotActive {
                    contract: id,
                    status: status.as_str(),
                })
            }
        }
        let refund = contract.holding();
        match contract.template {
            Template::Escrow { .. } if !by_payee => {
                return Err(CommandError::ContractTemplateMismatch(
                    "an escrow returns to the payer at its deadline or when the payee cancels",
                ))
            }
            Template::Escrow { .. } => {
                let hold = contract
                    .hold
                    .expect("an escrow holds by a two-phase transfer");
                self.ledger.resolve(hold, false, now)?;
            }
            Template::Prepaid { .. } if refund.fen() > 0 => {
                let to = self.wallet(contract.payer)?;
                if to.status == WalletStatus::Closed {
                    return Err(CommandError::WalletClosed(contract.payer));
                }
                // Money going back where it came from is not held to the balance cap.
                let leg = Leg {
                    debit: contract.escrow.expect("a prepaid contract has an escrow"),
                    credit: to.account,
                    amount: refund,
                    kind: TransferKind::ContractRefund,
                };
                self.ledger.transfer(leg, now)?;
            }
            Template::Prepaid { .. } => {}
            Template::Recurring { .. } => self.contracts.unschedule(id),
        }
        let book = self.contracts.get_mut(id)?;
        book.status = ContractStatus::Cancelled;
        book.refunded = Amount::from_fen(book.refunded.fen() + refund.fen());
        Ok(Outcome::Done)
    }

    /// Makes the recurring payments due at `now`: each a scheduled payment checked like any
    /// other; a refused one is recorded as missed with its reason.
    pub(super) fn run_due_contracts(&mut self, now: u64) {
        let mut budget = DUE_RUNS_PER_ENTRY_MAX;
        while budget > 0 {
            let due = self.contracts.take_due(now, budget);
            if due.is_empty() {
                return;
            }
            budget -= due.len();
            for (at, id) in due {
                self.run_contract(id, now);
                self.contracts.after_run(id, at);
            }
        }
    }

    fn run_contract(&mut self, id: ContractId, now: u64) {
        let Ok(contract) = self.contracts.get(id) else {
            return;
        };
        let (Template::Recurring { amount, .. }, ContractStatus::Active) =
            (contract.template, contract.status)
        else {
            return;
        };
        let (payer, payee) = (contract.payer, contract.payee);
        let operator = self.known_wallet(payer).operator;
        let paid = self
            .check_payment(Origin::Operator(operator), payer, payee, amount, now)
            .and_then(|mut leg| {
                leg.kind = TransferKind::ScheduledPayment;
                self.ledger.transfer(leg, now)
            });
        if paid.is_ok() {
            self.wallet_mut(payer).record_outgoing(amount, now);
        }
        let Ok(book) = self.contracts.get_mut(id) else {
            return;
        };
        match paid {
            Ok(_) => {
                book.delivered += 1;
                book.released = Amount::from_fen(book.released.fen() + amount.fen());
            }
            Err(error) => {
                book.missed += 1;
                book.last_miss = Some(error.code().to_string());
            }
        }
    }
}
