//! Hardware wallets in the simulation: holders' phones pay the shops' phones with no network,
//! taps are torn (the link cut before any APDU, power cut after any persistent write), a card
//! is cloned and its copy spends again, a shop's terminal runs its clock days ahead, and cards
//! sync with the center, sometimes with the process dying after the sync is booked and before
//! the card hears. Checked: every tap moves exactly its amount or nothing, a synced honest card
//! holds what the center believes it holds, a clone is blocked once its payees have synced, a
//! terminal ahead is flagged, and a crash mid-sync loses and doubles nothing.

use crate::amount::Amount;
use crate::certs::KeyPair;
use crate::city::Random;
use crate::command::Command;
use crate::ids::{DeviceId, OperatorId};
use crate::offline::applet::Applet;
use crate::offline::issuer::{OperatorIssuer, SyncError};
use crate::offline::nvm::TearingPlan;
use crate::offline::profiles::{Profile, WalletForm};
use crate::offline::protocol::Relay;
use crate::offline::settlement::SyncReport;
use crate::offline::tearing::{audit_payment, PaymentOutcome};
use crate::platform::seeded_issuers;
use crate::time::DAY_MS;

use super::checks::{self, Checks};
use super::faults::FaultKind;
use super::model::Model;
use super::world::World;

/// What a holder's phone is loaded with, and loaded again with when it runs low.
const LOAD_YUAN: i64 = 500;
const RELOAD_BELOW_YUAN: i64 = 60;
/// Holders with a phone that pays offline, and the shop owners whose phones take payments.
const PAYERS: [usize; 4] = [0, 1, 6, 7];
const SHOP_OWNERS: [usize; 2] = [5, 11];
const DAY_S: u32 = (DAY_MS / 1000) as u32;

struct Card {
    id: DeviceId,
    applet: Applet,
    operator: OperatorId,
    key: KeyPair,
    /// The holder whose wallet the card draws on.
    owner: usize,
    load_seq: u32,
    /// Cloned: the center must block it once the copy's payee has synced; it pays no more.
    cloned: bool,
}

impl Card {
    fn balance(&self) -> i64 {
        self.applet.persistent_image().balance().fen()
    }
}

pub(super) struct Offline {
    issuers: Vec<OperatorIssuer>,
    /// The holders' cards first, then the shops'.
    cards: Vec<Card>,
    payers: usize,
    /// Payments made offline whose payee has not synced since: the center holds them at the
    /// payer's sync and books them only when the payee's side confirms (payer, payee, fen).
    unconfirmed: Vec<(usize, usize, i64)>,
    pub(super) taps: u64,
    pub(super) syncs: u64,
    pub(super) faults: Vec<FaultKind>,
    pub(super) trace: Vec<String>,
}

impl Offline {
    /// Cards for the paying holders and the shops, registered and the holders' loaded.
    pub(super) fn issue(world: &mut World, model: &mut Model) -> Result<Offline, String> {
        let now_s = (world.now_ms() / 1000) as u32;
        let seed = world.seed_text().to_string();
        let issuers = seeded_issuers(&seed, 2, (now_s - 30 * DAY_S, now_s + 1_000 * DAY_S));
        let mut offline = Offline {
            issuers,
            cards: Vec::new(),
            payers: PAYERS.len(),
            unconfirmed: Vec::new(),
            taps: 0,
            syncs: 0,
            faults: Vec::new(),
            trace: Vec::new(),
        };
        for (n, owner) in PAYERS.into_iter().chain(SHOP_OWNERS).enumerate() {
            let id = DeviceId(1 + n as u64);
            let key = KeyPair::from_seed(format!("{seed}/device/{}", id.0).as_bytes());
            let operator = world.holders[owner].operator;
            let profile = Profile::new(WalletForm::PhoneEse);
            let applet = offline.issuers[operator.0 as usize - 1]
                .issue(&profile, id, key.clone(), id.0, now_s)
                .map_err(|e| format!("issue card {id}: {e}"))?;
            world.register_device(owner, id, key.public_key(), profile.caps())?;
            offline.cards.push(Card {
                id,
                applet,
                operator,
                key,
                owner,
                load_seq: 0,
                cloned: false,
            });
        }
        for card in 0..offline.payers {
            offline.load(card, world, model)?;
        }
        Ok(offline)
    }

