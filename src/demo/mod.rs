//! `ecny demo`: a narrated walk through the system on a fresh data directory. The central bank
//! issues to two operators; people open wallets, exchange, pay each other across operators, hit a
//! class-4 limit and see why; a bookshop is paid by QR and at the door, refunds, is charged through
//! a sub-wallet and paid through a prepaid contract; money goes back to the bank; it ends with the
//! audit and a restart that replays the log to the identical state.

use std::fmt::Display;
use std::path::Path;

use thiserror::Error;

pub mod campaign;
mod merchants;
pub mod offline;

use crate::amount::Amount;
use crate::audit::audit;
use crate::certs::KeyPair;
use crate::command::{Command, CommandResult, Outcome};
use crate::ids::{AccountId, EventId, IdempotencyKey, OperatorId, WalletId};
use crate::platform::{Platform, PlatformError};
use crate::wallet::{parse_phone, WalletClass, WalletStatus};

#[derive(Debug, Error)]
pub enum DemoError {
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error("step failed: {0}")]
    Step(String),
}

/// A command's result in words, for a step that did not go as told: never the types' insides.
pub(crate) fn described(result: &CommandResult) -> String {
    match result {
        Ok(outcome) => described_outcome(outcome),
        Err(error) => format!("refused: {error} [{}]", error.code()),
    }
}

/// What a command made, in words.
pub(crate) fn described_outcome(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Transfer(id) => format!("accepted as transfer {id}"),
        Outcome::Wallet(id) => format!("accepted, opening wallet {id}"),
        Outcome::Account(id) => format!("accepted, opening account {id}"),
        Outcome::Operator(id) => format!("accepted, admitting operator {id}"),
        Outcome::Merchant(id) => format!("accepted, onboarding merchant {id}"),
        Outcome::SubWallet(id) => format!("accepted, opening sub-wallet {id}"),
        Outcome::Contract(id) => format!("accepted, opening contract {id}"),
        Outcome::Campaign(id) => format!("accepted, creating campaign {id}"),
        Outcome::Terminal(number) => format!("accepted, adding terminal {number}"),
        _ => "accepted".to_string(),
    }
}

/// A person with a phone, a wallet key and a wallet.
struct Holder {
    name: &'static str,
    phone: u64,
    key: KeyPair,
    wallet: WalletId,
    operator: OperatorId,
}

struct Story<'a> {
    platform: Platform,
    out: &'a mut dyn FnMut(&str),
    next_key: u128,
}

/// An amount as the story writes it, thousands separated for the reader ("1,000,000"); the
/// platform itself takes only digits and a point.
fn yuan(text: &str) -> Amount {
    text.replace(',', "")
        .parse()
        .expect("demo amounts are well formed")
}

impl Story<'_> {
    fn say(&mut self, text: impl Display) {
        (self.out)(&text.to_string());
    }

    fn fresh_key(&mut self) -> IdempotencyKey {
        self.next_key += 1;
        IdempotencyKey(0xDE40_0000_0000_0000_0000_0000_0000_0000 | self.next_key)
    }

    fn ok(&mut self, result: CommandResult, what: &str) -> Result<Outcome, DemoError> {
        match result {
            Ok(outcome) => {
                self.say(format!("  ✓ {what}"));
                Ok(outcome)
            }
            Err(error) => Err(DemoError::Step(format!(
                "{what}: refused with {} ({error})",
                error.code()
            ))),
        }
    }

    fn refused(&mut self, result: CommandResult, code: &str, what: &str) -> Result<(), DemoError> {
        match result {
            Err(error) if error.code() == code => {
                self.say(format!("  ✗ {what}: refused, {} — {error}", error.code()));
                Ok(())
            }
            other => Err(DemoError::Step(format!(
                "{what}: expected refusal {code}, but it was {}",
                described(&other)
            ))),
        }
    }

    fn balance(&self, holder: &Holder) -> Amount {
        self.platform
            .state()
            .balance(holder.wallet)
            .expect("demo wallet exists")
    }

    fn open_wallet(
        &mut self,
        name: &'static str,
        phone: &str,
        operator: OperatorId,
    ) -> Result<Holder, DemoError> {
        let phone = parse_phone(phone).map_err(|e| DemoError::Step(e.to_string()))?;
        let key = KeyPair::generate();
        let command = Command::OpenWallet {
            operator,
            phone: phone.into(),
            public_key: key.public_key(),
        };
        let result = self.platform.one(operator, command)?;
        let what = format!("{name} opens a class-4 wallet at {operator} with phone {phone} only");
        let Outcome::Wallet(wallet) = self.ok(result, &what)? else {
            return Err(DemoError::Step("open wallet returned no wallet id".into()));
        };
        Ok(Holder {
            name,
            phone,
            key,
            wallet,
            operator,
        })
    }

    fn pay(
        &mut self,
        from: &Holder,
        to: WalletId,
        amount: Amount,
        key: IdempotencyKey,
    ) -> Result<CommandResult, DemoError> {
        let command = Command::Pay {
            payer: from.wallet,
            payee: to,
            amount,
            key,
            auth: None,
        };
        let command = self
            .platform
            .sign_as_holder(command, &from.key, from.operator);
        Ok(self.platform.one(from.operator, command)?)
    }
}

