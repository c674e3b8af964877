//! Founding the city: shops, sub-wallets, cards and the episodes to play, before the first day.

use super::*;

/// Actors per labelled pattern: one per thousand wallets, at least two.
pub(super) fn actors_per_pattern(wallets: usize) -> usize {
    (wallets / 1_000).max(2)
}

impl City {
    /// Merchants: a class-2 wallet each, onboarded with a category and a region, with a till
    /// and a scan gun, and a courier's device or a web checkout where their trade has one.
    pub(super) fn open_shops(&mut self, merchants: usize) -> Result<(), SimulationError> {
        const WEIGHTS: [usize; 12] = [14, 12, 10, 12, 4, 6, 6, 6, 3, 4, 6, 6];
        let at = self.setup_ms();
        for op in 1..=3u16 {
            let operator = OperatorId(op);
            let mine: Vec<usize> = (0..merchants)
                .filter(|i| i % 3 == op as usize - 1)
                .collect();
            let mut commands = Vec::new();
            let keys: Vec<KeyPair> = mine.iter().map(|i| merchant_key(*i)).collect();
            for (&i, key) in mine.iter().zip(&keys) {
                commands.push(Command::OpenWallet {
                    operator,
                    phone: (18_000_000_000 + i as u64).into(),
                    public_key: key.public_key(),
                });
                commands.push(Command::OpenDepositAccount { operator });
            }
            let results = self
                .driver
                .batch(at, Origin::Operator(operator), commands)?;
            let mut setup = Vec::new();
            let mut wallets = Vec::new();
            for ((pair, &i), key) in results.chunks(2).zip(&mine).zip(keys) {
                let (Ok(Outcome::Wallet(wallet)), Ok(Outcome::Account(account))) =
                    (&pair[0], &pair[1])
                else {
                    return Err(refused("open merchant wallet", &pair[0]));
                };
                self.driver.holders.insert(*wallet, key);
                // Every category at least once, then by how common each trade is.
                let category = if i < CATEGORIES.len() {
                    i
                } else {
                    let mut draw = self.random.below(WEIGHTS.iter().sum());
                    WEIGHTS
                        .iter()
                        .position(|w| {
                            let hit = draw < *w;
                            draw = draw.saturating_sub(*w);
                            hit
                        })
                        .unwrap_or(0)
                };
                let (code, kind, range) = CATEGORIES[category];
                setup.push(Command::CashDeposit {
                    account: *account,
                    amount: Amount::from_yuan(1_000),
                });
                setup.push(Command::BindBankAccount {
                    wallet: *wallet,
                    account: *account,
                    auth: None,
                });
                setup.push(Command::UpgradeWallet {
                    wallet: *wallet,
                    to: WalletClass::Two,
                    // The shop's owner, as a resident ID names them.
                    name: Some(format!("Merchant {i:06}").into()),
                    id_number: Some(
                        crate::wallet::id_number_from(&format!("4401{:013}", i)).into(),
                    ),
                    in_person: false,
                });
                setup.push(Command::OnboardMerchant {
                    operator,
                    wallet: *wallet,
                    name: format!("Shop {i:05}"),
                    mcc: Mcc::new(code).expect("four digits"),
                    region: REGIONS[self.random.below(REGIONS.len())],
                });
                wallets.push((*wallet, kind, range));
            }
            let results = self.driver.batch(at, Origin::Operator(operator), setup)?;
            let mut terminals = Vec::new();
            for (chunk, (wallet, kind, range)) in results.chunks(4).zip(wallets) {
                let Ok(Outcome::Merchant(id)) = &chunk[3] else {
                    return Err(refused("onboard merchant", &chunk[3]));
                };
                let remote = match kind {
                    ShopKind::Store => None,
                    ShopKind::Online => Some(TerminalKind::OnlineShop),
                    ShopKind::Delivery => Some(TerminalKind::Courier),
                };
                for kind in [Some(TerminalKind::Pos), Some(TerminalKind::ScanGun), remote]
                    .into_iter()
                    .flatten()
                {
                    terminals.push(Command::AddTerminal {
                        merchant: *id,
                        kind,
                    });
                }
                self.shops.push(Shop {
                    id: *id,
                    wallet,
                    operator,
                    kind,
                    range,
                    pos: 1,
                    scan_gun: 2,
                    remote: if remote.is_some() { 3 } else { 0 },
                    balance: 0,
                });
            }
            for result in self
                .driver
                .batch(at, Origin::Operator(operator), terminals)?
            {
                result.map_err(|e| SimulationError::Refused {
                    what: "terminal".into(),
                    code: e.code(),
                })?;
            }
        }
        Ok(())
    }

