//! Red-packet campaigns applied: the sponsor's operator creates and funds a campaign, wallets'
//! operators register them, the sponsor reveals its seed and the registration center runs the draw
//! itself — replayed from the log, never taken on trust — and hands out one packet account per
//! winner. Payments to merchants spend eligible packets first (see `post_merchant_payment`); at
//! the end of validity, inside `apply_entry` like contracts' due runs, what is unspent goes back to
//! the sponsor. The red-packet book (`programs::red_packets`) says where every packet's money is;
//! every movement is a ledger transfer.

use super::*;
use crate::error::PacketUnusable;
use crate::programs::campaign::{Campaign, CampaignTerms};
use crate::programs::lottery::{verify_reveal, Draw, Seed};
use crate::programs::red_packets::{
    CampaignBook, CampaignStatus, Packet, PacketAtMerchant, PlannedSpend, RedPackets,
    RedemptionReport, RefundSplit, RefundTarget, EXPIRY_PACKETS_PER_ENTRY_MAX,
};

impl StateMachine {
    pub fn red_packets(&self) -> &RedPackets {
        &self.red_packets
    }

    pub fn campaign(&self, id: CampaignId) -> Result<&CampaignBook, CommandError> {
        self.red_packets
            .get(id)
            .ok_or(CommandError::UnknownCampaign(id))
    }

    /// Packets used, amounts, by merchant category and by channel.
    pub fn redemption_report(&self, id: CampaignId) -> Result<RedemptionReport, CommandError> {
        self.red_packets
            .redemption_report(id)
            .ok_or(CommandError::UnknownCampaign(id))
    }

    /// What a wallet holds in red packets, apart from its own balance.
    pub fn packet_balance(&self, wallet: WalletId) -> Amount {
        self.red_packets
            .packets_of(wallet)
            .iter()
            .filter_map(|reference| self.red_packets.packet(*reference))
            .map(|(book, packet)| book.packet_balance(packet))
            .sum()
    }

    /// The wallet's packets as seen at a merchant at `now_ms`: which would pay, and why the
    /// others would not ("merchant category 5999 not eligible", "expired at …").
    pub fn packets_at_merchant(
        &self,
        wallet: WalletId,
        merchant: MerchantId,
        now_ms: u64,
    ) -> Result<Vec<PacketAtMerchant>, CommandError> {
        self.wallet(wallet)?;
        let merchant = self.acquiring.merchant(merchant)?;
        Ok(self.red_packets.at_merchant(
            wallet,
            (merchant.id, merchant.mcc, merchant.region),
            now_ms,
        ))
    }

    pub(super) fn create_campaign(
        &mut self,
        origin: Origin,
        terms: CampaignTerms,
        now: u64,
    ) -> CommandResult {
        let campaign = Campaign::new(terms).map_err(CommandError::Campaign)?;
        let id = campaign.id();
        let sponsor = campaign.terms().sponsor.wallet;
        self.own_wallet(origin, sponsor)?.ensure_active(sponsor)?;
        if let Some(existing) = self.red_packets.get(id) {
            // The same terms again are a retry: answer the campaign they created.
            return if *existing.campaign() == campaign {
                Ok(Outcome::Campaign(id))
            } else {
                Err(CommandError::CampaignExists(id))
            };
        }
        let next = self.red_packets.next_id();
        if id != next {
            return Err(CommandError::CampaignIdNotNext { got: id, next });
        }
        let closes_at_ms = campaign.terms().registration.closes_at_ms;
        if now >= closes_at_ms {
            return Err(CommandError::CampaignTooLate {
                campaign: id,
                closes_at_ms,
            });
        }
        self.red_packets.create(campaign, now);
        Ok(Outcome::Campaign(id))
    }

