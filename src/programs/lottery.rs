//! The red-packet lottery: a commit–reveal seed, the published registrant list and a draw that
//! anyone can re-run to the same winners.
//!
//! # Protocol
//!
//! 1. Before registration closes, the sponsor picks a secret 32-byte seed `S` and publishes, with
//!    the campaign, `commitment = SM3("ECNY-RED-PACKET-SEED-v1" || S)`.
//! 2. People register during the registration window. At close, the registrant list is put in
//!    canonical order and its digest `D` is published.
//! 3. After close, the sponsor reveals `S`; anyone checks it against the commitment and re-runs
//!    the draw from `S`, the published list and the campaign.
//!
//! # The registrant list and its digest
//!
//! A registrant is a wallet id (`u32`) and an opt-in flag for the offline-wallet trial. The
//! canonical list holds each wallet once (a wallet registered twice is opted in if any of its
//! registrations opted in), in ascending wallet id. Its digest is
//!
//! ```text
//! D = SM3("ECNY-RED-PACKET-REGISTRANTS-v1" || u64be(n) || for each registrant in order:
//!         u32be(wallet id) || u8(1 if opted in to the offline trial, else 0))
//! ```
//!
//! A single running hash rather than a Merkle root: re-running the draw needs the whole list
//! anyway (every registrant's position shapes the outcome), so a Merkle tree's short inclusion
//! proofs would save a verifier nothing, while a flat hash is one pass over 5 bytes a registrant
//! that any SM3 tool can recompute: about 20 ms for a million registrants, where a Merkle tree
//! would take two million SM3 calls, about a second.
//!
//! # The draw
//!
//! Inputs: the seed `S`, the list digest `D`, the campaign id `C` (the `u32` in `RP000001`), the
//! campaign's packet count `k` and the canonical list of `n` registrants.
//!
//! ```text
//! K        = SM3("ECNY-RED-PACKET-DRAW-v1" || S || D || u32be(C) || u32be(k))
//! block j  = SM3(K || u64be(j))                     for j = 0, 1, 2, …
//! words    = each block split into four u64be words, blocks in order, each word used once
//! below(b) = t = 2^64 mod b; take words until one, x, has x >= t; return x mod b
//! a        = [0, 1, …, n − 1]
//! for i in 0 .. min(k, n):  j = i + below(n − i); swap a[i] and a[j]
//! winner of packet i + 1 = registrant at position a[i] of the canonical list
//! ```
//!
//! That is a partial Fisher–Yates shuffle: every ordered selection of `min(k, n)` distinct
//! registrants is equally likely. Rejecting words below `t` removes the modulo bias (the rejection
//! probability is below `b / 2^64`, so at most a handful of words are ever discarded); `below(1)`
//! still consumes a word. Winners are published in draw order, packet 1 first.
//!
//! # What it protects against, and what it does not
//!
//! Registrants cannot steer the draw: the seed is secret until registration closes. The sponsor
//! cannot choose the winners after the fact: the seed is fixed by the commitment and the list by
//! its digest, so any change shows in `Draw::verify`. The sponsor does know the seed while
//! registration is open, so a sponsor able to add registrations of its own could try lists until
//! friends win; registrations must therefore come through the operators, and the list digest be
//! published at close, before the seed is revealed.

use std::collections::HashSet;
use std::fmt;

use foldhash::fast::RandomState;

use serde::{Deserialize, Serialize};
use sm3::{Digest, Sm3};
use thiserror::Error;

use crate::certs::{decode_hex, encode_hex, sm3_parts};
use crate::ids::{CampaignId, WalletId};
pub use crate::programs::campaign::SeedCommitment;
use crate::programs::campaign::{Campaign, Window};
use crate::time::china_date_time;

/// Bytes in a lottery seed: 256 bits, so the commitment cannot be inverted by guessing.
pub const SEED_BYTES: usize = 32;
/// Largest registrant list one draw accepts (a province-wide campaign); it bounds the draw's
/// memory at about 12 bytes a registrant.
pub const REGISTRANTS_MAX: usize = 100_000_000;
/// The file format tag of a published draw.
pub const DRAW_FILE_FORMAT: &str = "ecny/red-packet-draw/v1";
/// The registrant file's marker for an opt-in to the offline-wallet trial.
pub const OFFLINE_TRIAL_MARK: &str = "offline-trial";

const SEED_TAG: &[u8] = b"ECNY-RED-PACKET-SEED-v1";
const REGISTRANTS_TAG: &[u8] = b"ECNY-RED-PACKET-REGISTRANTS-v1";
const DRAW_TAG: &[u8] = b"ECNY-RED-PACKET-DRAW-v1";
const WORDS_PER_BLOCK: usize = 4;
/// Registrants hashed per SM3 update when digesting the list.
const DIGEST_CHUNK_REGISTRANTS: usize = 4096;

