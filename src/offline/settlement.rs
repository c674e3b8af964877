//! The registration center's side of dual offline: the secure elements it knows, the value it
//! believes each holds (loaded, unloaded, paid, received), and the settlement of offline records
//! at sync.
//!
//! The center books only what a secure element signed. A sync is the card's attestation — its
//! signed account of itself over a fresh nonce the center handed out for that sync — with every
//! log entry and unload the attestation binds, so the phone can neither leave a record out nor
//! change a flag nor replay an old account. The payer's SE signature on every record a payee
//! reports is verified at the center's door ([`se_signatures`], stateless, before the log), so no
//! operator's word stands in for it; records the payer reports itself are covered by its own
//! attestation. A record reported by both sides counts once; a counter reused with different
//! content (a clone), attested counters that went back (a rollback) or more paid than the device
//! ever had blocks the device, and its issuing operator covers what it overspent, from its vault.
//! A blocked device unloads nothing, and no device unloads more than the center believes it holds.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use foldhash::fast::RandomState;

use crate::amount::Amount;
use crate::certs::device::DeviceCaps;
use crate::certs::{sm3_parts, PublicKey};
use crate::codec::{DecodeError, Reader, Writer};
use crate::error::CommandError;
use crate::ids::{AccountId, DeviceId, EventId, OperatorId, WalletId};
use crate::ledger::{BlockReason, DeviceChange, Ledger, Leg, TransferKind};
use crate::offline::applet::CHALLENGE_CLOCK_SKEW_S;
use crate::offline::messages::{
    AttestedSync, EntryRole, Nonce, SignedRecord, SignedUnload, SyncAttestation, Wire, NONCE_BYTES,
};

/// A record stamped later than this past the center's time at its payee's sync was taken by a
/// terminal whose clock runs ahead: two clocks of one tap agree within the challenge skew, so
/// the payee's own clock was at least that far ahead too.
pub const CLOCK_AHEAD_TOLERANCE_S: u32 = 2 * CHALLENGE_CLOCK_SKEW_S;

const SYNC_NONCE_DOMAIN: &[u8] = b"ecny.offline.sync-nonce.v1";
const NONCE_CHAIN_DOMAIN: &[u8] = b"ecny.offline.sync-nonce-chain.v1";

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
    /// The nonce of the sync the center has open for it, until that sync is booked.
    pub sync_nonce: Option<Nonce>,
    /// The highest counter of any record of its the center has booked.
    pub counter_seen: u32,
    /// Payments it took as payee stamped ahead of the center's time at its sync.
    pub clock_ahead: u32,
}

impl RegisteredDevice {
    /// A device just registered: nothing loaded, nothing seen.
    pub fn new(
        operator: OperatorId,
        wallet: Option<WalletId>,
        public_key: PublicKey,
        caps: DeviceCaps,
    ) -> RegisteredDevice {
        RegisteredDevice {
            operator,
            wallet,
            public_key,
            caps,
            loaded: Amount::ZERO,
            unloaded: Amount::ZERO,
            paid: Amount::ZERO,
            received: Amount::ZERO,
            covered: Amount::ZERO,
            load_seq: 0,
            last_load: (Amount::ZERO, EventId(0)),
            unload_seq: 0,
            last_unload: (Amount::ZERO, EventId(0)),
            blocked: None,
            sync_nonce: None,
            counter_seen: 0,
            clock_ahead: 0,
        }
    }

    /// What the center believes the secure element holds.
    pub fn believed_balance(&self) -> Amount {
        Amount::from_fen(
            self.loaded.fen() - self.unloaded.fen() - self.paid.fen()
                + self.received.fen()
                + self.covered.fen(),
        )
    }
}

/// The confirmation the center's booking allows: the operator signs it over the attestation
/// it answers, and the card applies it in the same session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConfirmSync {
    /// Every entry up to here is booked; an unload the center has not credited yet stays on
    /// the card, and so does everything after it.
    pub through_seq: u32,
    /// Trusted time: the center's, and after the card's last sync.
    pub time_s: u32,
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
    /// Records stamped ahead of the center's time: their payee's terminal was flagged.
    pub clock_ahead: u16,
    /// What the operator may confirm to the card; none for a blocked card.
    pub confirm: Option<ConfirmSync>,
}

