//! Tearing: a tap cut at any APDU boundary or inside any persistent write.
//!
//! The invariant, for one payment of `amount` from payer P to payee Q: once both SEs have
//! powered up again and met once more (or the center has settled P's record at sync), exactly
//! one of these holds —
//!
//! * moved: P's balance fell by `amount` and Q's rose by `amount`; P holds one new paid record,
//!   acknowledged; Q holds one new received record with the same signed content;
//! * not moved: both balances and both logs are as they were (Q may hold one more unused
//!   challenge, which moves no value).
//!
//! Never both SEs keep the value (P not debited while Q credited) and never neither (P debited
//! while Q is not credited and cannot be any more). Across many SEs with no sync, value is
//! conserved at every instant: the sum of balances plus the records in flight (paid, not yet
//! credited) equals what was loaded.

use thiserror::Error;

use crate::amount::Amount;
use crate::offline::applet::PersistentState;
use crate::offline::messages::{EntryRole, LogEntry};

/// What a payment came to once the SEs met again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentOutcome {
    Moved,
    NotMoved,
}

/// A state that breaks the tearing invariant; any of these is a bug that loses or makes money.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TearingViolation {
    #[error(
        "balances moved by payer {payer} / payee {payee} fen instead of 0/0 or -{amount}/+{amount}"
    )]
    BalancesInconsistent { payer: i64, payee: i64, amount: i64 },
    #[error("logs gained {paid} paid and {received} received records; expected 0/0 or 1/1")]
    RecordsInconsistent { paid: usize, received: usize },
    #[error("the payer's record differs from the payee's or still waits for a receipt")]
    RecordsDisagree,
}

/// Checks the invariant for one payment, given both SEs before the tap and after recovery.
pub fn audit_payment(
    before: (&PersistentState, &PersistentState),
    after: (&PersistentState, &PersistentState),
    amount: Amount,
) -> Result<PaymentOutcome, TearingViolation> {
    let (payer_before, payee_before) = before;
    let (payer_after, payee_after) = after;
    let payer_delta = payer_after.balance().fen() - payer_before.balance().fen();
    let payee_delta = payee_after.balance().fen() - payee_before.balance().fen();
    let paid = new_entries(payer_before, payer_after, EntryRole::Paid);
    let received = new_entries(payee_before, payee_after, EntryRole::Received);
    let records_moved = match (paid.len(), received.len()) {
        (0, 0) => false,
        (1, 1) => true,
        (paid, received) => return Err(TearingViolation::RecordsInconsistent { paid, received }),
    };
    let balances_moved = match (payer_delta, payee_delta) {
        (0, 0) => false,
        (payer, payee) if payer == -amount.fen() && payee == amount.fen() => true,
        (payer, payee) => {
            let amount = amount.fen();
            return Err(TearingViolation::BalancesInconsistent {
                payer,
                payee,
                amount,
            });
        }
    };
    if records_moved != balances_moved {
        return Err(TearingViolation::RecordsDisagree);
    }
    if !records_moved {
        return Ok(PaymentOutcome::NotMoved);
    }
    if paid[0].signed != received[0].signed || !paid[0].acknowledged {
        return Err(TearingViolation::RecordsDisagree);
    }
    Ok(PaymentOutcome::Moved)
}

fn new_entries(
    before: &PersistentState,
    after: &PersistentState,
    role: EntryRole,
) -> Vec<LogEntry> {
    after
        .log()
        .iter()
        .filter(|entry| entry.role == role)
        .filter(|entry| !before.log().iter().any(|old| old.seq == entry.seq))
        .copied()
        .collect()
}

/// Paid records that no SE in `states` has credited: value on its way, owed to the payee.
pub fn in_flight(states: &[&PersistentState]) -> Vec<LogEntry> {
    let credited = |entry: &LogEntry| {
        states.iter().any(|state| {
            state.device() == entry.signed.record.payee
                && state
                    .log()
                    .iter()
                    .any(|mine| mine.role == EntryRole::Received && mine.signed == entry.signed)
        })
    };
    states
        .iter()
        .flat_map(|state| state.log().iter())
        .filter(|entry| entry.role == EntryRole::Paid && !credited(entry))
        .copied()
        .collect()
}

