//! A red-packet campaign as its sponsor defines and publishes it: the budget and its packets, where
//! the packets can be spent, when people may register and when packets are valid, and the
//! commitment to the lottery seed. `Campaign::new` checks everything once, so a `Campaign` is
//! always consistent.
//!
//! Eligibility of a merchant, precisely: a merchant on the explicit list is eligible (that is how
//! online shops registered elsewhere take part, as JD.com did in Suzhou); any other merchant must
//! be located inside one of the eligible regions (the campaign's own region when none is listed)
//! and, when categories are listed, have one of those merchant category codes.
//!
//! Times are milliseconds since the Unix epoch, as everywhere in the ledger; windows are half-open,
//! `[opens_at_ms, closes_at_ms)`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::amount::Amount;
use crate::certs::{decode_hex, encode_hex};
use crate::channels::Mcc;
use crate::codec::{DecodeError, Reader, Writer};
use crate::ids::{CampaignId, MerchantId, WalletId};
use crate::time::china_date_time;

/// Largest number of packets one campaign may hand out (the Suzhou and Shenzhen pilots had
/// 100,000 each); it bounds the draw's memory and the notification outbox.
pub const CAMPAIGN_PACKETS_MAX: u32 = 10_000_000;
/// Longest campaign or sponsor name, in bytes (it goes into every winner's SMS).
pub const CAMPAIGN_NAME_BYTES_MAX: usize = 120;
/// Largest explicit list of eligible merchants, or of categories or regions.
pub const ELIGIBLE_ENTRIES_MAX: usize = 100_000;
/// The file format tag of a published campaign.
pub const CAMPAIGN_FILE_FORMAT: &str = "ecny/red-packet-campaign/v1";

/// Why a campaign definition is refused. Each has a stable code.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CampaignError {
    #[error("a campaign needs at least one packet")]
    NoPackets,
    #[error("{count} packets is more than the {max} one campaign may hand out")]
    TooManyPackets { count: u32, max: u32 },
    #[error("packet value must be positive, got {0}")]
    PacketValueNotPositive(Amount),
    #[error("budget {budget} is not {packet_count} packets × {packet_value} = {expected}")]
    BudgetMismatch {
        budget: Amount,
        packet_count: u32,
        packet_value: Amount,
        expected: Amount,
    },
    #[error(
        "{packet_count} packets × {packet_value} is above the largest amount a command may carry"
    )]
    BudgetTooLarge {
        packet_count: u32,
        packet_value: Amount,
    },
    #[error("{0} is empty or longer than {CAMPAIGN_NAME_BYTES_MAX} bytes")]
    BadName(&'static str),
    #[error("the {0} window closes at or before it opens")]
    EmptyWindow(&'static str),
    #[error("packets become valid at {} Beijing time, before registration closes at {} (the draw happens after registration closes)", china_date_time(*valid_from_ms), china_date_time(*registration_closes_ms))]
    ValidBeforeDraw {
        valid_from_ms: u64,
        registration_closes_ms: u64,
    },
    #[error("eligible region {eligible} is not inside the campaign's region {campaign}")]
    RegionOutsideCampaign {
        eligible: RegionCode,
        campaign: RegionCode,
    },
    #[error("the eligible {what} list has {count} entries, more than {ELIGIBLE_ENTRIES_MAX}")]
    TooManyEligible { what: &'static str, count: usize },
    #[error("{0:?} is not a six-digit administrative region code (GB/T 2260), e.g. 320500")]
    MalformedRegion(String),
    #[error("campaign file: {0}")]
    MalformedFile(String),
}

impl CampaignError {
    /// Machine-readable code; stable across releases, unlike the message.
    pub fn code(&self) -> &'static str {
        use CampaignError::*;
        match self {
            NoPackets => "CAMPAIGN_NO_PACKETS",
            TooManyPackets { .. } => "CAMPAIGN_TOO_MANY_PACKETS",
            PacketValueNotPositive(_) => "CAMPAIGN_PACKET_VALUE_NOT_POSITIVE",
            BudgetMismatch { .. } => "CAMPAIGN_BUDGET_MISMATCH",
            BudgetTooLarge { .. } => "CAMPAIGN_BUDGET_TOO_LARGE",
            BadName(_) => "CAMPAIGN_BAD_NAME",
            EmptyWindow(_) => "CAMPAIGN_EMPTY_WINDOW",
            ValidBeforeDraw { .. } => "CAMPAIGN_VALID_BEFORE_DRAW",
            RegionOutsideCampaign { .. } => "CAMPAIGN_REGION_OUTSIDE",
            TooManyEligible { .. } => "CAMPAIGN_TOO_MANY_ELIGIBLE",
            MalformedRegion(_) => "REGION_MALFORMED",
            MalformedFile(_) => "CAMPAIGN_FILE_MALFORMED",
        }
    }
}

/// A mainland administrative division code (GB/T 2260): `320000` Jiangsu province, `320500`
/// Suzhou city, `320505` Suzhou's Huqiu district. Trailing zero pairs mark a province or city.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegionCode(u32);

impl RegionCode {
    /// The code if it has six digits and a province part from 11 (Beijing) to 82 (Macao).
    pub const fn new(code: u32) -> Option<RegionCode> {
        if code >= 110_000 && code <= 829_999 {
            Some(RegionCode(code))
        } else {
            None
        }
    }

    pub const fn code(self) -> u32 {
        self.0
    }

    /// Whether `other` lies inside this region: a province holds its cities and counties, a city
    /// its counties and districts, and a county only itself.
    pub const fn contains(self, other: RegionCode) -> bool {
        if self.0.is_multiple_of(10_000) {
            self.0 / 10_000 == other.0 / 10_000
        } else if self.0.is_multiple_of(100) {
            self.0 / 100 == other.0 / 100
        } else {
            self.0 == other.0
        }
    }
}

impl fmt::Display for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06}", self.0)
    }
}

