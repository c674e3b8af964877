//! Real secure-element applets driven by any sequence of steps: raw APDUs, commands built from
//! messages the cards signed earlier (replayed to another card, edited, re-timed), whole taps
//! cut at any APDU or persistent write, loads, unloads, syncs, revocation lists and clocks set
//! anywhere. After every step, on each card as its next power-up would find it:
//!
//! * the applet's own invariants hold (`PersistentState::assert_invariants`);
//! * counters, sequence numbers and the clock floor never go back;
//! * value is conserved: the cards' balances plus what is in flight between them (paid, not yet
//!   credited) plus signed unloads not yet confirmed equal what was loaded onto them, between
//!   two syncs;
//! * every answer is a status word, and a refusal carries no data.
//!
//! An input is a script of steps, each an opcode byte and its fields (see [`Action::read`]).

#![no_main]

use ecny::certs::device::RevocationList;
use ecny::certs::Signature;
use ecny::offline::apdu::{ResponseApdu, StatusWord};
use ecny::offline::applet::{cla, ins, tag, Applet, PersistentState};
use ecny::offline::messages::{
    Acknowledgement, ChallengeOffer, Nonce, PayCommand, PaymentRequest, ReceiveCommand, SelectInfo,
    SignedRecord, Wire, NONCE_BYTES,
};
use ecny::offline::nvm::TearingPlan;
use ecny::offline::protocol::{command_apdus, select_apdu, Relay};
use ecny::offline::tearing::value_held;
use ecny::Amount;
use ecny_fuzz::offline::{device, world, World, CARDS, NOW_S};
use ecny_fuzz::{Script, ScriptWriter};
use libfuzzer_sys::fuzz_target;

const STEPS_MAX: usize = 48;
const POOL_MAX: usize = 32;
/// Amounts the harness asks for, in fen: up to 10,000 yuan, beyond every offline cap.
const AMOUNT_FEN_SPAN: u32 = 1_000_001;

#[derive(Debug, Clone)]
enum Action {
    /// A whole tap through the phones, possibly cut before one of its APDUs (`cut` 1 + n).
    Pay {
        payer: u8,
        payee: u8,
        fen: u32,
        cut: u8,
    },
    /// The next contact after a torn tap: finish what waits for a receipt.
    Contact {
        payer: u8,
        payee: u8,
        cut: u8,
    },
    Unload {
        card: u8,
        fen: u32,
    },
    Load {
        card: u8,
        fen: u32,
    },
    /// Online: attest, and the card's operator confirms everything up to its last entry.
    Sync {
        card: u8,
    },
    /// A revocation list of this version blocking card `block - 1` (none for 0).
    Revoke {
        card: u8,
        version: u8,
        block: u8,
    },
    /// Cut the card's power after its next `after_writes` persistent writes.
    Tear {
        card: u8,
        after_writes: u8,
    },
    PowerUp {
        card: u8,
    },
    /// The phones' clocks move on (or a reader's is set forward).
    Wait {
        seconds: u32,
    },
    /// SELECT, remembering the session the card answers.
    Select {
        card: u8,
    },
    /// One command to one card, chained as the phone would, from the data chosen.
    Send {
        card: u8,
        command: Instruction,
        data: Data,
    },
    /// Bytes straight into the card.
    Raw {
        card: u8,
        apdu: Vec<u8>,
    },
}

#[derive(Debug, Clone)]
enum Instruction {
    Known { index: u8, p1: u8, p2: u8 },
    Any { header: [u8; 4] },
}

#[derive(Debug, Clone)]
enum Data {
    Bytes(Vec<u8>),
    /// Something a card answered or was sent earlier, possibly edited (`mask` 0: as it was).
    Pool {
        index: u8,
        at: u16,
        mask: u8,
    },
    /// REQUEST PAYMENT for `payer`'s last session seen.
    Request {
        payer: u8,
        fen: u32,
        skew_s: i16,
    },
    /// PAY with a pooled challenge offer and `payee`'s certificates.
    Pay {
        offer: u8,
        payee: u8,
        skew_s: i16,
    },
    /// RECEIVE with a pooled signed record and `payer`'s certificates.
    Receive {
        record: u8,
        payer: u8,
        skew_s: i16,
    },
    /// ACKNOWLEDGE with a pooled receipt for a pooled record's counter.
    Acknowledge {
        record: u8,
        receipt: u8,
    },
    /// ATTEST SYNC over this nonce.
    Attest {
        nonce: u128,
    },
}