pub fn run(dir: &Path, out: &mut dyn FnMut(&str)) -> Result<(), DemoError> {
    let (platform, _) = Platform::open(dir)?;
    let mut story = Story {
        platform,
        out,
        next_key: 0,
    };
    story.say(format!("ecny demo on data directory {}", dir.display()));
    let (jiangnan, lakeside) = issuance(&mut story)?;
    let (mut li, han, snack) = wallets(&mut story, jiangnan, lakeside)?;
    exchange(&mut story, &mut li)?;
    payments(&mut story, &li, &han, &snack)?;
    limits(&mut story, &han, &snack)?;
    merchants::run(&mut story, &li, &han, lakeside)?;
    deposit_back_and_redeem(&mut story, &li, &snack, lakeside)?;
    closing_audit(story, dir)
}

fn issuance(story: &mut Story) -> Result<(OperatorId, OperatorId), DemoError> {
    story.say("\n1. The central bank admits two operators and issues e-CNY against their reserves");
    let jiangnan = story.platform.create_operator("Jiangnan Commercial Bank")?;
    let lakeside = story.platform.create_operator("Lakeside Digital Bank")?;
    story.say(format!("  ✓ operators {jiangnan} Jiangnan Commercial Bank and {lakeside} Lakeside Digital Bank admitted"));
    for (op, reserves, issue) in [
        (jiangnan, "2000000", "1000000"),
        (lakeside, "1500000", "600000"),
    ] {
        let commands = vec![
            Command::FundReserves {
                operator: op,
                amount: yuan(reserves),
            },
            Command::Issue {
                operator: op,
                amount: yuan(issue),
            },
        ];
        let mut results = story.platform.as_central_bank(commands)?.into_iter();
        story.ok(
            results.next().expect("two results"),
            &format!("{op} holds ¥{reserves} of reserves at the central bank"),
        )?;
        story.ok(
            results.next().expect("two results"),
            &format!("central bank issues ¥{issue} of e-CNY to {op}, taking the same in reserves"),
        )?;
    }
    let too_much = Command::Issue {
        operator: lakeside,
        amount: yuan("1000000"),
    };
    let result = story.platform.as_central_bank(vec![too_much])?.remove(0);
    story.refused(
        result,
        "INSUFFICIENT_RESERVES",
        "issuing ¥1,000,000 more to OP02, which has only ¥900,000 of reserves left",
    )?;
    Ok((jiangnan, lakeside))
}

fn wallets(
    story: &mut Story,
    jiangnan: OperatorId,
    lakeside: OperatorId,
) -> Result<(Holder, Holder, Holder), DemoError> {
    story.say("\n2. People open wallets: anonymous class 4 with a phone number, upgraded with KYC");
    let li = story.open_wallet("Li Lei", "138 0013 8000", jiangnan)?;
    let han = story.open_wallet("Han Meimei", "139 0139 0000", lakeside)?;
    let snack = story.open_wallet("Wang's snack shop", "137 0000 6660", jiangnan)?;
    let upgrade = Command::UpgradeWallet {
        wallet: li.wallet,
        to: WalletClass::Two,
        name: Some("Li Lei".into()),
        id_number: Some("320501199001011238".into()),
        in_person: false,
    };
    let result = story.platform.one(jiangnan, upgrade)?;
    story.refused(
        result,
        "KYC_INCOMPLETE",
        "Li Lei asks for class 2 before binding a bank account",
    )?;
    let upgrade = Command::UpgradeWallet {
        wallet: li.wallet,
        to: WalletClass::Three,
        name: Some("Li Lei".into()),
        id_number: Some("320501199001011238".into()),
        in_person: false,
    };
    let result = story.platform.one(jiangnan, upgrade)?;
    story.ok(result, "Li Lei gives his real name and ID number: class 3")?;
    let result = story
        .platform
        .one(jiangnan, Command::OpenDepositAccount { operator: jiangnan })?;
    let Outcome::Account(account) = story.ok(
        result,
        "Jiangnan's bank core opens Li Lei a deposit account",
    )?
    else {
        return Err(DemoError::Step("no deposit account id".into()));
    };
    let result = story.platform.one(
        jiangnan,
        Command::CashDeposit {
            account,
            amount: yuan("30000"),
        },
    )?;
    story.ok(
        result,
        "his salary of ¥30,000.00 arrives in the deposit account",
    )?;
    bind_and_upgrade(story, &li, account)?;
    Ok((li, han, snack))
}