    /// A fifth of the people push a sub-wallet to an online shop they use.
    pub(super) fn open_sub_wallets(&mut self) -> Result<(), SimulationError> {
        let online: Vec<usize> = (0..self.shops.len())
            .filter(|s| self.shops[*s].kind == ShopKind::Online)
            .collect();
        let limits = SubWalletLimits {
            per_payment: Amount::from_yuan(800),
            daily: Amount::from_yuan(1_500),
        };
        for op in 1..=3u16 {
            let mut holders = Vec::new();
            let mut commands = Vec::new();
            for (i, person) in self.people.iter().enumerate() {
                if person.operator != OperatorId(op) || self.random.below(5) != 0 {
                    continue;
                }
                let shop = online[self.random.below(online.len())];
                commands.push(Command::OpenSubWallet {
                    wallet: person.wallet,
                    merchant: self.shops[shop].id,
                    limits,
                    auth: None,
                });
                holders.push((i, shop));
            }
            let at = self.setup_ms();
            let results = self
                .driver
                .batch(at, Origin::Operator(OperatorId(op)), commands)?;
            for (result, (person, shop)) in results.iter().zip(holders) {
                let Ok(Outcome::SubWallet(id)) = result else {
                    return Err(refused("open sub-wallet", result));
                };
                self.people[person].sub_wallet = Some((*id, shop));
            }
        }
        Ok(())
    }

    /// Hardware wallets: phones and cards for some people, phones at a dozen merchants'
    /// counters to take offline payments.
    pub(super) fn issue_cards(&mut self, wallets: usize) -> Result<(), SimulationError> {
        let now_s = (self.setup_ms() / 1000) as u32;
        let holders = (wallets / 250).max(4);
        let candidates: Vec<usize> = (0..self.people.len())
            .filter(|i| {
                self.people[*i].role == Role::Benign && self.people[*i].class <= WalletClass::Three
            })
            .collect();
        let mut registrations: BTreeMap<u16, Vec<Command>> = BTreeMap::new();
        for n in 0..holders.min(candidates.len()) {
            let owner = candidates[(n * 7919) % candidates.len()];
            let form = if n % 2 == 0 {
                WalletForm::PhoneEse
            } else {
                WalletForm::ContactlessCard
            };
            let (card, register) = self.issue_card(
                DeviceId(1 + n as u64),
                owner,
                self.people[owner].wallet,
                self.people[owner].operator,
                form,
                now_s,
            )?;
            registrations
                .entry(card.operator.0)
                .or_default()
                .push(register);
            self.cards.push(card);
        }
        for n in 0..12.min(self.shops.len()) {
            let shop = &self.shops[n];
            let (id, wallet, operator) = (DeviceId(100_001 + n as u64), shop.wallet, shop.operator);
            let (card, register) =
                self.issue_card(id, n, wallet, operator, WalletForm::PhoneEse, now_s)?;
            registrations.entry(operator.0).or_default().push(register);
            self.shop_cards.push(card);
        }
        let at = self.setup_ms();
        for (op, commands) in registrations {
            for result in self
                .driver
                .batch(at, Origin::Operator(OperatorId(op)), commands)?
            {
                result.map_err(|e| SimulationError::Refused {
                    what: "register device".into(),
                    code: e.code(),
                })?;
            }
        }
        Ok(())
    }

