//! Holders set up through the platform before a server opens the data directory: a wallet with
//! a bound bank account, upgraded by KYC, with e-CNY exchanged into it.
#![allow(dead_code)]

use ecny::amount::Amount;
use ecny::certs::KeyPair;
use ecny::command::{Command, Outcome};
use ecny::ids::{IdempotencyKey, OperatorId, WalletId};
use ecny::platform::Platform;
use ecny::wallet::WalletClass;

pub struct Person {
    pub wallet: WalletId,
    pub operator: OperatorId,
    pub key: KeyPair,
}

fn yuan(text: &str) -> Amount {
    text.parse().unwrap()
}

/// A wallet of `class` (3, 2 or 1; 1 verified in person) at `operator` for the holder of
/// `phone`, with a bound bank account of twice `e_cny` (at least ¥1,000) and `e_cny` exchanged
/// into it.
pub fn banked(
    platform: &mut Platform,
    operator: OperatorId,
    phone: u64,
    class: WalletClass,
    e_cny: &str,
) -> Person {
    let key = KeyPair::from_seed(format!("banked/{phone}").as_bytes());
    let run = |platform: &mut Platform, command: Command| {
        platform
            .one(operator, command)
            .unwrap()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let opened = Command::OpenWallet {
        operator,
        phone: phone.into(),
        public_key: key.public_key(),
    };
    let Outcome::Wallet(wallet) = run(platform, opened) else {
        panic!("no wallet")
    };
    let Outcome::Account(account) = run(platform, Command::OpenDepositAccount { operator }) else {
        panic!("no account")
    };
    let deposit = Amount::from_fen((yuan(e_cny).fen() * 2).max(yuan("1000").fen()));
    let deposit = Command::CashDeposit {
        account,
        amount: deposit,
    };
    run(platform, deposit);
    // The holder signs the binding: no operator binds a wallet to an account on its own word.
    let bind = Command::BindBankAccount {
        wallet,
        account,
        auth: None,
    };
    let bind = platform.sign_as_holder(bind, &key, operator);
    run(platform, bind);
    let upgrade = Command::UpgradeWallet {
        wallet,
        to: class,
        name: Some("Zhang San".into()),
        id_number: Some(
            ecny::wallet::id_number_from(&format!("110101{:011}", phone % 100_000_000_000)).into(),
        ),
        in_person: class == WalletClass::One,
    };
    run(platform, upgrade);
    let exchange = Command::Exchange {
        wallet,
        amount: yuan(e_cny),
        key: IdempotencyKey(u128::from(phone)),
        auth: None,
    };
    let exchange = platform.sign_as_holder(exchange, &key, operator);
    run(platform, exchange);
    Person {
        wallet,
        operator,
        key,
    }
}

/// A payment `payer` signs, made through the platform.
pub fn pay(platform: &mut Platform, payer: &Person, payee: WalletId, amount: &str, key: u128) {
    let command = Command::Pay {
        payer: payer.wallet,
        payee,
        amount: yuan(amount),
        key: IdempotencyKey(key),
        auth: None,
    };
    let command = platform.sign_as_holder(command, &payer.key, payer.operator);
    platform
        .one(payer.operator, command)
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
}