impl FromStr for RegionCode {
    type Err = CampaignError;
    fn from_str(text: &str) -> Result<RegionCode, CampaignError> {
        let malformed = || CampaignError::MalformedRegion(text.to_string());
        if text.len() != 6 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed());
        }
        text.parse()
            .ok()
            .and_then(RegionCode::new)
            .ok_or_else(malformed)
    }
}

/// A half-open interval of time, `[opens_at_ms, closes_at_ms)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub opens_at_ms: u64,
    pub closes_at_ms: u64,
}

impl Window {
    pub const fn contains(self, at_ms: u64) -> bool {
        self.opens_at_ms <= at_ms && at_ms < self.closes_at_ms
    }
}

/// Who pays for the campaign: a sponsor (usually a city government) and the e-CNY wallet the
/// packets' pool is funded from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sponsor {
    pub name: String,
    pub wallet: WalletId,
}

/// Where packets may be spent (see the module documentation for the exact rule).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Eligibility {
    /// Merchant category codes; empty means any category.
    pub categories: Vec<Mcc>,
    /// Regions inside the campaign's region; empty means the campaign's whole region.
    pub regions: Vec<RegionCode>,
    /// Merchants eligible wherever they are and whatever their category (online shops).
    pub merchants: Vec<MerchantId>,
}

/// Why a packet may not pay a merchant that is not on the campaign's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ineligible {
    /// The merchant's category is not one of the campaign's.
    Category(Mcc),
    /// The merchant is not located in an eligible region (the raw code: it may not be a valid
    /// GB/T 2260 code at all).
    Region(u32),
}

impl fmt::Display for Ineligible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ineligible::Category(mcc) => write!(f, "merchant category {mcc} not eligible"),
            Ineligible::Region(code) => {
                write!(f, "merchant region {code:06} outside the eligible regions")
            }
        }
    }
}

/// What a payment path knows about a merchant when it asks whether a packet may pay it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MerchantProfile {
    pub id: MerchantId,
    pub category: Mcc,
    pub region: RegionCode,
}

/// A campaign as the sponsor writes it, before it is checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CampaignTerms {
    pub id: CampaignId,
    pub name: String,
    pub sponsor: Sponsor,
    pub budget: Amount,
    pub packet_count: u32,
    pub packet_value: Amount,
    pub region: RegionCode,
    pub eligibility: Eligibility,
    pub registration: Window,
    pub validity: Window,
    /// Whether registrants may opt in to the offline hardware-wallet trial (as in Suzhou).
    pub offline_trial: bool,
    /// `SM3(tag || seed)`, published before registration closes (see `lottery`).
    pub seed_commitment: SeedCommitment,
}

