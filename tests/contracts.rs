//! Smart contracts end to end through the durable node: the 40-lesson school term (attend some,
//! cancel, refund; the school closing mid-term), escrow confirmed or timed out, recurring wages
//! with a missed run; a contract never releases more than it holds; replay rebuilds it all; the
//! audit after each.

mod support;

use ecny::amount::Amount;
use ecny::command::{Command, CommandResult, Outcome};
use ecny::ids::ContractId;
use ecny::programs::contracts::{ContractStatus, Template};
use ecny::wallet::WalletClass;
use support::{yuan, Holder, World};

const MINUTE_MS: u64 = 60_000;

fn open(world: &mut World, payer: &Holder, payee: &Holder, template: Template) -> CommandResult {
    let key = world.key();
    let command = Command::OpenContract {
        payer: payer.wallet,
        payee: payee.wallet,
        template,
        purpose: "term fee, grade 3".into(),
        key,
        auth: None,
    };
    let command = world
        .platform
        .sign_as_holder(command, &payer.key, payer.operator);
    world.run(payer.operator, command)
}

fn contract(result: CommandResult) -> ContractId {
    match result {
        Ok(Outcome::Contract(id)) => id,
        other => panic!("expected a contract, got {other:?}"),
    }
}

fn confirm(world: &mut World, payer: &Holder, id: ContractId, units: u32) -> CommandResult {
    let key = world.key();
    let command = Command::ConfirmContract {
        contract: id,
        units,
        key,
        auth: None,
    };
    let command = world
        .platform
        .sign_as_holder(command, &payer.key, payer.operator);
    world.run(payer.operator, command)
}

fn cancel(world: &mut World, party: &Holder, id: ContractId, by_payee: bool) -> CommandResult {
    let command = Command::CancelContract {
        contract: id,
        by_payee,
        auth: None,
    };
    let command = world
        .platform
        .sign_as_holder(command, &party.key, party.operator);
    world.run(party.operator, command)
}

fn term() -> Template {
    Template::Prepaid {
        units: 40,
        unit_price: yuan("150"),
    }
}

fn status(world: &World, id: ContractId) -> (ContractStatus, Amount, u32) {
    let state = world.platform.state();
    let contract = state.contracts().get(id).unwrap();
    (
        state.contract_status(contract),
        state.contract_holding(contract),
        contract.delivered,
    )
}

#[test]
fn a_40_lesson_term_releases_lesson_by_lesson_and_refunds_the_rest_on_cancel() {
    let mut world = World::new();
    let [jiangnan, lakeside] = world.operators;
    let parent = world.open_banked(jiangnan, "20000", WalletClass::Two);
    let school = world.open_banked(lakeside, "1", WalletClass::Two);
    world.exchange(&parent, "10000").unwrap();
    let id = contract(open(&mut world, &parent, &school, term()));
    // The term fee left the parent's wallet but the school has none of it yet.
    assert_eq!(world.balance(parent.wallet), yuan("4000"));
    assert_eq!(world.balance(school.wallet), yuan("0"));
    assert_eq!(
        status(&world, id),
        (ContractStatus::Active, yuan("6000"), 0)
    );
    world.assert_audit();

    for _ in 0..12 {
        confirm(&mut world, &parent, id, 1).unwrap();
    }
    confirm(&mut world, &parent, id, 3).unwrap();
    assert_eq!(world.balance(school.wallet), yuan("2250"));
    assert_eq!(
        status(&world, id),
        (ContractStatus::Active, yuan("3750"), 15)
    );
    // It never releases more than it holds; only the payer confirms.
    let refused = confirm(&mut world, &parent, id, 26).unwrap_err();
    assert_eq!(refused.code(), "CONTRACT_EXCEEDS_HOLDINGS");
    let by_school = Command::ConfirmContract {
        contract: id,
        units: 1,
        key: world.key(),
        auth: None,
    };
    let by_school = world
        .platform
        .sign_as_holder(by_school, &school.key, school.operator);
    assert_eq!(
        world.run(lakeside, by_school).unwrap_err().code(),
        "UNKNOWN_WALLET"
    );

    // The parent cancels: the 25 lessons not given come back.
    cancel(&mut world, &parent, id, false).unwrap();
    assert_eq!(world.balance(parent.wallet), yuan("7750"));
    assert_eq!(
        status(&world, id),
        (ContractStatus::Cancelled, yuan("0"), 15)
    );
    // A retried cancellation is answered, and moves nothing.
    cancel(&mut world, &parent, id, false).unwrap();
    assert_eq!(world.balance(parent.wallet), yuan("7750"));
    assert_eq!(
        confirm(&mut world, &parent, id, 1).unwrap_err().code(),
        "CONTRACT_NOT_ACTIVE"
    );
    world.assert_audit();
    let hash = world.hash();
    let world = world.reopen();
    assert_eq!(
        world.hash(),
        hash,
        "replay rebuilds the contract book exactly"
    );
    world.assert_audit();
}