/// A held record's key: payer, counter, digest.
type HeldKey = (DeviceId, u32, [u8; 32]);

/// Paid records waiting for their payee's side, by payer, counter and digest, with the time (s)
/// the center first held them; indexed by payee too, so that a payee's sync finds its own
/// without reading everyone's.
#[derive(Clone, Debug, Default, PartialEq)]
struct HeldRecords {
    by_payer: BTreeMap<HeldKey, (SignedRecord, u32)>,
    by_payee: BTreeSet<(DeviceId, HeldKey)>,
}

impl HeldRecords {
    fn key(signed: &SignedRecord) -> HeldKey {
        let record = &signed.record;
        (record.payer, record.counter, record.digest())
    }

    fn len(&self) -> usize {
        self.by_payer.len()
    }

    fn contains(&self, key: &HeldKey) -> bool {
        self.by_payer.contains_key(key)
    }

    fn get(&self, key: &HeldKey) -> Option<&(SignedRecord, u32)> {
        self.by_payer.get(key)
    }

    /// Holds a record from `held_at_s`, unless it is held already.
    fn hold(&mut self, signed: SignedRecord, held_at_s: u32) {
        let key = HeldRecords::key(&signed);
        self.by_payee.insert((signed.record.payee, key));
        self.by_payer.entry(key).or_insert((signed, held_at_s));
    }

    fn remove(&mut self, key: &HeldKey) -> Option<(SignedRecord, u32)> {
        let removed = self.by_payer.remove(key)?;
        self.by_payee.remove(&(removed.0.record.payee, *key));
        Some(removed)
    }

