//! De-anonymization through the durable node: only the wallet's operator may link a wallet to its
//! holder, and only with a legal reason; every look-up is logged (operator, wallet, reason, time)
//! and the log survives a restart; the identity itself reaches that operator alone, while the
//! central bank and the analysis center see who looked and why.

mod support;

use ecny::command::{Command, Origin, Outcome};
use ecny::ids::IdentityLookupId;
use ecny::operator::DEANONYMIZATION_REASON_BYTES_MAX;
use ecny::wallet::WalletClass;
use support::World;

const REASON: &str = "Suzhou Intermediate People's Court order (2026) Su 05 Xing Chu 117, Criminal Procedure Law art. 144";

#[test]
fn only_the_wallets_operator_links_it_to_its_holder_with_a_logged_legal_reason() {
    let mut world = World::new();
    let [jiangnan, lakeside] = world.operators;
    let holder = world.open_banked(jiangnan, "100", WalletClass::Three);
    let deanonymize = |reason: &str| Command::Deanonymize {
        wallet: holder.wallet,
        reason: reason.into(),
    };

    // Another operator is refused, and so is the central bank: neither holds this identity.
    let before = world.hash();
    let error = world.run(lakeside, deanonymize(REASON)).unwrap_err();
    assert_eq!(error.code(), "UNKNOWN_WALLET");
    let by_central_bank = world
        .platform
        .as_central_bank(vec![deanonymize(REASON)])
        .unwrap()
        .remove(0)
        .unwrap_err();
    assert_eq!(by_central_bank.code(), "IDENTITY_AT_OPERATOR_ONLY");
    // No reason, a blank one, one with control characters or one too long is refused.
    let too_long = "x".repeat(DEANONYMIZATION_REASON_BYTES_MAX + 1);
    for reason in ["", "   ", "court order\n117", too_long.as_str()] {
        let error = world.run(jiangnan, deanonymize(reason)).unwrap_err();
        assert_eq!(error.code(), "DEANONYMIZATION_REASON_INVALID", "{reason:?}");
    }
    assert_eq!(world.hash(), before, "refused look-ups change nothing");
    assert!(world.platform.state().deanonymization_log().is_empty());

    world.advance_ms(60_000);
    let Ok(Outcome::IdentityLookup(lookup)) = world.run(jiangnan, deanonymize(REASON)) else {
        panic!("the wallet's own operator was refused");
    };
    assert_eq!(lookup, IdentityLookupId(1));
    let disclosed = world.platform.disclosed_identity(jiangnan, lookup).unwrap();
    assert_eq!(disclosed.wallet, holder.wallet);
    assert_eq!(disclosed.phone, Some(holder.phone));
    assert_eq!(disclosed.name.as_deref(), Some("Zhang San"));
    let id_number = support::id_number_of(holder.phone);
    assert_eq!(disclosed.id_number.as_deref(), Some(id_number.as_str()));
    // The identity goes to the operator that looked, to no one else: the state machine answers
    // no one else, and what it holds opens under no other operator's key.
    let state = world.platform.state();
    for caller in [Origin::Operator(lakeside), Origin::CentralBank] {
        assert!(state.disclosed_identity(caller, lookup).is_err());
    }
    let sealed = state
        .disclosed_identity(Origin::Operator(jiangnan), lookup)
        .unwrap();
    let lakeside_key = world.platform.identity_key(lakeside).unwrap();
    assert!(sealed.opened(&lakeside_key).is_err());

    // The log says who looked, at which wallet, why and when; never what was found.
    let log = state.deanonymization_log();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].operator, log[0].wallet, log[0].reason.as_str()),
        (jiangnan, holder.wallet, REASON)
    );
    assert_eq!(log[0].at_ms, state.last_timestamp_ms());
    let as_seen = format!("{log:?}");
    assert!(!as_seen.contains("Zhang San") && !as_seen.contains(&id_number));
    assert!(!as_seen.contains(&holder.phone.to_string()));

    let log = log.to_vec();
    let hash = world.hash();
    let world = world.reopen();
    assert_eq!(world.hash(), hash);
    assert_eq!(world.platform.state().deanonymization_log(), log.as_slice());
}
