//! The dual-offline messages as they cross NFC inside APDU data fields: fixed-layout fields in
//! the crate's codec, every size known in advance so each message fits short APDUs. Signed
//! payloads are SM3 digests over a domain tag and the encoded fields, so no signature made for
//! one message verifies as another.

use crate::amount::Amount;
use crate::certs::device::CompactCertificate;
use crate::certs::{sm3_parts, KeyPair, PublicKey, Signature};
use crate::codec::{DecodeError, Reader, Writer};
use crate::ids::DeviceId;

pub const NONCE_BYTES: usize = 16;
pub const SIGNATURE_BYTES: usize = 64;
pub const CHALLENGE_BYTES: usize = 8 + NONCE_BYTES + 8 + 4 + 8 + NONCE_BYTES;
pub const CHALLENGE_OFFER_BYTES: usize = CHALLENGE_BYTES + SIGNATURE_BYTES;
pub const RECORD_BYTES: usize = 8 + 4 + 8 + NONCE_BYTES + 8 + 4;
pub const SIGNED_RECORD_BYTES: usize = RECORD_BYTES + SIGNATURE_BYTES;
pub const LOG_ENTRY_BYTES: usize = 4 + 1 + 1 + SIGNED_RECORD_BYTES + 33;
pub const SIGNED_UNLOAD_BYTES: usize = 8 + 4 + 8 + 4 + SIGNATURE_BYTES;
pub const UNLOAD_ENTRY_BYTES: usize = 4 + SIGNED_UNLOAD_BYTES;
pub const SYNC_ATTESTATION_BYTES: usize =
    8 + NONCE_BYTES + 8 + 4 * 8 + 8 + 1 + 32 + SIGNATURE_BYTES;

const RECORD_DOMAIN: &[u8] = b"ecny.offline.payment-record.v1";
const RECEIPT_DOMAIN: &[u8] = b"ecny.offline.receipt.v1";
const LOAD_DOMAIN: &[u8] = b"ecny.offline.load.v1";
const SYNC_DOMAIN: &[u8] = b"ecny.offline.sync.v1";
const UNLOAD_DOMAIN: &[u8] = b"ecny.offline.unload.v1";
const CHALLENGE_DOMAIN: &[u8] = b"ecny.offline.challenge.v1";
const ATTESTATION_DOMAIN: &[u8] = b"ecny.offline.sync-attestation.v1";
const ENTRIES_DOMAIN: &[u8] = b"ecny.offline.sync-entries.v1";

/// A fixed-layout message: encoded into and decoded from the crate's field codec.
pub trait Wire: Sized {
    fn encode_into(&self, writer: &mut Writer);
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError>;

    fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::new();
        self.encode_into(&mut writer);
        writer.bytes
    }

    /// Decodes exactly one message; bytes left over are an error.
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        let message = Self::decode_from(&mut reader)?;
        if !reader.is_empty() {
            return Err(DecodeError {
                what: "bytes after the message",
                offset: reader.offset(),
            });
        }
        Ok(message)
    }
}

/// A fresh value no one else can predict: a payee's challenge, a card's tap session, the
/// center's sync nonce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nonce(pub [u8; NONCE_BYTES]);

impl Wire for Nonce {
    fn encode_into(&self, writer: &mut Writer) {
        writer.raw(&self.0);
    }

    fn decode_from(reader: &mut Reader<'_>) -> Result<Nonce, DecodeError> {
        Ok(Nonce(reader.array("nonce")?))
    }
}

/// What the payee's secure element asks to be paid, signed by it: an amount against a fresh
/// nonce, for one payer in one tap (the payer's session nonce from its SELECT answer), so a
/// challenge made for another card or another tap is refused by the payer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Challenge {
    pub payee: DeviceId,
    pub nonce: Nonce,
    pub amount: Amount,
    /// The payee phone's clock; the payer's clock must agree within a few minutes.
    pub time_s: u32,
    pub payer: DeviceId,
    pub payer_session: Nonce,
}

impl Challenge {
    /// What the payee's secure element signs.
    pub fn digest(&self) -> [u8; 32] {
        sm3_parts(&[CHALLENGE_DOMAIN, &self.encode()])
    }
}

impl Wire for Challenge {
    fn encode_into(&self, writer: &mut Writer) {
        writer.u64(self.payee.0).raw(&self.nonce.0);
        writer.i64(self.amount.fen()).u32(self.time_s);
        writer.u64(self.payer.0).raw(&self.payer_session.0);
    }

