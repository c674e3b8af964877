//! Merchants end to end through the operator tier, the durable node and the state machine: orders
//! paid once, cash on delivery, payment codes, refunds along the payment, sub-wallets within the
//! holder's limits, settlement reports; a restart replays all of it; the audit after each.

mod support;

use ecny::channels::acquiring::{OrderStatus, PaymentChannel, TerminalKind};
use ecny::channels::emvco::Mcc;
use ecny::channels::payment_code::{
    OperatorCodeSecret, PaymentCodeIssuer, PaymentCodeVerifier, CODE_STEP_S,
};
use ecny::command::{Command, CommandResult, Outcome};
use ecny::ids::{EventId, MerchantId, OperatorId, SubWalletId};
use ecny::time::china_day;
use ecny::wallet::sub_wallet::SubWalletLimits;
use ecny::wallet::WalletClass;
use support::{yuan, Holder, World};

struct Shop {
    id: MerchantId,
    owner: Holder,
    till: u16,
    courier: u16,
    scan_gun: u16,
}

fn onboard(world: &mut World, op: OperatorId) -> Shop {
    let owner = world.open_banked(op, "1000", WalletClass::Two);
    let onboard = Command::OnboardMerchant {
        operator: op,
        wallet: owner.wallet,
        name: "Pingjiang Snacks".into(),
        mcc: Mcc::new(5814).unwrap(),
        region: 320500,
    };
    let Ok(Outcome::Merchant(id)) = world.run(op, onboard) else {
        panic!("onboarding refused");
    };
    let mut terminal = |kind| match world.run(op, Command::AddTerminal { merchant: id, kind }) {
        Ok(Outcome::Terminal(n)) => n,
        other => panic!("terminal refused: {other:?}"),
    };
    let till = terminal(TerminalKind::Pos);
    let courier = terminal(TerminalKind::Courier);
    let scan_gun = terminal(TerminalKind::ScanGun);
    Shop {
        id,
        owner,
        till,
        courier,
        scan_gun,
    }
}

fn pay_merchant(
    world: &mut World,
    payer: &Holder,
    shop: &Shop,
    amount: &str,
    channel: PaymentChannel,
    order: Option<&str>,
) -> CommandResult {
    let key = world.key();
    let command = Command::PayMerchant {
        payer: payer.wallet,
        merchant: shop.id,
        amount: yuan(amount),
        channel,
        terminal: 0,
        order: order.map(str::to_string),
        key,
        auth: None,
    };
    let command = world
        .platform
        .sign_as_holder(command, &payer.key, payer.operator);
    world.run(payer.operator, command)
}

fn order(
    world: &mut World,
    shop: &Shop,
    reference: &str,
    amount: &str,
    terminal: u16,
) -> CommandResult {
    let now = world.platform.state().last_timestamp_ms();
    let command = Command::CreateOrder {
        merchant: shop.id,
        reference: reference.into(),
        amount: yuan(amount),
        expires_at_ms: now + 600_000,
        terminal,
        cash_on_delivery: terminal == shop.courier,
    };
    world.run(shop.owner.operator, command)
}

fn transfer(result: CommandResult) -> EventId {
    match result {
        Ok(Outcome::Transfer(id)) => id,
        other => panic!("expected a transfer, got {other:?}"),
    }
}

fn code(result: CommandResult) -> &'static str {
    result.expect_err("expected a refusal").code()
}

/// The payment-code step the world's clock is in.
fn code_step(world: &World) -> u64 {
    world.clock.load(std::sync::atomic::Ordering::SeqCst) / 1000 / CODE_STEP_S
}

