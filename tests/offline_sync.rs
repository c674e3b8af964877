//! Dual offline end to end: the center registers secure elements, loads them from wallets (or
//! cash at a counter), two SEs pay each other with no network, and each side's sync settles the
//! payment exactly once — across operators through their offline floats. A cloned card is caught
//! at sync, blocked, and its issuing operator covers the double spend. The audit holds throughout.

#[path = "support/offline.rs"]
mod offline;
mod support;

use ecny::amount::Amount;
use ecny::command::Command;
use ecny::ids::{DeviceId, OperatorId};
use ecny::ledger::{BlockReason, Event};
use ecny::offline::issuer::OperatorIssuer;
use ecny::offline::profiles::{Profile, WalletForm};
use ecny::offline::protocol::Relay;
use ecny::offline::settlement::SyncReport;
use ecny::wallet::WalletClass;
use offline::{float, issuers, vault, Device, NOW_S};
use support::{yuan, World};

fn issue(
    world: &mut World,
    issuers: &[OperatorIssuer],
    op: OperatorId,
    form: WalletForm,
    id: u64,
    wallet: Option<ecny::ids::WalletId>,
) -> Device {
    offline::issue(world, issuers, op, Profile::new(form), id, wallet)
}

fn load(
    world: &mut World,
    issuers: &[OperatorIssuer],
    device: &mut Device,
    seq: u32,
    amount: &str,
) {
    offline::load(world, issuers, device, seq, amount).unwrap();
}

fn sync(world: &mut World, issuers: &[OperatorIssuer], device: &mut Device) -> SyncReport {
    offline::sync(world, issuers, device).unwrap_or_else(|e| panic!("sync refused: {e}"))
}

#[test]
fn two_phones_in_airplane_mode_pay_66_60_and_both_syncs_settle_it_once() {
    let mut world = World::new();
    let issuers = issuers();
    let [jiangnan, lakeside] = world.operators;
    let holder = world.open_banked(jiangnan, "5000", WalletClass::Two);
    world.exchange(&holder, "2000").unwrap();
    let mut phone = issue(
        &mut world,
        &issuers,
        jiangnan,
        WalletForm::PhoneEse,
        1,
        Some(holder.wallet),
    );
    let mut snack_shop = issue(
        &mut world,
        &issuers,
        lakeside,
        WalletForm::VisitorCard,
        2,
        None,
    );
    load(&mut world, &issuers, &mut phone, 1, "500");
    load(&mut world, &issuers, &mut snack_shop, 1, "100");
    assert_eq!(world.balance(holder.wallet), yuan("1500"));
    assert_eq!(
        (float(&world, jiangnan), float(&world, lakeside)),
        (yuan("500"), yuan("100"))
    );
    world.assert_audit();

    Relay::new()
        .pay(
            &mut phone.card,
            &mut snack_shop.card,
            yuan("66.60"),
            NOW_S + 60,
        )
        .unwrap();

    let first = sync(&mut world, &issuers, &mut snack_shop);
    assert_eq!((first.settled, first.duplicates), (1, 0));
    assert_eq!(
        (float(&world, jiangnan), float(&world, lakeside)),
        (yuan("433.40"), yuan("166.60"))
    );
    let second = sync(&mut world, &issuers, &mut phone);
    assert_eq!(
        (second.settled, second.duplicates),
        (0, 1),
        "the payer's copy counts once"
    );
    let devices = world.platform.state().devices();
    assert_eq!(
        devices.device(phone.id).unwrap().believed_balance(),
        yuan("433.40")
    );
    assert_eq!(
        devices.device(snack_shop.id).unwrap().believed_balance(),
        yuan("166.60")
    );
    world.assert_audit();
    let hash = world.hash();
    let world = world.reopen();
    assert_eq!(world.hash(), hash, "offline state replays identically");
}

