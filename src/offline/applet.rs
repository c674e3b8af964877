//! The secure-element applet of a hardware wallet, emulated faithfully.
//!
//! All state lives in persistent memory ([`PersistentState`] inside an [`Nvm`]) and is reached
//! only through [`Applet::process`]: APDU bytes in, response APDU bytes out. Every command that
//! changes state checks everything first, then makes all its writes inside one atomic
//! transaction, so a power cut at any write leaves the pre-command state after power-up. The
//! card has no clock: commands carry the phone's time, which may never go below the last
//! trusted time the card learnt at sync, nor more than [`OFFLINE_PERIOD_MAX_S`] past it. A tap
//! is one power-up of the card: it draws a fresh session nonce, answers it at SELECT, pays only
//! a challenge its payee's SE signed for this card and this session, and pays at most once.
//! Commands (CLA 00 for ISO, 80 for ours; chaining with CLA bit 10):
//!
//! | INS | command | data in | data out |
//! |---|---|---|---|
//! | A4 | SELECT (P1 04) | [`AID`] | [`SelectInfo`](crate::offline::messages::SelectInfo) |
//! | CA | GET DATA (P1P2 = tag, see [`tag`]) | — | value |
//! | B2 | READ RECORD (P1 = 1.. oldest first, P2 04) | — | [`LogEntry`] |
//! | B2 | READ RECORD (P1 = 1.., P2 14: short file 2, the unload table) | — | [`UnloadEntry`] |
//! | 50 | LOAD VALUE | [`LoadAuthorization`] | — |
//! | 52 | REQUEST PAYMENT (payee) | [`PaymentRequest`] | [`ChallengeOffer`] |
//! | 54 | PAY (payer) | [`PayCommand`] | [`SignedRecord`] |
//! | 56 | RECEIVE (payee) | [`ReceiveCommand`] | receipt signature |
//! | 58 | ACKNOWLEDGE (payer) | [`Acknowledgement`] | — |
//! | 5A | CONFIRM SYNC | [`SyncConfirmation`] | — |
//! | 5C | UPDATE REVOCATION LIST | [`RevocationList`] | — |
//! | 5E | UNLOAD | [`UnloadCommand`] | [`SignedUnload`] |
//! | 60 | ATTEST SYNC | the center's [`Nonce`] | [`SyncAttestation`] |
//!
//! LOAD VALUE and CONFIRM SYNC obey only an operator order that names the attestation this card
//! made in the same session (kept in RAM, dropped by any command that changes the card), so no
//! other copy of the card, and no older state of it, can use them.

use crate::amount::Amount;
use crate::certs::device::{
    verify_chain, verify_chain_known, CompactCertificate, DeviceCaps, RevocationList,
};
use crate::certs::{KeyPair, PublicKey, Signature};
use crate::offline::apdu::{CommandApdu, LengthForm, ResponseApdu, CLA_CHAINING};
use crate::offline::error::OfflineError;
use crate::offline::messages::{
    Acknowledgement, AttestationDigest, Challenge, ChallengeOffer, EntryRole, LogEntry, Nonce,
    PayCommand, PaymentRecord, PaymentRequest, ReceiveCommand, SignedRecord, SignedUnload,
    SyncConfirmation, UnloadCommand, UnloadEntry, Wire, SIGNATURE_BYTES,
};
use crate::offline::nvm::{Nvm, PowerLost, TearingPlan};
use crate::offline::state::{Challenges, DeviceKey, SpendingDay, VerifiedCertificates};

pub use crate::offline::card::{
    CHALLENGE_CLOCK_SKEW_S, DEVICE_CERTS_CACHED_MAX, OFFLINE_DAYS_MAX, OFFLINE_PERIOD_MAX_S,
    OPERATOR_CERTS_CACHED_MAX, PROTOCOL_VERSION, RECENT_CHALLENGES_MAX, RECORDS_MAX,
    UNLOADS_PENDING_MAX,
};
pub use crate::offline::messages::LoadAuthorization;
pub use crate::offline::state::PersistentState;

/// The applet's identifier: a registered-style RID (A0 00 00 06 32) and PIX 01 01.
pub const AID: [u8; 7] = [0xA0, 0x00, 0x00, 0x06, 0x32, 0x01, 0x01];
/// Transient buffer for a chained command; the largest message is a full revocation list.
pub const CHAIN_BYTES_MAX: usize = 1_280;
const SELECT_BY_NAME: (u8, u8) = (0x04, 0x00);
const READ_RECORD_BY_NUMBER: u8 = 0x04;
/// READ RECORD P2 for record P1 of short file 2 (SFI in bits 8-4): the unload table.
pub const READ_RECORD_UNLOADS: u8 = (2 << 3) | READ_RECORD_BY_NUMBER;

/// Class bytes, without the chaining bit.
pub mod cla {
    pub const ISO: u8 = 0x00;
    pub const PROPRIETARY: u8 = 0x80;
}

/// Instruction bytes.
pub mod ins {
    pub const SELECT: u8 = 0xA4;
    pub const GET_DATA: u8 = 0xCA;
    pub const READ_RECORD: u8 = 0xB2;
    pub const LOAD: u8 = 0x50;
    pub const REQUEST_PAYMENT: u8 = 0x52;
    pub const PAY: u8 = 0x54;
    pub const RECEIVE: u8 = 0x56;
    pub const ACKNOWLEDGE: u8 = 0x58;
    pub const CONFIRM_SYNC: u8 = 0x5A;
    pub const UPDATE_REVOCATION: u8 = 0x5C;
    pub const UNLOAD: u8 = 0x5E;
    pub const ATTEST: u8 = 0x60;
}

/// GET DATA tags (P1P2).
pub mod tag {
    pub const BALANCE: u16 = 0xDF01;
    pub const COUNTER: u16 = 0xDF02;
    pub const DEVICE_CERT: u16 = 0xDF03;
    pub const OPERATOR_CERT: u16 = 0xDF04;
    pub const SUMMARY: u16 = 0xDF05;
    /// The stable code of the last refusal, in ASCII, for the phone's screen.
    pub const LAST_ERROR: u16 = 0xDF06;
}

/// What the issuing operator writes into a new secure element at the factory or counter.
#[derive(Clone, Debug)]
pub struct Personalization {
    /// Generated on the card in production; handed in here so tests are deterministic.
    pub device_key: KeyPair,
    pub device_cert: CompactCertificate,
    pub operator_cert: CompactCertificate,
    pub root: PublicKey,
    /// Trusted time of issuance: the card's first clock floor.
    pub issued_at_s: u32,
}

/// SM2 work and persistent writes one command cost, for the NFC timing model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommandCost {
    pub sm2_signs: u32,
    pub sm2_verifies: u32,
    pub persistent_writes: u32,
}

/// Transient memory: cleared at every power-up, as a card's RAM is.
#[derive(Clone, Debug)]
struct Ram {
    selected: bool,
    chain: Option<ChainBuffer>,
    last_error: Option<OfflineError>,
    cost: CommandCost,
    /// This tap's session nonce, drawn at power-up.
    session: Nonce,
    /// Whether this tap has paid: a card pays at most once per power-up.
    paid_in_session: bool,
    /// The attestation made in this session, while the card has not changed since.
    attested: Option<AttestationDigest>,
}

impl Ram {
    fn new(session: Nonce) -> Ram {
        Ram {
            selected: false,
            chain: None,
            last_error: None,
            cost: CommandCost::default(),
            session,
            paid_in_session: false,
            attested: None,
        }
    }
}

#[derive(Clone, Debug)]
struct ChainBuffer {
    header: (u8, u8, u8, u8),
    data: Vec<u8>,
}

/// A whole command after chaining: class without the chaining bit.
struct Command {
    class: u8,
    ins: u8,
    p1: u8,
    p2: u8,
    data: Vec<u8>,
}

enum Failure {
    Refused(OfflineError),
    PowerLost,
}

impl<E: Into<OfflineError>> From<E> for Failure {
    fn from(error: E) -> Failure {
        Failure::Refused(error.into())
    }
}

impl From<PowerLost> for Failure {
    fn from(_: PowerLost) -> Failure {
        Failure::PowerLost
    }
}

type Answer = Result<ResponseApdu, Failure>;

/// One hardware wallet's secure element running the dual-offline applet.
#[derive(Clone, Debug)]
pub struct Applet {
    nvm: Nvm<PersistentState>,
    ram: Ram,
    /// The random number generator's draws so far: session nonces never repeat.
    draws: u64,
}

