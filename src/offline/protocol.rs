//! The phones' side of a dual-offline tap: a relay that drives two secure elements through the
//! protocol with APDUs only, never touching their state. Every tap starts with the field coming
//! up (a fresh session on each card). It splits long messages with command chaining,
//! re-presents paid records that still wait for a receipt, records every exchange for the NFC
//! timing model, and can cut the link before any APDU to test tearing. Online, it carries the
//! card's attested sync to the center and the operator's orders back.

use thiserror::Error;

use crate::amount::Amount;
use crate::certs::device::{CompactCertificate, RevocationList};
use crate::certs::Signature;
use crate::codec::DecodeError;
use crate::offline::apdu::{
    CommandApdu, ResponseApdu, StatusWord, CLA_CHAINING, SHORT_DATA_BYTES_MAX,
    SHORT_RESPONSE_BYTES_MAX,
};
use crate::offline::applet::{
    cla, ins, tag, Applet, CommandCost, AID, READ_RECORD_UNLOADS, RECORDS_MAX,
};
use crate::offline::error::refusal_in_words;
use crate::offline::messages::{
    Acknowledgement, AttestedSync, ChallengeOffer, EntryRole, LoadAuthorization, LogEntry, Nonce,
    PayCommand, PaymentRequest, ReceiveCommand, SeSummary, SelectInfo, SignedRecord, SignedUnload,
    SyncAttestation, SyncConfirmation, UnloadCommand, UnloadEntry, Wire,
};

/// Which secure element of a tap an exchange went to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    Payer,
    Payee,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Payer => "payer's",
            Side::Payee => "payee's",
        })
    }
}

/// One APDU and its answer, as the timing model needs them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    pub side: Side,
    pub step: &'static str,
    pub command_bytes: usize,
    pub response_bytes: usize,
    pub cost: CommandCost,
}

/// Why a tap did not finish.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RelayError {
    #[error("the NFC link was cut after {apdus} APDUs")]
    LinkCut { apdus: usize },
    #[error("the {side} secure element went silent during {step}")]
    CardSilent { side: Side, step: &'static str },
    #[error("{step} refused by the {side} secure element: {} [{code}]", refusal_in_words(code).map_or_else(|| format!("status {sw}, {}", sw.meaning()), str::to_string))]
    Refused {
        side: Side,
        step: &'static str,
        sw: StatusWord,
        code: String,
    },
    #[error("{step}: the {side} secure element's answer is malformed: {error}")]
    BadAnswer {
        side: Side,
        step: &'static str,
        error: DecodeError,
    },
}

impl RelayError {
    /// The status word of a refusal, if the card refused.
    pub fn status_word(&self) -> Option<StatusWord> {
        match self {
            RelayError::Refused { sw, .. } => Some(*sw),
            _ => None,
        }
    }

    /// The card's stable code of a refusal, if the card refused.
    pub fn code(&self) -> Option<&str> {
        match self {
            RelayError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A secure element in a tap, with what it said when selected.
pub struct Party<'a> {
    pub card: &'a mut Applet,
    pub side: Side,
    pub info: SelectInfo,
}

/// A finished payment: the payer's signed record, and how many earlier torn payments between
/// the two were completed first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Payment {
    pub signed: SignedRecord,
    pub recovered: usize,
}

/// Splits `data` into short APDUs, chaining all but the last; the last asks for a response
/// when `expects_data`.
pub fn command_apdus(header: [u8; 4], data: &[u8], expects_data: bool) -> Vec<CommandApdu> {
    let [class, ins, p1, p2] = header;
    let le = expects_data.then_some(SHORT_RESPONSE_BYTES_MAX as u32);
    if data.is_empty() {
        return vec![CommandApdu::short(class, ins, p1, p2, Vec::new(), le)];
    }
    let chunks: Vec<&[u8]> = data.chunks(SHORT_DATA_BYTES_MAX).collect();
    let last = chunks.len() - 1;
    chunks
        .iter()
        .enumerate()
        .map(|(index, chunk)| {
            let (cla, ne) = if index == last {
                (class, le)
            } else {
                (class | CLA_CHAINING, None)
            };
            CommandApdu::short(cla, ins, p1, p2, chunk.to_vec(), ne)
        })
        .collect()
}

/// The SELECT command for the applet.
pub fn select_apdu() -> CommandApdu {
    CommandApdu::short(cla::ISO, ins::SELECT, 0x04, 0x00, AID.to_vec(), Some(256))
}

/// Two phones relaying APDUs between their secure elements.
#[derive(Clone, Debug, Default)]
pub struct Relay {
    cut_before_apdu: Option<usize>,
    apdus: usize,
    transcript: Vec<Exchange>,
}

impl Relay {
    pub fn new() -> Relay {
        Relay::default()
    }

    /// A relay whose link breaks just before its `apdu`-th APDU (0 = before the first).
    pub fn cutting_link_before(apdu: usize) -> Relay {
        Relay {
            cut_before_apdu: Some(apdu),
            ..Relay::default()
        }
    }

    /// APDUs delivered so far.
    pub fn apdus(&self) -> usize {
        self.apdus
    }

    pub fn transcript(&self) -> &[Exchange] {
        &self.transcript
    }

    /// A tap with a full payment of `amount` from `payer` to `payee` at the phones' time
    /// `time_s`: the payee's SE signs a challenge for this payer's session, the payer's SE
    /// checks it and pays.
    pub fn pay(
        &mut self,
        payer: &mut Applet,
        payee: &mut Applet,
        amount: Amount,
        time_s: u32,
    ) -> Result<Payment, RelayError> {
        field_up(payer, payee);
        let mut payee = self.select(payee, Side::Payee)?;
        let mut payer = self.select(payer, Side::Payer)?;
        let recovered = self.finish_unacknowledged(&mut payer, &mut payee, time_s)?
            + self.finish_unacknowledged(&mut payee, &mut payer, time_s)?;
        let request = PaymentRequest {
            amount,
            time_s,
            payer: payer.info.device,
            payer_session: payer.info.session,
        };
        let offer: ChallengeOffer = self.call(
            &mut payee,
            "REQUEST PAYMENT",
            ins::REQUEST_PAYMENT,
            &request.encode(),
        )?;
        let payee_device_cert = self.certificate(&mut payee, tag::DEVICE_CERT)?;
        let payee_operator_cert = self.certificate(&mut payee, tag::OPERATOR_CERT)?;
        let pay = PayCommand {
            time_s,
            offer,
            payee_device_cert,
            payee_operator_cert,
        };
        let signed: SignedRecord = self.call(&mut payer, "PAY", ins::PAY, &pay.encode())?;
        self.deliver(&mut payer, &mut payee, &signed, time_s)?;
        Ok(Payment { signed, recovered })
    }