impl CampaignTerms {
    /// The shape of Suzhou's "Double Twelve" pilot (December 2020): packets of 200 yuan for
    /// anyone who registers, spendable at any merchant in Suzhou and at one online shop
    /// registered elsewhere, with an offline-wallet trial to opt in to.
    pub fn suzhou_pilot(
        packet_count: u32,
        seed_commitment: SeedCommitment,
        registration: Window,
        validity: Window,
    ) -> CampaignTerms {
        let packet_value = Amount::from_yuan(200);
        CampaignTerms {
            id: CampaignId(1),
            name: "Suzhou Double Twelve e-CNY red packets".to_string(),
            sponsor: Sponsor {
                name: "Suzhou Municipal People's Government".to_string(),
                wallet: WalletId(1),
            },
            budget: Amount::from_fen(packet_value.fen() * i64::from(packet_count)),
            packet_count,
            packet_value,
            region: RegionCode(SUZHOU),
            eligibility: Eligibility {
                categories: Vec::new(),
                regions: Vec::new(),
                merchants: vec![MerchantId(360)],
            },
            registration,
            validity,
            offline_trial: true,
            seed_commitment,
        }
    }
}

/// Suzhou city, Jiangsu province.
const SUZHOU: u32 = 320_500;

/// A checked campaign: budget exactly packets × value, sane windows, eligible regions inside the
/// campaign's region, eligibility lists sorted and free of duplicates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Campaign {
    terms: CampaignTerms,
}

impl Campaign {
    pub fn new(mut terms: CampaignTerms) -> Result<Campaign, CampaignError> {
        check_money(&terms)?;
        for (what, name) in [
            ("campaign name", &terms.name),
            ("sponsor name", &terms.sponsor.name),
        ] {
            if name.trim().is_empty() || name.len() > CAMPAIGN_NAME_BYTES_MAX {
                return Err(CampaignError::BadName(what));
            }
        }
        check_windows(&terms)?;
        let eligibility = &mut terms.eligibility;
        for (what, count) in [
            ("category", eligibility.categories.len()),
            ("region", eligibility.regions.len()),
            ("merchant", eligibility.merchants.len()),
        ] {
            if count > ELIGIBLE_ENTRIES_MAX {
                return Err(CampaignError::TooManyEligible { what, count });
            }
        }
        if let Some(&outside) = eligibility
            .regions
            .iter()
            .find(|region| !terms.region.contains(**region))
        {
            return Err(CampaignError::RegionOutsideCampaign {
                eligible: outside,
                campaign: terms.region,
            });
        }
        // Sorted and unique, so that `is_eligible` can binary-search and two spellings of the
        // same campaign compare equal.
        eligibility.categories.sort_unstable();
        eligibility.categories.dedup();
        eligibility.regions.sort_unstable();
        eligibility.regions.dedup();
        eligibility.merchants.sort_unstable();
        eligibility.merchants.dedup();
        Ok(Campaign { terms })
    }

    pub fn terms(&self) -> &CampaignTerms {
        &self.terms
    }

    pub fn id(&self) -> CampaignId {
        self.terms.id
    }

    pub fn packet_count(&self) -> u32 {
        self.terms.packet_count
    }

    pub fn seed_commitment(&self) -> SeedCommitment {
        self.terms.seed_commitment
    }

    /// Whether a packet of this campaign may pay `merchant`.
    pub fn is_eligible(&self, merchant: &MerchantProfile) -> bool {
        self.check_merchant(merchant.id, merchant.category, merchant.region.code())
            .is_ok()
    }

    /// Whether a packet of this campaign may pay the merchant, and if not, why: the list first,
    /// then the category, then the region. `region` is the merchant's code as onboarded; one that
    /// is not a valid region code lies in no eligible region.
    pub fn check_merchant(
        &self,
        id: MerchantId,
        category: Mcc,
        region: u32,
    ) -> Result<(), Ineligible> {
        let eligibility = &self.terms.eligibility;
        if eligibility.merchants.binary_search(&id).is_ok() {
            return Ok(());
        }
        if !eligibility.categories.is_empty()
            && eligibility.categories.binary_search(&category).is_err()
        {
            return Err(Ineligible::Category(category));
        }
        let located = RegionCode::new(region).is_some_and(|region| {
            if eligibility.regions.is_empty() {
                self.terms.region.contains(region)
            } else {
                eligibility
                    .regions
                    .iter()
                    .any(|eligible| eligible.contains(region))
            }
        });
        if located {
            Ok(())
        } else {
            Err(Ineligible::Region(region))
        }
    }