    fn decode_from(reader: &mut Reader<'_>) -> Result<Challenge, DecodeError> {
        Ok(Challenge {
            payee: DeviceId(reader.u64("challenge payee")?),
            nonce: Nonce(reader.array("challenge nonce")?),
            amount: Amount::from_fen(reader.i64("challenge amount")?),
            time_s: reader.u32("challenge time")?,
            payer: DeviceId(reader.u64("challenge payer")?),
            payer_session: Nonce(reader.array("challenge payer session")?),
        })
    }
}

/// What the payer's secure element signs: the proof that value left it, once, for this payee.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PaymentRecord {
    pub payer: DeviceId,
    /// The payer's transaction counter after this payment; a clone reuses it.
    pub counter: u32,
    pub payee: DeviceId,
    pub nonce: Nonce,
    pub amount: Amount,
    pub time_s: u32,
}

impl PaymentRecord {
    pub fn digest(&self) -> [u8; 32] {
        sm3_parts(&[RECORD_DOMAIN, &self.encode()])
    }

    /// What the payee's secure element signs to acknowledge that it credited this record.
    pub fn receipt_digest(&self) -> [u8; 32] {
        sm3_parts(&[RECEIPT_DOMAIN, &self.encode()])
    }
}

impl Wire for PaymentRecord {
    fn encode_into(&self, writer: &mut Writer) {
        writer.u64(self.payer.0).u32(self.counter).u64(self.payee.0);
        writer
            .raw(&self.nonce.0)
            .i64(self.amount.fen())
            .u32(self.time_s);
    }

    fn decode_from(reader: &mut Reader<'_>) -> Result<PaymentRecord, DecodeError> {
        Ok(PaymentRecord {
            payer: DeviceId(reader.u64("record payer")?),
            counter: reader.u32("record counter")?,
            payee: DeviceId(reader.u64("record payee")?),
            nonce: Nonce(reader.array("record nonce")?),
            amount: Amount::from_fen(reader.i64("record amount")?),
            time_s: reader.u32("record time")?,
        })
    }
}

/// A payment record with the payer's signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SignedRecord {
    pub record: PaymentRecord,
    pub signature: Signature,
}

impl Wire for SignedRecord {
    fn encode_into(&self, writer: &mut Writer) {
        self.record.encode_into(writer);
        writer.raw(&self.signature.0);
    }

    fn decode_from(reader: &mut Reader<'_>) -> Result<SignedRecord, DecodeError> {
        Ok(SignedRecord {
            record: PaymentRecord::decode_from(reader)?,
            signature: Signature(reader.array("record signature")?),
        })
    }
}

/// Which side of a payment a log entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryRole {
    Paid,
    Received,
}

/// One record kept by a secure element until the center confirms it at sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LogEntry {
    /// Position in this secure element's log; sync confirmations refer to it.
    pub seq: u32,
    pub role: EntryRole,
    pub signed: SignedRecord,
    /// The other side's key: the payee's, to check its receipt; the payer's, for the center.
    pub peer_key: PublicKey,
    /// A paid record stays unacknowledged until the payee's receipt arrives.
    pub acknowledged: bool,
}

impl Wire for LogEntry {
    fn encode_into(&self, writer: &mut Writer) {
        let role = match self.role {
            EntryRole::Paid => 0,
            EntryRole::Received => 1,
        };
        writer
            .u32(self.seq)
            .u8(role)
            .u8(u8::from(self.acknowledged));
        self.signed.encode_into(writer);
        writer.raw(&self.peer_key.0);
    }

    fn decode_from(reader: &mut Reader<'_>) -> Result<LogEntry, DecodeError> {
        let seq = reader.u32("entry seq")?;
        let role_at = reader.offset();
        let role = match reader.u8("entry role")? {
            0 => EntryRole::Paid,
            1 => EntryRole::Received,
            _ => {
                return Err(DecodeError {
                    what: "entry role",
                    offset: role_at,
                })
            }
        };
        Ok(LogEntry {
            seq,
            role,
            acknowledged: reader.bool("entry acknowledged")?,
            signed: SignedRecord::decode_from(reader)?,
            peer_key: PublicKey(reader.array("entry peer key")?),
        })
    }
}

/// The payee phone's REQUEST PAYMENT: amount, the phone's clock (the card has none), and the
/// payer and its session nonce as the payer's SELECT answered them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaymentRequest {
    pub amount: Amount,
    pub time_s: u32,
    pub payer: DeviceId,
    pub payer_session: Nonce,
}

impl Wire for PaymentRequest {
    fn encode_into(&self, writer: &mut Writer) {
        writer.i64(self.amount.fen()).u32(self.time_s);
        writer.u64(self.payer.0).raw(&self.payer_session.0);
    }