/// Balances plus value in flight (paid and not credited, unloaded and not confirmed): constant
/// across any taps and cuts until the next sync.
pub fn value_held(states: &[&PersistentState]) -> Amount {
    let balances: Amount = states.iter().map(|state| state.balance()).sum();
    let moving: Amount = in_flight(states)
        .iter()
        .map(|entry| entry.signed.record.amount)
        .sum();
    balances
        .checked_add(moving)
        .and_then(|held| held.checked_add(unloads_kept(states)))
        .expect("bounded by what was loaded")
}

/// Signed unloads not yet confirmed: value on its way back to the holders' online wallets.
pub fn unloads_kept(states: &[&PersistentState]) -> Amount {
    states
        .iter()
        .flat_map(|state| state.unloads().iter())
        .map(|entry| entry.unload.amount)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::DeviceId;
    use crate::offline::applet::{Applet, RECENT_CHALLENGES_MAX};
    use crate::offline::nvm::TearingPlan;
    use crate::offline::profiles::WalletForm;
    use crate::offline::protocol::{settlement, Relay, RelayError, Settlement};
    use crate::offline::testkit::{World, NOW_S};
    use proptest::prelude::*;

    const AMOUNT_FEN: i64 = 6_660;

    /// Where one tap is cut.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Cut {
        LinkBeforeApdu(usize),
        PayerAfterWrite(u32),
        PayeeAfterWrite(u32),
    }

    fn tap_pair(world: &World) -> (Applet, Applet) {
        let payer = world.wallet(0, WalletForm::PhoneEse, 1, Amount::from_yuan(100));
        let payee = world.wallet(1, WalletForm::ContactlessCard, 2, Amount::from_yuan(5));
        (payer, payee)
    }

    /// The pair after one earlier payment: each has the other's chain in its cache.
    fn warm_pair(world: &World) -> (Applet, Applet) {
        let (mut payer, mut payee) = tap_pair(world);
        Relay::new()
            .pay(&mut payer, &mut payee, Amount::from_fen(1), NOW_S)
            .unwrap();
        (payer, payee)
    }

    fn pair(world: &World, warm: bool) -> (Applet, Applet) {
        if warm {
            warm_pair(world)
        } else {
            tap_pair(world)
        }
    }

    /// APDUs and persistent writes per SE of one uncut payment.
    fn dry_run(world: &World, warm: bool) -> (usize, u32, u32) {
        let (mut payer, mut payee) = pair(world, warm);
        payer.arm_tearing(TearingPlan::NONE);
        payee.arm_tearing(TearingPlan::NONE);
        let mut relay = Relay::new();
        relay
            .pay(&mut payer, &mut payee, Amount::from_fen(AMOUNT_FEN), NOW_S)
            .unwrap();
        (
            relay.apdus(),
            payer.persistent_writes(),
            payee.persistent_writes(),
        )
    }

    /// Cuts one payment at `cut`, powers both SEs up, lets them meet again, audits.
    fn cut_then_recover(world: &World, warm: bool, cut: Cut) -> PaymentOutcome {
        let (mut payer, mut payee) = pair(world, warm);
        let before = (
            payer.persistent_image().clone(),
            payee.persistent_image().clone(),
        );
        let mut relay = Relay::new();
        match cut {
            Cut::LinkBeforeApdu(apdu) => relay = Relay::cutting_link_before(apdu),
            Cut::PayerAfterWrite(write) => payer.arm_tearing(TearingPlan::after_writes(write)),
            Cut::PayeeAfterWrite(write) => payee.arm_tearing(TearingPlan::after_writes(write)),
        }
        let amount = Amount::from_fen(AMOUNT_FEN);
        let torn = relay.pay(&mut payer, &mut payee, amount, NOW_S);
        assert!(
            matches!(
                torn,
                Err(RelayError::LinkCut { .. } | RelayError::CardSilent { .. })
            ),
            "{cut:?} must tear the tap, got {torn:?}"
        );
        payer.power_up();
        payee.power_up();
        Relay::new()
            .contact(&mut payer, &mut payee, NOW_S + 30)
            .unwrap();
        let after = (payer.persistent_image(), payee.persistent_image());
        let outcome = audit_payment((&before.0, &before.1), after, amount)
            .unwrap_or_else(|violation| panic!("{cut:?}: {violation}"));
        let total_before = before.0.balance().checked_add(before.1.balance()).unwrap();
        assert_eq!(value_held(&[after.0, after.1]), total_before, "{cut:?}");
        assert_eq!(after.0.unacknowledged(), 0, "{cut:?} left a record waiting");
        outcome
    }

    /// Every APDU boundary and every persistent write of both SEs, with the write that commits
    /// PAY: cold caches add one write per SE (the newly verified certificates).
    fn every_cut(warm: bool, expected_writes: (u32, u32), pay_commit_write: u32) -> usize {
        let world = World::new();
        let (apdus, payer_writes, payee_writes) = dry_run(&world, warm);
        assert_eq!(
            (apdus, payer_writes, payee_writes),
            (12, expected_writes.0, expected_writes.1)
        );
        // The payer commits PAY with the 7th APDU (PAY's second part).
        const PAY_COMMITTED_AFTER_APDU: usize = 7;
        const REQUEST_COMMIT_WRITE: u32 = 3;
        let mut checked = 0;
        for apdu in 0..apdus {
            let expected = if apdu >= PAY_COMMITTED_AFTER_APDU {
                PaymentOutcome::Moved
            } else {
                PaymentOutcome::NotMoved
            };
            let outcome = cut_then_recover(&world, warm, Cut::LinkBeforeApdu(apdu));
            assert_eq!(outcome, expected, "apdu {apdu}, warm {warm}");
            checked += 1;
        }
        for write in 1..=payer_writes {
            let moved = write >= pay_commit_write;
            let outcome = cut_then_recover(&world, warm, Cut::PayerAfterWrite(write));
            assert_eq!(
                outcome == PaymentOutcome::Moved,
                moved,
                "payer write {write}"
            );
            checked += 1;
        }
        for write in 1..=payee_writes {
            // Once the payee is past its challenge, the payer has paid: recovery completes it.
            let moved = write > REQUEST_COMMIT_WRITE;
            let outcome = cut_then_recover(&world, warm, Cut::PayeeAfterWrite(write));
            assert_eq!(
                outcome == PaymentOutcome::Moved,
                moved,
                "payee write {write}"
            );
            checked += 1;
        }
        checked
    }

    #[test]
    fn every_cut_of_one_payment_moves_the_value_exactly_once_or_not_at_all() {
        assert_eq!(every_cut(false, (10, 9), 8), 12 + 10 + 9);
    }

    #[test]
    fn every_cut_of_a_payment_between_known_peers_moves_the_value_exactly_once_or_not_at_all() {
        assert_eq!(every_cut(true, (9, 8), 7), 12 + 9 + 8);
    }

    /// Cuts one unload at `cut`, powers the SE up, and returns its state and what the phone
    /// can still read back of unloads.
    fn cut_unload(world: &World, cut: Cut) -> (PersistentState, usize) {
        let mut card = world.wallet(0, WalletForm::PhoneEse, 1, Amount::from_yuan(100));
        let mut relay = Relay::new();
        match cut {
            Cut::LinkBeforeApdu(apdu) => relay = Relay::cutting_link_before(apdu),
            Cut::PayerAfterWrite(write) => card.arm_tearing(TearingPlan::after_writes(write)),
            Cut::PayeeAfterWrite(_) => unreachable!("an unload has one SE"),
        }
        let torn = relay.unload(&mut card, Amount::from_fen(AMOUNT_FEN), NOW_S);
        assert!(
            matches!(
                torn,
                Err(RelayError::LinkCut { .. } | RelayError::CardSilent { .. })
            ),
            "{cut:?} must tear the unload, got {torn:?}"
        );
        card.power_up();
        let readable = Relay::new().unloads_to_sync(&mut card).unwrap().len();
        (card.persistent_image().clone(), readable)
    }

    #[test]
    fn every_cut_of_an_unload_leaves_the_pre_state_or_the_debit_with_its_record() {
        let world = World::new();
        let mut card = world.wallet(0, WalletForm::PhoneEse, 1, Amount::from_yuan(100));
        let before = card.persistent_image().clone();
        card.arm_tearing(TearingPlan::NONE);
        let mut relay = Relay::new();
        relay
            .unload(&mut card, Amount::from_fen(AMOUNT_FEN), NOW_S)
            .unwrap();
        let (apdus, writes) = (relay.apdus(), card.persistent_writes());
        assert_eq!(
            (apdus, writes),
            (3, 5),
            "SELECT, GET DATA, UNLOAD; 4 writes and commit"
        );
        let cuts = (0..apdus)
            .map(Cut::LinkBeforeApdu)
            .chain((1..=writes).map(Cut::PayerAfterWrite));
        let mut debited = 0;
        for cut in cuts {
            let (after, readable) = cut_unload(&world, cut);
            let kept = after.unloads().len();
            let moved = after.balance() != before.balance();
            if moved {
                debited += 1;
                // The commit was the last write: the answer was lost, the record was not.
                assert_eq!(
                    after.balance(),
                    Amount::from_fen(10_000 - AMOUNT_FEN),
                    "{cut:?}"
                );
                assert_eq!((kept, readable, after.unload_seq()), (1, 1, 1), "{cut:?}");
            } else {
                assert_eq!(&after, &before, "{cut:?} left a partial unload");
                assert_eq!(readable, 0, "{cut:?}");
            }
            assert_eq!(value_held(&[&after]), Amount::from_yuan(100), "{cut:?}");
        }
        assert_eq!(debited, 1, "only a cut after the commit keeps the debit");
    }

    #[test]
    fn a_torn_payment_completes_in_the_next_payment_between_the_same_two() {
        let world = World::new();
        let (mut payer, mut payee) = tap_pair(&world);
        let amount = Amount::from_fen(AMOUNT_FEN);
        let _ = Relay::cutting_link_before(7).pay(&mut payer, &mut payee, amount, NOW_S);
        assert_eq!(payer.persistent_image().unacknowledged(), 1);
        payer.power_up();
        payee.power_up();
        let next = Relay::new()
            .pay(&mut payer, &mut payee, Amount::from_yuan(1), NOW_S + 60)
            .unwrap();
        assert_eq!(next.recovered, 1);
        assert_eq!(
            payer.persistent_image().balance(),
            Amount::from_fen(10_000 - AMOUNT_FEN - 100)
        );
        assert_eq!(
            payee.persistent_image().balance(),
            Amount::from_fen(500 + AMOUNT_FEN + 100)
        );
    }

    #[test]
    fn a_torn_payment_survives_abandoned_challenges_up_to_the_recent_limit() {
        let world = World::new();
        // The torn challenge and the later unpaid ones share the payee's recent slots.
        for abandoned in [RECENT_CHALLENGES_MAX - 1, RECENT_CHALLENGES_MAX] {
            let (mut payer, mut payee) = tap_pair(&world);
            let mut other = world.wallet(0, WalletForm::PhoneEse, 3, Amount::from_yuan(50));
            let amount = Amount::from_fen(AMOUNT_FEN);
            let _ = Relay::cutting_link_before(7).pay(&mut payer, &mut payee, amount, NOW_S);
            payer.power_up();
            payee.power_up();
            // Other customers walk away after the payee's challenge; a credited challenge
            // retires itself and would not push the torn one out.
            for _ in 0..abandoned {
                let _ = Relay::cutting_link_before(4).pay(&mut other, &mut payee, amount, NOW_S);
            }
            Relay::new()
                .pay(&mut other, &mut payee, Amount::from_fen(1), NOW_S)
                .unwrap();
            let completed = Relay::new()
                .contact(&mut payer, &mut payee, NOW_S + 60)
                .unwrap();
            let states = [
                payer.persistent_image(),
                payee.persistent_image(),
                other.persistent_image(),
            ];
            if abandoned < RECENT_CHALLENGES_MAX {
                assert_eq!(completed, 1);
                assert!(in_flight(&states).is_empty());
            } else {
                // Too old for the payee: the payer's signed record is settled by the center.
                assert_eq!(completed, 0);
                let stuck = in_flight(&states);
                assert_eq!(stuck.len(), 1);
                assert!(!payee
                    .persistent_image()
                    .challenges()
                    .holds(&stuck[0].signed.record.nonce));
            }
            let loaded = Amount::from_yuan(100 + 5 + 50);
            assert_eq!(value_held(&states), loaded);
        }
    }

    #[test]
    fn a_payee_that_synced_first_leaves_the_torn_payment_to_the_center() {
        let world = World::new();
        let (mut payer, mut payee) = tap_pair(&world);
        let amount = Amount::from_fen(AMOUNT_FEN);
        let _ = Relay::cutting_link_before(7).pay(&mut payer, &mut payee, amount, NOW_S);
        payer.power_up();
        payee.power_up();
        let (synced, _) = world.confirm_all(1, &mut payee, NOW_S + 10).unwrap();
        let payee_log = synced.log;
        // The payee's sync retired its challenges, so no SE can credit this record any more:
        // the center, holding the payer's signed record, credits the payee exactly once.
        assert_eq!(
            Relay::new()
                .contact(&mut payer, &mut payee, NOW_S + 60)
                .unwrap(),
            0
        );
        let paid = Relay::new().records_to_sync(&mut payer).unwrap();
        assert_eq!(paid.len(), 1);
        assert_eq!(settlement(&paid[0], &payee_log), Settlement::InFlight);
        assert_eq!(payee.persistent_image().balance(), Amount::from_yuan(5));
    }

    #[test]
    fn a_cut_during_recovery_is_recovered_by_the_contact_after() {
        let world = World::new();
        let (mut payer, mut payee) = tap_pair(&world);
        let amount = Amount::from_fen(AMOUNT_FEN);
        let before = (
            payer.persistent_image().clone(),
            payee.persistent_image().clone(),
        );
        let _ = Relay::cutting_link_before(7).pay(&mut payer, &mut payee, amount, NOW_S);
        for write in 1..=5 {
            payer.power_up();
            payee.power_up();
            payee.arm_tearing(TearingPlan::after_writes(write));
            let _ = Relay::new().contact(&mut payer, &mut payee, NOW_S + 60);
        }
        payer.power_up();
        payee.power_up();
        Relay::new()
            .contact(&mut payer, &mut payee, NOW_S + 90)
            .unwrap();
        let after = (payer.persistent_image(), payee.persistent_image());
        assert_eq!(
            audit_payment((&before.0, &before.1), after, amount),
            Ok(PaymentOutcome::Moved)
        );
    }

    /// One step of a random day of taps among a few SEs.
    #[derive(Clone, Debug)]
    enum Step {
        Pay {
            payer: usize,
            payee: usize,
            fen: i64,
            cut: Option<Cut>,
        },
        Contact {
            payer: usize,
            payee: usize,
            cut: Option<Cut>,
        },
    }

    const CARDS: usize = 4;

    fn cut_strategy() -> impl Strategy<Value = Option<Cut>> {
        proptest::option::weighted(
            0.6,
            prop_oneof![
                (0usize..12).prop_map(Cut::LinkBeforeApdu),
                (1u32..11).prop_map(Cut::PayerAfterWrite),
                (1u32..10).prop_map(Cut::PayeeAfterWrite),
            ],
        )
    }

    fn step_strategy() -> impl Strategy<Value = Step> {
        let pair =
            (0..CARDS, 1..CARDS).prop_map(|(payer, offset)| (payer, (payer + offset) % CARDS));
        prop_oneof![
            3 => (pair.clone(), 1i64..3_000, cut_strategy())
                .prop_map(|((payer, payee), fen, cut)| Step::Pay { payer, payee, fen, cut }),
            1 => (pair, cut_strategy()).prop_map(|((payer, payee), cut)| Step::Contact { payer, payee, cut }),
        ]
    }

    fn pair_mut(cards: &mut [Applet], first: usize, second: usize) -> (&mut Applet, &mut Applet) {
        let (low, high) = cards.split_at_mut(first.max(second));
        if first < second {
            (&mut low[first], &mut high[0])
        } else {
            (&mut high[0], &mut low[second])
        }
    }

    fn run_step(cards: &mut [Applet], step: &Step, time_s: u32) {
        let (payer, payee, cut) = match step {
            Step::Pay {
                payer, payee, cut, ..
            }
            | Step::Contact { payer, payee, cut } => (*payer, *payee, *cut),
        };
        let (payer_card, payee_card) = pair_mut(cards, payer, payee);
        let mut relay = Relay::new();
        match cut {
            Some(Cut::LinkBeforeApdu(apdu)) => relay = Relay::cutting_link_before(apdu),
            Some(Cut::PayerAfterWrite(write)) => {
                payer_card.arm_tearing(TearingPlan::after_writes(write))
            }
            Some(Cut::PayeeAfterWrite(write)) => {
                payee_card.arm_tearing(TearingPlan::after_writes(write))
            }
            None => {}
        }
        let _ = match step {
            Step::Pay { fen, .. } => relay
                .pay(payer_card, payee_card, Amount::from_fen(*fen), time_s)
                .map(|_| 0),
            Step::Contact { .. } => relay.contact(payer_card, payee_card, time_s),
        };
        for card in [payer_card, payee_card] {
            card.arm_tearing(TearingPlan::NONE);
            card.power_up();
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn random_taps_with_random_cuts_conserve_value(steps in proptest::collection::vec(step_strategy(), 1..20)) {
            let world = World::new();
            let forms = [WalletForm::PhoneEse, WalletForm::SimCard, WalletForm::ContactlessCard, WalletForm::StudentCard];
            let mut cards: Vec<Applet> = forms
                .iter()
                .zip(1u64..)
                .map(|(form, device)| world.wallet((device % 2) as usize, *form, device, Amount::from_yuan(100)))
                .collect();
            let loaded = Amount::from_yuan(100 * CARDS as i64);
            for (index, step) in steps.iter().enumerate() {
                run_step(&mut cards, step, NOW_S + index as u32);
                let states: Vec<&PersistentState> = cards.iter().map(Applet::persistent_image).collect();
                prop_assert_eq!(value_held(&states), loaded, "after step {} {:?}", index, step);
                prop_assert!(states.iter().all(|state| !state.balance().is_negative()));
            }
            // Everyone meets everyone once more, with no cuts.
            for payer in 0..CARDS {
                for payee in 0..CARDS {
                    if payer != payee {
                        let (payer_card, payee_card) = pair_mut(&mut cards, payer, payee);
                        Relay::new().contact(payer_card, payee_card, NOW_S + 100).unwrap();
                    }
                }
            }
            let states: Vec<&PersistentState> = cards.iter().map(Applet::persistent_image).collect();
            prop_assert_eq!(value_held(&states), loaded);
            for entry in in_flight(&states) {
                // Whatever is still in flight, no SE can credit any more: it is the center's.
                let payee = states.iter().find(|s| s.device() == entry.signed.record.payee).unwrap();
                prop_assert!(!payee.challenges().holds(&entry.signed.record.nonce));
            }
            for state in &states {
                let mut credited: Vec<(DeviceId, u32)> = state
                    .log()
                    .iter()
                    .filter(|entry| entry.role == EntryRole::Received)
                    .map(|entry| (entry.signed.record.payer, entry.signed.record.counter))
                    .collect();
                let count = credited.len();
                credited.sort_unstable();
                credited.dedup();
                prop_assert_eq!(credited.len(), count, "a record was credited twice");
            }
        }
    }
}
