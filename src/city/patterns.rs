//! The labelled suspicious patterns and the benign near misses that look like them.

use super::*;

impl City {
    /// How many of something happen today, for `per_thousand_a_month` per thousand people.
    pub(super) fn today(&mut self, per_thousand_a_month: usize) -> usize {
        let monthly = self.people.len() * per_thousand_a_month;
        let per_day = monthly / 30_000;
        let remainder = (monthly % 30_000) as u64;
        per_day + usize::from(self.random.0.below(30_000) < remainder)
    }

    pub(super) fn any_verified(&mut self) -> usize {
        self.verified[self.random.below(self.verified.len())]
    }

    /// Ordinary people doing things that look a little like the patterns without being them.
    pub(super) fn near_misses(&mut self, day: u32, day_ms: u64, actions: &mut Vec<Action>) {
        // A car deposit or a renovation: one payment just under the threshold.
        for _ in 0..self.today(2) {
            let (payer, payee) = (self.any_verified(), self.any_verified());
            if self.people[payer].class > WalletClass::Two
                || self.people[payee].class > WalletClass::Two
            {
                continue;
            }
            let amount = self.random.yuan(40_000, 49_000);
            let at = day_ms + 10 * HOUR_MS + self.random.below(8 * HOUR_MS as usize) as u64;
            actions.push(self.exchange(at - 5 * MINUTE_MS, payer, amount, None));
            actions.extend(self.pay(at, payer, payee, amount, None));
        }
        // A street vendor with no merchant sign-up, paid for snacks by a dozen passers-by.
        for _ in 0..self.today(3) {
            let vendor = self.any_verified();
            let customers = 10 + self.random.below(9);
            let lunch = day_ms + 11 * HOUR_MS;
            for _ in 0..customers {
                let customer = self.random.below(self.people.len());
                let amount = self.random.yuan(5, 40);
                let at = lunch + self.random.below(3 * HOUR_MS as usize) as u64;
                actions.extend(self.pay(at, customer, vendor, amount, None));
            }
        }
        // A dinner bill split: friends pay the one who paid.
        for _ in 0..self.today(10) {
            let host = self.any_verified();
            let friends = self.people[host].friends;
            let evening = day_ms + 20 * HOUR_MS;
            for friend in friends.into_iter().take(5 + self.random.below(2)) {
                let amount = self.random.yuan(40, 200);
                let at = evening + self.random.below(HOUR_MS as usize) as u64;
                actions.extend(self.pay(at, friend as usize, host, amount, None));
            }
        }
        // Rent shared through one flatmate: in and straight on, but a household's sums.
        for _ in 0..self.today(1) {
            let (flatmate, landlord, other) = (
                self.any_verified(),
                self.any_verified(),
                self.any_verified(),
            );
            let amount = self.random.yuan(1_500, 4_500);
            let at = day_ms + 9 * HOUR_MS + self.random.below(10 * HOUR_MS as usize) as u64;
            if let Some(paid) = self.pay(at, other, flatmate, amount, None) {
                actions.push(paid);
                let on = Amount::from_fen(amount.fen() / 10 * 9);
                let later = at + TICK_MS + self.random.below(15 * MINUTE_MS as usize) as u64;
                actions.extend(self.pay(later, flatmate, landlord, on, None));
            }
        }
        // A busy market morning: a dozen stalls within the hour.
        for _ in 0..self.today(2) {
            let shopper = self.any_verified();
            let morning = day_ms + 8 * HOUR_MS;
            for _ in 0..8 + self.random.below(7) {
                let shop = self.random.below(self.shops.len());
                let amount = self.random.yuan(5, 60);
                let at = morning + self.random.below(HOUR_MS as usize) as u64;
                actions.extend(self.shop(at, shopper, shop, amount, StoreChannel::Printed, None));
            }
        }
        // Payday (the 15th): a small employer with no payroll service pays a dozen staff from
        // its owner's wallet. Legitimate, and over the fan-out thresholds: what an analyst
        // explains and closes as not suspicious.
        if day == 14 {
            for _ in 0..self.people.len() / 10_000 {
                let employers: Vec<usize> = (0..64).map(|_| self.any_verified()).collect();
                let Some(owner) = employers
                    .into_iter()
                    .find(|p| self.people[*p].class <= WalletClass::Two)
                else {
                    continue;
                };
                let payday = day_ms + 17 * HOUR_MS;
                actions.push(self.exchange(
                    payday - 5 * MINUTE_MS,
                    owner,
                    Amount::from_yuan(60_000),
                    None,
                ));
                for _ in 0..12 {
                    let wage = self.random.yuan(3_000, 4_800);
                    let at = payday + self.random.below(HOUR_MS as usize) as u64;
                    if let Some(staff) = self.receiver(wage, false, owner) {
                        actions.extend(self.pay(at, owner, staff, wage, None));
                    }
                }
            }
        }
        // The Lantern Festival (the 10th simulated day): red envelopes to family.
        if day == 9 {
            for _ in 0..self.people.len() / 100 {
                let giver = self.any_verified();
                let friends = self.people[giver].friends;
                for relative in friends.into_iter().take(5 + self.random.below(2)) {
                    let amount = self.random.yuan(8, 200);
                    let at = day_ms + 19 * HOUR_MS + self.random.below(2 * HOUR_MS as usize) as u64;
                    actions.extend(self.pay(at, giver, relative as usize, amount, None));
                }
            }
        }
    }

