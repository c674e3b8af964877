//! The analysis center: AML rules, alerts, statistics and statements over the ledger's ordered
//! event stream. It follows the stream with a cursor, so it can keep up with a live node, and it
//! knows parties only by pseudonymous ids: wallets, merchants (with their category and region),
//! operators and secure elements. Names, phones and ID numbers stay at the wallets' operators; a
//! wallet is linked to a person only by its operator's de-anonymization procedure.
//!
//! [`Directory`] is that pseudonymous view of the state; [`classify`] turns a ledger event into a
//! [`Movement`] (who paid whom, how, how much); [`AnalysisCenter`] feeds movements to the
//! [`rules`], the [`alerts`] book and the [`statistics`]. [`statement`] writes camt.053 account
//! statements. It only reads events: the synthetic city that makes them is `crate::city`.

pub mod alerts;
pub mod csv;
pub mod index;
pub mod live;
pub mod rules;
pub mod statement;
pub mod statistics;

use std::collections::{BTreeMap, HashMap, VecDeque};

use foldhash::fast::RandomState;

use crate::amount::Amount;
use crate::channels::acquiring::PaymentChannel;
use crate::channels::emvco::Mcc;
use crate::ids::{AccountId, DeviceId, EventId, MerchantId, OperatorId, WalletId};
use crate::ledger::{AccountKind, BlockReason, DeviceChange, Event, Transfer, TransferKind};
use crate::state_machine::StateMachine;

use alerts::AlertBook;
use rules::{RuleConfig, RuleEngine};
use statistics::Statistics;

/// No wallet: the value of an account slot in [`Directory`] that is not a wallet's.
const NOT_A_WALLET: u32 = 0;

/// A merchant as the analysis center knows it: no name, only what the statistics count by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MerchantProfile {
    pub id: MerchantId,
    pub operator: OperatorId,
    pub wallet: WalletId,
    pub mcc: Mcc,
    /// GB/T 2260 administrative division code.
    pub region: u32,
}

/// A secure element as the analysis center knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceProfile {
    pub operator: OperatorId,
    pub wallet: Option<WalletId>,
}

/// The pseudonymous view of the state the analysis center works from: which ledger account is
/// which wallet's, which operator runs it, which wallets settle merchants, which transfers paid a
/// merchant and by which channel, which wallet a secure element belongs to. Refreshed
/// incrementally, so following a live node costs only what is new.
#[derive(Clone, Debug, Default)]
pub struct Directory {
    /// Wallet id (as u32) of each ledger account, `NOT_A_WALLET` for other accounts.
    wallet_of_account: Vec<u32>,
    account_kinds: Vec<(AccountKind, OperatorId)>,
    wallet_accounts: Vec<AccountId>,
    wallet_operators: Vec<OperatorId>,
    merchants: Vec<MerchantProfile>,
    merchant_of_wallet: HashMap<WalletId, MerchantId, RandomState>,
    merchant_payments: HashMap<EventId, (MerchantId, PaymentChannel), RandomState>,
    merchant_payments_seen: usize,
    devices: BTreeMap<DeviceId, DeviceProfile>,
}

impl Directory {
    pub fn from_state(state: &StateMachine) -> Directory {
        let mut directory = Directory::default();
        directory.refresh(state);
        directory
    }

    /// Takes in what the state gained since the last refresh.
    pub fn refresh(&mut self, state: &StateMachine) {
        for account in &state.ledger().accounts()[self.account_kinds.len()..] {
            self.account_kinds.push((account.kind, account.operator));
            self.wallet_of_account.push(NOT_A_WALLET);
        }
        for (index, wallet) in state
            .wallets()
            .iter()
            .enumerate()
            .skip(self.wallet_accounts.len())
        {
            let id = StateMachine::wallet_id_at(index);
            self.wallet_of_account[wallet.account.index()] = id.0;
            self.wallet_accounts.push(wallet.account);
            self.wallet_operators.push(wallet.operator);
        }
        for merchant in &state.acquiring().merchants()[self.merchants.len()..] {
            self.merchant_of_wallet.insert(merchant.wallet, merchant.id);
            self.merchants.push(MerchantProfile {
                id: merchant.id,
                operator: merchant.operator,
                wallet: merchant.wallet,
                mcc: merchant.mcc,
                region: merchant.region,
            });
        }
        let payments = state.acquiring().all_payments();
        for payment in &payments[self.merchant_payments_seen..] {
            self.merchant_payments
                .insert(payment.transfer, (payment.merchant, payment.channel));
        }
        self.merchant_payments_seen = payments.len();
        for (id, device) in state.devices().devices() {
            self.devices.entry(*id).or_insert(DeviceProfile {
                operator: device.operator,
                wallet: device.wallet,
            });
        }
    }

    /// A directory that knows only merchants: what a statement's entries are described with.
    pub fn of_merchants(merchants: Vec<MerchantProfile>) -> Directory {
        Directory {
            merchant_of_wallet: merchants.iter().map(|m| (m.wallet, m.id)).collect(),
            merchants,
            ..Directory::default()
        }
    }