    /// Refuses a campaign whose packets' validity is over.
    fn check_not_ended(book: &CampaignBook, now: u64) -> Result<(), CommandError> {
        let closed_at_ms = book.terms().validity.closes_at_ms;
        if book.status == CampaignStatus::Expired || now >= closed_at_ms {
            return Err(CommandError::CampaignEnded {
                campaign: book.id(),
                closed_at_ms,
            });
        }
        Ok(())
    }

    pub(super) fn fund_campaign(
        &mut self,
        origin: Origin,
        id: CampaignId,
        auth: &Option<HolderAuth>,
        now: u64,
    ) -> CommandResult {
        let book = self.campaign(id)?;
        let sponsor = book.terms().sponsor.wallet;
        let from = self.own_wallet(origin, sponsor)?;
        from.ensure_active(sponsor)?;
        self.check_holder_auth(sponsor, auth, now)?;
        if let Some(transfer) = book.funding {
            return Err(CommandError::CampaignAlreadyFunded {
                campaign: id,
                transfer,
            });
        }
        Self::check_not_ended(book, now)?;
        let budget = book.terms().budget;
        check_amount(budget)?;
        from.check_outgoing(
            self.operator(from.operator)?.limits_for(from.class),
            budget,
            now,
        )?;
        let available = self.ledger.account(from.account)?.available();
        if available < budget {
            return Err(CommandError::InsufficientFunds {
                available,
                needed: budget,
            });
        }
        let (debit, operator) = (from.account, from.operator);
        // The pool is opened only once the funding is sure, so a refusal changes nothing.
        let pool = self
            .ledger
            .open_account(AccountKind::RedPacketPool, operator);
        let leg = Leg {
            debit,
            credit: pool,
            amount: budget,
            kind: TransferKind::CampaignFunding,
        };
        let event = self.ledger.transfer(leg, now)?;
        self.wallet_mut(sponsor).record_outgoing(budget, now);
        self.red_packets.fund(id, pool, event);
        Ok(Outcome::Transfer(event))
    }

    pub(super) fn register_for_campaign(
        &mut self,
        origin: Origin,
        id: CampaignId,
        wallet: WalletId,
        offline_trial: bool,
        now: u64,
    ) -> CommandResult {
        let holder = self.own_wallet(origin, wallet)?;
        holder.ensure_active(wallet)?;
        // One registration per person: a verified holder's other wallets at the same operator
        // (the identity's sealed tag links them; the state never reads the number itself).
        let operator = self.operator(holder.operator)?;
        let book = self.campaign(id)?;
        if let Some(tag) = operator
            .identity(wallet)
            .and_then(|identity| identity.id_number.as_ref())
            .map(|id_number| id_number.tag)
        {
            if let Some(&registered) = operator
                .wallets_of_id_number(&tag)
                .iter()
                .find(|other| **other != wallet && book.is_registered(**other))
            {
                return Err(CommandError::CampaignIdentityRegistered {
                    campaign: id,
                    wallet,
                    registered,
                });
            }
        }
        let book = self
            .red_packets
            .get_mut(id)
            .ok_or(CommandError::UnknownCampaign(id))?;
        book.register(wallet, offline_trial, now)
            .map_err(CommandError::Lottery)?;
        Ok(Outcome::Done)
    }