#[test]
fn a_cloned_card_is_caught_at_sync_blocked_and_its_operator_covers_the_loss() {
    let mut world = World::new();
    let issuers = issuers();
    let [jiangnan, _] = world.operators;
    // The same 300 spent twice, each copy with the same counter.
    let (card, mut shop_a, mut shop_b) = a_card_spent_twice(&mut world, &issuers, jiangnan, 10);
    let vault_before = vault(&world, jiangnan);

    assert_eq!(sync(&mut world, &issuers, &mut shop_a).settled, 1);
    let caught = sync(&mut world, &issuers, &mut shop_b);
    assert_eq!(
        (caught.settled, caught.blocked),
        (1, 1),
        "the clone's record is paid and the card blocked"
    );
    let device = world.platform.state().devices().device(card.id).unwrap();
    assert_eq!(device.blocked, Some(BlockReason::CounterReused));
    // 300 loaded, 450 paid out: the issuing operator's vault covers the 150, no more.
    assert_eq!(device.covered, yuan("150"));
    assert_eq!(
        vault(&world, jiangnan),
        Amount::from_fen(vault_before.fen() - yuan("150").fen())
    );
    assert!(world
        .platform
        .state()
        .ledger()
        .events()
        .iter()
        .any(|e| matches!(
            e,
            Event::Device {
                change: ecny::ledger::DeviceChange::Blocked { .. },
                ..
            }
        )));
    world.assert_audit();
    let blocked: Vec<DeviceId> = world.platform.state().devices().blocked().collect();
    assert_eq!(blocked, vec![card.id]);
    let refused = world
        .run_signed(
            jiangnan,
            Command::LoadDevice {
                device: card.id,
                load_seq: 2,
                amount: yuan("1"),
                auth: None,
            },
        )
        .unwrap_err();
    assert_eq!(refused.code(), "DEVICE_BLOCKED");
}

#[test]
fn loads_are_exactly_once_and_bad_syncs_are_refused_with_nothing_moved() {
    let mut world = World::new();
    let issuers = issuers();
    let [jiangnan, lakeside] = world.operators;
    let holder = world.open_banked(jiangnan, "9000", WalletClass::Two);
    world.exchange(&holder, "9000").unwrap();
    let mut phone = issue(
        &mut world,
        &issuers,
        jiangnan,
        WalletForm::PhoneEse,
        20,
        Some(holder.wallet),
    );
    let mut other = issue(
        &mut world,
        &issuers,
        lakeside,
        WalletForm::SimCard,
        21,
        None,
    );
    let first = world
        .run_signed(
            jiangnan,
            Command::LoadDevice {
                device: phone.id,
                load_seq: 1,
                amount: yuan("100"),
                auth: None,
            },
        )
        .unwrap();
    let hash = world.hash();
    // The connection dropped before the phone heard back: the retry returns the first result.
    assert_eq!(
        world.run_signed(
            jiangnan,
            Command::LoadDevice {
                device: phone.id,
                load_seq: 1,
                amount: yuan("100"),
                auth: None,
            }
        ),
        Ok(first)
    );
    assert_eq!(world.hash(), hash);
    let cases = [
        (
            jiangnan,
            Command::LoadDevice {
                device: phone.id,
                load_seq: 3,
                amount: yuan("1"),
                auth: None,
            },
            "LOAD_OUT_OF_SEQUENCE",
        ),
        (
            jiangnan,
            Command::LoadDevice {
                device: phone.id,
                load_seq: 2,
                amount: yuan("5000"),
                auth: None,
            },
            "OFFLINE_BALANCE_CAP",
        ),
        (
            lakeside,
            Command::LoadDevice {
                device: phone.id,
                load_seq: 2,
                amount: yuan("1"),
                auth: None,
            },
            "NOT_YOUR_WALLET",
        ),
        (
            jiangnan,
            Command::LoadDevice {
                device: DeviceId(999),
                load_seq: 1,
                amount: yuan("1"),
                auth: None,
            },
            "UNKNOWN_DEVICE",
        ),
    ];
    for (op, command, code) in cases {
        assert_eq!(
            world.run_signed(op, command.clone()).unwrap_err().code(),
            code,
            "{command:?}"
        );
        assert_eq!(world.hash(), hash);
    }
    issuers[0]
        .load_card(&mut phone.card, (phone.id, 1, yuan("100")))
        .unwrap();
    load(&mut world, &issuers, &mut other, 1, "10");
    Relay::new()
        .pay(&mut phone.card, &mut other.card, yuan("12.34"), NOW_S + 5)
        .unwrap();
    // A record changed after the card attested it is refused before the center.
    let mut tampered = offline::attest(&mut world, &mut other);
    let hash = world.hash();
    tampered.log[0].signed.record.amount = yuan("99");
    let device_key = other.key();
    let error = world
        .run(
            lakeside,
            Command::SyncOffline {
                sync: tampered,
                device_key,
            },
        )
        .unwrap_err();
    assert_eq!(error.code(), "SYNC_NOT_ATTESTED");
    assert_eq!(world.hash(), hash);
    // The genuine attestation, booked once; presented again, its nonce is spent.
    let genuine = offline::attest(&mut world, &mut other);
    let command = Command::SyncOffline {
        sync: genuine,
        device_key,
    };
    world.run(lakeside, command.clone()).unwrap();
    let hash = world.hash();
    assert_eq!(
        world.run(lakeside, command).unwrap_err().code(),
        "SYNC_NONCE_UNKNOWN"
    );
    assert_eq!(world.hash(), hash);
    // A device whose own key signs records that are not its own.
    let bystander = issue(
        &mut world,
        &issuers,
        lakeside,
        WalletForm::VisitorCard,
        22,
        None,
    );
    let others = Relay::new().records_to_sync(&mut other.card).unwrap();
    let forged = offline::forged_sync(
        &mut world,
        (bystander.id, lakeside),
        &offline::device_key(22),
        others,
    );
    let hash = world.hash();
    let error = world
        .run(
            lakeside,
            Command::SyncOffline {
                sync: forged,
                device_key: bystander.key(),
            },
        )
        .unwrap_err();
    assert!(matches!(error.code(), "NOT_YOUR_RECORD"), "{error}");
    assert_eq!(world.hash(), hash);
    world.assert_audit();
}