#[test]
fn a_code_is_charged_once_ever_a_retry_answers_after_it_expired_and_the_cap_holds() {
    let mut world = World::new();
    let [jiangnan, lakeside] = world.operators;
    let shop = onboard(&mut world, lakeside);
    let li = world.open_banked(jiangnan, "5,000", WalletClass::Three);
    world.exchange(&li, "3,000").unwrap();
    let secret = OperatorCodeSecret::from_bytes([0x5a; 32]);
    let issuer = PaymentCodeIssuer::new(jiangnan, &secret).unwrap();
    let mut verifier = PaymentCodeVerifier::new(jiangnan, &secret).unwrap();
    let now_s = |world: &World| world.clock.load(std::sync::atomic::Ordering::SeqCst) / 1000;
    // The till reads the code; the operator names wallet and step; the center charges it.
    let mut charge = |world: &mut World, code: &str, amount: &str, key| {
        let read = verifier.identify(code, 7, now_s(world)).unwrap();
        let command = Command::ChargePaymentCode {
            payer: read.wallet,
            merchant: shop.id,
            terminal: shop.scan_gun,
            amount: yuan(amount),
            code_step: read.step,
            key,
        };
        world.run(jiangnan, command)
    };
    let shown = issuer.code_for(li.wallet, now_s(&world)).digits;
    let first_key = world.key();
    let first = transfer(charge(&mut world, &shown, "18.00", first_key));
    let again = world.key();
    assert_eq!(
        code(charge(&mut world, &shown, "18.00", again)),
        "CODE_REUSED"
    );
    assert_eq!(
        transfer(charge(&mut world, &shown, "18.00", first_key)),
        first
    );

    // Two minutes on the code has expired; the till's retry still hears its first charge.
    world.advance_ms(120_000);
    assert_eq!(
        transfer(charge(&mut world, &shown, "18.00", first_key)),
        first
    );
    let late = world.key();
    assert_eq!(
        code(charge(&mut world, &shown, "18.00", late)),
        "CODE_STALE"
    );

    // The password-free cap: 1,000 by default, the operator's to set, enforced by the center.
    let fresh = issuer.code_for(li.wallet, now_s(&world)).digits;
    let key = world.key();
    let over = charge(&mut world, &fresh, "1000.01", key);
    assert_eq!(code(over), "LIMIT_PASSWORD_FREE");
    let raise = Command::SetCodePaymentCap {
        operator: jiangnan,
        cap: yuan("2,000"),
    };
    // Only the operator itself sets its cap.
    assert!(world.run(lakeside, raise.clone()).is_err());
    world.run(jiangnan, raise).unwrap();
    let key = world.key();
    transfer(charge(&mut world, &fresh, "1000.01", key));
    assert_eq!(world.balance(li.wallet), yuan("1,981.99"));

    // What is spent stays spent: the log replays every code's use.
    let mut world = world.reopen();
    let key = world.key();
    assert_eq!(code(charge(&mut world, &fresh, "1.00", key)), "CODE_REUSED");
    assert_eq!(
        transfer(charge(&mut world, &shown, "18.00", first_key)),
        first
    );
    assert_eq!(world.balance(li.wallet), yuan("1,981.99"));
    world.assert_audit();
}