/// Why a registration, a draw or a verification is refused. Each has a stable code.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LotteryError {
    #[error("seed is not {SEED_BYTES} bytes written as {} hex digits", SEED_BYTES * 2)]
    SeedMalformed,
    #[error("seed commitment is not {SEED_BYTES} bytes written as {} hex digits", SEED_BYTES * 2)]
    CommitmentMalformed,
    #[error("the revealed seed does not match the commitment published with the campaign ({commitment}); it is the wrong seed")]
    SeedDoesNotMatchCommitment { commitment: SeedCommitment },
    #[error("registration for {campaign} is open from {} to {} Beijing time; {} is outside it", china_date_time(window.opens_at_ms), china_date_time(window.closes_at_ms), china_date_time(*at_ms))]
    RegistrationNotOpen {
        campaign: CampaignId,
        window: Window,
        at_ms: u64,
    },
    #[error("campaign {0} offers no offline-wallet trial to opt in to")]
    OfflineTrialNotOffered(CampaignId),
    #[error("{count} registrants is more than the {REGISTRANTS_MAX} one draw accepts")]
    TooManyRegistrants { count: usize },
    #[error("registrants line {line}: {text:?} is not a wallet id (e.g. W0000000001), optionally followed by \"{OFFLINE_TRIAL_MARK}\"")]
    RegistrantLineMalformed { line: usize, text: String },
    #[error("registration for {campaign} is open until {} Beijing time (now {}): the list cannot be closed, nor the seed revealed and drawn, before then", china_date_time(*closes_at_ms), china_date_time(*now_ms))]
    RegistrationStillOpen {
        campaign: CampaignId,
        closes_at_ms: u64,
        now_ms: u64,
    },
    #[error("draw file: {0}")]
    DrawFileMalformed(String),
    #[error("the draw is for campaign {draw}, the campaign file is {campaign}")]
    CampaignMismatch {
        draw: CampaignId,
        campaign: CampaignId,
    },
    #[error("the draw publishes seed commitment {draw}, the campaign published {campaign}")]
    CommitmentMismatch {
        draw: SeedCommitment,
        campaign: SeedCommitment,
    },
    #[error("the draw is for {draw} packets, the campaign has {campaign}")]
    PacketCountMismatch { draw: u32, campaign: u32 },
    #[error("registrant list differs: the draw used {draw_count} registrants with digest {draw_digest}, this list has {list_count} with digest {list_digest}")]
    RegistrantsMismatch {
        draw_count: u64,
        draw_digest: RegistrantsDigest,
        list_count: u64,
        list_digest: RegistrantsDigest,
    },
    #[error("the draw lists {published} winners; re-running it gives {drawn}")]
    WinnerCountMismatch { published: usize, drawn: usize },
    #[error("winner set differs in {differing} places; first at packet {packet}: the draw lists {published}, re-running it gives {drawn}")]
    WinnersMismatch {
        differing: usize,
        packet: usize,
        published: WalletId,
        drawn: WalletId,
    },
}

impl LotteryError {
    /// Machine-readable code; stable across releases, unlike the message.
    pub fn code(&self) -> &'static str {
        use LotteryError::*;
        match self {
            SeedMalformed => "SEED_MALFORMED",
            CommitmentMalformed => "SEED_COMMITMENT_MALFORMED",
            SeedDoesNotMatchCommitment { .. } => "SEED_COMMITMENT_MISMATCH",
            RegistrationNotOpen { .. } => "REGISTRATION_NOT_OPEN",
            OfflineTrialNotOffered(_) => "OFFLINE_TRIAL_NOT_OFFERED",
            TooManyRegistrants { .. } => "REGISTRANTS_TOO_MANY",
            RegistrantLineMalformed { .. } => "REGISTRANTS_MALFORMED",
            RegistrationStillOpen { .. } => "REGISTRATION_STILL_OPEN",
            DrawFileMalformed(_) => "DRAW_FILE_MALFORMED",
            CampaignMismatch { .. } => "DRAW_CAMPAIGN_MISMATCH",
            CommitmentMismatch { .. } => "DRAW_COMMITMENT_MISMATCH",
            PacketCountMismatch { .. } => "DRAW_PACKET_COUNT_MISMATCH",
            RegistrantsMismatch { .. } => "REGISTRANTS_DIGEST_MISMATCH",
            WinnerCountMismatch { .. } => "WINNER_COUNT_MISMATCH",
            WinnersMismatch { .. } => "WINNERS_MISMATCH",
        }
    }
}

/// The sponsor's secret until the reveal. Its `Debug` hides the bytes so that a log line cannot
/// leak it early.
#[derive(Clone, PartialEq, Eq)]
pub struct Seed([u8; SEED_BYTES]);

impl Seed {
    pub const fn from_bytes(bytes: [u8; SEED_BYTES]) -> Seed {
        Seed(bytes)
    }

    pub fn from_hex(text: &str) -> Result<Seed, LotteryError> {
        let mut bytes = [0u8; SEED_BYTES];
        decode_hex(text.trim(), &mut bytes).map_err(|_| LotteryError::SeedMalformed)?;
        Ok(Seed(bytes))
    }

    pub fn to_hex(&self) -> String {
        encode_hex(&self.0)
    }

    pub const fn as_bytes(&self) -> &[u8; SEED_BYTES] {
        &self.0
    }

    /// What the sponsor publishes before registration closes.
    pub fn commitment(&self) -> SeedCommitment {
        SeedCommitment(sm3_parts(&[SEED_TAG, &self.0]))
    }
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seed(…)")
    }
}

/// Checks a revealed seed against the commitment published before registration closed.
pub fn verify_reveal(commitment: SeedCommitment, seed: &Seed) -> Result<(), LotteryError> {
    if seed.commitment() == commitment {
        Ok(())
    } else {
        Err(LotteryError::SeedDoesNotMatchCommitment { commitment })
    }
}

/// The SM3 digest of a canonical registrant list (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RegistrantsDigest(pub [u8; 32]);

impl RegistrantsDigest {
    pub fn from_hex(text: &str) -> Option<RegistrantsDigest> {
        let mut bytes = [0u8; 32];
        decode_hex(text.trim(), &mut bytes).ok()?;
        Some(RegistrantsDigest(bytes))
    }

    pub fn to_hex(&self) -> String {
        encode_hex(&self.0)
    }
}

impl fmt::Display for RegistrantsDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// One registration: a pseudonymous wallet (the program never sees a name or phone number) and
/// whether its holder opted in to the offline-wallet trial.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Registrant {
    pub wallet: WalletId,
    pub offline_trial: bool,
}

/// The registrants in canonical order — each wallet once, ascending — with their digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrantList {
    registrants: Vec<Registrant>,
    digest: RegistrantsDigest,
}

impl RegistrantList {
    /// Puts registrations in canonical order: sorted by wallet, one entry per wallet, opted in to
    /// the offline trial if any of that wallet's registrations opted in.
    pub fn from_registrations(
        mut registrations: Vec<Registrant>,
    ) -> Result<RegistrantList, LotteryError> {
        // Sorting by (wallet, opt-in) puts a wallet's opted-in entry last; keeping the last of
        // each run of equal wallets keeps the opt-in.
        registrations.sort_unstable();
        registrations.dedup_by(|later, earlier| {
            let same_wallet = later.wallet == earlier.wallet;
            if same_wallet {
                earlier.offline_trial |= later.offline_trial;
            }
            same_wallet
        });
        if registrations.len() > REGISTRANTS_MAX {
            return Err(LotteryError::TooManyRegistrants {
                count: registrations.len(),
            });
        }
        let digest = digest_registrants(&registrations);
        Ok(RegistrantList {
            registrants: registrations,
            digest,
        })
    }