    /// Parses a published campaign file (JSON, format `ecny/red-packet-campaign/v1`) and checks it.
    pub fn from_json(text: &str) -> Result<Campaign, CampaignError> {
        let file: CampaignFile = serde_json::from_str(text)
            .map_err(|error| CampaignError::MalformedFile(error.to_string()))?;
        Campaign::new(file.into_terms()?)
    }

    /// The campaign as a published file, pretty-printed JSON.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(&CampaignFile::from_terms(&self.terms))
            .expect("a campaign file is plain strings and numbers");
        text.push('\n');
        text
    }
}

fn check_money(terms: &CampaignTerms) -> Result<(), CampaignError> {
    if terms.packet_count == 0 {
        return Err(CampaignError::NoPackets);
    }
    if terms.packet_count > CAMPAIGN_PACKETS_MAX {
        return Err(CampaignError::TooManyPackets {
            count: terms.packet_count,
            max: CAMPAIGN_PACKETS_MAX,
        });
    }
    if !terms.packet_value.is_positive() {
        return Err(CampaignError::PacketValueNotPositive(terms.packet_value));
    }
    let expected = terms
        .packet_value
        .fen()
        .checked_mul(i64::from(terms.packet_count))
        .map(Amount::from_fen)
        .filter(|total| *total <= Amount::MAX)
        .ok_or(CampaignError::BudgetTooLarge {
            packet_count: terms.packet_count,
            packet_value: terms.packet_value,
        })?;
    if terms.budget != expected {
        return Err(CampaignError::BudgetMismatch {
            budget: terms.budget,
            packet_count: terms.packet_count,
            packet_value: terms.packet_value,
            expected,
        });
    }
    Ok(())
}

fn check_windows(terms: &CampaignTerms) -> Result<(), CampaignError> {
    for (what, window) in [
        ("registration", terms.registration),
        ("validity", terms.validity),
    ] {
        if window.closes_at_ms <= window.opens_at_ms {
            return Err(CampaignError::EmptyWindow(what));
        }
    }
    if terms.validity.opens_at_ms < terms.registration.closes_at_ms {
        return Err(CampaignError::ValidBeforeDraw {
            valid_from_ms: terms.validity.opens_at_ms,
            registration_closes_ms: terms.registration.closes_at_ms,
        });
    }
    Ok(())
}

impl CampaignTerms {
    /// The terms in the command log's byte encoding. Unchecked: `Campaign::new` checks them when
    /// the state machine applies the command.
    pub(crate) fn encode(&self, out: &mut Writer) {
        out.u32(self.id.0)
            .str(&self.name)
            .str(&self.sponsor.name)
            .u32(self.sponsor.wallet.0)
            .i64(self.budget.fen())
            .u32(self.packet_count)
            .i64(self.packet_value.fen())
            .u32(self.region.code());
        let eligibility = &self.eligibility;
        out.u32(eligibility.categories.len() as u32);
        for category in &eligibility.categories {
            out.u16(category.code());
        }
        out.u32(eligibility.regions.len() as u32);
        for region in &eligibility.regions {
            out.u32(region.code());
        }
        out.u32(eligibility.merchants.len() as u32);
        for merchant in &eligibility.merchants {
            out.u32(merchant.0);
        }
        for window in [self.registration, self.validity] {
            out.u64(window.opens_at_ms).u64(window.closes_at_ms);
        }
        out.u8(u8::from(self.offline_trial))
            .raw(&self.seed_commitment.0);
    }

