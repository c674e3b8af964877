//! The seeds' stories and every kind of bad input, end to end through the operator tier, the
//! durable node and the state machine; the audit after each.

mod support;

use ecny::command::{Command, Outcome};
use ecny::ids::{AccountId, EventId, IdempotencyKey, OperatorId, WalletId};
use ecny::sealed::Field;
use ecny::signing::{DeploymentId, SigningContext, SIGNATURE_WINDOW_MS_MAX};
use ecny::wallet::{ClassLimits, WalletClass, WalletStatus};
use support::{yuan, World};

#[test]
fn li_lei_pays_han_meimei_across_operators_and_the_books_balance() {
    let mut world = World::new();
    let [jiangnan, lakeside] = world.operators;
    let li = world.open_banked(jiangnan, "30000", WalletClass::Two);
    let han = world.open(lakeside);
    world.exchange(&li, "8000").unwrap();
    assert_eq!(world.balance(li.wallet), yuan("8000"));
    let by_phone = world.platform.wallet_by_phone(han.phone, None).unwrap();
    assert_eq!(by_phone, han.wallet);
    world.pay(&li, by_phone, "66.60").unwrap();
    assert_eq!(world.balance(li.wallet), yuan("7933.40"));
    assert_eq!(world.balance(han.wallet), yuan("66.60"));
    world.assert_audit();
    let report = ecny::audit::audit(world.platform.state());
    let lakeside_supply = &report.operators[1];
    assert_eq!(lakeside_supply.wallets, yuan("66.60"));
    assert_eq!(report.circulation, yuan("10000000"));
}

#[test]
fn deposits_go_back_to_the_bank_and_closing_returns_the_balance() {
    let mut world = World::new();
    let [jiangnan, _] = world.operators;
    let li = world.open_banked(jiangnan, "5000", WalletClass::Three);
    world.exchange(&li, "2000").unwrap();
    let key = world.key();
    let back = Command::DepositBack {
        wallet: li.wallet,
        amount: yuan("500"),
        key,
        auth: None,
    };
    let back = world.platform.sign_as_holder(back, &li.key, li.operator);
    world.run(jiangnan, back).unwrap();
    let bank = li.bank.unwrap();
    assert_eq!(
        world
            .platform
            .state()
            .ledger()
            .account(bank)
            .unwrap()
            .balance,
        yuan("3500")
    );
    world
        .run(jiangnan, Command::CloseWallet { wallet: li.wallet })
        .unwrap();
    assert_eq!(world.balance(li.wallet), yuan("0"));
    assert_eq!(
        world
            .platform
            .state()
            .ledger()
            .account(bank)
            .unwrap()
            .balance,
        yuan("5000")
    );
    let error = world.pay(&li, WalletId(1), "1").unwrap_err();
    assert_eq!(error.code(), "WALLET_CLOSED");
    world.assert_audit();
}

#[test]
fn issuance_is_backed_and_redemption_bounded_by_what_was_given() {
    let mut world = World::new();
    let [jiangnan, lakeside] = world.operators;
    let before = world.hash();
    let too_much = world
        .platform
        .as_central_bank(vec![Command::Issue {
            operator: jiangnan,
            amount: yuan("5000000.01"),
        }])
        .unwrap();
    assert_eq!(
        too_much[0].clone().unwrap_err().code(),
        "INSUFFICIENT_RESERVES"
    );
    assert_eq!(world.hash(), before);
    world
        .run(
            lakeside,
            Command::Redeem {
                operator: lakeside,
                amount: yuan("1000000"),
            },
        )
        .unwrap();
    let error = world
        .run(
            lakeside,
            Command::Redeem {
                operator: lakeside,
                amount: yuan("4000000.01"),
            },
        )
        .unwrap_err();
    assert_eq!(error.code(), "REDEMPTION_EXCEEDS_BACKING");
    let error = world
        .run(
            lakeside,
            Command::Redeem {
                operator: jiangnan,
                amount: yuan("1"),
            },
        )
        .unwrap_err();
    assert_eq!(error.code(), "NOT_YOUR_WALLET");
    let error = world
        .run(
            jiangnan,
            Command::Issue {
                operator: jiangnan,
                amount: yuan("1"),
            },
        )
        .unwrap_err();
    assert_eq!(error.code(), "CENTRAL_BANK_ONLY");
    let totals = world.platform.state().issuance_totals(lakeside).unwrap();
    assert_eq!(totals.outstanding(), yuan("4000000"));
    world.assert_audit();
}