    pub fn wallet_of(&self, account: AccountId) -> Option<WalletId> {
        match self.wallet_of_account.get(account.index()) {
            Some(&id) if id != NOT_A_WALLET => Some(WalletId(id)),
            _ => None,
        }
    }

    pub fn account_of(&self, wallet: WalletId) -> Option<AccountId> {
        (wallet.0 as usize)
            .checked_sub(1)
            .and_then(|i| self.wallet_accounts.get(i))
            .copied()
    }

    pub fn wallet_operator(&self, wallet: WalletId) -> Option<OperatorId> {
        (wallet.0 as usize)
            .checked_sub(1)
            .and_then(|i| self.wallet_operators.get(i))
            .copied()
    }

    pub fn wallet_count(&self) -> usize {
        self.wallet_accounts.len()
    }

    pub fn merchants(&self) -> &[MerchantProfile] {
        &self.merchants
    }

    pub fn merchant(&self, id: MerchantId) -> Option<&MerchantProfile> {
        id.index()
            .checked_sub(1)
            .and_then(|i| self.merchants.get(i))
    }

    /// The merchant a wallet settles, if it is a merchant's wallet.
    pub fn merchant_of_wallet(&self, wallet: WalletId) -> Option<MerchantId> {
        self.merchant_of_wallet.get(&wallet).copied()
    }

    pub fn device(&self, id: DeviceId) -> Option<&DeviceProfile> {
        self.devices.get(&id)
    }

    fn account(&self, id: AccountId) -> Option<(AccountKind, OperatorId)> {
        self.account_kinds.get(id.index()).copied()
    }
}

/// How money moved, as the rules and statistics tell movements apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flow {
    /// One wallet paid another that is not paid as a merchant.
    PersonToPerson,
    /// A payment to a merchant, on the channel the acquiring book recorded.
    Merchant {
        merchant: MerchantId,
        channel: PaymentChannel,
    },
    /// A merchant gave money back along a payment.
    Refund,
    /// An offline payment between two operators' secure elements, settled at sync.
    OfflineSettlement,
    /// Bank deposits exchanged into a wallet.
    Exchange,
    /// A wallet's e-CNY deposited back into its bank account (or paid out on closing).
    DepositBack,
    /// Into or out of a secure element.
    DeviceLoad,
    DeviceUnload,
    /// An uncredited offline payment given back to its payer.
    OfflineReversal,
    /// An issuer covering a cloned or rolled-back secure element's overspend.
    OfflineLossCover,
    /// A scheduled or recurring payment a contract made (wages, tax, premiums).
    Scheduled,
    /// A contract released held value to its payee (an escrow confirmed, lessons given).
    ContractRelease,
    /// A red packet spent at an eligible merchant.
    RedPacket,
    /// Issuance, redemption, reserves, holds, money into and back out of programs' escrows and
    /// pools: the operators', sponsors' and central bank's business.
    Other,
}

impl Flow {
    /// A payment between parties: what "transactions" counts in the statistics.
    pub fn is_payment(self) -> bool {
        matches!(
            self,
            Flow::PersonToPerson
                | Flow::Merchant { .. }
                | Flow::OfflineSettlement
                | Flow::Scheduled
                | Flow::ContractRelease
                | Flow::RedPacket
        )
    }
}

/// One ledger transfer as the analysis center reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Movement {
    pub event: EventId,
    pub at_ms: u64,
    pub amount: Amount,
    /// The wallet debited, if a wallet was.
    pub payer: Option<WalletId>,
    /// The wallet credited, if a wallet was.
    pub payee: Option<WalletId>,
    /// The operator of the debited account: the payer's operator for a payment.
    pub operator: OperatorId,
    pub flow: Flow,
}

/// Reads one transfer. Holds and voids move nothing and read as `Flow::Other`.
pub fn classify(event: EventId, transfer: &Transfer, directory: &Directory) -> Movement {
    let payer = directory.wallet_of(transfer.debit);
    let payee = directory.wallet_of(transfer.credit);
    let operator = directory
        .account(transfer.debit)
        .map_or(OperatorId(0), |(_, op)| op);
    let flow = match transfer.kind {
        TransferKind::Payment | TransferKind::PendingPost if payer.is_some() && payee.is_some() => {
            match directory.merchant_payments.get(&event) {
                Some(&(merchant, channel)) => Flow::Merchant { merchant, channel },
                None => Flow::PersonToPerson,
            }
        }
        TransferKind::Refund => Flow::Refund,
        TransferKind::OfflineSettlement => Flow::OfflineSettlement,
        TransferKind::Exchange if payee.is_some() => Flow::Exchange,
        TransferKind::DepositBack | TransferKind::CloseWallet if payer.is_some() => {
            Flow::DepositBack
        }
        TransferKind::DeviceLoad => Flow::DeviceLoad,
        TransferKind::DeviceUnload => Flow::DeviceUnload,
        TransferKind::OfflineReversal => Flow::OfflineReversal,
        TransferKind::OfflineLossCover => Flow::OfflineLossCover,
        TransferKind::ScheduledPayment => Flow::Scheduled,
        TransferKind::ContractRelease => Flow::ContractRelease,
        TransferKind::RedPacketSpend => Flow::RedPacket,
        _ => Flow::Other,
    };
    Movement {
        event,
        at_ms: transfer.timestamp_ms,
        amount: transfer.amount,
        payer,
        payee,
        operator,
        flow,
    }
}

