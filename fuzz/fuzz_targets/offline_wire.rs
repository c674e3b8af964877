//! Every dual-offline message as it crosses NFC or reaches the center: the first byte picks the
//! message type, the rest is its encoding. Whatever decodes is canonical: it encodes back to the
//! very bytes it came from, so no message has a second spelling for a signature to cover.

#![no_main]

use ecny::offline::applet::PROTOCOL_VERSION;
use ecny::offline::messages::{
    Acknowledgement, AttestedSync, Challenge, ChallengeOffer, LoadAuthorization, LogEntry, Nonce,
    PayCommand, PaymentRecord, PaymentRequest, ReceiveCommand, SeSummary, SelectInfo, SignedRecord,
    SignedUnload, SyncAttestation, SyncConfirmation, UnloadCommand, UnloadEntry, Wire,
};
use ecny::offline::protocol::Relay;
use ecny::Amount;
use ecny_fuzz::offline::{device, world, NOW_S};
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: ecny_fuzz::write_seeds_if_asked(seeds), |data: &[u8]| {
    let Some((&kind, bytes)) = data.split_first() else {
        return;
    };
    match kind % 19 {
        0 => canonical::<Nonce>(bytes),
        1 => canonical::<Challenge>(bytes),
        2 => canonical::<PaymentRecord>(bytes),
        3 => canonical::<SignedRecord>(bytes),
        4 => canonical::<LogEntry>(bytes),
        5 => canonical::<PaymentRequest>(bytes),
        6 => canonical::<ChallengeOffer>(bytes),
        7 => canonical::<PayCommand>(bytes),
        8 => canonical::<ReceiveCommand>(bytes),
        9 => canonical::<Acknowledgement>(bytes),
        10 => canonical::<LoadAuthorization>(bytes),
        11 => canonical::<SyncConfirmation>(bytes),
        12 => canonical::<SyncAttestation>(bytes),
        13 => attested_sync(bytes),
        14 => canonical::<UnloadCommand>(bytes),
        15 => canonical::<SignedUnload>(bytes),
        16 => canonical::<UnloadEntry>(bytes),
        17 => canonical::<SelectInfo>(bytes),
        _ => canonical::<SeSummary>(bytes),
    }
});

fn canonical<M: Wire + PartialEq + std::fmt::Debug>(bytes: &[u8]) {
    let Ok(message) = M::decode(bytes) else {
        return;
    };
    let encoded = message.encode();
    assert_eq!(encoded, bytes, "{message:?} has a second spelling");
    assert_eq!(M::decode(&encoded).as_ref(), Ok(&message));
}

fn attested_sync(bytes: &[u8]) {
    canonical::<AttestedSync>(bytes);
    if let Ok(sync) = AttestedSync::decode(bytes) {
        // The digest the center checks is a pure function of what it received.
        let digest = SyncAttestation::entries_digest(&sync.log, &sync.unloads);
        assert_eq!(
            sync.entries_match(),
            digest == sync.attestation.entries_digest
        );
    }
}

/// Every message of a real tap, unload and sync between two of the world's cards, each after
/// its kind byte.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let world = world();
    let (mut payer, mut payee) = (world.cards[0].clone(), world.cards[1].clone());
    let mut relay = Relay::new();
    let amount = Amount::from_fen(6_660);
    let signed = relay
        .pay(&mut payer, &mut payee, amount, NOW_S)
        .expect("the tap pays")
        .signed;
    let record = signed.record;
    let payee_key = &world.device_keys[1];
    let session = Nonce([5; 16]);
    let challenge = Challenge {
        payee: device(1),
        nonce: record.nonce,
        amount,
        time_s: NOW_S,
        payer: device(0),
        payer_session: session,
    };
    let offer = ChallengeOffer {
        challenge,
        signature: payee_key.sign(&challenge.digest()),
    };
    let (payee_device_cert, payee_operator_cert) = world.chains[1];
    let (payer_device_cert, payer_operator_cert) = world.chains[0];
    let signed_unload = relay
        .unload(&mut payer, Amount::from_fen(100), NOW_S)
        .expect("unloads");
    let sync = relay.attest(&mut payer, Nonce([9; 16])).expect("attests");
    let attestation = sync.attestation;
    let issuer = &world.issuers[0];
    let through = attestation.next_log_seq - 1;
    let with = |kind: u8, bytes: Vec<u8>| [vec![kind], bytes].concat();
    vec![
        ("nonce", with(0, session.encode())),
        ("challenge", with(1, challenge.encode())),
        ("record", with(2, record.encode())),
        ("signed-record", with(3, signed.encode())),
        ("log-entry", with(4, sync.log[0].encode())),
        (
            "request",
            with(
                5,
                PaymentRequest {
                    amount,
                    time_s: NOW_S,
                    payer: device(0),
                    payer_session: session,
                }
                .encode(),
            ),
        ),
        ("offer", with(6, offer.encode())),
        (
            "pay",
            with(
                7,
                PayCommand {
                    time_s: NOW_S,
                    offer,
                    payee_device_cert,
                    payee_operator_cert,
                }
                .encode(),
            ),
        ),
        (
            "receive",
            with(
                8,
                ReceiveCommand {
                    time_s: NOW_S,
                    signed,
                    payer_device_cert,
                    payer_operator_cert,
                }
                .encode(),
            ),
        ),
        (
            "acknowledge",
            with(
                9,
                Acknowledgement {
                    counter: record.counter,
                    receipt: payee_key.sign(&record.receipt_digest()),
                }
                .encode(),
            ),
        ),
        (
            "load",
            with(
                10,
                issuer
                    .authorize_load((device(0), 2, amount), &attestation.digest())
                    .encode(),
            ),
        ),
        (
            "confirm-sync",
            with(
                11,
                issuer
                    .confirm_sync((device(0), through, NOW_S + 60), &attestation.digest())
                    .encode(),
            ),
        ),
        ("attestation", with(12, attestation.encode())),
        ("attested-sync", with(13, sync.encode())),
        (
            "unload",
            with(
                14,
                UnloadCommand {
                    unload_seq: 2,
                    amount,
                    time_s: NOW_S,
                }
                .encode(),
            ),
        ),
        ("signed-unload", with(15, signed_unload.encode())),
        ("unload-entry", with(16, sync.unloads[0].encode())),
        (
            "select",
            with(
                17,
                SelectInfo {
                    protocol_version: PROTOCOL_VERSION,
                    device: device(0),
                    records: 1,
                    unacknowledged: 0,
                    unloads: 1,
                    session,
                }
                .encode(),
            ),
        ),
        (
            "summary",
            with(18, relay.summary(&mut payer).expect("a summary").encode()),
        ),
    ]
}