    fn decode_from(reader: &mut Reader<'_>) -> Result<PaymentRequest, DecodeError> {
        Ok(PaymentRequest {
            amount: Amount::from_fen(reader.i64("request amount")?),
            time_s: reader.u32("request time")?,
            payer: DeviceId(reader.u64("request payer")?),
            payer_session: Nonce(reader.array("request payer session")?),
        })
    }
}

/// The payee's answer to REQUEST PAYMENT: its challenge, signed by its device key. The phone
/// reads the payee's certificates with GET DATA; the payer checks the signature under them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChallengeOffer {
    pub challenge: Challenge,
    pub signature: Signature,
}

impl ChallengeOffer {
    pub fn verify(&self, payee_key: &PublicKey) -> bool {
        payee_key
            .verify(&self.challenge.digest(), &self.signature)
            .is_ok()
    }
}

impl Wire for ChallengeOffer {
    fn encode_into(&self, writer: &mut Writer) {
        self.challenge.encode_into(writer);
        writer.raw(&self.signature.0);
    }

    fn decode_from(reader: &mut Reader<'_>) -> Result<ChallengeOffer, DecodeError> {
        Ok(ChallengeOffer {
            challenge: Challenge::decode_from(reader)?,
            signature: Signature(reader.array("challenge signature")?),
        })
    }
}

/// PAY, to the payer's secure element: the payee's signed challenge and certificate chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayCommand {
    pub time_s: u32,
    pub offer: ChallengeOffer,
    pub payee_device_cert: CompactCertificate,
    pub payee_operator_cert: CompactCertificate,
}

impl Wire for PayCommand {
    fn encode_into(&self, writer: &mut Writer) {
        writer.u32(self.time_s);
        self.offer.encode_into(writer);
        self.payee_device_cert.encode_into(writer);
        self.payee_operator_cert.encode_into(writer);
    }

    fn decode_from(reader: &mut Reader<'_>) -> Result<PayCommand, DecodeError> {
        Ok(PayCommand {
            time_s: reader.u32("pay time")?,
            offer: ChallengeOffer::decode_from(reader)?,
            payee_device_cert: CompactCertificate::decode_from(reader)?,
            payee_operator_cert: CompactCertificate::decode_from(reader)?,
        })
    }
}

/// RECEIVE, to the payee's secure element: the payer's signed record and certificate chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceiveCommand {
    pub time_s: u32,
    pub signed: SignedRecord,
    pub payer_device_cert: CompactCertificate,
    pub payer_operator_cert: CompactCertificate,
}

impl Wire for ReceiveCommand {
    fn encode_into(&self, writer: &mut Writer) {
        writer.u32(self.time_s);
        self.signed.encode_into(writer);
        self.payer_device_cert.encode_into(writer);
        self.payer_operator_cert.encode_into(writer);
    }

    fn decode_from(reader: &mut Reader<'_>) -> Result<ReceiveCommand, DecodeError> {
        Ok(ReceiveCommand {
            time_s: reader.u32("receive time")?,
            signed: SignedRecord::decode_from(reader)?,
            payer_device_cert: CompactCertificate::decode_from(reader)?,
            payer_operator_cert: CompactCertificate::decode_from(reader)?,
        })
    }
}

/// ACKNOWLEDGE, to the payer's secure element: the payee's receipt for one of its records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acknowledgement {
    pub counter: u32,
    pub receipt: Signature,
}

impl Wire for Acknowledgement {
    fn encode_into(&self, writer: &mut Writer) {
        writer.u32(self.counter).raw(&self.receipt.0);
    }

    fn decode_from(reader: &mut Reader<'_>) -> Result<Acknowledgement, DecodeError> {
        Ok(Acknowledgement {
            counter: reader.u32("acknowledged counter")?,
            receipt: Signature(reader.array("receipt")?),
        })
    }
}

/// The digest of a [`SyncAttestation`]: what an operator's order names to bind it to the card
/// state the card attested in the same session.
pub type AttestationDigest = [u8; 32];

/// The operator's order to move value from the holder's online wallet into the secure element;
/// `load_seq` numbers loads so that none is applied twice, and `attestation` names the card
/// state the order was issued for (the card's attestation of this session), so a card copied
/// from an older image, in another state, cannot apply its original's later loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadAuthorization {
    pub device: DeviceId,
    pub load_seq: u32,
    pub amount: Amount,
    pub attestation: AttestationDigest,
    pub signature: Signature,
}

