//! A day in the city: top-ups, sweeps and everyday payments on every channel.

use super::*;

/// How a person pays at a store.
#[derive(Clone, Copy)]
pub(super) enum StoreChannel {
    Printed,
    Code,
    Tap,
    Order,
}

impl City {
    pub(super) fn day_ms(&self, day: u32) -> u64 {
        self.start_ms + u64::from(day) * DAY_MS
    }

    pub(super) fn action(
        origin: OperatorId,
        at_ms: u64,
        command: Command,
        episode: Option<usize>,
    ) -> Action {
        Action {
            at_ms,
            origin: Origin::Operator(origin),
            command,
            episode,
        }
    }

    pub(super) fn exchange(
        &mut self,
        at: u64,
        person: usize,
        amount: Amount,
        episode: Option<usize>,
    ) -> Action {
        let key = self.driver.key();
        let p = &mut self.people[person];
        p.balance += amount.fen();
        let command = Command::Exchange {
            wallet: p.wallet,
            amount,
            key,
            auth: None,
        };
        City::action(p.operator, at, command, episode)
    }

    pub(super) fn deposit_back(
        &mut self,
        at: u64,
        person: usize,
        amount: Amount,
        episode: Option<usize>,
    ) -> Action {
        let key = self.driver.key();
        let p = &mut self.people[person];
        p.balance -= amount.fen();
        let command = Command::DepositBack {
            wallet: p.wallet,
            amount,
            key,
            auth: None,
        };
        City::action(p.operator, at, command, episode)
    }

    /// A person-to-person payment, if the shadows say it will go through.
    pub(super) fn pay(
        &mut self,
        at: u64,
        payer: usize,
        payee: usize,
        amount: Amount,
        episode: Option<usize>,
    ) -> Option<Action> {
        if payer == payee
            || !self.people[payer].can_pay(amount)
            || !self.people[payee].can_receive(amount)
        {
            return None;
        }
        Some(self.pay_anyway(at, payer, payee, amount, episode))
    }

    /// A payment whose payer is known to hold the money by then (it received it earlier).
    pub(super) fn pay_anyway(
        &mut self,
        at: u64,
        payer: usize,
        payee: usize,
        amount: Amount,
        episode: Option<usize>,
    ) -> Action {
        let key = self.driver.key();
        let payee_wallet = self.people[payee].wallet;
        self.people[payee].incoming += amount.fen();
        let p = &mut self.people[payer];
        p.balance -= amount.fen();
        p.spent_today += amount.fen();
        let command = Command::Pay {
            payer: p.wallet,
            payee: payee_wallet,
            amount,
            key,
            auth: None,
        };
        City::action(p.operator, at, command, episode)
    }

    /// A payment at a merchant on the channel its trade and the payer's habits give.
    pub(super) fn shop(
        &mut self,
        at: u64,
        payer: usize,
        shop: usize,
        amount: Amount,
        via: StoreChannel,
        episode: Option<usize>,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        if !self.people[payer].can_pay(amount) {
            return actions;
        }
        let s = self.shops[shop].clone();
        let sub_wallet = self.people[payer]
            .sub_wallet
            .filter(|(_, at_shop)| *at_shop == shop);
        let (channel, terminal, order) = match (s.kind, via, sub_wallet) {
            (ShopKind::Online, _, Some((id, _))) if amount <= Amount::from_yuan(800) => {
                let key = self.driver.key();
                let p = &self.people[payer];
                let command = Command::ChargeSubWallet {
                    sub_wallet: id,
                    merchant: s.id,
                    amount,
                    order: None,
                    key,
                };
                actions.push(City::action(p.operator, at, command, episode));
                self.spend_at(payer, shop, amount);
                return actions;
            }
            (ShopKind::Online, ..) => (PaymentChannel::DynamicQr, s.remote, true),
            (ShopKind::Delivery, ..) => (PaymentChannel::CashOnDelivery, s.remote, true),
            (ShopKind::Store, StoreChannel::Printed, _) => (PaymentChannel::StaticQr, 0, false),
            (ShopKind::Store, StoreChannel::Code, _) if self.code_usable(payer, at, amount) => {
                (PaymentChannel::PaymentCode, s.scan_gun, false)
            }
            // Above the password-free cap, or a second code in one step: the printed QR.
            (ShopKind::Store, StoreChannel::Code, _) => (PaymentChannel::StaticQr, 0, false),
            (ShopKind::Store, StoreChannel::Tap, _) => (PaymentChannel::TapZone, 0, false),
            (ShopKind::Store, StoreChannel::Order, _) => (PaymentChannel::DynamicQr, s.pos, true),
        };
        let reference = order.then(|| {
            self.orders += 1;
            format!("ORD{:010}", self.orders)
        });
        if let Some(reference) = &reference {
            // The till or courier shows the order a tick before the customer pays it.
            let create = Command::CreateOrder {
                merchant: s.id,
                reference: reference.clone(),
                amount,
                expires_at_ms: at + 15 * MINUTE_MS,
                terminal,
                cash_on_delivery: channel == PaymentChannel::CashOnDelivery,
            };
            actions.push(City::action(s.operator, at - TICK_MS, create, episode));
        }
        let key = self.driver.key();
        if channel == PaymentChannel::PaymentCode {
            self.people[payer].last_code_step = Some(code_step_at(at));
        }
        let p = &self.people[payer];
        let paid_at = PaidAt {
            merchant: s.id,
            channel,
            terminal,
            order: reference,
        };
        // A tick's actions are logged at its start: the code shown is that step's.
        let command = merchant_payment(p.wallet, paid_at, amount, key, at / TICK_MS * TICK_MS);
        actions.push(City::action(p.operator, at, command, episode));
        self.spend_at(payer, shop, amount);
        actions
    }

