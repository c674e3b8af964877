//! Red-packet campaigns as the registration center runs them: each campaign's registrations, its
//! pool, the packets its draw handed out, every payment a packet made and what went back to the
//! sponsor. This book never moves money; the state machine moves it by ledger transfers and tells
//! the book, and the audit checks that the two agree.
//!
//! # Where the money is
//!
//! - Funding moves the whole budget from the sponsor's wallet into the campaign's **pool**, an
//!   e-CNY account of its own (`AccountKind::RedPacketPool`).
//! - The draw opens one **packet account** (`AccountKind::RedPacket`) per winner and moves one
//!   packet's value from the pool into each. A packet account belongs to one (campaign, winner):
//!   the ledger's double entry, its per-account history and the audit cover every packet as they
//!   cover a wallet, the wallet's own balance stays exactly what the holder put in (so the balance
//!   cap is never filled by a gift), and handing out 100,000 packets is 100,000 appends to two
//!   vectors — no scan, no rebalancing. A per-campaign sub-ledger inside this book would have
//!   saved those accounts but put packet balances outside the ledger that the audit replays.
//! - A payment to an eligible merchant spends packets first (soonest to expire first), each by a
//!   transfer from its packet account, then the wallet's own balance for the rest; all legs are
//!   linked, so the payment happens whole or not at all.
//! - A refund undoes a payment in reverse: the wallet's own part first, then the packets' part,
//!   back into the packets while they are valid, to the sponsor once the campaign has ended (a
//!   refund must not turn restricted money into the holder's own).
//! - At the end of validity the state machine sweeps what each packet still holds back into the
//!   pool and returns the pool to the sponsor's wallet.
//!
//! So a funded pool always holds `budget − distributed + reclaimed − returned`, and a packet
//! `value − spent − reclaimed`.

use std::collections::HashMap;
use std::fmt;

use foldhash::fast::RandomState;

use crate::amount::Amount;
use crate::channels::acquiring::PaymentChannel;
use crate::channels::emvco::Mcc;
use crate::codec::{DecodeError, Reader, Writer};
use crate::error::PacketUnusable;
use crate::ids::{AccountId, CampaignId, EventId, MerchantId, WalletId};
use crate::programs::campaign::{Campaign, CampaignTerms, Window};
use crate::programs::lottery::{
    Draw, LotteryError, Registrant, RegistrantList, RegistrationBook, Seed,
};

/// Packets swept back into their pool per log entry at most, so that one entry's work stays
/// bounded; a larger campaign finishes expiring over the next entries. The Suzhou campaign's
/// 100,000 packets expire in one entry.
pub const EXPIRY_PACKETS_PER_ENTRY_MAX: usize = 131_072;

fn plus(a: Amount, b: Amount) -> Amount {
    Amount::from_fen(a.fen() + b.fen())
}

fn minus(a: Amount, b: Amount) -> Amount {
    Amount::from_fen(a.fen() - b.fen())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum CampaignStatus {
    /// Created; taking registrations, or waiting for its draw.
    Open = 1,
    /// Packets handed out; spendable during the validity window.
    Drawn = 2,
    /// Validity over: what was unspent went back to the sponsor.
    Expired = 3,
}

impl CampaignStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Open => "open",
            CampaignStatus::Drawn => "drawn",
            CampaignStatus::Expired => "expired",
        }
    }

    fn from_u8(value: u8) -> Option<CampaignStatus> {
        [
            CampaignStatus::Open,
            CampaignStatus::Drawn,
            CampaignStatus::Expired,
        ]
        .into_iter()
        .find(|status| *status as u8 == value)
    }
}

/// One winner's packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    pub wallet: WalletId,
    pub account: AccountId,
    /// Spent at merchants, net of refunds credited back into the packet.
    pub spent: Amount,
    /// Swept back into the pool when the campaign expired.
    pub reclaimed: Amount,
}

/// One packet's part of one merchant payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketSpend {
    /// The merchant payment: its first transfer, as the acquiring book knows it.
    pub payment: EventId,
    /// Index of the packet in draw order (packet 1 is index 0).
    pub packet: u32,
    pub merchant: MerchantId,
    pub category: Mcc,
    pub channel: PaymentChannel,
    pub amount: Amount,
    /// Given back by refunds, into the packet or to the sponsor.
    pub refunded: Amount,
    pub at_ms: u64,
}

/// A packet by its campaign and index, as the per-wallet index keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PacketRef {
    pub campaign: CampaignId,
    pub packet: u32,
}

/// A spend by its campaign and index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SpendRef {
    pub campaign: CampaignId,
    pub spend: u32,
}

/// A campaign and everything the center recorded for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CampaignBook {
    campaign: Campaign,
    pub created_at_ms: u64,
    pub status: CampaignStatus,
    pub pool: Option<AccountId>,
    pub funding: Option<EventId>,
    /// Registrations while open; emptied by the draw, which keeps the canonical list instead.
    registrations: RegistrationBook,
    registrants: Option<RegistrantList>,
    seed: Option<Seed>,
    pub drawn_at_ms: Option<u64>,
    packets: Vec<Packet>,
    spends: Vec<PacketSpend>,
    /// Moved from the pool into packets by the draw.
    pub distributed: Amount,
    /// Swept from packets back into the pool at expiry.
    pub reclaimed: Amount,
    /// Moved from the pool back to the sponsor at expiry (undrawn and unspent value).
    pub returned: Amount,
    /// Packet parts of refunds made after the campaign ended, paid to the sponsor directly.
    pub refunded_to_sponsor: Amount,
    /// The next packet the expiry sweep looks at.
    sweep_next: u32,
}