mod random_campaigns {
    use super::*;
    use proptest::prelude::*;

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
        /// A tap cut off before APDU number `cut`: the phones moved apart.
        CutTap {
            payer: usize,
            payee: usize,
            fen: i64,
            cut: usize,
        },
        Clone {
            device: usize,
        },
        Sync {
            card: usize,
        },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            2 => (0usize..4, 1i64..300).prop_map(|(device, yuan)| Step::Load { device, yuan }),
            6 => (0usize..8, 0usize..8, 1i64..30_000).prop_map(|(payer, payee, fen)| Step::Tap { payer, payee, fen }),
            1 => (0usize..4).prop_map(|device| Step::Clone { device }),
            2 => (0usize..8).prop_map(|card| Step::Sync { card }),
            2 => (0usize..8, 0usize..8, 1i64..30_000, 1usize..11)
                .prop_map(|(payer, payee, fen, cut)| Step::CutTap { payer, payee, fen, cut }),
        ]
    }

    struct Campaign {
        world: World,
        issuers: Vec<OperatorIssuer>,
        /// Cards in play: the four issued ones first, then clones.
        cards: Vec<Device>,
        load_seqs: [u32; 4],
        clock_s: u32,
        /// Each clone's card index and the counter it was copied at.
        clones: Vec<(usize, u32)>,
    }

    impl Campaign {
        fn new() -> Campaign {
            let mut world = World::new();
            let issuers = issuers();
            let [jiangnan, lakeside] = world.operators;
            let mut cards = Vec::new();
            for (index, op) in [jiangnan, jiangnan, lakeside, lakeside]
                .into_iter()
                .enumerate()
            {
                let holder = world.open_banked(op, "20000", WalletClass::Two);
                world.exchange(&holder, "5000").unwrap();
                let form = if index % 2 == 0 {
                    WalletForm::PhoneEse
                } else {
                    WalletForm::SimCard
                };
                cards.push(issue(
                    &mut world,
                    &issuers,
                    op,
                    form,
                    100 + index as u64,
                    Some(holder.wallet),
                ));
            }
            Campaign {
                world,
                issuers,
                cards,
                load_seqs: [0; 4],
                clock_s: NOW_S,
                clones: Vec::new(),
            }
        }

        fn apply(&mut self, step: &Step) {
            self.clock_s += 30;
            match *step {
                Step::Load { device, yuan } => {
                    let seq = self.load_seqs[device] + 1;
                    let amount = Amount::from_yuan(yuan);
                    let command = Command::LoadDevice {
                        device: self.cards[device].id,
                        load_seq: seq,
                        amount,
                        auth: None,
                    };
                    if self
                        .world
                        .run_signed(self.cards[device].operator, command)
                        .is_ok()
                    {
                        self.load_seqs[device] = seq;
                        let card = &mut self.cards[device];
                        self.issuers[card.operator.0 as usize - 1]
                            .load_card(&mut card.card, (card.id, seq, amount))
                            .expect("the center accepted this load");
                    }
                }
                Step::Tap { payer, payee, fen } => {
                    let (payer, payee) = (payer % self.cards.len(), payee % self.cards.len());
                    if self.cards[payer].id == self.cards[payee].id {
                        return;
                    }
                    let (a, b) = pair(&mut self.cards, payer, payee);
                    // Refusals (caps, balance, a sync due) are part of the campaign; the session
                    // ends with the contact either way.
                    let paid = Relay::new().pay(
                        &mut a.card,
                        &mut b.card,
                        Amount::from_fen(fen),
                        self.clock_s,
                    );
                    if paid.is_err() {
                        a.card.power_up();
                        b.card.power_up();
                    }
                }
                Step::Clone { device } => {
                    let counter = Relay::new()
                        .summary(&mut self.cards[device].card)
                        .unwrap()
                        .counter;
                    let clone = self.cards[device].copy();
                    self.clones.push((self.cards.len(), counter));
                    self.cards.push(clone);
                }
                Step::Sync { card } => self.sync(card % self.cards.len()),
                Step::CutTap {
                    payer,
                    payee,
                    fen,
                    cut,
                } => {
                    let (payer, payee) = (payer % self.cards.len(), payee % self.cards.len());
                    if self.cards[payer].id == self.cards[payee].id {
                        return;
                    }
                    let (a, b) = pair(&mut self.cards, payer, payee);
                    let paid = Relay::cutting_link_before(cut).pay(
                        &mut a.card,
                        &mut b.card,
                        Amount::from_fen(fen),
                        self.clock_s,
                    );
                    if paid.is_err() {
                        // The session ends with the contact: both SEs start the next one afresh.
                        a.card.power_up();
                        b.card.power_up();
                    }
                }
            }
        }

        fn sync(&mut self, card: usize) {
            offline::sync(&mut self.world, &self.issuers, &mut self.cards[card])
                .expect("a sync of a genuine card is accepted");
        }
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
        #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

        #[test]
        fn loads_taps_clones_and_syncs_in_any_order_keep_the_books(steps in proptest::collection::vec(step(), 1..30)) {
            let mut campaign = Campaign::new();
            for step in &steps {
                campaign.apply(step);
                let report = ecny::audit::audit(campaign.world.platform.state());
                prop_assert!(report.is_clean(), "after {:?}:\n{}", step, report);
            }
            // Two rounds: the second lets each payee's applied confirmation settle or reverse
            // what a cut tap left in flight.
            for _ in 0..2 {
                for card in 0..campaign.cards.len() {
                    campaign.clock_s += 30;
                    campaign.sync(card);
                }
            }
            let report = ecny::audit::audit(campaign.world.platform.state());
            prop_assert!(report.is_clean(), "after the final syncs:\n{}", report);
            let cloned: Vec<DeviceId> = campaign.cards[4..].iter().map(|c| c.id).collect();
            // Every clone that spent alongside its original reused a counter, and was caught.
            for (index, base) in campaign.clones.clone() {
                let id = campaign.cards[index].id;
                let spent = |card: &mut Device| Relay::new().summary(&mut card.card).unwrap().counter > base;
                let original = campaign.cards.iter().position(|c| c.id == id).unwrap();
                let both = spent(&mut campaign.cards[index]) && spent(&mut campaign.cards[original]);
                let blocked = campaign.world.platform.state().devices().device(id).unwrap().blocked.is_some();
                prop_assert!(!both || blocked, "clone of {} spent with a reused counter but was not caught", id);
            }
            let devices = campaign.world.platform.state().devices();
            for card in campaign.cards.iter_mut().take(4) {
                let known = devices.device(card.id).unwrap();
                let actual = Relay::new().summary(&mut card.card).unwrap().balance;
                if !cloned.contains(&card.id) {
                    // Every honest payment was settled exactly once: the center's view is the card's.
                    prop_assert_eq!(known.believed_balance(), actual, "device {}", card.id);
                    prop_assert!(known.blocked.is_none());
                }
            }
        }
    }
}