#[test]
fn kyc_upgrades_need_what_each_class_requires() {
    let mut world = World::new();
    let [jiangnan, _] = world.operators;
    let holder = world.open(jiangnan);
    let upgrade = |to, name: Option<&str>, id: Option<&str>, in_person| Command::UpgradeWallet {
        wallet: holder.wallet,
        to,
        name: name.map(Into::into),
        id_number: id.map(Into::into),
        in_person,
    };
    let error = world
        .run(
            jiangnan,
            upgrade(WalletClass::Three, Some("Zhang San"), None, false),
        )
        .unwrap_err();
    assert_eq!(error.code(), "KYC_INCOMPLETE");
    assert!(error.to_string().contains("ID number"), "{error}");
    world
        .run(
            jiangnan,
            upgrade(
                WalletClass::Three,
                Some("Zhang San"),
                Some("110101199003074514"),
                false,
            ),
        )
        .unwrap();
    let error = world
        .run(jiangnan, upgrade(WalletClass::Two, None, None, false))
        .unwrap_err();
    assert!(error.to_string().contains("bound bank account"), "{error}");
    let error = world
        .run(jiangnan, upgrade(WalletClass::Four, None, None, false))
        .unwrap_err();
    assert_eq!(error.code(), "CLASS_NOT_AN_UPGRADE");
    let identity = world
        .platform
        .state()
        .operator(jiangnan)
        .unwrap()
        .identity(holder.wallet)
        .unwrap();
    let key = world.platform.identity_key(jiangnan).unwrap();
    let name = identity.name.as_ref().unwrap();
    assert_eq!(key.open_text(Field::Name, name).unwrap(), "Zhang San");
    assert_eq!(
        world.platform.state().wallet(holder.wallet).unwrap().class,
        WalletClass::Three
    );
}

#[test]
fn class_limits_refuse_with_the_limit_named_and_nothing_moves() {
    let mut world = World::new();
    let [jiangnan, lakeside] = world.operators;
    let rich = world.open_banked(jiangnan, "100000", WalletClass::Two);
    world.exchange(&rich, "40000").unwrap();
    let anonymous = world.open(lakeside);
    let shop = world.open_banked(lakeside, "1", WalletClass::One);

    let before = world.hash();
    let error = world.pay(&rich, anonymous.wallet, "10000.01").unwrap_err();
    assert_eq!(error.code(), "LIMIT_BALANCE_CAP");
    assert_eq!(world.hash(), before, "a refused payment changed the state");

    world.pay(&rich, anonymous.wallet, "9000").unwrap();
    let before = world.hash();
    let error = world.pay(&anonymous, shop.wallet, "2000.01").unwrap_err();
    assert_eq!(error.code(), "LIMIT_SINGLE_PAYMENT");
    assert!(error.to_string().contains("2000.00"));
    assert_eq!(world.hash(), before);
    world.pay(&anonymous, shop.wallet, "2000").unwrap();
    world.pay(&anonymous, shop.wallet, "2000").unwrap();
    let error = world.pay(&anonymous, shop.wallet, "1000.01").unwrap_err();
    assert_eq!(error.code(), "LIMIT_DAILY");
    world.advance_ms(24 * 3600 * 1000);
    world.pay(&anonymous, shop.wallet, "1000.01").unwrap();
    world.assert_audit();
}