impl LoadAuthorization {
    pub fn sign(
        (device, load_seq, amount): (DeviceId, u32, Amount),
        attestation: &AttestationDigest,
        operator: &KeyPair,
    ) -> Self {
        let mut load = LoadAuthorization {
            device,
            load_seq,
            amount,
            attestation: *attestation,
            signature: Signature([0; SIGNATURE_BYTES]),
        };
        load.signature = operator.sign(&load.digest());
        load
    }

    pub fn digest(&self) -> [u8; 32] {
        let mut writer = Writer::new();
        self.encode_fields(&mut writer);
        sm3_parts(&[LOAD_DOMAIN, &writer.bytes])
    }

    fn encode_fields(&self, writer: &mut Writer) {
        writer.u64(self.device.0).u32(self.load_seq);
        writer.i64(self.amount.fen()).raw(&self.attestation);
    }
}

impl Wire for LoadAuthorization {
    fn encode_into(&self, writer: &mut Writer) {
        self.encode_fields(writer);
        writer.raw(&self.signature.0);
    }

    fn decode_from(reader: &mut Reader<'_>) -> Result<LoadAuthorization, DecodeError> {
        Ok(LoadAuthorization {
            device: DeviceId(reader.u64("load device")?),
            load_seq: reader.u32("load seq")?,
            amount: Amount::from_fen(reader.i64("load amount")?),
            attestation: reader.array("load attestation")?,
            signature: Signature(reader.array("load signature")?),
        })
    }
}

/// The operator's word, after the center booked the card's attested sync, that the secure
/// element's log entries up to `through_seq` are settled; `time_s` is trusted time from the
/// center, and `attestation` the attestation it answers: the card applies it only in the
/// session that made that attestation, so no other copy of the card can use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncConfirmation {
    pub device: DeviceId,
    pub through_seq: u32,
    pub time_s: u32,
    pub attestation: AttestationDigest,
    pub signature: Signature,
}

impl SyncConfirmation {
    pub fn sign(
        (device, through_seq, time_s): (DeviceId, u32, u32),
        attestation: &AttestationDigest,
        operator: &KeyPair,
    ) -> Self {
        let mut sync = SyncConfirmation {
            device,
            through_seq,
            time_s,
            attestation: *attestation,
            signature: Signature([0; SIGNATURE_BYTES]),
        };
        sync.signature = operator.sign(&sync.digest());
        sync
    }

    pub fn digest(&self) -> [u8; 32] {
        let mut writer = Writer::new();
        self.encode_fields(&mut writer);
        sm3_parts(&[SYNC_DOMAIN, &writer.bytes])
    }

    fn encode_fields(&self, writer: &mut Writer) {
        writer
            .u64(self.device.0)
            .u32(self.through_seq)
            .u32(self.time_s)
            .raw(&self.attestation);
    }
}

impl Wire for SyncConfirmation {
    fn encode_into(&self, writer: &mut Writer) {
        self.encode_fields(writer);
        writer.raw(&self.signature.0);
    }

    fn decode_from(reader: &mut Reader<'_>) -> Result<SyncConfirmation, DecodeError> {
        Ok(SyncConfirmation {
            device: DeviceId(reader.u64("sync device")?),
            through_seq: reader.u32("sync through")?,
            time_s: reader.u32("sync time")?,
            attestation: reader.array("sync attestation")?,
            signature: Signature(reader.array("sync signature")?),
        })
    }
}

/// ATTEST SYNC's answer: the secure element's signed account of itself over the center's fresh
/// nonce — its balance, counters, spending since its last sync, and a digest binding every log
/// entry and unload it keeps. The phone carries it to the center with those entries; it cannot
/// leave one out, add one, change a flag or reuse an old account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncAttestation {
    pub device: DeviceId,
    pub nonce: Nonce,
    pub balance: Amount,
    pub counter: u32,
    pub load_seq: u32,
    pub unload_seq: u32,
    /// The entries reported are exactly those numbered after `synced_through` and before
    /// `next_log_seq`.
    pub synced_through: u32,
    pub next_log_seq: u32,
    /// Trusted time of the last sync confirmation the card applied.
    pub last_sync_s: u32,
    /// The card's clock floor: the latest trusted time it knows.
    pub clock_floor_s: u32,
    pub payments_since_sync: u32,
    pub spent_since_sync: Amount,
    pub blocked: bool,
    pub entries_digest: [u8; 32],
    pub signature: Signature,
}

impl SyncAttestation {
    /// SM3 over the domain tag and every field but the signature: what the card signs, and
    /// what the operator's orders name.
    pub fn digest(&self) -> AttestationDigest {
        let mut writer = Writer::new();
        self.encode_fields(&mut writer);
        sm3_parts(&[ATTESTATION_DOMAIN, &writer.bytes])
    }