#[test]
fn the_sync_benchmark_settles_every_record_and_keeps_the_books() {
    let dir = tempfile::tempdir().unwrap();
    let report = ecny::bench::offline_sync(dir.path(), 20, 200).unwrap();
    assert_eq!((report.records, report.center_records), (200, 800));
}

#[test]
fn a_phone_unloads_back_to_its_wallet_once_even_if_the_answer_is_lost() {
    let mut world = World::new();
    let issuers = issuers();
    let [jiangnan, _] = world.operators;
    let holder = world.open_banked(jiangnan, "5000", WalletClass::Two);
    world.exchange(&holder, "1000").unwrap();
    let mut phone = issue(
        &mut world,
        &issuers,
        jiangnan,
        WalletForm::PhoneEse,
        30,
        Some(holder.wallet),
    );
    load(&mut world, &issuers, &mut phone, 1, "300");
    assert_eq!(world.balance(holder.wallet), yuan("700"));
    // The SE debits and signs; the phone loses its connection before the center hears of it.
    let unload = Relay::new()
        .unload(&mut phone.card, yuan("120"), NOW_S + 100)
        .unwrap();
    // Next contact: the kept record is read back and delivered.
    let kept = Relay::new().unloads_to_sync(&mut phone.card).unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].unload, unload);
    let device_key = offline::device_key(30).public_key();
    let command = Command::UnloadDevice { unload, device_key };
    let first = world.run(jiangnan, command.clone()).unwrap();
    assert_eq!(world.balance(holder.wallet), yuan("820"));
    let hash = world.hash();
    assert_eq!(
        world.run(jiangnan, command),
        Ok(first),
        "a retry returns the first result"
    );
    assert_eq!(world.hash(), hash);
    let devices = world.platform.state().devices();
    let actual = Relay::new().summary(&mut phone.card).unwrap().balance;
    assert_eq!(devices.device(phone.id).unwrap().believed_balance(), actual);
    // A forged unload (signed by another key) is refused before the center.
    let forged = ecny::offline::messages::SignedUnload::sign(
        phone.id,
        2,
        (yuan("50"), NOW_S + 200),
        &ecny::certs::KeyPair::from_seed(b"thief"),
    );
    let error = world
        .run(
            jiangnan,
            Command::UnloadDevice {
                unload: forged,
                device_key,
            },
        )
        .unwrap_err();
    assert_eq!(error.code(), "SIGNATURE_INVALID");
    assert_eq!(world.hash(), hash);
    world.assert_audit();
}

