//! The secure element's persistent memory layout, and the checks that read it.
//!
//! Only the applet writes these fields, inside its transactions; everything else reads them
//! through getters, as a laboratory probe would read the chip.

use crate::amount::Amount;
use crate::certs::device::{CompactCertificate, DeviceCaps, KnownSignatures, RevocationList};
use crate::certs::Signature;
use crate::certs::{sm3_parts, KeyPair, PublicKey};
use crate::ids::DeviceId;
use crate::offline::card::{
    DEVICE_CERTS_CACHED_MAX, OFFLINE_DAYS_MAX, OFFLINE_PERIOD_MAX_S, OPERATOR_CERTS_CACHED_MAX,
    PROTOCOL_VERSION, RECENT_CHALLENGES_MAX, RECORDS_MAX, UNLOADS_PENDING_MAX,
};
use crate::offline::error::OfflineError;
use crate::offline::messages::{
    Challenge, EntryRole, LogEntry, Nonce, SeSummary, SelectInfo, SyncAttestation, UnloadEntry,
    CHALLENGE_BYTES, LOG_ENTRY_BYTES, NONCE_BYTES, SIGNATURE_BYTES, UNLOAD_ENTRY_BYTES,
};
use crate::time::china_day_of_seconds;

const NONCE_DOMAIN: &[u8] = b"ecny.offline.nonce.v1";
const SESSION_DOMAIN: &[u8] = b"ecny.offline.session.v1";
/// One entry of the spending-days table: day number and amount.
const SPENDING_DAY_BYTES: usize = 4 + 8;
const CERT_CACHE_DOMAIN: &[u8] = b"ecny.offline.verified-certificate.v1";
/// A cache entry: the serial and an SM3 digest of the certificate's exact bytes.
pub const CACHED_CERT_BYTES: usize = 8 + 32;

/// A certificate this SE has checked the signature of: its serial and the SM3 of its exact
/// encoding, so any changed byte misses the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CachedCert {
    pub serial: u64,
    pub digest: [u8; 32],
}

impl CachedCert {
    fn of(certificate: &CompactCertificate) -> CachedCert {
        CachedCert {
            serial: certificate.body.serial,
            digest: sm3_parts(&[CERT_CACHE_DOMAIN, &certificate.encode()]),
        }
    }
}

/// Peer certificates whose signatures this SE has verified, oldest first, so a tap with a known
/// operator (or a known peer) skips those SM2 verifications. Validity, issuer and revocation are
/// still checked on every tap; a new revocation list empties the cache.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifiedCertificates {
    pub(super) operators: Vec<CachedCert>,
    pub(super) devices: Vec<CachedCert>,
}

impl VerifiedCertificates {
    pub fn operators(&self) -> &[CachedCert] {
        &self.operators
    }

    pub fn devices(&self) -> &[CachedCert] {
        &self.devices
    }

    pub(super) fn known(
        &self,
        operator_cert: &CompactCertificate,
        device_cert: &CompactCertificate,
    ) -> KnownSignatures {
        KnownSignatures {
            operator: self.operators.contains(&CachedCert::of(operator_cert)),
            device: self.devices.contains(&CachedCert::of(device_cert)),
        }
    }

    /// The cache after a chain verified, or `None` when it already held both.
    pub(super) fn with_chain(
        &self,
        operator_cert: &CompactCertificate,
        device_cert: &CompactCertificate,
    ) -> Option<VerifiedCertificates> {
        let mut next = self.clone();
        let added = remember(
            &mut next.operators,
            operator_cert,
            OPERATOR_CERTS_CACHED_MAX,
        ) | remember(&mut next.devices, device_cert, DEVICE_CERTS_CACHED_MAX);
        added.then_some(next)
    }

    fn bytes(&self) -> usize {
        (self.operators.len() + self.devices.len()) * CACHED_CERT_BYTES
    }
}

/// Adds `certificate` to `table`, dropping the oldest entry when full; whether it was new.
fn remember(table: &mut Vec<CachedCert>, certificate: &CompactCertificate, max: usize) -> bool {
    let entry = CachedCert::of(certificate);
    if table.contains(&entry) {
        return false;
    }
    if table.len() == max {
        table.remove(0);
    }
    table.push(entry);
    debug_assert!(table.len() <= max);
    true
}

/// The device's private key; compared by value so that state snapshots can be compared.
#[derive(Clone, Debug)]
pub(super) struct DeviceKey(pub(super) KeyPair);

