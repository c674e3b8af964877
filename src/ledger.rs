//! The registration center's books: accounts in three ledgers that never mix, double-entry
//! transfers between them, two-phase holds, per-account history and the ordered event stream that
//! the other centers consume. Deterministic: every input, time included, is handed in.

use std::collections::{BTreeMap, BTreeSet};

use crate::amount::Amount;
use crate::error::CommandError;
use crate::ids::{AccountId, DeviceId, EventId, OperatorId, WalletId};
use crate::wallet::{WalletClass, WalletStatus};

/// The three kinds of money. A transfer stays inside one ledger; a conversion is two linked
/// transfers, one in each ledger, that happen together or not at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum LedgerKind {
    /// Central-bank reserves held by operators.
    Reserves = 1,
    /// Commercial-bank deposits of customers at an operator.
    Deposits = 2,
    /// e-CNY, the central bank's digital cash.
    Ecny = 3,
}

impl LedgerKind {
    pub const ALL: [LedgerKind; 3] = [LedgerKind::Reserves, LedgerKind::Deposits, LedgerKind::Ecny];

    pub fn name(self) -> &'static str {
        match self {
            LedgerKind::Reserves => "central-bank reserves",
            LedgerKind::Deposits => "commercial-bank deposits",
            LedgerKind::Ecny => "e-CNY",
        }
    }
}

/// What an account is for; it fixes the account's ledger and whether it may go negative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum AccountKind {
    /// Reserves: where operators' reserves come from (their balance at the central bank before
    /// this system). Negative by design: minus all reserves brought in.
    ReserveFunding = 1,
    /// Reserves: an operator's reserve account at the central bank.
    OperatorReserve = 2,
    /// Reserves: what an operator gave up to receive e-CNY; the 100 % backing.
    IssuanceBacking = 3,
    /// Deposits: an operator's deposit liabilities. Negative by design: minus all deposits.
    BankFunding = 4,
    /// Deposits: a customer's bank account at an operator.
    CustomerDeposit = 5,
    /// e-CNY: the central bank's issuance account. Negative by design: minus all e-CNY in
    /// circulation.
    Issuance = 6,
    /// e-CNY: an operator's vault, from which it exchanges for customers' deposits.
    OperatorVault = 7,
    /// e-CNY: a wallet's balance.
    Wallet = 8,
    /// e-CNY: value an operator's secure elements hold offline, as the center last learned it.
    OfflineFloat = 9,
    /// e-CNY: what a smart contract holds for its payee until delivery, or for its payer until a
    /// refund.
    Escrow = 10,
    /// e-CNY: a red-packet campaign's pool: its budget until the draw hands it out, and what
    /// comes back at expiry until it returns to the sponsor.
    RedPacketPool = 11,
    /// e-CNY: one winner's red packet, spendable only at the campaign's eligible merchants before
    /// it expires; apart from the wallet's own balance, so it never fills the balance cap.
    RedPacket = 12,
}

impl AccountKind {
    pub fn ledger(self) -> LedgerKind {
        use AccountKind::*;
        match self {
            ReserveFunding | OperatorReserve | IssuanceBacking => LedgerKind::Reserves,
            BankFunding | CustomerDeposit => LedgerKind::Deposits,
            Issuance | OperatorVault | Wallet | OfflineFloat | Escrow | RedPacketPool
            | RedPacket => LedgerKind::Ecny,
        }
    }

    /// Source accounts stand for money outside this system's books and so may go negative. An
    /// operator's offline float may too, for a while: a payee can report a payment before the
    /// payer reports what it received offline to make it.
    pub fn may_go_negative(self) -> bool {
        matches!(
            self,
            AccountKind::ReserveFunding
                | AccountKind::BankFunding
                | AccountKind::Issuance
                | AccountKind::OfflineFloat
        )
    }

    fn from_u8(value: u8) -> Option<AccountKind> {
        use AccountKind::*;
        [
            ReserveFunding,
            OperatorReserve,
            IssuanceBacking,
            BankFunding,
            CustomerDeposit,
            Issuance,
            OperatorVault,
            Wallet,
            OfflineFloat,
            Escrow,
            RedPacketPool,
            RedPacket,
        ]
        .into_iter()
        .find(|kind| *kind as u8 == value)
    }
}

/// No event: the end of an account's history chain.
pub const NO_EVENT: u64 = u64::MAX;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub kind: AccountKind,
    pub operator: OperatorId,
    pub balance: Amount,
    /// Held by pending two-phase transfers; not available to spend.
    pub pending_debits: Amount,
    /// The newest event touching this account; the head of its history chain.
    pub last_event: u64,
}

impl Account {
    pub fn available(&self) -> Amount {
        Amount::from_fen(self.balance.fen() - self.pending_debits.fen())
    }
}

