//! The model of what every party was told: each holder's wallet and bank balance as the
//! answers they heard make them, the escrows they opened, the first answer under each
//! idempotency key and every transfer the center acknowledged. Built from answers alone,
//! never from reading the ledger; the checks then hold the ledger to it.

use std::collections::{BTreeMap, HashMap};

use crate::command::{CommandResult, Outcome};
use crate::ids::{AccountId, ContractId, EventId, IdempotencyKey};

use super::workload::{Intent, Request};
use super::world::World;

/// A bug planted on purpose, to show the checks catch it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sabotage {
    /// The model is told one acknowledged payment moved a fen more than the center said.
    DoctoredAnswer,
    /// A disk that loses writes it acknowledged: a crash cuts into acknowledged entries.
    LyingDisk,
}

/// A transfer the center acknowledged: it must be in the ledger as told, after any restart.
#[derive(Clone, Copy, Debug)]
pub(super) struct Acknowledged {
    pub event: EventId,
    pub debit: AccountId,
    pub credit: AccountId,
    pub fen: i64,
}

#[derive(Clone, Copy, Debug)]
struct Escrow {
    payer: usize,
    payee: usize,
    fen: i64,
    open: bool,
}

/// How an answer fits what was said before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Told {
    /// The first success under its key: it moved money.
    Booked,
    /// The same success again: a retry or a duplicate, which moved nothing.
    Again,
    /// A refusal with its code: nothing moved.
    Refused(&'static str),
    /// A refusal of a copy signed long ago (delayed, or the network's duplicate) under a key
    /// that was booked before: nothing moved now, the booking stands.
    RefusedAfterBooked(&'static str),
}

pub(super) struct Model {
    /// Each holder's wallet balance in fen, and its bank account's.
    pub wallets: Vec<i64>,
    pub banks: Vec<i64>,
    /// What each wallet's open escrows hold back from spending (still in its balance).
    pub held: Vec<i64>,
    /// Each holder's e-CNY account in the ledger, for transfers.
    accounts: Vec<AccountId>,
    /// Each shop's settlement holder.
    shop_owners: Vec<usize>,
    escrows: BTreeMap<ContractId, Escrow>,
    /// The first success under each (payer, key).
    said: HashMap<(usize, IdempotencyKey), Outcome>,
    pub acknowledged: Vec<Acknowledged>,
    sabotage: Option<Sabotage>,
}

impl Model {
    /// The balances the set-up left, as its answers told them.
    pub(super) fn after_setup(world: &World, sabotage: Option<Sabotage>) -> Result<Model, String> {
        let state = world.state();
        let mut model = Model {
            wallets: Vec::new(),
            banks: Vec::new(),
            held: Vec::new(),
            accounts: Vec::new(),
            shop_owners: world.shops.iter().map(|s| s.owner).collect(),
            escrows: BTreeMap::new(),
            said: HashMap::new(),
            acknowledged: Vec::new(),
            sabotage,
        };
        for holder in &world.holders {
            let wallet = state.wallet(holder.wallet).map_err(|e| e.to_string())?;
            model.accounts.push(wallet.account);
            // Set-up: 50,000 yuan deposited, 3,000 exchanged.
            model.wallets.push(300_000);
            model.banks.push(4_700_000);
            model.held.push(0);
        }
        Ok(model)
    }

    /// The escrows still open, each with its payer.
    pub(super) fn open_escrows(&self) -> Vec<(usize, ContractId)> {
        self.escrows
            .iter()
            .filter(|(_, e)| e.open)
            .map(|(id, e)| (e.payer, *id))
            .collect()
    }

    /// A load from holder `holder`'s wallet into its card, as the center booked it.
    pub(super) fn loaded(&mut self, holder: usize, fen: i64) {
        self.wallets[holder] -= fen;
    }

    /// What the center answered one delivered copy of `request`. `fresh`: the client signed
    /// this copy just now (a send or a retry), so a booked request must be answered booked.
    pub(super) fn answer(
        &mut self,
        request: &Request,
        result: &CommandResult,
        fresh: bool,
    ) -> Result<Told, String> {
        let slot = (request.intent.payer(), request.key);
        match result {
            Ok(outcome) => {
                if request.intent.hostile() {
                    return Err(format!(
                        "a hostile request was booked: {:?} answered {outcome:?}",
                        request.intent
                    ));
                }
                if let Some(first) = self.said.get(&slot) {
                    if first != outcome {
                        return Err(format!(
                            "key {} answered {outcome:?} after {first:?}: {:?}",
                            request.key.0, request.intent
                        ));
                    }
                    return Ok(Told::Again);
                }
                self.said.insert(slot, *outcome);
                self.book(&request.intent, outcome)?;
                Ok(Told::Booked)
            }
            Err(error) => {
                if fresh && self.said.contains_key(&slot) {
                    return Err(format!(
                        "a retry of a booked request was refused {} ({error}): {:?}",
                        error.code(),
                        request.intent
                    ));
                }
                if self.said.contains_key(&slot) {
                    return Ok(Told::RefusedAfterBooked(error.code()));
                }
                Ok(Told::Refused(error.code()))
            }
        }
    }

    fn book(&mut self, intent: &Intent, outcome: &Outcome) -> Result<(), String> {
        match *intent {
            Intent::Pay {
                payer,
                payee,
                amount,
            } => {
                let mut fen = amount.fen();
                if self.sabotage == Some(Sabotage::DoctoredAnswer) {
                    // The model is told one fen more than was paid, once.
                    fen += 1;
                    self.sabotage = None;
                }
                self.transfer(payer, payee, fen, outcome)
            }
            Intent::PayShop {
                payer,
                shop,
                amount,
                ..
            } => self.transfer(payer, self.shop_owners[shop], amount.fen(), outcome),
            Intent::Exchange { holder, amount } => {
                self.wallets[holder] += amount.fen();
                self.banks[holder] -= amount.fen();
                Ok(())
            }
            Intent::DepositBack { holder, amount } => {
                self.wallets[holder] -= amount.fen();
                self.banks[holder] += amount.fen();
                Ok(())
            }
            Intent::OpenEscrow {
                payer,
                payee,
                amount,
                ..
            } => {
                let Outcome::Contract(id) = *outcome else {
                    return Err(format!("an escrow opened as {outcome:?}"));
                };
                self.held[payer] += amount.fen();
                let escrow = Escrow {
                    payer,
                    payee,
                    fen: amount.fen(),
                    open: true,
                };
                if self.escrows.insert(id, escrow).is_some() {
                    return Err(format!("contract {id} opened twice"));
                }
                Ok(())
            }
            Intent::ConfirmEscrow { contract, .. } => {
                let escrow = self
                    .escrows
                    .get_mut(&contract)
                    .filter(|e| e.open)
                    .ok_or(format!("contract {contract} confirmed while not open"))?;
                escrow.open = false;
                self.held[escrow.payer] -= escrow.fen;
                self.wallets[escrow.payer] -= escrow.fen;
                self.wallets[escrow.payee] += escrow.fen;
                Ok(())
            }
            Intent::SignedByAnother { .. } | Intent::ForeignOperator { .. } => {
                Err(format!("a hostile request was booked: {intent:?}"))
            }
        }
    }

    fn transfer(
        &mut self,
        payer: usize,
        payee: usize,
        fen: i64,
        outcome: &Outcome,
    ) -> Result<(), String> {
        let Outcome::Transfer(event) = *outcome else {
            return Err(format!("a payment answered {outcome:?}"));
        };
        self.wallets[payer] -= fen;
        self.wallets[payee] += fen;
        self.acknowledged.push(Acknowledged {
            event,
            debit: self.accounts[payer],
            credit: self.accounts[payee],
            fen,
        });
        Ok(())
    }
}