#[test]
fn an_operator_configures_its_own_class_limits() {
    let mut world = World::new();
    let [jiangnan, lakeside] = world.operators;
    let strict = ClassLimits {
        single_payment: Some(yuan("100")),
        ..ClassLimits::default_for(WalletClass::Four)
    };
    world
        .run(
            jiangnan,
            Command::SetClassLimits {
                operator: jiangnan,
                class: WalletClass::Four,
                limits: strict,
            },
        )
        .unwrap();
    let error = world
        .run(
            lakeside,
            Command::SetClassLimits {
                operator: jiangnan,
                class: WalletClass::Four,
                limits: strict,
            },
        )
        .unwrap_err();
    assert_eq!(error.code(), "NOT_YOUR_WALLET");
    let funder = world.open_banked(jiangnan, "10000", WalletClass::Two);
    world.exchange(&funder, "1000").unwrap();
    let at_jiangnan = world.open(jiangnan);
    world.pay(&funder, at_jiangnan.wallet, "500").unwrap();
    assert_eq!(
        world
            .pay(&at_jiangnan, funder.wallet, "100.01")
            .unwrap_err()
            .code(),
        "LIMIT_SINGLE_PAYMENT"
    );
    world.pay(&at_jiangnan, funder.wallet, "100").unwrap();
}

