//! The invariants of DESIGN.md, checked over a whole state: double entry in every ledger, e-CNY in
//! circulation equal to issued minus redeemed, every operator's e-CNY fully backed by reserves it
//! gave up, no negative balance where the design forbids one, balances equal to what the event
//! stream says happened, and every contract's escrow and red-packet campaign's pool and packets
//! holding exactly what their books say.

use std::fmt;

use crate::amount::Amount;
use crate::ids::OperatorId;
use crate::ledger::{AccountKind, Event, LedgerKind, TransferKind};
use crate::programs::red_packets::CampaignStatus;
use crate::state_machine::StateMachine;
use crate::wallet::WalletStatus;

/// Money held per operator, per ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorSupply {
    pub operator: OperatorId,
    pub name: String,
    pub reserves: Amount,
    pub backing: Amount,
    pub vault: Amount,
    pub wallets: Amount,
    /// e-CNY in the secure elements it issued, as last synced.
    pub offline: Amount,
    pub wallet_count: usize,
    pub customer_deposits: Amount,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditReport {
    pub violations: Vec<String>,
    pub issued: Amount,
    pub redeemed: Amount,
    pub circulation: Amount,
    /// The part of circulation in red-packet pools and packets.
    pub red_packets: Amount,
    pub reserves_total: Amount,
    pub deposits_total: Amount,
    pub operators: Vec<OperatorSupply>,
    pub accounts: usize,
    pub events: usize,
}

impl AuditReport {
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }
}

pub fn audit(state: &StateMachine) -> AuditReport {
    let mut violations = Vec::new();
    let ledger = state.ledger();
    for (kind, sum) in ledger.ledger_sums() {
        if sum != 0 {
            violations.push(format!(
                "{} ledger does not balance: sum of accounts is {sum} fen",
                kind.name()
            ));
        }
    }
    check_balances_against_events(state, &mut violations);
    check_signs_and_holds(state, &mut violations);
    check_wallets(state, &mut violations);
    check_offline_float(state, &mut violations);
    check_contracts(state, &mut violations);
    check_campaigns(state, &mut violations);

    let (mut circulation, mut reserves_total, mut deposits_total) = (0i64, 0i64, 0i64);
    let mut red_packets = 0i64;
    for account in ledger.accounts() {
        match account.kind {
            AccountKind::OperatorVault
            | AccountKind::Wallet
            | AccountKind::OfflineFloat
            | AccountKind::Escrow => circulation += account.balance.fen(),
            AccountKind::RedPacketPool | AccountKind::RedPacket => {
                circulation += account.balance.fen();
                red_packets += account.balance.fen();
            }
            AccountKind::OperatorReserve | AccountKind::IssuanceBacking => {
                reserves_total += account.balance.fen()
            }
            AccountKind::CustomerDeposit => deposits_total += account.balance.fen(),
            _ => {}
        }
    }
    let (mut issued, mut redeemed, mut backing_total) = (0i64, 0i64, 0i64);
    let operators = operator_supplies(state);
    for supply in &operators {
        let totals = state
            .issuance_totals(supply.operator)
            .expect("listed operator exists");
        issued += totals.issued.fen();
        redeemed += totals.redeemed.fen();
        backing_total += supply.backing.fen();
        if supply.backing != totals.outstanding() {
            violations.push(format!(
                "operator {} gave up {} of reserves but holds {} of e-CNY issued net of redemptions",
                supply.operator, supply.backing, totals.outstanding()
            ));
        }
    }
    let issuance_balance = ledger
        .accounts()
        .get(state.issuance_account().index())
        .map_or(0, |a| a.balance.fen());
    if circulation != issued - redeemed || -issuance_balance != circulation {
        violations.push(format!(
            "e-CNY in circulation {} differs from issued {} minus redeemed {} (issuance account {})",
            Amount::from_fen(circulation), Amount::from_fen(issued), Amount::from_fen(redeemed), Amount::from_fen(issuance_balance)
        ));
    }
    if backing_total != circulation {
        violations.push(format!(
            "reserves given up {} differ from e-CNY in circulation {}",
            Amount::from_fen(backing_total),
            Amount::from_fen(circulation)
        ));
    }
    AuditReport {
        violations,
        issued: Amount::from_fen(issued),
        redeemed: Amount::from_fen(redeemed),
        circulation: Amount::from_fen(circulation),
        red_packets: Amount::from_fen(red_packets),
        reserves_total: Amount::from_fen(reserves_total),
        deposits_total: Amount::from_fen(deposits_total),
        operators,
        accounts: ledger.accounts().len(),
        events: ledger.events().len(),
    }
}