    pub(super) fn issue_card(
        &mut self,
        id: DeviceId,
        owner: usize,
        wallet: WalletId,
        operator: OperatorId,
        form: WalletForm,
        now_s: u32,
    ) -> Result<(Card, Command), SimulationError> {
        let key =
            KeyPair::from_seed(format!("simulate/device/{}/{}", self.random.0 .0, id.0).as_bytes());
        let profile = Profile::new(form);
        let applet = self.issuers[operator.0 as usize - 1]
            .issue(&profile, id, key.clone(), id.0, now_s)
            .map_err(|e| SimulationError::Offline(e.to_string()))?;
        let register = Command::RegisterDevice {
            operator,
            device: id,
            public_key: key.public_key(),
            wallet: Some(wallet),
            caps: profile.caps(),
            auth: None,
        };
        Ok((
            Card {
                id,
                applet,
                operator,
                key,
                owner,
                balance: 0,
                blocked: false,
            },
            register,
        ))
    }

    /// The shadows take the ledger's word every night.
    pub(super) fn refresh_balances(&mut self) {
        let state = self.driver.platform.state();
        for person in &mut self.people {
            person.balance = state.balance(person.wallet).map_or(0, |b| b.fen());
            person.spent_today = 0;
            person.incoming = 0;
        }
        for shop in &mut self.shops {
            shop.balance = state.balance(shop.wallet).map_or(0, |b| b.fen());
        }
    }

    /// When each actor plays its part. Each episode gets its label now; its times are filled in
    /// as it happens.
    pub(super) fn plan_episodes(&mut self, wallets: usize) {
        let days = self.days;
        let actors: Vec<(usize, Pattern)> = (0..self.people.len())
            .filter_map(|i| match self.people[i].role {
                Role::Actor(pattern) => Some((i, pattern)),
                _ => None,
            })
            .collect();
        for (actor, pattern) in actors {
            // Velocity needs days of ordinary history to stand out from.
            let first_day = if pattern == Pattern::VelocityBurst {
                4
            } else {
                0
            };
            if first_day >= days {
                continue;
            }
            let steps = match pattern {
                Pattern::Structuring => 3 + self.random.below(3),
                Pattern::RapidPassThrough => 1 + self.random.below(2),
                _ => 1,
            };
            let label = self.new_label(pattern, actor);
            let mut day = first_day + self.random.below((days - first_day) as usize) as u32;
            for _ in 0..steps {
                self.episodes.push(Episode {
                    day,
                    pattern,
                    actor,
                    label,
                });
                // Structuring spreads over days; pass-through repeats a few days later.
                let gap = if pattern == Pattern::Structuring {
                    self.random.below(2)
                } else {
                    3 + self.random.below(5)
                };
                day = (day + gap as u32).min(days - 1);
            }
        }
        let clones = (wallets / 5_000).max(1).min(self.cards.len() / 2);
        for n in 0..clones {
            let card = (n * 2 + 1) % self.cards.len();
            let owner = self.cards[card].owner;
            let label = self.new_label(Pattern::OfflineClone, owner);
            let day = self.random.below(days as usize) as u32;
            self.episodes.push(Episode {
                day,
                pattern: Pattern::OfflineClone,
                actor: card,
                label,
            });
        }
    }

    pub(super) fn new_label(&mut self, pattern: Pattern, person: usize) -> usize {
        self.labels.push(Label {
            pattern,
            wallet: self.people[person].wallet,
            from_ms: u64::MAX,
            to_ms: 0,
        });
        self.labels.len() - 1
    }

    pub(super) fn mark(&mut self, label: usize, at_ms: u64) {
        let label = &mut self.labels[label];
        label.from_ms = label.from_ms.min(at_ms);
        label.to_ms = label.to_ms.max(at_ms);
    }
}