#[test]
fn the_school_closing_mid_term_refunds_every_parent_what_was_not_taught() {
    let mut world = World::new();
    let [jiangnan, lakeside] = world.operators;
    let school = world.open_banked(lakeside, "1", WalletClass::Two);
    let mut terms = Vec::new();
    for attended in [0u32, 7, 40] {
        let parent = world.open_banked(jiangnan, "20000", WalletClass::Two);
        world.exchange(&parent, "6000").unwrap();
        let id = contract(open(&mut world, &parent, &school, term()));
        if attended > 0 {
            confirm(&mut world, &parent, id, attended).unwrap();
        }
        terms.push((parent, id, attended));
    }
    for (_, id, _) in &terms {
        let result = cancel(&mut world, &school, *id, true);
        if status(&world, *id).0 == ContractStatus::Completed {
            assert_eq!(result.unwrap_err().code(), "CONTRACT_NOT_ACTIVE");
        } else {
            result.unwrap();
        }
    }
    for (parent, id, attended) in &terms {
        let refund = 150 * (40 - attended) as i64;
        assert_eq!(world.balance(parent.wallet), Amount::from_fen(refund * 100));
        let expected = if *attended == 40 {
            ContractStatus::Completed
        } else {
            ContractStatus::Cancelled
        };
        assert_eq!(status(&world, *id).0, expected);
    }
    assert_eq!(world.balance(school.wallet), yuan("7050"));
    world.assert_audit();
}

#[test]
fn confirming_a_second_term_with_the_first_terms_key_is_refused_not_answered_with_the_first() {
    let mut world = World::new();
    let [jiangnan, lakeside] = world.operators;
    let school = world.open_banked(lakeside, "1", WalletClass::Two);
    let parent = world.open_banked(jiangnan, "20,000", WalletClass::Two);
    world.exchange(&parent, "12,000").unwrap();
    // Two terms alike in payee and price.
    let first = contract(open(&mut world, &parent, &school, term()));
    let second = contract(open(&mut world, &parent, &school, term()));
    let key = world.key();
    let (context, not_after_ms) = world.signing(&parent);
    let confirm_with = |id| {
        Command::ConfirmContract {
            contract: id,
            units: 1,
            key,
            auth: None,
        }
        .sign(&parent.key, &context, not_after_ms)
    };
    let released = world.run(jiangnan, confirm_with(first)).unwrap();
    assert_eq!(
        world
            .run(jiangnan, confirm_with(second))
            .unwrap_err()
            .code(),
        "IDEMPOTENCY_KEY_REUSED"
    );
    assert_eq!(world.run(jiangnan, confirm_with(first)).unwrap(), released);
    assert_eq!(status(&world, first).2, 1);
    assert_eq!(
        status(&world, second),
        (ContractStatus::Active, yuan("6,000"), 0)
    );
    assert_eq!(world.balance(school.wallet), yuan("150"));
    world.assert_audit();
}

#[test]
fn a_term_whose_price_times_units_overflows_is_refused_and_moves_nothing() {
    let mut world = World::new();
    let [jiangnan, lakeside] = world.operators;
    let school = world.open_banked(lakeside, "1", WalletClass::Two);
    let parent = world.open_banked(jiangnan, "20,000", WalletClass::One);
    world.exchange(&parent, "10,000").unwrap();
    let before = world.hash();
    // 1,000 lessons at 184,467,440,737,095.52 wrap to 3.84 in 64-bit fen.
    let overflowing = Template::Prepaid {
        units: 1_000,
        unit_price: yuan("184,467,440,737,095.52"),
    };
    let error = open(&mut world, &parent, &school, overflowing).unwrap_err();
    assert_eq!(error.code(), "CONTRACT_FUNDING_TOO_LARGE");
    assert_eq!(world.hash(), before);
    assert_eq!(world.balance(parent.wallet), yuan("10,000"));
    assert!(world
        .platform
        .state()
        .contracts()
        .get(ContractId(1))
        .is_err());
    world.assert_audit();
}