impl Applet {
    /// Writes keys, certificates and caps into a fresh secure element; refuses a chain that
    /// does not verify at issuance or a key that is not the certificate's.
    pub fn personalize(personalization: Personalization) -> Result<Applet, OfflineError> {
        let Personalization {
            device_key,
            device_cert,
            operator_cert,
            root,
            issued_at_s,
        } = personalization;
        let empty = RevocationList::empty();
        let caps = verify_chain(&root, &operator_cert, &device_cert, issued_at_s, &empty)?;
        if device_cert.body.public_key != device_key.public_key() {
            return Err(OfflineError::KeyMismatch);
        }
        let device = device_cert
            .device()
            .expect("a verified chain ends in a device");
        let state = PersistentState {
            key: DeviceKey(device_key),
            device,
            device_cert,
            operator_cert,
            root,
            caps,
            balance: Amount::ZERO,
            counter: 0,
            payments_since_sync: 0,
            spending_days: Vec::new(),
            load_seq: 0,
            unload_seq: 0,
            challenge_seq: 0,
            challenges: Challenges::default(),
            log: Vec::new(),
            unloads: Vec::new(),
            next_log_seq: 1,
            synced_through: 0,
            last_sync_s: issued_at_s,
            revocation: empty,
            verified: VerifiedCertificates::default(),
            clock_floor_s: issued_at_s,
            blocked: false,
        };
        state.assert_invariants();
        let session = state.session_nonce(0);
        Ok(Applet {
            nvm: Nvm::new(state),
            ram: Ram::new(session),
            draws: 1,
        })
    }

