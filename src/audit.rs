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

/// Every invariant the audit checks. A violation names the one it breaks, with a stable code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Check {
    /// Each ledger's accounts sum to zero: double entry.
    LedgerBalances,
    /// Every balance is what the event stream's transfers add up to.
    BalanceMatchesEvents,
    /// Every account's pending debits are what its open holds add up to.
    PendingMatchesHolds,
    /// No balance is negative where the ledger's design forbids it.
    NoNegativeBalance,
    /// A wallet points at an e-CNY wallet account of its own operator.
    WalletAccount,
    /// A closed wallet holds nothing.
    ClosedWalletEmpty,
    /// Each operator's offline float is what its secure elements hold, as last synced.
    OfflineFloat,
    /// A prepaid contract's escrow account holds what its book says.
    ContractEscrow,
    /// An escrow contract's two-phase transfer holds what its book says.
    ContractHold,
    /// A campaign's pool holds budget − distributed + reclaimed − returned.
    CampaignPool,
    /// A campaign's pool is a pool account.
    CampaignPoolAccount,
    /// A campaign distributed its packets' value, packet by packet.
    CampaignDistributed,
    /// A packet holds its value less what it spent and what expiry reclaimed; nothing once the
    /// campaign has ended.
    PacketBalance,
    /// A packet is a packet account.
    PacketAccount,
    /// Each operator gave up reserves equal to what it was issued net of redemptions.
    OperatorBacking,
    /// e-CNY in circulation is issued minus redeemed, and the issuance account's mirror.
    Circulation,
    /// Reserves given up, over all operators, equal e-CNY in circulation: 100 % backing.
    ReservesMatchCirculation,
}

impl Check {
    pub const ALL: [Check; 17] = [
        Check::LedgerBalances,
        Check::BalanceMatchesEvents,
        Check::PendingMatchesHolds,
        Check::NoNegativeBalance,
        Check::WalletAccount,
        Check::ClosedWalletEmpty,
        Check::OfflineFloat,
        Check::ContractEscrow,
        Check::ContractHold,
        Check::CampaignPool,
        Check::CampaignPoolAccount,
        Check::CampaignDistributed,
        Check::PacketBalance,
        Check::PacketAccount,
        Check::OperatorBacking,
        Check::Circulation,
        Check::ReservesMatchCirculation,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Check::LedgerBalances => "LEDGER_UNBALANCED",
            Check::BalanceMatchesEvents => "BALANCE_DIFFERS_FROM_EVENTS",
            Check::PendingMatchesHolds => "PENDING_DIFFERS_FROM_HOLDS",
            Check::NoNegativeBalance => "BALANCE_NEGATIVE",
            Check::WalletAccount => "WALLET_ACCOUNT_WRONG",
            Check::ClosedWalletEmpty => "CLOSED_WALLET_HOLDS_MONEY",
            Check::OfflineFloat => "OFFLINE_FLOAT_DIFFERS",
            Check::ContractEscrow => "CONTRACT_ESCROW_DIFFERS",
            Check::ContractHold => "CONTRACT_HOLD_DIFFERS",
            Check::CampaignPool => "CAMPAIGN_POOL_DIFFERS",
            Check::CampaignPoolAccount => "CAMPAIGN_POOL_NOT_A_POOL",
            Check::CampaignDistributed => "CAMPAIGN_DISTRIBUTED_DIFFERS",
            Check::PacketBalance => "PACKET_BALANCE_DIFFERS",
            Check::PacketAccount => "PACKET_NOT_A_PACKET",
            Check::OperatorBacking => "OPERATOR_BACKING_DIFFERS",
            Check::Circulation => "CIRCULATION_DIFFERS",
            Check::ReservesMatchCirculation => "RESERVES_DIFFER_FROM_CIRCULATION",
        }
    }
}

/// A broken invariant: which check found it, and what it found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub check: Check,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]", self.detail, self.check.code())
    }
}

/// Collects violations as the checks find them.
#[derive(Default)]
struct Findings(Vec<Violation>);