impl CampaignBook {
    /// The packets to damage: only for tests that prove the audit catches it.
    #[cfg(test)]
    pub(crate) fn packets_mut_for_test(&mut self) -> &mut [Packet] {
        &mut self.packets
    }

    fn new(campaign: Campaign, created_at_ms: u64) -> CampaignBook {
        CampaignBook {
            registrations: RegistrationBook::new(&campaign),
            campaign,
            created_at_ms,
            status: CampaignStatus::Open,
            pool: None,
            funding: None,
            registrants: None,
            seed: None,
            drawn_at_ms: None,
            packets: Vec::new(),
            spends: Vec::new(),
            distributed: Amount::ZERO,
            reclaimed: Amount::ZERO,
            returned: Amount::ZERO,
            refunded_to_sponsor: Amount::ZERO,
            sweep_next: 0,
        }
    }

    pub fn campaign(&self) -> &Campaign {
        &self.campaign
    }

    pub fn terms(&self) -> &CampaignTerms {
        self.campaign.terms()
    }

    pub fn id(&self) -> CampaignId {
        self.campaign.id()
    }

    pub fn packets(&self) -> &[Packet] {
        &self.packets
    }

    pub fn spends(&self) -> &[PacketSpend] {
        &self.spends
    }

    /// Registrations taken so far, repeats included (empty once drawn).
    pub fn registrations(&self) -> &[Registrant] {
        self.registrations.registrations()
    }

    /// The canonical registrant list the draw ran over, to publish with it.
    pub fn registrant_list(&self) -> Option<&RegistrantList> {
        self.registrants.as_ref()
    }

    /// The published draw: anyone re-runs it from the campaign and the registrant list.
    pub fn draw(&self) -> Option<Draw> {
        let (list, seed) = (self.registrants.as_ref()?, self.seed.clone()?);
        Some(Draw {
            campaign: self.id(),
            packets: self.campaign.packet_count(),
            seed_commitment: self.campaign.seed_commitment(),
            seed,
            registrants: list.len() as u64,
            registrants_digest: list.digest(),
            winners: self.packets.iter().map(|packet| packet.wallet).collect(),
        })
    }

    /// What the packet still holds.
    pub fn packet_balance(&self, packet: &Packet) -> Amount {
        minus(
            minus(self.terms().packet_value, packet.spent),
            packet.reclaimed,
        )
    }

    /// What the pool must hold by this book.
    pub fn pool_expected(&self) -> Amount {
        if self.funding.is_none() {
            return Amount::ZERO;
        }
        minus(
            plus(minus(self.terms().budget, self.distributed), self.reclaimed),
            self.returned,
        )
    }

    /// Whether packets may be spent at `now`: drawn and inside the validity window.
    pub fn spendable_at(&self, now_ms: u64) -> bool {
        self.status == CampaignStatus::Drawn && self.terms().validity.contains(now_ms)
    }

    /// Whether `wallet` has registered (before the draw).
    pub fn is_registered(&self, wallet: WalletId) -> bool {
        self.registrations.is_registered(wallet)
    }

    /// Takes a registration while the window is open.
    pub fn register(
        &mut self,
        wallet: WalletId,
        offline_trial: bool,
        now_ms: u64,
    ) -> Result<(), LotteryError> {
        self.registrations.register(wallet, offline_trial, now_ms)
    }
}

/// What a payment takes from one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlannedSpend {
    pub packet: PacketRef,
    pub account: AccountId,
    pub amount: Amount,
}

/// A holder's packet as seen at one merchant at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketAtMerchant {
    pub packet: PacketRef,
    pub balance: Amount,
    pub validity: Window,
    pub usable: Result<(), PacketUnusable>,
}

/// Where one leg of a refund goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefundTarget {
    /// Back into the packet, restricted again.
    Packet(AccountId),
    /// The campaign has ended: to the sponsor's wallet.
    Sponsor(WalletId),
}

/// How a refund of a payment that spent packets splits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundSplit {
    pub to_wallet: Amount,
    pub to_packets: Vec<(SpendRef, RefundTarget, Amount)>,
}

/// One line of a redemption report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RedemptionLine<K> {
    pub key: K,
    /// Merchant payments that used a packet of the campaign.
    pub payments: u64,
    /// Packet value they took, net of refunds.
    pub amount: Amount,
}

/// What a campaign's packets paid for, and what went back to its sponsor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedemptionReport {
    pub campaign: CampaignId,
    pub name: String,
    pub status: CampaignStatus,
    pub budget: Amount,
    pub packet_value: Amount,
    pub packets_drawn: u64,
    pub distributed: Amount,
    /// Packets that paid for anything (net of refunds).
    pub packets_used: u64,
    pub payments: u64,
    /// Packet value spent at merchants, net of refunds.
    pub spent: Amount,
    /// Packet value refunded by merchants (back into packets, or to the sponsor after the end).
    pub refunded: Amount,
    /// Still in packets.
    pub unspent: Amount,
    /// Back with the sponsor: the undrawn and unspent value, and late refunds.
    pub returned: Amount,
    pub by_category: Vec<RedemptionLine<Mcc>>,
    pub by_channel: Vec<RedemptionLine<PaymentChannel>>,
}