/// Why money moved; carried in events so the analysis center can tell payments from conversions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TransferKind {
    ReserveFunding = 1,
    Issuance = 2,
    Redemption = 3,
    CashDeposit = 4,
    Exchange = 5,
    DepositBack = 6,
    Payment = 7,
    PendingHold = 8,
    PendingPost = 9,
    PendingVoid = 10,
    CloseWallet = 11,
    /// Online value into a secure element, or back.
    DeviceLoad = 12,
    DeviceUnload = 13,
    /// An offline payment between secure elements of two operators, settled at sync.
    OfflineSettlement = 14,
    /// An issuing operator covers what a cloned or rolled-back secure element overspent.
    OfflineLossCover = 15,
    /// An offline payment its payee never credited, given back to the payer's wallet.
    OfflineReversal = 16,
    /// A merchant gives back all or part of a payment, to the wallet that paid it.
    Refund = 17,
    /// A payer funds a contract's escrow.
    ContractFunding = 18,
    /// A contract releases delivered value to its payee.
    ContractRelease = 19,
    /// A contract gives what it still holds back to its payer.
    ContractRefund = 20,
    /// A scheduled or recurring payment a contract made on its due date.
    ScheduledPayment = 21,
    /// A sponsor funds a red-packet campaign's pool with its whole budget.
    CampaignFunding = 22,
    /// The draw moves one packet's value from the pool to a winner's packet.
    RedPacketGrant = 23,
    /// A packet pays (part of) a payment to an eligible merchant.
    RedPacketSpend = 24,
    /// A merchant refunds a packet's part of a payment: into the packet, or to the sponsor once
    /// the campaign has ended.
    RedPacketRefund = 25,
    /// What a packet still holds at the end of validity, back into the pool.
    RedPacketExpiry = 26,
    /// The pool, once the campaign has ended, back to the sponsor.
    CampaignReturn = 27,
}

impl TransferKind {
    /// Its name in the API, e.g. `payment`, `red_packet_spend`.
    pub fn as_str(self) -> &'static str {
        use TransferKind::*;
        match self {
            ReserveFunding => "reserve_funding",
            Issuance => "issuance",
            Redemption => "redemption",
            CashDeposit => "cash_deposit",
            Exchange => "exchange",
            DepositBack => "deposit_back",
            Payment => "payment",
            PendingHold => "pending_hold",
            PendingPost => "pending_post",
            PendingVoid => "pending_void",
            CloseWallet => "close_wallet",
            DeviceLoad => "device_load",
            DeviceUnload => "device_unload",
            OfflineSettlement => "offline_settlement",
            OfflineLossCover => "offline_loss_cover",
            OfflineReversal => "offline_reversal",
            Refund => "refund",
            ContractFunding => "contract_funding",
            ContractRelease => "contract_release",
            ContractRefund => "contract_refund",
            ScheduledPayment => "scheduled_payment",
            CampaignFunding => "campaign_funding",
            RedPacketGrant => "red_packet_grant",
            RedPacketSpend => "red_packet_spend",
            RedPacketRefund => "red_packet_refund",
            RedPacketExpiry => "red_packet_expiry",
            CampaignReturn => "campaign_return",
        }
    }

    pub fn from_u8(value: u8) -> Option<TransferKind> {
        use TransferKind::*;
        [
            ReserveFunding,
            Issuance,
            Redemption,
            CashDeposit,
            Exchange,
            DepositBack,
            Payment,
            PendingHold,
            PendingPost,
            PendingVoid,
            CloseWallet,
            DeviceLoad,
            DeviceUnload,
            OfflineSettlement,
            OfflineLossCover,
            OfflineReversal,
            Refund,
            ContractFunding,
            ContractRelease,
            ContractRefund,
            ScheduledPayment,
            CampaignFunding,
            RedPacketGrant,
            RedPacketSpend,
            RedPacketRefund,
            RedPacketExpiry,
            CampaignReturn,
        ]
        .into_iter()
        .find(|kind| *kind as u8 == value)
    }
}

/// One posted (or, for holds, pending) double-entry movement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub debit: AccountId,
    pub credit: AccountId,
    pub amount: Amount,
    pub kind: TransferKind,
    pub timestamp_ms: u64,
    /// Previous event of the debit account and of the credit account: the history chains.
    pub prev_debit: u64,
    pub prev_credit: u64,
}

/// Lifecycle changes that carry no money.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalletChange {
    Opened {
        operator: OperatorId,
        class: WalletClass,
    },
    ClassChanged {
        class: WalletClass,
    },
    StatusChanged {
        status: WalletStatus,
    },
    BankAccountBound {
        account: AccountId,
    },
}

/// The ordered stream of ledger events, in the order the state machine applied them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Transfer(Transfer),
    Wallet {
        wallet: WalletId,
        change: WalletChange,
        timestamp_ms: u64,
    },
    /// A secure element was registered, or blocked at sync.
    Device {
        device: DeviceId,
        change: DeviceChange,
        timestamp_ms: u64,
    },
}