impl PartialEq for DeviceKey {
    fn eq(&self, other: &DeviceKey) -> bool {
        self.0.secret_bytes() == other.0.secret_bytes()
    }
}

impl Eq for DeviceKey {}

/// The payee's open challenge and the recent ones it superseded, newest last.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Challenges {
    pub(super) outstanding: Option<Challenge>,
    pub(super) recent: Vec<Challenge>,
}

impl Challenges {
    pub fn outstanding(&self) -> Option<&Challenge> {
        self.outstanding.as_ref()
    }

    pub fn recent(&self) -> &[Challenge] {
        &self.recent
    }

    /// Whether a record for `nonce` would still be credited.
    pub fn holds(&self, nonce: &Nonce) -> bool {
        self.find(nonce).is_some()
    }

    pub(super) fn find(&self, nonce: &Nonce) -> Option<&Challenge> {
        self.outstanding
            .iter()
            .chain(self.recent.iter())
            .find(|challenge| challenge.nonce == *nonce)
    }

    pub(super) fn with_new(&self, challenge: Challenge) -> Challenges {
        let mut recent = self.recent.clone();
        if let Some(previous) = self.outstanding {
            if recent.len() == RECENT_CHALLENGES_MAX {
                recent.remove(0);
            }
            recent.push(previous);
        }
        debug_assert!(recent.len() <= RECENT_CHALLENGES_MAX);
        Challenges {
            outstanding: Some(challenge),
            recent,
        }
    }

    pub(super) fn without(&self, nonce: &Nonce) -> Challenges {
        Challenges {
            outstanding: self.outstanding.filter(|open| open.nonce != *nonce),
            recent: self
                .recent
                .iter()
                .filter(|challenge| challenge.nonce != *nonce)
                .copied()
                .collect(),
        }
    }
}

/// What the holder has paid on one (Beijing) day, for a guardian's daily cap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpendingDay {
    pub day: u32,
    pub spent: Amount,
}

/// Everything the secure element keeps across power cycles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersistentState {
    pub(super) key: DeviceKey,
    pub(super) device: DeviceId,
    pub(super) device_cert: CompactCertificate,
    pub(super) operator_cert: CompactCertificate,
    pub(super) root: PublicKey,
    pub(super) caps: DeviceCaps,
    pub(super) balance: Amount,
    pub(super) counter: u32,
    pub(super) payments_since_sync: u16,
    /// What was paid on each day from the clock floor's day on, oldest first: every day a
    /// reader's clock may name within the offline period, so a clock set forward spends only
    /// that day's cap and never pins the card to a future day.
    pub(super) spending_days: Vec<SpendingDay>,
    pub(super) load_seq: u32,
    pub(super) unload_seq: u32,
    pub(super) challenge_seq: u32,
    pub(super) challenges: Challenges,
    pub(super) log: Vec<LogEntry>,
    /// Signed unloads kept until a sync confirmation covers them.
    pub(super) unloads: Vec<UnloadEntry>,
    pub(super) next_log_seq: u32,
    pub(super) synced_through: u32,
    pub(super) last_sync_s: u32,
    pub(super) revocation: RevocationList,
    pub(super) verified: VerifiedCertificates,
    pub(super) clock_floor_s: u32,
    pub(super) blocked: bool,
}

impl PersistentState {
    pub fn device(&self) -> DeviceId {
        self.device
    }

    pub fn balance(&self) -> Amount {
        self.balance
    }

    pub fn counter(&self) -> u32 {
        self.counter
    }

    pub fn caps(&self) -> DeviceCaps {
        self.caps
    }

    pub fn payments_since_sync(&self) -> u16 {
        self.payments_since_sync
    }

    /// Paid since the last sync confirmation: the paid entries the log still keeps.
    pub fn spent_since_sync(&self) -> Amount {
        let fen = self
            .log
            .iter()
            .filter(|entry| entry.role == EntryRole::Paid)
            .map(|entry| entry.signed.record.amount.fen())
            .sum();
        Amount::from_fen(fen)
    }

    pub fn spending_days(&self) -> &[SpendingDay] {
        &self.spending_days
    }

    pub fn clock_floor_s(&self) -> u32 {
        self.clock_floor_s
    }

    pub fn log(&self) -> &[LogEntry] {
        &self.log
    }

    pub fn verified_certificates(&self) -> &VerifiedCertificates {
        &self.verified
    }

    pub fn unloads(&self) -> &[UnloadEntry] {
        &self.unloads
    }

    pub fn unload_seq(&self) -> u32 {
        self.unload_seq
    }

    pub fn challenges(&self) -> &Challenges {
        &self.challenges
    }