const KNOWN_INSTRUCTIONS: [(u8, u8); 13] = [
    (cla::ISO, ins::SELECT),
    (cla::ISO, ins::READ_RECORD),
    (cla::PROPRIETARY, ins::GET_DATA),
    (cla::PROPRIETARY, ins::LOAD),
    (cla::PROPRIETARY, ins::REQUEST_PAYMENT),
    (cla::PROPRIETARY, ins::PAY),
    (cla::PROPRIETARY, ins::RECEIVE),
    (cla::PROPRIETARY, ins::ACKNOWLEDGE),
    (cla::PROPRIETARY, ins::CONFIRM_SYNC),
    (cla::PROPRIETARY, ins::UPDATE_REVOCATION),
    (cla::PROPRIETARY, ins::UNLOAD),
    (cla::PROPRIETARY, ins::ATTEST),
    (cla::ISO, ins::GET_DATA),
];

const ACTIONS: u8 = 12;
const DATA_KINDS: u8 = 7;

impl Action {
    /// One step: an opcode (modulo the number of steps) and its fields, integers little-endian,
    /// byte strings after a `u16` length.
    fn read(script: &mut Script<'_>) -> Option<Action> {
        let s = script;
        Some(match s.u8()? % ACTIONS {
            0 => Action::Pay {
                payer: s.u8()?,
                payee: s.u8()?,
                fen: s.u32()?,
                cut: s.u8()?,
            },
            1 => Action::Contact {
                payer: s.u8()?,
                payee: s.u8()?,
                cut: s.u8()?,
            },
            2 => Action::Unload {
                card: s.u8()?,
                fen: s.u32()?,
            },
            3 => Action::Load {
                card: s.u8()?,
                fen: s.u32()?,
            },
            4 => Action::Sync { card: s.u8()? },
            5 => Action::Revoke {
                card: s.u8()?,
                version: s.u8()?,
                block: s.u8()?,
            },
            6 => Action::Tear {
                card: s.u8()?,
                after_writes: s.u8()?,
            },
            7 => Action::PowerUp { card: s.u8()? },
            8 => Action::Wait { seconds: s.u32()? },
            9 => Action::Select { card: s.u8()? },
            10 => {
                let card = s.u8()?;
                let command = match s.u8()? % 2 {
                    0 => Instruction::Known {
                        index: s.u8()?,
                        p1: s.u8()?,
                        p2: s.u8()?,
                    },
                    _ => Instruction::Any {
                        header: s.u32()?.to_be_bytes(),
                    },
                };
                let data = match s.u8()? % DATA_KINDS {
                    0 => Data::Bytes(s.bytes()?.to_vec()),
                    1 => Data::Pool {
                        index: s.u8()?,
                        at: s.u16()?,
                        mask: s.u8()?,
                    },
                    2 => Data::Request {
                        payer: s.u8()?,
                        fen: s.u32()?,
                        skew_s: s.i16()?,
                    },
                    3 => Data::Pay {
                        offer: s.u8()?,
                        payee: s.u8()?,
                        skew_s: s.i16()?,
                    },
                    4 => Data::Receive {
                        record: s.u8()?,
                        payer: s.u8()?,
                        skew_s: s.i16()?,
                    },
                    5 => Data::Acknowledge {
                        record: s.u8()?,
                        receipt: s.u8()?,
                    },
                    _ => Data::Attest {
                        nonce: u128::from(s.u64()?) << 64 | u128::from(s.u64()?),
                    },
                };
                Action::Send {
                    card,
                    command,
                    data,
                }
            }
            _ => Action::Raw {
                card: s.u8()?,
                apdu: s.bytes()?.to_vec(),
            },
        })
    }

