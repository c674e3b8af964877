//! The threat model of offline value (README, "What an attacker can take offline"), one test per
//! attack and its bound: a rolled-back card, a cloned card, a rogue operator, a phone that leaves
//! records out, a reader whose clock runs ahead, a hostile reader. The registration center
//! believes only what a secure element attests; each test shows the attack refused or bounded,
//! nothing moved by a refusal, and the audit holding. The property test at the end lets honest
//! and hostile devices pay and sync in random order.

#[path = "support/offline.rs"]
mod offline;
mod support;

use ecny::amount::Amount;
use ecny::certs::device::CompactCertificate;
use ecny::certs::{KeyPair, Signature};
use ecny::command::{Command, Origin, Submission};
use ecny::ids::DeviceId;
use ecny::ledger::{BlockReason, DeviceChange, Event};
use ecny::offline::apdu::{ResponseApdu, StatusWord};
use ecny::offline::applet::{cla, ins, tag, Applet};
use ecny::offline::issuer::OperatorIssuer;
use ecny::offline::messages::{
    Challenge, ChallengeOffer, EntryRole, LogEntry, Nonce, PayCommand, PaymentRecord,
    PaymentRequest, ReceiveCommand, SelectInfo, SignedRecord, Wire,
};
use ecny::offline::profiles::{Profile, WalletForm};
use ecny::offline::protocol::{command_apdus, select_apdu, Relay};
use ecny::wallet::WalletClass;
use offline::{issuers, Device, NOW_S};
use support::{yuan, World};

const DAY_S: u32 = 86_400;

fn phone(form: WalletForm) -> Profile {
    Profile::new(form)
}

/// The state hash is unchanged and the audit holds: what every refusal must leave.
fn assert_untouched(world: &World, hash: [u8; 32]) {
    assert_eq!(world.hash(), hash, "a refusal moved something");
    world.assert_audit();
}

#[test]
fn a_rolled_back_card_cannot_cash_out_value_it_already_spent() {
    let mut world = World::new();
    let issuers = issuers();
    let [jiangnan, lakeside] = world.operators;
    let holder = world.open_banked(jiangnan, "20,000", WalletClass::Two);
    world.exchange(&holder, "10,000").unwrap();
    let wallet = Some(holder.wallet);
    let mut card = offline::issue(
        &mut world,
        &issuers,
        jiangnan,
        phone(WalletForm::PhoneEse),
        1,
        wallet,
    );
    let mut shop = offline::issue(
        &mut world,
        &issuers,
        lakeside,
        phone(WalletForm::PhoneEse),
        2,
        None,
    );
    offline::load(&mut world, &issuers, &mut card, 1, "5,000").unwrap();
    let image = card.copy();
    for i in 1..=5 {
        Relay::new()
            .pay(
                &mut card.card,
                &mut shop.card,
                yuan("1,000"),
                NOW_S + 60 * i,
            )
            .unwrap();
    }
    offline::sync(&mut world, &issuers, &mut shop).unwrap();
    // The holder restores the image kept from before the payments and asks for its value back.
    let mut restored = image;
    let (wallet_before, hash) = (world.balance(holder.wallet), world.hash());
    let refused = offline::unload(&mut world, &mut restored, "5,000", NOW_S + 600);
    assert_eq!(refused.unwrap_err().code(), "OFFLINE_UNLOAD_ABOVE_BELIEVED");
    assert_untouched(&world, hash);
    assert_eq!(world.balance(holder.wallet), wallet_before);
    // Its next sync gives it away: its own signed counter is behind what it already spent.
    let report = offline::sync(&mut world, &issuers, &mut restored).unwrap();
    assert_eq!((report.blocked, report.confirm), (1, None));
    let device = world.platform.state().devices().device(card.id).unwrap();
    assert_eq!(device.blocked, Some(BlockReason::RolledBack));
    assert_eq!(device.believed_balance(), Amount::ZERO);
    let load = Command::LoadDevice {
        device: card.id,
        load_seq: 2,
        amount: yuan("1"),
        auth: None,
    };
    assert_eq!(
        world.run_signed(jiangnan, load).unwrap_err().code(),
        "DEVICE_BLOCKED"
    );
    world.assert_audit();
}

#[test]
fn a_rollback_cashed_out_before_its_payee_synced_costs_its_issuer_at_most_the_copied_balance() {
    let mut world = World::new();
    let issuers = issuers();
    let [jiangnan, lakeside] = world.operators;
    let holder = world.open_banked(jiangnan, "20,000", WalletClass::Two);
    world.exchange(&holder, "10,000").unwrap();
    let wallet = Some(holder.wallet);
    let mut card = offline::issue(
        &mut world,
        &issuers,
        jiangnan,
        phone(WalletForm::PhoneEse),
        3,
        wallet,
    );
    let mut shop = offline::issue(
        &mut world,
        &issuers,
        lakeside,
        phone(WalletForm::PhoneEse),
        4,
        None,
    );
    offline::load(&mut world, &issuers, &mut card, 1, "2,000").unwrap();
    let mut restored = card.copy();
    let copied = restored.balance();
    Relay::new()
        .pay(&mut card.card, &mut shop.card, yuan("800"), NOW_S + 60)
        .unwrap();
    // The center has not seen the payment yet: it believes the card holds 2,000.
    offline::unload(&mut world, &mut restored, "2,000", NOW_S + 120).unwrap();
    let vault_before = offline::vault(&world, jiangnan);
    offline::sync(&mut world, &issuers, &mut shop).unwrap();
    let caught = offline::sync(&mut world, &issuers, &mut restored).unwrap();
    assert_eq!(caught.blocked, 1);
    let device = world.platform.state().devices().device(card.id).unwrap();
    assert_eq!(device.blocked, Some(BlockReason::RolledBack));
    assert_eq!(device.covered, yuan("800"), "what was spent twice, no more");
    assert!(device.covered <= copied);
    let vault_after = offline::vault(&world, jiangnan);
    assert_eq!(vault_before.fen() - vault_after.fen(), yuan("800").fen());
    world.assert_audit();
}

