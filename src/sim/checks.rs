//! The checks after every step: the ledger against the model (every balance to the fen, every
//! acknowledged transfer present as told), the audit of every invariant, and what a restart
//! must keep.

use crate::audit::audit;
use crate::ledger::Event;
use crate::node::Recovery;

use super::model::Model;
use super::world::World;

/// Checks made, by kind, counted for the summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checks {
    /// Wallet and bank balances compared with the model.
    pub balances: u64,
    /// Acknowledged transfers read back from the ledger.
    pub acknowledged: u64,
    /// Audits of every invariant.
    pub audits: u64,
    /// Restarts whose recovered state was compared with the state before them.
    pub recoveries: u64,
    /// Answers compared with what was said before under the same key.
    pub answers: u64,
    /// Offline cards' balances and records checked after taps, tears and syncs.
    pub offline: u64,
}

impl Checks {
    pub fn total(&self) -> u64 {
        self.balances
            + self.acknowledged
            + self.audits
            + self.recoveries
            + self.answers
            + self.offline
    }

    pub fn add(&mut self, other: &Checks) {
        self.balances += other.balances;
        self.acknowledged += other.acknowledged;
        self.audits += other.audits;
        self.recoveries += other.recoveries;
        self.answers += other.answers;
        self.offline += other.offline;
    }
}

/// Every holder's wallet and bank balance equals the model's, to the fen.
pub(super) fn balances(world: &World, model: &Model, checks: &mut Checks) -> Result<(), String> {
    let state = world.state();
    for (i, holder) in world.holders.iter().enumerate() {
        let account = state
            .wallet(holder.wallet)
            .and_then(|w| state.ledger().account(w.account))
            .map_err(|e| format!("holder {i}'s wallet: {e}"))?;
        let wallet = account.balance.fen();
        if wallet != model.wallets[i] {
            return Err(format!(
                "holder {i}'s wallet {} holds {wallet} fen; the answers told {} fen",
                holder.wallet, model.wallets[i]
            ));
        }
        let held = account.pending_debits.fen();
        if held != model.held[i] {
            return Err(format!(
                "holder {i}'s wallet {} holds back {held} fen for escrows; the answers told {} fen",
                holder.wallet, model.held[i]
            ));
        }
        let bank = state
            .ledger()
            .account(holder.bank)
            .map_err(|e| format!("holder {i}'s bank account: {e}"))?
            .balance
            .fen();
        if bank != model.banks[i] {
            return Err(format!(
                "holder {i}'s bank account {} holds {bank} fen; the answers told {} fen",
                holder.bank, model.banks[i]
            ));
        }
        checks.balances += 3;
    }
    Ok(())
}

/// Every transfer the center acknowledged is in the ledger with its payer, payee and amount.
/// `from` skips those already read back since the last restart.
pub(super) fn acknowledged(
    world: &World,
    model: &Model,
    from: usize,
    checks: &mut Checks,
) -> Result<(), String> {
    let ledger = world.state().ledger();
    for ack in &model.acknowledged[from.min(model.acknowledged.len())..] {
        let Some(Event::Transfer(transfer)) = ledger.event(ack.event) else {
            return Err(format!("acknowledged transfer {} is missing", ack.event));
        };
        if transfer.debit != ack.debit
            || transfer.credit != ack.credit
            || transfer.amount.fen() != ack.fen
        {
            return Err(format!(
                "acknowledged transfer {} of {} fen from {} to {} reads {} fen from {} to {}",
                ack.event,
                ack.fen,
                ack.debit,
                ack.credit,
                transfer.amount.fen(),
                transfer.debit,
                transfer.credit
            ));
        }
        checks.acknowledged += 1;
    }
    Ok(())
}

/// The audit of every invariant over the whole state.
pub(super) fn audited(world: &World, checks: &mut Checks) -> Result<(), String> {
    let report = audit(world.state());
    checks.audits += 1;
    if report.is_clean() {
        Ok(())
    } else {
        Err(format!("audit failed:\n{report}"))
    }
}

/// A restart with nothing in flight gives back exactly the state before it.
pub(super) fn same_state(
    world: &World,
    before: [u8; 32],
    recovery: &Recovery,
    checks: &mut Checks,
) -> Result<(), String> {
    checks.recoveries += 1;
    if world.state().state_hash() == before {
        Ok(())
    } else {
        Err(format!(
            "the state after a restart differs from the state before it (snapshot {:?}, {} entries replayed, torn tail {:?})",
            recovery.snapshot_seq, recovery.log.entries_replayed, recovery.log.torn_tail
        ))
    }
}