    /// Reads a registrant file: one wallet id per line (`W0000000001`), optionally followed by
    /// `offline-trial`; blank lines and lines starting with `#` are skipped. Any order, and
    /// duplicates are allowed: the list is put in canonical order.
    pub fn parse(text: &str) -> Result<RegistrantList, LotteryError> {
        let mut registrations = Vec::with_capacity(text.len() / 12);
        for (index, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let malformed = || LotteryError::RegistrantLineMalformed {
                line: index + 1,
                text: line.to_string(),
            };
            let mut fields = trimmed.split_ascii_whitespace();
            let wallet = fields
                .next()
                .and_then(|field| WalletId::parse_canonical(field).ok())
                .ok_or_else(malformed)?;
            let offline_trial = match fields.next() {
                None => false,
                Some(OFFLINE_TRIAL_MARK) => true,
                Some(_) => return Err(malformed()),
            };
            if fields.next().is_some() {
                return Err(malformed());
            }
            registrations.push(Registrant {
                wallet,
                offline_trial,
            });
        }
        RegistrantList::from_registrations(registrations)
    }

    /// The canonical registrant file, the one to publish with the draw.
    pub fn to_text(&self) -> String {
        let mut text = String::with_capacity(self.registrants.len() * 12);
        for registrant in &self.registrants {
            use std::fmt::Write as _;
            let _ = write!(text, "{}", registrant.wallet);
            if registrant.offline_trial {
                text.push(' ');
                text.push_str(OFFLINE_TRIAL_MARK);
            }
            text.push('\n');
        }
        text
    }

    pub fn registrants(&self) -> &[Registrant] {
        &self.registrants
    }

    pub fn len(&self) -> usize {
        self.registrants.len()
    }

    pub fn is_empty(&self) -> bool {
        self.registrants.is_empty()
    }

    pub fn digest(&self) -> RegistrantsDigest {
        self.digest
    }

    /// Whether `wallet` is registered (a holder checking the published list).
    pub fn contains(&self, wallet: WalletId) -> bool {
        self.registrants
            .binary_search_by_key(&wallet, |registrant| registrant.wallet)
            .is_ok()
    }
}

fn digest_registrants(registrants: &[Registrant]) -> RegistrantsDigest {
    let mut hasher = Sm3::new();
    hasher.update(REGISTRANTS_TAG);
    hasher.update((registrants.len() as u64).to_be_bytes());
    // Hash in chunks: one SM3 update per registrant would cost more than the hashing itself.
    let mut chunk = Vec::with_capacity(DIGEST_CHUNK_REGISTRANTS * 5);
    for batch in registrants.chunks(DIGEST_CHUNK_REGISTRANTS) {
        chunk.clear();
        for registrant in batch {
            chunk.extend_from_slice(&registrant.wallet.0.to_be_bytes());
            chunk.push(u8::from(registrant.offline_trial));
        }
        hasher.update(&chunk);
    }
    RegistrantsDigest(hasher.finalize().into())
}

/// Takes registrations while a campaign's registration window is open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrationBook {
    campaign: CampaignId,
    window: Window,
    offline_trial_offered: bool,
    registrations: Vec<Registrant>,
    /// The wallets among `registrations`, so that a person's other wallet is found at once.
    registered: HashSet<WalletId, RandomState>,
}

impl RegistrationBook {
    pub fn new(campaign: &Campaign) -> RegistrationBook {
        let terms = campaign.terms();
        RegistrationBook {
            campaign: terms.id,
            window: terms.registration,
            offline_trial_offered: terms.offline_trial,
            registrations: Vec::new(),
            registered: HashSet::default(),
        }
    }

    /// A book holding `registrations` already taken, as a snapshot recorded them.
    pub fn restore(campaign: &Campaign, registrations: Vec<Registrant>) -> RegistrationBook {
        RegistrationBook {
            registered: registrations.iter().map(|r| r.wallet).collect(),
            registrations,
            ..RegistrationBook::new(campaign)
        }
    }

    /// Whether `wallet` has registered.
    pub fn is_registered(&self, wallet: WalletId) -> bool {
        self.registered.contains(&wallet)
    }

    /// Registrations in the order they were taken, repeats included.
    pub fn registrations(&self) -> &[Registrant] {
        &self.registrations
    }

    /// Registers `wallet` at `at_ms`; registering again is harmless (and may add the opt-in).
    pub fn register(
        &mut self,
        wallet: WalletId,
        offline_trial: bool,
        at_ms: u64,
    ) -> Result<(), LotteryError> {
        if !self.window.contains(at_ms) {
            return Err(LotteryError::RegistrationNotOpen {
                campaign: self.campaign,
                window: self.window,
                at_ms,
            });
        }
        if offline_trial && !self.offline_trial_offered {
            return Err(LotteryError::OfflineTrialNotOffered(self.campaign));
        }
        if self.registrations.len() >= REGISTRANTS_MAX {
            return Err(LotteryError::TooManyRegistrants {
                count: self.registrations.len() + 1,
            });
        }
        self.registrations.push(Registrant {
            wallet,
            offline_trial,
        });
        self.registered.insert(wallet);
        Ok(())
    }

    /// The canonical list, once registration has closed.
    pub fn close(self, now_ms: u64) -> Result<RegistrantList, LotteryError> {
        if now_ms < self.window.closes_at_ms {
            return Err(LotteryError::RegistrationStillOpen {
                campaign: self.campaign,
                closes_at_ms: self.window.closes_at_ms,
                now_ms,
            });
        }
        RegistrantList::from_registrations(self.registrations)
    }
}

/// The SM3 counter-mode word stream of the draw.
struct DrawStream {
    key: [u8; 32],
    block: [u8; 32],
    next_block: u64,
    next_word: usize,
}