#[test]
fn a_card_blocked_as_a_clone_cannot_unload_or_be_paid_out() {
    let mut world = World::new();
    let issuers = issuers();
    let [jiangnan, lakeside] = world.operators;
    let holder = world.open_banked(jiangnan, "5,000", WalletClass::Two);
    world.exchange(&holder, "1,000").unwrap();
    let wallet = Some(holder.wallet);
    let mut card = offline::issue(
        &mut world,
        &issuers,
        jiangnan,
        phone(WalletForm::ContactlessCard),
        10,
        wallet,
    );
    let mut shop_a = offline::issue(
        &mut world,
        &issuers,
        lakeside,
        phone(WalletForm::VisitorCard),
        11,
        None,
    );
    let mut shop_b = offline::issue(
        &mut world,
        &issuers,
        lakeside,
        phone(WalletForm::VisitorCard),
        12,
        None,
    );
    offline::load(&mut world, &issuers, &mut card, 1, "300").unwrap();
    let mut clone = card.copy();
    Relay::new()
        .pay(&mut card.card, &mut shop_a.card, yuan("200"), NOW_S + 10)
        .unwrap();
    Relay::new()
        .pay(&mut clone.card, &mut shop_b.card, yuan("250"), NOW_S + 20)
        .unwrap();
    offline::sync(&mut world, &issuers, &mut shop_a).unwrap();
    assert_eq!(
        offline::sync(&mut world, &issuers, &mut shop_b)
            .unwrap()
            .blocked,
        1
    );
    let device = world.platform.state().devices().device(card.id).unwrap();
    assert_eq!(device.blocked, Some(BlockReason::CounterReused));
    assert_eq!(
        device.covered,
        yuan("150"),
        "bounded by the 300 the copy held"
    );
    let hash = world.hash();
    let refused = offline::unload(&mut world, &mut card, "100", NOW_S + 60);
    assert_eq!(refused.unwrap_err().code(), "DEVICE_BLOCKED");
    let refund = Command::RefundAtCounter { device: card.id };
    assert_eq!(
        world.run(jiangnan, refund).unwrap_err().code(),
        "DEVICE_BLOCKED"
    );
    assert_untouched(&world, hash);
}

/// A received entry claiming `payer` paid `payee`, as a rogue's own device would report it.
fn claimed_receipt(
    payer: &Device,
    payee: DeviceId,
    amount: &str,
    signature: Signature,
) -> LogEntry {
    let record = PaymentRecord {
        payer: payer.id,
        counter: 1,
        payee,
        nonce: Nonce([7; 16]),
        amount: yuan(amount),
        time_s: NOW_S,
    };
    LogEntry {
        seq: 1,
        role: EntryRole::Received,
        signed: SignedRecord { record, signature },
        peer_key: payer.key(),
        acknowledged: true,
    }
}

/// Jiangnan's holder with a loaded phone, and a device Lakeside certified whose key it kept: a
/// rogue operator can sign any attestation with it.
fn a_victim_and_a_rogue_device() -> (World, Vec<OperatorIssuer>, Device, KeyPair) {
    let mut world = World::new();
    let issuers = issuers();
    let [jiangnan, lakeside] = world.operators;
    let holder = world.open_banked(jiangnan, "5,000", WalletClass::Two);
    world.exchange(&holder, "1,000").unwrap();
    let wallet = Some(holder.wallet);
    let mut victim = offline::issue(
        &mut world,
        &issuers,
        jiangnan,
        phone(WalletForm::PhoneEse),
        20,
        wallet,
    );
    offline::load(&mut world, &issuers, &mut victim, 1, "500").unwrap();
    let rogue_key = KeyPair::from_seed(b"rogue/21");
    let register = Command::RegisterDevice {
        operator: lakeside,
        device: DeviceId(21),
        public_key: rogue_key.public_key(),
        wallet: None,
        caps: WalletForm::PhoneEse.default_caps(),
        auth: None,
    };
    world.run(lakeside, register).unwrap();
    (world, issuers, victim, rogue_key)
}

#[test]
fn a_rogue_operator_cannot_book_a_record_its_payer_never_signed() {
    let (mut world, _, victim, rogue_key) = a_victim_and_a_rogue_device();
    let [_, lakeside] = world.operators;
    let forged = claimed_receipt(&victim, DeviceId(21), "400", Signature([0; 64]));
    let sync = offline::forged_sync(
        &mut world,
        (DeviceId(21), lakeside),
        &rogue_key,
        vec![forged],
    );
    let command = Command::SyncOffline {
        sync,
        device_key: rogue_key.public_key(),
    };
    let hash = world.hash();
    // Straight to the center, past Lakeside's own desk: refused at the center's door.
    let rogue = ecny::platform::seeded_key("test", &lakeside.to_string());
    let submission = Submission::new(
        Origin::Operator(lakeside),
        std::slice::from_ref(&command),
        &rogue,
    );
    let outcome = world
        .platform
        .node_mut()
        .submit(vec![submission])
        .unwrap()
        .remove(0);
    assert_eq!(outcome.unwrap_err().code(), "SIGNATURE_INVALID");
    assert_untouched(&world, hash);
    assert_eq!(
        world.run(lakeside, command).unwrap_err().code(),
        "SIGNATURE_INVALID"
    );
    assert_untouched(&world, hash);
}

#[test]
fn a_devices_word_that_another_card_credited_it_books_nothing_for_that_card() {
    let (mut world, issuers, mut victim, rogue_key) = a_victim_and_a_rogue_device();
    let [jiangnan, lakeside] = world.operators;
    // The rogue's device claims it paid the victim and holds the victim's receipt: a claim about
    // another operator's card, which only that card's own attestation can make.
    let paid = PaymentRecord {
        payer: DeviceId(21),
        counter: 1,
        payee: victim.id,
        nonce: Nonce([8; 16]),
        amount: yuan("300"),
        time_s: NOW_S,
    };
    let claim = LogEntry {
        seq: 1,
        role: EntryRole::Paid,
        signed: SignedRecord {
            record: paid,
            signature: rogue_key.sign(&paid.digest()),
        },
        peer_key: victim.key(),
        acknowledged: true,
    };
    let sync = offline::forged_sync(
        &mut world,
        (DeviceId(21), lakeside),
        &rogue_key,
        vec![claim],
    );
    let command = Command::SyncOffline {
        sync,
        device_key: rogue_key.public_key(),
    };
    let ecny::command::Outcome::Synced(report) = world.run(lakeside, command).unwrap() else {
        panic!("a sync answers a report")
    };
    assert_eq!((report.settled, report.held), (0, 1));
    // The victim's honest life goes on; its books stay its card, and nothing comes back to the
    // rogue's device, which never held the 300.
    let mut shop = offline::issue(
        &mut world,
        &issuers,
        jiangnan,
        phone(WalletForm::PhoneEse),
        22,
        None,
    );
    Relay::new()
        .pay(&mut victim.card, &mut shop.card, yuan("1"), NOW_S + 5)
        .unwrap();
    for device in [&mut victim, &mut shop] {
        offline::sync(&mut world, &issuers, device).unwrap();
        offline::sync(&mut world, &issuers, device).unwrap();
    }
    let devices = world.platform.state().devices();
    let known = devices.device(victim.id).unwrap();
    assert_eq!(known.blocked, None);
    assert_eq!(known.believed_balance(), victim.balance());
    assert_eq!(
        devices.held_by(DeviceId(21)),
        1,
        "held: the rogue's device never had it"
    );
    assert_eq!(
        devices.device(DeviceId(21)).unwrap().believed_balance(),
        Amount::ZERO
    );
    world.assert_audit();
}

