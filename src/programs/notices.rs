//! Winner notification: an outbox of SMS texts, one per winning wallet. The program knows only
//! pseudonymous wallet ids; each wallet's operator resolves the phone number and sends the text,
//! so identity never leaves the operator.

use crate::ids::{CampaignId, WalletId};
use crate::programs::campaign::Campaign;
use crate::programs::lottery::Draw;
use crate::time::china_date_time;

/// One text waiting in the outbox. `(campaign, packet)` identifies it, so an operator that
/// retries a send can tell a resend from a second notice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WinnerSms {
    pub campaign: CampaignId,
    /// The packet this wallet won, 1 for the first drawn.
    pub packet: u32,
    pub wallet: WalletId,
    pub text: String,
    /// The same notice in Chinese, as the SMS gateway sends it to a mainland phone.
    pub text_zh: String,
}

/// The outbox for a draw, in draw order.
pub fn winner_notices(campaign: &Campaign, draw: &Draw) -> Vec<WinnerSms> {
    let terms = campaign.terms();
    debug_assert_eq!(
        draw.campaign, terms.id,
        "notices for another campaign's draw"
    );
    let from = china_date_time(terms.validity.opens_at_ms);
    // The window is half-open: the last moment a packet is valid is the second before it closes.
    let until = china_date_time(terms.validity.closes_at_ms.saturating_sub(1000));
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
                text_zh: format!(
                    "【{sponsor}】您的数字人民币钱包{wallet}抽中“{name}”（{campaign}）第{packet}号红包\
                     {value}，可于北京时间{from}至{until}在指定商户使用，逾期未使用部分将退回发放方。\
                     请打开数字人民币App查看。本短信不含任何链接，任何人都不会向您索要密码。",
                    sponsor = terms.sponsor.name,
                    name = terms.name,
                    campaign = terms.id,
                    value = terms.packet_value.yuan_sign(),
                ),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amount::Amount;
    use crate::programs::campaign::{CampaignTerms, Window};
    use crate::programs::lottery::{Registrant, RegistrantList, Seed};

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
            assert!(sms
                .text_zh
                .contains(&format!("您的数字人民币钱包{}抽中", sms.wallet)));
            assert!(sms
                .text_zh
                .contains(&format!("第{}号红包¥200.00", index + 1)));
            assert!(sms
                .text_zh
                .contains("北京时间2020-12-11 20:00:00至2020-12-27 23:59:59"));
        }
    }
}