impl DrawStream {
    fn new(
        seed: &Seed,
        digest: RegistrantsDigest,
        campaign: CampaignId,
        packets: u32,
    ) -> DrawStream {
        let key = sm3_parts(&[
            DRAW_TAG,
            &seed.0,
            &digest.0,
            &campaign.0.to_be_bytes(),
            &packets.to_be_bytes(),
        ]);
        DrawStream {
            key,
            block: [0; 32],
            next_block: 0,
            next_word: WORDS_PER_BLOCK,
        }
    }

    fn word(&mut self) -> u64 {
        if self.next_word == WORDS_PER_BLOCK {
            self.block = sm3_parts(&[&self.key, &self.next_block.to_be_bytes()]);
            self.next_block += 1;
            self.next_word = 0;
        }
        let start = self.next_word * 8;
        self.next_word += 1;
        u64::from_be_bytes(self.block[start..start + 8].try_into().expect("8 bytes"))
    }

    /// Uniform in `[0, bound)`: words below `2^64 mod bound` are discarded so that every residue
    /// is hit by the same number of words.
    fn below(&mut self, bound: u64) -> u64 {
        debug_assert!(bound > 0, "a draw among no one");
        let threshold = bound.wrapping_neg() % bound;
        loop {
            let word = self.word();
            if word >= threshold {
                return word % bound;
            }
        }
    }
}

/// The positions in the canonical list of the winners of packets 1, 2, …, `min(packets, n)`:
/// the algorithm of the module documentation.
pub fn draw_positions(
    seed: &Seed,
    digest: RegistrantsDigest,
    campaign: CampaignId,
    packets: u32,
    registrants: usize,
) -> Vec<u32> {
    assert!(
        registrants <= REGISTRANTS_MAX,
        "registrant list over its limit"
    );
    let winners = registrants.min(packets as usize);
    let mut stream = DrawStream::new(seed, digest, campaign, packets);
    let mut positions: Vec<u32> = (0..registrants as u32).collect();
    for i in 0..winners {
        let j = i + stream.below((registrants - i) as u64) as usize;
        positions.swap(i, j);
    }
    positions.truncate(winners);
    positions
}

/// A draw as published: everything anyone needs, with the campaign file and the registrant
/// list, to re-run it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draw {
    pub campaign: CampaignId,
    pub packets: u32,
    pub seed_commitment: SeedCommitment,
    pub seed: Seed,
    pub registrants: u64,
    pub registrants_digest: RegistrantsDigest,
    /// Winners in draw order: the winner of packet 1 first.
    pub winners: Vec<WalletId>,
}

impl Draw {
    /// Reveals `seed` and draws the campaign's winners among `list`. Refused before registration
    /// closes (a seed known earlier would let registrants be chosen to win) and for a seed that
    /// does not match the campaign's commitment.
    pub fn run(
        campaign: &Campaign,
        list: &RegistrantList,
        seed: Seed,
        now_ms: u64,
    ) -> Result<Draw, LotteryError> {
        let closes_at_ms = campaign.terms().registration.closes_at_ms;
        if now_ms < closes_at_ms {
            return Err(LotteryError::RegistrationStillOpen {
                campaign: campaign.id(),
                closes_at_ms,
                now_ms,
            });
        }
        verify_reveal(campaign.seed_commitment(), &seed)?;
        let winners = winners_of(campaign, list, &seed);
        debug_assert_eq!(
            winners.len(),
            list.len().min(campaign.packet_count() as usize)
        );
        Ok(Draw {
            campaign: campaign.id(),
            packets: campaign.packet_count(),
            seed_commitment: campaign.seed_commitment(),
            seed,
            registrants: list.len() as u64,
            registrants_digest: list.digest(),
            winners,
        })
    }

    /// Re-runs the draw from the campaign, the list and the published seed, and checks that it
    /// gives exactly the published winners. Returns the number of winners; the error names the
    /// first thing that differs.
    pub fn verify(
        &self,
        campaign: &Campaign,
        list: &RegistrantList,
    ) -> Result<usize, LotteryError> {
        if self.campaign != campaign.id() {
            return Err(LotteryError::CampaignMismatch {
                draw: self.campaign,
                campaign: campaign.id(),
            });
        }
        if self.seed_commitment != campaign.seed_commitment() {
            return Err(LotteryError::CommitmentMismatch {
                draw: self.seed_commitment,
                campaign: campaign.seed_commitment(),
            });
        }
        verify_reveal(campaign.seed_commitment(), &self.seed)?;
        if self.packets != campaign.packet_count() {
            return Err(LotteryError::PacketCountMismatch {
                draw: self.packets,
                campaign: campaign.packet_count(),
            });
        }
        if self.registrants != list.len() as u64 || self.registrants_digest != list.digest() {
            return Err(LotteryError::RegistrantsMismatch {
                draw_count: self.registrants,
                draw_digest: self.registrants_digest,
                list_count: list.len() as u64,
                list_digest: list.digest(),
            });
        }
        let drawn = winners_of(campaign, list, &self.seed);
        if drawn.len() != self.winners.len() {
            return Err(LotteryError::WinnerCountMismatch {
                published: self.winners.len(),
                drawn: drawn.len(),
            });
        }
        let mut differences = self
            .winners
            .iter()
            .zip(&drawn)
            .enumerate()
            .filter(|(_, (published, drawn))| published != drawn);
        if let Some((index, (&published, &drawn_wallet))) = differences.next() {
            return Err(LotteryError::WinnersMismatch {
                differing: 1 + differences.count(),
                packet: index + 1,
                published,
                drawn: drawn_wallet,
            });
        }
        Ok(drawn.len())
    }