#[test]
fn an_issuer_with_an_empty_vault_cannot_cover_a_clone_yet_the_books_still_hold() {
    let mut world = World::new();
    let issuers = issuers();
    let [jiangnan, lakeside] = world.operators;
    let (card, mut shop_a, mut shop_b) = a_card_spent_twice(&mut world, &issuers, lakeside, 40);
    // Jiangnan hands its whole vault back to the central bank before the shops sync.
    let left = vault(&world, jiangnan);
    world
        .run(
            jiangnan,
            Command::Redeem {
                operator: jiangnan,
                amount: left,
            },
        )
        .unwrap();
    sync(&mut world, &issuers, &mut shop_a);
    let caught = sync(&mut world, &issuers, &mut shop_b);
    assert_eq!(caught.blocked, 1);
    let device = world.platform.state().devices().device(card.id).unwrap();
    assert_eq!(device.covered, yuan("0"), "nothing to cover it with");
    assert_eq!(
        device.believed_balance(),
        -yuan("150"),
        "the open loss stays on the books"
    );
    world.assert_audit();
}

#[test]
fn a_tap_cut_before_the_payee_credited_is_reversed_at_sync_once_the_payee_can_no_longer_credit_it()
{
    let mut world = World::new();
    let issuers = issuers();
    let [jiangnan, lakeside] = world.operators;
    let holder = world.open_banked(jiangnan, "5000", WalletClass::Two);
    world.exchange(&holder, "1000").unwrap();
    let mut phone = issue(
        &mut world,
        &issuers,
        jiangnan,
        WalletForm::PhoneEse,
        50,
        Some(holder.wallet),
    );
    let mut shop = issue(
        &mut world,
        &issuers,
        lakeside,
        WalletForm::VisitorCard,
        51,
        None,
    );
    load(&mut world, &issuers, &mut phone, 1, "300");
    assert_eq!(world.balance(holder.wallet), yuan("700"));
    // The phone moves away after PAY: the payer debited, the payee never credited.
    let cut =
        Relay::cutting_link_before(7).pay(&mut phone.card, &mut shop.card, yuan("45"), NOW_S + 10);
    assert!(cut.is_err());
    // The phones move apart: the next contact with either card starts a new session.
    phone.card.power_up();
    shop.card.power_up();
    assert_eq!(
        Relay::new().summary(&mut phone.card).unwrap().balance,
        yuan("255")
    );
    assert_eq!(
        Relay::new().summary(&mut shop.card).unwrap().balance,
        yuan("0")
    );

    // The payer syncs first: the record is held, nothing moves.
    let held = sync(&mut world, &issuers, &mut phone);
    assert_eq!((held.held, held.settled, held.reversed), (1, 0, 0));
    // The shop syncs and applies the confirmation: its old challenges are retired.
    assert_eq!(sync(&mut world, &issuers, &mut shop).reversed, 0);
    // At its next sync the center knows it can never credit the payment, and reverses it.
    let reversed = sync(&mut world, &issuers, &mut shop);
    assert_eq!(reversed.reversed, 1);
    assert_eq!(
        world.balance(holder.wallet),
        yuan("745"),
        "the 45 is back in the holder's wallet"
    );
    let devices = world.platform.state().devices();
    let actual = Relay::new().summary(&mut phone.card).unwrap().balance;
    assert_eq!(devices.device(phone.id).unwrap().believed_balance(), actual);
    assert_eq!(devices.held_records(), 0);
    // The payer's first sync was confirmed: its card no longer reports the record, and nothing
    // moves again.
    let again = sync(&mut world, &issuers, &mut phone);
    assert_eq!((again.settled, again.duplicates, again.reversed), (0, 0, 0));
    assert_eq!(world.balance(holder.wallet), yuan("745"));
    world.assert_audit();
}