/// A secure element the registration center blocked at sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceBlocked {
    pub event: EventId,
    pub at_ms: u64,
    pub device: DeviceId,
    pub wallet: Option<WalletId>,
    pub operator: Option<OperatorId>,
    pub reason: BlockReason,
}

/// The analysis center: a cursor into the ledger's stream, the directory, the rules, the alerts
/// they raised and the statistics, all kept up to date by [`AnalysisCenter::follow`].
pub struct AnalysisCenter {
    cursor: EventId,
    directory: Directory,
    rules: RuleEngine,
    alerts: AlertBook,
    statistics: Statistics,
    /// The latest issuers' loss covers, to tie to the block they belong to.
    loss_covers: VecDeque<Movement>,
}

/// Loss covers remembered for a block that follows them in the same sync.
const LOSS_COVERS_KEPT: usize = 16;

impl AnalysisCenter {
    pub fn new(config: RuleConfig) -> AnalysisCenter {
        AnalysisCenter {
            cursor: EventId(0),
            directory: Directory::default(),
            rules: RuleEngine::new(config),
            alerts: AlertBook::default(),
            statistics: Statistics::default(),
            loss_covers: VecDeque::new(),
        }
    }

    /// Reads every event the ledger gained since the last call; returns how many.
    pub fn follow(&mut self, state: &StateMachine) -> usize {
        self.refresh_directory(state);
        let events = state.ledger().events_from(self.cursor);
        self.observe_events(self.cursor, events, |_, _| {});
        events.len()
    }

    /// Takes in the wallets, accounts, merchants and devices the state gained: what the events
    /// that follow name. Cheap when little is new, so a live center does it on the node's
    /// thread and copies the events out, then runs the rules on its own (`live`).
    pub fn refresh_directory(&mut self, state: &StateMachine) {
        self.directory.refresh(state);
    }

    /// Runs the rules and statistics over `events`, the stream from `first` on, which must be
    /// where the last call stopped; `seen` is shown each transfer as read.
    pub fn observe_events(
        &mut self,
        first: EventId,
        events: &[Event],
        mut seen: impl FnMut(&Movement, &Directory),
    ) {
        assert_eq!(first, self.cursor, "events are read in order, each once");
        for (offset, event) in events.iter().enumerate() {
            if let Some(movement) = self.observe(EventId(first.0 + offset as u64), event) {
                seen(&movement, &self.directory);
            }
        }
        self.cursor = EventId(first.0 + events.len() as u64);
    }

    fn observe(&mut self, id: EventId, event: &Event) -> Option<Movement> {
        match event {
            Event::Transfer(transfer) => {
                let movement = classify(id, transfer, &self.directory);
                self.statistics.record(&movement, &self.directory);
                for alert in self.rules.observe(&movement, &self.directory) {
                    self.alerts.raise(alert);
                }
                if movement.flow == Flow::OfflineLossCover {
                    self.alerts.attach_loss_cover(&movement);
                    if self.loss_covers.len() == LOSS_COVERS_KEPT {
                        self.loss_covers.pop_front();
                    }
                    self.loss_covers.push_back(movement);
                }
                Some(movement)
            }
            Event::Device {
                device,
                change: DeviceChange::Blocked { reason },
                timestamp_ms,
            } => {
                let profile = self.directory.device(*device).copied();
                let blocked = DeviceBlocked {
                    event: id,
                    at_ms: *timestamp_ms,
                    device: *device,
                    wallet: profile.and_then(|p| p.wallet),
                    operator: profile.map(|p| p.operator),
                    reason: *reason,
                };
                // Covers paid earlier in the same sync by the same issuer belong to this block.
                let covers: Vec<Movement> = self
                    .loss_covers
                    .iter()
                    .filter(|c| c.at_ms == blocked.at_ms && Some(c.operator) == blocked.operator)
                    .copied()
                    .collect();
                self.alerts
                    .raise(self.rules.device_blocked(&blocked, &covers));
                None
            }
            Event::Wallet { .. } | Event::Device { .. } => None,
        }
    }

    /// Where the next `follow` starts: the number of events read so far.
    pub fn cursor(&self) -> EventId {
        self.cursor
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    pub fn alerts(&self) -> &AlertBook {
        &self.alerts
    }

    pub fn alerts_mut(&mut self) -> &mut AlertBook {
        &mut self.alerts
    }

    pub fn statistics(&self) -> &Statistics {
        &self.statistics
    }

    pub fn config(&self) -> &RuleConfig {
        self.rules.config()
    }
}