    pub fn is_blocked(&self) -> bool {
        self.blocked
    }

    pub fn public_key(&self) -> PublicKey {
        self.device_cert.body.public_key
    }

    pub fn unacknowledged(&self) -> usize {
        self.log
            .iter()
            .filter(|entry| entry.role == EntryRole::Paid && !entry.acknowledged)
            .count()
    }

    /// Bytes of persistent memory the state occupies now.
    pub fn nvm_bytes(&self) -> usize {
        nvm_bytes_fixed(&self.device_cert, &self.operator_cert)
            + self.recent_challenges_bytes()
            + self.log.len() * LOG_ENTRY_BYTES
            + self.unloads.len() * UNLOAD_ENTRY_BYTES
            + self.verified.bytes()
            + self.revocation.encode().len()
            + self.spending_days.len() * SPENDING_DAY_BYTES
    }

    /// Bytes of persistent memory the applet reserves: every table at its limit.
    pub fn nvm_bytes_max() -> usize {
        use crate::certs::device::{CERTIFICATE_BYTES_MAX, REVOCATION_LIST_BYTES_MAX};
        let certificates = 2 * CERTIFICATE_BYTES_MAX;
        nvm_bytes_scalars()
            + certificates
            + RECENT_CHALLENGES_MAX * CHALLENGE_BYTES
            + RECORDS_MAX * LOG_ENTRY_BYTES
            + UNLOADS_PENDING_MAX * UNLOAD_ENTRY_BYTES
            + (OPERATOR_CERTS_CACHED_MAX + DEVICE_CERTS_CACHED_MAX) * CACHED_CERT_BYTES
            + REVOCATION_LIST_BYTES_MAX
            + OFFLINE_DAYS_MAX * SPENDING_DAY_BYTES
    }

    fn recent_challenges_bytes(&self) -> usize {
        self.challenges.recent.len() * CHALLENGE_BYTES
    }

    pub(super) fn summary(&self) -> SeSummary {
        SeSummary {
            device: self.device,
            balance: self.balance,
            counter: self.counter,
            payments_since_sync: self.payments_since_sync,
            records: self.log.len() as u8,
            unacknowledged: self.unacknowledged() as u8,
            load_seq: self.load_seq,
            unload_seq: self.unload_seq,
            synced_through: self.synced_through,
            last_sync_s: self.last_sync_s,
            revocation_version: self.revocation.version(),
            blocked: self.blocked,
            next_log_seq: self.next_log_seq,
            spent_since_sync: self.spent_since_sync(),
        }
    }

    /// The card's account of itself for the center, unsigned: the applet signs it.
    pub(super) fn attestation(&self, nonce: Nonce) -> SyncAttestation {
        SyncAttestation {
            device: self.device,
            nonce,
            balance: self.balance,
            counter: self.counter,
            load_seq: self.load_seq,
            unload_seq: self.unload_seq,
            synced_through: self.synced_through,
            next_log_seq: self.next_log_seq,
            last_sync_s: self.last_sync_s,
            clock_floor_s: self.clock_floor_s,
            payments_since_sync: u32::from(self.payments_since_sync),
            spent_since_sync: self.spent_since_sync(),
            blocked: self.blocked,
            entries_digest: SyncAttestation::entries_digest(&self.log, &self.unloads),
            signature: Signature([0; SIGNATURE_BYTES]),
        }
    }

    pub(super) fn select_info(&self, session: Nonce) -> SelectInfo {
        SelectInfo {
            protocol_version: PROTOCOL_VERSION,
            device: self.device,
            records: self.log.len() as u8,
            unacknowledged: self.unacknowledged() as u8,
            unloads: self.unloads.len() as u8,
            session,
        }
    }

    /// A tap session's nonce: a keyed hash of the card's free-running draw count, standing in
    /// for the secure element's true random number generator so that tests replay.
    pub(super) fn session_nonce(&self, draw: u64) -> Nonce {
        let secret = self.key.0.secret_bytes();
        let digest = sm3_parts(&[SESSION_DOMAIN, &secret, &draw.to_le_bytes()]);
        let mut nonce = [0u8; NONCE_BYTES];
        nonce.copy_from_slice(&digest[..NONCE_BYTES]);
        Nonce(nonce)
    }

    /// A nonce no one can predict and this card never repeats: a keyed hash of a sequence.
    pub(super) fn nonce(&self, challenge_seq: u32) -> Nonce {
        let secret = self.key.0.secret_bytes();
        let digest = sm3_parts(&[NONCE_DOMAIN, &secret, &challenge_seq.to_le_bytes()]);
        let mut nonce = [0u8; NONCE_BYTES];
        nonce.copy_from_slice(&digest[..NONCE_BYTES]);
        Nonce(nonce)
    }