    /// The card's only interface: one command APDU in, one response APDU out. A card that has
    /// lost power answers nothing.
    pub fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        if !self.nvm.is_powered() {
            return Vec::new();
        }
        self.ram.cost = CommandCost::default();
        let writes_before = self.nvm.writes_since_armed();
        let outcome = self.handle(apdu);
        self.ram.cost.persistent_writes = self.nvm.writes_since_armed() - writes_before;
        if self.ram.cost.persistent_writes > 0 {
            // The card changed: what it attested earlier in the session is no longer its state.
            self.ram.attested = None;
        }
        match outcome {
            Ok(response) => response.encode(),
            Err(Failure::PowerLost) => Vec::new(),
            Err(Failure::Refused(error)) => {
                let response = ResponseApdu::status(error.status_word());
                self.ram.last_error = Some(error);
                response.encode()
            }
        }
    }

    /// Power returns (a phone wakes its SE, a card enters a reader's field): an interrupted
    /// transaction is rolled back and RAM starts empty.
    pub fn power_up(&mut self) {
        self.nvm.power_up();
        let session = self.nvm.image().session_nonce(self.draws);
        self.draws += 1;
        self.ram = Ram::new(session);
    }

    pub fn is_powered(&self) -> bool {
        self.nvm.is_powered()
    }

    /// Installs a deterministic power cut, counted in persistent writes from now.
    pub fn arm_tearing(&mut self, plan: TearingPlan) {
        self.nvm.arm(plan);
    }

    /// Persistent writes since the tearing plan was last armed.
    pub fn persistent_writes(&self) -> u32 {
        self.nvm.writes_since_armed()
    }

    /// What the last command cost in SM2 operations and persistent writes.
    pub fn last_command_cost(&self) -> CommandCost {
        self.ram.cost
    }

    /// The last refusal, as the phone reads it with GET DATA [`tag::LAST_ERROR`].
    pub fn last_error(&self) -> Option<&OfflineError> {
        self.ram.last_error.as_ref()
    }

    /// Persistent memory as a probe on the chip would read it: for laboratory checks only.
    pub fn persistent_image(&self) -> &PersistentState {
        self.nvm.image()
    }

    /// What an attacker who extracted the persistent memory could build: a second card with
    /// the same keys, balance and counter (or, kept aside, an older image to restore). The
    /// center detects it by reused counters, or by attested counters behind what it booked.
    pub fn clone_card(&self) -> Applet {
        let image = self.nvm.image().clone();
        let session = image.session_nonce(0);
        let mut clone = Applet {
            nvm: Nvm::new(image),
            ram: Ram::new(session),
            draws: 1,
        };
        clone.power_up();
        clone
    }

    fn handle(&mut self, bytes: &[u8]) -> Answer {
        let apdu = CommandApdu::parse(bytes)?;
        if apdu.form == LengthForm::Extended {
            return Err(OfflineError::ExtendedLengthUnsupported.into());
        }
        let class = apdu.cla & !CLA_CHAINING;
        if class != cla::ISO && class != cla::PROPRIETARY {
            return Err(OfflineError::ClaNotSupported(apdu.cla).into());
        }
        if apdu.ins != ins::SELECT && !self.ram.selected {
            return Err(OfflineError::NotSelected.into());
        }
        match self.assemble(class, apdu)? {
            Some(command) => self.execute(&command),
            None => Ok(ResponseApdu::success(Vec::new())),
        }
    }

    /// Collects chained APDUs; returns the whole command once its last part arrives.
    fn assemble(&mut self, class: u8, apdu: CommandApdu) -> Result<Option<Command>, Failure> {
        let header = (class, apdu.ins, apdu.p1, apdu.p2);
        let mut data = match self.ram.chain.take() {
            Some(chain) if chain.header == header => chain.data,
            Some(_) => return Err(OfflineError::ChainBroken.into()),
            None => Vec::new(),
        };
        if data.len() + apdu.data.len() > CHAIN_BYTES_MAX {
            return Err(OfflineError::ChainTooLong {
                max: CHAIN_BYTES_MAX,
            }
            .into());
        }
        data.extend_from_slice(&apdu.data);
        if apdu.cla & CLA_CHAINING != 0 {
            self.ram.chain = Some(ChainBuffer { header, data });
            return Ok(None);
        }
        Ok(Some(Command {
            class,
            ins: apdu.ins,
            p1: apdu.p1,
            p2: apdu.p2,
            data,
        }))
    }

    fn execute(&mut self, command: &Command) -> Answer {
        let expected_class = match command.ins {
            ins::SELECT | ins::READ_RECORD => Some(cla::ISO),
            ins::GET_DATA => None,
            _ => Some(cla::PROPRIETARY),
        };
        let known = matches!(
            command.ins,
            ins::SELECT
                | ins::GET_DATA
                | ins::READ_RECORD
                | ins::LOAD
                | ins::REQUEST_PAYMENT
                | ins::PAY
                | ins::RECEIVE
                | ins::ACKNOWLEDGE
                | ins::CONFIRM_SYNC
                | ins::UPDATE_REVOCATION
                | ins::UNLOAD
                | ins::ATTEST
        );
        if !known {
            return Err(OfflineError::InsNotSupported(command.ins).into());
        }
        if expected_class.is_some_and(|class| class != command.class) {
            return Err(OfflineError::ClaNotSupported(command.class).into());
        }
        match command.ins {
            ins::SELECT => self.select(command),
            ins::GET_DATA => self.get_data(command),
            ins::READ_RECORD => self.read_record(command),
            ins::LOAD => self.load(command),
            ins::REQUEST_PAYMENT => self.request_payment(command),
            ins::PAY => self.pay(command),
            ins::RECEIVE => self.receive(command),
            ins::ACKNOWLEDGE => self.acknowledge(command),
            ins::CONFIRM_SYNC => self.confirm_sync(command),
            ins::UNLOAD => self.unload(command),
            ins::ATTEST => self.attest(command),
            _ => self.update_revocation(command),
        }
    }

    fn select(&mut self, command: &Command) -> Answer {
        if (command.p1, command.p2) != SELECT_BY_NAME {
            return Err(incorrect_p1p2(command).into());
        }
        if command.data != AID {
            self.ram.selected = false;
            return Err(OfflineError::ApplicationNotFound.into());
        }
        self.ram.selected = true;
        let info = self.nvm.image().select_info(self.ram.session);
        Ok(ResponseApdu::success(info.encode()))
    }

    fn get_data(&self, command: &Command) -> Answer {
        expect_no_data(command)?;
        let state = self.nvm.image();
        let requested = u16::from_be_bytes([command.p1, command.p2]);
        let data = match requested {
            tag::BALANCE => state.balance.fen().to_le_bytes().to_vec(),
            tag::COUNTER => state.counter.to_le_bytes().to_vec(),
            tag::DEVICE_CERT => state.device_cert.encode(),
            tag::OPERATOR_CERT => state.operator_cert.encode(),
            tag::SUMMARY => state.summary().encode(),
            tag::LAST_ERROR => self
                .ram
                .last_error
                .as_ref()
                .map_or_else(Vec::new, |error| error.code().as_bytes().to_vec()),
            other => return Err(OfflineError::DataNotFound(other).into()),
        };
        Ok(ResponseApdu::success(data))
    }

    fn read_record(&self, command: &Command) -> Answer {
        expect_no_data(command)?;
        if command.p1 == 0 {
            return Err(incorrect_p1p2(command).into());
        }
        let state = self.nvm.image();
        let index = usize::from(command.p1) - 1;
        let not_found = OfflineError::RecordNotFound(command.p1);
        let data = match command.p2 {
            READ_RECORD_BY_NUMBER => state.log.get(index).ok_or(not_found)?.encode(),
            READ_RECORD_UNLOADS => state.unloads.get(index).ok_or(not_found)?.encode(),
            _ => return Err(incorrect_p1p2(command).into()),
        };
        Ok(ResponseApdu::success(data))
    }

    fn load(&mut self, command: &Command) -> Answer {
        expect_p1p2_zero(command)?;
        let load = LoadAuthorization::decode(&command.data)?;
        let state = self.nvm.image();
        if state.blocked {
            return Err(OfflineError::DeviceBlocked.into());
        }
        if load.device != state.device {
            return Err(OfflineError::WrongDevice.into());
        }
        check_positive(load.amount)?;
        let expected = state
            .load_seq
            .checked_add(1)
            .ok_or(OfflineError::CounterExhausted)?;
        if load.load_seq != expected {
            let got = load.load_seq;
            return Err(OfflineError::SequenceOutOfOrder { got, expected }.into());
        }
        let balance = state.check_can_receive(load.amount)?;
        if self.ram.attested != Some(load.attestation) {
            return Err(OfflineError::NotAttested.into());
        }
        let operator_key = state.operator_cert.body.public_key;
        verify(
            &mut self.ram.cost,
            &operator_key,
            &load.digest(),
            &load.signature,
            "load",
        )?;
        transact(&mut self.nvm, |nvm| {
            nvm.write(|state| state.balance = balance)?;
            nvm.write(|state| state.load_seq = expected)
        })?;
        Ok(ResponseApdu::success(Vec::new()))
    }

    /// Moves value back to the online wallet: debits, counts and keeps the signed unload in
    /// one transaction, so the card is never debited without the record the center credits
    /// from. A retry of the last unload, still kept, answers the same record again.
    fn unload(&mut self, command: &Command) -> Answer {
        expect_p1p2_zero(command)?;
        let unload = UnloadCommand::decode(&command.data)?;
        let state = self.nvm.image();
        state.check_can_transact(unload.time_s)?;
        check_positive(unload.amount)?;
        let kept = state.unloads.last().map(|entry| entry.unload);
        let retried = kept.filter(|kept| {
            (kept.unload_seq, kept.amount) == (unload.unload_seq, unload.amount)
                && kept.unload_seq == state.unload_seq
        });
        if let Some(kept) = retried {
            return Ok(ResponseApdu::success(kept.encode()));
        }
        let expected = state
            .unload_seq
            .checked_add(1)
            .ok_or(OfflineError::CounterExhausted)?;
        if unload.unload_seq != expected {
            let got = unload.unload_seq;
            return Err(OfflineError::SequenceOutOfOrder { got, expected }.into());
        }
        let balance = state.check_can_unload(unload.amount)?;
        let mut signed = SignedUnload {
            device: state.device,
            unload_seq: expected,
            amount: unload.amount,
            time_s: unload.time_s,
            signature: Signature([0; SIGNATURE_BYTES]),
        };
        signed.signature = sign(&mut self.ram.cost, &state.key, &signed.digest());
        let entry = UnloadEntry {
            seq: state.next_log_seq,
            unload: signed,
        };
        transact(&mut self.nvm, |nvm| {
            nvm.write(|state| state.balance = balance)?;
            nvm.write(|state| state.unload_seq = expected)?;
            nvm.write(|state| state.unloads.push(entry))?;
            nvm.write(|state| state.next_log_seq = entry.seq + 1)
        })?;
        Ok(ResponseApdu::success(signed.encode()))
    }

    /// Payee: a fresh challenge for `amount`, for the payer and tap the request names, signed;
    /// the previous challenge joins the recent ones.
    fn request_payment(&mut self, command: &Command) -> Answer {
        expect_p1p2_zero(command)?;
        let request = PaymentRequest::decode(&command.data)?;
        let state = self.nvm.image();
        state.check_can_transact(request.time_s)?;
        check_positive(request.amount)?;
        if request.payer == state.device {
            return Err(OfflineError::SelfPayment.into());
        }
        state.check_can_receive(request.amount)?;
        let challenge_seq = state
            .challenge_seq
            .checked_add(1)
            .ok_or(OfflineError::CounterExhausted)?;
        let challenge = Challenge {
            payee: state.device,
            nonce: state.nonce(challenge_seq),
            amount: request.amount,
            time_s: request.time_s,
            payer: request.payer,
            payer_session: request.payer_session,
        };
        let challenges = state.challenges.with_new(challenge);
        let offer = ChallengeOffer {
            challenge,
            signature: sign(&mut self.ram.cost, &state.key, &challenge.digest()),
        };
        transact(&mut self.nvm, |nvm| {
            nvm.write(|state| state.challenge_seq = challenge_seq)?;
            nvm.write(|state| state.challenges = challenges)
        })?;
        Ok(ResponseApdu::success(offer.encode()))
    }

    /// Payer: checks the payee, its signed challenge and every cap, then debits, counts and
    /// logs in one transaction.
    fn pay(&mut self, command: &Command) -> Answer {
        expect_p1p2_zero(command)?;
        let pay = PayCommand::decode(&command.data)?;
        let plan = self.plan_payment(&pay)?;
        let signature = sign(
            &mut self.ram.cost,
            &self.nvm.image().key,
            &plan.record.digest(),
        );
        let signed = SignedRecord {
            record: plan.record,
            signature,
        };
        let entry = LogEntry {
            seq: plan.log_seq,
            role: EntryRole::Paid,
            signed,
            peer_key: plan.payee_key,
            acknowledged: false,
        };
        transact(&mut self.nvm, |nvm| {
            nvm.write(|state| state.balance = plan.balance)?;
            nvm.write(|state| state.counter = plan.record.counter)?;
            nvm.write(|state| state.payments_since_sync = plan.payments_since_sync)?;
            nvm.write(|state| state.spending_days = plan.spending_days)?;
            nvm.write(|state| state.log.push(entry))?;
            nvm.write(|state| state.next_log_seq = plan.log_seq + 1)?;
            remember_chain(nvm, plan.verified)
        })?;
        self.ram.paid_in_session = true;
        Ok(ResponseApdu::success(signed.encode()))
    }

    fn plan_payment(&mut self, pay: &PayCommand) -> Result<PaymentPlan, OfflineError> {
        let state = self.nvm.image();
        let challenge = &pay.offer.challenge;
        state.check_can_transact(pay.time_s)?;
        if pay.payee_device_cert.device() != Some(challenge.payee) {
            return Err(OfflineError::WrongDevice);
        }
        if challenge.payee == state.device {
            return Err(OfflineError::SelfPayment);
        }
        if (challenge.payer, challenge.payer_session) != (state.device, self.ram.session) {
            return Err(OfflineError::ChallengeNotBound);
        }
        check_skew(challenge.time_s, pay.time_s)?;
        check_positive(challenge.amount)?;
        let spending_days = state.check_can_pay(challenge.amount, pay.time_s)?;
        if state.paid_challenge(challenge) {
            return Err(OfflineError::ChallengeReplayed);
        }
        if self.ram.paid_in_session {
            return Err(OfflineError::OnePaymentPerTap);
        }
        let counter = state
            .counter
            .checked_add(1)
            .ok_or(OfflineError::CounterExhausted)?;
        let (_, verified) =
            self.check_peer_chain(&pay.payee_operator_cert, &pay.payee_device_cert, pay.time_s)?;
        let payee_key = pay.payee_device_cert.body.public_key;
        verify(
            &mut self.ram.cost,
            &payee_key,
            &challenge.digest(),
            &pay.offer.signature,
            "challenge",
        )?;
        let state = self.nvm.image();
        let record = PaymentRecord {
            payer: state.device,
            counter,
            payee: challenge.payee,
            nonce: challenge.nonce,
            amount: challenge.amount,
            time_s: pay.time_s,
        };
        Ok(PaymentPlan {
            record,
            balance: state
                .balance
                .checked_sub(challenge.amount)
                .expect("checked"),
            payments_since_sync: state.payments_since_sync + 1,
            spending_days,
            log_seq: state.next_log_seq,
            payee_key,
            verified,
        })
    }

    /// Verifies a peer's chain, skipping the signatures this card already verified on the same
    /// bytes; returns the peer's caps and the cache to keep if the command commits.
    fn check_peer_chain(
        &mut self,
        operator_cert: &CompactCertificate,
        device_cert: &CompactCertificate,
        time_s: u32,
    ) -> Result<(DeviceCaps, Option<VerifiedCertificates>), OfflineError> {
        let state = self.nvm.image();
        let known = state.verified.known(operator_cert, device_cert);
        self.ram.cost.sm2_verifies += known.to_verify();
        let caps = verify_chain_known(
            &state.root,
            operator_cert,
            device_cert,
            time_s,
            &state.revocation,
            known,
        )?;
        Ok((caps, state.verified.with_chain(operator_cert, device_cert)))
    }

    /// Payee: credits a record for one of its challenges exactly once; a record it already
    /// credited gets its receipt again and changes nothing.
    fn receive(&mut self, command: &Command) -> Answer {
        expect_p1p2_zero(command)?;
        let receive = ReceiveCommand::decode(&command.data)?;
        let state = self.nvm.image();
        state.check_can_transact(receive.time_s)?;
        let record = receive.signed.record;
        let already = state.received(record.payer, record.counter);
        if already.is_some_and(|entry| entry.signed == receive.signed) {
            let receipt = sign(&mut self.ram.cost, &state.key, &record.receipt_digest());
            return Ok(ResponseApdu::success(receipt.0.to_vec()));
        }
        let plan = self.plan_credit(&receive)?;
        transact(&mut self.nvm, |nvm| {
            nvm.write(|state| state.balance = plan.balance)?;
            nvm.write(|state| state.challenges = plan.challenges)?;
            nvm.write(|state| state.log.push(plan.entry))?;
            nvm.write(|state| state.next_log_seq = plan.entry.seq + 1)?;
            remember_chain(nvm, plan.verified)
        })?;
        let state = self.nvm.image();
        let receipt = sign(&mut self.ram.cost, &state.key, &record.receipt_digest());
        Ok(ResponseApdu::success(receipt.0.to_vec()))
    }

    fn plan_credit(&mut self, receive: &ReceiveCommand) -> Result<CreditPlan, OfflineError> {
        let state = self.nvm.image();
        let record = &receive.signed.record;
        if record.payee != state.device {
            return Err(OfflineError::WrongDevice);
        }
        if receive.payer_device_cert.device() != Some(record.payer) {
            return Err(OfflineError::PayerMismatch);
        }
        if state.received(record.payer, record.counter).is_some() {
            return Err(OfflineError::CounterReused(record.counter));
        }
        check_positive(record.amount)?;
        let challenge = state
            .challenges
            .find(&record.nonce)
            .ok_or(OfflineError::NonceUnknown)?;
        if challenge.amount != record.amount {
            let challenge = challenge.amount;
            let record = record.amount;
            return Err(OfflineError::AmountMismatch { record, challenge });
        }
        if challenge.payer != record.payer {
            return Err(OfflineError::ChallengeNotBound);
        }
        check_skew(challenge.time_s, record.time_s)?;
        let balance = state.check_can_receive(record.amount)?;
        let (payer_caps, verified) = self.check_peer_chain(
            &receive.payer_operator_cert,
            &receive.payer_device_cert,
            receive.time_s,
        )?;
        let state = self.nvm.image();
        if record.amount > payer_caps.per_payment_cap {
            let (amount, cap) = (record.amount, payer_caps.per_payment_cap);
            return Err(OfflineError::PaymentCap { amount, cap });
        }
        let payer_key = receive.payer_device_cert.body.public_key;
        let signature = &receive.signed.signature;
        verify(
            &mut self.ram.cost,
            &payer_key,
            &record.digest(),
            signature,
            "payment record",
        )?;
        Ok(CreditPlan {
            balance,
            challenges: state.challenges.without(&record.nonce),
            entry: LogEntry {
                seq: state.next_log_seq,
                role: EntryRole::Received,
                signed: receive.signed,
                peer_key: payer_key,
                acknowledged: true,
            },
            verified,
        })
    }

    /// Payer: the payee's receipt closes a paid record; repeating it changes nothing.
    fn acknowledge(&mut self, command: &Command) -> Answer {
        expect_p1p2_zero(command)?;
        let ack = Acknowledgement::decode(&command.data)?;
        let state = self.nvm.image();
        let index = state
            .log
            .iter()
            .position(|entry| {
                entry.role == EntryRole::Paid && entry.signed.record.counter == ack.counter
            })
            .ok_or(OfflineError::ReceiptUnexpected(ack.counter))?;
        let entry = state.log[index];
        let digest = entry.signed.record.receipt_digest();
        verify(
            &mut self.ram.cost,
            &entry.peer_key,
            &digest,
            &ack.receipt,
            "receipt",
        )?;
        if !entry.acknowledged {
            transact(&mut self.nvm, |nvm| {
                nvm.write(|state| state.log[index].acknowledged = true)
            })?;
        }
        Ok(ResponseApdu::success(Vec::new()))
    }

    /// The center has booked this session's attestation, so the log up to `through_seq`: drop
    /// it, start a new spending period, learn trusted time, and retire every challenge so none
    /// can be credited after the center settled it.
    fn confirm_sync(&mut self, command: &Command) -> Answer {
        expect_p1p2_zero(command)?;
        let sync = SyncConfirmation::decode(&command.data)?;
        let state = self.nvm.image();
        if sync.device != state.device {
            return Err(OfflineError::WrongDevice.into());
        }
        if self.ram.attested != Some(sync.attestation) {
            return Err(OfflineError::NotAttested.into());
        }
        if sync.time_s <= state.last_sync_s {
            let (time_s, last_sync_s) = (sync.time_s, state.last_sync_s);
            return Err(OfflineError::SyncStale {
                time_s,
                last_sync_s,
            }
            .into());
        }
        let (synced_through, last_seq) = (state.synced_through, state.next_log_seq - 1);
        if sync.through_seq < synced_through || sync.through_seq > last_seq {
            let through_seq = sync.through_seq;
            return Err(OfflineError::SyncOutOfRange {
                through_seq,
                synced_through,
                last_seq,
            }
            .into());
        }
        let operator_key = state.operator_cert.body.public_key;
        verify(
            &mut self.ram.cost,
            &operator_key,
            &sync.digest(),
            &sync.signature,
            "sync",
        )?;
        let log: Vec<LogEntry> = state
            .log
            .iter()
            .filter(|entry| entry.seq > sync.through_seq)
            .copied()
            .collect();
        let unsynced_payments = log.iter().filter(|e| e.role == EntryRole::Paid).count();
        let unloads: Vec<UnloadEntry> = state
            .unloads
            .iter()
            .filter(|entry| entry.seq > sync.through_seq)
            .copied()
            .collect();
        let clock_floor_s = state.clock_floor_s.max(sync.time_s);
        let spending_days = state.spending_days_from(clock_floor_s);
        transact(&mut self.nvm, |nvm| {
            nvm.write(|state| state.log = log)?;
            nvm.write(|state| state.unloads = unloads)?;
            nvm.write(|state| state.synced_through = sync.through_seq)?;
            nvm.write(|state| state.last_sync_s = sync.time_s)?;
            nvm.write(|state| state.payments_since_sync = unsynced_payments as u16)?;
            nvm.write(|state| state.clock_floor_s = clock_floor_s)?;
            nvm.write(|state| state.spending_days = spending_days)?;
            nvm.write(|state| state.challenges = Challenges::default())
        })?;
        Ok(ResponseApdu::success(Vec::new()))
    }

    /// The card's signed account of itself over the center's nonce; changes nothing, and is
    /// remembered for this session so the operator's orders can name it.
    fn attest(&mut self, command: &Command) -> Answer {
        expect_p1p2_zero(command)?;
        let nonce = Nonce::decode(&command.data)?;
        let state = self.nvm.image();
        let mut attestation = state.attestation(nonce);
        let digest = attestation.digest();
        attestation.signature = sign(&mut self.ram.cost, &state.key, &digest);
        self.ram.attested = Some(digest);
        Ok(ResponseApdu::success(attestation.encode()))
    }

    fn update_revocation(&mut self, command: &Command) -> Answer {
        expect_p1p2_zero(command)?;
        let list = RevocationList::decode(&command.data)?;
        let state = self.nvm.image();
        let current = state.revocation.version();
        if list.version() <= current {
            let got = list.version();
            return Err(OfflineError::RevocationStale { got, current }.into());
        }
        self.ram.cost.sm2_verifies += 1;
        list.verify(&state.root)
            .map_err(|_| OfflineError::SignatureInvalid("revocation list"))?;
        let blocked = list.is_blocked(state.device);
        let clock_floor_s = state.clock_floor_s.max(list.issued_at_s());
        let spending_days = state.spending_days_from(clock_floor_s);
        transact(&mut self.nvm, |nvm| {
            nvm.write(|state| state.revocation = list)?;
            nvm.write(|state| state.blocked = blocked)?;
            nvm.write(|state| state.clock_floor_s = clock_floor_s)?;
            nvm.write(|state| state.spending_days = spending_days)?;
            // Whatever the new list revokes must never be skipped as already verified.
            nvm.write(|state| state.verified = VerifiedCertificates::default())
        })?;
        Ok(ResponseApdu::success(Vec::new()))
    }
}