    /// The next contact after a torn tap: select both and finish whatever either paid the
    /// other without a receipt. Returns how many payments were completed.
    pub fn contact(
        &mut self,
        payer: &mut Applet,
        payee: &mut Applet,
        time_s: u32,
    ) -> Result<usize, RelayError> {
        field_up(payer, payee);
        let mut payee = self.select(payee, Side::Payee)?;
        let mut payer = self.select(payer, Side::Payer)?;
        Ok(self.finish_unacknowledged(&mut payer, &mut payee, time_s)?
            + self.finish_unacknowledged(&mut payee, &mut payer, time_s)?)
    }

    pub fn select<'a>(
        &mut self,
        card: &'a mut Applet,
        side: Side,
    ) -> Result<Party<'a>, RelayError> {
        let response = self.exchange(card, side, "SELECT", &select_apdu())?;
        let data = self.accept(card, side, "SELECT", response)?;
        let info = decode(side, "SELECT", &data)?;
        Ok(Party { card, side, info })
    }

    /// Every record the secure element keeps until sync, oldest first.
    pub fn records_to_sync(&mut self, card: &mut Applet) -> Result<Vec<LogEntry>, RelayError> {
        let mut party = self.select(card, Side::Payer)?;
        (1..=party.info.records)
            .map(|number| self.read_record(&mut party, number))
            .collect()
    }

    /// Signed unloads the secure element keeps until a sync confirmation covers them, oldest
    /// first: after a lost answer to UNLOAD, this is how the phone still gets the record.
    pub fn unloads_to_sync(&mut self, card: &mut Applet) -> Result<Vec<UnloadEntry>, RelayError> {
        let mut party = self.select(card, Side::Payer)?;
        (1..=party.info.unloads)
            .map(|number| self.read_unload(&mut party, number))
            .collect()
    }

    fn read_unload(
        &mut self,
        party: &mut Party<'_>,
        number: u8,
    ) -> Result<UnloadEntry, RelayError> {
        let header = [cla::ISO, ins::READ_RECORD, number, READ_RECORD_UNLOADS];
        let data = self.transmit(party, "READ RECORD unload", header, &[], true)?;
        decode(party.side, "READ RECORD unload", &data)
    }

    /// The card's attested account of itself over the center's `nonce`, with every entry it
    /// binds: what the phone takes to the center at sync. The card remembers the attestation
    /// for this session, so the operator's answer to it must come back before the card changes.
    pub fn attest(&mut self, card: &mut Applet, nonce: Nonce) -> Result<AttestedSync, RelayError> {
        let mut party = self.select(card, Side::Payer)?;
        let attestation: SyncAttestation =
            self.call(&mut party, "ATTEST SYNC", ins::ATTEST, &nonce.encode())?;
        let log = (1..=party.info.records)
            .map(|number| self.read_record(&mut party, number))
            .collect::<Result<Vec<_>, _>>()?;
        let unloads = (1..=party.info.unloads)
            .map(|number| self.read_unload(&mut party, number))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AttestedSync {
            attestation,
            log,
            unloads,
        })
    }

    pub fn summary(&mut self, card: &mut Applet) -> Result<SeSummary, RelayError> {
        let mut party = self.select(card, Side::Payer)?;
        self.read_summary(&mut party)
    }

    /// Moves `amount` from the secure element back to its online wallet: the card debits
    /// itself and answers the signed unload the phone takes to the center.
    pub fn unload(
        &mut self,
        card: &mut Applet,
        amount: Amount,
        time_s: u32,
    ) -> Result<SignedUnload, RelayError> {
        let mut party = self.select(card, Side::Payer)?;
        let summary = self.read_summary(&mut party)?;
        let command = UnloadCommand {
            unload_seq: summary.unload_seq.wrapping_add(1),
            amount,
            time_s,
        };
        self.call(&mut party, "UNLOAD", ins::UNLOAD, &command.encode())
    }

    fn read_summary(&mut self, party: &mut Party<'_>) -> Result<SeSummary, RelayError> {
        let header = get_data_header(tag::SUMMARY);
        let data = self.transmit(party, "GET DATA state", header, &[], true)?;
        decode(party.side, "GET DATA state", &data)
    }

    pub fn load(&mut self, card: &mut Applet, load: &LoadAuthorization) -> Result<(), RelayError> {
        let mut party = self.select(card, Side::Payer)?;
        let header = proprietary(ins::LOAD);
        self.transmit(&mut party, "LOAD VALUE", header, &load.encode(), false)?;
        Ok(())
    }

    pub fn confirm_sync(
        &mut self,
        card: &mut Applet,
        sync: &SyncConfirmation,
    ) -> Result<(), RelayError> {
        let mut party = self.select(card, Side::Payer)?;
        let header = proprietary(ins::CONFIRM_SYNC);
        self.transmit(&mut party, "CONFIRM SYNC", header, &sync.encode(), false)?;
        Ok(())
    }

    pub fn update_revocation(
        &mut self,
        card: &mut Applet,
        list: &RevocationList,
    ) -> Result<(), RelayError> {
        let mut party = self.select(card, Side::Payer)?;
        let header = proprietary(ins::UPDATE_REVOCATION);
        self.transmit(
            &mut party,
            "UPDATE REVOCATION",
            header,
            &list.encode(),
            false,
        )?;
        Ok(())
    }

    /// RECEIVE at the payee, then ACKNOWLEDGE at the payer with the payee's receipt.
    fn deliver(
        &mut self,
        payer: &mut Party<'_>,
        payee: &mut Party<'_>,
        signed: &SignedRecord,
        time_s: u32,
    ) -> Result<(), RelayError> {
        let payer_device_cert = self.certificate(payer, tag::DEVICE_CERT)?;
        let payer_operator_cert = self.certificate(payer, tag::OPERATOR_CERT)?;
        let receive = ReceiveCommand {
            time_s,
            signed: *signed,
            payer_device_cert,
            payer_operator_cert,
        };
        let data = self.transmit(
            payee,
            "RECEIVE",
            proprietary(ins::RECEIVE),
            &receive.encode(),
            true,
        )?;
        let receipt = Signature(decode_array(payee.side, "RECEIVE", &data)?);
        let ack = Acknowledgement {
            counter: signed.record.counter,
            receipt,
        };
        self.transmit(
            payer,
            "ACKNOWLEDGE",
            proprietary(ins::ACKNOWLEDGE),
            &ack.encode(),
            false,
        )?;
        Ok(())
    }

    /// Re-presents the payer's unacknowledged records for this payee; a record the payee
    /// refuses (its nonce long retired) stays with the payer for the center to settle.
    fn finish_unacknowledged(
        &mut self,
        payer: &mut Party<'_>,
        payee: &mut Party<'_>,
        time_s: u32,
    ) -> Result<usize, RelayError> {
        let pending = self.unacknowledged(payer)?;
        let mut finished = 0;
        let payee_device = payee.info.device;
        for entry in pending
            .iter()
            .filter(|e| e.signed.record.payee == payee_device)
        {
            match self.deliver(payer, payee, &entry.signed, time_s) {
                Ok(()) => finished += 1,
                Err(RelayError::Refused { .. }) => continue,
                Err(other) => return Err(other),
            }
        }
        Ok(finished)
    }

    /// Reads the log newest first until every unacknowledged paid record has been seen.
    fn unacknowledged(&mut self, party: &mut Party<'_>) -> Result<Vec<LogEntry>, RelayError> {
        let wanted = usize::from(party.info.unacknowledged);
        let mut found = Vec::with_capacity(wanted);
        let mut number = party.info.records;
        debug_assert!(usize::from(number) <= RECORDS_MAX);
        while found.len() < wanted && number > 0 {
            let entry = self.read_record(party, number)?;
            if entry.role == EntryRole::Paid && !entry.acknowledged {
                found.push(entry);
            }
            number -= 1;
        }
        found.reverse();
        Ok(found)
    }

    fn read_record(&mut self, party: &mut Party<'_>, number: u8) -> Result<LogEntry, RelayError> {
        let header = [cla::ISO, ins::READ_RECORD, number, 0x04];
        let data = self.transmit(party, "READ RECORD", header, &[], true)?;
        decode(party.side, "READ RECORD", &data)
    }

    fn certificate(
        &mut self,
        party: &mut Party<'_>,
        which: u16,
    ) -> Result<CompactCertificate, RelayError> {
        let step = if which == tag::DEVICE_CERT {
            "GET DATA device certificate"
        } else {
            "GET DATA operator certificate"
        };
        let data = self.transmit(party, step, get_data_header(which), &[], true)?;
        CompactCertificate::decode(&data).map_err(|error| RelayError::BadAnswer {
            side: party.side,
            step,
            error,
        })
    }

    fn call<T: Wire>(
        &mut self,
        party: &mut Party<'_>,
        step: &'static str,
        instruction: u8,
        data: &[u8],
    ) -> Result<T, RelayError> {
        let answer = self.transmit(party, step, proprietary(instruction), data, true)?;
        decode(party.side, step, &answer)
    }

    /// Sends one command (chained if long) and returns the data of a successful answer.
    fn transmit(
        &mut self,
        party: &mut Party<'_>,
        step: &'static str,
        header: [u8; 4],
        data: &[u8],
        expects_data: bool,
    ) -> Result<Vec<u8>, RelayError> {
        let apdus = command_apdus(header, data, expects_data);
        let mut last = None;
        for apdu in &apdus {
            let response = self.exchange(party.card, party.side, step, apdu)?;
            if !response.sw.is_success() {
                return Err(self.refusal(party, step, response.sw));
            }
            last = Some(response);
        }
        Ok(last.expect("at least one APDU").data)
    }

    fn accept(
        &mut self,
        card: &mut Applet,
        side: Side,
        step: &'static str,
        response: ResponseApdu,
    ) -> Result<Vec<u8>, RelayError> {
        if response.sw.is_success() {
            return Ok(response.data);
        }
        let code = self.last_error_code(card, side);
        Err(RelayError::Refused {
            side,
            step,
            sw: response.sw,
            code,
        })
    }

    fn refusal(&mut self, party: &mut Party<'_>, step: &'static str, sw: StatusWord) -> RelayError {
        let code = self.last_error_code(party.card, party.side);
        RelayError::Refused {
            side: party.side,
            step,
            sw,
            code,
        }
    }

    /// Asks the card why it refused, so the phone can show the reason.
    fn last_error_code(&mut self, card: &mut Applet, side: Side) -> String {
        let apdu = CommandApdu::short(cla::ISO, ins::GET_DATA, 0xDF, 0x06, Vec::new(), Some(256));
        match self.exchange(card, side, "GET DATA last error", &apdu) {
            Ok(response) if response.sw.is_success() => {
                String::from_utf8_lossy(&response.data).into_owned()
            }
            _ => "UNKNOWN".to_string(),
        }
    }

    /// One APDU over the link, unless the link is cut or the card has gone silent.
    fn exchange(
        &mut self,
        card: &mut Applet,
        side: Side,
        step: &'static str,
        apdu: &CommandApdu,
    ) -> Result<ResponseApdu, RelayError> {
        if self.cut_before_apdu.is_some_and(|cut| self.apdus >= cut) {
            return Err(RelayError::LinkCut { apdus: self.apdus });
        }
        let command = apdu.encode();
        let answer = card.process(&command);
        self.apdus += 1;
        let response = ResponseApdu::parse(&answer).ok_or(RelayError::CardSilent { side, step })?;
        self.transcript.push(Exchange {
            side,
            step,
            command_bytes: command.len(),
            response_bytes: answer.len(),
            cost: card.last_command_cost(),
        });
        Ok(response)
    }
}