    pub fn verify(&self, device_key: &PublicKey) -> bool {
        device_key.verify(&self.digest(), &self.signature).is_ok()
    }

    /// The digest binding a card's log entries and unloads, in log order.
    pub fn entries_digest(log: &[LogEntry], unloads: &[UnloadEntry]) -> [u8; 32] {
        let mut writer = Writer::with_capacity(
            8 + log.len() * LOG_ENTRY_BYTES + unloads.len() * UNLOAD_ENTRY_BYTES,
        );
        writer.u32(log.len() as u32);
        for entry in log {
            entry.encode_into(&mut writer);
        }
        writer.u32(unloads.len() as u32);
        for entry in unloads {
            entry.encode_into(&mut writer);
        }
        sm3_parts(&[ENTRIES_DOMAIN, &writer.bytes])
    }

    fn encode_fields(&self, writer: &mut Writer) {
        writer.u64(self.device.0).raw(&self.nonce.0);
        writer.i64(self.balance.fen()).u32(self.counter);
        writer.u32(self.load_seq).u32(self.unload_seq);
        writer.u32(self.synced_through).u32(self.next_log_seq);
        writer.u32(self.last_sync_s).u32(self.clock_floor_s);
        writer.u32(self.payments_since_sync);
        writer.i64(self.spent_since_sync.fen());
        writer.u8(u8::from(self.blocked)).raw(&self.entries_digest);
    }
}

impl Wire for SyncAttestation {
    fn encode_into(&self, writer: &mut Writer) {
        self.encode_fields(writer);
        writer.raw(&self.signature.0);
    }

    fn decode_from(reader: &mut Reader<'_>) -> Result<SyncAttestation, DecodeError> {
        Ok(SyncAttestation {
            device: DeviceId(reader.u64("attested device")?),
            nonce: Nonce(reader.array("attested nonce")?),
            balance: Amount::from_fen(reader.i64("attested balance")?),
            counter: reader.u32("attested counter")?,
            load_seq: reader.u32("attested load seq")?,
            unload_seq: reader.u32("attested unload seq")?,
            synced_through: reader.u32("attested synced through")?,
            next_log_seq: reader.u32("attested next log seq")?,
            last_sync_s: reader.u32("attested last sync")?,
            clock_floor_s: reader.u32("attested clock floor")?,
            payments_since_sync: reader.u32("attested payments since sync")?,
            spent_since_sync: Amount::from_fen(reader.i64("attested spent since sync")?),
            blocked: reader.bool("attested blocked")?,
            entries_digest: reader.array("attested entries digest")?,
            signature: Signature(reader.array("attestation signature")?),
        })
    }
}

/// What the phone hands the center at sync: the card's attestation and the entries it binds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttestedSync {
    pub attestation: SyncAttestation,
    pub log: Vec<LogEntry>,
    pub unloads: Vec<UnloadEntry>,
}

impl AttestedSync {
    /// Whether the entries are the ones the attestation binds.
    pub fn entries_match(&self) -> bool {
        SyncAttestation::entries_digest(&self.log, &self.unloads) == self.attestation.entries_digest
    }
}

impl Wire for AttestedSync {
    fn encode_into(&self, writer: &mut Writer) {
        self.attestation.encode_into(writer);
        writer.u8(self.log.len() as u8);
        for entry in &self.log {
            entry.encode_into(writer);
        }
        writer.u8(self.unloads.len() as u8);
        for entry in &self.unloads {
            entry.encode_into(writer);
        }
    }

    /// Refuses more entries than a card can keep.
    fn decode_from(reader: &mut Reader<'_>) -> Result<AttestedSync, DecodeError> {
        use crate::offline::card::{RECORDS_MAX, UNLOADS_PENDING_MAX};
        let attestation = SyncAttestation::decode_from(reader)?;
        let count_at = reader.offset();
        let count = usize::from(reader.u8("log entry count")?);
        if count > RECORDS_MAX {
            return Err(DecodeError {
                what: "log entry count",
                offset: count_at,
            });
        }
        let log = (0..count)
            .map(|_| LogEntry::decode_from(reader))
            .collect::<Result<Vec<_>, _>>()?;
        let count_at = reader.offset();
        let count = usize::from(reader.u8("unload entry count")?);
        if count > UNLOADS_PENDING_MAX {
            return Err(DecodeError {
                what: "unload entry count",
                offset: count_at,
            });
        }
        let unloads = (0..count)
            .map(|_| UnloadEntry::decode_from(reader))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AttestedSync {
            attestation,
            log,
            unloads,
        })
    }
}