#[test]
fn a_payee_cannot_leave_a_received_record_out_to_have_it_reversed() {
    let mut world = World::new();
    let issuers = issuers();
    let [jiangnan, lakeside] = world.operators;
    let holder = world.open_banked(jiangnan, "5,000", WalletClass::Two);
    world.exchange(&holder, "1,000").unwrap();
    let shopkeeper = world.open_banked(lakeside, "5,000", WalletClass::Two);
    let mut payer = offline::issue(
        &mut world,
        &issuers,
        jiangnan,
        phone(WalletForm::PhoneEse),
        30,
        Some(holder.wallet),
    );
    let mut payee = offline::issue(
        &mut world,
        &issuers,
        lakeside,
        phone(WalletForm::PhoneEse),
        31,
        Some(shopkeeper.wallet),
    );
    offline::load(&mut world, &issuers, &mut payer, 1, "300").unwrap();
    // The payee's phone walks away before ACKNOWLEDGE: it credited, the payer has no receipt.
    let torn = Relay::cutting_link_before(11).pay(
        &mut payer.card,
        &mut payee.card,
        yuan("100"),
        NOW_S + 10,
    );
    assert!(torn.is_err());
    payer.card.power_up();
    payee.card.power_up();
    assert_eq!(payee.balance(), yuan("100"));
    assert_eq!(
        offline::sync(&mut world, &issuers, &mut payer)
            .unwrap()
            .held,
        1
    );
    let wallet_before = world.balance(holder.wallet);

    // The payee's phone leaves the received record out of its sync: not what its card attested.
    let mut omitted = offline::attest(&mut world, &mut payee);
    assert_eq!(omitted.log.len(), 1);
    omitted.log.clear();
    let hash = world.hash();
    let device_key = payee.key();
    let sync = |sync| Command::SyncOffline { sync, device_key };
    assert_eq!(
        world.run(lakeside, sync(omitted)).unwrap_err().code(),
        "SYNC_NOT_ATTESTED"
    );
    assert_untouched(&world, hash);
    // Nor can it claim a later confirmation than its card knows.
    let mut forged_time = offline::attest(&mut world, &mut payee);
    forged_time.attestation.last_sync_s = u32::MAX;
    let hash = world.hash();
    assert_eq!(
        world.run(lakeside, sync(forged_time)).unwrap_err().code(),
        "SIGNATURE_INVALID"
    );
    assert_untouched(&world, hash);

    // What its card attests settles the payment to it; nothing goes back to the payer.
    let report = offline::sync(&mut world, &issuers, &mut payee).unwrap();
    assert_eq!((report.settled, report.reversed), (1, 0));
    assert_eq!(world.balance(holder.wallet), wallet_before);
    let known = world.platform.state().devices().device(payee.id).unwrap();
    assert_eq!(known.believed_balance(), yuan("100"));
    offline::unload(&mut world, &mut payee, "100", NOW_S + 60).unwrap();
    assert_eq!(world.balance(shopkeeper.wallet), yuan("100"));
    world.assert_audit();
}

/// A sync booked by the center whose confirmation never reaches the card.
fn sync_confirmation_lost(world: &mut World, device: &mut Device) {
    let sync = offline::attest(world, device);
    let device_key = device.key();
    world
        .run(device.operator, Command::SyncOffline { sync, device_key })
        .unwrap();
}

#[test]
fn a_held_payment_is_not_reversed_while_its_payee_can_still_credit_it() {
    let mut world = World::new();
    let issuers = issuers();
    let [jiangnan, lakeside] = world.operators;
    let holder = world.open_banked(jiangnan, "5,000", WalletClass::Two);
    world.exchange(&holder, "1,000").unwrap();
    let shopkeeper = world.open_banked(lakeside, "5,000", WalletClass::Two);
    let mut payer = offline::issue(
        &mut world,
        &issuers,
        jiangnan,
        phone(WalletForm::PhoneEse),
        32,
        Some(holder.wallet),
    );
    let mut payee = offline::issue(
        &mut world,
        &issuers,
        lakeside,
        phone(WalletForm::PhoneEse),
        33,
        Some(shopkeeper.wallet),
    );
    offline::load(&mut world, &issuers, &mut payer, 1, "300").unwrap();
    // Torn after PAY: the payer debited, the payee never credited.
    let torn =
        Relay::cutting_link_before(7).pay(&mut payer.card, &mut payee.card, yuan("45"), NOW_S + 10);
    assert!(torn.is_err());
    payer.card.power_up();
    payee.card.power_up();
    // Both syncs are booked, both confirmations lost: the payer's card still holds the record,
    // the payee's card still holds its challenge.
    sync_confirmation_lost(&mut world, &mut payer);
    assert_eq!(world.platform.state().devices().held_by(payer.id), 1);
    sync_confirmation_lost(&mut world, &mut payee);
    assert_eq!(
        world.platform.state().devices().held_by(payer.id),
        1,
        "not reversed yet"
    );
    // The two meet again and finish the payment; the payee's next sync settles it.
    assert_eq!(
        Relay::new().contact(&mut payer.card, &mut payee.card, NOW_S + 60),
        Ok(1)
    );
    let settled = offline::sync(&mut world, &issuers, &mut payee).unwrap();
    assert_eq!((settled.settled, settled.reversed), (1, 0));
    assert_eq!(
        world.balance(holder.wallet),
        yuan("700"),
        "nothing went back to the payer"
    );
    for device in [&mut payer, &mut payee] {
        offline::sync(&mut world, &issuers, device).unwrap();
        let known = world
            .platform
            .state()
            .devices()
            .device(device.id)
            .unwrap()
            .clone();
        assert_eq!(known.believed_balance(), device.balance());
    }
    world.assert_audit();
}