    /// What [`Action::read`] reads, for the seeds.
    fn write(&self, w: &mut ScriptWriter) {
        match self {
            Action::Pay {
                payer,
                payee,
                fen,
                cut,
            } => w.u8(0).u8(*payer).u8(*payee).u32(*fen).u8(*cut),
            Action::Contact { payer, payee, cut } => w.u8(1).u8(*payer).u8(*payee).u8(*cut),
            Action::Unload { card, fen } => w.u8(2).u8(*card).u32(*fen),
            Action::Load { card, fen } => w.u8(3).u8(*card).u32(*fen),
            Action::Sync { card } => w.u8(4).u8(*card),
            Action::Revoke {
                card,
                version,
                block,
            } => w.u8(5).u8(*card).u8(*version).u8(*block),
            Action::Tear { card, after_writes } => w.u8(6).u8(*card).u8(*after_writes),
            Action::PowerUp { card } => w.u8(7).u8(*card),
            Action::Wait { seconds } => w.u8(8).u32(*seconds),
            Action::Select { card } => w.u8(9).u8(*card),
            Action::Send {
                card,
                command,
                data,
            } => {
                w.u8(10).u8(*card);
                match command {
                    Instruction::Known { index, p1, p2 } => w.u8(0).u8(*index).u8(*p1).u8(*p2),
                    Instruction::Any { header } => w.u8(1).u32(u32::from_be_bytes(*header)),
                };
                match data {
                    Data::Bytes(bytes) => w.u8(0).bytes(bytes),
                    Data::Pool { index, at, mask } => w.u8(1).u8(*index).u16(*at).u8(*mask),
                    Data::Request { payer, fen, skew_s } => {
                        w.u8(2).u8(*payer).u32(*fen).i16(*skew_s)
                    }
                    Data::Pay {
                        offer,
                        payee,
                        skew_s,
                    } => w.u8(3).u8(*offer).u8(*payee).i16(*skew_s),
                    Data::Receive {
                        record,
                        payer,
                        skew_s,
                    } => w.u8(4).u8(*record).u8(*payer).i16(*skew_s),
                    Data::Acknowledge { record, receipt } => w.u8(5).u8(*record).u8(*receipt),
                    Data::Attest { nonce } => w.u8(6).u64((nonce >> 64) as u64).u64(*nonce as u64),
                }
            }
            Action::Raw { card, apdu } => w.u8(11).u8(*card).bytes(apdu),
        };
    }
}

/// What the harness knows and expects.
struct Run {
    cards: Vec<Applet>,
    now_s: u32,
    sessions: [Option<Nonce>; CARDS],
    /// Data fields seen on the wire, newest last.
    pool: Vec<Vec<u8>>,
    /// Balances + in flight + unloads kept, as loads and syncs left it.
    expected_held: Amount,
    /// Per card, as its last check found it.
    seen: Vec<Seen>,
}

#[derive(Clone, Copy)]
struct Seen {
    counter: u32,
    unload_seq: u32,
    clock_floor_s: u32,
}

fuzz_target!(init: ecny_fuzz::write_seeds_if_asked(seeds), |data: &[u8]| {
    let world = world();
    let mut script = Script::new(data);
    let mut run = Run::new(world);
    for _ in 0..STEPS_MAX {
        let Some(action) = Action::read(&mut script) else {
            break;
        };
        run.step(world, action);
        run.check();
    }
});

impl Run {
    fn new(world: &World) -> Run {
        let cards = world.cards.clone();
        let states: Vec<PersistentState> = cards.iter().map(powered_image).collect();
        let seen = states.iter().map(Seen::of).collect();
        Run {
            expected_held: held(&states),
            cards,
            now_s: NOW_S,
            sessions: [None; CARDS],
            pool: Vec::new(),
            seen,
        }
    }