/// UNLOAD, to the secure element: move `amount` back to the holder's online wallet as unload
/// number `unload_seq`, so a retried command never unloads twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnloadCommand {
    pub unload_seq: u32,
    pub amount: Amount,
    pub time_s: u32,
}

impl Wire for UnloadCommand {
    fn encode_into(&self, writer: &mut Writer) {
        writer.u32(self.unload_seq).i64(self.amount.fen());
        writer.u32(self.time_s);
    }

    fn decode_from(reader: &mut Reader<'_>) -> Result<UnloadCommand, DecodeError> {
        Ok(UnloadCommand {
            unload_seq: reader.u32("unload seq")?,
            amount: Amount::from_fen(reader.i64("unload amount")?),
            time_s: reader.u32("unload time")?,
        })
    }
}

/// The secure element's proof that it debited `amount` for its online wallet: the center
/// credits the wallet once per (`device`, `unload_seq`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SignedUnload {
    pub device: DeviceId,
    pub unload_seq: u32,
    pub amount: Amount,
    pub time_s: u32,
    /// The device key's signature over [`SignedUnload::digest`].
    pub signature: Signature,
}

impl SignedUnload {
    pub fn sign(
        device: DeviceId,
        unload_seq: u32,
        (amount, time_s): (Amount, u32),
        device_key: &KeyPair,
    ) -> SignedUnload {
        let mut unload = SignedUnload {
            device,
            unload_seq,
            amount,
            time_s,
            signature: Signature([0; SIGNATURE_BYTES]),
        };
        unload.signature = device_key.sign(&unload.digest());
        unload
    }

    /// SM3 over the domain tag and every field but the signature.
    pub fn digest(&self) -> [u8; 32] {
        let mut writer = Writer::new();
        self.encode_fields(&mut writer);
        sm3_parts(&[UNLOAD_DOMAIN, &writer.bytes])
    }

    pub fn verify(&self, device_key: &PublicKey) -> bool {
        device_key.verify(&self.digest(), &self.signature).is_ok()
    }

    fn encode_fields(&self, writer: &mut Writer) {
        writer.u64(self.device.0).u32(self.unload_seq);
        writer.i64(self.amount.fen()).u32(self.time_s);
    }
}

impl Wire for SignedUnload {
    fn encode_into(&self, writer: &mut Writer) {
        self.encode_fields(writer);
        writer.raw(&self.signature.0);
    }

    fn decode_from(reader: &mut Reader<'_>) -> Result<SignedUnload, DecodeError> {
        Ok(SignedUnload {
            device: DeviceId(reader.u64("unload device")?),
            unload_seq: reader.u32("unload seq")?,
            amount: Amount::from_fen(reader.i64("unload amount")?),
            time_s: reader.u32("unload time")?,
            signature: Signature(reader.array("unload signature")?),
        })
    }
}

/// A signed unload kept by the secure element until a sync confirmation covers `seq`; its
/// `seq` shares the numbering of the record log, so one confirmation clears both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UnloadEntry {
    pub seq: u32,
    pub unload: SignedUnload,
}

impl Wire for UnloadEntry {
    fn encode_into(&self, writer: &mut Writer) {
        writer.u32(self.seq);
        self.unload.encode_into(writer);
    }

    fn decode_from(reader: &mut Reader<'_>) -> Result<UnloadEntry, DecodeError> {
        Ok(UnloadEntry {
            seq: reader.u32("unload entry seq")?,
            unload: SignedUnload::decode_from(reader)?,
        })
    }
}

/// The applet's answer to SELECT: enough for the phone to plan the tap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SelectInfo {
    pub protocol_version: u8,
    pub device: DeviceId,
    pub records: u8,
    /// Paid records still waiting for the payee's receipt; the phone re-presents them.
    pub unacknowledged: u8,
    /// Signed unloads not yet confirmed by the center; the phone delivers them when online.
    pub unloads: u8,
    /// This tap's session: fresh at every power-up; a payer pays only challenges made for it.
    pub session: Nonce,
}

impl Wire for SelectInfo {
    fn encode_into(&self, writer: &mut Writer) {
        writer.u8(self.protocol_version).u64(self.device.0);
        writer
            .u8(self.records)
            .u8(self.unacknowledged)
            .u8(self.unloads);
        writer.raw(&self.session.0);
    }

    fn decode_from(reader: &mut Reader<'_>) -> Result<SelectInfo, DecodeError> {
        Ok(SelectInfo {
            protocol_version: reader.u8("protocol version")?,
            device: DeviceId(reader.u64("device")?),
            records: reader.u8("records")?,
            unacknowledged: reader.u8("unacknowledged")?,
            unloads: reader.u8("unloads")?,
            session: Nonce(reader.array("session")?),
        })
    }
}