    pub(super) fn draw_campaign(
        &mut self,
        origin: Origin,
        id: CampaignId,
        seed: Seed,
        now: u64,
    ) -> CommandResult {
        let book = self.campaign(id)?;
        self.own_wallet(origin, book.terms().sponsor.wallet)?;
        if book.status == CampaignStatus::Drawn {
            return Err(CommandError::CampaignAlreadyDrawn(id));
        }
        Self::check_not_ended(book, now)?;
        let closes_at_ms = book.terms().registration.closes_at_ms;
        if now < closes_at_ms {
            return Err(CommandError::Lottery(LotteryError::RegistrationStillOpen {
                campaign: id,
                closes_at_ms,
                now_ms: now,
            }));
        }
        verify_reveal(book.campaign().seed_commitment(), &seed).map_err(CommandError::Lottery)?;
        let pool = book.pool.ok_or(CommandError::CampaignNotFunded(id))?;
        let campaign = book.campaign().clone();
        // Everything that could refuse the draw has been checked: from here it changes the state.
        let list = self
            .red_packets
            .close_registration(id, now)
            .map_err(CommandError::Lottery)?;
        let draw = Draw::run(&campaign, &list, seed.clone(), now)
            .expect("registration closed and the seed matches its commitment");
        let value = campaign.terms().packet_value;
        assert!(
            self.ledger.account(pool)?.balance.fen() >= value.fen() * draw.winners.len() as i64,
            "a funded pool holds every packet it can hand out"
        );
        let mut packets = Vec::with_capacity(draw.winners.len());
        for &wallet in &draw.winners {
            let operator = self.known_wallet(wallet).operator;
            let account = self.ledger.open_account(AccountKind::RedPacket, operator);
            let leg = Leg {
                debit: pool,
                credit: account,
                amount: value,
                kind: TransferKind::RedPacketGrant,
            };
            self.ledger
                .transfer(leg, now)
                .expect("the pool holds every packet");
            packets.push(Packet {
                wallet,
                account,
                spent: Amount::ZERO,
                reclaimed: Amount::ZERO,
            });
        }
        let winners = packets.len() as u32;
        self.red_packets.record_draw(id, list, seed, packets, now);
        Ok(Outcome::Drawn {
            campaign: id,
            winners,
        })
    }

    /// Ends the campaigns whose validity is over at `now`: each packet's remainder back into the
    /// pool, then the pool back to the sponsor. Bounded per entry; a campaign too large for one
    /// entry finishes with the next ones, and nothing credits its packets meanwhile (a refund
    /// after the end goes to the sponsor).
    pub(super) fn expire_campaigns(&mut self, now: u64) {
        let mut budget = EXPIRY_PACKETS_PER_ENTRY_MAX;
        while budget > 0 {
            let Some(id) = self.red_packets.first_due(now) else {
                return;
            };
            let (sweep, next, complete) = self.red_packets.next_to_sweep(id, budget);
            budget -= sweep.len();
            let book = self.red_packets.get(id).expect("due campaign exists");
            let (pool, sponsor) = (book.pool, book.terms().sponsor.wallet);
            let mut swept = Vec::new();
            for (index, account, balance) in sweep {
                if !balance.is_positive() {
                    continue;
                }
                let leg = Leg {
                    debit: account,
                    credit: pool.expect("a drawn campaign was funded"),
                    amount: balance,
                    kind: TransferKind::RedPacketExpiry,
                };
                self.ledger
                    .transfer(leg, now)
                    .expect("a packet holds what its book says");
                swept.push((index, balance));
            }
            self.red_packets.record_sweep(id, &swept, next);
            if !complete {
                return;
            }
            let returned = match pool {
                Some(pool) => self.return_pool(pool, sponsor, now),
                None => Amount::ZERO,
            };
            self.red_packets.record_expiry(id, returned);
        }
    }

    fn return_pool(&mut self, pool: AccountId, sponsor: WalletId, now: u64) -> Amount {
        let balance = self
            .ledger
            .account(pool)
            .expect("pool account exists")
            .balance;
        if balance.is_positive() {
            // Money going back where it came from is not held to the balance cap.
            let leg = Leg {
                debit: pool,
                credit: self.known_wallet(sponsor).account,
                amount: balance,
                kind: TransferKind::CampaignReturn,
            };
            self.ledger
                .transfer(leg, now)
                .expect("the pool holds its balance");
        }
        balance
    }