/// Why the center blocked a secure element.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum BlockReason {
    /// Two different records signed with one counter: a cloned secure element.
    CounterReused = 1,
    /// More spent than was ever loaded or received: a rolled-back or cloned secure element.
    Overspent = 2,
    /// Its attested counters went back below what the center had already seen of it: a card
    /// restored from an older image of itself.
    RolledBack = 3,
    /// Its issuer blocked it on its holder's report: lost or stolen.
    ReportedByIssuer = 4,
}

impl BlockReason {
    pub fn from_u8(value: u8) -> Option<BlockReason> {
        [
            BlockReason::CounterReused,
            BlockReason::Overspent,
            BlockReason::RolledBack,
            BlockReason::ReportedByIssuer,
        ]
        .into_iter()
        .find(|r| *r as u8 == value)
    }

    pub fn code(self) -> &'static str {
        match self {
            BlockReason::CounterReused => "OFFLINE_COUNTER_REUSED",
            BlockReason::Overspent => "OFFLINE_OVERSPENT",
            BlockReason::RolledBack => "OFFLINE_ROLLED_BACK",
            BlockReason::ReportedByIssuer => "DEVICE_REPORTED",
        }
    }
}

/// Why a secure element was blocked, in words.
impl std::fmt::Display for BlockReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BlockReason::CounterReused => {
                "two different records signed with one counter: a cloned secure element"
            }
            BlockReason::Overspent => {
                "more spent than was ever loaded or received: a rolled-back or cloned secure element"
            }
            BlockReason::RolledBack => {
                "its attested counter is behind what the center already booked: a rolled-back secure element"
            }
            BlockReason::ReportedByIssuer => {
                "its issuer blocked it on its holder's report: lost or stolen"
            }
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChange {
    Registered {
        operator: OperatorId,
    },
    Blocked {
        reason: BlockReason,
    },
    /// A terminal took an offline payment stamped this many seconds after the center's time at
    /// its sync: its clock runs ahead, or was set ahead.
    ClockAhead {
        ahead_s: u32,
    },
}

/// A hold: money reserved on the debit account until posted, voided or expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    pub debit: AccountId,
    pub credit: AccountId,
    pub amount: Amount,
    pub expires_at_ms: u64,
}

/// One leg of a set of linked transfers.
#[derive(Clone, Copy, Debug)]
pub struct Leg {
    pub debit: AccountId,
    pub credit: AccountId,
    pub amount: Amount,
    pub kind: TransferKind,
}

#[derive(Default, Clone, Debug, PartialEq, Eq)]
pub struct Ledger {
    accounts: Vec<Account>,
    events: Vec<Event>,
    /// Open holds by the id of their hold event; BTreeMap keeps expiry scans deterministic.
    pending: BTreeMap<u64, Pending>,
    /// The same holds by (expiry, id): what times out next is the first, not a scan of all.
    pending_by_expiry: BTreeSet<(u64, u64)>,
}

impl Ledger {
    pub fn open_account(&mut self, kind: AccountKind, operator: OperatorId) -> AccountId {
        let id = AccountId(u32::try_from(self.accounts.len()).expect("account ids fit in u32"));
        self.accounts.push(Account {
            kind,
            operator,
            balance: Amount::ZERO,
            pending_debits: Amount::ZERO,
            last_event: NO_EVENT,
        });
        id
    }

    pub fn account(&self, id: AccountId) -> Result<&Account, CommandError> {
        self.accounts
            .get(id.index())
            .ok_or(CommandError::UnknownAccount(id))
    }

    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The stream from `cursor` on: how the analysis center and other consumers follow the ledger.
    pub fn events_from(&self, cursor: EventId) -> &[Event] {
        self.events.get(cursor.0 as usize..).unwrap_or(&[])
    }

    /// Overwrites a balance without an event: only for tests that prove the audit catches it.
    #[cfg(test)]
    pub(crate) fn corrupt_balance_for_test(&mut self, id: AccountId, balance: Amount) {
        self.accounts[id.index()].balance = balance;
    }

    /// An account to damage without an event: only for tests that prove the audit catches it.
    #[cfg(test)]
    pub(crate) fn account_mut_for_test(&mut self, id: AccountId) -> &mut Account {
        &mut self.accounts[id.index()]
    }

    pub fn event(&self, id: EventId) -> Option<&Event> {
        self.events.get(id.0 as usize)
    }

    pub fn pending(&self) -> &BTreeMap<u64, Pending> {
        &self.pending
    }

    pub fn next_event_id(&self) -> EventId {
        EventId(self.events.len() as u64)
    }

    pub fn push_device_event(&mut self, device: DeviceId, change: DeviceChange, timestamp_ms: u64) {
        self.events.push(Event::Device {
            device,
            change,
            timestamp_ms,
        });
    }

    pub fn push_wallet_event(&mut self, wallet: WalletId, change: WalletChange, timestamp_ms: u64) {
        self.events.push(Event::Wallet {
            wallet,
            change,
            timestamp_ms,
        });
    }