/// GET DATA "state": the figures a wallet app shows and the center checks at sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeSummary {
    pub device: DeviceId,
    pub balance: Amount,
    pub counter: u32,
    pub payments_since_sync: u16,
    pub records: u8,
    pub unacknowledged: u8,
    pub load_seq: u32,
    pub unload_seq: u32,
    pub synced_through: u32,
    /// Trusted time of the last sync confirmation applied: every challenge older is retired.
    pub last_sync_s: u32,
    pub revocation_version: u32,
    pub blocked: bool,
    pub next_log_seq: u32,
    /// Paid since the last sync confirmation, against the card's spend-before-sync cap.
    pub spent_since_sync: Amount,
}

impl Wire for SeSummary {
    fn encode_into(&self, writer: &mut Writer) {
        writer
            .u64(self.device.0)
            .i64(self.balance.fen())
            .u32(self.counter);
        writer
            .u16(self.payments_since_sync)
            .u8(self.records)
            .u8(self.unacknowledged);
        writer
            .u32(self.load_seq)
            .u32(self.unload_seq)
            .u32(self.synced_through)
            .u32(self.last_sync_s);
        writer
            .u32(self.revocation_version)
            .u8(u8::from(self.blocked));
        writer
            .u32(self.next_log_seq)
            .i64(self.spent_since_sync.fen());
    }