#[test]
fn a_visitor_cards_uncredited_payment_is_paid_out_in_cash_at_the_counter() {
    let mut world = World::new();
    let issuers = issuers();
    let [jiangnan, lakeside] = world.operators;
    // A visitor card: no wallet behind it, topped up with cash at the counter.
    let mut visitor = issue(
        &mut world,
        &issuers,
        jiangnan,
        WalletForm::VisitorCard,
        60,
        None,
    );
    let mut stall = issue(
        &mut world,
        &issuers,
        lakeside,
        WalletForm::PhoneEse,
        61,
        None,
    );
    load(&mut world, &issuers, &mut visitor, 1, "200");
    let cut = Relay::cutting_link_before(7).pay(
        &mut visitor.card,
        &mut stall.card,
        yuan("35"),
        NOW_S + 10,
    );
    assert!(cut.is_err());
    visitor.card.power_up();
    stall.card.power_up();
    let refund = Command::RefundAtCounter { device: visitor.id };
    assert_eq!(
        world.run(jiangnan, refund.clone()).unwrap_err().code(),
        "NOTHING_OWED_AT_COUNTER",
        "nothing is owed while the payee could still credit it"
    );
    assert_eq!(sync(&mut world, &issuers, &mut visitor).held, 1);
    sync(&mut world, &issuers, &mut stall);
    sync(&mut world, &issuers, &mut stall);
    let devices = world.platform.state().devices();
    assert_eq!(devices.owed_at_counter(visitor.id), yuan("35"));
    // Only the card's own operator pays it out; then the books agree with the card.
    assert_eq!(
        world.run(lakeside, refund.clone()).unwrap_err().code(),
        "NOT_YOUR_WALLET"
    );
    let (float_before, vault_before) = (float(&world, jiangnan), vault(&world, jiangnan));
    world.run(jiangnan, refund.clone()).unwrap();
    let moved = |before: Amount, after: Amount| after.fen() - before.fen();
    assert_eq!(moved(float_before, float(&world, jiangnan)), -3_500);
    assert_eq!(moved(vault_before, vault(&world, jiangnan)), 3_500);
    let devices = world.platform.state().devices();
    let on_card = Relay::new().summary(&mut visitor.card).unwrap().balance;
    assert_eq!(on_card, yuan("165"));
    assert_eq!(
        devices.device(visitor.id).unwrap().believed_balance(),
        on_card
    );
    assert_eq!(devices.owed_at_counter(visitor.id), yuan("0"));
    assert_eq!(
        world.run(jiangnan, refund).unwrap_err().code(),
        "NOTHING_OWED_AT_COUNTER",
        "paid out once"
    );
    world.assert_audit();
    let hash = world.hash();
    assert_eq!(world.reopen().hash(), hash);
}