/// Replays the event stream's money movements and compares with every account's balance.
fn check_balances_against_events(state: &StateMachine, violations: &mut Vec<String>) {
    let ledger = state.ledger();
    let mut balances = vec![0i64; ledger.accounts().len()];
    let mut pending = vec![0i64; ledger.accounts().len()];
    for event in ledger.events() {
        let Event::Transfer(t) = event else { continue };
        let moves = !matches!(
            t.kind,
            TransferKind::PendingHold | TransferKind::PendingVoid
        );
        if moves {
            balances[t.debit.index()] -= t.amount.fen();
            balances[t.credit.index()] += t.amount.fen();
        }
    }
    for hold in ledger.pending().values() {
        pending[hold.debit.index()] += hold.amount.fen();
    }
    for (index, account) in ledger.accounts().iter().enumerate() {
        if account.balance.fen() != balances[index] {
            violations.push(format!(
                "account A{index:010} balance {} but its events sum to {}",
                account.balance,
                Amount::from_fen(balances[index])
            ));
        }
        if account.pending_debits.fen() != pending[index] {
            violations.push(format!(
                "account A{index:010} holds {} pending but open holds sum to {}",
                account.pending_debits,
                Amount::from_fen(pending[index])
            ));
        }
    }
}

fn check_signs_and_holds(state: &StateMachine, violations: &mut Vec<String>) {
    for (index, account) in state.ledger().accounts().iter().enumerate() {
        if account.kind.may_go_negative() {
            continue;
        }
        if account.balance.is_negative() || account.available().is_negative() {
            violations.push(format!(
                "account A{index:010} ({:?}) is negative: balance {}, pending {}",
                account.kind, account.balance, account.pending_debits
            ));
        }
    }
}

/// Each contract holds in the ledger exactly what its book says: a prepaid term's escrow account
/// its unreleased, unrefunded fees; an open escrow its two-phase transfer.
fn check_contracts(state: &StateMachine, violations: &mut Vec<String>) {
    let ledger = state.ledger();
    for contract in state.contracts().all() {
        let holding = state.contract_holding(contract);
        if let Some(escrow) = contract.escrow {
            let held = ledger.account(escrow).map_or(Amount::ZERO, |a| a.balance);
            if held != holding {
                violations.push(format!(
                    "contract {} should hold {holding} but its escrow account holds {held}",
                    contract.id
                ));
            }
        }
        if let Some(hold) = contract.hold {
            let pending = ledger
                .pending()
                .get(&hold.0)
                .map_or(Amount::ZERO, |p| p.amount);
            if pending != holding {
                violations.push(format!(
                    "contract {} should hold {holding} but its two-phase transfer holds {pending}",
                    contract.id
                ));
            }
        }
    }
}

/// Each campaign's pool holds exactly budget − distributed + reclaimed − returned, each packet
/// account exactly its value less what it spent and what expiry reclaimed, and an ended campaign
/// holds nothing.
fn check_campaigns(state: &StateMachine, violations: &mut Vec<String>) {
    let ledger = state.ledger();
    let held = |account, kind| match ledger.account(account) {
        Ok(found) if found.kind == kind => Some(found.balance),
        _ => None,
    };
    for book in state.red_packets().campaigns() {
        let id = book.id();
        if let Some(pool) = book.pool {
            let expected = book.pool_expected();
            match held(pool, AccountKind::RedPacketPool) {
                Some(balance) if balance == expected => {}
                Some(balance) => violations.push(format!(
                    "campaign {id}'s pool holds {balance}; budget {} − distributed {} + reclaimed {} − returned {} is {expected}",
                    book.terms().budget, book.distributed, book.reclaimed, book.returned
                )),
                None => violations.push(format!("campaign {id}'s pool {pool} is not a pool account")),
            }
        }
        let value = book.terms().packet_value;
        let distributed = Amount::from_fen(value.fen() * book.packets().len() as i64);
        if book.distributed != distributed {
            violations.push(format!(
                "campaign {id} distributed {} but its {} packets of {value} make {distributed}",
                book.distributed,
                book.packets().len()
            ));
        }
        for (index, packet) in book.packets().iter().enumerate() {
            let expected = book.packet_balance(packet);
            let ended = book.status == CampaignStatus::Expired;
            match held(packet.account, AccountKind::RedPacket) {
                Some(balance) if balance == expected && !(ended && balance.is_positive()) => {}
                Some(balance) => violations.push(format!(
                    "campaign {id} packet {} of {} holds {balance}; its book says {expected}{}",
                    index + 1,
                    packet.wallet,
                    if ended {
                        " and the campaign has ended"
                    } else {
                        ""
                    }
                )),
                None => violations.push(format!(
                    "campaign {id} packet {} points at {}, not a packet account",
                    index + 1,
                    packet.account
                )),
            }
        }
    }
}

