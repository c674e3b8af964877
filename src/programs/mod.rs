//! Programmable money: red-packet campaigns and their lottery, and smart contracts.
//!
//! A sponsor (a city government) defines a campaign (`campaign`): a budget split into packets of
//! one value, where they may be spent and when. People register; after registration closes a
//! reproducible, verifiable lottery (`lottery`) draws the winners from a seed the sponsor committed
//! to in advance and from the published registrant list; winners are told by SMS through their
//! wallets' operators (`notices`).
//!
//! The registration center runs campaigns in its ledger (`red_packets`): the pool a sponsor funds,
//! one packet account per winner, every packet's spending, refunds and what returns to the
//! sponsor at the end; the state machine moves the money and re-runs the draw itself on replay.
//!
//! Smart contracts (`contracts`) are vetted templates: escrow, prepaid fees released per delivered
//! unit, scheduled and recurring payments; the state machine moves their money through the ledger.
//!
//! Everything here is pure: no clock (times are handed in), no disk (files are parsed from and
//! rendered to strings), no randomness (the seed is handed in). That is what lets anyone re-run a
//! draw and get the same winners.

pub mod campaign;
pub mod contracts;
pub mod lottery;
pub mod notices;
pub mod red_packets;

pub use campaign::{
    Campaign, CampaignError, CampaignTerms, Eligibility, Ineligible, MerchantProfile, RegionCode,
    Sponsor, Window,
};
pub use lottery::{
    verify_reveal, Draw, LotteryError, Registrant, RegistrantList, RegistrationBook, Seed,
    SeedCommitment,
};
pub use notices::{winner_notices, WinnerSms};
