//! The registration center's side of dual offline: the secure elements it knows, the value it
//! believes each holds (loaded, paid, received), and the settlement of offline records at sync.
//! A record reported by both sides counts once; a counter reused with different content (a clone)
//! or more paid than the device ever had (a rollback) blocks the device, and its issuing operator
//! covers what it overspent, from its vault.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use foldhash::fast::RandomState;

use crate::amount::Amount;
use crate::certs::device::DeviceCaps;
use crate::certs::PublicKey;
use crate::codec::{DecodeError, Reader, Writer};
use crate::error::CommandError;
use crate::ids::{AccountId, DeviceId, EventId, OperatorId, WalletId};
use crate::ledger::{BlockReason, DeviceChange, Ledger, Leg, TransferKind};
use crate::offline::messages::{EntryRole, LogEntry, SignedRecord, SignedUnload, Wire};

/// Records one sync command may carry: a secure element keeps at most 64, both sides may report.
pub const SYNC_RECORDS_MAX: usize = 256;

/// A record as a secure element reports it at sync, with the payer's key so that the operator
/// tier can check its signature without state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncedRecord {
    pub signed: SignedRecord,
    pub payer_key: PublicKey,
}

impl SyncedRecord {
    /// What a secure element's log entry reports at sync, with whether the payee credited it
    /// (it is the payee's own entry, or the payer holds the receipt). `own_key` is the reporting
    /// SE's key: the payer's, for a paid entry.
    pub fn from_entry(entry: &LogEntry, own_key: &PublicKey) -> (SyncedRecord, bool) {
        let (payer_key, credited) = match entry.role {
            EntryRole::Paid => (*own_key, entry.acknowledged),
            EntryRole::Received => (entry.peer_key, true),
        };
        (
            SyncedRecord {
                signed: entry.signed,
                payer_key,
            },
            credited,
        )
    }

    pub fn verify(&self) -> Result<(), CommandError> {
        self.payer_key
            .verify(&self.signed.record.digest(), &self.signed.signature)
            .map_err(|_| CommandError::SignatureInvalid)
    }

    pub fn encode(&self, out: &mut Writer) {
        self.signed.encode_into(out);
        out.raw(&self.payer_key.0);
    }

    pub fn decode(input: &mut Reader<'_>) -> Result<SyncedRecord, DecodeError> {
        Ok(SyncedRecord {
            signed: SignedRecord::decode_from(input)?,
            payer_key: PublicKey(input.array("payer key")?),
        })
    }
}

/// A secure element as the center knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredDevice {
    pub operator: OperatorId,
    pub wallet: Option<WalletId>,
    pub public_key: PublicKey,
    pub caps: DeviceCaps,
    pub loaded: Amount,
    pub unloaded: Amount,
    pub paid: Amount,
    pub received: Amount,
    /// What its issuing operator put in to cover an overspend.
    pub covered: Amount,
    pub load_seq: u32,
    /// The last load, so that its retry returns its first result.
    pub last_load: (Amount, EventId),
    pub unload_seq: u32,
    pub last_unload: (Amount, EventId),
    pub blocked: Option<BlockReason>,
}

impl RegisteredDevice {
    /// What the center believes the secure element holds.
    pub fn believed_balance(&self) -> Amount {
        Amount::from_fen(
            self.loaded.fen() - self.unloaded.fen() - self.paid.fen()
                + self.received.fen()
                + self.covered.fen(),
        )
    }
}

/// What one sync did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub settled: u16,
    pub duplicates: u16,
    /// Paid records whose payee has not confirmed them yet: held until it syncs.
    pub held: u16,
    /// Held payments reversed to the payer: the payee can no longer credit them.
    pub reversed: u16,
    pub blocked: u16,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeviceRegistry {
    devices: BTreeMap<DeviceId, RegisteredDevice>,
    /// Digests of the records settled for each (payer, counter): one, unless the payer was cloned.
    settled: HashMap<(DeviceId, u32), Vec<[u8; 32]>, RandomState>,
    /// Unacknowledged paid records, waiting for the payee's side, by payer, counter and digest,
    /// with the time (s) the center first held them.
    held: BTreeMap<(DeviceId, u32, [u8; 32]), (SignedRecord, u32)>,
    /// Held records of visitor cards (no wallet behind them) whose payee can no longer credit
    /// them: owed to the card's bearer, paid out in cash at the issuing operator's counter.
    counter_refundable: BTreeSet<(DeviceId, u32, [u8; 32])>,
}