    pub(crate) fn decode(input: &mut Reader<'_>) -> Result<CampaignTerms, DecodeError> {
        let bad = |what, input: &Reader<'_>| DecodeError {
            what,
            offset: input.offset(),
        };
        // A count is checked before anything is allocated for it, so garbage cannot ask for
        // gigabytes.
        let count = |input: &mut Reader<'_>, what| {
            let count = input.u32(what)? as usize;
            if count > ELIGIBLE_ENTRIES_MAX {
                return Err(bad(what, input));
            }
            Ok(count)
        };
        let region = |input: &mut Reader<'_>| {
            let code = input.u32("region")?;
            RegionCode::new(code).ok_or_else(|| bad("region", input))
        };
        let id = CampaignId(input.u32("campaign id")?);
        let name = input.string("campaign name")?;
        let sponsor = Sponsor {
            name: input.string("sponsor name")?,
            wallet: WalletId(input.u32("sponsor wallet")?),
        };
        let budget = Amount::from_fen(input.i64("budget")?);
        let packet_count = input.u32("packet count")?;
        let packet_value = Amount::from_fen(input.i64("packet value")?);
        let campaign_region = region(input)?;
        let categories = (0..count(input, "eligible category count")?)
            .map(|_| {
                let code = input.u16("eligible category")?;
                Mcc::new(code).ok_or_else(|| bad("eligible category", input))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let regions = (0..count(input, "eligible region count")?)
            .map(|_| region(input))
            .collect::<Result<Vec<_>, _>>()?;
        let merchants = (0..count(input, "eligible merchant count")?)
            .map(|_| input.u32("eligible merchant").map(MerchantId))
            .collect::<Result<Vec<_>, _>>()?;
        let mut window = |what| -> Result<Window, DecodeError> {
            Ok(Window {
                opens_at_ms: input.u64(what)?,
                closes_at_ms: input.u64(what)?,
            })
        };
        let registration = window("registration window")?;
        let validity = window("validity window")?;
        Ok(CampaignTerms {
            id,
            name,
            sponsor,
            budget,
            packet_count,
            packet_value,
            region: campaign_region,
            eligibility: Eligibility {
                categories,
                regions,
                merchants,
            },
            registration,
            validity,
            offline_trial: input.bool("offline trial")?,
            seed_commitment: SeedCommitment(input.array("seed commitment")?),
        })
    }
}

/// The published form: ids, amounts and codes as people write them (`RP000001`, `200.00`,
/// `5812`, `320500`), so that the file can be read and checked by hand.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CampaignFile {
    format: String,
    id: String,
    name: String,
    sponsor: SponsorFile,
    budget: String,
    packet_count: u32,
    packet_value: String,
    region: String,
    eligible: EligibleFile,
    registration: Window,
    validity: Window,
    offline_trial: bool,
    seed_commitment: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SponsorFile {
    name: String,
    wallet: String,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EligibleFile {
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default)]
    regions: Vec<String>,
    #[serde(default)]
    merchants: Vec<String>,
}

impl CampaignFile {
    fn from_terms(terms: &CampaignTerms) -> CampaignFile {
        CampaignFile {
            format: CAMPAIGN_FILE_FORMAT.to_string(),
            id: terms.id.to_string(),
            name: terms.name.clone(),
            sponsor: SponsorFile {
                name: terms.sponsor.name.clone(),
                wallet: terms.sponsor.wallet.to_string(),
            },
            budget: terms.budget.to_string(),
            packet_count: terms.packet_count,
            packet_value: terms.packet_value.to_string(),
            region: terms.region.to_string(),
            eligible: EligibleFile {
                categories: terms
                    .eligibility
                    .categories
                    .iter()
                    .map(Mcc::to_string)
                    .collect(),
                regions: terms
                    .eligibility
                    .regions
                    .iter()
                    .map(RegionCode::to_string)
                    .collect(),
                merchants: terms
                    .eligibility
                    .merchants
                    .iter()
                    .map(MerchantId::to_string)
                    .collect(),
            },
            registration: terms.registration,
            validity: terms.validity,
            offline_trial: terms.offline_trial,
            seed_commitment: terms.seed_commitment.to_hex(),
        }
    }