/// A tap brings the field up: each card powers up into a fresh session (a phone's NFC
/// controller does the same for its embedded SE).
fn field_up(payer: &mut Applet, payee: &mut Applet) {
    payer.power_up();
    payee.power_up();
}

fn proprietary(instruction: u8) -> [u8; 4] {
    [cla::PROPRIETARY, instruction, 0, 0]
}

fn get_data_header(which: u16) -> [u8; 4] {
    let [p1, p2] = which.to_be_bytes();
    [cla::ISO, ins::GET_DATA, p1, p2]
}

fn decode<T: Wire>(side: Side, step: &'static str, data: &[u8]) -> Result<T, RelayError> {
    T::decode(data).map_err(|error| RelayError::BadAnswer { side, step, error })
}

fn decode_array<const N: usize>(
    side: Side,
    step: &'static str,
    data: &[u8],
) -> Result<[u8; N], RelayError> {
    data.try_into().map_err(|_| RelayError::BadAnswer {
        side,
        step,
        error: DecodeError {
            what: "fixed-size answer",
            offset: data.len().min(N),
        },
    })
}

/// What the center will see for one payment, from the two SEs' logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// The payee credited it offline; the payer's record is its proof.
    Completed,
    /// Only the payer has it: value left the payer and waits for the payee's credit or the
    /// center's settlement.
    InFlight,
}

