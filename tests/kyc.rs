//! Know your customer: a resident ID number is 17 digits and its GB 11643 check character, and one
//! identity holds a limited number of class-2-or-better wallets at one operator; a refusal moves
//! nothing.

mod support;

use ecny::command::Command;
use ecny::wallet::{WalletClass, CLASS_TWO_WALLETS_PER_IDENTITY_MAX};
use support::World;

fn upgrade(wallet: ecny::ids::WalletId, to: WalletClass, id_number: &str) -> Command {
    Command::UpgradeWallet {
        wallet,
        to,
        name: Some("Wang Wu".into()),
        id_number: Some(id_number.into()),
        in_person: false,
    }
}

#[test]
fn an_id_number_must_carry_its_check_character() {
    let mut world = World::new();
    let [jiangnan, _] = world.operators;
    let holder = world.open_banked(jiangnan, "100", WalletClass::Four);
    let before = world.hash();
    for bad in [
        // One digit off: the check character no longer matches.
        "110101199003074515",
        "AAAAAAAAAAAAAAAAAA",
        "11010119900307451",
        "1101011990030745140",
        "11010119900307451x",
        "11010519491231002Y",
    ] {
        let error = world
            .run(jiangnan, upgrade(holder.wallet, WalletClass::Three, bad))
            .unwrap_err();
        assert_eq!(error.code(), "ID_NUMBER_INVALID", "{bad}");
        assert_eq!(world.hash(), before, "{bad} changed the state");
    }
    // A check character of 10 is written X.
    world
        .run(
            jiangnan,
            upgrade(holder.wallet, WalletClass::Three, "11010519491231002X"),
        )
        .unwrap();
    world
        .run(
            jiangnan,
            upgrade(holder.wallet, WalletClass::Two, "11010519491231002X"),
        )
        .unwrap();
    world.assert_audit();
}

#[test]
fn one_identity_holds_a_limited_number_of_class_two_wallets_at_an_operator() {
    let mut world = World::new();
    let [jiangnan, lakeside] = world.operators;
    let id = "110101199003074514";
    let mut holders = Vec::new();
    for _ in 0..CLASS_TWO_WALLETS_PER_IDENTITY_MAX {
        let holder = world.open_banked(jiangnan, "100", WalletClass::Four);
        world
            .run(jiangnan, upgrade(holder.wallet, WalletClass::Two, id))
            .unwrap();
        holders.push(holder);
    }
    let one_more = world.open_banked(jiangnan, "100", WalletClass::Four);
    let before = world.hash();
    let error = world
        .run(jiangnan, upgrade(one_more.wallet, WalletClass::Two, id))
        .unwrap_err();
    assert_eq!(error.code(), "IDENTITY_WALLET_LIMIT");
    assert_eq!(world.hash(), before);
    // Class 3 is not limited; nor is another operator's count this one's business.
    world
        .run(jiangnan, upgrade(one_more.wallet, WalletClass::Three, id))
        .unwrap();
    let elsewhere = world.open_banked(lakeside, "100", WalletClass::Four);
    world
        .run(lakeside, upgrade(elsewhere.wallet, WalletClass::Two, id))
        .unwrap();
    // A closed wallet frees its place.
    let closed = holders.pop().unwrap();
    world
        .run(
            jiangnan,
            Command::CloseWallet {
                wallet: closed.wallet,
            },
        )
        .unwrap();
    world
        .run(jiangnan, upgrade(one_more.wallet, WalletClass::Two, id))
        .unwrap();
    world.assert_audit();
}