impl fmt::Display for RedemptionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let yuan = |amount: Amount| amount.yuan_sign().to_string();
        writeln!(
            f,
            "Red-packet campaign {} \"{}\" ({})",
            self.campaign,
            self.name,
            self.status.as_str()
        )?;
        writeln!(
            f,
            "  budget {}: {} packets of {} drawn, {} handed out",
            yuan(self.budget),
            self.packets_drawn,
            yuan(self.packet_value),
            yuan(self.distributed)
        )?;
        writeln!(
            f,
            "  packets used {}, in {} payments; spent {} (net of {} refunded)",
            self.packets_used,
            self.payments,
            yuan(self.spent),
            yuan(self.refunded)
        )?;
        writeln!(
            f,
            "  still in packets {}; returned to the sponsor {}",
            yuan(self.unspent),
            yuan(self.returned)
        )?;
        writeln!(f, "  by merchant category   payments  {:>18}", "amount")?;
        for line in &self.by_category {
            writeln!(
                f,
                "    {:<20} {:>9}  {:>18}",
                line.key.to_string(),
                line.payments,
                yuan(line.amount)
            )?;
        }
        writeln!(f, "  by channel             payments  {:>18}", "amount")?;
        for line in &self.by_channel {
            writeln!(
                f,
                "    {:<20} {:>9}  {:>18}",
                line.key.as_str(),
                line.payments,
                yuan(line.amount)
            )?;
        }
        // Packets stay online: the registration center never loads them into a secure element.
        write!(
            f,
            "    {:<20} {:>9}  {:>18}",
            "offline", "—", "not applicable"
        )
    }
}

/// Every campaign, and the indexes payments need.
#[derive(Clone, Debug)]
pub struct RedPackets {
    campaigns: Vec<CampaignBook>,
    // Indexes rebuilt from the books above: a wallet's packets in (campaign, packet) order, a
    // payment's spends in the order they were spent.
    packets_of: HashMap<WalletId, Vec<PacketRef>, RandomState>,
    spends_of: HashMap<EventId, Vec<SpendRef>, RandomState>,
    /// The earliest validity end of a campaign not yet expired; `u64::MAX` when none.
    next_expiry_ms: u64,
}

impl Default for RedPackets {
    fn default() -> RedPackets {
        RedPackets {
            campaigns: Vec::new(),
            packets_of: HashMap::default(),
            spends_of: HashMap::default(),
            // No campaign: nothing ever falls due.
            next_expiry_ms: u64::MAX,
        }
    }
}

impl PartialEq for RedPackets {
    fn eq(&self, other: &RedPackets) -> bool {
        // The indexes follow from the books.
        self.campaigns == other.campaigns
    }
}

impl Eq for RedPackets {}

impl RedPackets {
    /// The books to damage: only for tests that prove the audit catches it.
    #[cfg(test)]
    pub(crate) fn campaigns_mut_for_test(&mut self) -> &mut [CampaignBook] {
        &mut self.campaigns
    }

    pub fn campaigns(&self) -> &[CampaignBook] {
        &self.campaigns
    }

    pub fn get(&self, id: CampaignId) -> Option<&CampaignBook> {
        id.index()
            .checked_sub(1)
            .and_then(|index| self.campaigns.get(index))
    }

    pub(crate) fn get_mut(&mut self, id: CampaignId) -> Option<&mut CampaignBook> {
        id.index()
            .checked_sub(1)
            .and_then(|index| self.campaigns.get_mut(index))
    }

    pub fn next_id(&self) -> CampaignId {
        CampaignId(self.campaigns.len() as u32 + 1)
    }

    /// Adds a checked campaign; its id must be the next one.
    pub(crate) fn create(&mut self, campaign: Campaign, now_ms: u64) {
        assert_eq!(campaign.id(), self.next_id(), "campaign ids are dense");
        self.campaigns.push(CampaignBook::new(campaign, now_ms));
        self.refresh_next_expiry();
    }

    pub(crate) fn fund(&mut self, id: CampaignId, pool: AccountId, transfer: EventId) {
        let book = self.get_mut(id).expect("funded campaign exists");
        debug_assert!(book.funding.is_none(), "a campaign is funded once");
        book.pool = Some(pool);
        book.funding = Some(transfer);
    }

    /// Closes registration: the canonical list the draw runs over. Refused, with the book
    /// untouched, before the registration window has closed.
    pub(crate) fn close_registration(
        &mut self,
        id: CampaignId,
        now_ms: u64,
    ) -> Result<RegistrantList, LotteryError> {
        let book = self.get_mut(id).expect("campaign exists");
        let closes_at_ms = book.terms().registration.closes_at_ms;
        if now_ms < closes_at_ms {
            return Err(LotteryError::RegistrationStillOpen {
                campaign: book.id(),
                closes_at_ms,
                now_ms,
            });
        }
        let open = RegistrationBook::new(&book.campaign);
        let taken = std::mem::replace(&mut book.registrations, open);
        // Registration refuses more than a draw accepts, so closing a closed window cannot fail.
        Ok(taken
            .close(now_ms)
            .expect("registrations within the draw's limit"))
    }

    /// Records a draw whose packets the ledger has just funded, in draw order.
    pub(crate) fn record_draw(
        &mut self,
        id: CampaignId,
        list: RegistrantList,
        seed: Seed,
        packets: Vec<Packet>,
        now_ms: u64,
    ) {
        for (index, packet) in packets.iter().enumerate() {
            self.packets_of
                .entry(packet.wallet)
                .or_default()
                .push(PacketRef {
                    campaign: id,
                    packet: index as u32,
                });
        }
        let book = self.get_mut(id).expect("drawn campaign exists");
        let value = book.terms().packet_value;
        book.distributed = Amount::from_fen(value.fen() * packets.len() as i64);
        book.registrants = Some(list);
        book.seed = Some(seed);
        book.drawn_at_ms = Some(now_ms);
        book.status = CampaignStatus::Drawn;
        book.packets = packets;
    }