#[test]
fn a_load_counts_against_the_wallets_daily_limit_like_a_payment() {
    let mut world = World::new();
    let issuers = issuers();
    let [jiangnan, _] = world.operators;
    let holder = world.open_banked(jiangnan, "50,000", WalletClass::Four);
    world.exchange(&holder, "9,000").unwrap();
    let other = world.open(jiangnan);
    for amount in ["2,000", "2,000", "1,000"] {
        world.pay(&holder, other.wallet, amount).unwrap();
    }
    let mut card = offline::issue(
        &mut world,
        &issuers,
        jiangnan,
        phone(WalletForm::PhoneEse),
        40,
        Some(holder.wallet),
    );
    let hash = world.hash();
    let over = offline::load(&mut world, &issuers, &mut card, 1, "4,000");
    assert_eq!(over.unwrap_err().code(), "LIMIT_DAILY");
    assert_untouched(&world, hash);
    // The next day the load goes through, and counts: the day's payments are capped with it.
    world.advance_ms(u64::from(DAY_S) * 1_000);
    world.exchange(&holder, "5,000").unwrap();
    offline::load(&mut world, &issuers, &mut card, 1, "4,000").unwrap();
    let hash = world.hash();
    let refused = world.pay(&holder, other.wallet, "2,000");
    assert_eq!(refused.unwrap_err().code(), "LIMIT_DAILY");
    assert_untouched(&world, hash);
    world.pay(&holder, other.wallet, "1,000").unwrap();
}

#[test]
fn an_unload_cannot_take_a_wallet_over_its_balance_cap_and_waits_on_the_card() {
    let mut world = World::new();
    let issuers = issuers();
    let [jiangnan, _] = world.operators;
    let holder = world.open_banked(jiangnan, "50,000", WalletClass::Four);
    world.exchange(&holder, "5,000").unwrap();
    let mut card = offline::issue(
        &mut world,
        &issuers,
        jiangnan,
        phone(WalletForm::PhoneEse),
        41,
        Some(holder.wallet),
    );
    offline::load(&mut world, &issuers, &mut card, 1, "4,000").unwrap();
    world.exchange(&holder, "9,000").unwrap();
    assert_eq!(world.balance(holder.wallet), yuan("10,000"));
    let unload = Relay::new()
        .unload(&mut card.card, yuan("3,000"), NOW_S + 60)
        .unwrap();
    let command = Command::UnloadDevice {
        unload,
        device_key: card.key(),
    };
    let hash = world.hash();
    assert_eq!(
        world.run(jiangnan, command.clone()).unwrap_err().code(),
        "LIMIT_BALANCE_CAP"
    );
    assert_untouched(&world, hash);
    // The card keeps the signed unload; once the wallet has room, the same one is credited.
    assert_eq!(
        Relay::new().unloads_to_sync(&mut card.card).unwrap()[0].unload,
        unload
    );
    let back = Command::DepositBack {
        wallet: holder.wallet,
        amount: yuan("3,000"),
        key: world.key(),
        auth: None,
    };
    let back = world
        .platform
        .sign_as_holder(back, &holder.key, holder.operator);
    world.run(jiangnan, back).unwrap();
    world.run(jiangnan, command).unwrap();
    assert_eq!(world.balance(holder.wallet), yuan("10,000"));
    world.assert_audit();
}

// ----- hostile readers, driven APDU by APDU -----

fn send(card: &mut Applet, bytes: &[u8]) -> ResponseApdu {
    ResponseApdu::parse(&card.process(bytes)).expect("a powered card answers")
}

/// One command, chained as needed; the data of its answer, or the card's code for a refusal.
fn call(card: &mut Applet, instruction: u8, data: &[u8]) -> Result<Vec<u8>, String> {
    let apdus = command_apdus([cla::PROPRIETARY, instruction, 0, 0], data, true);
    let mut answer = None;
    for apdu in apdus {
        answer = Some(send(card, &apdu.encode()));
    }
    let answer = answer.expect("at least one APDU");
    if answer.sw == StatusWord::SUCCESS {
        return Ok(answer.data);
    }
    let last_error = [cla::ISO, ins::GET_DATA, 0xDF, 0x06, 0x00];
    Err(String::from_utf8(send(card, &last_error).data).unwrap())
}

fn select(card: &mut Applet) -> SelectInfo {
    SelectInfo::decode(&send(card, &select_apdu().encode()).data).unwrap()
}

fn certificate(card: &mut Applet, which: u16) -> CompactCertificate {
    let [p1, p2] = which.to_be_bytes();
    let apdu = [cla::ISO, ins::GET_DATA, p1, p2, 0x00];
    CompactCertificate::decode(&send(card, &apdu).data).unwrap()
}

/// A reader holding its own secure element `reader` asks `card` (already selected, its
/// session `session`) to pay `amount` at the reader's clock `time_s`.
fn skim(
    reader: &mut Applet,
    card: &mut Applet,
    (card_id, session): (DeviceId, Nonce),
    amount: &str,
    time_s: u32,
) -> Result<SignedRecord, String> {
    select(reader);
    let request = PaymentRequest {
        amount: yuan(amount),
        time_s,
        payer: card_id,
        payer_session: session,
    };
    let offer =
        ChallengeOffer::decode(&call(reader, ins::REQUEST_PAYMENT, &request.encode())?).unwrap();
    let pay = PayCommand {
        time_s,
        offer,
        payee_device_cert: certificate(reader, tag::DEVICE_CERT),
        payee_operator_cert: certificate(reader, tag::OPERATOR_CERT),
    };
    let signed = SignedRecord::decode(&call(card, ins::PAY, &pay.encode())?).unwrap();
    // The reader credits its own SE, which answers its receipt.
    let receive = ReceiveCommand {
        time_s,
        signed,
        payer_device_cert: certificate(card, tag::DEVICE_CERT),
        payer_operator_cert: certificate(card, tag::OPERATOR_CERT),
    };
    call(reader, ins::RECEIVE, &receive.encode())?;
    Ok(signed)
}