    /// Checks one leg against the current balances without moving anything.
    pub fn check(&self, leg: &Leg) -> Result<(), CommandError> {
        if !leg.amount.is_positive() {
            return Err(CommandError::AmountNotPositive(leg.amount));
        }
        let debit = self.account(leg.debit)?;
        let credit = self.account(leg.credit)?;
        if debit.kind.ledger() != credit.kind.ledger() {
            return Err(CommandError::LedgerMismatch);
        }
        if !debit.kind.may_go_negative() && debit.available() < leg.amount {
            return Err(CommandError::InsufficientFunds {
                available: debit.available(),
                needed: leg.amount,
            });
        }
        credit
            .balance
            .checked_add(leg.amount)
            .ok_or(CommandError::Overflow)?;
        debit
            .balance
            .checked_sub(leg.amount)
            .ok_or(CommandError::Overflow)?;
        Ok(())
    }

    /// Moves money after `check` passed. Returns the transfer's event id.
    fn post(&mut self, leg: &Leg, timestamp_ms: u64) -> EventId {
        let id = self.next_event_id();
        let prev_debit = self.accounts[leg.debit.index()].last_event;
        let prev_credit = self.accounts[leg.credit.index()].last_event;
        let before = self.leg_net(leg);
        let debit = &mut self.accounts[leg.debit.index()];
        debit.balance = Amount::from_fen(debit.balance.fen() - leg.amount.fen());
        debit.last_event = id.0;
        debug_assert!(debit.kind.may_go_negative() || debit.available().fen() >= 0);
        let credit = &mut self.accounts[leg.credit.index()];
        credit.balance = Amount::from_fen(credit.balance.fen() + leg.amount.fen());
        credit.last_event = id.0;
        self.assert_nets_to_zero(leg, before);
        self.events.push(Event::Transfer(Transfer {
            debit: leg.debit,
            credit: leg.credit,
            amount: leg.amount,
            kind: leg.kind,
            timestamp_ms,
            prev_debit,
            prev_credit,
        }));
        id
    }

    /// One double-entry transfer.
    pub fn transfer(&mut self, leg: Leg, timestamp_ms: u64) -> Result<EventId, CommandError> {
        self.check(&leg)?;
        Ok(self.post(&leg, timestamp_ms))
    }

    /// Transfers that happen together or not at all (a conversion between ledgers). Returns the
    /// id of the first.
    pub fn transfer_linked(
        &mut self,
        legs: &[Leg],
        timestamp_ms: u64,
    ) -> Result<EventId, CommandError> {
        let first = self.next_event_id();
        for (done, leg) in legs.iter().enumerate() {
            if let Err(error) = self.check(leg) {
                self.undo_last_transfers(done);
                return Err(error);
            }
            self.post(leg, timestamp_ms);
        }
        Ok(first)
    }

    /// Reverses the newest `count` transfers exactly, as if they never happened.
    fn undo_last_transfers(&mut self, count: usize) {
        for _ in 0..count {
            let Some(Event::Transfer(transfer)) = self.events.pop() else {
                panic!("undo reached a non-transfer event: linked transfers corrupted");
            };
            let leg = Leg {
                debit: transfer.debit,
                credit: transfer.credit,
                amount: transfer.amount,
                kind: transfer.kind,
            };
            let before = self.leg_net(&leg);
            let debit = &mut self.accounts[transfer.debit.index()];
            debit.balance = Amount::from_fen(debit.balance.fen() + transfer.amount.fen());
            debit.last_event = transfer.prev_debit;
            let credit = &mut self.accounts[transfer.credit.index()];
            credit.balance = Amount::from_fen(credit.balance.fen() - transfer.amount.fen());
            credit.last_event = transfer.prev_credit;
            self.assert_nets_to_zero(&leg, before);
        }
    }

    /// The sum of a leg's two balances (one, if both sides are the same account).
    fn leg_net(&self, leg: &Leg) -> i128 {
        let balance = |id: AccountId| i128::from(self.accounts[id.index()].balance.fen());
        if leg.debit == leg.credit {
            balance(leg.debit)
        } else {
            balance(leg.debit) + balance(leg.credit)
        }
    }

    /// Double entry, asserted after every posting as the applet asserts its own: both sides are
    /// in one ledger and what one lost the other gained, so each ledger still nets to zero
    /// (`ledger_sums`) without summing every account.
    fn assert_nets_to_zero(&self, leg: &Leg, before: i128) {
        let (debit, credit) = (
            &self.accounts[leg.debit.index()],
            &self.accounts[leg.credit.index()],
        );
        assert_eq!(
            debit.kind.ledger(),
            credit.kind.ledger(),
            "a transfer crossed ledgers: {leg:?}"
        );
        assert_eq!(
            self.leg_net(leg),
            before,
            "a transfer created or destroyed money: {leg:?}"
        );
    }