    /// A wallet's packets, in (campaign, packet) order.
    pub fn packets_of(&self, wallet: WalletId) -> &[PacketRef] {
        self.packets_of.get(&wallet).map_or(&[], Vec::as_slice)
    }

    pub fn packet(&self, packet: PacketRef) -> Option<(&CampaignBook, &Packet)> {
        let book = self.get(packet.campaign)?;
        Some((book, book.packets.get(packet.packet as usize)?))
    }

    /// Each of the wallet's packets as seen at this merchant now, with why it cannot pay if not.
    pub fn at_merchant(
        &self,
        wallet: WalletId,
        merchant: (MerchantId, Mcc, u32),
        now_ms: u64,
    ) -> Vec<PacketAtMerchant> {
        let (id, category, region) = merchant;
        self.packets_of(wallet)
            .iter()
            .filter_map(|&reference| {
                let (book, packet) = self.packet(reference)?;
                let validity = book.terms().validity;
                let balance = book.packet_balance(packet);
                let unspent = packet.spent < book.terms().packet_value;
                // Used up first: a packet spent in full is not "expired" to its holder.
                let usable = if !unspent {
                    Err(PacketUnusable::UsedUp)
                } else if now_ms >= validity.closes_at_ms || book.status == CampaignStatus::Expired
                {
                    Err(PacketUnusable::Expired {
                        at_ms: validity.closes_at_ms,
                    })
                } else if now_ms < validity.opens_at_ms {
                    Err(PacketUnusable::NotYetValid {
                        from_ms: validity.opens_at_ms,
                    })
                } else {
                    book.campaign
                        .check_merchant(id, category, region)
                        .map_err(PacketUnusable::Merchant)
                };
                Some(PacketAtMerchant {
                    packet: reference,
                    balance,
                    validity,
                    usable,
                })
            })
            .collect()
    }

    /// What a payment of `amount` to this merchant takes from the wallet's packets: usable ones
    /// only, soonest to expire first, at most `amount` in all.
    pub fn plan_spend(
        &self,
        wallet: WalletId,
        merchant: (MerchantId, Mcc, u32),
        amount: Amount,
        now_ms: u64,
    ) -> Vec<PlannedSpend> {
        if self.packets_of.is_empty() {
            return Vec::new();
        }
        let mut usable: Vec<(u64, PacketAtMerchant)> = self
            .at_merchant(wallet, merchant, now_ms)
            .into_iter()
            .filter(|seen| seen.usable.is_ok())
            .map(|seen| (seen.validity.closes_at_ms, seen))
            .collect();
        usable.sort_by_key(|(closes, seen)| (*closes, seen.packet));
        let mut left = amount;
        let mut plan = Vec::new();
        for (_, seen) in usable {
            if !left.is_positive() {
                break;
            }
            let take = seen.balance.min(left);
            let (_, packet) = self.packet(seen.packet).expect("listed packet exists");
            plan.push(PlannedSpend {
                packet: seen.packet,
                account: packet.account,
                amount: take,
            });
            left = minus(left, take);
        }
        plan
    }

    /// Records the packets' part of a merchant payment already posted to the ledger.
    pub(crate) fn record_spends(
        &mut self,
        payment: EventId,
        merchant: (MerchantId, Mcc),
        channel: PaymentChannel,
        plan: &[PlannedSpend],
        now_ms: u64,
    ) {
        let mut refs = Vec::with_capacity(plan.len());
        for spend in plan {
            let book = self
                .get_mut(spend.packet.campaign)
                .expect("spent campaign exists");
            let packet = &mut book.packets[spend.packet.packet as usize];
            packet.spent = plus(packet.spent, spend.amount);
            refs.push(SpendRef {
                campaign: spend.packet.campaign,
                spend: book.spends.len() as u32,
            });
            book.spends.push(PacketSpend {
                payment,
                packet: spend.packet.packet,
                merchant: merchant.0,
                category: merchant.1,
                channel,
                amount: spend.amount,
                refunded: Amount::ZERO,
                at_ms: now_ms,
            });
        }
        // Kept in spending order (the plan's), which `rebuild_indexes` restores from the books.
        if !refs.is_empty() {
            self.spends_of.insert(payment, refs);
        }
    }

    /// The order a payment's packets were spent in: soonest to expire first, then by packet.
    fn spending_order(&self, reference: SpendRef) -> (u64, CampaignId, u32) {
        let book = self.get(reference.campaign).expect("spend's campaign");
        let packet = book.spends[reference.spend as usize].packet;
        (
            book.terms().validity.closes_at_ms,
            reference.campaign,
            packet,
        )
    }

    fn spend(&self, reference: SpendRef) -> &PacketSpend {
        &self
            .get(reference.campaign)
            .expect("spend's campaign")
            .spends[reference.spend as usize]
    }