/// A contactless card of Jiangnan's loaded with 300, copied; the card pays 200 at shop A (at
/// Lakeside), the clone 250 at shop B (at `shop_b_operator`). Returns the card and both shops.
fn a_card_spent_twice(
    world: &mut World,
    issuers: &[OperatorIssuer],
    shop_b_operator: OperatorId,
    first_id: u64,
) -> (Device, Device, Device) {
    let [jiangnan, lakeside] = world.operators;
    let holder = world.open_banked(jiangnan, "5000", WalletClass::Two);
    world.exchange(&holder, "1000").unwrap();
    let mut card = issue(
        world,
        issuers,
        jiangnan,
        WalletForm::ContactlessCard,
        first_id,
        Some(holder.wallet),
    );
    let mut shop_a = issue(
        world,
        issuers,
        lakeside,
        WalletForm::VisitorCard,
        first_id + 1,
        None,
    );
    let mut shop_b = issue(
        world,
        issuers,
        shop_b_operator,
        WalletForm::VisitorCard,
        first_id + 2,
        None,
    );
    load(world, issuers, &mut card, 1, "300");
    let mut clone = Device {
        id: card.id,
        card: card.card.clone_card(),
        operator: card.operator,
    };
    Relay::new()
        .pay(&mut card.card, &mut shop_a.card, yuan("200"), NOW_S + 10)
        .unwrap();
    Relay::new()
        .pay(&mut clone.card, &mut shop_b.card, yuan("250"), NOW_S + 20)
        .unwrap();
    (card, shop_a, shop_b)
}

#[test]
fn only_a_devices_issuing_operator_opens_its_sync_books_it_or_unloads_it() {
    let mut world = World::new();
    let issuers = issuers();
    let [jiangnan, lakeside] = world.operators;
    let holder = world.open_banked(jiangnan, "5,000", WalletClass::Two);
    world.exchange(&holder, "1,000").unwrap();
    let mut phone = issue(
        &mut world,
        &issuers,
        jiangnan,
        WalletForm::PhoneEse,
        70,
        Some(holder.wallet),
    );
    load(&mut world, &issuers, &mut phone, 1, "100");
    let hash = world.hash();
    let begin = Command::BeginSync { device: phone.id };
    assert_eq!(
        world.run(lakeside, begin).unwrap_err().code(),
        "NOT_YOUR_WALLET"
    );
    assert_eq!(world.hash(), hash);
    let sync = offline::attest(&mut world, &mut phone);
    let hash = world.hash();
    let command = Command::SyncOffline {
        sync,
        device_key: phone.key(),
    };
    assert_eq!(
        world.run(lakeside, command.clone()).unwrap_err().code(),
        "NOT_YOUR_WALLET"
    );
    let unload = Relay::new()
        .unload(&mut phone.card, yuan("10"), NOW_S + 60)
        .unwrap();
    let unload = Command::UnloadDevice {
        unload,
        device_key: phone.key(),
    };
    assert_eq!(
        world.run(lakeside, unload.clone()).unwrap_err().code(),
        "NOT_YOUR_WALLET"
    );
    assert_eq!(world.hash(), hash);
    world.run(jiangnan, command).unwrap();
    world.run(jiangnan, unload).unwrap();
    world.assert_audit();
}
