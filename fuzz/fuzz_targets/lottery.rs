//! The red-packet lottery's published files as anyone who re-runs a draw reads them: the
//! campaign (JSON), the registrant list (text) and the draw (JSON).
//!
//! * Each parser's output writes back to a file that parses to the same value; a registrant
//!   list is canonical (ascending, each wallet once) with the digest of its contents.
//! * A published draw verifies against a campaign and a list only if re-running the draw from
//!   its seed gives exactly it: against the fuzzer's own campaign and list as much as against a
//!   real one, where no edited draw verifies.

#![no_main]

use std::sync::OnceLock;

use ecny::ids::WalletId;
use ecny::programs::{Campaign, CampaignTerms, Draw, Registrant, RegistrantList, Seed, Window};
use libfuzzer_sys::fuzz_target;

const DAY_MS: u64 = 86_400_000;
/// 2024-12-12 00:00 Beijing time.
const CLOSES_AT_MS: u64 = 1_733_932_800_000;

struct World {
    campaign: Campaign,
    list: RegistrantList,
    draw: Draw,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let seed = Seed::from_bytes([12; 32]);
        let registration = Window {
            opens_at_ms: CLOSES_AT_MS - 3 * DAY_MS,
            closes_at_ms: CLOSES_AT_MS,
        };
        let validity = Window {
            opens_at_ms: CLOSES_AT_MS + DAY_MS,
            closes_at_ms: CLOSES_AT_MS + 17 * DAY_MS,
        };
        let terms = CampaignTerms::suzhou_pilot(10, seed.commitment(), registration, validity);
        let campaign = Campaign::new(terms).expect("the pilot's terms are valid");
        let registrations = (1..=40u32)
            .map(|n| Registrant {
                wallet: WalletId(n * 7),
                offline_trial: n % 5 == 0,
            })
            .collect();
        let list = RegistrantList::from_registrations(registrations).expect("forty fit");
        let draw = Draw::run(&campaign, &list, seed, CLOSES_AT_MS).expect("the draw runs");
        World {
            campaign,
            list,
            draw,
        }
    })
}

const MODE_CAMPAIGN: u8 = 0;
const MODE_REGISTRANTS: u8 = 1;
const MODE_DRAW: u8 = 2;
/// A draw file checked against the real campaign and list.
const MODE_PUBLISHED: u8 = 3;
/// All three files from the fuzzer: campaign, registrants and draw, each ended by a NUL.
const MODE_FILES: u8 = 4;

// An input is a mode byte and the file (or files) it names.
fuzz_target!(init: ecny_fuzz::write_seeds_if_asked(seeds), |data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match mode % 5 {
        MODE_CAMPAIGN => {
            campaign(text);
        }
        MODE_REGISTRANTS => {
            registrants(text);
        }
        MODE_DRAW => {
            draw(text);
        }
        MODE_PUBLISHED => {
            let world = world();
            if let Some(draw) = draw(text) {
                if draw.verify(&world.campaign, &world.list).is_ok() {
                    assert_eq!(draw, world.draw, "another draw verified");
                }
            }
        }
        _ => {
            let mut files = text.split('\0');
            let (Some(campaign_text), Some(registrants_text), Some(draw_text)) =
                (files.next(), files.next(), files.next())
            else {
                return;
            };
            let (Some(campaign), Some(list), Some(draw)) = (
                campaign(campaign_text),
                registrants(registrants_text),
                draw(draw_text),
            ) else {
                return;
            };
            verified(&campaign, &list, &draw);
        }
    }
});

fn campaign(text: &str) -> Option<Campaign> {
    let campaign = Campaign::from_json(text).ok()?;
    assert_eq!(
        Campaign::from_json(&campaign.to_json()).as_ref(),
        Ok(&campaign)
    );
    Some(campaign)
}

fn registrants(text: &str) -> Option<RegistrantList> {
    let list = RegistrantList::parse(text).ok()?;
    let wallets: Vec<WalletId> = list.registrants().iter().map(|r| r.wallet).collect();
    assert!(
        wallets.windows(2).all(|pair| pair[0] < pair[1]),
        "not canonical"
    );
    let rebuilt = RegistrantList::from_registrations(list.registrants().to_vec())
        .expect("a parsed list fits");
    assert_eq!(rebuilt.digest(), list.digest());
    assert_eq!(RegistrantList::parse(&list.to_text()).as_ref(), Ok(&list));
    Some(list)
}

fn draw(text: &str) -> Option<Draw> {
    let draw = Draw::from_json(text).ok()?;
    assert_eq!(Draw::from_json(&draw.to_json()).as_ref(), Ok(&draw));
    Some(draw)
}

fn verified(campaign: &Campaign, list: &RegistrantList, draw: &Draw) {
    let Ok(winners) = draw.verify(campaign, list) else {
        return;
    };
    assert_eq!(winners, draw.winners.len());
    assert_eq!(winners, list.len().min(campaign.packet_count() as usize));
    assert!(draw.winners.iter().all(|wallet| list.contains(*wallet)));
    let mut distinct = draw.winners.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), winners, "a wallet won twice");
    let closes_at_ms = campaign.terms().registration.closes_at_ms;
    let rerun =
        Draw::run(campaign, list, draw.seed.clone(), closes_at_ms).expect("a verified seed");
    assert_eq!(&rerun, draw);
}

/// The published files of a real draw, alone and together.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let world = world();
    let with = |mode: u8, text: &str| [&[mode], text.as_bytes()].concat();
    let files = [
        world.campaign.to_json(),
        world.list.to_text(),
        world.draw.to_json(),
    ]
    .join("\0");
    vec![
        ("campaign", with(MODE_CAMPAIGN, &world.campaign.to_json())),
        ("registrants", with(MODE_REGISTRANTS, &world.list.to_text())),
        (
            "registrants-unsorted",
            with(
                MODE_REGISTRANTS,
                "# late\nW0000000070\nW0000000007 offline-trial\n\nW0000000070\n",
            ),
        ),
        ("draw", with(MODE_DRAW, &world.draw.to_json())),
        ("published", with(MODE_PUBLISHED, &world.draw.to_json())),
        ("files", with(MODE_FILES, &files)),
    ]
}