#[test]
fn a_reader_clock_set_forward_takes_one_payment_per_tap_never_pins_the_real_day_and_is_flagged() {
    let mut world = World::new();
    let issuers = issuers();
    let [jiangnan, lakeside] = world.operators;
    let parent = world.open_banked(jiangnan, "5,000", WalletClass::Two);
    world.exchange(&parent, "1,000").unwrap();
    let guardian = Profile::student_card(yuan("100")).unwrap();
    let mut student = offline::issue(
        &mut world,
        &issuers,
        jiangnan,
        guardian,
        50,
        Some(parent.wallet),
    );
    offline::load(&mut world, &issuers, &mut student, 1, "500").unwrap();
    let mut terminal = offline::issue(
        &mut world,
        &issuers,
        lakeside,
        phone(WalletForm::PhoneEse),
        51,
        None,
    );
    // One tap: the terminal's clock says three days from now, and it asks again and again.
    student.card.power_up();
    let session = select(&mut student.card).session;
    let mut outcomes = Vec::new();
    for day in 3..7 {
        let time = NOW_S + day * DAY_S;
        let paid = skim(
            &mut terminal.card,
            &mut student.card,
            (student.id, session),
            "100",
            time,
        );
        outcomes.push(paid.map(|_| ()));
    }
    let refused = Err("OFFLINE_ONE_PAYMENT_PER_TAP".to_string());
    assert_eq!(
        outcomes,
        vec![Ok(()), refused.clone(), refused.clone(), refused]
    );
    // Another tap, with a clock past the card's offline period: refused outright.
    student.card.power_up();
    let session = select(&mut student.card).session;
    let late = skim(
        &mut terminal.card,
        &mut student.card,
        (student.id, session),
        "100",
        NOW_S + 8 * DAY_S,
    );
    assert_eq!(late.unwrap_err(), "OFFLINE_PERIOD_OVER");
    // The forged day's cap is spent; today's is not: lunch at the real time goes through.
    let mut canteen = offline::issue(
        &mut world,
        &issuers,
        lakeside,
        phone(WalletForm::PhoneEse),
        52,
        None,
    );
    Relay::new()
        .pay(
            &mut student.card,
            &mut canteen.card,
            yuan("10"),
            NOW_S + 600,
        )
        .unwrap();
    assert_eq!(student.balance(), yuan("390"));
    // At its sync the center sees a payment stamped three days ahead and flags the terminal.
    let report = offline::sync(&mut world, &issuers, &mut terminal).unwrap();
    assert_eq!((report.settled, report.clock_ahead), (1, 1));
    let devices = world.platform.state().devices();
    assert_eq!(devices.device(terminal.id).unwrap().clock_ahead, 1);
    assert_eq!(devices.device(canteen.id).unwrap().clock_ahead, 0);
    let flagged = world.platform.state().ledger().events().iter().any(|event| {
        matches!(event, Event::Device { device, change: DeviceChange::ClockAhead { ahead_s }, .. }
            if *device == terminal.id && *ahead_s >= 3 * DAY_S - 600)
    });
    assert!(
        flagged,
        "the flag is in the event stream for the analysis center"
    );
    world.assert_audit();
}