struct PaymentPlan {
    record: PaymentRecord,
    balance: Amount,
    payments_since_sync: u16,
    spending_days: Vec<SpendingDay>,
    log_seq: u32,
    payee_key: PublicKey,
    verified: Option<VerifiedCertificates>,
}

struct CreditPlan {
    balance: Amount,
    challenges: Challenges,
    entry: LogEntry,
    verified: Option<VerifiedCertificates>,
}

/// Keeps newly verified certificates, inside the command's transaction.
fn remember_chain(
    nvm: &mut Nvm<PersistentState>,
    verified: Option<VerifiedCertificates>,
) -> Result<(), PowerLost> {
    match verified {
        Some(verified) => nvm.write(|state| state.verified = verified),
        None => Ok(()),
    }
}

/// One atomic transaction: every write inside `writes`, then the commit.
fn transact(
    nvm: &mut Nvm<PersistentState>,
    writes: impl FnOnce(&mut Nvm<PersistentState>) -> Result<(), PowerLost>,
) -> Result<(), PowerLost> {
    nvm.begin();
    writes(nvm)?;
    nvm.commit()?;
    nvm.image().assert_invariants();
    Ok(())
}

fn sign(cost: &mut CommandCost, key: &DeviceKey, digest: &[u8; 32]) -> Signature {
    cost.sm2_signs += 1;
    key.0.sign(digest)
}