    /// Two-phase transfer, phase one: holds the amount on the debit account.
    pub fn hold(
        &mut self,
        leg: Leg,
        expires_at_ms: u64,
        timestamp_ms: u64,
    ) -> Result<EventId, CommandError> {
        self.check(&leg)?;
        let id = self.next_event_id();
        let prev_debit = self.accounts[leg.debit.index()].last_event;
        let prev_credit = self.accounts[leg.credit.index()].last_event;
        let debit = &mut self.accounts[leg.debit.index()];
        debit.pending_debits = Amount::from_fen(debit.pending_debits.fen() + leg.amount.fen());
        debit.last_event = id.0;
        self.accounts[leg.credit.index()].last_event = id.0;
        self.events.push(Event::Transfer(Transfer {
            debit: leg.debit,
            credit: leg.credit,
            amount: leg.amount,
            kind: TransferKind::PendingHold,
            timestamp_ms,
            prev_debit,
            prev_credit,
        }));
        let pending = Pending {
            debit: leg.debit,
            credit: leg.credit,
            amount: leg.amount,
            expires_at_ms,
        };
        self.pending_by_expiry.insert((expires_at_ms, id.0));
        self.pending.insert(id.0, pending);
        Ok(id)
    }

    /// Phase two: posts (moves the held money) or voids (releases it).
    pub fn resolve(
        &mut self,
        hold: EventId,
        post: bool,
        timestamp_ms: u64,
    ) -> Result<EventId, CommandError> {
        let pending = self.take_pending(hold)?;
        let debit = &mut self.accounts[pending.debit.index()];
        debit.pending_debits = Amount::from_fen(debit.pending_debits.fen() - pending.amount.fen());
        let kind = if post {
            TransferKind::PendingPost
        } else {
            TransferKind::PendingVoid
        };
        if post {
            let leg = Leg {
                debit: pending.debit,
                credit: pending.credit,
                amount: pending.amount,
                kind,
            };
            return Ok(self.post(&leg, timestamp_ms));
        }
        // A void records a zero-effect event so that the hold's end is in the stream and history.
        let id = self.next_event_id();
        let prev_debit = self.accounts[pending.debit.index()].last_event;
        let prev_credit = self.accounts[pending.credit.index()].last_event;
        self.accounts[pending.debit.index()].last_event = id.0;
        self.accounts[pending.credit.index()].last_event = id.0;
        self.events.push(Event::Transfer(Transfer {
            debit: pending.debit,
            credit: pending.credit,
            amount: pending.amount,
            kind,
            timestamp_ms,
            prev_debit,
            prev_credit,
        }));
        Ok(id)
    }

    fn take_pending(&mut self, hold: EventId) -> Result<Pending, CommandError> {
        if let Some(pending) = self.pending.remove(&hold.0) {
            self.pending_by_expiry
                .remove(&(pending.expires_at_ms, hold.0));
            return Ok(pending);
        }
        match self.event(hold) {
            Some(Event::Transfer(t)) if t.kind == TransferKind::PendingHold => {
                Err(CommandError::PendingAlreadyResolved(hold))
            }
            Some(_) => Err(CommandError::NotPending(hold)),
            None => Err(CommandError::PendingNotFound(hold)),
        }
    }

    /// Voids every hold whose timeout has passed, in the order they were placed. Called before
    /// each batch with the batch's time.
    pub fn expire_pending(&mut self, now_ms: u64) -> usize {
        let mut expired: Vec<u64> = self
            .pending_by_expiry
            .iter()
            .take_while(|(expires_at_ms, _)| *expires_at_ms <= now_ms)
            .map(|(_, id)| *id)
            .collect();
        expired.sort_unstable();
        for id in &expired {
            self.resolve(EventId(*id), false, now_ms)
                .expect("expired hold is open");
        }
        expired.len()
    }

    /// When the next open hold times out, if any is open.
    pub fn next_pending_expiry_ms(&self) -> Option<u64> {
        self.pending_by_expiry
            .first()
            .map(|(expires_at_ms, _)| *expires_at_ms)
    }

    /// The account's events, newest first.
    pub fn history(&self, account: AccountId) -> Result<AccountHistory<'_>, CommandError> {
        let next = self.account(account)?.last_event;
        Ok(AccountHistory {
            ledger: self,
            account,
            next,
        })
    }

    /// The account's transfers older than `after`, newest first: the next page of a history read
    /// with a cursor. `None` when `after` is not one of the account's own transfers.
    pub fn history_after(&self, account: AccountId, after: EventId) -> Option<AccountHistory<'_>> {
        self.account(account).ok()?;
        let Event::Transfer(transfer) = self.events.get(after.0 as usize)? else {
            return None;
        };
        let next = if transfer.debit == account {
            transfer.prev_debit
        } else if transfer.credit == account {
            transfer.prev_credit
        } else {
            return None;
        };
        Some(AccountHistory {
            ledger: self,
            account,
            next,
        })
    }

    /// Sum of balances per ledger; double entry makes each exactly zero.
    pub fn ledger_sums(&self) -> [(LedgerKind, i128); 3] {
        let mut sums = [0i128; 3];
        for account in &self.accounts {
            sums[account.kind.ledger() as usize - 1] += account.balance.fen() as i128;
        }
        [
            (LedgerKind::Reserves, sums[0]),
            (LedgerKind::Deposits, sums[1]),
            (LedgerKind::Ecny, sums[2]),
        ]
    }
}