    /// The center books a load from the holder's wallet; the card applies its operator's order.
    fn load(&mut self, card: usize, world: &mut World, model: &mut Model) -> Result<(), String> {
        let amount = Amount::from_yuan(LOAD_YUAN);
        let c = &mut self.cards[card];
        let seq = c.load_seq + 1;
        match world.load_device(c.owner, c.id, seq, amount)? {
            Ok(_) => {}
            // The wallet could not give it (spent, or its class's limits): no load today.
            Err(code) => {
                self.trace.push(format!("load {} refused {code}", c.id));
                return Ok(());
            }
        }
        c.load_seq = seq;
        model.loaded(c.owner, amount.fen());
        self.issuers[c.operator.0 as usize - 1]
            .load_card(&mut c.applet, (c.id, seq, amount))
            .map_err(|e| format!("card {} refused the load the center booked: {e}", c.id))?;
        self.trace.push(format!("load {} {amount}", c.id));
        Ok(())
    }

    /// Taps, with tears, a clone and a terminal ahead now and then; then syncs.
    pub(super) fn round(
        &mut self,
        random: &mut Random,
        world: &mut World,
        model: &mut Model,
        checks: &mut Checks,
    ) -> Result<(), String> {
        let now_s = (world.now_ms() / 1000) as u32;
        for _ in 0..1 + random.below(3) {
            let payer = random.below(self.payers);
            if self.cards[payer].cloned {
                continue;
            }
            if self.cards[payer].balance() < RELOAD_BELOW_YUAN * 100 {
                self.load(payer, world, model)?;
            }
            let shop = self.payers + random.below(self.cards.len() - self.payers);
            let amount = random.yuan(1, 50);
            match random.below(100) {
                0..=14 => self.torn_tap(random, (payer, shop), amount, now_s, checks)?,
                15..=19 => {
                    self.faults.push(FaultKind::TerminalClockAhead);
                    let ahead = now_s + (1 + random.below(3) as u32) * DAY_S;
                    if self.tap((payer, shop), amount, ahead, checks)? {
                        self.sync_and_expect_flag(shop, world, random, checks)?;
                    }
                }
                20..=22 => self.clone_and_spend(random, payer, amount, now_s, world, checks)?,
                _ => {
                    self.tap((payer, shop), amount, now_s, checks)?;
                }
            }
        }
        for _ in 0..random.below(3) {
            let card = random.below(self.cards.len());
            if !self.cards[card].cloned {
                self.sync(card, world, random, checks)?;
            }
        }
        Ok(())
    }

    /// One tap: both cards move by exactly the amount, or (a card refused it) neither moves.
    fn tap(
        &mut self,
        (payer, payee): (usize, usize),
        amount: Amount,
        time_s: u32,
        checks: &mut Checks,
    ) -> Result<bool, String> {
        let before = (self.cards[payer].balance(), self.cards[payee].balance());
        let (a, b) = pair(&mut self.cards, payer, payee);
        let paid = Relay::new().pay(&mut a.applet, &mut b.applet, amount, time_s);
        if paid.is_err() {
            a.applet.power_up();
            b.applet.power_up();
        }
        let after = (a.balance(), b.balance());
        let moved = (before.0 - after.0, after.1 - before.1);
        checks.offline += 1;
        let expected = if paid.is_ok() { amount.fen() } else { 0 };
        if moved != (expected, expected) {
            return Err(format!(
                "tap {} → {} of {amount} ({paid:?}) moved {} off the payer and {} onto the payee",
                a.id, b.id, moved.0, moved.1
            ));
        }
        if paid.is_ok() {
            self.taps += 1;
            self.unconfirmed.push((payer, payee, amount.fen()));
        }
        self.trace
            .push(format!("tap {} {} {amount} {}", a.id, b.id, paid.is_ok()));
        Ok(paid.is_ok())
    }