/// Classifies a payer's paid record against the payee's log.
pub fn settlement(paid: &LogEntry, payee_log: &[LogEntry]) -> Settlement {
    debug_assert_eq!(paid.role, EntryRole::Paid);
    let credited = payee_log
        .iter()
        .any(|entry| entry.role == EntryRole::Received && entry.signed == paid.signed);
    if credited {
        Settlement::Completed
    } else {
        Settlement::InFlight
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::DeviceId;
    use crate::offline::applet::{PersistentState, UNLOADS_PENDING_MAX};
    use crate::offline::issuer::OperatorIssuer;
    use crate::offline::messages::Nonce;
    use crate::offline::profiles::{Profile, WalletForm};
    use crate::offline::testkit::{World, NOW_S};

    fn snapshot(card: &Applet) -> PersistentState {
        card.persistent_image().clone()
    }

    fn refused(result: Result<Payment, RelayError>) -> (StatusWord, String) {
        match result {
            Err(RelayError::Refused { sw, code, .. }) => (sw, code),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn two_phones_in_airplane_mode_pay_66_60_at_a_snack_shop() {
        let world = World::new();
        let mut customer = world.wallet(0, WalletForm::PhoneEse, 1, Amount::from_yuan(500));
        let mut snack_shop = world.wallet(1, WalletForm::PhoneEse, 2, Amount::ZERO);
        let mut relay = Relay::new();
        let amount: Amount = "66.60".parse().unwrap();
        let payment = relay
            .pay(&mut customer, &mut snack_shop, amount, NOW_S)
            .unwrap();

        assert_eq!(payment.recovered, 0);
        let record = payment.signed.record;
        assert_eq!(
            (record.payer, record.payee, record.counter),
            (DeviceId(1), DeviceId(2), 1)
        );
        assert_eq!(
            customer.persistent_image().balance(),
            Amount::from_fen(50_000 - 6_660)
        );
        assert_eq!(snack_shop.persistent_image().balance(), amount);
        assert_eq!(customer.persistent_image().unacknowledged(), 0);
        assert_eq!(relay.apdus(), 12);

        let paid = relay.records_to_sync(&mut customer).unwrap();
        let received = relay.records_to_sync(&mut snack_shop).unwrap();
        assert_eq!((paid.len(), received.len()), (1, 1));
        assert_eq!(paid[0].signed, received[0].signed);
        assert_eq!(settlement(&paid[0], &received), Settlement::Completed);
    }

    #[test]
    fn a_payment_crosses_nfc_in_twelve_short_apdus() {
        let world = World::new();
        let mut payer = world.wallet(0, WalletForm::PhoneEse, 1, Amount::from_yuan(100));
        let mut payee = world.wallet(0, WalletForm::ContactlessCard, 2, Amount::ZERO);
        let mut relay = Relay::new();
        relay
            .pay(&mut payer, &mut payee, Amount::from_yuan(10), NOW_S)
            .unwrap();
        let steps: Vec<(&str, usize, usize)> = relay
            .transcript()
            .iter()
            .map(|e| (e.step, e.command_bytes, e.response_bytes))
            .collect();
        let expected = vec![
            ("SELECT", 13, 30),
            ("SELECT", 13, 30),
            ("REQUEST PAYMENT", 42, 126),
            ("GET DATA device certificate", 5, 155),
            ("GET DATA operator certificate", 5, 120),
            ("PAY", 260, 2),
            ("PAY", 150, 114),
            ("GET DATA device certificate", 5, 155),
            ("GET DATA operator certificate", 5, 120),
            ("RECEIVE", 260, 2),
            ("RECEIVE", 138, 66),
            ("ACKNOWLEDGE", 73, 2),
        ];
        assert_eq!(steps, expected);
        for exchange in relay.transcript() {
            assert!(exchange.command_bytes <= 5 + SHORT_DATA_BYTES_MAX + 1);
            assert!(exchange.response_bytes <= SHORT_RESPONSE_BYTES_MAX + 2);
        }
    }

    fn refusal<T: std::fmt::Debug>(result: Result<T, RelayError>) -> (StatusWord, String) {
        match result {
            Err(RelayError::Refused { sw, code, .. }) => (sw, code),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_phone_unloads_40_yuan_back_to_its_wallet_and_keeps_the_record_until_sync() {
        let world = World::new();
        let mut phone = world.wallet(0, WalletForm::PhoneEse, 1, Amount::from_yuan(100));
        let mut relay = Relay::new();
        let unload = relay
            .unload(&mut phone, Amount::from_yuan(40), NOW_S)
            .unwrap();
        assert_eq!(
            (
                unload.device,
                unload.unload_seq,
                unload.amount,
                unload.time_s
            ),
            (DeviceId(1), 1, Amount::from_yuan(40), NOW_S)
        );
        assert!(unload.verify(&World::device_key(1).public_key()));
        assert_eq!(phone.persistent_image().balance(), Amount::from_yuan(60));
        // The answer may have been lost on the way: the card still has it for the center.
        let kept = relay.unloads_to_sync(&mut phone).unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].unload, unload);
        assert!(relay.records_to_sync(&mut phone).unwrap().is_empty());
        assert_eq!(relay.summary(&mut phone).unwrap().unload_seq, 1);

        let (attested, _) = world.confirm_all(0, &mut phone, NOW_S + 10).unwrap();
        assert_eq!(
            attested.unloads, kept,
            "the attestation binds the kept unload"
        );
        assert!(relay.unloads_to_sync(&mut phone).unwrap().is_empty());
        let second = relay
            .unload(&mut phone, Amount::from_yuan(60), NOW_S + 20)
            .unwrap();
        assert_eq!(second.unload_seq, 2);
        assert_eq!(phone.persistent_image().balance(), Amount::ZERO);
    }

    #[test]
    fn an_unload_above_the_balance_or_from_a_blocked_card_changes_nothing() {
        let world = World::new();
        let mut phone = world.wallet(0, WalletForm::PhoneEse, 1, Amount::from_yuan(100));
        let cases = [
            (
                Amount::from_fen(10_001),
                StatusWord::CONDITIONS_OF_USE_NOT_SATISFIED,
                "OFFLINE_INSUFFICIENT_BALANCE",
            ),
            (
                Amount::ZERO,
                StatusWord::INCORRECT_DATA,
                "AMOUNT_NOT_POSITIVE",
            ),
        ];
        for (amount, sw, code) in cases {
            let before = snapshot(&phone);
            let outcome = refusal(Relay::new().unload(&mut phone, amount, NOW_S));
            assert_eq!((outcome.0, outcome.1.as_str()), (sw, code));
            assert_eq!(snapshot(&phone), before, "{code} changed the card");
        }
        for _ in 0..UNLOADS_PENDING_MAX {
            Relay::new()
                .unload(&mut phone, Amount::from_yuan(1), NOW_S)
                .unwrap();
        }
        let before = snapshot(&phone);
        let (sw, code) = refusal(Relay::new().unload(&mut phone, Amount::from_yuan(1), NOW_S));
        assert_eq!(
            (sw, code.as_str()),
            (StatusWord::NOT_ENOUGH_MEMORY, "OFFLINE_UNLOADS_PENDING")
        );
        assert_eq!(snapshot(&phone), before);

        let list = world.revocation_list(1, &[DeviceId(1)]);
        Relay::new().update_revocation(&mut phone, &list).unwrap();
        let before = snapshot(&phone);
        let (sw, code) = refusal(Relay::new().unload(&mut phone, Amount::from_yuan(1), NOW_S));
        assert_eq!(
            (sw, code.as_str()),
            (
                StatusWord::AUTHENTICATION_METHOD_BLOCKED,
                "OFFLINE_DEVICE_BLOCKED"
            )
        );
        assert_eq!(snapshot(&phone), before);
    }

    #[test]
    fn an_unload_leaves_a_torn_payment_waiting_for_its_receipt_intact() {
        let world = World::new();
        let mut payer = world.wallet(0, WalletForm::PhoneEse, 1, Amount::from_yuan(100));
        let mut payee = world.wallet(1, WalletForm::PhoneEse, 2, Amount::ZERO);
        let amount = Amount::from_yuan(30);
        // Cut after PAY: the payer is debited and waits for the payee's receipt.
        let _ = Relay::cutting_link_before(7).pay(&mut payer, &mut payee, amount, NOW_S);
        assert_eq!(payer.persistent_image().unacknowledged(), 1);
        Relay::new()
            .unload(&mut payer, Amount::from_yuan(70), NOW_S + 5)
            .unwrap();
        assert_eq!(
            Relay::new().contact(&mut payer, &mut payee, NOW_S + 10),
            Ok(1)
        );
        assert_eq!(payer.persistent_image().balance(), Amount::ZERO);
        assert_eq!(payee.persistent_image().balance(), amount);
        assert_eq!(payer.persistent_image().unacknowledged(), 0);
    }

    #[test]
    fn every_wallet_form_pays_every_other() {
        let world = World::new();
        let mut cards: Vec<Applet> = WalletForm::ALL
            .iter()
            .zip(10u64..)
            .map(|(form, device)| world.wallet(0, *form, device, Amount::from_yuan(80)))
            .collect();
        for payer in 0..cards.len() {
            for payee in 0..cards.len() {
                if payer == payee {
                    continue;
                }
                let (payer_card, payee_card) = two(&mut cards, payer, payee);
                Relay::new()
                    .pay(payer_card, payee_card, Amount::from_fen(1_234), NOW_S)
                    .unwrap();
            }
        }
        let total: Amount = cards.iter().map(|c| c.persistent_image().balance()).sum();
        assert_eq!(total, Amount::from_yuan(80 * cards.len() as i64));
    }

    fn two(cards: &mut [Applet], first: usize, second: usize) -> (&mut Applet, &mut Applet) {
        assert_ne!(first, second);
        if first < second {
            let (low, high) = cards.split_at_mut(second);
            (&mut low[first], &mut high[0])
        } else {
            let (low, high) = cards.split_at_mut(first);
            (&mut high[0], &mut low[second])
        }
    }

    /// Runs a payment expected to be refused and checks that neither SE changed.
    fn assert_refused_unchanged(
        payer: &mut Applet,
        payee: &mut Applet,
        amount: Amount,
        time_s: u32,
    ) -> (StatusWord, String) {
        let (payer_before, payee_before) = (snapshot(payer), snapshot(payee));
        let outcome = refused(Relay::new().pay(payer, payee, amount, time_s));
        let payee_after = snapshot(payee);
        assert_eq!(snapshot(payer), payer_before, "payer changed");
        // The payee's fresh challenge is the one write a refused payment may leave behind.
        assert_eq!(
            payee_after.balance(),
            payee_before.balance(),
            "payee balance changed"
        );
        assert_eq!(payee_after.log(), payee_before.log(), "payee log changed");
        outcome
    }

    #[test]
    fn amount_over_the_per_payment_cap_is_refused() {
        let world = World::new();
        let mut visitor = world.wallet(0, WalletForm::VisitorCard, 1, Amount::from_yuan(900));
        let mut shop = world.wallet(0, WalletForm::PhoneEse, 2, Amount::ZERO);
        let (sw, code) =
            assert_refused_unchanged(&mut visitor, &mut shop, Amount::from_yuan(201), NOW_S);
        assert_eq!(
            (sw, code.as_str()),
            (StatusWord::NOT_ENOUGH_MEMORY, "OFFLINE_PAYMENT_CAP")
        );
        Relay::new()
            .pay(&mut visitor, &mut shop, Amount::from_yuan(200), NOW_S)
            .unwrap();
    }

    #[test]
    fn a_payment_above_the_balance_is_refused() {
        let world = World::new();
        let mut payer = world.wallet(0, WalletForm::PhoneEse, 1, Amount::from_yuan(10));
        let mut payee = world.wallet(0, WalletForm::PhoneEse, 2, Amount::ZERO);
        let (sw, code) =
            assert_refused_unchanged(&mut payer, &mut payee, Amount::from_fen(1_001), NOW_S);
        assert_eq!(sw, StatusWord::CONDITIONS_OF_USE_NOT_SATISFIED);
        assert_eq!(code, "OFFLINE_INSUFFICIENT_BALANCE");
    }

    #[test]
    fn a_payee_at_its_balance_cap_refuses_to_ask() {
        let world = World::new();
        let mut payer = world.wallet(0, WalletForm::PhoneEse, 1, Amount::from_yuan(500));
        let mut visitor = world.wallet(0, WalletForm::VisitorCard, 2, Amount::from_yuan(950));
        let before = snapshot(&visitor);
        let (sw, code) =
            refused(Relay::new().pay(&mut payer, &mut visitor, Amount::from_yuan(60), NOW_S));
        assert_eq!(
            (sw, code.as_str()),
            (StatusWord::NOT_ENOUGH_MEMORY, "OFFLINE_BALANCE_CAP")
        );
        assert_eq!(snapshot(&visitor), before);
    }

    #[test]
    fn a_student_card_stops_at_the_guardians_daily_cap() {
        let world = World::new();
        let profile = Profile::student_card(Amount::from_yuan(30)).unwrap();
        let mut student = world.wallet_with(0, &profile, 1, Amount::from_yuan(200));
        let mut canteen = world.wallet(0, WalletForm::PhoneEse, 2, Amount::ZERO);
        let lunch = Amount::from_yuan(18);
        Relay::new()
            .pay(&mut student, &mut canteen, lunch, NOW_S)
            .unwrap();
        let (sw, code) = assert_refused_unchanged(&mut student, &mut canteen, lunch, NOW_S + 60);
        assert_eq!(
            (sw, code.as_str()),
            (StatusWord::NOT_ENOUGH_MEMORY, "OFFLINE_DAILY_CAP")
        );
        Relay::new()
            .pay(
                &mut student,
                &mut canteen,
                Amount::from_yuan(12),
                NOW_S + 120,
            )
            .unwrap();
        let tomorrow = NOW_S + 86_400;
        Relay::new()
            .pay(&mut student, &mut canteen, lunch, tomorrow)
            .unwrap();
        assert_eq!(
            student.persistent_image().balance(),
            Amount::from_yuan(200 - 48)
        );
    }

    #[test]
    fn a_wallet_must_sync_after_its_payments_before_sync() {
        let world = World::new();
        let caps = crate::certs::device::DeviceCaps {
            payments_before_sync: 2,
            ..WalletForm::PhoneEse.default_caps()
        };
        let profile = Profile::new(WalletForm::PhoneEse).with_caps(caps).unwrap();
        let mut payer = world.wallet_with(0, &profile, 1, Amount::from_yuan(100));
        let mut payee = world.wallet(0, WalletForm::PhoneEse, 2, Amount::ZERO);
        for _ in 0..2 {
            Relay::new()
                .pay(&mut payer, &mut payee, Amount::from_yuan(1), NOW_S)
                .unwrap();
        }
        let (sw, code) =
            assert_refused_unchanged(&mut payer, &mut payee, Amount::from_yuan(1), NOW_S);
        assert_eq!(
            (sw, code.as_str()),
            (StatusWord::NOT_ENOUGH_MEMORY, "OFFLINE_SYNC_REQUIRED")
        );

        let mut relay = Relay::new();
        let (_, sync) = world.confirm_all(0, &mut payer, NOW_S + 10).unwrap();
        assert!(relay.records_to_sync(&mut payer).unwrap().is_empty());
        assert_eq!(payer.persistent_image().payments_since_sync(), 0);
        // The confirmation answered one attestation, now spent.
        let replayed = relay.confirm_sync(&mut payer, &sync).unwrap_err();
        assert_eq!(replayed.code(), Some("OFFLINE_NOT_ATTESTED"));
        // An order for a fresh attestation, but no later than the last sync.
        let again = relay.attest(&mut payer, Nonce([2; 16])).unwrap();
        let stale = world.operators[0].confirm_sync(
            (DeviceId(1), again.attestation.synced_through, NOW_S + 10),
            &again.attestation.digest(),
        );
        let refused = relay.confirm_sync(&mut payer, &stale).unwrap_err();
        assert_eq!(refused.code(), Some("OFFLINE_SYNC_STALE"));
        Relay::new()
            .pay(&mut payer, &mut payee, Amount::from_yuan(1), NOW_S + 20)
            .unwrap();
    }

    #[test]
    fn a_revoked_payee_is_refused_by_the_payer() {
        let world = World::new();
        let mut payer = world.wallet(0, WalletForm::PhoneEse, 1, Amount::from_yuan(100));
        let mut payee = world.wallet(1, WalletForm::PhoneEse, 2, Amount::ZERO);
        let list = world.revocation_list(1, &[DeviceId(2)]);
        Relay::new().update_revocation(&mut payer, &list).unwrap();
        let (sw, code) =
            assert_refused_unchanged(&mut payer, &mut payee, Amount::from_yuan(5), NOW_S);
        assert_eq!(
            (sw, code.as_str()),
            (StatusWord::SECURITY_STATUS_NOT_SATISFIED, "CERT_REVOKED")
        );
    }

    #[test]
    fn a_revoked_payer_is_refused_by_the_payee() {
        let world = World::new();
        let mut payer = world.wallet(0, WalletForm::PhoneEse, 1, Amount::from_yuan(100));
        let mut payee = world.wallet(1, WalletForm::PhoneEse, 2, Amount::ZERO);
        let list = world.revocation_list(1, &[DeviceId(1)]);
        Relay::new().update_revocation(&mut payee, &list).unwrap();
        let payee_before = snapshot(&payee);
        let error = Relay::new()
            .pay(&mut payer, &mut payee, Amount::from_yuan(5), NOW_S)
            .unwrap_err();
        assert_eq!(
            error.status_word(),
            Some(StatusWord::SECURITY_STATUS_NOT_SATISFIED)
        );
        assert_eq!(error.code(), Some("CERT_REVOKED"));
        // The payer has paid and keeps its record for the center; the payee credited nothing.
        assert_eq!(snapshot(&payee).balance(), payee_before.balance());
        assert_eq!(snapshot(&payee).log(), payee_before.log());
        assert_eq!(payer.persistent_image().unacknowledged(), 1);
    }

    #[test]
    fn a_revoked_clone_is_refused_both_ways_by_an_se_that_had_already_verified_it() {
        let world = World::new();
        let mut original = world.wallet(0, WalletForm::ContactlessCard, 1, Amount::from_yuan(100));
        let mut shop = world.wallet(1, WalletForm::PhoneEse, 2, Amount::from_yuan(50));
        // The shop paid this card before: its chain is in the shop's cache.
        Relay::new()
            .pay(&mut shop, &mut original, Amount::from_yuan(1), NOW_S)
            .unwrap();
        let mut clone = original.clone_card();
        assert_eq!(
            shop.persistent_image()
                .verified_certificates()
                .devices()
                .len(),
            1
        );
        let list = world.revocation_list(1, &[DeviceId(1)]);
        Relay::new().update_revocation(&mut shop, &list).unwrap();
        assert!(shop
            .persistent_image()
            .verified_certificates()
            .devices()
            .is_empty());

        let before = snapshot(&shop);
        let error = Relay::new()
            .pay(&mut clone, &mut shop, Amount::from_yuan(5), NOW_S + 10)
            .unwrap_err();
        assert_eq!(
            (error.status_word(), error.code()),
            (
                Some(StatusWord::SECURITY_STATUS_NOT_SATISFIED),
                Some("CERT_REVOKED")
            )
        );
        let after = snapshot(&shop);
        assert_eq!(
            (after.balance(), after.log(), after.counter()),
            (before.balance(), before.log(), before.counter())
        );

        let (sw, code) =
            assert_refused_unchanged(&mut shop, &mut clone, Amount::from_yuan(5), NOW_S + 20);
        assert_eq!(
            (sw, code.as_str()),
            (StatusWord::SECURITY_STATUS_NOT_SATISFIED, "CERT_REVOKED")
        );
    }

    #[test]
    fn a_blocked_secure_element_cannot_pay_or_be_paid() {
        let world = World::new();
        let mut payer = world.wallet(0, WalletForm::PhoneEse, 1, Amount::from_yuan(100));
        let mut payee = world.wallet(0, WalletForm::PhoneEse, 2, Amount::ZERO);
        let list = world.revocation_list(1, &[DeviceId(1)]);
        Relay::new().update_revocation(&mut payer, &list).unwrap();
        assert!(payer.persistent_image().is_blocked());
        let (sw, code) =
            assert_refused_unchanged(&mut payer, &mut payee, Amount::from_yuan(5), NOW_S);
        assert_eq!(
            (sw, code.as_str()),
            (
                StatusWord::AUTHENTICATION_METHOD_BLOCKED,
                "OFFLINE_DEVICE_BLOCKED"
            )
        );
        let error = Relay::new()
            .pay(&mut payee, &mut payer, Amount::from_yuan(5), NOW_S)
            .unwrap_err();
        assert_eq!(
            error.status_word(),
            Some(StatusWord::AUTHENTICATION_METHOD_BLOCKED)
        );
        let stale = Relay::new()
            .update_revocation(&mut payer, &list)
            .unwrap_err();
        assert_eq!(stale.code(), Some("OFFLINE_REVOCATION_STALE"));
    }

    #[test]
    fn an_expired_payee_certificate_is_refused() {
        let world = World::new();
        let mut payer = world.wallet(0, WalletForm::PhoneEse, 1, Amount::from_yuan(100));
        let short_lived = Profile::new(WalletForm::VisitorCard).with_validity_s(3_600);
        let mut visitor = world.wallet_with(0, &short_lived, 2, Amount::ZERO);
        let later = NOW_S + 7_200;
        let (sw, code) =
            assert_refused_unchanged(&mut payer, &mut visitor, Amount::from_yuan(5), later);
        assert_eq!(
            (sw, code.as_str()),
            (StatusWord::SECURITY_STATUS_NOT_SATISFIED, "CERT_EXPIRED")
        );
    }

    #[test]
    fn a_phone_clock_set_before_the_last_sync_is_refused() {
        let world = World::new();
        let mut payer = world.wallet(0, WalletForm::PhoneEse, 1, Amount::from_yuan(100));
        let mut payee = world.wallet(0, WalletForm::PhoneEse, 2, Amount::ZERO);
        let (sw, code) =
            assert_refused_unchanged(&mut payer, &mut payee, Amount::from_yuan(5), NOW_S - 1);
        assert_eq!(
            (sw, code.as_str()),
            (
                StatusWord::CONDITIONS_OF_USE_NOT_SATISFIED,
                "OFFLINE_TIME_BEFORE_SYNC"
            )
        );
    }

    #[test]
    fn loads_need_the_operators_signature_the_next_sequence_and_this_sessions_attestation() {
        let world = World::new();
        let mut card = world.wallet(0, WalletForm::ContactlessCard, 1, Amount::from_yuan(10));
        let operator = &world.operators[0];
        let mut relay = Relay::new();
        let attested = relay
            .attest(&mut card, Nonce([1; 16]))
            .unwrap()
            .attestation
            .digest();
        let order = |issuer: &OperatorIssuer, device: u64, seq: u32, fen: i64| {
            issuer.authorize_load((DeviceId(device), seq, Amount::from_fen(fen)), &attested)
        };
        let cases = [
            (order(operator, 1, 1, 500), "OFFLINE_SEQUENCE_OUT_OF_ORDER"),
            (order(operator, 9, 2, 500), "OFFLINE_WRONG_DEVICE"),
            (
                order(&world.operators[1], 1, 2, 500),
                "OFFLINE_SIGNATURE_INVALID",
            ),
            (order(operator, 1, 2, 199_100), "OFFLINE_BALANCE_CAP"),
            (order(operator, 1, 2, 0), "AMOUNT_NOT_POSITIVE"),
            (
                operator.authorize_load((DeviceId(1), 2, Amount::from_yuan(5)), &[9; 32]),
                "OFFLINE_NOT_ATTESTED",
            ),
        ];
        for (load, expected) in cases {
            let before = snapshot(&card);
            let error = relay.load(&mut card, &load).unwrap_err();
            assert_eq!(error.code(), Some(expected));
            assert_eq!(snapshot(&card), before, "{expected}");
        }
        let good = order(operator, 1, 2, 198_000);
        relay.load(&mut card, &good).unwrap();
        assert_eq!(
            relay.summary(&mut card).unwrap().balance,
            Amount::from_yuan(1_990)
        );
        // The order named the state before the load: spent with it.
        let again = operator.authorize_load((DeviceId(1), 3, Amount::from_yuan(1)), &attested);
        assert_eq!(
            relay.load(&mut card, &again).unwrap_err().code(),
            Some("OFFLINE_NOT_ATTESTED")
        );
    }

    #[test]
    fn a_copy_of_a_card_cannot_apply_its_originals_later_loads() {
        let world = World::new();
        let mut card = world.wallet(0, WalletForm::ContactlessCard, 1, Amount::from_yuan(100));
        let mut copy = card.clone_card();
        let mut shop = world.wallet(0, WalletForm::PhoneEse, 2, Amount::ZERO);
        Relay::new()
            .pay(&mut card, &mut shop, Amount::from_yuan(30), NOW_S)
            .unwrap();
        let mut relay = Relay::new();
        let nonce = Nonce([3; 16]);
        let attested = relay.attest(&mut card, nonce).unwrap().attestation.digest();
        let load =
            world.operators[0].authorize_load((DeviceId(1), 2, Amount::from_yuan(50)), &attested);
        // The copy attests over the same nonce, but its state is the older one.
        relay.attest(&mut copy, nonce).unwrap();
        let before = snapshot(&copy);
        let error = relay.load(&mut copy, &load).unwrap_err();
        assert_eq!(error.code(), Some("OFFLINE_NOT_ATTESTED"));
        assert_eq!(snapshot(&copy), before);
        relay.load(&mut card, &load).unwrap();
        assert_eq!(card.persistent_image().balance(), Amount::from_yuan(120));
    }

    #[test]
    fn a_cloned_card_spends_twice_with_one_counter_and_the_records_show_it() {
        let world = World::new();
        let mut original = world.wallet(0, WalletForm::ContactlessCard, 1, Amount::from_yuan(100));
        let mut clone = original.clone_card();
        let mut bakery = world.wallet(0, WalletForm::PhoneEse, 2, Amount::ZERO);
        let mut taxi = world.wallet(1, WalletForm::PhoneEse, 3, Amount::ZERO);
        let spend = Amount::from_yuan(80);
        Relay::new()
            .pay(&mut original, &mut bakery, spend, NOW_S)
            .unwrap();
        Relay::new()
            .pay(&mut clone, &mut taxi, spend, NOW_S + 5)
            .unwrap();

        let mut relay = Relay::new();
        let first = relay.records_to_sync(&mut original).unwrap()[0].signed;
        let second = relay.records_to_sync(&mut clone).unwrap()[0].signed;
        assert_eq!(first.record.payer, second.record.payer);
        assert_eq!(first.record.counter, second.record.counter);
        assert_ne!(first.record, second.record);
        // Both SEs think they paid 80 out of 100: 160 left one SE that held 100.
        let received: Amount = [&bakery, &taxi]
            .iter()
            .map(|c| c.persistent_image().balance())
            .sum();
        assert_eq!(received, Amount::from_yuan(160));
    }

    #[test]
    fn a_payee_refuses_a_second_record_with_a_used_counter() {
        let world = World::new();
        let mut original = world.wallet(0, WalletForm::ContactlessCard, 1, Amount::from_yuan(100));
        let mut clone = original.clone_card();
        let mut bakery = world.wallet(0, WalletForm::PhoneEse, 2, Amount::ZERO);
        Relay::new()
            .pay(&mut original, &mut bakery, Amount::from_yuan(10), NOW_S)
            .unwrap();
        let bakery_before = snapshot(&bakery);
        let error = Relay::new()
            .pay(&mut clone, &mut bakery, Amount::from_yuan(10), NOW_S)
            .unwrap_err();
        assert_eq!(error.code(), Some("OFFLINE_COUNTER_REUSED"));
        assert_eq!(snapshot(&bakery).balance(), bakery_before.balance());
        assert_eq!(snapshot(&bakery).log(), bakery_before.log());
    }
}