    fn step(&mut self, world: &World, action: Action) {
        match action {
            Action::Pay {
                payer,
                payee,
                fen,
                cut,
            } => self.pay(payer, payee, amount(fen), cut),
            Action::Contact { payer, payee, cut } => {
                let now_s = self.now_s;
                let Some((payer, payee)) = self.pair(payer, payee) else {
                    return;
                };
                let _ = relay(cut).contact(payer, payee, now_s);
            }
            Action::Unload { card, fen } => {
                let now_s = self.now_s;
                let card = self.powered(card);
                if let Ok(signed) = Relay::new().unload(card, amount(fen), now_s) {
                    self.remember(signed.encode());
                }
            }
            Action::Load { card, fen } => self.load(world, card, amount(fen)),
            Action::Sync { card } => self.sync(world, card),
            Action::Revoke {
                card,
                version,
                block,
            } => {
                let blocked = block
                    .checked_sub(1)
                    .map(|card| device(usize::from(card) % CARDS));
                let list = RevocationList::issue(
                    u32::from(version),
                    self.now_s,
                    blocked,
                    &world.central_bank,
                )
                .expect("one device fits");
                let _ = Relay::new().update_revocation(self.powered(card), &list);
            }
            Action::Tear { card, after_writes } => {
                let plan = TearingPlan::after_writes(u32::from(after_writes % 24) + 1);
                self.cards[index(card)].arm_tearing(plan);
            }
            Action::PowerUp { card } => {
                let card = index(card);
                self.cards[card].power_up();
                self.sessions[card] = None;
            }
            Action::Wait { seconds } => self.now_s = self.now_s.saturating_add(seconds),
            Action::Select { card } => {
                self.transmit(card, select_apdu().encode());
            }
            Action::Send {
                card,
                command,
                data,
            } => self.send(world, card, command, data),
            Action::Raw { card, apdu } => {
                self.transmit(card, apdu);
            }
        }
    }

    fn pay(&mut self, payer: u8, payee: u8, amount: Amount, cut: u8) {
        let now_s = self.now_s;
        let Some((payer, payee)) = self.pair(payer, payee) else {
            return;
        };
        let mut relay = relay(cut);
        if let Ok(payment) = relay.pay(payer, payee, amount, now_s) {
            self.remember(payment.signed.encode());
        }
    }

    /// The operator orders a load against the card's own attestation; whatever the card then
    /// applied (once at most) is new value.
    fn load(&mut self, world: &World, card: u8, amount: Amount) {
        let card = index(card);
        let issuer = &world.issuers[world.operator_of[card]];
        let device = device(card);
        let applet = self.powered(card as u8);
        let Ok(before) = Relay::new().summary(applet) else {
            return;
        };
        let order = (device, before.load_seq.wrapping_add(1), amount);
        let _ = issuer.load_card(applet, order);
        let mut probe = applet.clone();
        probe.power_up();
        let after = Relay::new()
            .summary(&mut probe)
            .expect("a powered card answers");
        match after.load_seq.wrapping_sub(before.load_seq) {
            0 => {}
            1 => {
                self.expected_held = self
                    .expected_held
                    .checked_add(amount)
                    .expect("loads are bounded by the caps");
            }
            other => panic!("one load order moved the load sequence by {other}"),
        }
    }

    /// Value leaves for the center at sync (unloads, settled records), and records the center
    /// settled may return to the reckoning on the other card: the reference starts afresh.
    fn sync(&mut self, world: &World, card: u8) {
        let card = index(card);
        let issuer = &world.issuers[world.operator_of[card]];
        let now_s = self.now_s;
        let applet = self.powered(card as u8);
        let mut relay = Relay::new();
        let nonce = Nonce([card as u8; NONCE_BYTES]);
        if let Ok(sync) = relay.attest(applet, nonce) {
            let attestation = &sync.attestation;
            let through = attestation.next_log_seq - 1;
            let order =
                issuer.confirm_sync((attestation.device, through, now_s), &attestation.digest());
            let _ = relay.confirm_sync(applet, &order);
        }
        let states: Vec<PersistentState> = self.cards.iter().map(powered_image).collect();
        self.expected_held = held(&states);
    }