pub struct AccountHistory<'a> {
    ledger: &'a Ledger,
    account: AccountId,
    next: u64,
}

impl<'a> Iterator for AccountHistory<'a> {
    type Item = (EventId, &'a Transfer);

    fn next(&mut self) -> Option<Self::Item> {
        if self.next == NO_EVENT {
            return None;
        }
        let id = EventId(self.next);
        let Event::Transfer(transfer) = &self.ledger.events[self.next as usize] else {
            panic!("account history chain points at a non-transfer event");
        };
        self.next = if transfer.debit == self.account {
            transfer.prev_debit
        } else {
            transfer.prev_credit
        };
        Some((id, transfer))
    }
}

pub(crate) mod snapshot {
    //! The ledger's part of a state snapshot.
    use super::*;
    use crate::codec::{DecodeError, Reader, Writer};
    use crate::wallet::{WalletClass, WalletStatus};

    /// The shortest encoded event: a tag and a timestamp.
    const EVENT_ENCODED_BYTES_MIN: usize = 1 + 8;

    pub fn encode(ledger: &Ledger, out: &mut Writer) {
        out.u64(ledger.accounts.len() as u64);
        for a in &ledger.accounts {
            out.u8(a.kind as u8).u16(a.operator.0).i64(a.balance.fen());
            out.i64(a.pending_debits.fen()).u64(a.last_event);
        }
        out.u64(ledger.events.len() as u64);
        for event in &ledger.events {
            encode_event(event, out);
        }
        out.u64(ledger.pending.len() as u64);
        for (id, p) in &ledger.pending {
            out.u64(*id)
                .u32(p.debit.0)
                .u32(p.credit.0)
                .i64(p.amount.fen())
                .u64(p.expires_at_ms);
        }
    }

    fn encode_event(event: &Event, out: &mut Writer) {
        match event {
            Event::Transfer(t) => {
                out.u8(0)
                    .u32(t.debit.0)
                    .u32(t.credit.0)
                    .i64(t.amount.fen())
                    .u8(t.kind as u8);
                out.u64(t.timestamp_ms).u64(t.prev_debit).u64(t.prev_credit);
            }
            Event::Wallet {
                wallet,
                change,
                timestamp_ms,
            } => {
                out.u8(1).u32(wallet.0).u64(*timestamp_ms);
                match change {
                    WalletChange::Opened { operator, class } => {
                        out.u8(0).u16(operator.0).u8(*class as u8)
                    }
                    WalletChange::ClassChanged { class } => out.u8(1).u8(*class as u8),
                    WalletChange::StatusChanged { status } => out.u8(2).u8(*status as u8),
                    WalletChange::BankAccountBound { account } => out.u8(3).u32(account.0),
                };
            }
            Event::Device {
                device,
                change,
                timestamp_ms,
            } => {
                out.u8(2).u64(device.0).u64(*timestamp_ms);
                match change {
                    DeviceChange::Registered { operator } => out.u8(0).u16(operator.0),
                    DeviceChange::Blocked { reason } => out.u8(1).u8(*reason as u8),
                    DeviceChange::ClockAhead { ahead_s } => out.u8(2).u32(*ahead_s),
                };
            }
        }
    }

    pub fn decode(input: &mut Reader<'_>) -> Result<Ledger, DecodeError> {
        let mut ledger = Ledger::default();
        let count = input.u64("account count")?;
        for _ in 0..count {
            let kind = AccountKind::from_u8(input.u8("account kind")?).ok_or(DecodeError {
                what: "account kind",
                offset: input.offset(),
            })?;
            ledger.accounts.push(Account {
                kind,
                operator: OperatorId(input.u16("account operator")?),
                balance: Amount::from_fen(input.i64("balance")?),
                pending_debits: Amount::from_fen(input.i64("pending debits")?),
                last_event: input.u64("last event")?,
            });
        }
        let count = input.u64("event count")?;
        // Every event takes at least its tag and its time: reserve no more than the bytes left
        // could hold, whatever a damaged count says.
        let fit = input.remaining() / EVENT_ENCODED_BYTES_MIN;
        ledger
            .events
            .reserve(usize::try_from(count).map_or(fit, |count| count.min(fit)));
        for _ in 0..count {
            ledger.events.push(decode_event(input)?);
        }
        let count = input.u64("pending count")?;
        for _ in 0..count {
            let id = input.u64("pending id")?;
            let pending = Pending {
                debit: AccountId(input.u32("pending debit")?),
                credit: AccountId(input.u32("pending credit")?),
                amount: Amount::from_fen(input.i64("pending amount")?),
                expires_at_ms: input.u64("pending expiry")?,
            };
            ledger.pending_by_expiry.insert((pending.expires_at_ms, id));
            ledger.pending.insert(id, pending);
        }
        Ok(ledger)
    }