    /// Posts a payment to a merchant whose checks passed (`leg`: the payer's wallet to the
    /// merchant's, the whole amount): the payer's usable packets pay first, the wallet the rest,
    /// as linked transfers. Returns the first transfer and what each packet paid.
    pub(super) fn post_merchant_payment(
        &mut self,
        payer: WalletId,
        merchant: MerchantId,
        leg: Leg,
        now: u64,
    ) -> Result<(EventId, Vec<PlannedSpend>), CommandError> {
        let shop = self.acquiring.merchant(merchant)?;
        let profile = (shop.id, shop.mcc, shop.region);
        let plan = self.red_packets.plan_spend(payer, profile, leg.amount, now);
        let posted = if plan.is_empty() {
            self.ledger.transfer(leg, now)
        } else {
            let from_packets: Amount = plan.iter().map(|spend| spend.amount).sum();
            let mut legs: Vec<Leg> = plan
                .iter()
                .map(|spend| Leg {
                    debit: spend.account,
                    credit: leg.credit,
                    amount: spend.amount,
                    kind: TransferKind::RedPacketSpend,
                })
                .collect();
            let own = Amount::from_fen(leg.amount.fen() - from_packets.fen());
            if own.is_positive() {
                legs.push(Leg { amount: own, ..leg });
            }
            self.ledger.transfer_linked(&legs, now)
        };
        match posted {
            Ok(event) => Ok((event, plan)),
            Err(error) => Err(self.explain_unused_packets(payer, profile, now, error)),
        }
    }

    /// A payment the wallet's own balance cannot cover, by a holder with packets that could not
    /// pay here, is refused with the packet's reason: the holder sees why the packet did not help.
    fn explain_unused_packets(
        &self,
        payer: WalletId,
        merchant: (MerchantId, Mcc, u32),
        now: u64,
        error: CommandError,
    ) -> CommandError {
        let CommandError::InsufficientFunds { available, needed } = error else {
            return error;
        };
        let unusable = self
            .red_packets
            .at_merchant(payer, merchant, now)
            .into_iter()
            .find_map(|seen| match seen.usable {
                Err(reason) if reason != PacketUnusable::UsedUp => Some((seen.packet, reason)),
                _ => None,
            });
        match unusable {
            Some((packet, reason)) => CommandError::RedPacketNotUsable {
                available,
                needed,
                campaign: packet.campaign,
                packet: packet.packet + 1,
                reason,
            },
            None => error,
        }
    }

    /// The legs of a refund of a payment that spent packets: the payer's own part to its wallet,
    /// the packets' part back into them (or to the sponsor once the campaign has ended; refused
    /// if the sponsor has since closed its wallet, which must never hold money again).
    pub(super) fn refund_legs(
        &self,
        from: AccountId,
        to: AccountId,
        split: &RefundSplit,
    ) -> Result<Vec<Leg>, CommandError> {
        let mut legs = Vec::with_capacity(split.to_packets.len() + 1);
        if split.to_wallet.is_positive() {
            legs.push(Leg {
                debit: from,
                credit: to,
                amount: split.to_wallet,
                kind: TransferKind::Refund,
            });
        }
        for (_, target, amount) in &split.to_packets {
            let credit = match target {
                RefundTarget::Packet(account) => *account,
                RefundTarget::Sponsor(wallet) => {
                    let sponsor = self.wallet(*wallet)?;
                    if sponsor.status == WalletStatus::Closed {
                        return Err(CommandError::WalletClosed(*wallet));
                    }
                    sponsor.account
                }
            };
            legs.push(Leg {
                debit: from,
                credit,
                amount: *amount,
                kind: TransferKind::RedPacketRefund,
            });
        }
        Ok(legs)
    }

    /// Records what packets paid of a merchant payment just posted.
    pub(super) fn record_packet_spends(
        &mut self,
        payment: EventId,
        merchant: MerchantId,
        channel: PaymentChannel,
        plan: &[PlannedSpend],
        now: u64,
    ) {
        if plan.is_empty() {
            return;
        }
        let category = self
            .acquiring
            .merchant(merchant)
            .expect("paid merchant exists")
            .mcc;
        self.red_packets
            .record_spends(payment, (merchant, category), channel, plan, now);
    }
}