    /// The held records of one payer.
    fn of_payer(&self, payer: DeviceId) -> impl Iterator<Item = &HeldKey> + '_ {
        self.by_payer
            .range((payer, 0, [0; 32])..=(payer, u32::MAX, [0xff; 32]))
            .map(|(key, _)| key)
    }

    /// Digests of the held records of one (payer, counter).
    fn under(&self, (payer, counter): (DeviceId, u32)) -> impl Iterator<Item = [u8; 32]> + '_ {
        self.by_payer
            .range((payer, counter, [0; 32])..=(payer, counter, [0xff; 32]))
            .map(|(key, _)| key.2)
    }

    /// The held records one payee has not credited yet, with when they were held.
    fn for_payee(&self, payee: DeviceId) -> Vec<(HeldKey, SignedRecord, u32)> {
        let low = (payee, (DeviceId(0), 0, [0; 32]));
        let high = (payee, (DeviceId(u64::MAX), u32::MAX, [0xff; 32]));
        self.by_payee
            .range(low..=high)
            .map(|(_, key)| {
                let (signed, held_at_s) = self.by_payer[key];
                (*key, signed, held_at_s)
            })
            .collect()
    }

    fn records(&self) -> impl Iterator<Item = &(SignedRecord, u32)> + '_ {
        self.by_payer.values()
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeviceRegistry {
    devices: BTreeMap<DeviceId, RegisteredDevice>,
    /// Digests of the records settled for each (payer, counter): one, unless the payer was cloned.
    settled: HashMap<(DeviceId, u32), Vec<[u8; 32]>, RandomState>,
    /// Paid records their payers reported, waiting for the payee's own attestation.
    held: HeldRecords,
    /// Held records of visitor cards (no wallet behind them) whose payee can no longer credit
    /// them: owed to the card's bearer, paid out in cash at the issuing operator's counter.
    counter_refundable: BTreeSet<(DeviceId, u32, [u8; 32])>,
    /// Sync nonces handed out so far, and a chain over every booked attestation's signature:
    /// each nonce is fresh, and no phone can tell the next one in advance.
    syncs_begun: u64,
    nonce_chain: [u8; 32],
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

    /// Paid records of `payer` the center holds, waiting for their payees.
    pub fn held_by(&self, payer: DeviceId) -> usize {
        self.held.of_payer(payer).count()
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

    /// The first result of a load, if `(load_seq, amount)` repeats the device's last one.
    pub fn repeated_load(
        &self,
        id: DeviceId,
        load_seq: u32,
        amount: Amount,
    ) -> Result<Option<EventId>, CommandError> {
        let device = self.device(id)?;
        let repeated = load_seq == device.load_seq && load_seq > 0 && amount == device.last_load.0;
        Ok(repeated.then_some(device.last_load.1))
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
        if let Some(first) = self.repeated_load(id, load_seq, amount)? {
            return Ok(first);
        }
        let device = self.device(id)?;
        if device.blocked.is_some() {
            return Err(CommandError::DeviceBlocked(id));
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

    /// The first result of an unload, if it repeats the device's last one.
    pub fn repeated_unload(&self, unload: &SignedUnload) -> Result<Option<EventId>, CommandError> {
        let device = self.device(unload.device)?;
        let repeated = unload.unload_seq == device.unload_seq
            && unload.unload_seq > 0
            && unload.amount == device.last_unload.0;
        Ok(repeated.then_some(device.last_unload.1))
    }

    /// Credits what the SE debited in its signed unload (its signature checked at the center's
    /// door) to `target`: the holder's wallet, or the vault for cash at a counter. Each unload
    /// number once; a retry of the last returns its first result. A blocked device unloads
    /// nothing, and no device more than the center believes it holds: a card restored from an
    /// older image holds value it already spent.
    pub fn unload(
        &mut self,
        unload: &SignedUnload,
        (float, target): (AccountId, AccountId),
        ledger: &mut Ledger,
        now: u64,
    ) -> Result<EventId, CommandError> {
        if let Some(first) = self.repeated_unload(unload)? {
            return Ok(first);
        }
        let id = unload.device;
        let device = self.device(id)?;
        if device.blocked.is_some() {
            return Err(CommandError::DeviceBlocked(id));
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
        let believed = device.believed_balance();
        if believed < unload.amount {
            return Err(CommandError::UnloadAboveBelieved {
                device: id,
                believed,
                amount: unload.amount,
            });
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
        debug_assert!(!device.believed_balance().is_negative());
        Ok(event)
    }

    /// Opens a sync for a device: a fresh nonce its card must attest over. A newer nonce
    /// replaces an older one, so only the latest sync can be booked.
    pub fn begin_sync(&mut self, id: DeviceId, now: u64) -> Result<Nonce, CommandError> {
        self.device(id)?;
        self.syncs_begun += 1;
        let digest = sm3_parts(&[
            SYNC_NONCE_DOMAIN,
            &self.nonce_chain,
            &id.0.to_le_bytes(),
            &self.syncs_begun.to_le_bytes(),
            &now.to_le_bytes(),
        ]);
        let mut nonce = Nonce([0; NONCE_BYTES]);
        nonce.0.copy_from_slice(&digest[..NONCE_BYTES]);
        self.devices.get_mut(&id).expect("checked above").sync_nonce = Some(nonce);
        Ok(nonce)
    }

    /// Checks an attested sync before anything moves: the card's registered key, the open
    /// nonce, entries numbered exactly as the card's log, each record naming the reporter in
    /// its role and, for a received one, the payer's registered key. (The signatures and the
    /// binding of the entries were checked at the center's door.)
    pub fn check_sync(
        &self,
        sync: &AttestedSync,
        device_key: &PublicKey,
    ) -> Result<(), CommandError> {
        let attestation = &sync.attestation;
        let reporter = attestation.device;
        let device = self.device(reporter)?;
        if device.public_key != *device_key {
            return Err(CommandError::SignatureInvalid);
        }
        if device.sync_nonce != Some(attestation.nonce) {
            return Err(CommandError::SyncNonceUnknown(reporter));
        }
        check_entry_numbers(sync)?;
        for entry in &sync.log {
            let record = &entry.signed.record;
            let payer = self.device(record.payer)?;
            self.device(record.payee)?;
            let (party, key_ok) = match entry.role {
                EntryRole::Paid => (record.payer, true),
                EntryRole::Received => (record.payee, payer.public_key == entry.peer_key),
            };
            if party != reporter {
                return Err(CommandError::NotYourRecord(reporter));
            }
            if !key_ok {
                return Err(CommandError::SignatureInvalid);
            }
            if !record.amount.is_positive() {
                return Err(CommandError::AmountNotPositive(record.amount));
            }
        }
        if sync
            .unloads
            .iter()
            .any(|entry| entry.unload.device != reporter)
        {
            return Err(CommandError::SyncNotAttested(reporter));
        }
        Ok(())
    }

    /// Settles a checked sync. A credit to a payee is booked on the payee's own attestation
    /// only (its received entry), never on the payer's word that the payee credited it: a
    /// record its payer reports is held until then, or reversed once the payee provably cannot
    /// credit it any more. A record for a payee the center has blocked settles to that payee at
    /// once, so an honest payer's books close even when the blocked card never syncs again.
    pub fn settle(
        &mut self,
        sync: &AttestedSync,
        books: &SettlementBooks<'_>,
        ledger: &mut Ledger,
        now: u64,
    ) -> SyncReport {
        let attestation = &sync.attestation;
        let reporter = attestation.device;
        self.close_sync(attestation);
        let mut report = SyncReport::default();
        for entry in &sync.log {
            let record = &entry.signed.record;
            let credited =
                entry.role == EntryRole::Received || self.devices[&record.payee].blocked.is_some();
            self.book(entry.signed, credited, books, ledger, now, &mut report);
        }
        report.reversed =
            self.reverse_uncredited(reporter, attestation.last_sync_s, books, ledger, now);
        let accounts = books.operators;
        report.blocked += u16::from(self.check_rollback(attestation, accounts, ledger, now));
        report.blocked += u16::from(self.check_overspend(reporter, accounts, ledger, now));
        if report.blocked > 0 {
            report.settled += self.settle_held_for_blocked(books, ledger, now);
        }
        report.confirm = self.confirmation(sync, now);
        report
    }

    /// Held payments to blocked payees settle to them: the payer paid, and whatever the blocked
    /// card did with it is frozen with the card, for its issuer to investigate.
    fn settle_held_for_blocked(
        &mut self,
        books: &SettlementBooks<'_>,
        ledger: &mut Ledger,
        now: u64,
    ) -> u16 {
        let blocked: Vec<DeviceId> = self.blocked().collect();
        let frozen: Vec<_> = blocked
            .into_iter()
            .flat_map(|payee| self.held.for_payee(payee))
            .collect();
        for (key, signed, _) in &frozen {
            self.held.remove(key);
            self.counter_refundable.remove(key);
            self.settled.entry((key.0, key.1)).or_default().push(key.2);
            self.settle_one(*signed, books.operators, ledger, now);
        }
        frozen.len() as u16
    }

    /// The open nonce is used; the attestation's signature feeds the chain of later nonces.
    fn close_sync(&mut self, attestation: &SyncAttestation) {
        let device = self
            .devices
            .get_mut(&attestation.device)
            .expect("checked in check_sync");
        device.sync_nonce = None;
        self.nonce_chain = sm3_parts(&[
            NONCE_CHAIN_DOMAIN,
            &self.nonce_chain,
            &attestation.signature.0,
        ]);
    }

    /// Books one record: counted once, held until its payee credits it, a clone given away by a
    /// second record under one counter, a payee terminal flagged when the record is stamped
    /// ahead of the center's time.
    fn book(
        &mut self,
        signed: SignedRecord,
        credited: bool,
        books: &SettlementBooks<'_>,
        ledger: &mut Ledger,
        now: u64,
        report: &mut SyncReport,
    ) {
        let accounts = books.operators;
        let record = signed.record;
        let (key, digest) = ((record.payer, record.counter), record.digest());
        let settled = self.settled.get(&key).map(Vec::as_slice).unwrap_or(&[]);
        if settled.contains(&digest) {
            report.duplicates += 1;
            return;
        }
        let settled_other = !settled.is_empty();
        if !self.held.contains(&(key.0, key.1, digest)) {
            self.first_seen(&signed, ledger, now, report);
        }
        // Another record under the same counter, settled or held: the payer was cloned.
        let held_other = self.held.under(key).any(|held| held != digest);
        if settled_other || held_other {
            report.blocked +=
                u16::from(self.block(record.payer, BlockReason::CounterReused, ledger, now));
        }
        if credited {
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
            self.held.hold(signed, (now / 1000) as u32);
            report.held += 1;
        }
    }

    /// What the center learns the first time it sees a record: the payer's counter got at
    /// least this far, and whether the payee's terminal stamped it ahead of the center's time.
    fn first_seen(
        &mut self,
        signed: &SignedRecord,
        ledger: &mut Ledger,
        now: u64,
        report: &mut SyncReport,
    ) {
        let record = &signed.record;
        let payer = self.devices.get_mut(&record.payer).expect("checked");
        payer.counter_seen = payer.counter_seen.max(record.counter);
        let now_s = (now / 1000) as u32;
        let ahead_s = record.time_s.saturating_sub(now_s);
        if ahead_s > CLOCK_AHEAD_TOLERANCE_S {
            let payee = self.devices.get_mut(&record.payee).expect("checked");
            payee.clock_ahead += 1;
            ledger.push_device_event(record.payee, DeviceChange::ClockAhead { ahead_s }, now);
            report.clock_ahead += 1;
        }
    }

    /// A card whose signed counters went back below what the center already booked of it was
    /// restored from an older image of itself: blocked, its shortfall covered.
    fn check_rollback(
        &mut self,
        attestation: &SyncAttestation,
        accounts: &dyn Fn(OperatorId) -> OperatorAccounts,
        ledger: &mut Ledger,
        now: u64,
    ) -> bool {
        let id = attestation.device;
        let device = &self.devices[&id];
        let went_back =
            attestation.counter < device.counter_seen || attestation.unload_seq < device.unload_seq;
        if !went_back || !self.block(id, BlockReason::RolledBack, ledger, now) {
            return false;
        }
        self.cover_shortfall(id, accounts, ledger, now);
        true
    }

    /// What the operator may confirm: everything reported, short of the first unload the center
    /// has not credited (the card keeps it, and what follows, until it is); nothing to a
    /// blocked card.
    fn confirmation(&self, sync: &AttestedSync, now: u64) -> Option<ConfirmSync> {
        let attestation = &sync.attestation;
        let device = &self.devices[&attestation.device];
        if device.blocked.is_some() {
            return None;
        }
        let through_seq = sync
            .unloads
            .iter()
            .find(|entry| entry.unload.unload_seq > device.unload_seq)
            .map_or(attestation.next_log_seq - 1, |entry| entry.seq - 1);
        let now_s = (now / 1000) as u32;
        Some(ConfirmSync {
            through_seq,
            time_s: now_s.max(attestation.last_sync_s.saturating_add(1)),
        })
    }

    /// A payment cut off before its payee credited it is held; once the payee's own attestation
    /// shows a sync confirmation issued after the hold, its challenge is retired and it can never
    /// credit it (had it credited it before, the attested log would hold it), so the payment is
    /// reversed: the value goes back to the payer's online wallet. (A payer with no wallet, a
    /// visitor card, keeps it held, marked as owed at the counter; a blocked payer keeps it
    /// held for its issuer to investigate.)
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
            .for_payee(payee)
            .into_iter()
            .filter(|(_, _, held_at_s)| *held_at_s < confirmed_at_s)
            .collect();
        let mut reversed = 0;
        for (key, signed, _) in stale {
            let record = signed.record;
            let payer = &self.devices[&record.payer];
            // A blocked payer, or one believed short of the payment (a card that never held
            // it), keeps it held for its issuer.
            if payer.blocked.is_some() || payer.believed_balance() < record.amount {
                continue;
            }
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
        let payer = self.device(device)?;
        if payer.blocked.is_some() {
            return Err(CommandError::DeviceBlocked(device));
        }
        let owed = self.owed_at_counter(device);
        if payer.believed_balance() < owed {
            return Err(CommandError::UnloadAboveBelieved {
                device,
                believed: payer.believed_balance(),
                amount: owed,
            });
        }
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

    /// Its issuer blocks the device on its holder's report; a device blocked already keeps its
    /// first reason.
    pub fn block_by_issuer(
        &mut self,
        id: DeviceId,
        ledger: &mut Ledger,
        now: u64,
    ) -> Result<(), CommandError> {
        self.device(id)?;
        self.block(id, BlockReason::ReportedByIssuer, ledger, now);
        Ok(())
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
            match d.sync_nonce {
                Some(nonce) => out.u8(1).raw(&nonce.0),
                None => out.u8(0),
            };
            out.u32(d.counter_seen).u32(d.clock_ahead);
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
        for (record, held_at_s) in self.held.records() {
            record.encode_into(out);
            out.u32(*held_at_s);
        }
        out.u64(self.counter_refundable.len() as u64);
        for (payer, counter, digest) in &self.counter_refundable {
            out.u64(payer.0).u32(*counter).raw(digest);
        }
        out.u64(self.syncs_begun).raw(&self.nonce_chain);
    }

    pub(crate) fn decode(input: &mut Reader<'_>) -> Result<DeviceRegistry, DecodeError> {
        let mut registry = DeviceRegistry::default();
        for _ in 0..input.u64("device count")? {
            let id = DeviceId(input.u64("device")?);
            registry.devices.insert(id, decode_device(input)?);
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
            registry.held.hold(record, held_at_s);
        }
        for _ in 0..input.u64("counter refund count")? {
            let key = (
                DeviceId(input.u64("counter refund payer")?),
                input.u32("counter refund counter")?,
                input.array("counter refund digest")?,
            );
            registry.counter_refundable.insert(key);
        }
        registry.syncs_begun = input.u64("syncs begun")?;
        registry.nonce_chain = input.array("sync nonce chain")?;
        Ok(registry)
    }
}

/// One registered device, as [`DeviceRegistry::encode`] writes it after its id.
fn decode_device(input: &mut Reader<'_>) -> Result<RegisteredDevice, DecodeError> {
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
    let sync_nonce = match input.u8("sync nonce flag")? {
        0 => None,
        _ => Some(Nonce(input.array("sync nonce")?)),
    };
    Ok(RegisteredDevice {
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
        sync_nonce,
        counter_seen: input.u32("counter seen")?,
        clock_ahead: input.u32("clock ahead")?,
        ..RegisteredDevice::new(operator, wallet, public_key, caps)
    })
}

/// A sync's entries are numbered exactly as the card's log: every number after the last one
/// synced and before the next, once, in the log or in the unload table.
fn check_entry_numbers(sync: &AttestedSync) -> Result<(), CommandError> {
    let attestation = &sync.attestation;
    let mut numbers: Vec<u32> = sync
        .log
        .iter()
        .map(|entry| entry.seq)
        .chain(sync.unloads.iter().map(|entry| entry.seq))
        .collect();
    numbers.sort_unstable();
    let first = attestation.synced_through.checked_add(1);
    let expected = first.map(|first| first..attestation.next_log_seq);
    let complete = expected.is_some_and(|range| numbers.iter().copied().eq(range));
    if !complete {
        return Err(CommandError::SyncNotAttested(attestation.device));
    }
    Ok(())
}

pub fn encode_caps(caps: &DeviceCaps, out: &mut Writer) {
    out.i64(caps.per_payment_cap.fen())
        .i64(caps.balance_cap.fen());
    out.i64(caps.daily_cap.map_or(-1, Amount::fen))
        .u16(caps.payments_before_sync);
    out.i64(caps.spend_before_sync.fen());
}

pub fn decode_caps(input: &mut Reader<'_>) -> Result<DeviceCaps, DecodeError> {
    Ok(DeviceCaps {
        per_payment_cap: Amount::from_fen(input.i64("per payment cap")?),
        balance_cap: Amount::from_fen(input.i64("balance cap")?),
        daily_cap: Some(input.i64("daily cap")?)
            .filter(|fen| *fen >= 0)
            .map(Amount::from_fen),
        payments_before_sync: input.u16("payments before sync")?,
        spend_before_sync: Amount::from_fen(input.i64("spend before sync")?),
    })
}