    /// The card is not blocked and the phone's time is plausible: not before the last trusted
    /// time, and not more than the offline period after it.
    pub(super) fn check_can_transact(&self, time_s: u32) -> Result<(), OfflineError> {
        if self.blocked {
            return Err(OfflineError::DeviceBlocked);
        }
        if time_s < self.clock_floor_s {
            return Err(OfflineError::TimeBeforeSync {
                time_s,
                floor_s: self.clock_floor_s,
            });
        }
        let until_s = self.clock_floor_s.saturating_add(OFFLINE_PERIOD_MAX_S);
        if time_s > until_s {
            return Err(OfflineError::OfflinePeriodOver { time_s, until_s });
        }
        Ok(())
    }

    /// The balance after receiving `amount`, if the caps and the log allow it.
    pub(super) fn check_can_receive(&self, amount: Amount) -> Result<Amount, OfflineError> {
        let cap = self.caps.balance_cap;
        let balance = self
            .balance
            .checked_add(amount)
            .filter(|balance| *balance <= cap)
            .ok_or(OfflineError::BalanceCap {
                amount,
                cap,
                balance: self.balance,
            })?;
        if self.log.len() >= RECORDS_MAX {
            return Err(OfflineError::LogFull);
        }
        Ok(balance)
    }

    /// The spending-days table after paying `amount` on the day of `time_s`, if every cap, the
    /// balance and the log allow it.
    pub(super) fn check_can_pay(
        &self,
        amount: Amount,
        time_s: u32,
    ) -> Result<Vec<SpendingDay>, OfflineError> {
        let caps = &self.caps;
        if amount > caps.per_payment_cap {
            let cap = caps.per_payment_cap;
            return Err(OfflineError::PaymentCap { amount, cap });
        }
        if self.payments_since_sync >= caps.payments_before_sync {
            let payments = self.payments_since_sync;
            return Err(OfflineError::SyncRequired { payments });
        }
        let spent = self.spent_since_sync();
        if spent.fen().saturating_add(amount.fen()) > caps.spend_before_sync.fen() {
            let cap = caps.spend_before_sync;
            return Err(OfflineError::SpendCap { amount, cap, spent });
        }
        let day = china_day_of_seconds(time_s);
        let today = self.spent_on(day);
        if let Some(cap) = caps
            .daily_cap
            .filter(|cap| today.fen() + amount.fen() > cap.fen())
        {
            return Err(OfflineError::DailyCap {
                amount,
                cap,
                spent: today,
            });
        }
        if self.balance < amount {
            let balance = self.balance;
            return Err(OfflineError::InsufficientBalance { balance, amount });
        }
        if self.log.len() >= RECORDS_MAX {
            return Err(OfflineError::LogFull);
        }
        Ok(self.with_spent(day, Amount::from_fen(today.fen() + amount.fen())))
    }

    /// Paid so far on `day`.
    fn spent_on(&self, day: u32) -> Amount {
        self.spending_days
            .iter()
            .find(|entry| entry.day == day)
            .map_or(Amount::ZERO, |entry| entry.spent)
    }

    /// The spending-days table with `day` set to `spent`, in day order.
    fn with_spent(&self, day: u32, spent: Amount) -> Vec<SpendingDay> {
        let mut days: Vec<SpendingDay> = self
            .spending_days
            .iter()
            .filter(|entry| entry.day != day)
            .copied()
            .collect();
        let at = days.partition_point(|entry| entry.day < day);
        days.insert(at, SpendingDay { day, spent });
        debug_assert!(days.len() <= OFFLINE_DAYS_MAX);
        days
    }

    /// The spending-days table once the clock floor is `floor_s`: days before it can no longer
    /// be named by any accepted time.
    pub(super) fn spending_days_from(&self, floor_s: u32) -> Vec<SpendingDay> {
        let first = china_day_of_seconds(floor_s);
        self.spending_days
            .iter()
            .filter(|entry| entry.day >= first)
            .copied()
            .collect()
    }

    /// The balance after unloading `amount`, if the balance and the unload table allow it.
    pub(super) fn check_can_unload(&self, amount: Amount) -> Result<Amount, OfflineError> {
        if self.unloads.len() >= UNLOADS_PENDING_MAX {
            let max = UNLOADS_PENDING_MAX;
            return Err(OfflineError::UnloadsPending { max });
        }
        self.balance
            .checked_sub(amount)
            .filter(|balance| !balance.is_negative())
            .ok_or(OfflineError::InsufficientBalance {
                balance: self.balance,
                amount,
            })
    }