    fn decode_from(reader: &mut Reader<'_>) -> Result<SeSummary, DecodeError> {
        Ok(SeSummary {
            device: DeviceId(reader.u64("device")?),
            balance: Amount::from_fen(reader.i64("balance")?),
            counter: reader.u32("counter")?,
            payments_since_sync: reader.u16("payments since sync")?,
            records: reader.u8("records")?,
            unacknowledged: reader.u8("unacknowledged")?,
            load_seq: reader.u32("load seq")?,
            unload_seq: reader.u32("unload seq")?,
            synced_through: reader.u32("synced through")?,
            last_sync_s: reader.u32("last sync")?,
            revocation_version: reader.u32("revocation version")?,
            blocked: reader.bool("blocked")?,
            next_log_seq: reader.u32("next log seq")?,
            spent_since_sync: Amount::from_fen(reader.i64("spent since sync")?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> PaymentRecord {
        PaymentRecord {
            payer: DeviceId(1),
            counter: 7,
            payee: DeviceId(2),
            nonce: Nonce([9; NONCE_BYTES]),
            amount: Amount::from_fen(6_660),
            time_s: 1_700_000_000,
        }
    }

    #[test]
    fn sizes_are_what_the_apdu_plan_assumes() {
        let challenge = Challenge {
            payee: DeviceId(2),
            nonce: Nonce([1; NONCE_BYTES]),
            amount: Amount::from_fen(6_660),
            time_s: 5,
            payer: DeviceId(1),
            payer_session: Nonce([4; NONCE_BYTES]),
        };
        assert_eq!(challenge.encode().len(), CHALLENGE_BYTES);
        let offer = ChallengeOffer {
            challenge,
            signature: Signature([5; SIGNATURE_BYTES]),
        };
        assert_eq!(offer.encode().len(), CHALLENGE_OFFER_BYTES);
        assert_eq!(record().encode().len(), RECORD_BYTES);
        let signed = SignedRecord {
            record: record(),
            signature: Signature([3; SIGNATURE_BYTES]),
        };
        assert_eq!(signed.encode().len(), SIGNED_RECORD_BYTES);
        let entry = LogEntry {
            seq: 1,
            role: EntryRole::Paid,
            signed,
            peer_key: PublicKey([2; 33]),
            acknowledged: false,
        };
        assert_eq!(entry.encode().len(), LOG_ENTRY_BYTES);
        assert_eq!(LogEntry::decode(&entry.encode()), Ok(entry));
        assert_eq!(SignedRecord::decode(&signed.encode()), Ok(signed));
    }

    fn unload() -> SignedUnload {
        let key = KeyPair::from_seed(b"device");
        SignedUnload::sign(DeviceId(5), 3, (Amount::from_yuan(40), 1_700_000_000), &key)
    }

    #[test]
    fn a_signed_unload_round_trips_and_binds_every_field() {
        let unload = unload();
        let bytes = unload.encode();
        assert_eq!(bytes.len(), SIGNED_UNLOAD_BYTES);
        assert_eq!(SignedUnload::decode(&bytes), Ok(unload));
        let key = KeyPair::from_seed(b"device").public_key();
        assert!(unload.verify(&key));
        let mut more = unload;
        more.amount = Amount::from_yuan(41);
        assert!(!more.verify(&key));
        let mut later = unload;
        later.unload_seq += 1;
        assert!(!later.verify(&key));
        let entry = UnloadEntry { seq: 9, unload };
        assert_eq!(entry.encode().len(), UNLOAD_ENTRY_BYTES);
        assert_eq!(UnloadEntry::decode(&entry.encode()), Ok(entry));
        let load = LoadAuthorization {
            device: DeviceId(5),
            load_seq: 3,
            amount: Amount::from_yuan(40),
            attestation: [0; 32],
            signature: unload.signature,
        };
        assert_ne!(
            load.digest(),
            unload.digest(),
            "domains keep messages apart"
        );
    }

    #[test]
    fn record_and_receipt_digests_differ() {
        assert_ne!(record().digest(), record().receipt_digest());
        let mut other = record();
        other.counter += 1;
        assert_ne!(record().digest(), other.digest());
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = record().encode();
        bytes.push(0);
        assert!(PaymentRecord::decode(&bytes).is_err());
        assert!(PaymentRecord::decode(&bytes[..RECORD_BYTES - 1]).is_err());
    }

    #[test]
    fn operator_orders_verify_with_the_operator_key() {
        let operator = KeyPair::from_seed(b"operator");
        let attested = [8; 32];
        let load = LoadAuthorization::sign(
            (DeviceId(5), 1, Amount::from_yuan(100)),
            &attested,
            &operator,
        );
        assert_eq!(LoadAuthorization::decode(&load.encode()), Ok(load));
        assert!(operator
            .public_key()
            .verify(&load.digest(), &load.signature)
            .is_ok());
        let mut elsewhere = load;
        elsewhere.attestation[0] ^= 1;
        assert_ne!(
            elsewhere.digest(),
            load.digest(),
            "the card state is signed"
        );
        let sync = SyncConfirmation::sign((DeviceId(5), 3, 1_700_000_000), &attested, &operator);
        assert_ne!(sync.digest(), unload().digest());
        assert_eq!(SyncConfirmation::decode(&sync.encode()), Ok(sync));
        assert_ne!(load.digest(), sync.digest());
    }

    fn attested_sync() -> (AttestedSync, KeyPair) {
        let key = KeyPair::from_seed(b"device");
        let entry = LogEntry {
            seq: 3,
            role: EntryRole::Paid,
            signed: SignedRecord {
                record: record(),
                signature: key.sign(&record().digest()),
            },
            peer_key: KeyPair::from_seed(b"payee").public_key(),
            acknowledged: true,
        };
        let unloads = vec![UnloadEntry {
            seq: 4,
            unload: unload(),
        }];
        let mut attestation = SyncAttestation {
            device: DeviceId(1),
            nonce: Nonce([6; NONCE_BYTES]),
            balance: Amount::from_yuan(10),
            counter: 7,
            load_seq: 1,
            unload_seq: 3,
            synced_through: 2,
            next_log_seq: 5,
            last_sync_s: 1_700_000_000,
            clock_floor_s: 1_700_000_000,
            payments_since_sync: 1,
            spent_since_sync: Amount::from_fen(6_660),
            blocked: false,
            entries_digest: SyncAttestation::entries_digest(&[entry], &unloads),
            signature: Signature([0; SIGNATURE_BYTES]),
        };
        attestation.signature = key.sign(&attestation.digest());
        let sync = AttestedSync {
            attestation,
            log: vec![entry],
            unloads,
        };
        (sync, key)
    }

    #[test]
    fn an_attested_sync_binds_every_entry_and_flag() {
        let (sync, key) = attested_sync();
        assert_eq!(sync.attestation.encode().len(), SYNC_ATTESTATION_BYTES);
        assert!(sync.attestation.verify(&key.public_key()));
        assert!(sync.entries_match());
        assert_eq!(AttestedSync::decode(&sync.encode()), Ok(sync.clone()));
        let mut omitted = sync.clone();
        omitted.log.clear();
        assert!(!omitted.entries_match());
        let mut unacknowledged = sync.clone();
        unacknowledged.log[0].acknowledged = false;
        assert!(!unacknowledged.entries_match());
        let mut later = sync.attestation;
        later.last_sync_s = u32::MAX;
        assert!(!later.verify(&key.public_key()));
        let mut too_many = sync.encode();
        too_many[SYNC_ATTESTATION_BYTES] = 65;
        assert!(AttestedSync::decode(&too_many).is_err());
    }
}