    fn decode_event(input: &mut Reader<'_>) -> Result<Event, DecodeError> {
        let bad = |what, input: &Reader<'_>| DecodeError {
            what,
            offset: input.offset(),
        };
        match input.u8("event tag")? {
            0 => Ok(Event::Transfer(Transfer {
                debit: AccountId(input.u32("debit")?),
                credit: AccountId(input.u32("credit")?),
                amount: Amount::from_fen(input.i64("amount")?),
                kind: TransferKind::from_u8(input.u8("transfer kind")?)
                    .ok_or_else(|| bad("transfer kind", input))?,
                timestamp_ms: input.u64("timestamp")?,
                prev_debit: input.u64("prev debit")?,
                prev_credit: input.u64("prev credit")?,
            })),
            1 => {
                let wallet = WalletId(input.u32("wallet")?);
                let timestamp_ms = input.u64("timestamp")?;
                let change = match input.u8("wallet change")? {
                    0 => WalletChange::Opened {
                        operator: OperatorId(input.u16("operator")?),
                        class: WalletClass::from_u8(input.u8("class")?)
                            .ok_or_else(|| bad("class", input))?,
                    },
                    1 => WalletChange::ClassChanged {
                        class: WalletClass::from_u8(input.u8("class")?)
                            .ok_or_else(|| bad("class", input))?,
                    },
                    2 => WalletChange::StatusChanged {
                        status: WalletStatus::from_u8(input.u8("status")?)
                            .ok_or_else(|| bad("status", input))?,
                    },
                    3 => WalletChange::BankAccountBound {
                        account: AccountId(input.u32("account")?),
                    },
                    _ => return Err(bad("wallet change", input)),
                };
                Ok(Event::Wallet {
                    wallet,
                    change,
                    timestamp_ms,
                })
            }
            2 => {
                let device = DeviceId(input.u64("device")?);
                let timestamp_ms = input.u64("timestamp")?;
                let change = match input.u8("device change")? {
                    0 => DeviceChange::Registered {
                        operator: OperatorId(input.u16("operator")?),
                    },
                    1 => DeviceChange::Blocked {
                        reason: BlockReason::from_u8(input.u8("block reason")?)
                            .ok_or_else(|| bad("block reason", input))?,
                    },
                    2 => DeviceChange::ClockAhead {
                        ahead_s: input.u32("clock ahead")?,
                    },
                    _ => return Err(bad("device change", input)),
                };
                Ok(Event::Device {
                    device,
                    change,
                    timestamp_ms,
                })
            }
            _ => Err(bad("event tag", input)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OP: OperatorId = OperatorId(1);

    fn leg(debit: AccountId, credit: AccountId, fen: i64) -> Leg {
        Leg {
            debit,
            credit,
            amount: Amount::from_fen(fen),
            kind: TransferKind::Payment,
        }
    }

    #[test]
    #[should_panic(expected = "a transfer crossed ledgers")]
    fn a_posting_across_ledgers_is_caught_even_past_the_check() {
        let mut ledger = Ledger::default();
        let bank = ledger.open_account(AccountKind::BankFunding, OP);
        let wallet = ledger.open_account(AccountKind::Wallet, OP);
        // `post` trusts that `check` ran; its own assertion still stops money crossing ledgers.
        ledger.post(&leg(bank, wallet, 1), 0);
    }

    fn funded_pair(ledger: &mut Ledger, fen: i64) -> (AccountId, AccountId, AccountId) {
        let source = ledger.open_account(AccountKind::Issuance, OP);
        let a = ledger.open_account(AccountKind::Wallet, OP);
        let b = ledger.open_account(AccountKind::Wallet, OP);
        ledger.transfer(leg(source, a, fen), 1).unwrap();
        (source, a, b)
    }

    #[test]
    fn a_transfer_debits_one_account_and_credits_the_other() {
        let mut ledger = Ledger::default();
        let (source, a, b) = funded_pair(&mut ledger, 10_000);
        ledger.transfer(leg(a, b, 6660), 2).unwrap();
        assert_eq!(ledger.account(a).unwrap().balance, Amount::from_fen(3340));
        assert_eq!(ledger.account(b).unwrap().balance, Amount::from_fen(6660));
        assert_eq!(
            ledger.account(source).unwrap().balance,
            Amount::from_fen(-10_000)
        );
        assert!(ledger.ledger_sums().iter().all(|(_, sum)| *sum == 0));
    }

    #[test]
    fn overdraft_is_refused_and_nothing_moves() {
        let mut ledger = Ledger::default();
        let (_, a, b) = funded_pair(&mut ledger, 100);
        let before = ledger.clone();
        let error = ledger.transfer(leg(a, b, 101), 2).unwrap_err();
        assert_eq!(error.code(), "INSUFFICIENT_FUNDS");
        assert_eq!(ledger, before);
        assert_eq!(
            ledger.transfer(leg(a, b, 0), 2).unwrap_err().code(),
            "AMOUNT_NOT_POSITIVE"
        );
        assert_eq!(
            ledger
                .transfer(leg(a, AccountId(99), 1), 2)
                .unwrap_err()
                .code(),
            "UNKNOWN_ACCOUNT"
        );
    }

    #[test]
    fn ledgers_never_mix_and_linked_transfers_are_all_or_nothing() {
        let mut ledger = Ledger::default();
        let (_, wallet, _) = funded_pair(&mut ledger, 500);
        let bank = ledger.open_account(AccountKind::BankFunding, OP);
        let deposit = ledger.open_account(AccountKind::CustomerDeposit, OP);
        assert_eq!(
            ledger
                .transfer(leg(wallet, deposit, 1), 2)
                .unwrap_err()
                .code(),
            "LEDGER_MISMATCH"
        );
        ledger.transfer(leg(bank, deposit, 300), 2).unwrap();
        let before = ledger.clone();
        // Second leg fails: the first must be undone exactly.
        let legs = [leg(deposit, bank, 100), leg(wallet, AccountId(1), 10_000)];
        assert_eq!(
            ledger.transfer_linked(&legs, 3).unwrap_err().code(),
            "INSUFFICIENT_FUNDS"
        );
        assert_eq!(ledger, before);
        let legs = [leg(deposit, bank, 100), leg(wallet, AccountId(2), 100)];
        ledger.transfer_linked(&legs, 3).unwrap();
        assert_eq!(
            ledger.account(deposit).unwrap().balance,
            Amount::from_fen(200)
        );
    }

    #[test]
    fn a_hold_reserves_money_until_posted_voided_or_expired() {
        let mut ledger = Ledger::default();
        let (_, a, b) = funded_pair(&mut ledger, 1000);
        let hold = ledger.hold(leg(a, b, 700), 100, 10).unwrap();
        assert_eq!(
            ledger.account(a).unwrap().available(),
            Amount::from_fen(300)
        );
        assert_eq!(
            ledger.transfer(leg(a, b, 301), 11).unwrap_err().code(),
            "INSUFFICIENT_FUNDS"
        );
        ledger.resolve(hold, true, 12).unwrap();
        assert_eq!(ledger.account(b).unwrap().balance, Amount::from_fen(700));
        assert_eq!(
            ledger.resolve(hold, true, 13).unwrap_err().code(),
            "PENDING_ALREADY_RESOLVED"
        );
        assert_eq!(
            ledger.resolve(EventId(999), true, 13).unwrap_err().code(),
            "PENDING_NOT_FOUND"
        );
        assert_eq!(
            ledger.resolve(EventId(0), true, 13).unwrap_err().code(),
            "NOT_PENDING"
        );

        assert_eq!(ledger.next_pending_expiry_ms(), None);
        let hold = ledger.hold(leg(a, b, 300), 50, 20).unwrap();
        assert_eq!(ledger.next_pending_expiry_ms(), Some(50));
        assert_eq!(ledger.expire_pending(49), 0);
        assert_eq!(ledger.expire_pending(50), 1);
        assert_eq!(ledger.next_pending_expiry_ms(), None);
        assert_eq!(
            ledger.account(a).unwrap().available(),
            Amount::from_fen(300)
        );
        assert_eq!(
            ledger.resolve(hold, true, 51).unwrap_err().code(),
            "PENDING_ALREADY_RESOLVED"
        );
    }

    #[test]
    fn history_lists_an_accounts_events_newest_first() {
        let mut ledger = Ledger::default();
        let (_, a, b) = funded_pair(&mut ledger, 1000);
        ledger.transfer(leg(a, b, 5), 2).unwrap();
        ledger.transfer(leg(b, a, 2), 3).unwrap();
        let amounts: Vec<i64> = ledger
            .history(a)
            .unwrap()
            .map(|(_, t)| t.amount.fen())
            .collect();
        assert_eq!(amounts, vec![2, 5, 1000]);
        let times: Vec<u64> = ledger
            .history(b)
            .unwrap()
            .map(|(_, t)| t.timestamp_ms)
            .collect();
        assert_eq!(times, vec![3, 2]);
    }

    #[test]
    fn a_snapshot_claiming_more_events_than_it_holds_is_refused() {
        let mut out = crate::codec::Writer::new();
        out.u64(0).u64(u64::MAX).u64(0);
        assert!(snapshot::decode(&mut crate::codec::Reader::new(&out.bytes)).is_err());
    }

    #[test]
    fn snapshot_round_trips() {
        let mut ledger = Ledger::default();
        let (_, a, b) = funded_pair(&mut ledger, 1000);
        ledger.hold(leg(a, b, 10), 99, 3).unwrap();
        ledger.push_wallet_event(
            WalletId(1),
            WalletChange::ClassChanged {
                class: WalletClass::Three,
            },
            4,
        );
        let mut out = crate::codec::Writer::new();
        snapshot::encode(&ledger, &mut out);
        let decoded = snapshot::decode(&mut crate::codec::Reader::new(&out.bytes)).unwrap();
        assert_eq!(decoded, ledger);
    }
}