    /// Parses a published draw file (JSON, format `ecny/red-packet-draw/v1`).
    pub fn from_json(text: &str) -> Result<Draw, LotteryError> {
        let malformed = |what: String| LotteryError::DrawFileMalformed(what);
        let file: DrawFile =
            serde_json::from_str(text).map_err(|error| malformed(error.to_string()))?;
        if file.format != DRAW_FILE_FORMAT {
            return Err(malformed(format!(
                "format is {:?}, expected {DRAW_FILE_FORMAT:?}",
                file.format
            )));
        }
        let winners = file
            .winners
            .iter()
            .map(|text| WalletId::parse_canonical(text))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| malformed(format!("winners: {error}")))?;
        Ok(Draw {
            campaign: file
                .campaign
                .parse()
                .map_err(|error| malformed(format!("campaign: {error}")))?,
            packets: file.packets,
            seed_commitment: SeedCommitment::from_hex(&file.seed_commitment).ok_or_else(|| {
                malformed(format!(
                    "seed_commitment: {}",
                    LotteryError::CommitmentMalformed
                ))
            })?,
            seed: Seed::from_hex(&file.seed)
                .map_err(|error| malformed(format!("seed: {error}")))?,
            registrants: file.registrants,
            registrants_digest: RegistrantsDigest::from_hex(&file.registrants_digest)
                .ok_or_else(|| malformed("registrants_digest is not 64 hex digits".to_string()))?,
            winners,
        })
    }

    /// The draw as a published file: pretty-printed JSON, one winner a line.
    pub fn to_json(&self) -> String {
        let file = DrawFile {
            format: DRAW_FILE_FORMAT.to_string(),
            campaign: self.campaign.to_string(),
            packets: self.packets,
            seed_commitment: self.seed_commitment.to_hex(),
            seed: self.seed.to_hex(),
            registrants: self.registrants,
            registrants_digest: self.registrants_digest.to_hex(),
            winners: self.winners.iter().map(WalletId::to_string).collect(),
        };
        let mut text =
            serde_json::to_string_pretty(&file).expect("a draw file is plain strings and numbers");
        text.push('\n');
        text
    }
}

