//! Winner notification: an outbox of SMS texts, one per winning wallet. The program knows only
//! pseudonymous wallet ids; each wallet's operator resolves the phone number and sends the text,
//! so identity never leaves the operator.

use crate::ids::{CampaignId, WalletId};
use crate::programs::campaign::Campaign;
use crate::programs::lottery::Draw;

/// Beijing time is UTC+8 all year (no daylight saving).
const BEIJING_OFFSET_MS: i64 = 8 * 3_600_000;
const MS_PER_DAY: i64 = 86_400_000;

/// One text waiting in the outbox. `(campaign, packet)` identifies it, so an operator that
/// retries a send can tell a resend from a second notice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WinnerSms {
    pub campaign: CampaignId,
    /// The packet this wallet won, 1 for the first drawn.
    pub packet: u32,
    pub wallet: WalletId,
    pub text: String,
}

/// The outbox for a draw, in draw order.
pub fn winner_notices(campaign: &Campaign, draw: &Draw) -> Vec<WinnerSms> {
    let terms = campaign.terms();
    debug_assert_eq!(
        draw.campaign, terms.id,
        "notices for another campaign's draw"
    );
    let from = beijing_time(terms.validity.opens_at_ms);
    // The window is half-open: the last moment a packet is valid is the second before it closes.
    let until = beijing_time(terms.validity.closes_at_ms.saturating_sub(1000));
    draw.winners
        .iter()
        .enumerate()
        .map(|(index, &wallet)| {
            let packet = u32::try_from(index + 1).expect("packets fit in u32");
            WinnerSms {
                campaign: terms.id,
                packet,
                wallet,
                text: format!(
                    "[{sponsor}] Your e-CNY wallet {wallet} won red packet {packet} of \"{name}\" \
                     ({campaign}): {value} to spend at eligible merchants from {from} to {until} \
                     Beijing time; what is unspent then returns to the sponsor. Open your e-CNY \
                     wallet app to see it: there is no link to click, and no one will ask for \
                     your password.",
                    sponsor = terms.sponsor.name,
                    name = terms.name,
                    campaign = terms.id,
                    value = terms.packet_value.yuan_sign(),
                ),
            }
        })
        .collect()
}

/// `2021-02-17 23:59:59` for a Unix time in ms, in Beijing time.
pub fn beijing_time(unix_ms: u64) -> String {
    let local_ms = i64::try_from(unix_ms)
        .unwrap_or(i64::MAX)
        .saturating_add(BEIJING_OFFSET_MS);
    let days = local_ms.div_euclid(MS_PER_DAY);
    let seconds_of_day = local_ms.rem_euclid(MS_PER_DAY) / 1000;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        seconds_of_day / 3600,
        seconds_of_day / 60 % 60,
        seconds_of_day % 60
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amount::Amount;
    use crate::programs::campaign::{CampaignTerms, Window};
    use crate::programs::lottery::{Registrant, RegistrantList, Seed};

    #[test]
    fn beijing_time_is_utc_plus_eight_on_the_gregorian_calendar() {
        assert_eq!(beijing_time(0), "1970-01-01 08:00:00");
        assert_eq!(beijing_time(1_607_688_000_000), "2020-12-11 20:00:00");
        assert_eq!(beijing_time(1_609_084_799_000), "2020-12-27 23:59:59");
        assert_eq!(beijing_time(1_709_181_296_000), "2024-02-29 12:34:56");
        assert_eq!(beijing_time(4_107_513_600_000), "2100-03-01 00:00:00");
    }

    #[test]
    fn every_winner_gets_one_text_naming_the_packet_without_any_personal_data() {
        let seed = Seed::from_bytes([9; 32]);
        let registration = Window {
            opens_at_ms: 1_607_097_600_000,
            closes_at_ms: 1_607_356_800_000,
        };
        let validity = Window {
            opens_at_ms: 1_607_688_000_000,
            closes_at_ms: 1_609_084_800_000,
        };
        let campaign = Campaign::new(CampaignTerms::suzhou_pilot(
            3,
            seed.commitment(),
            registration,
            validity,
        ))
        .unwrap();
        let registrants = RegistrantList::from_registrations(
            (1..=10)
                .map(|id| Registrant {
                    wallet: WalletId(id),
                    offline_trial: false,
                })
                .collect(),
        )
        .unwrap();
        let draw = Draw::run(&campaign, &registrants, seed, registration.closes_at_ms).unwrap();
        let outbox = winner_notices(&campaign, &draw);
        assert_eq!(outbox.len(), 3);
        for (index, sms) in outbox.iter().enumerate() {
            assert_eq!(sms.wallet, draw.winners[index]);
            assert_eq!(sms.packet as usize, index + 1);
            assert_eq!(sms.campaign, CampaignId(1));
            assert!(sms
                .text
                .starts_with("[Suzhou Municipal People's Government]"));
            assert!(sms.text.contains(&format!(
                "wallet {} won red packet {}",
                sms.wallet,
                index + 1
            )));
            assert!(sms
                .text
                .contains(&Amount::from_yuan(200).yuan_sign().to_string()));
            assert!(sms
                .text
                .contains("from 2020-12-11 20:00:00 to 2020-12-27 23:59:59"));
        }
    }
}