fn verify(
    cost: &mut CommandCost,
    key: &PublicKey,
    digest: &[u8; 32],
    signature: &Signature,
    what: &'static str,
) -> Result<(), OfflineError> {
    cost.sm2_verifies += 1;
    key.verify(digest, signature)
        .map_err(|_| OfflineError::SignatureInvalid(what))
}

/// Two clocks of one tap agree within [`CHALLENGE_CLOCK_SKEW_S`].
fn check_skew(challenge_s: u32, time_s: u32) -> Result<(), OfflineError> {
    if challenge_s.abs_diff(time_s) > CHALLENGE_CLOCK_SKEW_S {
        return Err(OfflineError::ChallengeStale {
            challenge_s,
            time_s,
        });
    }
    Ok(())
}

fn check_positive(amount: Amount) -> Result<(), OfflineError> {
    if !amount.is_positive() || amount > Amount::MAX {
        return Err(OfflineError::AmountNotPositive(amount));
    }
    Ok(())
}

fn incorrect_p1p2(command: &Command) -> OfflineError {
    OfflineError::IncorrectP1P2 {
        p1: command.p1,
        p2: command.p2,
    }
}

fn expect_p1p2_zero(command: &Command) -> Result<(), OfflineError> {
    if (command.p1, command.p2) != (0, 0) {
        return Err(incorrect_p1p2(command));
    }
    Ok(())
}