    /// A tap cut at the link or inside a persistent write of either card; the cards meet again,
    /// and the payment moved whole or not at all.
    fn torn_tap(
        &mut self,
        random: &mut Random,
        (payer, payee): (usize, usize),
        amount: Amount,
        time_s: u32,
        checks: &mut Checks,
    ) -> Result<(), String> {
        self.faults.push(FaultKind::SeTearing);
        let before = (
            self.cards[payer].applet.persistent_image().clone(),
            self.cards[payee].applet.persistent_image().clone(),
        );
        let (a, b) = pair(&mut self.cards, payer, payee);
        let mut relay = Relay::new();
        let cut = random.below(3);
        match cut {
            0 => relay = Relay::cutting_link_before(random.below(12)),
            1 => a
                .applet
                .arm_tearing(TearingPlan::after_writes(1 + random.below(10) as u32)),
            _ => b
                .applet
                .arm_tearing(TearingPlan::after_writes(1 + random.below(9) as u32)),
        }
        let paid = relay.pay(&mut a.applet, &mut b.applet, amount, time_s);
        for card in [&mut *a, &mut *b] {
            card.applet.arm_tearing(TearingPlan::NONE);
            card.applet.power_up();
        }
        // The holder taps again to finish what was cut; either card may still refuse.
        let met = Relay::new().contact(&mut a.applet, &mut b.applet, time_s + 1);
        if met.is_err() {
            a.applet.power_up();
            b.applet.power_up();
        }
        let after = (a.applet.persistent_image(), b.applet.persistent_image());
        checks.offline += 1;
        let outcome =
            audit_payment((&before.0, &before.1), after, amount).map_err(|violation| {
                format!(
                "a tap {} → {} of {amount} torn ({cut}, {paid:?}, met again {met:?}): {violation}",
                a.id, b.id
            )
            })?;
        self.taps += 1;
        if outcome == PaymentOutcome::Moved {
            self.unconfirmed.push((payer, payee, amount.fen()));
        }
        self.trace.push(format!(
            "torn tap {} {} {amount} {cut} {outcome:?}",
            a.id, b.id
        ));
        Ok(())
    }

    /// Someone copies a holder's card; card and copy pay the two shops with one counter. Once
    /// both shops and the card have synced, the center has blocked the card.
    fn clone_and_spend(
        &mut self,
        random: &mut Random,
        payer: usize,
        amount: Amount,
        time_s: u32,
        world: &mut World,
        checks: &mut Checks,
    ) -> Result<(), String> {
        let shops = [self.payers, self.payers + 1];
        if self.cards[payer].balance() < amount.fen() * 2 {
            return Ok(());
        }
        self.faults.push(FaultKind::ClonedSe);
        let copy = self.cards[payer].applet.clone_card();
        if !self.tap((payer, shops[0]), amount, time_s, checks)? {
            return Ok(());
        }
        let original = std::mem::replace(&mut self.cards[payer].applet, copy);
        let spent = self.tap((payer, shops[1]), amount, time_s + 60, checks);
        self.cards[payer].applet = original;
        if !spent? {
            return Ok(());
        }
        self.cards[payer].cloned = true;
        for card in [shops[0], shops[1], payer] {
            self.sync(card, world, random, checks)?;
        }
        let device = world
            .state()
            .devices()
            .device(self.cards[payer].id)
            .map_err(|e| e.to_string())?;
        checks.offline += 1;
        if device.blocked.is_none() {
            return Err(format!(
                "card {} spent twice with one counter and is not blocked after its payees synced",
                self.cards[payer].id
            ));
        }
        self.trace
            .push(format!("clone of {} blocked", self.cards[payer].id));
        Ok(())
    }