    /// Whether `payer` may pay `amount` by code at `at`: within the cap, once a step.
    pub(super) fn code_usable(&self, payer: usize, at: u64, amount: Amount) -> bool {
        amount <= PASSWORD_FREE_CAP_DEFAULT
            && self.people[payer].last_code_step != Some(code_step_at(at))
    }

    pub(super) fn spend_at(&mut self, payer: usize, shop: usize, amount: Amount) {
        let p = &mut self.people[payer];
        p.balance -= amount.fen();
        p.spent_today += amount.fen();
        self.shops[shop].balance += amount.fen();
    }

    pub(super) fn store_channel(&mut self) -> StoreChannel {
        match self.random.below(100) {
            0..=39 => StoreChannel::Printed,
            40..=74 => StoreChannel::Code,
            75..=89 => StoreChannel::Tap,
            _ => StoreChannel::Order,
        }
    }

    pub(super) fn day(&mut self, day: u32) -> Result<(), SimulationError> {
        let day_ms = self.day_ms(day);
        let (mut actions, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.later)
            .into_iter()
            .partition(|(d, _)| *d == day);
        self.later = later;
        let mut actions: Vec<Action> = actions.drain(..).map(|(_, a)| a).collect();
        self.top_ups_and_sweeps(day_ms, &mut actions);
        self.everyday_payments(day_ms, &mut actions);
        self.near_misses(day, day_ms, &mut actions);
        let today: Vec<(usize, Episode)> = self
            .episodes
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, e)| e.day == day)
            .collect();
        for (index, episode) in today {
            self.play(index, episode, day_ms, &mut actions)?;
        }
        let syncs = self.offline_day(day, day_ms, &mut actions)?;
        // A day's plan stays within the day: the next day starts where this one ended.
        let next_day = day_ms + DAY_MS;
        assert!(
            actions.iter().all(|a| a.at_ms < next_day),
            "an action was planned past midnight"
        );
        self.driver.run(actions)?;
        // Syncs are round trips between card and center; they run once the day's plan has.
        for (at_ms, index, shop) in syncs {
            self.sync(at_ms, index, shop)?;
        }
        self.refresh_balances();
        Ok(())
    }

    /// Before dawn: people running low exchange deposits into e-CNY; merchants deposit
    /// yesterday's takings back into their bank accounts.
    pub(super) fn top_ups_and_sweeps(&mut self, day_ms: u64, actions: &mut Vec<Action>) {
        for i in 0..self.people.len() {
            let p = &self.people[i];
            let (low, top_up) = match p.class {
                WalletClass::Four => (400, 1_500),
                WalletClass::Three => (1_000, 4_000),
                WalletClass::Two => (3_000, 10_000),
                WalletClass::One => (5_000, 20_000),
            };
            let amount = Amount::from_yuan(top_up);
            if p.balance < Amount::from_yuan(low).fen() && p.can_receive(amount) {
                let at = day_ms + 4 * HOUR_MS + self.random.below(HOUR_MS as usize) as u64;
                actions.push(self.exchange(at, i, amount, None));
            }
        }
        for i in 0..self.shops.len() {
            let shop = &self.shops[i];
            if shop.balance > Amount::from_yuan(3_000).fen() {
                let amount = Amount::from_fen(shop.balance / 10 * 9);
                let at = day_ms + 3 * HOUR_MS + self.random.below(HOUR_MS as usize) as u64;
                let key = self.driver.key();
                let command = Command::DepositBack {
                    wallet: shop.wallet,
                    amount,
                    key,
                    auth: None,
                };
                actions.push(City::action(shop.operator, at, command, None));
                self.shops[i].balance -= amount.fen();
            }
        }
    }

    /// Shopping and paying friends: a couple of payments a day, more for verified wallets.
    pub(super) fn everyday_payments(&mut self, day_ms: u64, actions: &mut Vec<Action>) {
        for i in 0..self.people.len() {
            let chance = match self.people[i].class {
                WalletClass::Four => 25,
                WalletClass::Three => 40,
                _ => 50,
            };
            let count = (0..6).filter(|_| self.random.chance(chance)).count();
            for _ in 0..count {
                let at = day_ms + self.random.time_of_day();
                if self.random.chance(72) {
                    let shop = self.random.below(self.shops.len());
                    let (low, high) = self.shops[shop].range;
                    let amount = self.random.yuan(low, high);
                    let via = self.store_channel();
                    actions.extend(self.shop(at, i, shop, amount, via, None));
                } else {
                    let friend = self.people[i].friends[self.random.below(6)] as usize;
                    let amount =
                        if self.people[i].class <= WalletClass::Three && self.random.chance(10) {
                            self.random.yuan(300, 1_500)
                        } else {
                            self.random.yuan(5, 300)
                        };
                    actions.extend(self.pay(at, i, friend, amount, None));
                }
            }
        }
    }
}