fn winners_of(campaign: &Campaign, list: &RegistrantList, seed: &Seed) -> Vec<WalletId> {
    draw_positions(
        seed,
        list.digest(),
        campaign.id(),
        campaign.packet_count(),
        list.len(),
    )
    .into_iter()
    .map(|position| list.registrants[position as usize].wallet)
    .collect()
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DrawFile {
    format: String,
    campaign: String,
    packets: u32,
    seed_commitment: String,
    seed: String,
    registrants: u64,
    registrants_digest: String,
    winners: Vec<String>,
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;
    use crate::certs::sm3;
    use crate::programs::campaign::CampaignTerms;

    const REGISTRATION: Window = Window {
        opens_at_ms: 1_607_097_600_000,
        closes_at_ms: 1_607_356_800_000,
    };
    const VALIDITY: Window = Window {
        opens_at_ms: 1_607_688_000_000,
        closes_at_ms: 1_609_084_800_000,
    };
    const AFTER_CLOSE_MS: u64 = REGISTRATION.closes_at_ms;

    fn seed(n: u64) -> Seed {
        Seed::from_bytes(sm3(&n.to_be_bytes()))
    }

    fn campaign(packets: u32, seed: &Seed) -> Campaign {
        Campaign::new(CampaignTerms::suzhou_pilot(
            packets,
            seed.commitment(),
            REGISTRATION,
            VALIDITY,
        ))
        .unwrap()
    }

    fn list(wallets: impl IntoIterator<Item = u32>) -> RegistrantList {
        RegistrantList::from_registrations(
            wallets
                .into_iter()
                .map(|id| Registrant {
                    wallet: WalletId(id),
                    offline_trial: id % 3 == 0,
                })
                .collect(),
        )
        .unwrap()
    }

    fn drawn(packets: u32, registrants: &RegistrantList, seed_number: u64) -> (Campaign, Draw) {
        let campaign = campaign(packets, &seed(seed_number));
        let draw = Draw::run(&campaign, registrants, seed(seed_number), AFTER_CLOSE_MS).unwrap();
        (campaign, draw)
    }

    #[test]
    fn the_commitment_opens_only_with_its_seed() {
        let commitment = seed(1).commitment();
        assert_eq!(
            commitment.0,
            sm3_parts(&[b"ECNY-RED-PACKET-SEED-v1", &seed(1).0])
        );
        assert_eq!(verify_reveal(commitment, &seed(1)), Ok(()));
        let error = verify_reveal(commitment, &seed(2)).unwrap_err();
        assert_eq!(error.code(), "SEED_COMMITMENT_MISMATCH");
        assert_eq!(format!("{:?}", seed(1)), "Seed(…)");
        assert_eq!(Seed::from_hex(&seed(1).to_hex()).unwrap(), seed(1));
        for bad in ["", "00", &"g".repeat(64), &"0".repeat(66)] {
            assert_eq!(Seed::from_hex(bad).unwrap_err().code(), "SEED_MALFORMED");
        }
    }

    #[test]
    fn a_draw_is_reproducible_and_verifies() {
        let registrants = list(1..=1_000);
        let (campaign, first) = drawn(100, &registrants, 1);
        let (_, again) = drawn(100, &registrants, 1);
        assert_eq!(first, again);
        assert_eq!(first.verify(&campaign, &registrants), Ok(100));
        let (_, other_seed) = drawn(100, &registrants, 2);
        assert_ne!(first.winners, other_seed.winners);
    }

    #[test]
    fn winners_are_distinct_registrants_and_as_many_as_packets_allow() {
        for (registrants, packets, expected) in [(1_000, 100, 100), (30, 100, 30), (100, 100, 100)]
        {
            let registrant_list = list((0..registrants).map(|i| 7 * i + 5));
            let (_, draw) = drawn(packets, &registrant_list, 3);
            assert_eq!(draw.winners.len(), expected);
            let unique: HashSet<_> = draw.winners.iter().collect();
            assert_eq!(unique.len(), expected, "a wallet won twice");
            assert!(draw.winners.iter().all(|w| registrant_list.contains(*w)));
        }
        let (campaign, nobody) = drawn(10, &list([]), 3);
        assert!(nobody.winners.is_empty());
        assert_eq!(nobody.verify(&campaign, &list([])), Ok(0));
    }

    #[test]
    fn a_wrong_seed_fails_the_draw_and_the_verification() {
        let registrants = list(1..=500);
        let campaign = campaign(50, &seed(1));
        let error = Draw::run(&campaign, &registrants, seed(2), AFTER_CLOSE_MS).unwrap_err();
        assert_eq!(error.code(), "SEED_COMMITMENT_MISMATCH");

        let mut draw = Draw::run(&campaign, &registrants, seed(1), AFTER_CLOSE_MS).unwrap();
        draw.seed = seed(2);
        let error = draw.verify(&campaign, &registrants).unwrap_err();
        assert_eq!(error.code(), "SEED_COMMITMENT_MISMATCH");
        assert!(error.to_string().contains("wrong seed"), "{error}");

        // A draw published under another commitment is caught before its seed is even tried.
        draw.seed_commitment = seed(2).commitment();
        let error = draw.verify(&campaign, &registrants).unwrap_err();
        assert_eq!(error.code(), "DRAW_COMMITMENT_MISMATCH");
    }

    #[test]
    fn the_seed_cannot_be_revealed_and_drawn_before_registration_closes() {
        let campaign = campaign(5, &seed(1));
        let error = Draw::run(&campaign, &list(1..=50), seed(1), AFTER_CLOSE_MS - 1).unwrap_err();
        assert_eq!(error.code(), "REGISTRATION_STILL_OPEN");
    }

    #[test]
    fn a_tampered_registrant_list_fails_verification() {
        let registrants = list(1..=500);
        let (campaign, draw) = drawn(50, &registrants, 4);
        let tampered: [RegistrantList; 3] = [
            list(2..=500),                  // someone left out
            list((1..=500).chain([9_999])), // someone slipped in
            list((1..=499).chain([501])),   // someone swapped
        ];
        for list in &tampered {
            let error = draw.verify(&campaign, list).unwrap_err();
            assert_eq!(error.code(), "REGISTRANTS_DIGEST_MISMATCH");
        }
        // Even an opt-in flag is covered by the digest.
        let mut flipped = registrants.registrants().to_vec();
        flipped[0].offline_trial = !flipped[0].offline_trial;
        let flipped = RegistrantList::from_registrations(flipped).unwrap();
        assert_eq!(
            draw.verify(&campaign, &flipped).unwrap_err().code(),
            "REGISTRANTS_DIGEST_MISMATCH"
        );
        // The same registrants in another order and with repeats are the same list.
        let shuffled = list((1..=500).rev().chain(1..=20));
        assert_eq!(draw.verify(&campaign, &shuffled), Ok(50));
    }

    #[test]
    fn a_tampered_winner_list_fails_verification() {
        let registrants = list(1..=500);
        let (campaign, draw) = drawn(50, &registrants, 5);
        let loser = (1..=500)
            .map(WalletId)
            .find(|w| !draw.winners.contains(w))
            .unwrap();

        let mut replaced = draw.clone();
        replaced.winners[17] = loser;
        assert_eq!(
            replaced.verify(&campaign, &registrants).unwrap_err(),
            LotteryError::WinnersMismatch {
                differing: 1,
                packet: 18,
                published: loser,
                drawn: draw.winners[17],
            }
        );

        let mut reordered = draw.clone();
        reordered.winners.swap(0, 1);
        let error = reordered.verify(&campaign, &registrants).unwrap_err();
        assert!(matches!(
            error,
            LotteryError::WinnersMismatch {
                differing: 2,
                packet: 1,
                ..
            }
        ));

        let mut short = draw.clone();
        short.winners.pop();
        assert_eq!(
            short.verify(&campaign, &registrants).unwrap_err().code(),
            "WINNER_COUNT_MISMATCH"
        );

        let mut other_campaign = draw.clone();
        other_campaign.campaign = CampaignId(2);
        assert_eq!(
            other_campaign
                .verify(&campaign, &registrants)
                .unwrap_err()
                .code(),
            "DRAW_CAMPAIGN_MISMATCH"
        );
    }

    #[test]
    fn registration_is_taken_only_in_its_window_and_opt_in_only_when_offered() {
        let mut terms =
            CampaignTerms::suzhou_pilot(2, seed(1).commitment(), REGISTRATION, VALIDITY);
        let mut book = RegistrationBook::new(&Campaign::new(terms.clone()).unwrap());
        let open = REGISTRATION.opens_at_ms;
        book.register(WalletId(9), false, open).unwrap();
        book.register(WalletId(4), false, open + 1).unwrap();
        book.register(WalletId(9), true, open + 2).unwrap();
        book.register(WalletId(9), false, open + 3).unwrap();
        for late_or_early in [open - 1, REGISTRATION.closes_at_ms] {
            let error = book
                .register(WalletId(5), false, late_or_early)
                .unwrap_err();
            assert_eq!(error.code(), "REGISTRATION_NOT_OPEN");
        }
        let error = book
            .clone()
            .close(REGISTRATION.closes_at_ms - 1)
            .unwrap_err();
        assert_eq!(error.code(), "REGISTRATION_STILL_OPEN");
        let closed = book.close(REGISTRATION.closes_at_ms).unwrap();
        let expected = [(4, false), (9, true)].map(|(id, offline_trial)| Registrant {
            wallet: WalletId(id),
            offline_trial,
        });
        assert_eq!(closed.registrants(), expected);

        terms.offline_trial = false;
        let mut book = RegistrationBook::new(&Campaign::new(terms).unwrap());
        let error = book.register(WalletId(1), true, open).unwrap_err();
        assert_eq!(error.code(), "OFFLINE_TRIAL_NOT_OFFERED");
    }

    #[test]
    fn the_registrant_file_round_trips_and_names_a_bad_line() {
        let text = "# registrants\nW0000000042\n\n  W0000000007 offline-trial \nW0000000042\n";
        let parsed = RegistrantList::parse(text).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed.to_text(), "W0000000007 offline-trial\nW0000000042\n");
        assert_eq!(RegistrantList::parse(&parsed.to_text()).unwrap(), parsed);
        for (bad, line) in [
            ("W0000000001\nW0000000002\n42\n", 3),
            ("W0000000001 offline\n", 1),
            ("W0000000001 offline-trial yes\n", 1),
            ("W99999999999\n", 1),
            // Only the documented ten-digit form: the file is hashed as published.
            ("W0000000001\nW313\n", 2),
            ("W00000000313\n", 1),
        ] {
            assert_eq!(
                RegistrantList::parse(bad).unwrap_err(),
                LotteryError::RegistrantLineMalformed {
                    line,
                    text: bad.lines().nth(line - 1).unwrap().to_string()
                }
            );
        }
    }

    #[test]
    fn the_draw_file_round_trips_and_refuses_what_it_cannot_read() {
        let registrants = list(1..=300);
        let (campaign, draw) = drawn(20, &registrants, 6);
        let text = draw.to_json();
        let read = Draw::from_json(&text).unwrap();
        assert_eq!(read, draw);
        assert_eq!(read.verify(&campaign, &registrants), Ok(20));
        for spoiled in [
            text.replace(DRAW_FILE_FORMAT, "ecny/red-packet-draw/v0"),
            text.replace("\"RP000001\"", "\"RPx\""),
            text.replace(&draw.winners[3].to_string(), "W-3"),
            // Only the documented ten-digit form of a wallet id.
            text.replace(
                &draw.winners[3].to_string(),
                &format!("W{}", draw.winners[3].0),
            ),
            text.replace(&draw.seed.to_hex(), "00"),
            text.replace("\"packets\"", "\"packet\""),
        ] {
            assert_eq!(
                Draw::from_json(&spoiled).unwrap_err().code(),
                "DRAW_FILE_MALFORMED"
            );
        }
    }

    #[test]
    fn the_list_digest_is_the_documented_bytes() {
        let registrants = list([300, 2, 0x0102_0304]);
        let mut bytes = b"ECNY-RED-PACKET-REGISTRANTS-v1".to_vec();
        bytes.extend_from_slice(&3u64.to_be_bytes());
        bytes.extend_from_slice(&[0, 0, 0, 2, 0]);
        bytes.extend_from_slice(&[0, 0, 1, 44, 1]); // 300 is a multiple of 3: opted in
        bytes.extend_from_slice(&[1, 2, 3, 4, 0]);
        assert_eq!(registrants.digest().0, sm3(&bytes));
        // Longer than one hashing chunk, so the chunking cannot change the digest.
        let long = list(0..(DIGEST_CHUNK_REGISTRANTS as u32 * 2 + 7));
        let mut bytes = b"ECNY-RED-PACKET-REGISTRANTS-v1".to_vec();
        bytes.extend_from_slice(&(long.len() as u64).to_be_bytes());
        for registrant in long.registrants() {
            bytes.extend_from_slice(&registrant.wallet.0.to_be_bytes());
            bytes.push(u8::from(registrant.offline_trial));
        }
        assert_eq!(long.digest().0, sm3(&bytes));
    }

    /// The module documentation's algorithm written out again, as an independent implementation
    /// would write it from the text alone.
    fn draw_as_documented(
        seed: &[u8; 32],
        digest: &[u8; 32],
        campaign: u32,
        k: u32,
        n: usize,
    ) -> Vec<usize> {
        let key = sm3(&[
            &b"ECNY-RED-PACKET-DRAW-v1"[..],
            seed,
            digest,
            &campaign.to_be_bytes(),
            &k.to_be_bytes(),
        ]
        .concat());
        let mut words = (0u64..).flat_map(|j| {
            let block = sm3(&[&key[..], &j.to_be_bytes()].concat());
            (0..4).map(move |w| u64::from_be_bytes(block[w * 8..w * 8 + 8].try_into().unwrap()))
        });
        let mut below = |b: u64| {
            let t = ((1u128 << 64) % u128::from(b)) as u64;
            loop {
                let x = words.next().unwrap();
                if x >= t {
                    return x % b;
                }
            }
        };
        let mut a: Vec<usize> = (0..n).collect();
        for i in 0..(k as usize).min(n) {
            let j = i + below((n - i) as u64) as usize;
            a.swap(i, j);
        }
        a.truncate((k as usize).min(n));
        a
    }

    #[test]
    fn the_draw_is_the_documented_algorithm() {
        for (n, k, s) in [
            (1_000, 100, 1),
            (10, 10, 2),
            (5, 9, 3),
            (1, 1, 4),
            (0, 3, 5),
        ] {
            let registrants = list(1..=n);
            let expected =
                draw_as_documented(&seed(s).0, &registrants.digest().0, 1, k, n as usize);
            let positions =
                draw_positions(&seed(s), registrants.digest(), CampaignId(1), k, n as usize);
            let positions: Vec<usize> = positions.into_iter().map(|p| p as usize).collect();
            assert_eq!(positions, expected);
        }
    }

    #[test]
    fn a_known_draw_stays_the_same_across_releases() {
        // Values from scripts/lottery_verify.py, written from the module documentation alone.
        let seed = Seed::from_hex(&"00".repeat(32)).unwrap();
        let registrants = list(1..=10);
        assert_eq!(
            registrants.digest().to_hex(),
            "1f022c83332688cdfb8607787ae1907a51a4b3379a52b33edc8e5f44935849b4"
        );
        let positions = draw_positions(&seed, registrants.digest(), CampaignId(1), 3, 10);
        assert_eq!(positions, [0, 3, 9]);
        let everyone = draw_positions(&seed, registrants.digest(), CampaignId(1), 10, 10);
        assert_eq!(everyone, [5, 2, 7, 4, 1, 8, 9, 0, 3, 6]);
    }

    #[test]
    fn rejection_sampling_discards_exactly_the_words_below_the_threshold() {
        // With a bound just over 2^63, about half of all words fall below the threshold.
        let bound = (1u64 << 63) + 1;
        let threshold = bound.wrapping_neg() % bound;
        assert_eq!(threshold, (1u64 << 63) - 1);
        let mut stream = DrawStream::new(&seed(1), RegistrantsDigest([0; 32]), CampaignId(1), 1);
        let mut words = DrawStream::new(&seed(1), RegistrantsDigest([0; 32]), CampaignId(1), 1);
        let mut discarded = 0;
        for _ in 0..1_000 {
            let value = stream.below(bound);
            assert!(value < bound);
            let accepted = loop {
                let word = words.word();
                if word >= threshold {
                    break word;
                }
                discarded += 1;
            };
            assert_eq!(value, accepted % bound);
        }
        // As many words discarded as accepted on average: 1,000, with a sigma of about 45.
        assert!(
            (850..1_150).contains(&discarded),
            "{discarded} words discarded"
        );
    }

    /// The chi-square value beyond which a fair draw lands with probability 0.001 (the
    /// Wilson–Hilferty approximation, within 1 % of the tables for these degrees of freedom).
    fn chi_square_critical_0_001(degrees: f64) -> f64 {
        let z = 3.090_232; // standard normal quantile at 0.999
        let a = 2.0 / (9.0 * degrees);
        degrees * (1.0 - a + z * a.sqrt()).powi(3)
    }

    fn chi_square(counts: &[u64], expected: f64) -> f64 {
        counts
            .iter()
            .map(|&count| (count as f64 - expected).powi(2) / expected)
            .sum()
    }

    #[test]
    fn small_draws_pick_every_ordered_pair_and_every_packet_equally_often() {
        // 42,000 draws of 3 packets among 8 registrants, seeds 0, 1, 2, …: fixed, so the test
        // gives the same answer every run.
        const REGISTRANTS: usize = 8;
        const PACKETS: u32 = 3;
        const DRAWS: u64 = 42_000;
        let registrants = list(1..=REGISTRANTS as u32);
        let mut by_packet = [[0u64; REGISTRANTS]; PACKETS as usize];
        let mut first_two = [0u64; REGISTRANTS * REGISTRANTS];
        for draw in 0..DRAWS {
            let positions = draw_positions(
                &seed(draw),
                registrants.digest(),
                CampaignId(1),
                PACKETS,
                REGISTRANTS,
            );
            for (packet, &position) in positions.iter().enumerate() {
                by_packet[packet][position as usize] += 1;
            }
            first_two[positions[0] as usize * REGISTRANTS + positions[1] as usize] += 1;
        }
        for (packet, counts) in by_packet.iter().enumerate() {
            let statistic = chi_square(counts, DRAWS as f64 / REGISTRANTS as f64);
            let critical = chi_square_critical_0_001((REGISTRANTS - 1) as f64);
            assert!(
                statistic < critical,
                "packet {packet}: χ² = {statistic:.1} ≥ {critical:.1}"
            );
        }
        // Ordered pairs of distinct registrants for packets 1 and 2: 56 cells, none on the diagonal.
        let pairs: Vec<u64> = (0..REGISTRANTS * REGISTRANTS)
            .filter(|cell| cell / REGISTRANTS != cell % REGISTRANTS)
            .map(|cell| first_two[cell])
            .collect();
        assert!((0..REGISTRANTS).all(|i| first_two[i * REGISTRANTS + i] == 0));
        let cells = (REGISTRANTS * (REGISTRANTS - 1)) as f64;
        let statistic = chi_square(&pairs, DRAWS as f64 / cells);
        let critical = chi_square_critical_0_001(cells - 1.0);
        assert!(
            statistic < critical,
            "pairs: χ² = {statistic:.1} ≥ {critical:.1}"
        );
    }

    proptest! {
        #[test]
        fn any_draw_is_reproducible_fair_in_size_and_verifies(
            wallets in proptest::collection::vec(any::<u32>(), 0..400),
            packets in 1u32..300,
            seed_bytes in any::<[u8; 32]>(),
        ) {
            let registrants = list(wallets);
            let seed = Seed::from_bytes(seed_bytes);
            let campaign = campaign(packets, &seed);
            let draw = Draw::run(&campaign, &registrants, seed.clone(), AFTER_CLOSE_MS).unwrap();
            prop_assert_eq!(draw.winners.len(), registrants.len().min(packets as usize));
            let unique: HashSet<_> = draw.winners.iter().collect();
            prop_assert_eq!(unique.len(), draw.winners.len());
            prop_assert!(draw.winners.iter().all(|w| registrants.contains(*w)));
            prop_assert_eq!(&Draw::run(&campaign, &registrants, seed, AFTER_CLOSE_MS).unwrap(), &draw);
            prop_assert_eq!(Draw::from_json(&draw.to_json()).unwrap().verify(&campaign, &registrants), Ok(draw.winners.len()));
        }

        #[test]
        fn any_other_seed_fails_verification(
            seed_bytes in any::<[u8; 32]>(),
            other_bytes in any::<[u8; 32]>(),
        ) {
            prop_assume!(seed_bytes != other_bytes);
            let registrants = list(1..=50);
            let campaign = campaign(5, &Seed::from_bytes(seed_bytes));
            let mut draw = Draw::run(&campaign, &registrants, Seed::from_bytes(seed_bytes), AFTER_CLOSE_MS).unwrap();
            draw.seed = Seed::from_bytes(other_bytes);
            prop_assert_eq!(draw.verify(&campaign, &registrants).unwrap_err().code(), "SEED_COMMITMENT_MISMATCH");
        }

        #[test]
        fn any_registrant_added_or_removed_changes_the_digest(
            wallets in proptest::collection::btree_set(any::<u32>(), 1..200),
            newcomer in any::<u32>(),
            leaver in any::<prop::sample::Index>(),
        ) {
            let registrants = list(wallets.iter().copied());
            let gone = *leaver.get(&wallets.iter().copied().collect::<Vec<_>>());
            prop_assert_ne!(list(wallets.iter().copied().filter(|w| *w != gone)).digest(), registrants.digest());
            if !wallets.contains(&newcomer) {
                prop_assert_ne!(list(wallets.iter().copied().chain([newcomer])).digest(), registrants.digest());
            }
        }

        #[test]
        fn parsing_arbitrary_registrant_text_never_panics(text in "(W[0-9]{0,11}( offline-trial)?\n|.{0,12}\n){0,8}") {
            let _ = RegistrantList::parse(&text);
        }
    }
}