    pub(super) fn received(&self, payer: DeviceId, counter: u32) -> Option<&LogEntry> {
        self.log.iter().find(|entry| {
            let record = &entry.signed.record;
            entry.role == EntryRole::Received && record.payer == payer && record.counter == counter
        })
    }

    /// What every committed state satisfies; a violation means corrupted money, so it panics.
    /// Public for the fuzz targets, which check it after every APDU.
    #[doc(hidden)]
    pub fn assert_invariants(&self) {
        assert!(!self.balance.is_negative(), "negative SE balance");
        assert!(
            self.balance <= self.caps.balance_cap,
            "SE balance above its cap"
        );
        assert!(self.log.len() <= RECORDS_MAX, "record log overflow");
        assert!(self.challenges.recent.len() <= RECENT_CHALLENGES_MAX);
        assert!(self.verified.operators.len() <= OPERATOR_CERTS_CACHED_MAX);
        assert!(self.verified.devices.len() <= DEVICE_CERTS_CACHED_MAX);
        assert!(self.payments_since_sync <= self.caps.payments_before_sync);
        self.assert_spending_invariants();
        let seqs_ascending = self.log.windows(2).all(|pair| pair[0].seq < pair[1].seq);
        assert!(seqs_ascending, "record log out of order");
        assert!(self.log.iter().all(|entry| entry.seq < self.next_log_seq));
        assert!(self.log.iter().all(|entry| entry.seq > self.synced_through));
        self.assert_unload_invariants();
        let paid = self.log.iter().filter(|e| e.role == EntryRole::Paid);
        assert!(paid
            .clone()
            .all(|entry| entry.signed.record.counter <= self.counter));
        assert!(paid.count() >= usize::from(self.payments_since_sync));
    }

    fn assert_spending_invariants(&self) {
        let days = &self.spending_days;
        assert!(days.len() <= OFFLINE_DAYS_MAX, "spending days overflow");
        assert!(days.windows(2).all(|pair| pair[0].day < pair[1].day));
        let (first, last) = (
            china_day_of_seconds(self.clock_floor_s),
            china_day_of_seconds(self.clock_floor_s.saturating_add(OFFLINE_PERIOD_MAX_S)),
        );
        assert!(
            days.iter().all(|entry| (first..=last).contains(&entry.day)),
            "a spending day outside the offline period"
        );
        if let Some(cap) = self.caps.daily_cap {
            assert!(
                days.iter().all(|entry| entry.spent <= cap),
                "daily cap broken"
            );
        }
        assert!(
            self.spent_since_sync() <= self.caps.spend_before_sync,
            "spend-before-sync cap broken"
        );
    }

    fn assert_unload_invariants(&self) {
        assert!(
            self.unloads.len() <= UNLOADS_PENDING_MAX,
            "unload table overflow"
        );
        let ascending = self.unloads.windows(2).all(|pair| {
            pair[0].seq < pair[1].seq && pair[0].unload.unload_seq < pair[1].unload.unload_seq
        });
        assert!(ascending, "unload table out of order");
        for entry in &self.unloads {
            assert!(entry.seq > self.synced_through && entry.seq < self.next_log_seq);
            assert!(entry.unload.unload_seq <= self.unload_seq);
            assert_eq!(
                entry.unload.device, self.device,
                "an unload for another device"
            );
            assert!(self.log.iter().all(|record| record.seq != entry.seq));
        }
    }

    pub(super) fn paid_challenge(&self, challenge: &Challenge) -> bool {
        self.log.iter().any(|entry| {
            let record = &entry.signed.record;
            entry.role == EntryRole::Paid
                && record.payee == challenge.payee
                && record.nonce == challenge.nonce
        })
    }
}

fn nvm_bytes_scalars() -> usize {
    let key = 32;
    let root = 33;
    let device_and_caps = 8 + 35;
    let counters = 8 + 4 + 2 + 4 + 4 + 4 + 4 + 4 + 4 + 4 + 1;
    let outstanding_challenge = 1 + CHALLENGE_BYTES;
    key + root + device_and_caps + counters + outstanding_challenge
}

fn nvm_bytes_fixed(device_cert: &CompactCertificate, operator_cert: &CompactCertificate) -> usize {
    nvm_bytes_scalars() + device_cert.encoded_len() + operator_cert.encoded_len()
}