    fn into_terms(self) -> Result<CampaignTerms, CampaignError> {
        if self.format != CAMPAIGN_FILE_FORMAT {
            return Err(malformed_field(
                "format",
                &self.format,
                CAMPAIGN_FILE_FORMAT,
            ));
        }
        Ok(CampaignTerms {
            id: parse_field("id", &self.id)?,
            name: self.name,
            sponsor: Sponsor {
                name: self.sponsor.name,
                wallet: parse_field("sponsor.wallet", &self.sponsor.wallet)?,
            },
            budget: parse_field("budget", &self.budget)?,
            packet_count: self.packet_count,
            packet_value: parse_field("packet_value", &self.packet_value)?,
            region: self.region.parse()?,
            eligibility: Eligibility {
                categories: parse_all("eligible.categories", &self.eligible.categories)?,
                regions: parse_all("eligible.regions", &self.eligible.regions)?,
                merchants: parse_all("eligible.merchants", &self.eligible.merchants)?,
            },
            registration: self.registration,
            validity: self.validity,
            offline_trial: self.offline_trial,
            seed_commitment: SeedCommitment::from_hex(&self.seed_commitment).ok_or_else(|| {
                malformed_field("seed_commitment", &self.seed_commitment, "64 hex digits")
            })?,
        })
    }
}

/// The sponsor's commitment to its lottery seed, published with the terms before registration
/// opens: `SM3("ECNY-RED-PACKET-SEED-v1" || seed)` (`lottery::Seed::commitment`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SeedCommitment(pub [u8; 32]);

impl SeedCommitment {
    /// The commitment written as 64 hex digits; `None` for anything else.
    pub fn from_hex(text: &str) -> Option<SeedCommitment> {
        let mut bytes = [0u8; 32];
        decode_hex(text.trim(), &mut bytes).ok()?;
        Some(SeedCommitment(bytes))
    }

    pub fn to_hex(&self) -> String {
        encode_hex(&self.0)
    }
}

impl fmt::Display for SeedCommitment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

fn malformed_field(field: &str, text: &str, expected: &str) -> CampaignError {
    CampaignError::MalformedFile(format!("{field} is {text:?}, expected {expected}"))
}

fn parse_field<T: FromStr>(field: &str, text: &str) -> Result<T, CampaignError>
where
    T::Err: fmt::Display,
{
    text.parse()
        .map_err(|error: T::Err| CampaignError::MalformedFile(format!("{field}: {error}")))
}

