//! Red-packet lotteries end to end: the Suzhou campaign at full size through the library, and
//! the published files through the `ecny lottery` commands as a sponsor and a sceptic use them.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use ecny::ids::WalletId;
use ecny::programs::{
    winner_notices, Campaign, CampaignTerms, Draw, RegistrantList, RegistrationBook, Seed, Window,
};
use ecny::Amount;

/// Suzhou, December 2020: registration 5–7 December, packets valid 11 to 27 December.
const REGISTRATION: Window = Window {
    opens_at_ms: 1_607_097_600_000,
    closes_at_ms: 1_607_356_800_000,
};
const VALIDITY: Window = Window {
    opens_at_ms: 1_607_688_000_000,
    closes_at_ms: 1_609_084_800_000,
};

#[test]
fn one_hundred_thousand_red_packets_of_200_yuan_drawn_among_a_million_registrants() {
    let started = Instant::now();
    let seed = Seed::from_bytes(*b"Suzhou Double Twelve 2020 seed!!");
    let campaign = Campaign::new(CampaignTerms::suzhou_pilot(
        100_000,
        seed.commitment(),
        REGISTRATION,
        VALIDITY,
    ))
    .unwrap();
    assert_eq!(campaign.terms().budget, Amount::from_yuan(20_000_000));

    // A million wallets register in no particular order (an odd multiplier permutes u32, so the
    // ids are distinct); every tenth registers a second time, opting in to the offline trial.
    let mut book = RegistrationBook::new(&campaign);
    for i in 1..=1_000_000u32 {
        let wallet = WalletId(i.wrapping_mul(2_654_435_761));
        let at_ms = REGISTRATION.opens_at_ms + u64::from(i) * 250;
        book.register(wallet, false, at_ms).unwrap();
        if i % 10 == 0 {
            book.register(wallet, true, at_ms + 1).unwrap();
        }
    }
    let registrants = book.close(REGISTRATION.closes_at_ms).unwrap();
    assert_eq!(registrants.len(), 1_000_000);
    let opted_in = registrants
        .registrants()
        .iter()
        .filter(|r| r.offline_trial)
        .count();
    assert_eq!(opted_in, 100_000);

    let draw = Draw::run(&campaign, &registrants, seed, REGISTRATION.closes_at_ms).unwrap();
    assert_eq!(draw.winners.len(), 100_000);
    let distinct: HashSet<WalletId> = draw.winners.iter().copied().collect();
    assert_eq!(distinct.len(), 100_000, "a wallet won twice");
    assert!(draw.winners.iter().all(|w| registrants.contains(*w)));

    // Anyone re-runs it from the published files.
    let published_list = RegistrantList::parse(&registrants.to_text()).unwrap();
    let published_draw = Draw::from_json(&draw.to_json()).unwrap();
    assert_eq!(
        published_draw.verify(&campaign, &published_list),
        Ok(100_000)
    );

    // One registrant quietly dropped from the published list is caught.
    let mut dropped = registrants.registrants().to_vec();
    dropped.remove(123_456);
    let dropped = RegistrantList::from_registrations(dropped).unwrap();
    assert_eq!(
        published_draw
            .verify(&campaign, &dropped)
            .unwrap_err()
            .code(),
        "REGISTRANTS_DIGEST_MISMATCH"
    );

    let outbox = winner_notices(&campaign, &draw);
    assert_eq!(outbox.len(), 100_000);
    let handed_out: Amount = outbox.iter().map(|_| campaign.terms().packet_value).sum();
    assert_eq!(handed_out, campaign.terms().budget);
    eprintln!("full-size lottery in {:.2?}", started.elapsed());
}

fn ecny(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ecny"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).to_str().unwrap().to_string()
}

#[test]
fn a_sponsor_draws_and_a_sceptic_verifies_with_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (ok, text) = ecny(&[
        "lottery",
        "sample",
        "--registrants",
        "5000",
        "--packets",
        "300",
        "--dir",
        dir.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let (campaign, registrants, draw, outbox) = (
        path(dir, "campaign.json"),
        path(dir, "registrants.txt"),
        path(dir, "draw.json"),
        path(dir, "outbox.jsonl"),
    );
    let seed = std::fs::read_to_string(dir.join("seed.hex")).unwrap();
    let seed = seed.trim();
    let draw_with = |seed: &str| {
        ecny(&[
            "lottery",
            "draw",
            "--campaign",
            &campaign,
            "--registrants",
            &registrants,
            "--seed",
            seed,
            "--out",
            &draw,
            "--outbox",
            &outbox,
        ])
    };
    let verify = || {
        ecny(&[
            "lottery",
            "verify",
            "--campaign",
            &campaign,
            "--registrants",
            &registrants,
            "--draw",
            &draw,
        ])
    };

    let wrong_seed = "ab".repeat(32);
    let (ok, text) = draw_with(&wrong_seed);
    assert!(!ok && text.contains("SEED_COMMITMENT_MISMATCH"), "{text}");

    let (ok, text) = draw_with(seed);
    assert!(ok && text.contains("drew 300 winners"), "{text}");
    assert_eq!(
        std::fs::read_to_string(&outbox).unwrap().lines().count(),
        300
    );
    let (ok, text) = verify();
    assert!(ok && text.contains("verified: 300 winners"), "{text}");

    // A published draw whose seed was swapped fails, naming the seed.
    let published = std::fs::read_to_string(&draw).unwrap();
    std::fs::write(&draw, published.replace(seed, &wrong_seed)).unwrap();
    let (ok, text) = verify();
    assert!(!ok && text.contains("wrong seed"), "{text}");

    // A winner replaced by someone else fails, naming the packet.
    let drawn = Draw::from_json(&published).unwrap();
    let first = drawn.winners[0].to_string();
    let second = drawn.winners[1].to_string();
    std::fs::write(&draw, published.replacen(&first, &second, 1)).unwrap();
    let (ok, text) = verify();
    assert!(!ok && text.contains("WINNERS_MISMATCH"), "{text}");
    assert!(text.contains("first at packet 1"), "{text}");

    // A registrant dropped from the published list fails, naming the list.
    std::fs::write(&draw, &published).unwrap();
    let list = std::fs::read_to_string(&registrants).unwrap();
    let without_first: String = list
        .lines()
        .skip(1)
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(&registrants, without_first).unwrap();
    let (ok, text) = verify();
    assert!(
        !ok && text.contains("REGISTRANTS_DIGEST_MISMATCH"),
        "{text}"
    );
    assert!(text.contains("4999 with digest"), "{text}");

    std::fs::write(&registrants, &list).unwrap();
    let (ok, text) = verify();
    assert!(ok, "{text}");
}