fn expect_no_data(command: &Command) -> Result<(), OfflineError> {
    if !command.data.is_empty() {
        let got = command.data.len();
        return Err(OfflineError::UnexpectedData { expected: 0, got });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::DeviceId;
    use crate::offline::apdu::StatusWord;
    use crate::offline::messages::{
        Nonce, SeSummary, SelectInfo, SyncAttestation, LOG_ENTRY_BYTES, NONCE_BYTES,
        SIGNED_RECORD_BYTES,
    };
    use crate::offline::profiles::WalletForm;
    use crate::offline::protocol::{command_apdus, select_apdu};
    use crate::offline::testkit::{World, NOW_S};
    use proptest::prelude::*;

    const PAYER: u64 = 1;
    const PAYEE: u64 = 2;

    /// Two funded wallets and the APDU plumbing to drive them by hand.
    struct Bench {
        world: World,
        payer: Applet,
        payee: Applet,
        /// The payer's session, as its SELECT answered it.
        session: Nonce,
    }

    impl Bench {
        fn new() -> Bench {
            let world = World::new();
            let mut payer = world.wallet(0, WalletForm::PhoneEse, PAYER, Amount::from_yuan(500));
            let mut payee = world.wallet(1, WalletForm::PhoneEse, PAYEE, Amount::ZERO);
            assert_eq!(
                send(&mut payee, &select_apdu().encode()).1,
                StatusWord::SUCCESS
            );
            let session = select(&mut payer).session;
            Bench {
                world,
                payer,
                payee,
                session,
            }
        }

        /// The payer leaves the field and comes back: a new tap, a new session.
        fn next_tap(&mut self) {
            self.payer.power_up();
            self.session = select(&mut self.payer).session;
        }

        fn offer(&mut self, amount: Amount) -> ChallengeOffer {
            let request = PaymentRequest {
                amount,
                time_s: NOW_S,
                payer: DeviceId(PAYER),
                payer_session: self.session,
            };
            let data = expect_ok(message(
                &mut self.payee,
                ins::REQUEST_PAYMENT,
                &request.encode(),
            ));
            ChallengeOffer::decode(&data).unwrap()
        }

        fn pay_command(&self, offer: &ChallengeOffer) -> PayCommand {
            PayCommand {
                time_s: NOW_S,
                offer: *offer,
                payee_device_cert: self.payee.persistent_image().device_cert,
                payee_operator_cert: *self.world.operators[1].certificate(),
            }
        }

        fn paid_record(&mut self, amount: Amount) -> SignedRecord {
            let offer = self.offer(amount);
            let pay = self.pay_command(&offer);
            let data = expect_ok(message(&mut self.payer, ins::PAY, &pay.encode()));
            SignedRecord::decode(&data).unwrap()
        }

        fn receive_command(&self, signed: SignedRecord) -> ReceiveCommand {
            let state = self.payer.persistent_image();
            ReceiveCommand {
                time_s: NOW_S,
                signed,
                payer_device_cert: state.device_cert,
                payer_operator_cert: state.operator_cert,
            }
        }
    }

    fn send(card: &mut Applet, bytes: &[u8]) -> (Vec<u8>, StatusWord) {
        let response = ResponseApdu::parse(&card.process(bytes)).expect("a powered card answers");
        (response.data, response.sw)
    }

    fn select(card: &mut Applet) -> SelectInfo {
        SelectInfo::decode(&expect_ok(send(card, &select_apdu().encode()))).unwrap()
    }

    /// Sends one proprietary command, chained as needed; returns the final answer.
    fn message(card: &mut Applet, instruction: u8, data: &[u8]) -> (Vec<u8>, StatusWord) {
        let header = [cla::PROPRIETARY, instruction, 0, 0];
        let apdus = command_apdus(header, data, true);
        let (last, chained) = apdus.split_last().unwrap();
        for apdu in chained {
            assert_eq!(send(card, &apdu.encode()).1, StatusWord::SUCCESS);
        }
        send(card, &last.encode())
    }

    fn expect_ok((data, sw): (Vec<u8>, StatusWord)) -> Vec<u8> {
        assert_eq!(sw, StatusWord::SUCCESS);
        data
    }

    /// The command is refused with `sw` and `code`, and persistent memory is untouched.
    fn assert_refused(
        card: &mut Applet,
        send_it: impl FnOnce(&mut Applet) -> (Vec<u8>, StatusWord),
        sw: StatusWord,
        code: &str,
    ) {
        let before = card.persistent_image().clone();
        let (data, got) = send_it(card);
        assert_eq!(
            (got, card.last_error().map(OfflineError::code)),
            (sw, Some(code))
        );
        assert!(data.is_empty(), "errors carry no data");
        assert_eq!(
            card.persistent_image(),
            &before,
            "{code} changed persistent state"
        );
        assert_eq!(card.last_command_cost().persistent_writes, 0);
    }

    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    #[test]
    fn select_answers_with_the_device_and_its_pending_receipts() {
        let mut bench = Bench::new();
        let (data, sw) = send(&mut bench.payer, &select_apdu().encode());
        assert_eq!(sw, StatusWord::SUCCESS);
        let info = SelectInfo::decode(&data).unwrap();
        assert_eq!(
            (info.device, info.records, info.unacknowledged),
            (DeviceId(PAYER), 0, 0)
        );
        let wrong_aid = hex("00A4040007A0000006320102");
        assert_refused(
            &mut bench.payer,
            |c| send(c, &wrong_aid),
            StatusWord::APPLICATION_NOT_FOUND,
            "APPLET_NOT_FOUND",
        );
        let wrong_p1 = hex("00A4000007A0000006320101");
        assert_refused(
            &mut bench.payer,
            |c| send(c, &wrong_p1),
            StatusWord::INCORRECT_P1_P2,
            "APDU_INCORRECT_P1P2",
        );
    }

    #[test]
    fn commands_before_select_are_refused() {
        let world = World::new();
        let mut card = world.wallet(0, WalletForm::ContactlessCard, 9, Amount::from_yuan(5));
        card.power_up();
        let get_balance = hex("00CADF0100");
        assert_refused(
            &mut card,
            |c| send(c, &get_balance),
            StatusWord::CONDITIONS_OF_USE_NOT_SATISFIED,
            "APPLET_NOT_SELECTED",
        );
    }

    #[test]
    fn lying_truncated_and_trailing_lengths_get_wrong_length() {
        let mut bench = Bench::new();
        let cases = [
            ("80 54 00 00 20 0102030405", "APDU_DATA_TRUNCATED"),
            ("80 54", "APDU_HEADER_TRUNCATED"),
            ("00 CA DF 01 02 AABB 00 00", "APDU_TRAILING_BYTES"),
            ("80 54 00 00 00 0100", "APDU_EXTENDED_UNSUPPORTED"),
            ("80 54 00 00 00 0001 AA", "APDU_EXTENDED_UNSUPPORTED"),
            ("80 54 00 00 00 00", "APDU_LENGTH_MALFORMED"),
            ("00 CA DF 01 01 AA 00", "APDU_UNEXPECTED_DATA"),
        ];
        for (text, code) in cases {
            let bytes = hex(text);
            assert_refused(
                &mut bench.payer,
                |c| send(c, &bytes),
                StatusWord::WRONG_LENGTH,
                code,
            );
        }
    }

    #[test]
    fn unknown_classes_instructions_and_parameters_are_refused() {
        let mut bench = Bench::new();
        let cases = [
            (
                "FF CA DF 01 00",
                StatusWord::CLA_NOT_SUPPORTED,
                "APDU_CLA_NOT_SUPPORTED",
            ),
            (
                "0C CA DF 01 00",
                StatusWord::CLA_NOT_SUPPORTED,
                "APDU_CLA_NOT_SUPPORTED",
            ),
            (
                "80 A4 04 00 07 A0000006320101",
                StatusWord::CLA_NOT_SUPPORTED,
                "APDU_CLA_NOT_SUPPORTED",
            ),
            (
                "00 54 00 00 01 00",
                StatusWord::CLA_NOT_SUPPORTED,
                "APDU_CLA_NOT_SUPPORTED",
            ),
            (
                "80 20 00 00 00",
                StatusWord::INS_NOT_SUPPORTED,
                "APDU_INS_NOT_SUPPORTED",
            ),
            (
                "80 52 01 00 0C 000000000000000000000000",
                StatusWord::INCORRECT_P1_P2,
                "APDU_INCORRECT_P1P2",
            ),
            (
                "00 B2 01 0C 00",
                StatusWord::INCORRECT_P1_P2,
                "APDU_INCORRECT_P1P2",
            ),
            (
                "00 B2 01 04 00",
                StatusWord::RECORD_NOT_FOUND,
                "RECORD_NOT_FOUND",
            ),
            (
                "00 CA 9F 7F 00",
                StatusWord::REFERENCED_DATA_NOT_FOUND,
                "DATA_NOT_FOUND",
            ),
        ];
        for (text, sw, code) in cases {
            let bytes = hex(text);
            assert_refused(&mut bench.payer, |c| send(c, &bytes), sw, code);
        }
    }

    #[test]
    fn malformed_message_data_is_incorrect_data() {
        let mut bench = Bench::new();
        let offer = bench.offer(Amount::from_yuan(1));
        let mut pay = bench.pay_command(&offer).encode();
        pay.truncate(pay.len() - 1);
        assert_refused(
            &mut bench.payer,
            |c| message(c, ins::PAY, &pay),
            StatusWord::INCORRECT_DATA,
            "OFFLINE_MESSAGE_MALFORMED",
        );
        let mut request = PaymentRequest {
            amount: Amount::from_yuan(1),
            time_s: NOW_S,
            payer: DeviceId(PAYER),
            payer_session: bench.session,
        }
        .encode();
        request.push(0);
        assert_refused(
            &mut bench.payee,
            |c| message(c, ins::REQUEST_PAYMENT, &request),
            StatusWord::INCORRECT_DATA,
            "OFFLINE_MESSAGE_MALFORMED",
        );
        let negative = PaymentRequest {
            amount: Amount::from_fen(-5),
            time_s: NOW_S,
            payer: DeviceId(PAYER),
            payer_session: bench.session,
        }
        .encode();
        assert_refused(
            &mut bench.payee,
            |c| message(c, ins::REQUEST_PAYMENT, &negative),
            StatusWord::INCORRECT_DATA,
            "AMOUNT_NOT_POSITIVE",
        );
    }

    #[test]
    fn get_data_reads_balance_counter_certificates_and_state() {
        let mut bench = Bench::new();
        let balance = expect_ok(send(&mut bench.payer, &hex("00CADF0100")));
        assert_eq!(balance, 50_000i64.to_le_bytes());
        let counter = expect_ok(send(&mut bench.payer, &hex("80CADF0200")));
        assert_eq!(counter, 0u32.to_le_bytes());
        let cert = expect_ok(send(&mut bench.payer, &hex("00CADF0300")));
        assert_eq!(
            CompactCertificate::decode(&cert).unwrap().device(),
            Some(DeviceId(PAYER))
        );
        let operator = expect_ok(send(&mut bench.payer, &hex("00CADF0400")));
        assert!(CompactCertificate::decode(&operator).is_ok());
        let summary =
            SeSummary::decode(&expect_ok(send(&mut bench.payer, &hex("00CADF0500")))).unwrap();
        assert_eq!(
            (summary.balance, summary.load_seq),
            (Amount::from_yuan(500), 1)
        );
        let _ = send(&mut bench.payer, &hex("80 20 00 00 00"));
        let last_error = expect_ok(send(&mut bench.payer, &hex("00CADF0600")));
        assert_eq!(last_error, b"APDU_INS_NOT_SUPPORTED");
    }

    #[test]
    fn a_broken_or_oversized_chain_is_refused() {
        let mut bench = Bench::new();
        let first = CommandApdu::short(0x90, ins::PAY, 0, 0, vec![0; 255], None).encode();
        assert_eq!(send(&mut bench.payer, &first).1, StatusWord::SUCCESS);
        let other = CommandApdu::short(0x80, ins::RECEIVE, 0, 0, vec![0; 4], None).encode();
        assert_refused(
            &mut bench.payer,
            |c| send(c, &other),
            StatusWord::LAST_COMMAND_OF_CHAIN_EXPECTED,
            "APDU_CHAIN_BROKEN",
        );
        let mut sent = 0;
        let outcome = loop {
            let (_, sw) = send(&mut bench.payer, &first);
            sent += 255;
            if sw != StatusWord::SUCCESS {
                break sw;
            }
        };
        assert_eq!(outcome, StatusWord::NOT_ENOUGH_MEMORY);
        assert!(sent > CHAIN_BYTES_MAX);
    }

    #[test]
    fn a_payer_will_not_pay_itself_or_a_challenge_twice() {
        let mut bench = Bench::new();
        let request = |payer: u64| PaymentRequest {
            amount: Amount::from_yuan(1),
            time_s: NOW_S,
            payer: DeviceId(payer),
            payer_session: bench.session,
        };
        let asks_itself = request(PAYER).encode();
        assert_refused(
            &mut bench.payer,
            |c| message(c, ins::REQUEST_PAYMENT, &asks_itself),
            StatusWord::CONDITIONS_OF_USE_NOT_SATISFIED,
            "OFFLINE_SELF_PAYMENT",
        );
        // A challenge of the payer's own SE, as a hostile phone could obtain one.
        let own = {
            let data = expect_ok(message(
                &mut bench.payer,
                ins::REQUEST_PAYMENT,
                &request(PAYEE).encode(),
            ));
            ChallengeOffer::decode(&data).unwrap()
        };
        let pay_self = PayCommand {
            payee_device_cert: bench.payer.persistent_image().device_cert,
            payee_operator_cert: bench.payer.persistent_image().operator_cert,
            ..bench.pay_command(&own)
        }
        .encode();
        assert_refused(
            &mut bench.payer,
            |c| message(c, ins::PAY, &pay_self),
            StatusWord::CONDITIONS_OF_USE_NOT_SATISFIED,
            "OFFLINE_SELF_PAYMENT",
        );
        let offer = bench.offer(Amount::from_yuan(3));
        let pay = bench.pay_command(&offer).encode();
        expect_ok(message(&mut bench.payer, ins::PAY, &pay));
        assert_refused(
            &mut bench.payer,
            |c| message(c, ins::PAY, &pay),
            StatusWord::CONDITIONS_OF_USE_NOT_SATISFIED,
            "OFFLINE_CHALLENGE_REPLAYED",
        );
    }

    #[test]
    fn a_payer_refuses_forged_and_misplaced_payee_certificates() {
        let mut bench = Bench::new();
        let offer = bench.offer(Amount::from_yuan(2));
        let good = bench.pay_command(&offer);
        let forger = KeyPair::from_seed(b"forger");
        let mut forged_device = good;
        forged_device.payee_device_cert = good.payee_device_cert.body.sign(&forger);
        let mut wrong_operator = good;
        wrong_operator.payee_operator_cert = *bench.world.operators[0].certificate();
        let mut other_device = good;
        other_device.payee_device_cert = bench.payer.persistent_image().device_cert;
        let cases = [
            (
                forged_device,
                StatusWord::SECURITY_STATUS_NOT_SATISFIED,
                "CERT_SIGNATURE_INVALID",
            ),
            (
                wrong_operator,
                StatusWord::SECURITY_STATUS_NOT_SATISFIED,
                "CERT_WRONG_ISSUER",
            ),
            (
                other_device,
                StatusWord::INCORRECT_DATA,
                "OFFLINE_WRONG_DEVICE",
            ),
        ];
        for (pay, sw, code) in cases {
            let bytes = pay.encode();
            assert_refused(&mut bench.payer, |c| message(c, ins::PAY, &bytes), sw, code);
        }
    }

    #[test]
    fn a_payee_refuses_every_bad_record_and_changes_nothing() {
        let mut bench = Bench::new();
        let signed = bench.paid_record(Amount::from_yuan(20));
        let good = bench.receive_command(signed);
        for (receive, sw, code) in bad_records(&bench, good) {
            let bytes = receive.encode();
            assert_refused(
                &mut bench.payee,
                |c| message(c, ins::RECEIVE, &bytes),
                sw,
                code,
            );
        }
        let receipt = expect_ok(message(&mut bench.payee, ins::RECEIVE, &good.encode()));
        assert_eq!(
            bench.payee.persistent_image().balance(),
            Amount::from_yuan(20)
        );
        // The same record again: the same receipt, and nothing credited twice.
        let before = bench.payee.persistent_image().clone();
        let again = expect_ok(message(&mut bench.payee, ins::RECEIVE, &good.encode()));
        assert_eq!(again, receipt);
        assert_eq!(bench.payee.persistent_image(), &before);
    }

    /// Every way a RECEIVE can be wrong, with the answer it must get.
    fn bad_records(
        bench: &Bench,
        good: ReceiveCommand,
    ) -> Vec<(ReceiveCommand, StatusWord, &'static str)> {
        let payer_key = World::device_key(PAYER);
        let resigned = |change: fn(&mut PaymentRecord)| {
            let mut record = good.signed.record;
            change(&mut record);
            let signature = payer_key.sign(&record.digest());
            ReceiveCommand {
                signed: SignedRecord { record, signature },
                ..good
            }
        };
        let mut bad_signature = good;
        bad_signature.signed.signature.0[10] ^= 1;
        let mut other_payer_cert = good;
        other_payer_cert.payer_device_cert = bench.payee.persistent_image().device_cert;
        let mut forged_payer_cert = good;
        let forger = KeyPair::from_seed(b"forger");
        forged_payer_cert.payer_device_cert = good.payer_device_cert.body.sign(&forger);
        let security = StatusWord::SECURITY_STATUS_NOT_SATISFIED;
        let incorrect = StatusWord::INCORRECT_DATA;
        let conditions = StatusWord::CONDITIONS_OF_USE_NOT_SATISFIED;
        vec![
            (bad_signature, security, "OFFLINE_SIGNATURE_INVALID"),
            (
                resigned(|r| r.amount = Amount::from_yuan(21)),
                incorrect,
                "OFFLINE_AMOUNT_MISMATCH",
            ),
            (
                resigned(|r| r.nonce = Nonce([7; NONCE_BYTES])),
                conditions,
                "OFFLINE_NONCE_UNKNOWN",
            ),
            (
                resigned(|r| r.payee = DeviceId(77)),
                incorrect,
                "OFFLINE_WRONG_DEVICE",
            ),
            (other_payer_cert, incorrect, "OFFLINE_PAYER_MISMATCH"),
            (forged_payer_cert, security, "CERT_SIGNATURE_INVALID"),
        ]
    }

    #[test]
    fn a_payee_checks_the_payers_cap_even_when_the_payer_did_not() {
        let mut bench = Bench::new();
        let over_cap = Amount::from_yuan(1_500);
        let offer = bench.offer(over_cap);
        let payer_key = World::device_key(PAYER);
        let record = PaymentRecord {
            payer: DeviceId(PAYER),
            counter: 1,
            payee: DeviceId(PAYEE),
            nonce: offer.challenge.nonce,
            amount: over_cap,
            time_s: NOW_S,
        };
        let signed = SignedRecord {
            record,
            signature: payer_key.sign(&record.digest()),
        };
        let bytes = bench.receive_command(signed).encode();
        assert_refused(
            &mut bench.payee,
            |c| message(c, ins::RECEIVE, &bytes),
            StatusWord::NOT_ENOUGH_MEMORY,
            "OFFLINE_PAYMENT_CAP",
        );
    }

    #[test]
    fn acknowledgements_need_the_payees_receipt() {
        let mut bench = Bench::new();
        let signed = bench.paid_record(Amount::from_yuan(5));
        let unknown = Acknowledgement {
            counter: 9,
            receipt: Signature([1; 64]),
        }
        .encode();
        assert_refused(
            &mut bench.payer,
            |c| message(c, ins::ACKNOWLEDGE, &unknown),
            StatusWord::REFERENCED_DATA_NOT_FOUND,
            "OFFLINE_RECEIPT_UNEXPECTED",
        );
        let forged = Acknowledgement {
            counter: 1,
            receipt: KeyPair::from_seed(b"x").sign(&signed.record.receipt_digest()),
        }
        .encode();
        assert_refused(
            &mut bench.payer,
            |c| message(c, ins::ACKNOWLEDGE, &forged),
            StatusWord::SECURITY_STATUS_NOT_SATISFIED,
            "OFFLINE_SIGNATURE_INVALID",
        );
        let receive = bench.receive_command(signed).encode();
        let receipt = expect_ok(message(&mut bench.payee, ins::RECEIVE, &receive));
        let ack = Acknowledgement {
            counter: 1,
            receipt: Signature(receipt.try_into().unwrap()),
        }
        .encode();
        expect_ok(message(&mut bench.payer, ins::ACKNOWLEDGE, &ack));
        assert_eq!(bench.payer.persistent_image().unacknowledged(), 0);
        let before = bench.payer.persistent_image().clone();
        expect_ok(message(&mut bench.payer, ins::ACKNOWLEDGE, &ack));
        assert_eq!(bench.payer.persistent_image(), &before);
    }

    #[test]
    fn paid_records_read_back_with_read_record() {
        let mut bench = Bench::new();
        let signed = bench.paid_record(Amount::from_yuan(1));
        let entry =
            LogEntry::decode(&expect_ok(send(&mut bench.payer, &hex("00B2010400")))).unwrap();
        assert_eq!(
            (entry.seq, entry.role, entry.signed),
            (1, EntryRole::Paid, signed)
        );
        assert_eq!(entry.encode().len(), LOG_ENTRY_BYTES);
        assert_eq!(SIGNED_RECORD_BYTES, 112);
    }

    fn unload_command(unload_seq: u32, fen: i64) -> Vec<u8> {
        UnloadCommand {
            unload_seq,
            amount: Amount::from_fen(fen),
            time_s: NOW_S,
        }
        .encode()
    }

    #[test]
    fn a_retried_unload_answers_the_same_record_and_a_skipped_one_is_refused() {
        let mut bench = Bench::new();
        let first = expect_ok(message(
            &mut bench.payer,
            ins::UNLOAD,
            &unload_command(1, 1_000),
        ));
        let before = bench.payer.persistent_image().clone();
        let again = expect_ok(message(
            &mut bench.payer,
            ins::UNLOAD,
            &unload_command(1, 1_000),
        ));
        assert_eq!(again, first);
        assert_eq!(bench.payer.persistent_image(), &before);
        for (seq, fen) in [(1, 2_000), (3, 1_000), (0, 1_000)] {
            let bytes = unload_command(seq, fen);
            assert_refused(
                &mut bench.payer,
                |c| message(c, ins::UNLOAD, &bytes),
                StatusWord::CONDITIONS_OF_USE_NOT_SATISFIED,
                "OFFLINE_SEQUENCE_OUT_OF_ORDER",
            );
        }
        let entry = UnloadEntry::decode(&expect_ok(send(&mut bench.payer, &hex("00B2011400"))));
        assert_eq!(entry.unwrap().unload.encode(), first);
        assert_refused(
            &mut bench.payer,
            |c| send(c, &hex("00B2021400")),
            StatusWord::RECORD_NOT_FOUND,
            "RECORD_NOT_FOUND",
        );
    }

    #[test]
    fn persistent_memory_fits_a_secure_element() {
        let bench = Bench::new();
        let used = bench.payer.persistent_image().nvm_bytes();
        let reserved = PersistentState::nvm_bytes_max();
        println!("SE persistent state: {used} bytes now, {reserved} bytes reserved at every limit");
        assert!(used < reserved);
        assert!(
            reserved < 16 * 1024,
            "the applet must fit a 16 KiB persistent budget"
        );
    }

    fn state_fingerprint(card: &Applet) -> (Amount, u32, usize, u32, u32, u32) {
        let state = card.persistent_image();
        (
            state.balance(),
            state.counter(),
            state.log().len(),
            state.load_seq,
            state.unload_seq(),
            state.clock_floor_s(),
        )
    }

    #[test]
    fn attest_sync_signs_the_cards_account_over_the_nonce_and_changes_nothing() {
        let mut bench = Bench::new();
        let signed = bench.paid_record(Amount::from_yuan(7));
        let before = bench.payer.persistent_image().clone();
        let nonce = Nonce([5; NONCE_BYTES]);
        let data = expect_ok(message(&mut bench.payer, ins::ATTEST, &nonce.encode()));
        let attestation = SyncAttestation::decode(&data).unwrap();
        assert_eq!(bench.payer.persistent_image(), &before);
        assert_eq!(bench.payer.last_command_cost().sm2_signs, 1);
        assert!(attestation.verify(&World::device_key(PAYER).public_key()));
        assert_eq!(
            (attestation.nonce, attestation.counter, attestation.balance),
            (nonce, 1, Amount::from_yuan(493))
        );
        assert_eq!(attestation.spent_since_sync, Amount::from_yuan(7));
        let log = before.log();
        assert_eq!(log[0].signed, signed);
        assert_eq!(
            attestation.entries_digest,
            SyncAttestation::entries_digest(log, before.unloads())
        );
        for bad in [vec![0; NONCE_BYTES - 1], vec![0; NONCE_BYTES + 1]] {
            assert_refused(
                &mut bench.payer,
                |c| message(c, ins::ATTEST, &bad),
                StatusWord::INCORRECT_DATA,
                "OFFLINE_MESSAGE_MALFORMED",
            );
        }
        assert_refused(
            &mut bench.payer,
            |c| send(c, &hex("80 60 01 00 10 00000000000000000000000000000000")),
            StatusWord::INCORRECT_P1_P2,
            "APDU_INCORRECT_P1P2",
        );
    }

    #[test]
    fn orders_for_an_attestation_are_void_once_the_card_changes_or_loses_power() {
        let mut bench = Bench::new();
        let attest = |card: &mut Applet| {
            let data = expect_ok(message(
                card,
                ins::ATTEST,
                &Nonce([1; NONCE_BYTES]).encode(),
            ));
            SyncAttestation::decode(&data).unwrap().digest()
        };
        let operator = bench.world.operators[0].clone();
        let digest = attest(&mut bench.payer);
        let order = operator.confirm_sync((DeviceId(PAYER), 0, NOW_S + 10), &digest);
        // A payment in between changes the card: the order answers a state that is gone.
        bench.paid_record(Amount::from_yuan(1));
        let stale = order.encode();
        assert_refused(
            &mut bench.payer,
            |c| message(c, ins::CONFIRM_SYNC, &stale),
            StatusWord::CONDITIONS_OF_USE_NOT_SATISFIED,
            "OFFLINE_NOT_ATTESTED",
        );
        let digest = attest(&mut bench.payer);
        let load = operator.authorize_load((DeviceId(PAYER), 2, Amount::from_yuan(1)), &digest);
        bench.next_tap();
        let void = load.encode();
        assert_refused(
            &mut bench.payer,
            |c| message(c, ins::LOAD, &void),
            StatusWord::CONDITIONS_OF_USE_NOT_SATISFIED,
            "OFFLINE_NOT_ATTESTED",
        );
    }

    #[test]
    fn a_card_pays_once_per_tap_and_only_a_challenge_signed_for_this_tap() {
        let mut bench = Bench::new();
        bench.paid_record(Amount::from_yuan(2));
        let offer = bench.offer(Amount::from_yuan(3));
        let again = bench.pay_command(&offer).encode();
        assert_refused(
            &mut bench.payer,
            |c| message(c, ins::PAY, &again),
            StatusWord::CONDITIONS_OF_USE_NOT_SATISFIED,
            "OFFLINE_ONE_PAYMENT_PER_TAP",
        );
        // The next tap has a new session: the challenge made for the last one is refused.
        bench.next_tap();
        assert_refused(
            &mut bench.payer,
            |c| message(c, ins::PAY, &again),
            StatusWord::INCORRECT_DATA,
            "OFFLINE_CHALLENGE_NOT_BOUND",
        );
        let mut tampered = bench.offer(Amount::from_yuan(3));
        tampered.challenge.amount = Amount::from_yuan(300);
        let tampered = bench.pay_command(&tampered).encode();
        assert_refused(
            &mut bench.payer,
            |c| message(c, ins::PAY, &tampered),
            StatusWord::SECURITY_STATUS_NOT_SATISFIED,
            "OFFLINE_SIGNATURE_INVALID",
        );
        let mut early = bench.offer(Amount::from_yuan(3));
        early.challenge.time_s -= CHALLENGE_CLOCK_SKEW_S + 1;
        let early = bench.pay_command(&early).encode();
        assert_refused(
            &mut bench.payer,
            |c| message(c, ins::PAY, &early),
            StatusWord::CONDITIONS_OF_USE_NOT_SATISFIED,
            "OFFLINE_CHALLENGE_STALE",
        );
        let fresh = bench.offer(Amount::from_yuan(3));
        let fresh = bench.pay_command(&fresh).encode();
        expect_ok(message(&mut bench.payer, ins::PAY, &fresh));
    }

    fn structured_apdu() -> impl Strategy<Value = Vec<u8>> {
        let classes = prop_oneof![
            Just(0x00u8),
            Just(0x80),
            Just(0x90),
            Just(0x10),
            any::<u8>()
        ];
        let instructions = prop_oneof![
            Just(ins::SELECT),
            Just(ins::GET_DATA),
            Just(ins::READ_RECORD),
            Just(ins::LOAD),
            Just(ins::REQUEST_PAYMENT),
            Just(ins::PAY),
            Just(ins::RECEIVE),
            Just(ins::ACKNOWLEDGE),
            Just(ins::CONFIRM_SYNC),
            Just(ins::UPDATE_REVOCATION),
            Just(ins::UNLOAD),
            Just(ins::ATTEST),
            any::<u8>()
        ];
        let data = proptest::collection::vec(any::<u8>(), 0..=255);
        (
            classes,
            instructions,
            any::<[u8; 2]>(),
            data,
            proptest::option::of(1u32..=256),
        )
            .prop_map(|(cla, ins, [p1, p2], data, ne)| {
                CommandApdu::short(cla, ins, p1 & 0x07, p2 & 0x07, data, ne).encode()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_bytes_never_panic_and_never_move_value(
            inputs in proptest::collection::vec(
                prop_oneof![proptest::collection::vec(any::<u8>(), 0..300), structured_apdu()],
                1..12,
            )
        ) {
            let mut bench = Bench::new();
            let before = (state_fingerprint(&bench.payer), state_fingerprint(&bench.payee));
            for input in &inputs {
                for card in [&mut bench.payer, &mut bench.payee] {
                    let answer = card.process(input);
                    prop_assert!(answer.len() >= 2, "a powered card always answers");
                }
            }
            let after = (state_fingerprint(&bench.payer), state_fingerprint(&bench.payee));
            prop_assert_eq!(after, before);
        }
    }
}