fn parse_all<T: FromStr>(field: &str, texts: &[String]) -> Result<Vec<T>, CampaignError>
where
    T::Err: fmt::Display,
{
    texts.iter().map(|text| parse_field(field, text)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::programs::lottery::Seed;

    /// Suzhou, December 2020: registration 5–7 December, packets valid 11 December 20:00 to the
    /// end of 27 December (Beijing time).
    pub(crate) const REGISTRATION: Window = Window {
        opens_at_ms: 1_607_097_600_000,
        closes_at_ms: 1_607_356_800_000,
    };
    pub(crate) const VALIDITY: Window = Window {
        opens_at_ms: 1_607_688_000_000,
        closes_at_ms: 1_609_084_800_000,
    };

    fn suzhou() -> CampaignTerms {
        let seed = Seed::from_bytes([7; 32]);
        CampaignTerms::suzhou_pilot(100_000, seed.commitment(), REGISTRATION, VALIDITY)
    }

    fn region(code: u32) -> RegionCode {
        RegionCode::new(code).unwrap()
    }

    fn merchant(id: u32, category: u16, region_code: u32) -> MerchantProfile {
        MerchantProfile {
            id: MerchantId(id),
            category: Mcc::new(category).unwrap(),
            region: region(region_code),
        }
    }

    #[test]
    fn suzhou_hands_out_twenty_million_yuan_in_200_yuan_packets() {
        let campaign = Campaign::new(suzhou()).unwrap();
        assert_eq!(campaign.terms().budget, Amount::from_yuan(20_000_000));
        assert_eq!(campaign.terms().budget.fen(), 2_000_000_000);
        assert_eq!(campaign.packet_count(), 100_000);
    }

    #[test]
    fn a_budget_that_is_not_packets_times_value_is_refused_to_the_fen() {
        let mut terms = suzhou();
        terms.budget = Amount::from_fen(2_000_000_001);
        let error = Campaign::new(terms).unwrap_err();
        assert_eq!(error.code(), "CAMPAIGN_BUDGET_MISMATCH");
        assert!(
            error
                .to_string()
                .contains("100000 packets × 200.00 = 20000000.00"),
            "{error}"
        );
    }

    #[test]
    fn bad_money_is_refused_with_its_reason() {
        type Spoil = fn(&mut CampaignTerms);
        let cases: [(Spoil, &str); 4] = [
            (|t| t.packet_count = 0, "CAMPAIGN_NO_PACKETS"),
            (
                |t| t.packet_count = CAMPAIGN_PACKETS_MAX + 1,
                "CAMPAIGN_TOO_MANY_PACKETS",
            ),
            (
                |t| t.packet_value = Amount::ZERO,
                "CAMPAIGN_PACKET_VALUE_NOT_POSITIVE",
            ),
            (
                |t| t.packet_value = Amount::from_fen(i64::MAX / 2),
                "CAMPAIGN_BUDGET_TOO_LARGE",
            ),
        ];
        for (spoil, code) in cases {
            let mut terms = suzhou();
            spoil(&mut terms);
            assert_eq!(Campaign::new(terms).unwrap_err().code(), code);
        }
    }

    #[test]
    fn windows_must_be_open_and_packets_valid_only_after_the_draw() {
        let mut terms = suzhou();
        terms.registration.closes_at_ms = terms.registration.opens_at_ms;
        assert_eq!(
            Campaign::new(terms).unwrap_err(),
            CampaignError::EmptyWindow("registration")
        );
        let mut terms = suzhou();
        terms.validity.opens_at_ms = REGISTRATION.closes_at_ms - 1;
        assert_eq!(
            Campaign::new(terms).unwrap_err().code(),
            "CAMPAIGN_VALID_BEFORE_DRAW"
        );
        let mut terms = suzhou();
        terms.name = "  ".to_string();
        assert_eq!(
            Campaign::new(terms).unwrap_err(),
            CampaignError::BadName("campaign name")
        );
    }

    #[test]
    fn regions_nest_province_city_district() {
        let (jiangsu, suzhou_city, huqiu, nanjing) = (
            region(320_000),
            region(320_500),
            region(320_505),
            region(320_100),
        );
        assert!(jiangsu.contains(suzhou_city) && jiangsu.contains(huqiu));
        assert!(suzhou_city.contains(huqiu) && suzhou_city.contains(suzhou_city));
        assert!(!suzhou_city.contains(nanjing) && !suzhou_city.contains(jiangsu));
        assert!(huqiu.contains(huqiu) && !huqiu.contains(region(320_506)));
        assert_eq!("320505".parse::<RegionCode>().unwrap(), huqiu);
        for bad in ["32050", "3205050", "32O505", "000000", "990000", ""] {
            assert_eq!(
                bad.parse::<RegionCode>().unwrap_err().code(),
                "REGION_MALFORMED",
                "{bad}"
            );
        }
    }

    #[test]
    fn an_eligible_region_outside_the_campaign_is_refused() {
        let mut terms = suzhou();
        terms.eligibility.regions = vec![region(320_505), region(440_300)];
        assert_eq!(
            Campaign::new(terms).unwrap_err(),
            CampaignError::RegionOutsideCampaign {
                eligible: region(440_300),
                campaign: region(320_500)
            }
        );
    }

    #[test]
    fn packets_pay_merchants_in_region_and_category_or_on_the_list() {
        let mut terms = suzhou();
        terms.eligibility.categories = vec![Mcc::new(5812).unwrap(), Mcc::new(5411).unwrap()];
        terms.eligibility.regions = vec![region(320_505), region(320_506)];
        let campaign = Campaign::new(terms).unwrap();
        // A restaurant in Huqiu district: right category, right place.
        assert!(campaign.is_eligible(&merchant(10, 5812, 320_505)));
        // A jeweller in Huqiu: wrong category.
        assert!(!campaign.is_eligible(&merchant(11, 5944, 320_505)));
        // A restaurant elsewhere in Suzhou, outside the listed districts.
        assert!(!campaign.is_eligible(&merchant(12, 5812, 320_507)));
        // A restaurant in Nanjing.
        assert!(!campaign.is_eligible(&merchant(13, 5812, 320_105)));
        // The listed online shop, registered in Beijing, selling electronics.
        assert!(campaign.is_eligible(&merchant(360, 5732, 110_105)));
    }

    #[test]
    fn an_ineligible_merchant_is_told_why() {
        let mut terms = suzhou();
        terms.eligibility.categories = vec![Mcc::new(5812).unwrap()];
        let campaign = Campaign::new(terms).unwrap();
        let jeweller = campaign.check_merchant(MerchantId(11), Mcc::new(5944).unwrap(), 320_505);
        assert_eq!(jeweller, Err(Ineligible::Category(Mcc::new(5944).unwrap())));
        assert_eq!(
            jeweller.unwrap_err().to_string(),
            "merchant category 5944 not eligible"
        );
        let shanghai = campaign.check_merchant(MerchantId(12), Mcc::new(5812).unwrap(), 310_115);
        assert_eq!(
            shanghai.unwrap_err().to_string(),
            "merchant region 310115 outside the eligible regions"
        );
        // A region code that is no region at all is outside every region.
        assert_eq!(
            campaign.check_merchant(MerchantId(13), Mcc::new(5812).unwrap(), 0),
            Err(Ineligible::Region(0))
        );
        // The listed online shop: any category, anywhere.
        assert_eq!(
            campaign.check_merchant(MerchantId(360), Mcc::new(5999).unwrap(), 0),
            Ok(())
        );
    }

    #[test]
    fn terms_round_trip_through_the_log_encoding_and_garbage_is_refused() {
        let mut terms = suzhou();
        terms.eligibility.categories = vec![Mcc::new(5812).unwrap(), Mcc::new(742).unwrap()];
        terms.eligibility.regions = vec![region(320_505)];
        let mut out = Writer::new();
        terms.encode(&mut out);
        let decoded = CampaignTerms::decode(&mut Reader::new(&out.bytes)).unwrap();
        assert_eq!(decoded, terms);
        for cut in [0, 10, out.bytes.len() - 1] {
            assert!(CampaignTerms::decode(&mut Reader::new(&out.bytes[..cut])).is_err());
        }
        // A category count far beyond the limit is refused before anything is allocated.
        let count_at = 4 + 2 + terms.name.len() + 2 + terms.sponsor.name.len() + 4 + 8 + 4 + 8 + 4;
        let mut huge = out.bytes.clone();
        huge[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let error = CampaignTerms::decode(&mut Reader::new(&huge)).unwrap_err();
        assert_eq!(error.what, "eligible category count");
    }

    #[test]
    fn with_no_category_or_region_listed_any_merchant_in_the_city_is_eligible() {
        let campaign = Campaign::new(suzhou()).unwrap();
        assert!(campaign.is_eligible(&merchant(10, 5944, 320_583)));
        assert!(!campaign.is_eligible(&merchant(10, 5944, 310_115)));
    }

    #[test]
    fn the_campaign_file_round_trips_and_names_bad_fields() {
        let mut terms = suzhou();
        terms.eligibility.categories = vec![Mcc::new(742).unwrap(), Mcc::new(742).unwrap()];
        let campaign = Campaign::new(terms).unwrap();
        let text = campaign.to_json();
        assert!(text.contains("\"0742\""), "{text}");
        assert!(text.contains("\"20000000.00\""), "{text}");
        assert_eq!(Campaign::from_json(&text).unwrap(), campaign);

        let bad_budget = text.replace("\"20000000.00\"", "\"19999999.99\"");
        assert_eq!(
            Campaign::from_json(&bad_budget).unwrap_err().code(),
            "CAMPAIGN_BUDGET_MISMATCH"
        );
        let bad_wallet = text.replace("\"W0000000001\"", "\"0000000001\"");
        let error = Campaign::from_json(&bad_wallet).unwrap_err();
        assert_eq!(error.code(), "CAMPAIGN_FILE_MALFORMED");
        assert!(error.to_string().contains("sponsor.wallet"), "{error}");
        let unknown_field = text.replace("\"offline_trial\"", "\"offline_trail\"");
        assert_eq!(
            Campaign::from_json(&unknown_field).unwrap_err().code(),
            "CAMPAIGN_FILE_MALFORMED"
        );
        let bad_commitment = text.replace(&campaign.seed_commitment().to_hex(), "abc");
        let error = Campaign::from_json(&bad_commitment).unwrap_err();
        assert!(error.to_string().contains("seed_commitment"), "{error}");
    }
}
