//! The demo's merchant chapter: a bookshop is onboarded with a till and a courier; customers pay
//! its printed QR and a courier's order at the door; it refunds along a payment; a holder pushes
//! it a sub-wallet and closes it; a parent prepays piano lessons and cancels; the shop reads its
//! daily settlement.

use super::{yuan, DemoError, Holder, Story};
use crate::channels::acquiring::{city_of_region, TerminalKind};
use crate::channels::emvco::{Mcc, MerchantQr, QrKind};
use crate::channels::payment_request::{request_payment, RequestRead};
use crate::command::{Command, Outcome};
use crate::ids::{EventId, MerchantId, OperatorId};
use crate::programs::contracts::Template;
use crate::time::china_day;
use crate::wallet::sub_wallet::SubWalletLimits;
use crate::wallet::WalletClass;

/// Opens the shop's class 2 wallet (deposit account, bound, real name) and onboards it.
fn onboard(story: &mut Story, lakeside: OperatorId) -> Result<(Holder, MerchantId), DemoError> {
    let owner = story.open_wallet("Canglang Books", "136 0512 0001", lakeside)?;
    let result = story
        .platform
        .one(lakeside, Command::OpenDepositAccount { operator: lakeside })?;
    let Outcome::Account(account) =
        story.ok(result, "Lakeside opens the bookshop a bank account")?
    else {
        return Err(DemoError::Step("no deposit account id".into()));
    };
    let bind = Command::BindBankAccount {
        wallet: owner.wallet,
        account,
        auth: None,
    };
    for command in [
        story
            .platform
            .sign_as_holder(bind, &owner.key, owner.operator),
        Command::UpgradeWallet {
            wallet: owner.wallet,
            to: WalletClass::Two,
            // The shop's owner, by the resident ID that names them.
            name: Some("Canglang Books Ltd".into()),
            id_number: Some("320508198008080017".into()),
            in_person: false,
        },
    ] {
        story
            .platform
            .one(lakeside, command)?
            .map_err(|error| DemoError::Step(format!("bookshop wallet setup refused: {error}")))?;
    }
    let result = story.platform.one(
        lakeside,
        Command::OnboardMerchant {
            operator: lakeside,
            wallet: owner.wallet,
            name: "Canglang Books".into(),
            mcc: Mcc::new(5942).expect("a four-digit code"),
            region: 320500,
        },
    )?;
    let Outcome::Merchant(shop) = story.ok(
        result,
        "Lakeside onboards Canglang Books (MCC 5942, Suzhou) settling into its class 2 wallet",
    )?
    else {
        return Err(DemoError::Step("no merchant id".into()));
    };
    for (kind, what) in [
        (TerminalKind::Pos, "a till"),
        (TerminalKind::Courier, "a courier's handheld"),
    ] {
        let result = story.platform.one(
            lakeside,
            Command::AddTerminal {
                merchant: shop,
                kind,
            },
        )?;
        story.ok(result, &format!("the shop registers {what}"))?;
    }
    Ok((owner, shop))
}

fn printed_qr(shop: MerchantId, lakeside: OperatorId) -> MerchantQr {
    MerchantQr {
        kind: QrKind::Static,
        operator: lakeside,
        merchant: shop,
        name: "Canglang Books".into(),
        city: city_of_region(320500),
        mcc: Mcc::new(5942).expect("a four-digit code"),
    }
}

fn transfer(outcome: Outcome) -> Result<EventId, DemoError> {
    match outcome {
        Outcome::Transfer(id) => Ok(id),
        other => Err(DemoError::Step(format!(
            "expected a transfer, but it was {}",
            super::described_outcome(&other)
        ))),
    }
}