    /// How a refund of `amount` of a payment splits between the payer's wallet and the packets
    /// it spent, or `None` when it spent none. The reverse of spending: the wallet's own part
    /// first, then the packets', the last spent (the longest valid) first.
    pub fn plan_refund(
        &self,
        payment: EventId,
        (paid, refunded): (Amount, Amount),
        amount: Amount,
        now_ms: u64,
    ) -> Option<RefundSplit> {
        let refs = self.spends_of.get(&payment)?;
        let spends: Vec<&PacketSpend> = refs.iter().map(|r| self.spend(*r)).collect();
        let packets_paid: Amount = spends.iter().map(|s| s.amount).sum();
        let packets_refunded: Amount = spends.iter().map(|s| s.refunded).sum();
        let own_left = minus(minus(paid, packets_paid), minus(refunded, packets_refunded));
        let to_wallet = own_left.min(amount);
        let mut left = minus(amount, to_wallet);
        let mut to_packets = Vec::new();
        for (reference, spend) in refs.iter().zip(&spends).rev() {
            if !left.is_positive() {
                break;
            }
            let take = minus(spend.amount, spend.refunded).min(left);
            if !take.is_positive() {
                continue;
            }
            let book = self.get(reference.campaign).expect("spend's campaign");
            let target = if book.spendable_at(now_ms) {
                RefundTarget::Packet(book.packets[spend.packet as usize].account)
            } else {
                RefundTarget::Sponsor(book.terms().sponsor.wallet)
            };
            to_packets.push((*reference, target, take));
            left = minus(left, take);
        }
        debug_assert!(!left.is_positive(), "a refund within the payment fits it");
        Some(RefundSplit {
            to_wallet,
            to_packets,
        })
    }

    /// Records a refund already posted to the ledger.
    pub(crate) fn record_refund(&mut self, split: &RefundSplit) {
        for (reference, target, amount) in &split.to_packets {
            let book = self
                .get_mut(reference.campaign)
                .expect("spend's campaign exists");
            let spend = &mut book.spends[reference.spend as usize];
            spend.refunded = plus(spend.refunded, *amount);
            let packet = spend.packet as usize;
            match target {
                RefundTarget::Packet(_) => {
                    let packet = &mut book.packets[packet];
                    packet.spent = minus(packet.spent, *amount);
                }
                RefundTarget::Sponsor(_) => {
                    book.refunded_to_sponsor = plus(book.refunded_to_sponsor, *amount);
                }
            }
        }
    }

    /// Whether a campaign not yet expired has reached the end of its validity at `now`.
    pub fn expiry_due(&self, now_ms: u64) -> bool {
        now_ms >= self.next_expiry_ms
    }

    /// When the next campaign not yet expired reaches the end of its validity, if one is running.
    pub fn next_expiry_ms(&self) -> Option<u64> {
        (self.next_expiry_ms != u64::MAX).then_some(self.next_expiry_ms)
    }

    /// The first campaign due to expire at `now`.
    pub(crate) fn first_due(&self, now_ms: u64) -> Option<CampaignId> {
        if !self.expiry_due(now_ms) {
            return None;
        }
        self.campaigns
            .iter()
            .find(|book| {
                book.status != CampaignStatus::Expired
                    && book.terms().validity.closes_at_ms <= now_ms
            })
            .map(CampaignBook::id)
    }

    /// The next packets of an expiring campaign to sweep — (index, account, what it holds), at
    /// most `max` — the sweep's position after them, and whether the sweep is then complete.
    pub(crate) fn next_to_sweep(
        &self,
        id: CampaignId,
        max: usize,
    ) -> (Vec<(u32, AccountId, Amount)>, u32, bool) {
        let book = self.get(id).expect("expiring campaign exists");
        let start = book.sweep_next as usize;
        let end = (start + max).min(book.packets.len());
        let sweep = (start..end)
            .map(|index| {
                let packet = &book.packets[index];
                (index as u32, packet.account, book.packet_balance(packet))
            })
            .collect();
        (sweep, end as u32, end == book.packets.len())
    }

    /// Records packets swept back into the pool, up to (not including) `next`.
    pub(crate) fn record_sweep(&mut self, id: CampaignId, swept: &[(u32, Amount)], next: u32) {
        let book = self.get_mut(id).expect("expiring campaign exists");
        for (index, amount) in swept {
            let packet = &mut book.packets[*index as usize];
            packet.reclaimed = plus(packet.reclaimed, *amount);
            book.reclaimed = plus(book.reclaimed, *amount);
        }
        book.sweep_next = next;
    }

    /// Records the pool's return to the sponsor: the campaign is over.
    pub(crate) fn record_expiry(&mut self, id: CampaignId, returned: Amount) {
        let book = self.get_mut(id).expect("expiring campaign exists");
        book.returned = plus(book.returned, returned);
        book.status = CampaignStatus::Expired;
        self.refresh_next_expiry();
    }

    /// A campaign `wallet` sponsors that has not ended: its pool comes back to that wallet.
    pub fn running_campaign_of(&self, wallet: WalletId) -> Option<CampaignId> {
        self.campaigns
            .iter()
            .find(|book| {
                book.status != CampaignStatus::Expired && book.terms().sponsor.wallet == wallet
            })
            .map(CampaignBook::id)
    }

    fn refresh_next_expiry(&mut self) {
        self.next_expiry_ms = self
            .campaigns
            .iter()
            .filter(|book| book.status != CampaignStatus::Expired)
            .map(|book| book.terms().validity.closes_at_ms)
            .min()
            .unwrap_or(u64::MAX);
    }