    fn send(&mut self, world: &World, card: u8, command: Instruction, data: Data) {
        let header = match command {
            Instruction::Known { index, p1, p2 } => {
                let (class, instruction) =
                    KNOWN_INSTRUCTIONS[usize::from(index) % KNOWN_INSTRUCTIONS.len()];
                [class, instruction, p1, p2]
            }
            Instruction::Any { header } => header,
        };
        let Some(bytes) = self.data(world, data) else {
            return;
        };
        self.remember(bytes.clone());
        for apdu in command_apdus(header, &bytes, true) {
            self.transmit(card, apdu.encode());
        }
    }

    fn data(&self, world: &World, data: Data) -> Option<Vec<u8>> {
        let time = |skew_s: i16| self.now_s.saturating_add_signed(i32::from(skew_s));
        Some(match data {
            Data::Bytes(bytes) => bytes,
            Data::Pool { index, at, mask } => {
                let mut bytes = self.pooled(index)?.to_vec();
                if !bytes.is_empty() {
                    let at = usize::from(at) % bytes.len();
                    bytes[at] ^= mask;
                }
                bytes
            }
            Data::Request { payer, fen, skew_s } => {
                let payer = index(payer);
                PaymentRequest {
                    amount: amount(fen),
                    time_s: time(skew_s),
                    payer: device(payer),
                    payer_session: self.sessions[payer].unwrap_or(Nonce([0; NONCE_BYTES])),
                }
                .encode()
            }
            Data::Pay {
                offer,
                payee,
                skew_s,
            } => {
                let (device_cert, operator_cert) = world.chains[index(payee)];
                PayCommand {
                    time_s: time(skew_s),
                    offer: ChallengeOffer::decode(self.pooled(offer)?).ok()?,
                    payee_device_cert: device_cert,
                    payee_operator_cert: operator_cert,
                }
                .encode()
            }
            Data::Receive {
                record,
                payer,
                skew_s,
            } => {
                let (device_cert, operator_cert) = world.chains[index(payer)];
                ReceiveCommand {
                    time_s: time(skew_s),
                    signed: SignedRecord::decode(self.pooled(record)?).ok()?,
                    payer_device_cert: device_cert,
                    payer_operator_cert: operator_cert,
                }
                .encode()
            }
            Data::Acknowledge { record, receipt } => {
                let record = SignedRecord::decode(self.pooled(record)?).ok()?;
                let receipt = self.pooled(receipt)?;
                Acknowledgement {
                    counter: record.record.counter,
                    receipt: Signature(receipt.try_into().ok()?),
                }
                .encode()
            }
            Data::Attest { nonce } => Nonce(nonce.to_be_bytes()).encode(),
        })
    }

    /// One APDU to a card as it is (powered or not); its answer joins the pool.
    fn transmit(&mut self, card: u8, apdu: Vec<u8>) {
        let card = index(card);
        let was_powered = self.cards[card].is_powered();
        let answer = self.cards[card].process(&apdu);
        if !self.cards[card].is_powered() {
            assert!(answer.is_empty(), "a card that lost power answered");
            self.sessions[card] = None;
            return;
        }
        assert!(was_powered, "a card came back without a power-up");
        let response = ResponseApdu::parse(&answer).expect("a powered card answers a status word");
        if response.sw != StatusWord::SUCCESS {
            assert!(response.data.is_empty(), "a refusal carried data");
            return;
        }
        if apdu.get(1) == Some(&ins::SELECT) {
            if let Ok(info) = SelectInfo::decode(&response.data) {
                self.sessions[card] = Some(info.session);
            }
        }
        if !response.data.is_empty() {
            self.remember(response.data);
        }
    }

    fn remember(&mut self, bytes: Vec<u8>) {
        if self.pool.len() == POOL_MAX {
            self.pool.remove(0);
        }
        self.pool.push(bytes);
    }