fn bind_and_upgrade(story: &mut Story, li: &Holder, account: AccountId) -> Result<(), DemoError> {
    let bind = Command::BindBankAccount {
        wallet: li.wallet,
        account,
        auth: None,
    };
    let bind = story.platform.sign_as_holder(bind, &li.key, li.operator);
    let result = story.platform.one(li.operator, bind)?;
    story.ok(result, "Li Lei binds the deposit account to his wallet")?;
    let upgrade = Command::UpgradeWallet {
        wallet: li.wallet,
        to: WalletClass::Two,
        name: None,
        id_number: None,
        in_person: false,
    };
    let result = story.platform.one(li.operator, upgrade)?;
    story.ok(
        result,
        "with a bound bank account, the wallet becomes class 2 (cap ¥500,000)",
    )?;
    Ok(())
}

fn exchange(story: &mut Story, li: &mut Holder) -> Result<(), DemoError> {
    story.say("\n3. Exchange: bank deposits become e-CNY, atomically in two ledgers");
    let key = story.fresh_key();
    let command = Command::Exchange {
        wallet: li.wallet,
        amount: yuan("8000"),
        key,
        auth: None,
    };
    let command = story.platform.sign_as_holder(command, &li.key, li.operator);
    let result = story.platform.one(li.operator, command)?;
    story.ok(result, "Li Lei exchanges ¥8,000.00 of deposits into e-CNY")?;
    let balance = story.balance(li);
    story.say(format!(
        "    {}'s wallet (phone {}) now holds {}",
        li.name,
        li.phone,
        balance.yuan_sign()
    ));
    Ok(())
}

fn payments(story: &mut Story, li: &Holder, han: &Holder, snack: &Holder) -> Result<(), DemoError> {
    story.say("\n4. Payments: by wallet id, by phone number, across operators; retries are safe");
    let result = story.pay(li, snack.wallet, yuan("66.60"), IdempotencyKey(1))?;
    story.ok(
        result,
        "Li Lei pays ¥66.60 at Wang's snack shop, signed with his wallet key",
    )?;
    let han_wallet = story
        .platform
        .wallet_by_phone(han.phone, None)
        .map_err(|e| DemoError::Step(e.to_string()))?;
    let key = story.fresh_key();
    let first = story.pay(li, han_wallet, yuan("3000"), key)?;
    let Outcome::Transfer(first_id) = story.ok(first, "Li Lei sends ¥3,000.00 to Han Meimei by her phone number; it settles from Jiangnan to Lakeside")? else {
        return Err(DemoError::Step("payment returned no transfer".into()));
    };
    let before = story.balance(han);
    let retry = story.pay(li, han_wallet, yuan("3000"), key)?;
    match retry {
        Ok(Outcome::Transfer(id)) if id == first_id && story.balance(han) == before => {
            story.say(format!("  ✓ the app retries after a timeout with the same idempotency key: first result {first_id} returned, no second payment"));
        }
        other => {
            return Err(DemoError::Step(format!(
                "a retry with the same key moved money or changed the result: it was {}",
                described(&other)
            )))
        }
    }
    let reuse = story.pay(li, han_wallet, yuan("1.00"), key)?;
    story.refused(
        reuse,
        "IDEMPOTENCY_KEY_REUSED",
        "the same key on a different payment",
    )?;
    let forged = Command::Pay {
        payer: li.wallet,
        payee: han.wallet,
        amount: yuan("500"),
        key: story.fresh_key(),
        auth: None,
    };
    let forged = story
        .platform
        .sign_as_holder(forged, &han.key, han.operator);
    let result = story.platform.one(li.operator, forged)?;
    story.refused(
        result,
        "SIGNATURE_INVALID",
        "Han Meimei tries to spend from Li Lei's wallet with her own key",
    )?;
    Ok(())
}