/// Where settlement finds the ledger accounts it moves money between.
pub struct SettlementBooks<'a> {
    pub operators: &'a dyn Fn(OperatorId) -> OperatorAccounts,
    pub wallets: &'a dyn Fn(WalletId) -> Option<AccountId>,
}

/// The ledger accounts settlement moves money between, per operator.
pub struct OperatorAccounts {
    pub vault: AccountId,
    pub float: AccountId,
}

impl DeviceRegistry {
    pub fn device(&self, id: DeviceId) -> Result<&RegisteredDevice, CommandError> {
        self.devices.get(&id).ok_or(CommandError::UnknownDevice(id))
    }

    pub fn devices(&self) -> impl Iterator<Item = (&DeviceId, &RegisteredDevice)> {
        self.devices.iter()
    }

    pub fn blocked(&self) -> impl Iterator<Item = DeviceId> + '_ {
        self.devices
            .iter()
            .filter(|(_, d)| d.blocked.is_some())
            .map(|(id, _)| *id)
    }

    pub fn held_records(&self) -> usize {
        self.held.len()
    }

    pub fn register(
        &mut self,
        id: DeviceId,
        device: RegisteredDevice,
        ledger: &mut Ledger,
        now: u64,
    ) -> Result<(), CommandError> {
        if self.devices.contains_key(&id) {
            return Err(CommandError::DeviceExists(id));
        }
        ledger.push_device_event(
            id,
            DeviceChange::Registered {
                operator: device.operator,
            },
            now,
        );
        self.devices.insert(id, device);
        Ok(())
    }

    /// Moves `amount` from `source` (the holder's wallet, or the vault for cash at a counter)
    /// into the operator's float, as load number `load_seq` of the device. A retry of the last
    /// load returns its first result; any other sequence number is refused.
    pub fn load(
        &mut self,
        id: DeviceId,
        load_seq: u32,
        amount: Amount,
        (source, float): (AccountId, AccountId),
        ledger: &mut Ledger,
        now: u64,
    ) -> Result<EventId, CommandError> {
        let device = self.device(id)?;
        if device.blocked.is_some() {
            return Err(CommandError::DeviceBlocked(id));
        }
        if load_seq == device.load_seq && load_seq > 0 && amount == device.last_load.0 {
            return Ok(device.last_load.1);
        }
        if load_seq != device.load_seq + 1 {
            return Err(CommandError::LoadOutOfSequence {
                device: id,
                expected: device.load_seq + 1,
                got: load_seq,
            });
        }
        let after = device.believed_balance().fen() + amount.fen();
        if after > device.caps.balance_cap.fen() {
            return Err(CommandError::OfflineBalanceCap {
                device: id,
                cap: device.caps.balance_cap,
            });
        }
        let event = ledger.transfer(
            Leg {
                debit: source,
                credit: float,
                amount,
                kind: TransferKind::DeviceLoad,
            },
            now,
        )?;
        let device = self.devices.get_mut(&id).expect("checked above");
        device.loaded = Amount::from_fen(device.loaded.fen() + amount.fen());
        device.load_seq = load_seq;
        device.last_load = (amount, event);
        Ok(event)
    }

    /// Credits what the SE debited in its signed unload (its signature checked by the operator
    /// tier) to `target`: the holder's wallet, or the vault for cash at a counter. Each unload
    /// number once; a retry of the last returns its first result.
    pub fn unload(
        &mut self,
        unload: &SignedUnload,
        (float, target): (AccountId, AccountId),
        ledger: &mut Ledger,
        now: u64,
    ) -> Result<EventId, CommandError> {
        let id = unload.device;
        let device = self.device(id)?;
        if unload.unload_seq == device.unload_seq
            && unload.unload_seq > 0
            && unload.amount == device.last_unload.0
        {
            return Ok(device.last_unload.1);
        }
        if unload.unload_seq != device.unload_seq + 1 {
            return Err(CommandError::LoadOutOfSequence {
                device: id,
                expected: device.unload_seq + 1,
                got: unload.unload_seq,
            });
        }
        if !unload.amount.is_positive() {
            return Err(CommandError::AmountNotPositive(unload.amount));
        }
        let leg = Leg {
            debit: float,
            credit: target,
            amount: unload.amount,
            kind: TransferKind::DeviceUnload,
        };
        let event = ledger.transfer(leg, now)?;
        let device = self.devices.get_mut(&id).expect("checked above");
        device.unloaded = Amount::from_fen(device.unloaded.fen() + unload.amount.fen());
        device.unload_seq = unload.unload_seq;
        device.last_unload = (unload.amount, event);
        Ok(event)
    }

    /// Checks a sync's records before anything moves: known devices, registered keys, and the
    /// reporter is a party to each record.
    pub fn check_sync(
        &self,
        reporter: DeviceId,
        records: &[SyncedRecord],
    ) -> Result<(), CommandError> {
        self.device(reporter)?;
        if records.len() > SYNC_RECORDS_MAX {
            return Err(CommandError::SyncTooLarge {
                records: records.len(),
                max: SYNC_RECORDS_MAX,
            });
        }
        for synced in records {
            let record = &synced.signed.record;
            let payer = self.device(record.payer)?;
            self.device(record.payee)?;
            if payer.public_key != synced.payer_key {
                return Err(CommandError::SignatureInvalid);
            }
            if reporter != record.payer && reporter != record.payee {
                return Err(CommandError::NotYourRecord(reporter));
            }
            if !record.amount.is_positive() {
                return Err(CommandError::AmountNotPositive(record.amount));
            }
        }
        Ok(())
    }

    /// Settles a checked sync. `acknowledged[i]` says whether the payer holds the payee's receipt
    /// for record i (or the payee itself reports it): only then did the payee's side credit it.
    /// `confirmed_at_s` is the reporter's last applied sync confirmation (trusted time).
    pub fn settle(
        &mut self,
        (reporter, confirmed_at_s): (DeviceId, u32),
        records: &[(SyncedRecord, bool)],
        books: &SettlementBooks<'_>,
        ledger: &mut Ledger,
        now: u64,
    ) -> SyncReport {
        let accounts = books.operators;
        let mut report = SyncReport::default();
        for (synced, acknowledged) in records {
            let signed = synced.signed;
            let record = signed.record;
            let (key, digest) = ((record.payer, record.counter), record.digest());
            let settled = self.settled.get(&key).map(Vec::as_slice).unwrap_or(&[]);
            if settled.contains(&digest) {
                report.duplicates += 1;
                continue;
            }
            // Another record under the same counter, settled or held: the payer was cloned.
            let held_other = self.held_under(key).any(|held| held != digest);
            if !settled.is_empty() || held_other {
                report.blocked +=
                    u16::from(self.block(record.payer, BlockReason::CounterReused, ledger, now));
            }
            // The payee's side credited it: it says so itself, or the payer holds its receipt.
            if *acknowledged || reporter == record.payee {
                self.held.remove(&(key.0, key.1, digest));
                self.counter_refundable.remove(&(key.0, key.1, digest));
                self.settled.entry(key).or_default().push(digest);
                self.settle_one(signed, accounts, ledger, now);
                if self.devices[&record.payer].blocked.is_some() {
                    // A proven clone's honest payee is paid; its issuer covers the double spend.
                    self.cover_shortfall(record.payer, accounts, ledger, now);
                }
                report.settled += 1;
            } else {
                let held_at_s = (now / 1000) as u32;
                self.held
                    .entry((key.0, key.1, digest))
                    .or_insert((signed, held_at_s));
                report.held += 1;
            }
        }
        report.reversed = self.reverse_uncredited(reporter, confirmed_at_s, books, ledger, now);
        report.blocked += u16::from(self.check_overspend(reporter, accounts, ledger, now));
        report
    }

    /// A payment cut off before its payee credited it is held; once that payee has applied a
    /// sync confirmation issued after the hold, its challenge is retired and it can never credit
    /// it, so the payment is reversed: the value goes back to the payer's online wallet. (A payer
    /// with no wallet, a visitor card, keeps it held, marked as owed at the counter.)
    fn reverse_uncredited(
        &mut self,
        payee: DeviceId,
        confirmed_at_s: u32,
        books: &SettlementBooks<'_>,
        ledger: &mut Ledger,
        now: u64,
    ) -> u16 {
        let stale: Vec<_> = self
            .held
            .iter()
            .filter(|(_, (signed, held_at_s))| {
                signed.record.payee == payee && *held_at_s < confirmed_at_s
            })
            .map(|(key, (signed, _))| (*key, *signed))
            .collect();
        let mut reversed = 0;
        for (key, signed) in stale {
            let record = signed.record;
            let payer = &self.devices[&record.payer];
            let Some(wallet) = payer.wallet.and_then(|w| (books.wallets)(w)) else {
                self.counter_refundable.insert(key);
                continue;
            };
            let float = (books.operators)(payer.operator).float;
            let leg = Leg {
                debit: float,
                credit: wallet,
                amount: record.amount,
                kind: TransferKind::OfflineReversal,
            };
            ledger
                .transfer(leg, now)
                .expect("an offline float may run negative while records are in flight");
            let payer = self.devices.get_mut(&record.payer).expect("checked above");
            payer.paid = Amount::from_fen(payer.paid.fen() + record.amount.fen());
            self.held.remove(&key);
            self.settled.entry((key.0, key.1)).or_default().push(key.2);
            reversed += 1;
        }
        reversed
    }

    /// What a visitor card's bearer is owed at the counter: its payments that can no longer be
    /// credited.
    pub fn owed_at_counter(&self, device: DeviceId) -> Amount {
        let fen = self
            .counter_refundable
            .range((device, 0, [0; 32])..=(device, u32::MAX, [0xff; 32]))
            .filter_map(|key| self.held.get(key))
            .map(|(signed, _)| signed.record.amount.fen())
            .sum();
        Amount::from_fen(fen)
    }

    /// Pays out at the issuing operator's counter what a visitor card is owed: each such record
    /// leaves the offline float for the vault (the bearer takes cash) and counts as settled.
    /// Answers the first transfer and the total.
    pub fn refund_at_counter(
        &mut self,
        device: DeviceId,
        accounts: OperatorAccounts,
        ledger: &mut Ledger,
        now: u64,
    ) -> Result<(EventId, Amount), CommandError> {
        let keys: Vec<_> = self
            .counter_refundable
            .range((device, 0, [0; 32])..=(device, u32::MAX, [0xff; 32]))
            .copied()
            .collect();
        let mut first = None;
        let mut total = 0i64;
        for key in keys {
            self.counter_refundable.remove(&key);
            let Some((signed, _)) = self.held.remove(&key) else {
                continue;
            };
            let amount = signed.record.amount;
            let leg = Leg {
                debit: accounts.float,
                credit: accounts.vault,
                amount,
                kind: TransferKind::OfflineReversal,
            };
            let event = ledger
                .transfer(leg, now)
                .expect("an offline float may run negative while records are in flight");
            first.get_or_insert(event);
            total += amount.fen();
            let payer = self
                .devices
                .get_mut(&device)
                .expect("a held record's payer");
            payer.paid = Amount::from_fen(payer.paid.fen() + amount.fen());
            self.settled.entry((key.0, key.1)).or_default().push(key.2);
        }
        first
            .map(|event| (event, Amount::from_fen(total)))
            .ok_or(CommandError::NothingOwedAtCounter(device))
    }

    /// Digests of the held records of one (payer, counter).
    fn held_under(&self, (payer, counter): (DeviceId, u32)) -> impl Iterator<Item = [u8; 32]> + '_ {
        self.held
            .range((payer, counter, [0; 32])..=(payer, counter, [0xff; 32]))
            .map(|(k, _)| k.2)
    }

    /// Moves the value between the two devices' books; between floats when the operators differ.
    /// The payer's books may dip below zero until it reports what it received offline itself.
    fn settle_one(
        &mut self,
        signed: SignedRecord,
        accounts: &dyn Fn(OperatorId) -> OperatorAccounts,
        ledger: &mut Ledger,
        now: u64,
    ) {
        let record = signed.record;
        let amount = record.amount;
        let payer = self
            .devices
            .get_mut(&record.payer)
            .expect("checked in check_sync");
        payer.paid = Amount::from_fen(payer.paid.fen() + amount.fen());
        let payer_operator = payer.operator;
        let payee = self
            .devices
            .get_mut(&record.payee)
            .expect("checked in check_sync");
        payee.received = Amount::from_fen(payee.received.fen() + amount.fen());
        let payee_operator = payee.operator;
        if payer_operator != payee_operator {
            let (from, to) = (accounts(payer_operator), accounts(payee_operator));
            let leg = Leg {
                debit: from.float,
                credit: to.float,
                amount,
                kind: TransferKind::OfflineSettlement,
            };
            ledger
                .transfer(leg, now)
                .expect("an offline float may run negative while records are in flight");
        }
    }

    /// After a device reported everything it did offline, what it is believed to hold must not
    /// be negative; if it is, it spent value it never had (a rollback or a clone), so it is
    /// blocked and its issuing operator covers the shortfall.
    fn check_overspend(
        &mut self,
        id: DeviceId,
        accounts: &dyn Fn(OperatorId) -> OperatorAccounts,
        ledger: &mut Ledger,
        now: u64,
    ) -> bool {
        self.cover_shortfall(id, accounts, ledger, now)
            && self.block(id, BlockReason::Overspent, ledger, now)
    }

    /// Moves what a device overspent from its issuing operator's vault into the float. Returns
    /// whether there was anything to cover.
    fn cover_shortfall(
        &mut self,
        id: DeviceId,
        accounts: &dyn Fn(OperatorId) -> OperatorAccounts,
        ledger: &mut Ledger,
        now: u64,
    ) -> bool {
        let device = self
            .devices
            .get_mut(&id)
            .expect("a settled device is registered");
        let shortfall = -device.believed_balance().fen();
        if shortfall <= 0 {
            return false;
        }
        let from = accounts(device.operator);
        // A vault emptied by exchanges covers what it can; the rest stays an open loss in the
        // float (it may run negative) until the operator refills its vault.
        let available = ledger
            .account(from.vault)
            .map_or(0, |vault| vault.available().fen());
        let cover = shortfall.min(available);
        if cover > 0 {
            let amount = Amount::from_fen(cover);
            let leg = Leg {
                debit: from.vault,
                credit: from.float,
                amount,
                kind: TransferKind::OfflineLossCover,
            };
            ledger
                .transfer(leg, now)
                .expect("the cover is within the vault's available balance");
            device.covered = Amount::from_fen(device.covered.fen() + cover);
        }
        true
    }

    fn block(&mut self, id: DeviceId, reason: BlockReason, ledger: &mut Ledger, now: u64) -> bool {
        let device = self.devices.get_mut(&id).expect("checked in check_sync");
        if device.blocked.is_some() {
            return false;
        }
        device.blocked = Some(reason);
        ledger.push_device_event(id, DeviceChange::Blocked { reason }, now);
        true
    }

    pub(crate) fn encode(&self, out: &mut Writer) {
        out.u64(self.devices.len() as u64);
        for (id, d) in &self.devices {
            out.u64(id.0)
                .u16(d.operator.0)
                .u32(d.wallet.map_or(0, |w| w.0))
                .raw(&d.public_key.0);
            encode_caps(&d.caps, out);
            for amount in [d.loaded, d.unloaded, d.paid, d.received, d.covered] {
                out.i64(amount.fen());
            }
            out.u32(d.load_seq)
                .i64(d.last_load.0.fen())
                .u64(d.last_load.1 .0);
            out.u32(d.unload_seq)
                .i64(d.last_unload.0.fen())
                .u64(d.last_unload.1 .0);
            out.u8(d.blocked.map_or(0, |r| r as u8));
        }
        let mut settled: Vec<_> = self
            .settled
            .iter()
            .flat_map(|(k, ds)| ds.iter().map(move |d| (*k, *d)))
            .collect();
        settled.sort_unstable();
        out.u64(settled.len() as u64);
        for ((payer, counter), digest) in settled {
            out.u64(payer.0).u32(counter).raw(&digest);
        }
        out.u64(self.held.len() as u64);
        for (record, held_at_s) in self.held.values() {
            record.encode_into(out);
            out.u32(*held_at_s);
        }
        out.u64(self.counter_refundable.len() as u64);
        for (payer, counter, digest) in &self.counter_refundable {
            out.u64(payer.0).u32(*counter).raw(digest);
        }
    }

    pub(crate) fn decode(input: &mut Reader<'_>) -> Result<DeviceRegistry, DecodeError> {
        let mut registry = DeviceRegistry::default();
        for _ in 0..input.u64("device count")? {
            let id = DeviceId(input.u64("device")?);
            let operator = OperatorId(input.u16("device operator")?);
            let wallet = Some(input.u32("device wallet")?)
                .filter(|w| *w != 0)
                .map(WalletId);
            let public_key = PublicKey(input.array("device key")?);
            let caps = decode_caps(input)?;
            let mut amounts = [Amount::ZERO; 5];
            for amount in amounts.iter_mut() {
                *amount = Amount::from_fen(input.i64("device amount")?);
            }
            let [loaded, unloaded, paid, received, covered] = amounts;
            let load_seq = input.u32("load seq")?;
            let last_load = (
                Amount::from_fen(input.i64("last load")?),
                EventId(input.u64("last load event")?),
            );
            let unload_seq = input.u32("unload seq")?;
            let last_unload = (
                Amount::from_fen(input.i64("last unload")?),
                EventId(input.u64("last unload event")?),
            );
            let blocked = match input.u8("blocked")? {
                0 => None,
                value => Some(BlockReason::from_u8(value).ok_or(DecodeError {
                    what: "block reason",
                    offset: input.offset(),
                })?),
            };
            let device = RegisteredDevice {
                operator,
                wallet,
                public_key,
                caps,
                loaded,
                unloaded,
                paid,
                received,
                covered,
                load_seq,
                last_load,
                unload_seq,
                last_unload,
                blocked,
            };
            registry.devices.insert(id, device);
        }
        for _ in 0..input.u64("settled count")? {
            let key = (DeviceId(input.u64("payer")?), input.u32("counter")?);
            registry
                .settled
                .entry(key)
                .or_default()
                .push(input.array("digest")?);
        }
        for _ in 0..input.u64("held count")? {
            let record = SignedRecord::decode_from(input)?;
            let held_at_s = input.u32("held at")?;
            let key = (
                record.record.payer,
                record.record.counter,
                record.record.digest(),
            );
            registry.held.insert(key, (record, held_at_s));
        }
        for _ in 0..input.u64("counter refund count")? {
            let key = (
                DeviceId(input.u64("counter refund payer")?),
                input.u32("counter refund counter")?,
                input.array("counter refund digest")?,
            );
            registry.counter_refundable.insert(key);
        }
        Ok(registry)
    }
}

pub fn encode_caps(caps: &DeviceCaps, out: &mut Writer) {
    out.i64(caps.per_payment_cap.fen())
        .i64(caps.balance_cap.fen());
    out.i64(caps.daily_cap.map_or(-1, Amount::fen))
        .u16(caps.payments_before_sync);
}

pub fn decode_caps(input: &mut Reader<'_>) -> Result<DeviceCaps, DecodeError> {
    Ok(DeviceCaps {
        per_payment_cap: Amount::from_fen(input.i64("per payment cap")?),
        balance_cap: Amount::from_fen(input.i64("balance cap")?),
        daily_cap: Some(input.i64("daily cap")?)
            .filter(|fen| *fen >= 0)
            .map(Amount::from_fen),
        payments_before_sync: input.u16("payments before sync")?,
    })
}