#[test]
fn a_merchant_is_paid_by_qr_order_and_courier_and_refunds_along_the_payment() {
    let mut world = World::new();
    let [jiangnan, lakeside] = world.operators;
    let shop = onboard(&mut world, jiangnan);
    let li = world.open_banked(lakeside, "5000", WalletClass::Three);
    world.exchange(&li, "2000").unwrap();

    // The printed QR: Li types the amount.
    let snack = transfer(pay_merchant(
        &mut world,
        &li,
        &shop,
        "66.60",
        PaymentChannel::StaticQr,
        None,
    ));
    assert_eq!(world.balance(shop.owner.wallet), yuan("66.60"));

    // A dynamic QR at the till: the order's amount, once.
    order(&mut world, &shop, "TILL-1", "120.00", shop.till).unwrap();
    assert_eq!(
        code(pay_merchant(
            &mut world,
            &li,
            &shop,
            "12.00",
            PaymentChannel::DynamicQr,
            Some("TILL-1")
        )),
        "ORDER_AMOUNT_MISMATCH"
    );
    let till = transfer(pay_merchant(
        &mut world,
        &li,
        &shop,
        "120.00",
        PaymentChannel::DynamicQr,
        Some("TILL-1"),
    ));
    assert_eq!(
        code(pay_merchant(
            &mut world,
            &li,
            &shop,
            "120.00",
            PaymentChannel::DynamicQr,
            Some("TILL-1")
        )),
        "ORDER_ALREADY_PAID"
    );
    assert_eq!(
        world
            .platform
            .state()
            .acquiring()
            .order(shop.id, "TILL-1")
            .unwrap()
            .status,
        OrderStatus::Paid(till)
    );

    // Cash on delivery: only the courier presents it; paying it marks it delivered.
    assert_eq!(
        code(world.run(
            jiangnan,
            Command::CreateOrder {
                merchant: shop.id,
                reference: "COD-1".into(),
                amount: yuan("35.50"),
                expires_at_ms: u64::MAX,
                terminal: shop.till,
                cash_on_delivery: true,
            }
        )),
        "TERMINAL_KIND_WRONG"
    );
    order(&mut world, &shop, "COD-1", "35.50", shop.courier).unwrap();
    let door = transfer(pay_merchant(
        &mut world,
        &li,
        &shop,
        "35.50",
        PaymentChannel::DynamicQr,
        Some("COD-1"),
    ));
    let state = world.platform.state();
    assert_eq!(
        state.acquiring().order(shop.id, "COD-1").unwrap().status,
        OrderStatus::Delivered(door)
    );
    assert_eq!(
        state.acquiring().payment(door).unwrap().channel,
        PaymentChannel::CashOnDelivery
    );
    assert_eq!(
        state.acquiring().payment(door).unwrap().terminal,
        shop.courier,
        "an order's payment is booked at the terminal that presented it"
    );

    // An expired order is refused with its reason.
    order(&mut world, &shop, "LATE-1", "9.90", shop.till).unwrap();
    world.advance_ms(600_001);
    assert_eq!(
        code(pay_merchant(
            &mut world,
            &li,
            &shop,
            "9.90",
            PaymentChannel::DynamicQr,
            Some("LATE-1")
        )),
        "ORDER_EXPIRED"
    );

    // Refunds go back along the payment, never beyond it, and only from the merchant's operator.
    let li_before = world.balance(li.wallet);
    let key = world.key();
    let refund = Command::Refund {
        payment: snack,
        amount: yuan("6.60"),
        key,
    };
    assert_eq!(
        code(world.run(lakeside, refund.clone())),
        "NOT_YOUR_MERCHANT"
    );
    let first = transfer(world.run(jiangnan, refund.clone()));
    assert_eq!(
        transfer(world.run(jiangnan, refund)),
        first,
        "a retry answers the first refund"
    );
    assert_eq!(
        world.balance(li.wallet),
        ecny::amount::Amount::from_fen(li_before.fen() + 660)
    );
    let key = world.key();
    let too_much = Command::Refund {
        payment: snack,
        amount: yuan("60.01"),
        key,
    };
    assert_eq!(
        code(world.run(jiangnan, too_much)),
        "REFUND_EXCEEDS_PAYMENT"
    );
    let key = world.key();
    let not_a_sale = Command::Refund {
        payment: EventId(1),
        amount: yuan("1"),
        key,
    };
    assert_eq!(
        code(world.run(jiangnan, not_a_sale)),
        "NOT_A_MERCHANT_PAYMENT"
    );

    // The day's settlement report.
    let now = world.platform.state().last_timestamp_ms();
    let report = world
        .platform
        .state()
        .acquiring()
        .settlement_report(shop.id, china_day(now))
        .unwrap();
    assert_eq!((report.payments, report.gross), (3, yuan("222.10")));
    assert_eq!((report.refunds, report.refunded), (1, yuan("6.60")));
    assert_eq!(report.net, yuan("215.50"));
    assert_eq!(world.balance(shop.owner.wallet), report.net);
    world.assert_audit();

    let hash = world.hash();
    let world = world.reopen();
    assert_eq!(
        world.hash(),
        hash,
        "replay rebuilds the acquiring book exactly"
    );
    world.assert_audit();
}