    /// Packets used, amounts, by merchant category and by channel.
    pub fn redemption_report(&self, id: CampaignId) -> Option<RedemptionReport> {
        let book = self.get(id)?;
        let terms = book.terms();
        let mut net_by_packet = vec![0i64; book.packets.len()];
        let mut by_category: Vec<RedemptionLine<Mcc>> = Vec::new();
        let mut by_channel: Vec<RedemptionLine<PaymentChannel>> = Vec::new();
        let (mut payments, mut spent, mut refunded) = (0u64, 0i64, 0i64);
        let mut previous: Option<EventId> = None;
        for spend in &book.spends {
            let net = spend.amount.fen() - spend.refunded.fen();
            net_by_packet[spend.packet as usize] += net;
            spent += net;
            refunded += spend.refunded.fen();
            // One payment's spends are recorded together, so a new payment starts a new run.
            let new_payment = previous != Some(spend.payment);
            previous = Some(spend.payment);
            payments += u64::from(new_payment);
            add_line(&mut by_category, spend.category, new_payment, net);
            add_line(&mut by_channel, spend.channel, new_payment, net);
        }
        by_category.sort_by_key(|line| line.key);
        by_channel.sort_by_key(|line| line.key);
        let unspent: Amount = book
            .packets
            .iter()
            .map(|packet| book.packet_balance(packet))
            .sum();
        Some(RedemptionReport {
            campaign: id,
            name: terms.name.clone(),
            status: book.status,
            budget: terms.budget,
            packet_value: terms.packet_value,
            packets_drawn: book.packets.len() as u64,
            distributed: book.distributed,
            packets_used: net_by_packet.iter().filter(|net| **net > 0).count() as u64,
            payments,
            spent: Amount::from_fen(spent),
            refunded: Amount::from_fen(refunded),
            unspent,
            returned: plus(book.returned, book.refunded_to_sponsor),
            by_category,
            by_channel,
        })
    }

    // ----- snapshots -----

    pub(crate) fn encode(&self, out: &mut Writer) {
        out.u32(self.campaigns.len() as u32);
        for book in &self.campaigns {
            book.terms().encode(out);
            out.u64(book.created_at_ms)
                .u8(book.status as u8)
                .u32(book.pool.map_or(u32::MAX, |a| a.0))
                .u64(book.funding.map_or(u64::MAX, |t| t.0))
                .u64(book.drawn_at_ms.unwrap_or(u64::MAX));
            let registrations = book.registrations.registrations();
            out.u64(registrations.len() as u64);
            for registrant in registrations {
                out.u32(registrant.wallet.0)
                    .u8(u8::from(registrant.offline_trial));
            }
            match (&book.registrants, &book.seed) {
                (Some(list), Some(seed)) => {
                    out.u8(1).raw(seed.as_bytes()).u64(list.len() as u64);
                    for registrant in list.registrants() {
                        out.u32(registrant.wallet.0)
                            .u8(u8::from(registrant.offline_trial));
                    }
                }
                _ => {
                    out.u8(0);
                }
            }
            out.u64(book.packets.len() as u64);
            for packet in &book.packets {
                out.u32(packet.wallet.0)
                    .u32(packet.account.0)
                    .i64(packet.spent.fen())
                    .i64(packet.reclaimed.fen());
            }
            out.u64(book.spends.len() as u64);
            for spend in &book.spends {
                out.u64(spend.payment.0)
                    .u32(spend.packet)
                    .u32(spend.merchant.0)
                    .u16(spend.category.code())
                    .u8(spend.channel as u8)
                    .i64(spend.amount.fen())
                    .i64(spend.refunded.fen())
                    .u64(spend.at_ms);
            }
            for amount in [
                book.distributed,
                book.reclaimed,
                book.returned,
                book.refunded_to_sponsor,
            ] {
                out.i64(amount.fen());
            }
            out.u32(book.sweep_next);
        }
    }

    pub(crate) fn decode(input: &mut Reader<'_>) -> Result<RedPackets, DecodeError> {
        let mut all = RedPackets::default();
        for _ in 0..input.u32("campaign count")? {
            let book = decode_book(input)?;
            all.campaigns.push(book);
        }
        all.rebuild_indexes();
        Ok(all)
    }

    fn rebuild_indexes(&mut self) {
        self.packets_of.clear();
        self.spends_of.clear();
        for book in &self.campaigns {
            let campaign = book.id();
            for (index, packet) in book.packets.iter().enumerate() {
                self.packets_of
                    .entry(packet.wallet)
                    .or_default()
                    .push(PacketRef {
                        campaign,
                        packet: index as u32,
                    });
            }
            for (index, spend) in book.spends.iter().enumerate() {
                self.spends_of
                    .entry(spend.payment)
                    .or_default()
                    .push(SpendRef {
                        campaign,
                        spend: index as u32,
                    });
            }
        }
        let mut spends_of = std::mem::take(&mut self.spends_of);
        for refs in spends_of.values_mut() {
            refs.sort_by_key(|reference| self.spending_order(*reference));
        }
        self.spends_of = spends_of;
        self.refresh_next_expiry();
    }
}

fn add_line<K: PartialEq + Copy>(
    lines: &mut Vec<RedemptionLine<K>>,
    key: K,
    new_payment: bool,
    net_fen: i64,
) {
    let line = match lines.iter_mut().position(|line| line.key == key) {
        Some(index) => &mut lines[index],
        None => {
            lines.push(RedemptionLine {
                key,
                payments: 0,
                amount: Amount::ZERO,
            });
            lines.last_mut().expect("just pushed")
        }
    };
    line.payments += u64::from(new_payment);
    line.amount = Amount::from_fen(line.amount.fen() + net_fen);
}

fn decode_registrants(
    input: &mut Reader<'_>,
    what: &'static str,
) -> Result<Vec<Registrant>, DecodeError> {
    let count = input.u64(what)? as usize;
    // Five bytes each: a count the input cannot hold is refused before allocating.
    if count > input.remaining() / 5 {
        return Err(DecodeError {
            what,
            offset: input.offset(),
        });
    }
    (0..count)
        .map(|_| {
            Ok(Registrant {
                wallet: WalletId(input.u32("registrant wallet")?),
                offline_trial: input.bool("registrant opt-in")?,
            })
        })
        .collect()
}