fn limits(story: &mut Story, han: &Holder, snack: &Holder) -> Result<(), DemoError> {
    story.say("\n5. Limits and controls: a class-4 wallet is small by design");
    let before = (story.balance(han), story.balance(snack));
    let key = story.fresh_key();
    let result = story.pay(han, snack.wallet, yuan("2500"), key)?;
    story.refused(
        result,
        "LIMIT_SINGLE_PAYMENT",
        "Han Meimei (class 4) tries to pay ¥2,500.00",
    )?;
    if (story.balance(han), story.balance(snack)) != before {
        return Err(DemoError::Step("a refused payment moved money".into()));
    }
    story.say("    nothing moved: both balances are unchanged");
    let key = story.fresh_key();
    let result = story.pay(han, snack.wallet, yuan("1200"), key)?;
    story.ok(result, "she pays ¥1,200.00 instead")?;
    let freeze = Command::SetWalletStatus {
        wallet: han.wallet,
        status: WalletStatus::Frozen,
    };
    let result = story.platform.one(han.operator, freeze)?;
    story.ok(
        result,
        "Lakeside freezes her wallet after a lost-phone report",
    )?;
    let key = story.fresh_key();
    let result = story.pay(han, snack.wallet, yuan("10"), key)?;
    story.refused(result, "WALLET_FROZEN", "a payment from the frozen wallet")?;
    let unfreeze = Command::SetWalletStatus {
        wallet: han.wallet,
        status: WalletStatus::Active,
    };
    let result = story.platform.one(han.operator, unfreeze)?;
    story.ok(result, "she proves who she is and the wallet is unfrozen")?;
    Ok(())
}

fn deposit_back_and_redeem(
    story: &mut Story,
    li: &Holder,
    snack: &Holder,
    lakeside: OperatorId,
) -> Result<(), DemoError> {
    story.say("\n7. Back to the bank, and back to the central bank");
    let key = story.fresh_key();
    let command = Command::DepositBack {
        wallet: li.wallet,
        amount: yuan("1000"),
        key,
        auth: None,
    };
    let command = story.platform.sign_as_holder(command, &li.key, li.operator);
    let result = story.platform.one(li.operator, command)?;
    story.ok(
        result,
        "Li Lei deposits ¥1,000.00 of e-CNY back into his bank account",
    )?;
    let command = Command::DepositBack {
        wallet: snack.wallet,
        amount: yuan("10"),
        key,
        auth: None,
    };
    let command = story
        .platform
        .sign_as_holder(command, &snack.key, snack.operator);
    let result = story.platform.one(snack.operator, command)?;
    story.refused(
        result,
        "NO_BOUND_BANK_ACCOUNT",
        "Wang tries to deposit back without a bound bank account",
    )?;
    let result = story.platform.one(
        lakeside,
        Command::Redeem {
            operator: lakeside,
            amount: yuan("100000"),
        },
    )?;
    story.ok(
        result,
        "Lakeside redeems ¥100,000.00 of its vault; its reserves come back",
    )?;
    let result = story.platform.one(
        lakeside,
        Command::Redeem {
            operator: lakeside,
            amount: yuan("600000"),
        },
    )?;
    story.refused(
        result,
        "REDEMPTION_EXCEEDS_BACKING",
        "Lakeside asks to redeem more than it was issued",
    )?;
    let history: Vec<(EventId, Amount)> = story
        .platform
        .state()
        .ledger()
        .history(li.operator_wallet_account(story))
        .expect("account exists")
        .map(|(id, t)| (id, t.amount))
        .collect();
    story.say(format!(
        "    Li Lei's wallet history has {} entries, newest first: {}",
        history.len(),
        history
            .iter()
            .map(|(id, a)| format!("{id} {a}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(())
}

impl Holder {
    fn operator_wallet_account(&self, story: &Story) -> AccountId {
        story
            .platform
            .state()
            .wallet(self.wallet)
            .expect("demo wallet")
            .account
    }
}

fn closing_audit(story: Story, dir: &Path) -> Result<(), DemoError> {
    let Story { platform, out, .. } = story;
    let report = audit(platform.state());
    let hash = platform.state().state_hash();
    drop(platform);
    out("\n8. Audit of every invariant");
    for line in report.to_string().lines() {
        out(&format!("  {line}"));
    }
    if !report.is_clean() {
        return Err(DemoError::Step("audit found broken invariants".into()));
    }
    out("\n9. Restart: replay the durable log");
    let (platform, recovery) = Platform::open(dir)?;
    if platform.state().state_hash() != hash {
        return Err(DemoError::Step(
            "state after replay differs from state before restart".into(),
        ));
    }
    let hex: String = hash.iter().take(8).map(|b| format!("{b:02x}")).collect();
    out(&format!(
        "  ✓ {} log entries replayed in {:.1} ms; state hash {hex}… identical",
        recovery.log.entries_replayed,
        recovery.elapsed.as_secs_f64() * 1000.0
    ));
    Ok(())
}