#[test]
fn a_key_used_again_on_a_different_refund_or_order_is_refused_not_answered_with_the_first() {
    let mut world = World::new();
    let [jiangnan, lakeside] = world.operators;
    let shop = onboard(&mut world, jiangnan);
    let li = world.open_banked(lakeside, "5,000", WalletClass::Three);
    world.exchange(&li, "2,000").unwrap();
    // Two payments of one price by one payer: alike in payer, payee and amount.
    let [p1, p2] = [(); 2].map(|_| {
        transfer(pay_merchant(
            &mut world,
            &li,
            &shop,
            "30.00",
            PaymentChannel::StaticQr,
            None,
        ))
    });
    let key = world.key();
    let refund = |payment| Command::Refund {
        payment,
        amount: yuan("30.00"),
        key,
    };
    let first = transfer(world.run(jiangnan, refund(p1)));
    assert_eq!(
        code(world.run(jiangnan, refund(p2))),
        "IDEMPOTENCY_KEY_REUSED"
    );
    assert_eq!(transfer(world.run(jiangnan, refund(p1))), first);
    let refunded = |world: &World, payment| {
        let state = world.platform.state();
        state.acquiring().payment(payment).unwrap().refunded
    };
    assert_eq!(refunded(&world, p1), yuan("30.00"));
    assert_eq!(refunded(&world, p2), yuan("0"));
    assert_eq!(world.balance(li.wallet), yuan("1,970.00"));

    // Two orders of one price at one shop; the second paid with the first one's key.
    order(&mut world, &shop, "TILL-7", "50.00", shop.till).unwrap();
    order(&mut world, &shop, "TILL-8", "50.00", shop.till).unwrap();
    let key = world.key();
    let (context, not_after_ms) = world.signing(&li);
    let pay_order = |reference: &str| {
        Command::PayMerchant {
            payer: li.wallet,
            merchant: shop.id,
            amount: yuan("50.00"),
            channel: PaymentChannel::DynamicQr,
            terminal: 0,
            order: Some(reference.into()),
            key,
            auth: None,
        }
        .sign(&li.key, &context, not_after_ms)
    };
    let paid = transfer(world.run(lakeside, pay_order("TILL-7")));
    assert_eq!(
        code(world.run(lakeside, pay_order("TILL-8"))),
        "IDEMPOTENCY_KEY_REUSED"
    );
    assert_eq!(transfer(world.run(lakeside, pay_order("TILL-7"))), paid);
    let status = |world: &World, reference: &str| {
        let state = world.platform.state();
        state.acquiring().order(shop.id, reference).unwrap().status
    };
    assert_eq!(status(&world, "TILL-7"), OrderStatus::Paid(paid));
    assert_eq!(status(&world, "TILL-8"), OrderStatus::Open);
    assert_eq!(world.balance(li.wallet), yuan("1,920.00"));
    world.assert_audit();
}

#[test]
fn payment_codes_need_a_scan_gun_and_orders_name_their_channel() {
    let mut world = World::new();
    let [jiangnan, _] = world.operators;
    let shop = onboard(&mut world, jiangnan);
    let li = world.open_banked(jiangnan, "500", WalletClass::Three);
    world.exchange(&li, "300").unwrap();
    let by_code = |world: &mut World, terminal| {
        let key = world.key();
        let charge = Command::ChargePaymentCode {
            payer: li.wallet,
            merchant: shop.id,
            terminal,
            amount: yuan("18.00"),
            code_step: code_step(world),
            key,
        };
        world.run(jiangnan, charge)
    };
    assert_eq!(code(by_code(&mut world, shop.courier)), "CHANNEL_MISMATCH");
    assert_eq!(code(by_code(&mut world, 99)), "UNKNOWN_TERMINAL");
    // A code is charged only as a code, once: never as a plain merchant payment.
    assert_eq!(
        code(pay_merchant(
            &mut world,
            &li,
            &shop,
            "18.00",
            PaymentChannel::PaymentCode,
            None
        )),
        "CHANNEL_MISMATCH"
    );
    let paid = transfer(by_code(&mut world, shop.scan_gun));
    let recorded = world
        .platform
        .state()
        .acquiring()
        .payment(paid)
        .unwrap()
        .clone();
    assert_eq!(
        (recorded.channel, recorded.terminal),
        (PaymentChannel::PaymentCode, shop.scan_gun)
    );
    assert_eq!(
        code(pay_merchant(
            &mut world,
            &li,
            &shop,
            "1",
            PaymentChannel::DynamicQr,
            None
        )),
        "CHANNEL_MISMATCH"
    );
    assert_eq!(
        code(pay_merchant(
            &mut world,
            &li,
            &shop,
            "1",
            PaymentChannel::SubWallet,
            None
        )),
        "CHANNEL_MISMATCH"
    );
    // A merchant wallet must be verified; a wallet of another operator cannot be onboarded.
    let anonymous = world.open(jiangnan);
    let onboard = |wallet| Command::OnboardMerchant {
        operator: jiangnan,
        wallet,
        name: "Stall".into(),
        mcc: Mcc::new(5411).unwrap(),
        region: 320500,
    };
    assert_eq!(
        code(world.run(jiangnan, onboard(anonymous.wallet))),
        "MERCHANT_WALLET_UNVERIFIED"
    );
    world.assert_audit();
}