impl Findings {
    fn push(&mut self, check: Check, detail: String) {
        self.0.push(Violation { check, detail });
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditReport {
    pub violations: Vec<Violation>,
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

    /// Whether a violation of `check` was found.
    pub fn names(&self, check: Check) -> bool {
        self.violations.iter().any(|v| v.check == check)
    }
}

pub fn audit(state: &StateMachine) -> AuditReport {
    let mut violations = Findings::default();
    let ledger = state.ledger();
    for (kind, sum) in ledger.ledger_sums() {
        if sum != 0 {
            violations.push(
                Check::LedgerBalances,
                format!(
                    "{} ledger does not balance: sum of accounts is {sum} fen",
                    kind.name()
                ),
            );
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
            violations.push(Check::OperatorBacking, format!(
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
        violations.push(Check::Circulation, format!(
            "e-CNY in circulation {} differs from issued {} minus redeemed {} (issuance account {})",
            Amount::from_fen(circulation), Amount::from_fen(issued), Amount::from_fen(redeemed), Amount::from_fen(issuance_balance)
        ));
    }
    if backing_total != circulation {
        violations.push(
            Check::ReservesMatchCirculation,
            format!(
                "reserves given up {} differ from e-CNY in circulation {}",
                Amount::from_fen(backing_total),
                Amount::from_fen(circulation)
            ),
        );
    }
    AuditReport {
        violations: violations.0,
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
fn check_balances_against_events(state: &StateMachine, violations: &mut Findings) {
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
            violations.push(
                Check::BalanceMatchesEvents,
                format!(
                    "account A{index:010} balance {} but its events sum to {}",
                    account.balance,
                    Amount::from_fen(balances[index])
                ),
            );
        }
        if account.pending_debits.fen() != pending[index] {
            violations.push(
                Check::PendingMatchesHolds,
                format!(
                    "account A{index:010} holds {} pending but open holds sum to {}",
                    account.pending_debits,
                    Amount::from_fen(pending[index])
                ),
            );
        }
    }
}

/// An account's kind in words, for a violation's detail.
fn kind_name(kind: AccountKind) -> &'static str {
    match kind {
        AccountKind::ReserveFunding => "reserve funding",
        AccountKind::OperatorReserve => "operator reserve",
        AccountKind::IssuanceBacking => "issuance backing",
        AccountKind::BankFunding => "bank funding",
        AccountKind::CustomerDeposit => "customer deposit",
        AccountKind::Issuance => "issuance",
        AccountKind::OperatorVault => "operator vault",
        AccountKind::Wallet => "wallet",
        AccountKind::OfflineFloat => "offline float",
        AccountKind::Escrow => "escrow",
        AccountKind::RedPacketPool => "red-packet pool",
        AccountKind::RedPacket => "red packet",
    }
}

fn check_signs_and_holds(state: &StateMachine, violations: &mut Findings) {
    for (index, account) in state.ledger().accounts().iter().enumerate() {
        if account.kind.may_go_negative() {
            continue;
        }
        if account.balance.is_negative() || account.available().is_negative() {
            violations.push(
                Check::NoNegativeBalance,
                format!(
                    "account A{index:010} ({}) is negative: balance {}, pending {}",
                    kind_name(account.kind),
                    account.balance,
                    account.pending_debits
                ),
            );
        }
    }
}

/// Each contract holds in the ledger exactly what its book says: a prepaid term's escrow account
/// its unreleased, unrefunded fees; an open escrow its two-phase transfer.
fn check_contracts(state: &StateMachine, violations: &mut Findings) {
    let ledger = state.ledger();
    for contract in state.contracts().all() {
        let holding = state.contract_holding(contract);
        if let Some(escrow) = contract.escrow {
            let held = ledger.account(escrow).map_or(Amount::ZERO, |a| a.balance);
            if held != holding {
                violations.push(
                    Check::ContractEscrow,
                    format!(
                        "contract {} should hold {holding} but its escrow account holds {held}",
                        contract.id
                    ),
                );
            }
        }
        if let Some(hold) = contract.hold {
            let pending = ledger
                .pending()
                .get(&hold.0)
                .map_or(Amount::ZERO, |p| p.amount);
            if pending != holding {
                violations.push(
                    Check::ContractHold,
                    format!(
                    "contract {} should hold {holding} but its two-phase transfer holds {pending}",
                    contract.id
                ),
                );
            }
        }
    }
}

/// Each campaign's pool holds exactly budget − distributed + reclaimed − returned, each packet
/// account exactly its value less what it spent and what expiry reclaimed, and an ended campaign
/// holds nothing.
fn check_campaigns(state: &StateMachine, violations: &mut Findings) {
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
                Some(balance) => violations.push(Check::CampaignPool, format!(
                    "campaign {id}'s pool holds {balance}; budget {} − distributed {} + reclaimed {} − returned {} is {expected}",
                    book.terms().budget, book.distributed, book.reclaimed, book.returned
                )),
                None => violations.push(Check::CampaignPoolAccount, format!("campaign {id}'s pool {pool} is not a pool account")),
            }
        }
        let value = book.terms().packet_value;
        let distributed = Amount::from_fen(value.fen() * book.packets().len() as i64);
        if book.distributed != distributed {
            violations.push(
                Check::CampaignDistributed,
                format!(
                    "campaign {id} distributed {} but its {} packets of {value} make {distributed}",
                    book.distributed,
                    book.packets().len()
                ),
            );
        }
        for (index, packet) in book.packets().iter().enumerate() {
            let expected = book.packet_balance(packet);
            let ended = book.status == CampaignStatus::Expired;
            match held(packet.account, AccountKind::RedPacket) {
                Some(balance) if balance == expected && !(ended && balance.is_positive()) => {}
                Some(balance) => violations.push(
                    Check::PacketBalance,
                    format!(
                        "campaign {id} packet {} of {} holds {balance}; its book says {expected}{}",
                        index + 1,
                        packet.wallet,
                        if ended {
                            " and the campaign has ended"
                        } else {
                            ""
                        }
                    ),
                ),
                None => violations.push(
                    Check::PacketAccount,
                    format!(
                        "campaign {id} packet {} points at {}, not a packet account",
                        index + 1,
                        packet.account
                    ),
                ),
            }
        }
    }
}

fn check_wallets(state: &StateMachine, violations: &mut Findings) {
    for (index, wallet) in state.wallets().iter().enumerate() {
        let id = StateMachine::wallet_id_at(index);
        match state.ledger().account(wallet.account) {
            Ok(account)
                if account.kind == AccountKind::Wallet && account.operator == wallet.operator =>
            {
                if wallet.status == WalletStatus::Closed && account.balance != Amount::ZERO {
                    violations.push(
                        Check::ClosedWalletEmpty,
                        format!("closed wallet {id} still holds {}", account.balance),
                    );
                }
            }
            _ => violations.push(
                Check::WalletAccount,
                format!("wallet {id} points at a wrong account {}", wallet.account),
            ),
        }
    }
}

/// Each operator's offline float equals what its secure elements hold, as the center believes.
fn check_offline_float(state: &StateMachine, violations: &mut Findings) {
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
            violations.push(
                Check::OfflineFloat,
                format!(
                    "operator {} offline float {} differs from its secure elements' {}",
                    op.id,
                    Amount::from_fen(float),
                    Amount::from_fen(total)
                ),
            );
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

#[cfg(test)]
mod tests {
    //! Every check shown to catch what it guards: a state that passes the audit is damaged in
    //! exactly one way, outside the ledger's rules, and the audit must name that check.

    use std::collections::BTreeSet;
    use std::time::{SystemTime, UNIX_EPOCH};

    use super::*;
    use crate::certs::KeyPair;
    use crate::command::{Command, Outcome};
    use crate::demo::campaign::CampaignDemoSize;
    use crate::ids::{AccountId, ContractId, IdempotencyKey, WalletId};
    use crate::node::Node;
    use crate::platform::Platform;
    use crate::programs::contracts::Template;

    /// A state with what the online demo leaves, plus an open hold, an open prepaid term and an
    /// open escrow between two funded wallets of OP01.
    struct Online {
        state: StateMachine,
        payer: WalletId,
        payee: WalletId,
        prepaid: ContractId,
        escrow: ContractId,
    }

    fn online() -> Online {
        let dir = tempfile::tempdir().unwrap();
        crate::demo::run(dir.path(), &mut |_| {}).unwrap();
        let (mut platform, _) = Platform::open(dir.path()).unwrap();
        let op = OperatorId(1);
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let context = platform.state().signing_context(op);
        let not_after_ms = now_ms + crate::signing::SIGNATURE_WINDOW_MS_CLIENT;
        let sign = |command: Command, key: &KeyPair| command.sign(key, &context, not_after_ms);
        let mut run = |command: Command| platform.one(op, command).unwrap().unwrap();
        let mut funded = |phone: u64, key: &KeyPair| {
            let Outcome::Wallet(wallet) = run(Command::OpenWallet {
                operator: op,
                phone: phone.into(),
                public_key: key.public_key(),
            }) else {
                panic!("no wallet")
            };
            let Outcome::Account(account) = run(Command::OpenDepositAccount { operator: op })
            else {
                panic!("no account")
            };
            run(Command::CashDeposit {
                account,
                amount: Amount::from_yuan(3_000),
            });
            run(sign(
                Command::BindBankAccount {
                    wallet,
                    account,
                    auth: None,
                },
                key,
            ));
            run(sign(
                Command::Exchange {
                    wallet,
                    amount: Amount::from_yuan(2_000),
                    key: IdempotencyKey(u128::from(phone)),
                    auth: None,
                },
                key,
            ));
            wallet
        };
        let (payer_key, payee_key) = (
            KeyPair::from_seed(b"audit payer"),
            KeyPair::from_seed(b"audit payee"),
        );
        let (payer, payee) = (
            funded(13_700_000_001, &payer_key),
            funded(13_700_000_002, &payee_key),
        );
        let mut signed = |command: Command| run(sign(command, &payer_key));
        signed(Command::Hold {
            payer,
            payee,
            amount: Amount::from_yuan(10),
            timeout_ms: 86_400_000,
            key: IdempotencyKey(1),
            auth: None,
        });
        let mut contract = |template, key| {
            let Outcome::Contract(id) = signed(Command::OpenContract {
                payer,
                payee,
                template,
                purpose: "audit".into(),
                key: IdempotencyKey(key),
                auth: None,
            }) else {
                panic!("no contract")
            };
            id
        };
        let prepaid = contract(
            Template::Prepaid {
                units: 10,
                unit_price: Amount::from_yuan(20),
            },
            2,
        );
        let escrow = contract(
            Template::Escrow {
                amount: Amount::from_yuan(50),
                deadline_ms: now_ms + 86_400_000,
            },
            3,
        );
        let state = platform.state().clone();
        assert!(audit(&state).is_clean(), "{}", audit(&state));
        Online {
            state,
            payer,
            payee,
            prepaid,
            escrow,
        }
    }

    /// What a small red-packet campaign leaves: drawn, spent, expired, returned.
    fn campaign() -> StateMachine {
        let dir = tempfile::tempdir().unwrap();
        let size = CampaignDemoSize {
            registrants: 60,
            packets: 20,
        };
        crate::demo::campaign::run(dir.path(), &size, &mut |_| {}).unwrap();
        let state = Node::open(dir.path()).unwrap().0.state().clone();
        assert!(audit(&state).is_clean());
        assert!(state.red_packets().campaigns()[0].packets().len() > 1);
        state
    }

    /// What the offline demo leaves: secure elements loaded, paid, synced, one blocked.
    fn offline() -> StateMachine {
        let dir = tempfile::tempdir().unwrap();
        crate::demo::offline::run(dir.path(), &mut |_| {}).unwrap();
        let state = Node::open(dir.path()).unwrap().0.state().clone();
        assert!(audit(&state).is_clean());
        assert!(state.devices().devices().next().is_some());
        state
    }

    fn account_of(state: &StateMachine, wallet: WalletId) -> AccountId {
        state.wallet(wallet).unwrap().account
    }

    /// Moves `fen` from one account to another with no event: every ledger still sums to zero.
    fn shift(state: &mut StateMachine, from: AccountId, to: AccountId, fen: i64) {
        let ledger = state.ledger_mut_for_test();
        let from = ledger.account_mut_for_test(from);
        from.balance = Amount::from_fen(from.balance.fen() - fen);
        let to = ledger.account_mut_for_test(to);
        to.balance = Amount::from_fen(to.balance.fen() + fen);
    }

    /// Damages `state` in one way and asserts the audit names `check` (and, where the damage
    /// breaks nothing else, only `check`).
    fn assert_caught(
        mut state: StateMachine,
        check: Check,
        alone: bool,
        damage: impl FnOnce(&mut StateMachine),
        covered: &mut BTreeSet<&'static str>,
    ) {
        damage(&mut state);
        let report = audit(&state);
        assert!(report.names(check), "{} not named:\n{report}", check.code());
        assert!(
            report
                .violations
                .iter()
                .all(|v| v.to_string().ends_with(&format!("[{}]", v.check.code()))),
            "{report}"
        );
        if alone {
            assert!(
                report.violations.iter().all(|v| v.check == check),
                "more than {} named:\n{report}",
                check.code()
            );
        }
        covered.insert(check.code());
    }

    #[test]
    fn every_check_of_the_audit_names_the_damage_it_guards_against() {
        let world = online();
        let (payer, payee) = (
            account_of(&world.state, world.payer),
            account_of(&world.state, world.payee),
        );
        let op = world.state.operator(OperatorId(1)).unwrap().clone();
        let mut covered = BTreeSet::new();
        let fresh = || world.state.clone();

        assert_caught(
            fresh(),
            Check::LedgerBalances,
            false,
            |s| {
                let balance = s.ledger().account(payer).unwrap().balance;
                s.ledger_mut_for_test()
                    .corrupt_balance_for_test(payer, Amount::from_fen(balance.fen() + 1));
            },
            &mut covered,
        );
        assert_caught(
            fresh(),
            Check::BalanceMatchesEvents,
            true,
            |s| shift(s, payer, payee, 1),
            &mut covered,
        );
        assert_caught(
            fresh(),
            Check::PendingMatchesHolds,
            true,
            |s| {
                let account = s.ledger_mut_for_test().account_mut_for_test(payee);
                account.pending_debits = Amount::from_fen(account.pending_debits.fen() + 1);
            },
            &mut covered,
        );
        assert_caught(
            fresh(),
            Check::NoNegativeBalance,
            false,
            |s| {
                let held = s.ledger().account(payee).unwrap().balance.fen();
                shift(s, payee, payer, held + 1);
            },
            &mut covered,
        );
        assert_caught(
            fresh(),
            Check::WalletAccount,
            true,
            |s| {
                s.books_mut_for_test().wallets[world.payee.0 as usize - 1].account = op.vault;
            },
            &mut covered,
        );
        assert_caught(
            fresh(),
            Check::ClosedWalletEmpty,
            true,
            |s| {
                s.books_mut_for_test().wallets[world.payee.0 as usize - 1].status =
                    WalletStatus::Closed;
            },
            &mut covered,
        );
        assert_caught(
            fresh(),
            Check::ContractEscrow,
            true,
            |s| {
                let contract = &mut s.books_mut_for_test().contracts.all_mut_for_test()
                    [world.prepaid.index() - 1];
                contract.released = Amount::from_fen(contract.released.fen() + 1);
            },
            &mut covered,
        );
        assert_caught(
            fresh(),
            Check::ContractHold,
            true,
            |s| {
                let contract = &mut s.books_mut_for_test().contracts.all_mut_for_test()
                    [world.escrow.index() - 1];
                contract.refunded = Amount::from_fen(contract.refunded.fen() + 1);
            },
            &mut covered,
        );
        assert_caught(
            fresh(),
            Check::OperatorBacking,
            false,
            |s| {
                let totals = &mut s.books_mut_for_test().issuance[0];
                totals.issued = Amount::from_fen(totals.issued.fen() + 1);
            },
            &mut covered,
        );
        assert_caught(
            fresh(),
            Check::Circulation,
            false,
            |s| {
                let issuance = s.issuance_account();
                shift(s, issuance, payer, 1);
            },
            &mut covered,
        );
        assert_caught(
            fresh(),
            Check::ReservesMatchCirculation,
            false,
            |s| {
                shift(s, op.reserve, op.backing, 1);
            },
            &mut covered,
        );

        let offline = offline();
        let float = offline.operator(OperatorId(1)).unwrap().offline_float;
        let vault = offline.operator(OperatorId(1)).unwrap().vault;
        assert_caught(
            offline,
            Check::OfflineFloat,
            false,
            |s| shift(s, vault, float, 1),
            &mut covered,
        );

        let campaign = campaign();
        let wallet_account = account_of(&campaign, WalletId(1));
        fn book(s: &mut StateMachine) -> &mut crate::programs::red_packets::CampaignBook {
            &mut s.books_mut_for_test().red_packets.campaigns_mut_for_test()[0]
        }
        assert_caught(
            campaign.clone(),
            Check::CampaignPool,
            true,
            |s| {
                let book = book(s);
                book.returned = Amount::from_fen(book.returned.fen() + 1);
            },
            &mut covered,
        );
        assert_caught(
            campaign.clone(),
            Check::CampaignPoolAccount,
            true,
            |s| {
                book(s).pool = Some(wallet_account);
            },
            &mut covered,
        );
        assert_caught(
            campaign.clone(),
            Check::CampaignDistributed,
            false,
            |s| {
                let book = book(s);
                book.distributed = Amount::from_fen(book.distributed.fen() + 1);
            },
            &mut covered,
        );
        assert_caught(
            campaign.clone(),
            Check::PacketBalance,
            true,
            |s| {
                let packet = &mut book(s).packets_mut_for_test()[0];
                packet.spent = Amount::from_fen(packet.spent.fen() + 1);
            },
            &mut covered,
        );
        assert_caught(
            campaign,
            Check::PacketAccount,
            true,
            |s| {
                book(s).packets_mut_for_test()[0].account = wallet_account;
            },
            &mut covered,
        );

        let all: BTreeSet<&str> = Check::ALL.iter().map(|c| c.code()).collect();
        println!(
            "audit checks shown to fire: {} of {}",
            covered.len(),
            all.len()
        );
        assert_eq!(covered, all, "every check has a damage it catches");
    }
}
