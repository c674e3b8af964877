//! Dual-offline taps between secure elements, their sync, and cloned cards.

use super::*;

/// What an offline payer loads into its secure element on the first morning.
pub(super) const OFFLINE_LOAD: Amount = Amount::from_yuan(300);

impl City {
    /// Offline: loads on the first morning, taps at merchants' phones through the day (no
    /// network on either side); answers the syncs due that day, the holders' phones in the
    /// evening and the merchants' at night, as (time, card, whether a merchant's).
    pub(super) fn offline_day(
        &mut self,
        day: u32,
        day_ms: u64,
        actions: &mut Vec<Action>,
    ) -> Result<Vec<(u64, usize, bool)>, SimulationError> {
        if day == 0 {
            for c in 0..self.cards.len() {
                let card = &self.cards[c];
                let owner = &self.people[card.owner];
                if owner.balance < OFFLINE_LOAD.fen() {
                    continue;
                }
                let at = day_ms + 8 * HOUR_MS;
                let command = Command::LoadDevice {
                    device: card.id,
                    load_seq: 1,
                    amount: OFFLINE_LOAD,
                    auth: None,
                };
                actions.push(City::action(card.operator, at, command, None));
                let issuer = &self.issuers[card.operator.0 as usize - 1];
                let card = &mut self.cards[c];
                issuer
                    .load_card(&mut card.applet, (card.id, 1, OFFLINE_LOAD))
                    .map_err(|e| SimulationError::Offline(e.to_string()))?;
                card.balance = OFFLINE_LOAD.fen();
                self.people[card.owner].balance -= OFFLINE_LOAD.fen();
            }
        }
        let mut taps: Vec<(u64, usize, usize)> = Vec::new();
        for c in 0..self.cards.len() {
            if !self.cards[c].blocked && self.random.chance(25) {
                let at = day_ms + 10 * HOUR_MS + self.random.below(10 * HOUR_MS as usize) as u64;
                taps.push((at, c, self.random.below(self.shop_cards.len())));
            }
        }
        taps.sort_unstable();
        for (at, card, shop) in taps {
            let amount = self.random.yuan(5, 40);
            self.tap(at, card, shop, amount)?;
        }
        let holders =
            (0..self.cards.len()).map(|c| (day_ms + 21 * HOUR_MS + c as u64 * 1000, c, false));
        let shops =
            (0..self.shop_cards.len()).map(|s| (day_ms + 23 * HOUR_MS + s as u64 * 1000, s, true));
        Ok(holders.chain(shops).collect())
    }

    /// One offline payment between two secure elements, if both can take it.
    pub(super) fn tap(
        &mut self,
        at_ms: u64,
        card: usize,
        shop: usize,
        amount: Amount,
    ) -> Result<bool, SimulationError> {
        let payee_cap = self.shop_cards[shop].applet_cap();
        if self.cards[card].balance < amount.fen()
            || self.shop_cards[shop].balance + amount.fen() > payee_cap
        {
            return Ok(false);
        }
        let (payer, payee) = (&mut self.cards[card], &mut self.shop_cards[shop]);
        Relay::new()
            .pay(
                &mut payer.applet,
                &mut payee.applet,
                amount,
                (at_ms / 1000) as u32,
            )
            .map_err(|e| {
                SimulationError::Offline(format!("tap {} → {}: {e}", payer.id, payee.id))
            })?;
        payer.balance -= amount.fen();
        payee.balance += amount.fen();
        self.driver.report.offline_taps += 1;
        Ok(true)
    }

    /// A secure element attests what it did over the center's nonce; the center settles it;
    /// the operator confirms it back to the card.
    pub(super) fn sync(
        &mut self,
        at_ms: u64,
        index: usize,
        shop: bool,
    ) -> Result<(), SimulationError> {
        let card = if shop {
            &mut self.shop_cards[index]
        } else {
            &mut self.cards[index]
        };
        let driver = &mut self.driver;
        let origin = Origin::Operator(card.operator);
        let mut center = |command: Command| {
            driver
                .batch(at_ms, origin, vec![command])
                .map(|mut results| results.remove(0))
                .map_err(|e| SyncError::Unreachable(e.to_string()))
        };
        let issuer = &self.issuers[card.operator.0 as usize - 1];
        issuer
            .sync_card(
                &mut card.applet,
                (card.id, card.key.public_key()),
                &mut center,
            )
            .map(|_| ())
            .map_err(|error| SimulationError::Offline(format!("sync {}: {error}", card.id)))
    }

    /// Someone copies a holder's card; the copy and the card each pay a different merchant
    /// with the same counter. The second merchant's sync gives the copy away.
    pub(super) fn clone_card(
        &mut self,
        start: u64,
        episode: Episode,
        _actions: &mut [Action],
    ) -> Result<(), SimulationError> {
        let card = episode.actor;
        if self.cards[card].blocked
            || self.cards[card].balance < 100 * 100
            || self.shop_cards.len() < 2
        {
            return Ok(());
        }
        let copy = self.cards[card].applet.clone_card();
        let amount = self.random.yuan(20, 45);
        // Two merchants' phones with room for the payment: the card pays one, its copy the other.
        let shops: Vec<usize> = (0..self.shop_cards.len())
            .filter(|s| {
                self.shop_cards[*s].balance + amount.fen() <= self.shop_cards[*s].applet_cap()
            })
            .take(2)
            .collect();
        if shops.len() < 2 || !self.tap(start, card, shops[0], amount)? {
            return Ok(());
        }
        let original = std::mem::replace(&mut self.cards[card].applet, copy);
        let balance = self.cards[card].balance;
        self.cards[card].balance += amount.fen();
        let spent = self.tap(start + MINUTE_MS, card, shops[1], amount)?;
        self.cards[card].applet = original;
        self.cards[card].balance = balance;
        self.cards[card].blocked = spent;
        if spent {
            self.mark(episode.label, start);
        }
        Ok(())
    }
}