    /// A shop whose terminal took a payment stamped days ahead syncs: the center flags it.
    fn sync_and_expect_flag(
        &mut self,
        shop: usize,
        world: &mut World,
        random: &mut Random,
        checks: &mut Checks,
    ) -> Result<(), String> {
        let id = self.cards[shop].id;
        let flagged = |world: &World| {
            world
                .state()
                .devices()
                .device(id)
                .map(|d| d.clock_ahead)
                .map_err(|e| e.to_string())
        };
        let before = flagged(world)?;
        self.sync(shop, world, random, checks)?;
        checks.offline += 1;
        if flagged(world)? <= before {
            return Err(format!(
                "shop card {id} took a payment stamped days ahead and was not flagged at its sync"
            ));
        }
        Ok(())
    }

    /// One sync; sometimes the process dies after the center booked it and before the card
    /// heard, and the card syncs again after the restart. An honest card, synced, holds what
    /// the center believes it holds.
    fn sync(
        &mut self,
        card: usize,
        world: &mut World,
        random: &mut Random,
        checks: &mut Checks,
    ) -> Result<(), String> {
        let crash = random.chance(15);
        if crash {
            self.faults.push(FaultKind::SyncCrash);
            let c = &mut self.cards[card];
            let mut at_death = None;
            let lost = sync_once(&self.issuers, c, world, Some(&mut at_death));
            let (Err(SyncError::Unreachable(_)), Some(hash)) = (&lost, at_death) else {
                return Err(format!("a sync cut by a crash answered {lost:?}"));
            };
            let recovery = world.restart()?;
            checks::same_state(world, hash, &recovery, checks)?;
        }
        let c = &mut self.cards[card];
        let report = sync_once(&self.issuers, c, world, None)
            .map_err(|e| format!("sync of card {}: {e}", c.id))?;
        self.syncs += 1;
        self.trace.push(format!("sync {} {report:?}", c.id));
        let device = world
            .state()
            .devices()
            .device(c.id)
            .map_err(|e| e.to_string())?;
        self.unconfirmed.retain(|(_, payee, _)| *payee != card);
        if device.blocked.is_none() && !c.cloned {
            checks.offline += 1;
            let held: i64 = self
                .unconfirmed
                .iter()
                .filter(|(payer, _, _)| *payer == card)
                .map(|(_, _, fen)| fen)
                .sum();
            let believed = device.believed_balance().fen();
            if believed != c.balance() + held {
                return Err(format!(
                    "card {} holds {} fen after its sync, {held} fen of its payments wait for their payees; the center believes it holds {believed} fen ({report:?})",
                    c.id,
                    c.balance()
                ));
            }
        }
        Ok(())
    }
}

/// One sync of `card` through its operator. With `crash`, the process dies once the center
/// has booked the attestation and before the answer leaves (the card hears nothing); the state
/// it died with is handed back there.
fn sync_once(
    issuers: &[OperatorIssuer],
    card: &mut Card,
    world: &mut World,
    mut crash: Option<&mut Option<[u8; 32]>>,
) -> Result<SyncReport, SyncError> {
    let operator = card.operator;
    let mut center = |command: Command| {
        let attestation = matches!(command, Command::SyncOffline { .. });
        let result = world
            .one(operator, command)
            .map_err(SyncError::Unreachable)?;
        if let (Some(at_death), true) = (crash.as_deref_mut(), attestation) {
            *at_death = Some(world.state().state_hash());
            world.kill();
            return Err(SyncError::Unreachable("the process died".into()));
        }
        Ok(result)
    };
    issuers[operator.0 as usize - 1].sync_card(
        &mut card.applet,
        (card.id, card.key.public_key()),
        &mut center,
    )
}

fn pair(cards: &mut [Card], first: usize, second: usize) -> (&mut Card, &mut Card) {
    let (low, high) = cards.split_at_mut(first.max(second));
    if first < second {
        (&mut low[first], &mut high[0])
    } else {
        (&mut high[0], &mut low[second])
    }
}
