//! Merchants end to end through the operator tier, the durable node and the state machine: orders
//! paid once, cash on delivery, payment codes, refunds along the payment, sub-wallets within the
//! holder's limits, settlement reports; a restart replays all of it; the audit after each.

mod support;

use ecny::channels::acquiring::{OrderStatus, PaymentChannel, TerminalKind};
use ecny::channels::emvco::Mcc;
use ecny::command::{Command, CommandResult, Outcome};
use ecny::ids::{EventId, MerchantId, OperatorId, SubWalletId};
use ecny::wallet::sub_wallet::SubWalletLimits;
use ecny::wallet::{china_day, WalletClass};
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
    }
    .sign(&payer.key);
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
fn payment_codes_need_a_scan_gun_and_orders_name_their_channel() {
    let mut world = World::new();
    let [jiangnan, _] = world.operators;
    let shop = onboard(&mut world, jiangnan);
    let li = world.open_banked(jiangnan, "500", WalletClass::Three);
    world.exchange(&li, "300").unwrap();
    let by_code = |world: &mut World, terminal| {
        let key = world.key();
        world.run(
            jiangnan,
            Command::PayMerchant {
                payer: li.wallet,
                merchant: shop.id,
                amount: yuan("18.00"),
                channel: PaymentChannel::PaymentCode,
                terminal,
                order: None,
                key,
                auth: None,
            },
        )
    };
    assert_eq!(code(by_code(&mut world, shop.courier)), "CHANNEL_MISMATCH");
    assert_eq!(code(by_code(&mut world, 99)), "UNKNOWN_TERMINAL");
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
    assert_eq!(
        code(world.run(lakeside, open.clone().sign(&stranger))),
        "SIGNATURE_INVALID"
    );
    let Ok(Outcome::SubWallet(sub)) = world.run(lakeside, open.sign(&han.key)) else {
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
        .sign(&han.key)
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