fn check_wallets(state: &StateMachine, violations: &mut Vec<String>) {
    for (index, wallet) in state.wallets().iter().enumerate() {
        let id = StateMachine::wallet_id_at(index);
        match state.ledger().account(wallet.account) {
            Ok(account)
                if account.kind == AccountKind::Wallet && account.operator == wallet.operator =>
            {
                if wallet.status == WalletStatus::Closed && account.balance != Amount::ZERO {
                    violations.push(format!(
                        "closed wallet {id} still holds {}",
                        account.balance
                    ));
                }
            }
            _ => violations.push(format!(
                "wallet {id} points at a wrong account {}",
                wallet.account
            )),
        }
    }
}

/// Each operator's offline float equals what its secure elements hold, as the center believes.
fn check_offline_float(state: &StateMachine, violations: &mut Vec<String>) {
    let mut believed = vec![0i64; state.operators().len()];
    for (_, device) in state.devices().devices() {
        let balance = device.believed_balance();
        if let Some(total) = (device.operator.0 as usize)
            .checked_sub(1)
            .and_then(|i| believed.get_mut(i))
        {
            *total += balance.fen();
        }
    }
    for (op, total) in state.operators().iter().zip(believed) {
        let float = state
            .ledger()
            .account(op.offline_float)
            .map_or(0, |a| a.balance.fen());
        if float != total {
            violations.push(format!(
                "operator {} offline float {} differs from its secure elements' {}",
                op.id,
                Amount::from_fen(float),
                Amount::from_fen(total)
            ));
        }
    }
}

fn operator_supplies(state: &StateMachine) -> Vec<OperatorSupply> {
    let ledger = state.ledger();
    let balance =
        |id: crate::ids::AccountId| ledger.account(id).map_or(Amount::ZERO, |a| a.balance);
    let mut supplies: Vec<OperatorSupply> = state
        .operators()
        .iter()
        .map(|op| OperatorSupply {
            operator: op.id,
            name: op.name.clone(),
            reserves: balance(op.reserve),
            backing: balance(op.backing),
            vault: balance(op.vault),
            wallets: Amount::ZERO,
            offline: balance(op.offline_float),
            wallet_count: 0,
            customer_deposits: Amount::ZERO,
        })
        .collect();
    for account in ledger.accounts() {
        let Some(supply) = (account.operator.0 as usize)
            .checked_sub(1)
            .and_then(|i| supplies.get_mut(i))
        else {
            continue;
        };
        match account.kind {
            AccountKind::Wallet => {
                supply.wallets = Amount::from_fen(supply.wallets.fen() + account.balance.fen());
                supply.wallet_count += 1;
            }
            AccountKind::CustomerDeposit => {
                supply.customer_deposits =
                    Amount::from_fen(supply.customer_deposits.fen() + account.balance.fen());
            }
            _ => {}
        }
    }
    supplies
}

impl fmt::Display for AuditReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Money supply by ledger")?;
        writeln!(
            f,
            "  {:<26} {:>20}",
            LedgerKind::Reserves.name(),
            self.reserves_total.yuan_sign().to_string()
        )?;
        writeln!(
            f,
            "  {:<26} {:>20}",
            LedgerKind::Deposits.name(),
            self.deposits_total.yuan_sign().to_string()
        )?;
        writeln!(
            f,
            "  {:<26} {:>20}   (issued {} − redeemed {})",
            "e-CNY in circulation",
            self.circulation.yuan_sign().to_string(),
            self.issued.yuan_sign(),
            self.redeemed.yuan_sign()
        )?;
        if self.red_packets.is_positive() {
            writeln!(
                f,
                "  {:<26} {:>20}",
                "  of which in red packets",
                self.red_packets.yuan_sign().to_string()
            )?;
        }
        writeln!(f, "Money supply by operator")?;
        writeln!(
            f,
            "  {:<6} {:<26} {:>16} {:>16} {:>16} {:>16} {:>14} {:>9} {:>16}",
            "id",
            "name",
            "reserves",
            "backing",
            "vault e-CNY",
            "wallet e-CNY",
            "offline e-CNY",
            "wallets",
            "deposits"
        )?;
        for op in &self.operators {
            writeln!(
                f,
                "  {:<6} {:<26} {:>16} {:>16} {:>16} {:>16} {:>14} {:>9} {:>16}",
                op.operator.to_string(),
                op.name,
                op.reserves.yuan_sign().to_string(),
                op.backing.yuan_sign().to_string(),
                op.vault.yuan_sign().to_string(),
                op.wallets.yuan_sign().to_string(),
                op.offline.yuan_sign().to_string(),
                op.wallet_count,
                op.customer_deposits.yuan_sign().to_string()
            )?;
        }
        writeln!(f, "{} accounts, {} events", self.accounts, self.events)?;
        if self.violations.is_empty() {
            write!(f, "Audit: every invariant holds.")
        } else {
            writeln!(f, "Audit: {} invariant(s) broken:", self.violations.len())?;
            for violation in &self.violations {
                writeln!(f, "  - {violation}")?;
            }
            Ok(())
        }
    }
}