#[test]
fn retries_return_the_first_result_and_never_pay_twice() {
    let mut world = World::new();
    let [jiangnan, lakeside] = world.operators;
    let payer = world.open_banked(jiangnan, "1000", WalletClass::Three);
    world.exchange(&payer, "1000").unwrap();
    let payee = world.open(lakeside);
    let key = IdempotencyKey(0x5eed);
    let Ok(Outcome::Transfer(first)) = world.pay_with_key(&payer, payee.wallet, "10", key) else {
        panic!()
    };
    let hash = world.hash();
    for _ in 0..3 {
        assert_eq!(
            world.pay_with_key(&payer, payee.wallet, "10", key),
            Ok(Outcome::Transfer(first))
        );
    }
    assert_eq!(world.balance(payee.wallet), yuan("10"));
    let error = world
        .pay_with_key(&payer, payee.wallet, "11", key)
        .unwrap_err();
    assert_eq!(error.code(), "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(world.hash(), hash);
    // After a restart the key is still remembered.
    let mut world = world.reopen();
    assert_eq!(
        world.pay_with_key(&payer, payee.wallet, "10", key),
        Ok(Outcome::Transfer(first))
    );
    assert_eq!(world.balance(payee.wallet), yuan("10"));
}

#[test]
fn bad_commands_get_typed_errors_and_leave_the_state_unchanged() {
    let mut world = World::new();
    let [jiangnan, lakeside] = world.operators;
    let payer = world.open_banked(jiangnan, "1000", WalletClass::Three);
    world.exchange(&payer, "100").unwrap();
    let other = world.open(lakeside);
    let before = world.hash();
    let pay = |payer: WalletId, payee: WalletId, fen: i64| Command::Pay {
        payer,
        payee,
        amount: ecny::Amount::from_fen(fen),
        key: IdempotencyKey((fen + 1_000_000) as u128),
        auth: None,
    };
    let cases: Vec<(OperatorId, Command, &str)> = vec![
        (
            jiangnan,
            pay(payer.wallet, WalletId(999), 1),
            "UNKNOWN_WALLET",
        ),
        (
            jiangnan,
            pay(WalletId(999), other.wallet, 2),
            "UNKNOWN_WALLET",
        ),
        (
            jiangnan,
            pay(payer.wallet, other.wallet, 0),
            "AMOUNT_NOT_POSITIVE",
        ),
        (
            jiangnan,
            pay(payer.wallet, other.wallet, -5),
            "AMOUNT_NOT_POSITIVE",
        ),
        (
            jiangnan,
            pay(payer.wallet, other.wallet, 10_001),
            "INSUFFICIENT_FUNDS",
        ),
        (jiangnan, pay(payer.wallet, payer.wallet, 3), "SAME_WALLET"),
        (
            lakeside,
            pay(payer.wallet, other.wallet, 4),
            "UNKNOWN_WALLET",
        ),
        (
            jiangnan,
            Command::CashDeposit {
                account: AccountId(0),
                amount: yuan("1"),
            },
            "UNKNOWN_ACCOUNT",
        ),
        (
            jiangnan,
            Command::ResolveHold {
                hold: EventId(123_456),
                post: true,
            },
            "PENDING_NOT_FOUND",
        ),
        (
            jiangnan,
            Command::OpenWallet {
                operator: jiangnan,
                phone: 12345.into(),
                public_key: payer.key.public_key(),
            },
            "MALFORMED_PHONE",
        ),
        (
            jiangnan,
            Command::OpenWallet {
                operator: jiangnan,
                phone: payer.phone.into(),
                public_key: payer.key.public_key(),
            },
            "PHONE_TAKEN",
        ),
        (
            jiangnan,
            Command::CreateOperator {
                name: "rogue".into(),
                public_key: payer.key.public_key(),
            },
            "CENTRAL_BANK_ONLY",
        ),
    ];
    for (op, command, code) in cases {
        // The payer signs its own payments: what is refused is the payment, not a missing word.
        let command = match command.named_signer() {
            Some(wallet) if wallet == payer.wallet => {
                world
                    .platform
                    .sign_as_holder(command, &payer.key, payer.operator)
            }
            _ => command,
        };
        let error = world.run(op, command.clone()).unwrap_err();
        assert_eq!(error.code(), code, "{command:?}: {error}");
        assert_eq!(world.hash(), before, "{command:?} changed the state");
    }
    assert!("12.345".parse::<ecny::Amount>().is_err());
    assert!("¥1e5".parse::<ecny::Amount>().is_err());
}

#[test]
fn a_wrong_signature_is_refused_by_the_operator_tier() {
    let mut world = World::new();
    let [jiangnan, lakeside] = world.operators;
    let payer = world.open_banked(jiangnan, "1000", WalletClass::Three);
    world.exchange(&payer, "100").unwrap();
    let thief = world.open(lakeside);
    let before = world.hash();
    // Signed with someone else's key: the signature is valid, but not the wallet's key.
    let stolen = Command::Pay {
        payer: payer.wallet,
        payee: thief.wallet,
        amount: yuan("50"),
        key: IdempotencyKey(1),
        auth: None,
    };
    let stolen = world
        .platform
        .sign_as_holder(stolen, &thief.key, thief.operator);
    assert_eq!(
        world.run(jiangnan, stolen).unwrap_err().code(),
        "SIGNATURE_INVALID"
    );
    // A signature that does not verify at all: changed after signing.
    let signed = Command::Pay {
        payer: payer.wallet,
        payee: thief.wallet,
        amount: yuan("1"),
        key: IdempotencyKey(2),
        auth: None,
    };
    let signed = world
        .platform
        .sign_as_holder(signed, &payer.key, payer.operator);
    let Command::Pay {
        payer: p,
        payee,
        key,
        auth,
        ..
    } = signed
    else {
        unreachable!()
    };
    let tampered = Command::Pay {
        payer: p,
        payee,
        amount: yuan("99"),
        key,
        auth,
    };
    assert_eq!(
        world.run(jiangnan, tampered).unwrap_err().code(),
        "SIGNATURE_INVALID"
    );
    assert_eq!(world.hash(), before);
}

#[test]
fn a_signature_is_good_only_in_its_short_window_its_deployment_and_its_operator() {
    let mut world = World::new();
    let [jiangnan, lakeside] = world.operators;
    let li = world.open_banked(jiangnan, "60,000", WalletClass::Two);
    let han = world.open_banked(lakeside, "1", WalletClass::Two);
    world.exchange(&li, "1,000").unwrap();
    // Li signs 30,000 for Han; refused for want of funds, the signed bytes are seen by others.
    let key = world.key();
    let pay = Command::Pay {
        payer: li.wallet,
        payee: han.wallet,
        amount: yuan("30,000"),
        key,
        auth: None,
    };
    let (context, not_after_ms) = world.signing(&li);
    let signed = pay.clone().sign(&li.key, &context, not_after_ms);
    let refused = world.run(jiangnan, signed.clone()).unwrap_err();
    assert_eq!(refused.code(), "INSUFFICIENT_FUNDS");
    world.exchange(&li, "40,000").unwrap();
    // Re-sent unchanged after its window closed: refused, whoever sends it; nothing moves.
    let now = world.platform.node_mut().now_ms();
    world.advance_ms(not_after_ms + 1 - now);
    let replayed = world.run(jiangnan, signed).unwrap_err();
    assert_eq!(replayed.code(), "SIGNATURE_EXPIRED");
    assert_eq!(world.balance(li.wallet), yuan("41,000"));
    assert_eq!(world.balance(han.wallet), yuan("0"));

    // Li means it now: signed again, it pays; a retry signed with a fresh window is the same
    // command under the same key and answers the first transfer.
    let (context, not_after_ms) = world.signing(&li);
    let paid = world
        .run(jiangnan, pay.clone().sign(&li.key, &context, not_after_ms))
        .unwrap();
    world.advance_ms(60_000);
    let (context, later) = world.signing(&li);
    assert_ne!(later, not_after_ms);
    let retried = world.run(jiangnan, pay.clone().sign(&li.key, &context, later));
    assert_eq!(retried, Ok(paid));
    assert_eq!(world.balance(han.wallet), yuan("30,000"));

    // Signed for another deployment, another operator, or for longer than the longest window.
    let fresh = |world: &mut World| Command::Pay {
        payer: li.wallet,
        payee: han.wallet,
        amount: yuan("1"),
        key: world.key(),
        auth: None,
    };
    let elsewhere = SigningContext {
        deployment: DeploymentId([0x5a; 16]),
        ..context
    };
    let at_lakeside = SigningContext {
        operator: lakeside,
        ..context
    };
    let now = world.platform.node_mut().now_ms();
    for (context, not_after_ms, code) in [
        (elsewhere, later, "SIGNATURE_WRONG_CONTEXT"),
        (at_lakeside, later, "SIGNATURE_WRONG_CONTEXT"),
        (
            context,
            now + SIGNATURE_WINDOW_MS_MAX + 1,
            "SIGNATURE_WINDOW_TOO_LONG",
        ),
    ] {
        let command = fresh(&mut world).sign(&li.key, &context, not_after_ms);
        assert_eq!(world.run(jiangnan, command).unwrap_err().code(), code);
    }
    assert_eq!(world.balance(han.wallet), yuan("30,000"));
    world.assert_audit();
}

#[test]
fn a_frozen_wallet_neither_pays_nor_receives_until_unfrozen() {
    let mut world = World::new();
    let [jiangnan, lakeside] = world.operators;
    let payer = world.open_banked(jiangnan, "1000", WalletClass::Three);
    world.exchange(&payer, "100").unwrap();
    let payee = world.open(lakeside);
    world
        .run(
            lakeside,
            Command::SetWalletStatus {
                wallet: payee.wallet,
                status: WalletStatus::Frozen,
            },
        )
        .unwrap();
    let before = world.hash();
    assert_eq!(
        world.pay(&payer, payee.wallet, "1").unwrap_err().code(),
        "WALLET_FROZEN"
    );
    assert_eq!(world.hash(), before);
    world
        .run(
            lakeside,
            Command::SetWalletStatus {
                wallet: payee.wallet,
                status: WalletStatus::Active,
            },
        )
        .unwrap();
    world.pay(&payer, payee.wallet, "1").unwrap();
    world.assert_audit();
}

#[test]
fn a_hold_is_posted_voided_or_expires_on_time() {
    let mut world = World::new();
    let [jiangnan, lakeside] = world.operators;
    let parent = world.open_banked(jiangnan, "10000", WalletClass::Two);
    world.exchange(&parent, "3000").unwrap();
    let school = world.open_banked(lakeside, "1", WalletClass::One);
    let (context, not_after_ms) = world.signing(&parent);
    let hold = |key: u128, amount: &str, timeout_ms| {
        Command::Hold {
            payer: parent.wallet,
            payee: school.wallet,
            amount: yuan(amount),
            timeout_ms,
            key: IdempotencyKey(1_000u128 + key),
            auth: None,
        }
        .sign(&parent.key, &context, not_after_ms)
    };
    let Ok(Outcome::Transfer(first)) = world.run(jiangnan, hold(1, "1000", 60_000)) else {
        panic!()
    };
    let account = world
        .platform
        .state()
        .wallet(parent.wallet)
        .unwrap()
        .account;
    assert_eq!(
        world
            .platform
            .state()
            .ledger()
            .account(account)
            .unwrap()
            .available(),
        yuan("2000")
    );
    world
        .run(
            jiangnan,
            Command::ResolveHold {
                hold: first,
                post: true,
            },
        )
        .unwrap();
    assert_eq!(world.balance(school.wallet), yuan("1000"));
    assert_eq!(
        world
            .run(
                jiangnan,
                Command::ResolveHold {
                    hold: first,
                    post: true
                }
            )
            .unwrap_err()
            .code(),
        "PENDING_ALREADY_RESOLVED"
    );
    let error = world
        .run(
            lakeside,
            Command::ResolveHold {
                hold: first,
                post: false,
            },
        )
        .unwrap_err();
    assert_eq!(error.code(), "PENDING_ALREADY_RESOLVED");

    let Ok(Outcome::Transfer(second)) = world.run(jiangnan, hold(2, "500", 60_000)) else {
        panic!()
    };
    assert_eq!(
        world
            .run(
                lakeside,
                Command::ResolveHold {
                    hold: second,
                    post: true
                }
            )
            .unwrap_err()
            .code(),
        "NOT_YOUR_WALLET"
    );
    world
        .run(
            jiangnan,
            Command::ResolveHold {
                hold: second,
                post: false,
            },
        )
        .unwrap();
    let Ok(Outcome::Transfer(third)) = world.run(jiangnan, hold(3, "700", 1_000)) else {
        panic!()
    };
    world.advance_ms(1_001);
    world
        .run(
            jiangnan,
            Command::SetWalletStatus {
                wallet: parent.wallet,
                status: WalletStatus::Active,
            },
        )
        .unwrap();
    assert_eq!(
        world
            .run(
                jiangnan,
                Command::ResolveHold {
                    hold: third,
                    post: true
                }
            )
            .unwrap_err()
            .code(),
        "PENDING_ALREADY_RESOLVED"
    );
    assert_eq!(world.balance(parent.wallet), yuan("2000"));
    assert_eq!(
        world
            .platform
            .state()
            .ledger()
            .account(account)
            .unwrap()
            .available(),
        yuan("2000")
    );
    world.assert_audit();
}

#[test]
fn history_and_event_stream_record_every_movement_in_order() {
    let mut world = World::new();
    let [jiangnan, lakeside] = world.operators;
    let a = world.open_banked(jiangnan, "1000", WalletClass::Three);
    world.exchange(&a, "100").unwrap();
    let b = world.open(lakeside);
    for amount in ["1", "2", "3"] {
        world.pay(&a, b.wallet, amount).unwrap();
    }
    let state = world.platform.state();
    let account = state.wallet(b.wallet).unwrap().account;
    let received: Vec<String> = state
        .ledger()
        .history(account)
        .unwrap()
        .map(|(_, t)| t.amount.to_string())
        .collect();
    assert_eq!(received, ["3.00", "2.00", "1.00"]);
    let events = state.ledger().events();
    let positions: Vec<usize> = state
        .ledger()
        .history(account)
        .unwrap()
        .map(|(id, _)| id.0 as usize)
        .collect();
    assert!(positions.windows(2).all(|w| w[0] > w[1]));
    assert!(positions.iter().all(|p| *p < events.len()));
}

#[test]
fn restart_replays_the_log_to_the_identical_state_and_snapshots_shorten_it() {
    let mut world = World::new();
    let [jiangnan, lakeside] = world.operators;
    let a = world.open_banked(jiangnan, "1000", WalletClass::Three);
    world.exchange(&a, "500").unwrap();
    let b = world.open(lakeside);
    world.pay(&a, b.wallet, "12.34").unwrap();
    let hash = world.hash();
    let mut world = world.reopen();
    assert_eq!(world.hash(), hash);
    world.platform.node_mut().snapshot().unwrap();
    world.pay(&a, b.wallet, "0.66").unwrap();
    let hash = world.hash();
    let world = world.reopen();
    assert_eq!(world.hash(), hash);
    assert_eq!(world.balance(b.wallet), yuan("13.00"));
    world.assert_audit();
}

#[test]
fn a_suspended_operator_takes_on_no_new_money_but_its_holders_can_take_theirs_out() {
    let mut world = World::new();
    let [jiangnan, lakeside] = world.operators;
    let li = world.open_banked(jiangnan, "5000", WalletClass::Three);
    world.exchange(&li, "2000").unwrap();
    let suspend = |suspended| Command::SetOperatorSuspended {
        operator: jiangnan,
        suspended,
    };
    // Only the central bank suspends; an operator cannot, not even itself.
    let error = world.run(lakeside, suspend(true)).unwrap_err();
    assert_eq!(error.code(), "CENTRAL_BANK_ONLY");
    let error = world.run(jiangnan, suspend(false)).unwrap_err();
    assert_eq!(error.code(), "CENTRAL_BANK_ONLY");
    world.platform.as_central_bank(vec![suspend(true)]).unwrap()[0]
        .clone()
        .unwrap();
    let before = world.hash();
    assert_eq!(
        world.exchange(&li, "1").unwrap_err().code(),
        "OPERATOR_SUSPENDED"
    );
    assert_eq!(
        world.pay(&li, WalletId(1), "1").unwrap_err().code(),
        "OPERATOR_SUSPENDED"
    );
    let issue = Command::Issue {
        operator: jiangnan,
        amount: yuan("1"),
    };
    let refused = world.platform.as_central_bank(vec![issue]).unwrap();
    assert_eq!(refused[0].clone().unwrap_err().code(), "OPERATOR_SUSPENDED");
    assert_eq!(world.hash(), before, "refusals move nothing");
    // Money goes out: a deposit back, and the operator's own redemption.
    let key = world.key();
    let back = Command::DepositBack {
        wallet: li.wallet,
        amount: yuan("500"),
        key,
        auth: None,
    };
    let back = world.platform.sign_as_holder(back, &li.key, li.operator);
    world.run(jiangnan, back).unwrap();
    world
        .run(
            jiangnan,
            Command::Redeem {
                operator: jiangnan,
                amount: yuan("1000"),
            },
        )
        .unwrap();
    assert_eq!(world.balance(li.wallet), yuan("1500"));
    world.assert_audit();
    // The suspension is in the log: a restart replays it, and a reinstatement lifts it.
    let mut world = world.reopen();
    let suspended = world.platform.state().operator(jiangnan).unwrap().suspended;
    assert!(suspended);
    world
        .platform
        .as_central_bank(vec![suspend(false)])
        .unwrap()[0]
        .clone()
        .unwrap();
    world.exchange(&li, "1").unwrap();
    assert_eq!(world.balance(li.wallet), yuan("1501"));
    world.assert_audit();
}