    fn pooled(&self, index: u8) -> Option<&[u8]> {
        if self.pool.is_empty() {
            return None;
        }
        Some(&self.pool[usize::from(index) % self.pool.len()])
    }

    /// The card, powered up if a cut left it dark: the phone wakes its secure element.
    fn powered(&mut self, card: u8) -> &mut Applet {
        let card = index(card);
        if !self.cards[card].is_powered() {
            self.cards[card].power_up();
            self.sessions[card] = None;
        }
        &mut self.cards[card]
    }

    fn pair(&mut self, a: u8, b: u8) -> Option<(&mut Applet, &mut Applet)> {
        let (a, b) = (index(a), index(b));
        if a == b {
            return None;
        }
        self.sessions = [None; CARDS];
        let (low, high) = self.cards.split_at_mut(a.max(b));
        let (first, second) = (&mut low[a.min(b)], &mut high[0]);
        Some(if a < b {
            (first, second)
        } else {
            (second, first)
        })
    }

    fn check(&mut self) {
        let states: Vec<PersistentState> = self.cards.iter().map(powered_image).collect();
        for (state, seen) in states.iter().zip(&mut self.seen) {
            state.assert_invariants();
            let now = Seen::of(state);
            assert!(now.counter >= seen.counter, "the payment counter went back");
            assert!(
                now.unload_seq >= seen.unload_seq,
                "the unload sequence went back"
            );
            assert!(
                now.clock_floor_s >= seen.clock_floor_s,
                "the clock floor went back"
            );
            *seen = now;
        }
        assert_eq!(
            held(&states),
            self.expected_held,
            "value held by the cards changed without a load or a sync"
        );
    }
}

impl Seen {
    fn of(state: &PersistentState) -> Seen {
        Seen {
            counter: state.counter(),
            unload_seq: state.unload_seq(),
            clock_floor_s: state.clock_floor_s(),
        }
    }
}

/// The card's persistent memory as its next power-up finds it (a torn transaction rolled back).
fn powered_image(card: &Applet) -> PersistentState {
    let mut probe = card.clone();
    probe.power_up();
    probe.persistent_image().clone()
}

fn held(states: &[PersistentState]) -> Amount {
    let refs: Vec<&PersistentState> = states.iter().collect();
    value_held(&refs)
}

/// A relay whose link breaks before APDU `cut - 1`, or never for 0.
fn relay(cut: u8) -> Relay {
    match cut.checked_sub(1) {
        Some(apdu) => Relay::cutting_link_before(usize::from(apdu % 32)),
        None => Relay::new(),
    }
}

fn index(card: u8) -> usize {
    usize::from(card) % CARDS
}

fn amount(fen: u32) -> Amount {
    Amount::from_fen(i64::from(fen % AMOUNT_FEN_SPAN))
}