    /// A verified person, not `not`, who can take `amount` now; class 1 or 2 when `large`.
    pub(super) fn receiver(&mut self, amount: Amount, large: bool, not: usize) -> Option<usize> {
        for _ in 0..64 {
            let candidate = self.any_verified();
            let p = &self.people[candidate];
            if candidate != not && (!large || p.class <= WalletClass::Two) && p.can_receive(amount)
            {
                return Some(candidate);
            }
        }
        None
    }

    /// One step of a labelled pattern.
    pub(super) fn play(
        &mut self,
        index: usize,
        episode: Episode,
        day_ms: u64,
        actions: &mut Vec<Action>,
    ) -> Result<(), SimulationError> {
        let (actor, tag) = (episode.actor, Some(index));
        let start = day_ms + 9 * HOUR_MS + self.random.below(9 * HOUR_MS as usize) as u64;
        if episode.pattern != Pattern::OfflineClone {
            self.mark(episode.label, start);
        }
        match episode.pattern {
            Pattern::LargeValue => {
                let amount = Amount::from_yuan(self.random.between(500, 3_000) as i64 * 100);
                let Some(payee) = self.receiver(amount, true, actor) else {
                    return Ok(());
                };
                actions.push(self.exchange(start - 5 * MINUTE_MS, actor, amount, tag));
                actions.extend(self.pay(start, actor, payee, amount, tag));
            }
            Pattern::Structuring => {
                let amount = self.random.yuan(40_000, 49_900);
                let Some(payee) = self.receiver(amount, true, actor) else {
                    return Ok(());
                };
                actions.push(self.exchange(start - 5 * MINUTE_MS, actor, amount, tag));
                actions.extend(self.pay(start, actor, payee, amount, tag));
            }
            Pattern::RapidPassThrough => self.pass_through(start, actor, tag, actions),
            Pattern::FanInMule => self.fan_in(start, episode, tag, actions),
            Pattern::FanOutDistributor => {
                let recipients = 13 + self.random.below(8);
                let span = (1 + self.random.below(5)) as u64 * HOUR_MS;
                actions.push(self.exchange(
                    start - 5 * MINUTE_MS,
                    actor,
                    Amount::from_yuan(60_000),
                    tag,
                ));
                for _ in 0..recipients {
                    let amount = self.random.yuan(800, 3_000);
                    let at = start + self.random.below(span as usize) as u64;
                    let Some(payee) = self.receiver(amount, false, actor) else {
                        continue;
                    };
                    self.mark(episode.label, at);
                    actions.extend(self.pay(at, actor, payee, amount, tag));
                }
            }
            Pattern::VelocityBurst => {
                let payments = 25 + self.random.below(21);
                let span = (30 + self.random.below(26)) as u64 * MINUTE_MS;
                let budget = Amount::from_yuan(6_000);
                if self.people[actor].can_receive(budget) {
                    actions.push(self.exchange(start - 10 * MINUTE_MS, actor, budget, tag));
                }
                for _ in 0..payments {
                    let shop = self.random.below(self.shops.len());
                    let amount = self.random.yuan(5, 120);
                    let at = start + self.random.below(span as usize) as u64;
                    self.mark(episode.label, at);
                    actions.extend(self.shop(at, actor, shop, amount, StoreChannel::Printed, tag));
                }
            }
            Pattern::OfflineClone => self.clone_card(start, episode, actions)?,
        }
        Ok(())
    }

    /// Money arrives from a source and most of it leaves again within minutes.
    pub(super) fn pass_through(
        &mut self,
        start: u64,
        actor: usize,
        tag: Option<usize>,
        actions: &mut Vec<Action>,
    ) {
        let sources: Vec<usize> = (0..self.people.len())
            .filter(|i| self.people[*i].role == Role::Source)
            .collect();
        let source = sources[self.random.below(sources.len())];
        let amount = self.random.yuan(8_000, 38_000);
        actions.push(self.exchange(start - 5 * MINUTE_MS, source, amount, tag));
        let Some(arrived) = self.pay(start, source, actor, amount, tag) else {
            return;
        };
        actions.push(arrived);
        let on = Amount::from_fen(amount.fen() * self.random.between(85, 99) as i64 / 100);
        let later = start + TICK_MS + self.random.below(15 * MINUTE_MS as usize) as u64;
        if self.random.chance(50) {
            actions.push(self.deposit_back(later, actor, on, tag));
        } else if let Some(sink) = self.receiver(on, true, actor) {
            actions.push(self.pay_anyway(later, actor, sink, on, tag));
        }
    }

    /// Many victims pay one mule within hours; it cashes out the next day.
    pub(super) fn fan_in(
        &mut self,
        start: u64,
        episode: Episode,
        tag: Option<usize>,
        actions: &mut Vec<Action>,
    ) {
        let feeders = 13 + self.random.below(10);
        let span = (2 + self.random.below(4)) as u64 * HOUR_MS;
        let mut collected = 0;
        for _ in 0..feeders {
            let feeder = self.any_verified();
            let amount = self.random.yuan(800, 3_000);
            let at = start + self.random.below(span as usize) as u64;
            if let Some(paid) = self.pay(at, feeder, episode.actor, amount, tag) {
                self.mark(episode.label, at);
                collected += amount.fen();
                actions.push(paid);
            }
        }
        // Cashed out next morning, if the month lasts that long.
        if episode.day + 1 < self.days {
            let at = self.day_ms(episode.day + 1) + 10 * HOUR_MS;
            let cash_out = Amount::from_fen(collected / 100 * 95);
            if cash_out.is_positive() {
                let action = self.deposit_back(at, episode.actor, cash_out, tag);
                self.later.push((episode.day + 1, action));
            }
        }
    }
}