fn decode_book(input: &mut Reader<'_>) -> Result<CampaignBook, DecodeError> {
    let bad = |what, input: &Reader<'_>| DecodeError {
        what,
        offset: input.offset(),
    };
    let terms = CampaignTerms::decode(input)?;
    let campaign = Campaign::new(terms).map_err(|_| bad("campaign terms", input))?;
    let mut book = CampaignBook::new(campaign, input.u64("campaign created")?);
    book.status = CampaignStatus::from_u8(input.u8("campaign status")?)
        .ok_or_else(|| bad("status", input))?;
    book.pool = Some(input.u32("campaign pool")?)
        .filter(|a| *a != u32::MAX)
        .map(AccountId);
    book.funding = Some(input.u64("campaign funding")?)
        .filter(|t| *t != u64::MAX)
        .map(EventId);
    book.drawn_at_ms = Some(input.u64("campaign drawn")?).filter(|t| *t != u64::MAX);
    let registrations = decode_registrants(input, "registration count")?;
    book.registrations = RegistrationBook::restore(&book.campaign, registrations);
    if input.bool("campaign drawn flag")? {
        book.seed = Some(Seed::from_bytes(input.array("campaign seed")?));
        let list = decode_registrants(input, "registrant count")?;
        book.registrants = Some(
            RegistrantList::from_registrations(list).map_err(|_| bad("registrant list", input))?,
        );
    }
    let count = input.u64("packet count")? as usize;
    if count > book.campaign.packet_count() as usize || count > input.remaining() / 24 {
        return Err(bad("packet count", input));
    }
    book.packets = (0..count)
        .map(|_| {
            Ok(Packet {
                wallet: WalletId(input.u32("packet wallet")?),
                account: AccountId(input.u32("packet account")?),
                spent: Amount::from_fen(input.i64("packet spent")?),
                reclaimed: Amount::from_fen(input.i64("packet reclaimed")?),
            })
        })
        .collect::<Result<_, DecodeError>>()?;
    let count = input.u64("spend count")? as usize;
    if count > input.remaining() / 43 {
        return Err(bad("spend count", input));
    }
    book.spends = (0..count)
        .map(|_| {
            Ok(PacketSpend {
                payment: EventId(input.u64("spend payment")?),
                packet: input.u32("spend packet")?,
                merchant: MerchantId(input.u32("spend merchant")?),
                category: Mcc::new(input.u16("spend category")?)
                    .ok_or_else(|| bad("spend category", input))?,
                channel: PaymentChannel::from_u8(input.u8("spend channel")?)
                    .ok_or_else(|| bad("spend channel", input))?,
                amount: Amount::from_fen(input.i64("spend amount")?),
                refunded: Amount::from_fen(input.i64("spend refunded")?),
                at_ms: input.u64("spend time")?,
            })
        })
        .collect::<Result<_, DecodeError>>()?;
    book.distributed = Amount::from_fen(input.i64("distributed")?);
    book.reclaimed = Amount::from_fen(input.i64("reclaimed")?);
    book.returned = Amount::from_fen(input.i64("returned")?);
    book.refunded_to_sponsor = Amount::from_fen(input.i64("refunded to sponsor")?);
    book.sweep_next = input.u32("sweep position")?;
    Ok(book)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::programs::campaign::{Eligibility, RegionCode, Sponsor};

    const HOLDER: WalletId = WalletId(7);
    const RESTAURANT: (MerchantId, Mcc, u32) = (MerchantId(1), Mcc::new(5812).unwrap(), 320_508);

    /// A campaign of two 200-yuan packets valid until `closes_at_ms`, drawn to `HOLDER` and one
    /// other wallet, with packet accounts numbered from `first_account`.
    fn drawn(book: &mut RedPackets, closes_at_ms: u64, first_account: u32) -> CampaignId {
        let id = book.next_id();
        let seed = Seed::from_bytes([id.0 as u8; 32]);
        let terms = CampaignTerms {
            id,
            name: format!("campaign {id}"),
            sponsor: Sponsor {
                name: "Suzhou".into(),
                wallet: WalletId(1),
            },
            budget: Amount::from_yuan(400),
            packet_count: 2,
            packet_value: Amount::from_yuan(200),
            region: RegionCode::new(320_500).unwrap(),
            eligibility: Eligibility::default(),
            registration: Window {
                opens_at_ms: 0,
                closes_at_ms: 10,
            },
            validity: Window {
                opens_at_ms: 10,
                closes_at_ms,
            },
            offline_trial: false,
            seed_commitment: seed.commitment(),
        };
        book.create(Campaign::new(terms).unwrap(), 0);
        book.fund(id, AccountId(first_account - 1), EventId(0));
        for wallet in [HOLDER, WalletId(8)] {
            book.get_mut(id)
                .unwrap()
                .register(wallet, false, 1)
                .unwrap();
        }
        let list = book.close_registration(id, 10).unwrap();
        let packets = [HOLDER, WalletId(8)]
            .into_iter()
            .enumerate()
            .map(|(index, wallet)| Packet {
                wallet,
                account: AccountId(first_account + index as u32),
                spent: Amount::ZERO,
                reclaimed: Amount::ZERO,
            })
            .collect();
        book.record_draw(id, list, seed, packets, 10);
        id
    }

    #[test]
    fn packets_expiring_soonest_pay_first_and_refunds_go_back_in_reverse() {
        let mut book = RedPackets::default();
        let later = drawn(&mut book, 2_000, 100);
        let sooner = drawn(&mut book, 1_000, 200);
        let plan = book.plan_spend(HOLDER, RESTAURANT, Amount::from_yuan(250), 500);
        let taken: Vec<(CampaignId, Amount)> = plan
            .iter()
            .map(|spend| (spend.packet.campaign, spend.amount))
            .collect();
        assert_eq!(
            taken,
            [
                (sooner, Amount::from_yuan(200)),
                (later, Amount::from_yuan(50))
            ]
        );
        // Paid 300: 250 from packets, 50 of the holder's own.
        let payment = EventId(42);
        let channel = PaymentChannel::StaticQr;
        book.record_spends(payment, (RESTAURANT.0, RESTAURANT.1), channel, &plan, 500);
        let paid = (Amount::from_yuan(300), Amount::ZERO);
        let split = book
            .plan_refund(payment, paid, Amount::from_yuan(120), 600)
            .unwrap();
        assert_eq!(split.to_wallet, Amount::from_yuan(50));
        let back: Vec<(CampaignId, Amount)> = split
            .to_packets
            .iter()
            .map(|(spend, _, amount)| (spend.campaign, *amount))
            .collect();
        // The reverse of spending: the later packet first, then the sooner one.
        assert_eq!(
            back,
            [
                (later, Amount::from_yuan(50)),
                (sooner, Amount::from_yuan(20))
            ]
        );
        assert!(split
            .to_packets
            .iter()
            .all(|(_, target, _)| matches!(target, RefundTarget::Packet(_))));
        book.record_refund(&split);
        let balances: Vec<Amount> = book
            .packets_of(HOLDER)
            .iter()
            .map(|reference| {
                let (campaign, packet) = book.packet(*reference).unwrap();
                campaign.packet_balance(packet)
            })
            .collect();
        assert_eq!(balances, [Amount::from_yuan(200), Amount::from_yuan(20)]);
        // After the sooner campaign ended, its part of a refund goes to its sponsor.
        let split = book
            .plan_refund(
                payment,
                (paid.0, Amount::from_yuan(120)),
                Amount::from_yuan(180),
                1_500,
            )
            .unwrap();
        assert_eq!(split.to_wallet, Amount::ZERO);
        let sooner_spend = SpendRef {
            campaign: sooner,
            spend: 0,
        };
        assert_eq!(
            split.to_packets,
            [(
                sooner_spend,
                RefundTarget::Sponsor(WalletId(1)),
                Amount::from_yuan(180)
            )]
        );
        book.record_refund(&split);
        assert_eq!(
            book.get(sooner).unwrap().refunded_to_sponsor,
            Amount::from_yuan(180)
        );
    }

    #[test]
    fn a_packet_says_why_it_cannot_pay() {
        let mut book = RedPackets::default();
        let id = drawn(&mut book, 1_000, 100);
        let reasons = |book: &RedPackets, merchant, now| {
            book.at_merchant(HOLDER, merchant, now)
                .into_iter()
                .map(|seen| seen.usable.map_err(PacketUnusable::code))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            reasons(&book, RESTAURANT, 5),
            [Err("RED_PACKET_NOT_YET_VALID")]
        );
        assert_eq!(reasons(&book, RESTAURANT, 500), [Ok(())]);
        let shanghai = (MerchantId(2), Mcc::new(5812).unwrap(), 310_101);
        assert_eq!(
            reasons(&book, shanghai, 500),
            [Err("RED_PACKET_REGION_NOT_ELIGIBLE")]
        );
        assert_eq!(
            reasons(&book, RESTAURANT, 1_000),
            [Err("RED_PACKET_EXPIRED")]
        );
        let plan = book.plan_spend(HOLDER, RESTAURANT, Amount::from_yuan(500), 500);
        assert_eq!(plan.len(), 1);
        book.record_spends(
            EventId(1),
            (RESTAURANT.0, RESTAURANT.1),
            PaymentChannel::TapZone,
            &plan,
            500,
        );
        // Spent in full, a packet is used up, not expired.
        assert_eq!(
            reasons(&book, RESTAURANT, 1_000),
            [Err("RED_PACKET_USED_UP")]
        );
        let report = book.redemption_report(id).unwrap();
        assert_eq!(
            (report.packets_used, report.payments, report.spent),
            (1, 1, Amount::from_yuan(200))
        );
        assert_eq!(report.by_channel[0].key, PaymentChannel::TapZone);
    }

    #[test]
    fn the_book_round_trips_through_its_snapshot_encoding() {
        let mut book = RedPackets::default();
        drawn(&mut book, 2_000, 100);
        let id = drawn(&mut book, 1_000, 200);
        let plan = book.plan_spend(HOLDER, RESTAURANT, Amount::from_yuan(250), 500);
        book.record_spends(
            EventId(9),
            (RESTAURANT.0, RESTAURANT.1),
            PaymentChannel::SubWallet,
            &plan,
            500,
        );
        book.record_sweep(id, &[(1, Amount::from_yuan(200))], 2);
        let mut out = Writer::new();
        book.encode(&mut out);
        let decoded = RedPackets::decode(&mut Reader::new(&out.bytes)).unwrap();
        assert_eq!(decoded, book);
        assert_eq!(decoded.packets_of(HOLDER), book.packets_of(HOLDER));
        assert_eq!(decoded.spends_of, book.spends_of);
        assert_eq!(decoded.next_expiry_ms, 1_000);
        for cut in [0, 9, out.bytes.len() - 1] {
            assert!(RedPackets::decode(&mut Reader::new(&out.bytes[..cut])).is_err());
        }
    }
}
