//! Amounts, typed ids, idempotency keys, phone numbers, dates and the HTTP field parsers, as a
//! client types them: whatever parses is in range, prints back to text that parses to the same
//! value, and has the one syntax the README states.

#![no_main]

use std::fmt::Display;
use std::str::FromStr;

use ecny::certs::KeyPair;
use ecny::certs::{PublicKey, Signature};
use ecny::ids::{
    AccountId, CampaignId, ContractId, DeviceId, EventId, IdParseError, IdempotencyKey,
    IdentityLookupId, MerchantId, OperatorId, SubWalletId, WalletId,
};
use ecny::server::fields::{amount_field, id_field};
use ecny::time::{format_day, parse_day};
use ecny::wallet::parse_phone;
use ecny::Amount;
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: ecny_fuzz::write_seeds_if_asked(seeds), |data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    amounts(text);
    ids(text);
    idempotency_key(text);
    phone(text);
    day(text);
    hex_fields(text);
});

fn amounts(text: &str) {
    let parsed = text.parse::<Amount>();
    if let Ok(amount) = parsed {
        assert!(
            (0..=Amount::MAX.fen()).contains(&amount.fen()),
            "{text:?} parsed to {amount:?}, outside 0..=MAX"
        );
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        assert!(!whole.is_empty() && whole.bytes().all(|b| b.is_ascii_digit()));
        assert!(fraction.bytes().all(|b| b.is_ascii_digit()));
        assert!(!text.contains('.') || (1..=2).contains(&fraction.len()));
        assert_eq!(amount.to_string().parse::<Amount>(), Ok(amount));
    }
    // The HTTP field is the same parser.
    assert_eq!(amount_field("amount", text).ok(), parsed.ok());
    if let Ok(signed) = Amount::parse_signed(text) {
        assert!(signed.fen().unsigned_abs() <= Amount::MAX.fen().unsigned_abs());
        assert_eq!(Amount::parse_signed(&signed.to_string()), Ok(signed));
    }
}

fn ids(text: &str) {
    id::<OperatorId>(text);
    id::<WalletId>(text);
    id::<AccountId>(text);
    id::<MerchantId>(text);
    id::<SubWalletId>(text);
    id::<ContractId>(text);
    id::<DeviceId>(text);
    id::<EventId>(text);
    id::<CampaignId>(text);
    id::<IdentityLookupId>(text);
    if let Ok(wallet) = WalletId::parse_canonical(text) {
        assert_eq!(wallet.to_string(), text, "a canonical id has one spelling");
    }
    if let Ok(device) = DeviceId::parse_canonical(text) {
        assert_eq!(device.to_string(), text, "a canonical id has one spelling");
    }
}

fn id<T>(text: &str)
where
    T: FromStr<Err = IdParseError> + Display + PartialEq + std::fmt::Debug + Copy,
{
    let parsed = text.parse::<T>();
    if let Ok(id) = &parsed {
        let printed = id.to_string();
        assert_eq!(
            printed.parse::<T>().as_ref(),
            Ok(id),
            "{text:?} → {printed:?}"
        );
    }
    assert_eq!(id_field::<T>("id", text).ok(), parsed.ok());
}

fn idempotency_key(text: &str) {
    let Ok(key) = text.parse::<IdempotencyKey>() else {
        return;
    };
    let hex_only = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    let plain = text.len() <= 32 && hex_only(text);
    let uuid = text.len() == 36
        && text.split('-').map(str::len).eq([8, 4, 4, 4, 12])
        && text.split('-').all(hex_only);
    assert!(
        plain || uuid,
        "{text:?} read as idempotency key {key} but is neither 1-32 hex digits nor a UUID"
    );
    assert_eq!(key.to_string().parse::<IdempotencyKey>(), Ok(key));
}

fn phone(text: &str) {
    if let Ok(number) = parse_phone(text) {
        assert!(
            (10_000_000_000..20_000_000_000).contains(&number),
            "{text:?} read as phone {number}"
        );
        assert_eq!(parse_phone(&number.to_string()), Ok(number));
    }
}

fn day(text: &str) {
    if let Some(day) = parse_day(text) {
        assert_eq!(format_day(day), text.trim());
    }
}

fn hex_fields(text: &str) {
    if let Ok(key) = PublicKey::from_hex(text) {
        assert!(text.eq_ignore_ascii_case(&key.to_hex()));
        assert_eq!(PublicKey::from_sec1(&key.0), Ok(key));
    }
    if let Ok(signature) = Signature::from_hex(text) {
        assert!(text.eq_ignore_ascii_case(&signature.to_hex()));
    }
}

/// What people and clients type, as the project prints it.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let key = KeyPair::from_seed(b"fuzz seed key");
    let signature = key.sign(b"a message");
    let texts = [
        ("amount", "66.60".to_string()),
        ("amount-whole", Amount::from_yuan(1_000).to_string()),
        ("amount-one-decimal", "0.5".to_string()),
        ("amount-signed", Amount::from_fen(-1_234).to_string()),
        ("amount-max", Amount::MAX.to_string()),
        ("wallet", WalletId(42).to_string()),
        ("operator", OperatorId(3).to_string()),
        ("device", DeviceId(7).to_string()),
        ("sub-wallet", SubWalletId(9).to_string()),
        ("campaign", CampaignId(1).to_string()),
        ("key-hex", IdempotencyKey(0x1f).to_string()),
        (
            "key-uuid",
            "123e4567-e89b-12d3-a456-426614174000".to_string(),
        ),
        ("phone", "+86 138-0013-8000".to_string()),
        ("day", format_day(19_782)),
        ("public-key", key.public_key().to_hex()),
        ("signature", signature.to_hex()),
    ];
    texts
        .into_iter()
        .map(|(name, text)| (name, text.into_bytes()))
        .collect()
}