#[test]
fn an_escrow_is_released_on_confirmation_or_returned_at_its_deadline() {
    let mut world = World::new();
    let [jiangnan, lakeside] = world.operators;
    let buyer = world.open_banked(jiangnan, "5000", WalletClass::Three);
    let seller = world.open(lakeside);
    world.exchange(&buyer, "1000").unwrap();
    let now = world.platform.state().last_timestamp_ms();
    let escrow = |deadline_ms| Template::Escrow {
        amount: yuan("300"),
        deadline_ms,
    };
    let confirmed = contract(open(
        &mut world,
        &buyer,
        &seller,
        escrow(now + 10 * MINUTE_MS),
    ));
    let lapsed = contract(open(&mut world, &buyer, &seller, escrow(now + MINUTE_MS)));
    assert_eq!(world.balance(seller.wallet), yuan("0"));
    // The buyer cannot take an escrow back early; the seller can decline it.
    assert_eq!(
        cancel(&mut world, &buyer, confirmed, false)
            .unwrap_err()
            .code(),
        "CONTRACT_TEMPLATE_MISMATCH"
    );
    confirm(&mut world, &buyer, confirmed, 1).unwrap();
    assert_eq!(world.balance(seller.wallet), yuan("300"));
    assert_eq!(status(&world, confirmed).0, ContractStatus::Completed);

    world.advance_ms(MINUTE_MS + 1);
    world.exchange(&buyer, "1").unwrap(); // any entry lets the ledger see the time
    assert_eq!(
        status(&world, lapsed),
        (ContractStatus::Expired, yuan("0"), 0)
    );
    assert_eq!(world.balance(buyer.wallet), yuan("701"));
    assert_eq!(
        confirm(&mut world, &buyer, lapsed, 1).unwrap_err().code(),
        "CONTRACT_NOT_ACTIVE"
    );
    world.assert_audit();
}

#[test]
fn recurring_wages_run_on_schedule_record_a_missed_run_and_stop_when_cancelled() {
    let mut world = World::new();
    let [jiangnan, lakeside] = world.operators;
    let employer = world.open_banked(jiangnan, "20000", WalletClass::Two);
    let worker = world.open_banked(lakeside, "1", WalletClass::Two);
    world.exchange(&employer, "9000").unwrap();
    let start = world.platform.state().last_timestamp_ms() + MINUTE_MS;
    let wages = Template::Recurring {
        amount: yuan("4000"),
        first_ms: start,
        every_ms: MINUTE_MS,
        count: 4,
    };
    let id = contract(open(&mut world, &employer, &worker, wages));
    assert_eq!(world.balance(worker.wallet), yuan("0"));
    let tick = |world: &mut World| {
        world.advance_ms(MINUTE_MS);
        world.exchange(&employer, "0.01").unwrap();
    };
    tick(&mut world);
    tick(&mut world);
    assert_eq!(world.balance(worker.wallet), yuan("8000"));
    // The third run finds too little money: missed, with its reason, and the schedule goes on.
    tick(&mut world);
    let state = world.platform.state();
    let book = state.contracts().get(id).unwrap();
    assert_eq!((book.delivered, book.missed), (2, 1));
    assert_eq!(book.last_miss.as_deref(), Some("INSUFFICIENT_FUNDS"));
    // The analysis center counts the wages as scheduled payments, not as "other".
    let mut center = ecny::analytics::AnalysisCenter::new(Default::default());
    center.follow(world.platform.state());
    let scheduled = center.statistics().by_channel()["scheduled"];
    assert_eq!((scheduled.count, scheduled.amount), (2, yuan("8000")));
    world.exchange(&employer, "5000").unwrap();
    cancel(&mut world, &worker, id, true).unwrap();
    tick(&mut world);
    assert_eq!(world.balance(worker.wallet), yuan("8000"));
    assert_eq!(status(&world, id).0, ContractStatus::Cancelled);
    // Bad terms are refused with the reason; nothing moves.
    let bad = Template::Recurring {
        amount: yuan("1"),
        first_ms: start,
        every_ms: 1_000,
        count: 1,
    };
    assert_eq!(
        open(&mut world, &employer, &worker, bad)
            .unwrap_err()
            .code(),
        "CONTRACT_TERMS_INVALID"
    );
    assert_eq!(
        open(&mut world, &employer, &employer, term())
            .unwrap_err()
            .code(),
        "SAME_WALLET"
    );
    world.assert_audit();
    let hash = world.hash();
    assert_eq!(world.reopen().hash(), hash);
}