pub(super) fn run(
    story: &mut Story,
    li: &Holder,
    han: &Holder,
    lakeside: OperatorId,
) -> Result<(), DemoError> {
    story.say(
        "\n6. Merchants: QR codes, a courier at the door, refunds, sub-wallets, a school term",
    );
    let (owner, shop) = onboard(story, lakeside)?;

    // The printed QR on the counter: Han scans it and types the amount.
    let qr = printed_qr(shop, lakeside);
    let payload = qr
        .encode()
        .map_err(|error| DemoError::Step(error.to_string()))?;
    story.say(format!("    the counter's QR carries {payload}"));
    let scanned = MerchantQr::parse(&payload).map_err(|e| DemoError::Step(e.to_string()))?;
    let key = story.fresh_key();
    let pay = request_payment(
        han.wallet,
        &scanned,
        Some(yuan("45")),
        RequestRead::Scanned,
        key,
    )
    .map_err(|e| DemoError::Step(e.to_string()))?;
    let pay = story.platform.sign_as_holder(pay, &han.key, han.operator);
    let result = story.platform.one(han.operator, pay)?;
    let sale = transfer(story.ok(result, "Han Meimei scans it and pays ¥45.00 for two books")?)?;

    // Cash on delivery: the courier's handheld shows the order; Li pays at the door.
    let now = story.platform.state().last_timestamp_ms();
    let order = Command::CreateOrder {
        merchant: shop,
        reference: "COD-20261123-7".into(),
        amount: yuan("88"),
        expires_at_ms: now + 3_600_000,
        terminal: 2,
        cash_on_delivery: true,
    };
    let result = story.platform.one(lakeside, order)?;
    story.ok(
        result,
        "the courier's handheld shows order COD-20261123-7 for ¥88.00",
    )?;
    let key = story.fresh_key();
    let at_door = Command::PayMerchant {
        payer: li.wallet,
        merchant: shop,
        amount: yuan("88"),
        channel: crate::channels::acquiring::PaymentChannel::CashOnDelivery,
        terminal: 0,
        order: Some("COD-20261123-7".into()),
        key,
        auth: None,
    };
    let at_door = story.platform.sign_as_holder(at_door, &li.key, li.operator);
    let result = story.platform.one(li.operator, at_door.clone())?;
    story.ok(
        result,
        "Li Lei scans it at his door: paid and delivered in one step",
    )?;
    let again = match at_door {
        Command::PayMerchant {
            payer,
            merchant,
            amount,
            channel,
            terminal,
            order,
            ..
        } => Command::PayMerchant {
            payer,
            merchant,
            amount,
            channel,
            terminal,
            order,
            key: story.fresh_key(),
            auth: None,
        },
        _ => unreachable!("built above"),
    };
    let again = story.platform.sign_as_holder(again, &li.key, li.operator);
    let result = story.platform.one(li.operator, again)?;
    story.refused(
        result,
        "ORDER_ALREADY_PAID",
        "the same order scanned a second time",
    )?;

    // A refund goes back along the payment it refunds.
    let key = story.fresh_key();
    let refund = Command::Refund {
        payment: sale,
        amount: yuan("20"),
        key,
    };
    let result = story.platform.one(lakeside, refund)?;
    story.ok(
        result,
        "one book is returned: ¥20.00 goes back to Han Meimei's wallet",
    )?;
    let key = story.fresh_key();
    let result = story.platform.one(
        lakeside,
        Command::Refund {
            payment: sale,
            amount: yuan("30"),
            key,
        },
    )?;
    story.refused(result, "REFUND_EXCEEDS_PAYMENT", "a refund of ¥30.00 more")?;

    // A sub-wallet for the shop's app.
    let limits = SubWalletLimits {
        per_payment: yuan("100"),
        daily: yuan("150"),
    };
    let open = Command::OpenSubWallet {
        wallet: li.wallet,
        merchant: shop,
        limits,
        auth: None,
    };
    let open = story.platform.sign_as_holder(open, &li.key, li.operator);
    let result = story.platform.one(li.operator, open)?;
    let Outcome::SubWallet(sub) = story.ok(
        result,
        "Li Lei pushes a sub-wallet to the shop's app: ¥100.00 a payment, ¥150.00 a day",
    )?
    else {
        return Err(DemoError::Step("no sub-wallet id".into()));
    };
    story.say(format!(
        "    the shop knows it only as {sub}: no name, phone or wallet id"
    ));
    let charge = |story: &mut Story, amount: &str| -> Result<_, DemoError> {
        let key = story.fresh_key();
        let command = Command::ChargeSubWallet {
            sub_wallet: sub,
            merchant: shop,
            amount: yuan(amount),
            order: None,
            key,
        };
        Ok(story.platform.one(li.operator, command)?)
    };
    let result = charge(story, "99")?;
    story.ok(result, "the app charges ¥99.00 for an e-book bundle")?;
    let result = charge(story, "60")?;
    story.refused(
        result,
        "SUB_WALLET_LIMIT_DAILY",
        "another ¥60.00 the same day",
    )?;
    let close = Command::SetSubWallet {
        sub_wallet: sub,
        limits,
        open: false,
        auth: None,
    };
    let close = story.platform.sign_as_holder(close, &li.key, li.operator);
    let result = story.platform.one(li.operator, close)?;
    story.ok(result, "Li Lei closes the sub-wallet")?;
    let result = charge(story, "1")?;
    story.refused(result, "SUB_WALLET_CLOSED", "the app tries ¥1.00")?;

    // A prepaid term: released lesson by lesson, the rest refunded on cancel.
    let key = story.fresh_key();
    let term = Command::OpenContract {
        payer: li.wallet,
        payee: owner.wallet,
        template: Template::Prepaid {
            units: 10,
            unit_price: yuan("150"),
        },
        purpose: "reading club, 10 sessions".into(),
        key,
        auth: None,
    };
    let term = story.platform.sign_as_holder(term, &li.key, li.operator);
    let result = story.platform.one(li.operator, term)?;
    let Outcome::Contract(contract) = story.ok(
        result,
        "Li Lei prepays a 10-session reading club (¥1,500.00) into a contract, not to the shop",
    )?
    else {
        return Err(DemoError::Step("no contract id".into()));
    };
    let key = story.fresh_key();
    let confirm = Command::ConfirmContract {
        contract,
        units: 3,
        key,
        auth: None,
    };
    let confirm = story.platform.sign_as_holder(confirm, &li.key, li.operator);
    let result = story.platform.one(li.operator, confirm)?;
    story.ok(
        result,
        "he confirms 3 sessions attended: ¥450.00 released to the shop",
    )?;
    let cancel = Command::CancelContract {
        contract,
        by_payee: false,
        auth: None,
    };
    let cancel = story.platform.sign_as_holder(cancel, &li.key, li.operator);
    let result = story.platform.one(li.operator, cancel)?;
    story.ok(
        result,
        "he cancels: the 7 sessions not given, ¥1,050.00, come back to him",
    )?;

    let state = story.platform.state();
    let day = china_day(state.last_timestamp_ms());
    let report = state
        .acquiring()
        .settlement_report(shop, day)
        .map_err(|e| DemoError::Step(e.to_string()))?;
    let channels: Vec<String> = report
        .by_channel
        .iter()
        .map(|line| format!("{} {} ({})", line.channel, line.amount, line.payments))
        .collect();
    story.say(format!(
        "    today's settlement for {shop}: {} payments, gross {}, refunds {}, net {} — {}",
        report.payments,
        report.gross,
        report.refunded,
        report.net,
        channels.join(", ")
    ));
    let balance = story.balance(&owner);
    story.say(format!(
        "    the shop's wallet holds {balance}: net takings plus the released sessions"
    ));
    Ok(())
}