#[test]
fn a_reader_without_a_genuine_se_cannot_make_a_card_pay() {
    let issuers = issuers();
    let issuer = &issuers[0];
    let mut card = issuer
        .issue(
            &phone(WalletForm::ContactlessCard),
            DeviceId(60),
            offline::device_key(60),
            1_060,
            NOW_S,
        )
        .unwrap();
    issuer
        .load_card(&mut card, (DeviceId(60), 1, yuan("2,000")))
        .unwrap();
    // A genuine shop's certificates are public; its key is not.
    let mut shop = issuer
        .issue(
            &phone(WalletForm::PhoneEse),
            DeviceId(61),
            offline::device_key(61),
            1_061,
            NOW_S,
        )
        .unwrap();
    select(&mut shop);
    let shop_certs = (
        certificate(&mut shop, tag::DEVICE_CERT),
        certificate(&mut shop, tag::OPERATOR_CERT),
    );
    card.power_up();
    let session = select(&mut card).session;
    let before = card.persistent_image().clone();
    let challenge = |nonce: u8, payer: u64, session: Nonce| Challenge {
        payee: DeviceId(61),
        nonce: Nonce([nonce; 16]),
        amount: yuan("500"),
        time_s: NOW_S,
        payer: DeviceId(payer),
        payer_session: session,
    };
    let pay = |offer: ChallengeOffer| PayCommand {
        time_s: NOW_S,
        offer,
        payee_device_cert: shop_certs.0,
        payee_operator_cert: shop_certs.1,
    };
    // A challenge the reader signed itself.
    let made_up = challenge(1, 60, session);
    let forged = ChallengeOffer {
        challenge: made_up,
        signature: KeyPair::from_seed(b"skimmer").sign(&made_up.digest()),
    };
    assert_eq!(
        call(&mut card, ins::PAY, &pay(forged).encode()).unwrap_err(),
        "OFFLINE_SIGNATURE_INVALID"
    );
    // The shop's genuine challenge from another tap, or for another card.
    let other_tap = PaymentRequest {
        amount: yuan("500"),
        time_s: NOW_S,
        payer: DeviceId(60),
        payer_session: Nonce([9; 16]),
    };
    let old = ChallengeOffer::decode(
        &call(&mut shop, ins::REQUEST_PAYMENT, &other_tap.encode()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        call(&mut card, ins::PAY, &pay(old).encode()).unwrap_err(),
        "OFFLINE_CHALLENGE_NOT_BOUND"
    );
    let other_card = PaymentRequest {
        payer: DeviceId(62),
        payer_session: session,
        ..other_tap
    };
    let theirs = ChallengeOffer::decode(
        &call(&mut shop, ins::REQUEST_PAYMENT, &other_card.encode()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        call(&mut card, ins::PAY, &pay(theirs).encode()).unwrap_err(),
        "OFFLINE_CHALLENGE_NOT_BOUND"
    );
    assert_eq!(card.persistent_image(), &before, "the card paid nothing");
}

#[test]
fn a_reader_with_a_genuine_se_takes_one_payment_per_tap_and_the_spend_cap_bounds_the_rest() {
    let issuers = issuers();
    let issuer = &issuers[0];
    let mut card = issuer
        .issue(
            &phone(WalletForm::ContactlessCard),
            DeviceId(70),
            offline::device_key(70),
            1_070,
            NOW_S,
        )
        .unwrap();
    issuer
        .load_card(&mut card, (DeviceId(70), 1, yuan("2,000")))
        .unwrap();
    let mut reader = issuer
        .issue(
            &phone(WalletForm::PhoneEse),
            DeviceId(71),
            offline::device_key(71),
            1_071,
            NOW_S,
        )
        .unwrap();
    let mut outcomes = Vec::new();
    for tap in 0..4 {
        // The reader cycles its field: a new tap, a new session, each time.
        card.power_up();
        let session = select(&mut card).session;
        for _ in 0..4 {
            let time = NOW_S + 10 * tap;
            let paid = skim(&mut reader, &mut card, (DeviceId(70), session), "500", time);
            outcomes.push(
                paid.map(|signed| signed.record.amount)
                    .map_err(|code| code.to_string()),
            );
        }
    }
    let paid: Vec<Amount> = outcomes.iter().filter_map(|o| o.clone().ok()).collect();
    assert_eq!(paid, vec![yuan("500"), yuan("500")], "{outcomes:?}");
    let refusals: Vec<String> = outcomes.into_iter().filter_map(Result::err).collect();
    // The first tap pays once; from the second payment on, the cap between syncs is reached.
    assert_eq!(
        refusals
            .iter()
            .filter(|c| *c == "OFFLINE_ONE_PAYMENT_PER_TAP")
            .count(),
        3
    );
    assert_eq!(
        refusals
            .iter()
            .filter(|c| *c == "OFFLINE_SPEND_CAP")
            .count(),
        11
    );
    assert_eq!(card.persistent_image().balance(), yuan("1,000"));
    assert_eq!(card.persistent_image().spent_since_sync(), yuan("1,000"));
}

mod hostile_campaigns {
    use super::*;
    use ecny::ids::WalletId;
    use proptest::prelude::*;
    use support::Holder;

    /// Devices 0–3 belong to honest holders, 4–5 to hostile ones; copies follow.
    const HONEST: usize = 4;
    const DEVICES: usize = 6;
    const FORMS: [WalletForm; DEVICES] = [
        WalletForm::PhoneEse,
        WalletForm::SimCard,
        WalletForm::ContactlessCard,
        WalletForm::PhoneEse,
        WalletForm::SimCard,
        WalletForm::ContactlessCard,
    ];
    const ROGUE: u64 = 300;

    #[derive(Clone, Debug)]
    enum Step {
        Load {
            device: usize,
            yuan: i64,
        },
        Tap {
            payer: usize,
            payee: usize,
            fen: i64,
        },
        /// Two cards meet again: whatever one paid the other without a receipt is finished.
        Contact {
            payer: usize,
            payee: usize,
        },
        /// A card spends all it can at one payee, tap after tap, until it is refused.
        Drain {
            payer: usize,
            payee: usize,
        },
        /// A tap cut before APDU `cut`: phones apart, a payee's phone walking off with the record.
        CutTap {
            payer: usize,
            payee: usize,
            fen: i64,
            cut: usize,
        },
        /// A hostile payee's terminal with its clock `days` ahead.
        ForgedTimeTap {
            payer: usize,
            payee: usize,
            fen: i64,
            days: u32,
        },
        /// A hostile phone delivers a record it captured in a torn tap to a card of its payee.
        LateReceive {
            card: usize,
            captured: usize,
        },
        Clone {
            device: usize,
        },
        /// A hostile holder keeps an image of its card; the next time, it restores it.
        Rollback {
            device: usize,
        },
        Sync {
            card: usize,
        },
        /// The center books the card's sync, but the confirmation never reaches the card.
        SyncConfirmationLost {
            card: usize,
        },
        /// A hostile phone leaves an entry out of its card's attested sync.
        TamperedSync {
            card: usize,
        },
        Unload {
            card: usize,
            yuan: i64,
        },
        /// A rogue operator forges a record paid by an honest holder's card to a device of its own.
        RogueRecord {
            payer: usize,
            fen: i64,
        },
    }

    fn step() -> impl Strategy<Value = Step> {
        let card = 0usize..12;
        prop_oneof![
            2 => (0..DEVICES, 1i64..300).prop_map(|(device, yuan)| Step::Load { device, yuan }),
            6 => (card.clone(), card.clone(), 1i64..30_000).prop_map(|(payer, payee, fen)| Step::Tap { payer, payee, fen }),
            3 => (card.clone(), card.clone(), 1i64..30_000, 1usize..13)
                .prop_map(|(payer, payee, fen, cut)| Step::CutTap { payer, payee, fen, cut }),
            1 => (card.clone(), HONEST..DEVICES, 1i64..30_000, 1u32..10)
                .prop_map(|(payer, payee, fen, days)| Step::ForgedTimeTap { payer, payee, fen, days }),
            2 => (card.clone(), 0usize..8).prop_map(|(card, captured)| Step::LateReceive { card, captured }),
            2 => (HONEST..DEVICES).prop_map(|device| Step::Clone { device }),
            2 => (HONEST..DEVICES).prop_map(|device| Step::Rollback { device }),
            2 => (card.clone(), card.clone()).prop_map(|(payer, payee)| Step::Drain { payer, payee }),
            2 => (card.clone(), card.clone()).prop_map(|(payer, payee)| Step::Contact { payer, payee }),
            3 => card.clone().prop_map(|card| Step::Sync { card }),
            1 => card.clone().prop_map(|card| Step::SyncConfirmationLost { card }),
            1 => card.clone().prop_map(|card| Step::TamperedSync { card }),
            2 => (card, 1i64..300).prop_map(|(card, yuan)| Step::Unload { card, yuan }),
            1 => (0..HONEST, 1i64..30_000).prop_map(|(payer, fen)| Step::RogueRecord { payer, fen }),
        ]
    }

    /// A record a hostile phone saw cross in a torn tap, with the payer's certificates.
    #[derive(Clone)]
    struct Captured {
        signed: SignedRecord,
        payer_certs: (CompactCertificate, CompactCertificate),
    }

    struct Campaign {
        world: World,
        issuers: Vec<ecny::offline::issuer::OperatorIssuer>,
        holders: Vec<Holder>,
        /// The card each device's holder uses now, then copies made by hostile holders.
        cards: Vec<Device>,
        load_seqs: [u32; DEVICES],
        images: [Option<Device>; DEVICES],
        captured: Vec<Captured>,
        clock_s: u32,
        /// What the documented bound allows the hostile holders to take.
        bound: Amount,
    }

    impl Campaign {
        fn new() -> Campaign {
            let mut world = World::new();
            let issuers = issuers();
            let [jiangnan, lakeside] = world.operators;
            let mut holders = Vec::new();
            let mut cards = Vec::new();
            for (index, form) in FORMS.into_iter().enumerate() {
                let op = [jiangnan, lakeside][index % 2];
                let holder = world.open_banked(op, "20,000", WalletClass::Two);
                world.exchange(&holder, "5,000").unwrap();
                let id = 100 + index as u64;
                let mut card = offline::issue(
                    &mut world,
                    &issuers,
                    op,
                    phone(form),
                    id,
                    Some(holder.wallet),
                );
                offline::load(&mut world, &issuers, &mut card, 1, "600").unwrap();
                cards.push(card);
                holders.push(holder);
            }
            let register = Command::RegisterDevice {
                operator: lakeside,
                device: DeviceId(ROGUE),
                public_key: KeyPair::from_seed(b"rogue").public_key(),
                wallet: None,
                caps: WalletForm::PhoneEse.default_caps(),
                auth: None,
            };
            world.run(lakeside, register).unwrap();
            Campaign {
                world,
                issuers,
                holders,
                cards,
                load_seqs: [1; DEVICES],
                images: Default::default(),
                captured: Vec::new(),
                clock_s: NOW_S,
                bound: Amount::ZERO,
            }
        }

        fn device_index(&self, card: usize) -> usize {
            let id = self.cards[card].id.0;
            (id - 100) as usize
        }

        fn hostile(&self, card: usize) -> bool {
            self.device_index(card) >= HONEST
        }

        fn apply(&mut self, step: &Step) {
            self.clock_s += 30;
            let cards = self.cards.len();
            match *step {
                Step::Load { device, yuan } => self.load(device, yuan),
                Step::Tap { payer, payee, fen } => {
                    self.tap((payer % cards, payee % cards), fen, (None, self.clock_s));
                }
                Step::Drain { payer, payee } => self.drain((payer % cards, payee % cards)),
                Step::Contact { payer, payee } => self.contact((payer % cards, payee % cards)),
                Step::CutTap {
                    payer,
                    payee,
                    fen,
                    cut,
                } => {
                    self.tap(
                        (payer % cards, payee % cards),
                        fen,
                        (Some(cut), self.clock_s),
                    );
                }
                Step::ForgedTimeTap {
                    payer,
                    payee,
                    fen,
                    days,
                } => {
                    let time = self.clock_s + days * DAY_S;
                    self.tap((payer % cards, payee), fen, (None, time));
                }
                Step::LateReceive { card, captured } => self.late_receive(card % cards, captured),
                Step::Clone { device } => {
                    let copy = self.cards[device].copy();
                    self.bound = self
                        .bound
                        .checked_add(self.cards[device].balance())
                        .unwrap();
                    self.cards.push(copy);
                }
                Step::Rollback { device } => self.rollback(device),
                Step::Sync { card } => self.sync(card % cards),
                Step::SyncConfirmationLost { card } => self.sync_unconfirmed(card % cards),
                Step::TamperedSync { card } => self.tampered_sync(card % cards),
                Step::Unload { card, yuan } => self.unload(card % cards, yuan),
                Step::RogueRecord { payer, fen } => self.rogue_record(payer, fen),
            }
        }

        /// The phone checks its card has room, the center books the load, then the card applies
        /// its operator's order; a card restored from an older image refuses an order for its
        /// original's state, which is its holder's loss.
        fn load(&mut self, device: usize, yuan: i64) {
            let seq = self.load_seqs[device] + 1;
            let card = &mut self.cards[device];
            let amount = Amount::from_yuan(yuan);
            let cap = FORMS[device].default_caps().balance_cap;
            if card.balance().fen() + amount.fen() > cap.fen() {
                return;
            }
            let command = Command::LoadDevice {
                device: card.id,
                load_seq: seq,
                amount,
                auth: None,
            };
            if self.world.run_signed(card.operator, command).is_err() {
                return;
            }
            self.load_seqs[device] = seq;
            let issuer = &self.issuers[card.operator.0 as usize - 1];
            let applied = issuer.load_card(&mut card.card, (card.id, seq, amount));
            assert!(
                applied.is_ok() || device >= HONEST,
                "an honest card applies its load"
            );
        }

        /// A tap; a hostile payee's phone keeps what crossed when the tap was torn.
        fn tap(
            &mut self,
            (payer, payee): (usize, usize),
            fen: i64,
            (cut, time_s): (Option<usize>, u32),
        ) {
            if self.cards[payer].id == self.cards[payee].id {
                return;
            }
            let mut relay = match cut {
                Some(apdu) => Relay::cutting_link_before(apdu),
                None => Relay::new(),
            };
            let (a, b) = pair(&mut self.cards, payer, payee);
            let paid = relay.pay(&mut a.card, &mut b.card, Amount::from_fen(fen), time_s);
            if paid.is_err() {
                // The contact ends: both cards start their next session afresh.
                a.card.power_up();
                b.card.power_up();
                if cut.is_some() && self.hostile(payee) {
                    self.capture(payer, payee);
                }
            }
        }

        fn contact(&mut self, (payer, payee): (usize, usize)) {
            if self.cards[payer].id == self.cards[payee].id {
                return;
            }
            let (a, b) = pair(&mut self.cards, payer, payee);
            if Relay::new()
                .contact(&mut a.card, &mut b.card, self.clock_s)
                .is_err()
            {
                a.card.power_up();
                b.card.power_up();
            }
        }

        fn drain(&mut self, (payer, payee): (usize, usize)) {
            if self.cards[payer].id == self.cards[payee].id {
                return;
            }
            for _ in 0..8 {
                let cap = FORMS[self.device_index(payer)]
                    .default_caps()
                    .per_payment_cap;
                let amount = self.cards[payer].balance().min(cap);
                if !amount.is_positive() {
                    return;
                }
                self.clock_s += 1;
                let (a, b) = pair(&mut self.cards, payer, payee);
                if Relay::new()
                    .pay(&mut a.card, &mut b.card, amount, self.clock_s)
                    .is_err()
                {
                    a.card.power_up();
                    b.card.power_up();
                    return;
                }
            }
        }

        fn capture(&mut self, payer: usize, payee: usize) {
            let payee_id = self.cards[payee].id;
            let card = &mut self.cards[payer].card;
            card.power_up();
            let log = Relay::new().records_to_sync(card).unwrap();
            let Some(last) = log
                .last()
                .filter(|e| e.role == EntryRole::Paid && e.signed.record.payee == payee_id)
            else {
                return;
            };
            let signed = last.signed;
            select(card);
            let payer_certs = (
                certificate(card, tag::DEVICE_CERT),
                certificate(card, tag::OPERATOR_CERT),
            );
            self.captured.push(Captured {
                signed,
                payer_certs,
            });
        }

        /// A captured record credited late: if the center had reversed it meanwhile, a double
        /// credit, which the bound counts in full.
        fn late_receive(&mut self, card: usize, captured: usize) {
            if self.captured.is_empty() {
                return;
            }
            let captured = self.captured[captured % self.captured.len()].clone();
            if self.cards[card].id != captured.signed.record.payee {
                return;
            }
            let target = &mut self.cards[card].card;
            target.power_up();
            select(target);
            let receive = ReceiveCommand {
                time_s: self.clock_s,
                signed: captured.signed,
                payer_device_cert: captured.payer_certs.0,
                payer_operator_cert: captured.payer_certs.1,
            };
            let before = target.persistent_image().balance();
            let credited = call(target, ins::RECEIVE, &receive.encode()).is_ok()
                && target.persistent_image().balance() > before;
            if credited {
                self.bound = self
                    .bound
                    .checked_add(captured.signed.record.amount)
                    .unwrap();
            }
        }

        fn rollback(&mut self, device: usize) {
            match self.images[device].take() {
                None => self.images[device] = Some(self.cards[device].copy()),
                Some(mut image) => {
                    self.bound = self.bound.checked_add(image.balance()).unwrap();
                    self.cards[device] = image;
                }
            }
        }

        fn sync(&mut self, card: usize) {
            self.cards[card].card.power_up();
            offline::sync(&mut self.world, &self.issuers, &mut self.cards[card])
                .expect("a genuine card's sync is booked");
        }

        fn sync_unconfirmed(&mut self, card: usize) {
            self.cards[card].card.power_up();
            let sync = offline::attest(&mut self.world, &mut self.cards[card]);
            let (operator, device_key) = (self.cards[card].operator, self.cards[card].key());
            self.world
                .run(operator, Command::SyncOffline { sync, device_key })
                .expect("a genuine card's sync is booked");
        }

        fn tampered_sync(&mut self, card: usize) {
            if !self.hostile(card) {
                return;
            }
            self.cards[card].card.power_up();
            let mut sync = offline::attest(&mut self.world, &mut self.cards[card]);
            let expected = if sync.log.pop().is_some() {
                "SYNC_NOT_ATTESTED"
            } else {
                sync.attestation.balance = Amount::from_yuan(1_000_000);
                "SIGNATURE_INVALID"
            };
            let (operator, device_key) = (self.cards[card].operator, self.cards[card].key());
            let hash = self.world.hash();
            let refused = self
                .world
                .run(operator, Command::SyncOffline { sync, device_key });
            assert_eq!(refused.unwrap_err().code(), expected);
            assert_eq!(self.world.hash(), hash);
        }

        /// An honest holder syncs first and unloads what its card holds; a hostile one tries.
        fn unload(&mut self, card: usize, yuan: i64) {
            let honest = !self.hostile(card);
            if honest {
                self.sync(card);
            }
            let device = &mut self.cards[card];
            device.card.power_up();
            let amount = Amount::from_yuan(yuan).min(device.balance());
            if !amount.is_positive() {
                return;
            }
            let result =
                offline::unload(&mut self.world, device, &amount.to_string(), self.clock_s);
            if honest {
                result.expect("an honest holder gets back what its synced card holds");
            }
        }

        /// Straight to the center, past the rogue's desk: refused at the door, nothing moves.
        fn rogue_record(&mut self, payer: usize, fen: i64) {
            let [_, lakeside] = self.world.operators;
            let key = KeyPair::from_seed(b"rogue");
            let claim = claimed_receipt(
                &self.cards[payer],
                DeviceId(ROGUE),
                "0.01",
                Signature([0; 64]),
            );
            let mut claim = claim;
            claim.signed.record.amount = Amount::from_fen(fen);
            let sync = offline::forged_sync(
                &mut self.world,
                (DeviceId(ROGUE), lakeside),
                &key,
                vec![claim],
            );
            let command = Command::SyncOffline {
                sync,
                device_key: key.public_key(),
            };
            let rogue = ecny::platform::seeded_key("test", &lakeside.to_string());
            let submission = Submission::new(Origin::Operator(lakeside), &[command], &rogue);
            let hash = self.world.hash();
            let outcome = self
                .world
                .platform
                .node_mut()
                .submit(vec![submission])
                .unwrap()
                .remove(0);
            assert_eq!(outcome.unwrap_err().code(), "SIGNATURE_INVALID");
            assert_eq!(self.world.hash(), hash);
        }

        /// What the hostile holders took: what issuers covered and what the center still
        /// believes their cards owe.
        fn loss(&self) -> Amount {
            let devices = self.world.platform.state().devices();
            let fen = devices
                .devices()
                .map(|(_, d)| d.covered.fen() + (-d.believed_balance().fen()).max(0))
                .sum();
            Amount::from_fen(fen)
        }

        fn wallet(&self, device: usize) -> WalletId {
            self.holders[device].wallet
        }
    }

    fn known_id(device: usize) -> DeviceId {
        DeviceId(100 + device as u64)
    }

    fn pair(cards: &mut [Device], a: usize, b: usize) -> (&mut Device, &mut Device) {
        if a < b {
            let (left, right) = cards.split_at_mut(b);
            (&mut left[a], &mut right[0])
        } else {
            let (left, right) = cards.split_at_mut(a);
            (&mut right[0], &mut left[b])
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        #[test]
        fn hostile_and_honest_devices_in_any_order_take_no_more_than_the_bound(
            steps in proptest::collection::vec(step(), 1..50)
        ) {
            let mut campaign = Campaign::new();
            for step in &steps {
                campaign.apply(step);
                let report = ecny::audit::audit(campaign.world.platform.state());
                prop_assert!(report.is_clean(), "after {:?}:\n{}", step, report);
            }
            // Everyone comes back online, twice: what was held resolves once its payee's
            // confirmed sync shows it can no longer be credited.
            for _ in 0..2 {
                for card in 0..campaign.cards.len() {
                    campaign.clock_s += 30;
                    campaign.sync(card);
                }
            }
            let report = ecny::audit::audit(campaign.world.platform.state());
            prop_assert!(report.is_clean(), "after the final syncs:\n{}", report);
            let loss = campaign.loss();
            prop_assert!(loss <= campaign.bound, "lost {} beyond the bound {}", loss, campaign.bound);
            // Honest holders lose nothing: the center's books are their cards, nothing of theirs
            // is held, and every fen on their cards comes back to their wallets.
            for device in 0..HONEST {
                let on_card = campaign.cards[device].balance();
                let known = campaign.world.platform.state().devices().device(campaign.cards[device].id).unwrap().clone();
                prop_assert_eq!(known.blocked, None, "honest device {} blocked", device);
                prop_assert_eq!(known.believed_balance(), on_card, "honest device {}", device);
                prop_assert_eq!(campaign.world.platform.state().devices().held_by(known_id(device)), 0);
                if on_card.is_positive() {
                    let wallet = campaign.wallet(device);
                    let before = campaign.world.balance(wallet);
                    campaign.clock_s += 30;
                    offline::unload(&mut campaign.world, &mut campaign.cards[device], &on_card.to_string(), campaign.clock_s)
                        .expect("an honest holder unloads all its card holds");
                    prop_assert_eq!(campaign.world.balance(wallet).fen() - before.fen(), on_card.fen());
                }
            }
            campaign.world.assert_audit();
        }
    }
}