#[test]
fn a_sub_wallet_is_charged_within_the_holders_limits_until_it_is_closed() {
    let mut world = World::new();
    let [jiangnan, lakeside] = world.operators;
    let shop = onboard(&mut world, jiangnan);
    let other_shop = onboard(&mut world, lakeside);
    let han = world.open_banked(lakeside, "3000", WalletClass::Three);
    world.exchange(&han, "1000").unwrap();
    let limits = |per: &str, daily: &str| SubWalletLimits {
        per_payment: yuan(per),
        daily: yuan(daily),
    };
    let open = Command::OpenSubWallet {
        wallet: han.wallet,
        merchant: shop.id,
        limits: limits("200", "300"),
        auth: None,
    };
    // Only the holder's own key opens one.
    let stranger = ecny::certs::KeyPair::from_seed(b"stranger");
    let (context, not_after_ms) = world.signing(&han);
    assert_eq!(
        code(world.run(
            lakeside,
            open.clone().sign(&stranger, &context, not_after_ms)
        )),
        "SIGNATURE_INVALID"
    );
    let open = open.sign(&han.key, &context, not_after_ms);
    let Ok(Outcome::SubWallet(sub)) = world.run(lakeside, open) else {
        panic!("sub-wallet refused");
    };
    let charge = |world: &mut World, merchant, amount: &str| {
        let key = world.key();
        world.run(
            lakeside,
            Command::ChargeSubWallet {
                sub_wallet: sub,
                merchant,
                amount: yuan(amount),
                order: None,
                key,
            },
        )
    };
    let first = transfer(charge(&mut world, shop.id, "150"));
    assert_eq!(
        world
            .platform
            .state()
            .acquiring()
            .payment(first)
            .unwrap()
            .sub_wallet,
        Some(sub)
    );
    assert_eq!(
        code(charge(&mut world, shop.id, "200.01")),
        "SUB_WALLET_LIMIT_SINGLE"
    );
    assert_eq!(
        code(charge(&mut world, shop.id, "150.01")),
        "SUB_WALLET_LIMIT_DAILY"
    );
    assert_eq!(
        code(charge(&mut world, other_shop.id, "1")),
        "NOT_YOUR_SUB_WALLET"
    );
    assert_eq!(
        code(charge(&mut world, shop.id, "0")),
        "AMOUNT_NOT_POSITIVE"
    );
    let unknown = Command::ChargeSubWallet {
        sub_wallet: SubWalletId(99),
        merchant: shop.id,
        amount: yuan("1"),
        order: None,
        key: world.key(),
    };
    assert_eq!(code(world.run(lakeside, unknown)), "UNKNOWN_SUB_WALLET");

    // The holder raises the daily limit, then closes it: refused at once.
    let set = |open| {
        Command::SetSubWallet {
            sub_wallet: sub,
            limits: limits("200", "500"),
            open,
            auth: None,
        }
        .sign(&han.key, &context, not_after_ms)
    };
    world.run(lakeside, set(true)).unwrap();
    transfer(charge(&mut world, shop.id, "200"));
    world.run(lakeside, set(false)).unwrap();
    assert_eq!(code(charge(&mut world, shop.id, "1")), "SUB_WALLET_CLOSED");
    assert_eq!(code(world.run(lakeside, set(true))), "SUB_WALLET_CLOSED");
    assert_eq!(world.balance(han.wallet), yuan("650"));
    assert_eq!(world.balance(shop.owner.wallet), yuan("350"));
    world.assert_audit();
    let hash = world.hash();
    assert_eq!(world.reopen().hash(), hash);
}