/// Scripts of what phones and cards really do, for the fuzzer to start from.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    use Action::*;
    let known = |instruction: u8, p1: u8, p2: u8| {
        let index = KNOWN_INSTRUCTIONS
            .iter()
            .position(|(_, ins)| *ins == instruction)
            .expect("a known instruction") as u8;
        Instruction::Known { index, p1, p2 }
    };
    let [tag_balance, tag_summary] = [tag::BALANCE, tag::SUMMARY].map(u16::to_be_bytes);
    let get_data = |[p1, p2]: [u8; 2]| vec![cla::PROPRIETARY, ins::GET_DATA, p1, p2, 0];
    let scripts: Vec<(&'static str, Vec<Action>)> = vec![
        (
            "tap",
            vec![Pay {
                payer: 0,
                payee: 1,
                fen: 6_660,
                cut: 0,
            }],
        ),
        (
            "tap-cut-then-contact",
            vec![
                Pay {
                    payer: 0,
                    payee: 1,
                    fen: 6_660,
                    cut: 10,
                },
                Contact {
                    payer: 0,
                    payee: 1,
                    cut: 0,
                },
            ],
        ),
        (
            // The tap's steps one by one, each message built from what the cards answered.
            "tap-by-hand",
            vec![
                Select { card: 1 },
                Select { card: 0 },
                Send {
                    card: 1,
                    command: known(ins::REQUEST_PAYMENT, 0, 0),
                    data: Data::Request {
                        payer: 0,
                        fen: 6_660,
                        skew_s: 0,
                    },
                },
                Send {
                    card: 0,
                    command: known(ins::PAY, 0, 0),
                    data: Data::Pay {
                        offer: 3,
                        payee: 1,
                        skew_s: 0,
                    },
                },
                Send {
                    card: 1,
                    command: known(ins::RECEIVE, 0, 0),
                    data: Data::Receive {
                        record: 5,
                        payer: 0,
                        skew_s: 0,
                    },
                },
                Send {
                    card: 0,
                    command: known(ins::ACKNOWLEDGE, 0, 0),
                    data: Data::Acknowledge {
                        record: 5,
                        receipt: 7,
                    },
                },
            ],
        ),
        (
            "unload-load-sync",
            vec![
                Unload {
                    card: 0,
                    fen: 1_000,
                },
                Load { card: 1, fen: 500 },
                Pay {
                    payer: 1,
                    payee: 2,
                    fen: 300,
                    cut: 0,
                },
                Sync { card: 0 },
                Sync { card: 1 },
            ],
        ),
        (
            "torn-tap",
            vec![
                Tear {
                    card: 0,
                    after_writes: 3,
                },
                Pay {
                    payer: 0,
                    payee: 1,
                    fen: 100,
                    cut: 0,
                },
                PowerUp { card: 0 },
                Contact {
                    payer: 0,
                    payee: 1,
                    cut: 0,
                },
            ],
        ),
        (
            "revoked-payer",
            vec![
                Revoke {
                    card: 1,
                    version: 1,
                    block: 1,
                },
                Pay {
                    payer: 0,
                    payee: 1,
                    fen: 100,
                    cut: 0,
                },
            ],
        ),
        (
            "student-daily-cap",
            vec![
                Pay {
                    payer: 2,
                    payee: 0,
                    fen: 9_000,
                    cut: 0,
                },
                Pay {
                    payer: 2,
                    payee: 0,
                    fen: 2_000,
                    cut: 0,
                },
                Wait { seconds: 86_400 },
                Pay {
                    payer: 2,
                    payee: 0,
                    fen: 2_000,
                    cut: 0,
                },
            ],
        ),
        (
            "clock-set-forward",
            vec![
                Wait {
                    seconds: 8 * 86_400,
                },
                Pay {
                    payer: 0,
                    payee: 1,
                    fen: 100,
                    cut: 0,
                },
                Sync { card: 0 },
                Pay {
                    payer: 0,
                    payee: 1,
                    fen: 100,
                    cut: 0,
                },
            ],
        ),
        (
            "raw-apdus",
            vec![
                Raw {
                    card: 0,
                    apdu: select_apdu().encode(),
                },
                Raw {
                    card: 0,
                    apdu: get_data(tag_balance),
                },
                Raw {
                    card: 0,
                    apdu: get_data(tag_summary),
                },
                Raw {
                    card: 0,
                    apdu: vec![cla::ISO, ins::READ_RECORD, 1, 0x04, 0],
                },
                Raw {
                    card: 0,
                    apdu: vec![cla::PROPRIETARY | 0x10, ins::PAY, 0, 0, 1, 0xAA],
                },
                Raw {
                    card: 0,
                    apdu: vec![cla::PROPRIETARY, ins::PAY, 0, 0, 0, 0, 1, 0xAA],
                },
                Send {
                    card: 0,
                    command: known(ins::ATTEST, 0, 0),
                    data: Data::Attest { nonce: 7 },
                },
            ],
        ),
    ];
    scripts
        .into_iter()
        .map(|(name, actions)| {
            let mut writer = ScriptWriter::new();
            for action in &actions {
                action.write(&mut writer);
            }
            (name, writer.take())
        })
        .collect()
}
