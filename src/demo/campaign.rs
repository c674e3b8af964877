//! `ecny campaign demo`: Suzhou's red-packet campaign on a fresh data directory. The city funds
//! 200-yuan packets; people register through their operators; after registration closes the city
//! reveals its seed and the registration center draws the winners and hands out the packets;
//! packets pay restaurants, groceries and department stores in Suzhou and one listed online shop
//! before the holder's own money, and say why they cannot pay elsewhere; at the end of validity
//! what is unspent returns to the city. The published campaign, registrant list and draw are
//! written beside the data for `ecny lottery verify`; it ends with the redemption report and the
//! audit.
//!
//! The demo's clock starts now and jumps ahead from registration to the draw, to validity and to
//! its end: the data directory's last entries are dated three weeks in the future.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::amount::Amount;
use crate::audit::audit;
use crate::bench::wallet_holder_key;
use crate::channels::acquiring::{PaymentChannel, TerminalKind};
use crate::channels::emvco::Mcc;
use crate::channels::payment_request::{merchant_payment, PaidAt};
use crate::command::{Command, CommandResult, Outcome};
use crate::demo::DemoError;
use crate::ids::{CampaignId, IdempotencyKey, MerchantId, OperatorId, WalletId};
use crate::node::ManualClock;
use crate::platform::Platform;
use crate::programs::campaign::{CampaignTerms, Eligibility, RegionCode, Sponsor, Window};
use crate::programs::lottery::{RegistrantList, Seed};
use crate::programs::{winner_notices, Campaign, Draw};
use crate::state_machine::StateMachine;
use crate::time::{DAY_MS, HOUR_MS};
use crate::wallet::WalletClass;

const SEED: &str = "campaign-demo";
/// Fewest registrants the story can be told with: it spends two winners' packets.
pub const CAMPAIGN_DEMO_REGISTRANTS_MIN: u32 = 2;
/// Commands per operator batch for the registrants' wallets and registrations.
const BATCH_COMMANDS: usize = 32_768;

/// How large a campaign the demo runs.
pub struct CampaignDemoSize {
    pub registrants: u32,
    pub packets: u32,
}

/// An amount as the story writes it, thousands separated for the reader ("1,000,000"); the
/// platform itself takes only digits and a point.
fn yuan(text: &str) -> Amount {
    text.replace(',', "")
        .parse()
        .expect("demo amounts are well formed")
}

fn step(what: &str) -> impl Fn(crate::CommandError) -> DemoError + '_ {
    move |error| DemoError::Step(format!("{what}: refused with {} ({error})", error.code()))
}

struct Shop {
    id: MerchantId,
    operator: OperatorId,
    scan_gun: u16,
}

struct Story<'a> {
    platform: Platform,
    clock: Arc<AtomicU64>,
    out: &'a mut dyn FnMut(&str),
    next_key: u128,
}

impl Story<'_> {
    fn say(&mut self, text: &str) {
        (self.out)(text);
    }

    /// The command as its holder's phone sends it: signed with the wallet's key if it moves the
    /// holder's money (the story plays every party). Left unsigned if the state knows no
    /// wallet for it: the center refuses it then.
    fn signed(&mut self, command: Command) -> Command {
        self.platform
            .signed_by_its_holder(command, |wallet| Some(wallet_holder_key(wallet)))
    }

    fn run(&mut self, op: OperatorId, command: Command, what: &str) -> Result<Outcome, DemoError> {
        let command = self.signed(command);
        self.platform.one(op, command)?.map_err(step(what))
    }

    fn refused(&mut self, op: OperatorId, command: Command, code: &str) -> Result<(), DemoError> {
        let command = self.signed(command);
        match self.platform.one(op, command)? {
            Err(error) if error.code() == code => {
                self.say(&format!("  ✓ refused, as it must be: {error} [{code}]"));
                Ok(())
            }
            other => Err(DemoError::Step(format!(
                "expected {code}, but it was {}",
                crate::demo::described(&other)
            ))),
        }
    }

    fn batch(&mut self, op: OperatorId, commands: Vec<Command>) -> Result<(), DemoError> {
        let commands: Vec<Command> = commands.into_iter().map(|c| self.signed(c)).collect();
        for chunk in commands.chunks(BATCH_COMMANDS) {
            for result in self.platform.as_operator(op, chunk.to_vec())? {
                result.map_err(step("batch"))?;
            }
        }
        Ok(())
    }

    fn key(&mut self) -> IdempotencyKey {
        self.next_key += 1;
        IdempotencyKey(0xCA4D_0000_0000_0000_0000_0000_0000_0000 | self.next_key)
    }

    fn set_time(&mut self, ms: u64) {
        self.clock.fetch_max(ms, Ordering::SeqCst);
    }

    /// A wallet verified at a branch, with `amount` exchanged into it.
    fn verified(
        &mut self,
        op: OperatorId,
        phone: u64,
        name: &str,
        amount: &str,
    ) -> Result<WalletId, DemoError> {
        let next = StateMachine::wallet_id_at(self.platform.state().wallets().len());
        let open = Command::OpenWallet {
            operator: op,
            phone: phone.into(),
            public_key: wallet_holder_key(next).public_key(),
        };
        let Outcome::Wallet(wallet) = self.run(op, open, "open wallet")? else {
            unreachable!("open wallet answers a wallet")
        };
        assert_eq!(wallet, next, "wallet ids are assigned densely");
        let bank = Command::OpenDepositAccount { operator: op };
        let Outcome::Account(account) = self.run(op, bank, "open account")? else {
            unreachable!("open account answers an account")
        };
        let deposit = Amount::from_fen(yuan(amount).fen().max(1));
        let key = self.key();
        let mut commands = vec![
            Command::CashDeposit {
                account,
                amount: deposit,
            },
            Command::BindBankAccount {
                wallet,
                account,
                auth: None,
            },
            Command::UpgradeWallet {
                wallet,
                to: WalletClass::One,
                name: Some(name.into()),
                // One person each: an ID number made from the wallet's phone.
                id_number: Some(
                    crate::wallet::id_number_from(&format!(
                        "320500{:011}",
                        phone % 100_000_000_000
                    ))
                    .into(),
                ),
                in_person: true,
            },
        ];
        if yuan(amount).is_positive() {
            commands.push(Command::Exchange {
                wallet,
                amount: yuan(amount),
                key,
                auth: None,
            });
        }
        let commands: Vec<Command> = commands.into_iter().map(|c| self.signed(c)).collect();
        for result in self.platform.as_operator(op, commands)? {
            result.map_err(step("verify wallet"))?;
        }
        Ok(wallet)
    }

    fn shop(
        &mut self,
        op: OperatorId,
        name: &str,
        category: u16,
        region: u32,
    ) -> Result<Shop, DemoError> {
        self.next_key += 1;
        let owner = self.verified(op, 13_600_000_000 + self.next_key as u64, name, "0")?;
        let onboard = Command::OnboardMerchant {
            operator: op,
            wallet: owner,
            name: name.into(),
            mcc: Mcc::new(category).expect("a four-digit category"),
            region,
        };
        let Outcome::Merchant(id) = self.run(op, onboard, "onboard")? else {
            unreachable!("onboarding answers a merchant")
        };
        let terminal = Command::AddTerminal {
            merchant: id,
            kind: TerminalKind::ScanGun,
        };
        let Outcome::Terminal(scan_gun) = self.run(op, terminal, "terminal")? else {
            unreachable!("a terminal answers its number")
        };
        Ok(Shop {
            id,
            operator: op,
            scan_gun,
        })
    }

    fn pay(
        &mut self,
        payer: WalletId,
        shop: &Shop,
        amount: &str,
        channel: PaymentChannel,
    ) -> Result<CommandResult, DemoError> {
        let op = self
            .platform
            .state()
            .wallet(payer)
            .map_err(step("payer"))?
            .operator;
        let key = self.key();
        let at = PaidAt {
            merchant: shop.id,
            channel,
            terminal: if channel == PaymentChannel::PaymentCode {
                shop.scan_gun
            } else {
                0
            },
            order: None,
        };
        let now_ms = self.platform.node_mut().now_ms();
        let command = merchant_payment(payer, at, yuan(amount), key, now_ms);
        let command = self.signed(command);
        Ok(self.platform.one(op, command)?)
    }

    fn wallets(&self, wallet: WalletId) -> (Amount, Amount) {
        let state = self.platform.state();
        (
            state.balance(wallet).unwrap_or(Amount::ZERO),
            state.packet_balance(wallet),
        )
    }
}

struct City {
    jiangnan: OperatorId,
    lakeside: OperatorId,
    treasury: WalletId,
    restaurant: Shop,
    jeweller: Shop,
    online: Shop,
}

pub fn run(
    dir: &Path,
    size: &CampaignDemoSize,
    out: &mut dyn FnMut(&str),
) -> Result<(), DemoError> {
    if size.registrants < CAMPAIGN_DEMO_REGISTRANTS_MIN {
        return Err(DemoError::Step(format!(
            "the story needs at least {CAMPAIGN_DEMO_REGISTRANTS_MIN} registrants, not {}",
            size.registrants
        )));
    }
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let clock = Arc::new(AtomicU64::new(now_ms));
    let (platform, _) = Platform::open_seeded(dir, SEED, Box::new(ManualClock(clock.clone())))?;
    let mut story = Story {
        platform,
        clock,
        out,
        next_key: 0,
    };
    story.say(&format!(
        "ecny campaign demo on data directory {}: {} packets of ¥200 among {} registrants",
        dir.display(),
        size.packets,
        size.registrants
    ));
    let city = city(&mut story, size)?;
    let registration = Window {
        opens_at_ms: now_ms + HOUR_MS,
        closes_at_ms: now_ms + 2 * DAY_MS,
    };
    let validity = Window {
        opens_at_ms: now_ms + 4 * DAY_MS,
        closes_at_ms: now_ms + 20 * DAY_MS,
    };
    let seed = Seed::from_bytes(*b"Suzhou Double Twelve 2020 seed!!");
    let terms = CampaignTerms {
        id: CampaignId(1),
        name: "Suzhou Double Twelve e-CNY red packets".into(),
        sponsor: Sponsor {
            name: "Suzhou Municipal People's Government".into(),
            wallet: city.treasury,
        },
        budget: Amount::from_fen(20_000 * i64::from(size.packets)),
        packet_count: size.packets,
        packet_value: yuan("200"),
        region: RegionCode::new(320_500).expect("Suzhou"),
        eligibility: Eligibility {
            categories: ["5812", "5411", "5311"]
                .iter()
                .map(|code| code.parse().expect("categories"))
                .collect(),
            regions: Vec::new(),
            merchants: vec![city.online.id],
        },
        registration,
        validity,
        offline_trial: true,
        seed_commitment: seed.commitment(),
    };
    let campaign = create_and_register(&mut story, &city, terms, size)?;
    draw(&mut story, &city, campaign, &seed, registration, dir)?;
    story.set_time(validity.opens_at_ms);
    spend(&mut story, &city, campaign)?;
    story.say("\n6. Validity ends: what is unspent returns to the city");
    story.set_time(validity.closes_at_ms);
    let state = story.platform.state();
    let book = state.campaign(campaign).map_err(step("campaign"))?;
    let last_spend = book.spends().last().copied();
    let (before, unspent) = (
        story.wallets(city.treasury).0,
        state.redemption_report(campaign).map_err(step("report"))?,
    );
    let in_pool = book
        .pool
        .and_then(|pool| state.ledger().account(pool).ok())
        .map_or(Amount::ZERO, |account| account.balance);
    // The restaurant refunds part of a packet payment: the first entry after the end, so the
    // sweep runs first, and the packet's part of the refund goes to the city, not the holder.
    let refund = Amount::from_fen(1_000);
    if let Some(spend) = last_spend.filter(|spend| spend.amount >= refund) {
        let command = Command::Refund {
            payment: spend.payment,
            amount: refund,
            key: story.key(),
        };
        story.run(city.restaurant.operator, command, "refund after the end")?;
    }
    let back = Amount::from_fen(story.wallets(city.treasury).0.fen() - before.fen());
    story.say(&format!(
        "  ✓ {} back in the city's treasury: {} unspent in packets, {} never drawn, and a ¥10.00 refund of a packet payment made after the end",
        back.yuan_sign(),
        unspent.unspent.yuan_sign(),
        Amount::from_fen(in_pool.fen()).yuan_sign()
    ));
    let report = story
        .platform
        .state()
        .redemption_report(campaign)
        .map_err(step("report"))?;
    story.say(&format!("\n7. The redemption report\n{report}"));
    let audit = audit(story.platform.state());
    if !audit.is_clean() {
        return Err(DemoError::Step(format!("audit failed:\n{audit}")));
    }
    story.say(&format!(
        "\n{audit}\nTry `ecny campaign report --data {}`.",
        dir.display()
    ));
    Ok(())
}

fn city(story: &mut Story, size: &CampaignDemoSize) -> Result<City, DemoError> {
    story.say("\n1. Suzhou: two operators, the city's treasury, three shops and the registrants");
    let jiangnan = story.platform.create_operator("Jiangnan Commercial Bank")?;
    let lakeside = story.platform.create_operator("Lakeside Digital Bank")?;
    let budget = Amount::from_fen(20_000 * i64::from(size.packets) + 100_000_000);
    let issue = vec![
        Command::FundReserves {
            operator: jiangnan,
            amount: budget,
        },
        Command::Issue {
            operator: jiangnan,
            amount: budget,
        },
    ];
    for result in story.platform.as_central_bank(issue)? {
        result.map_err(step("issue"))?;
    }
    let treasury_yuan = format!("{}", Amount::from_fen(budget.fen() - 50_000_000));
    let treasury = story.verified(
        jiangnan,
        13_512_345_678,
        "Suzhou Municipal Finance Bureau",
        &treasury_yuan,
    )?;
    let restaurant = story.shop(jiangnan, "Songhelou", 5812, 320_508)?;
    let jeweller = story.shop(lakeside, "Guanqian Gold", 5944, 320_505)?;
    let online = story.shop(jiangnan, "JD.com", 5732, 110_105)?;
    story.say(&format!(
        "  ✓ treasury {treasury} holds {}; merchants: {} restaurant (5812, Gusu), {} jeweller (5944), {} online shop (5732, registered in Beijing)",
        story.wallets(treasury).0.yuan_sign(),
        restaurant.id,
        jeweller.id,
        online.id
    ));
    let started = Instant::now();
    for (index, op) in [jiangnan, lakeside].into_iter().enumerate() {
        let mine: Vec<u32> = (0..size.registrants)
            .filter(|i| *i as usize % 2 == index)
            .collect();
        // Wallet ids are assigned densely, in the batch's order: each key is its wallet's.
        let first = story.platform.state().wallets().len();
        let keys = (first..first + mine.len())
            .map(|n| wallet_holder_key(StateMachine::wallet_id_at(n)).public_key());
        let commands = mine
            .iter()
            .zip(keys)
            .map(|(i, public_key)| Command::OpenWallet {
                operator: op,
                phone: (15_000_000_000 + u64::from(*i)).into(),
                public_key,
            })
            .collect();
        story.batch(op, commands)?;
    }
    story.say(&format!(
        "  ✓ {} anonymous wallets opened at both operators in {:.1} s",
        size.registrants,
        started.elapsed().as_secs_f64()
    ));
    Ok(City {
        jiangnan,
        lakeside,
        treasury,
        restaurant,
        jeweller,
        online,
    })
}

fn create_and_register(
    story: &mut Story,
    city: &City,
    terms: CampaignTerms,
    size: &CampaignDemoSize,
) -> Result<CampaignId, DemoError> {
    story.say("\n2. The city publishes its campaign with its seed commitment, and funds it");
    let commitment = terms.seed_commitment;
    let created = Command::CreateCampaign { terms };
    let Outcome::Campaign(campaign) = story.run(city.jiangnan, created, "create campaign")? else {
        unreachable!("a campaign answers its id")
    };
    let funded = Command::FundCampaign {
        campaign,
        auth: None,
    };
    story.run(city.jiangnan, funded, "fund campaign")?;
    story.say(&format!(
        "  ✓ campaign {campaign} created and funded; seed commitment {commitment}"
    ));
    story.refused(
        city.jiangnan,
        Command::FundCampaign {
            campaign,
            auth: None,
        },
        "CAMPAIGN_ALREADY_FUNDED",
    )?;

    story.say("\n3. People register through their operators while the window is open");
    let wallets = story.platform.state().wallets().len() as u32;
    let first = wallets - size.registrants + 1;
    story.refused(
        city.jiangnan,
        Command::RegisterForCampaign {
            campaign,
            wallet: WalletId(first),
            offline_trial: false,
        },
        "REGISTRATION_NOT_OPEN",
    )?;
    let opens = story
        .platform
        .state()
        .campaign(campaign)
        .map_err(step("campaign"))?
        .terms()
        .registration
        .opens_at_ms;
    story.set_time(opens);
    for op in [city.jiangnan, city.lakeside] {
        let commands = (first..=wallets)
            .map(WalletId)
            .filter(|wallet| {
                story
                    .platform
                    .state()
                    .wallet(*wallet)
                    .is_ok_and(|w| w.operator == op)
            })
            .map(|wallet| Command::RegisterForCampaign {
                campaign,
                wallet,
                offline_trial: wallet.0 % 5 == 0,
            })
            .collect();
        story.batch(op, commands)?;
    }
    story.say(&format!(
        "  ✓ {} registered, one in five opting in to the offline-wallet trial",
        size.registrants
    ));
    Ok(campaign)
}

fn draw(
    story: &mut Story,
    city: &City,
    campaign: CampaignId,
    seed: &Seed,
    registration: Window,
    dir: &Path,
) -> Result<(), DemoError> {
    story
        .say("\n4. Registration closes; the city reveals its seed; the center draws and hands out");
    story.set_time(registration.closes_at_ms);
    let wrong = Command::DrawCampaign {
        campaign,
        seed: Seed::from_bytes([0; 32]),
    };
    story.refused(city.jiangnan, wrong, "SEED_COMMITMENT_MISMATCH")?;
    let started = Instant::now();
    let command = Command::DrawCampaign {
        campaign,
        seed: seed.clone(),
    };
    let Outcome::Drawn { winners, .. } = story.run(city.jiangnan, command, "draw")? else {
        unreachable!("a draw answers its winners")
    };
    story.say(&format!(
        "  ✓ {winners} packets handed out in {:.0} ms (the draw re-run over every registration, one packet account and one transfer per winner, durably logged)",
        started.elapsed().as_secs_f64() * 1000.0
    ));
    let state = story.platform.state();
    let book = state.campaign(campaign).map_err(step("campaign"))?;
    let (campaign_file, list, draw) = (
        book.campaign().to_json(),
        book.registrant_list().map(RegistrantList::to_text),
        book.draw(),
    );
    let (Some(list), Some(draw)) = (list, draw) else {
        return Err(DemoError::Step("the drawn campaign has no draw".into()));
    };
    let published = dir.join(format!("{campaign}"));
    let write = |name: &str, text: &str| {
        std::fs::create_dir_all(&published)
            .and_then(|_| std::fs::write(published.join(name), text))
            .map_err(|e| DemoError::Step(format!("cannot write {name}: {e}")))
    };
    write("campaign.json", &campaign_file)?;
    write("registrants.txt", &list)?;
    write("draw.json", &draw.to_json())?;
    // What a sceptic does with the published files.
    let unreadable = |e: &dyn std::fmt::Display| DemoError::Step(format!("published files: {e}"));
    let campaign_read = Campaign::from_json(&campaign_file).map_err(|e| unreadable(&e))?;
    let list_read = RegistrantList::parse(&list).map_err(|e| unreadable(&e))?;
    let draw_read = Draw::from_json(&draw.to_json()).map_err(|e| unreadable(&e))?;
    let verified = (
        draw_read
            .verify(&campaign_read, &list_read)
            .map_err(|e| unreadable(&e))?,
        winner_notices(&campaign_read, &draw_read).len(),
    );
    story.say(&format!(
        "  ✓ published in {}: re-running the draw from the files gives the same {} winners; {} SMS texts for the operators to send",
        published.display(),
        verified.0,
        verified.1
    ));
    Ok(())
}

fn spend(story: &mut Story, city: &City, campaign: CampaignId) -> Result<(), DemoError> {
    story.say("\n5. Packets pay eligible merchants first, and say why they cannot pay elsewhere");
    let winners: Vec<WalletId> = story
        .platform
        .state()
        .campaign(campaign)
        .map_err(step("campaign"))?
        .packets()
        .iter()
        .map(|packet| packet.wallet)
        .collect();
    let Some(&first) = winners.first() else {
        return Err(DemoError::Step("no winners".into()));
    };
    let gift = Command::Pay {
        payer: city.treasury,
        payee: first,
        amount: yuan("100"),
        key: story.key(),
        auth: None,
    };
    story.run(city.jiangnan, gift, "pocket money")?;
    story
        .pay(first, &city.restaurant, "66.60", PaymentChannel::StaticQr)?
        .map_err(step("restaurant"))?;
    let (own, packets) = story.wallets(first);
    story.say(&format!(
        "  ✓ {first} pays ¥66.60 at the restaurant by its QR: the packet pays; own {}, packet {}",
        own.yuan_sign(),
        packets.yuan_sign()
    ));
    story
        .pay(first, &city.restaurant, "150", PaymentChannel::PaymentCode)?
        .map_err(step("restaurant"))?;
    let (own, packets) = story.wallets(first);
    story.say(&format!(
        "  ✓ then ¥150 by payment code: the packet's ¥133.40 and ¥16.60 of its own; own {}, packet {}",
        own.yuan_sign(),
        packets.yuan_sign()
    ));
    if let Some(&second) = winners.get(1) {
        let at_jeweller = story.pay(second, &city.jeweller, "300", PaymentChannel::TapZone)?;
        match at_jeweller {
            Err(error) => story.say(&format!(
                "  ✓ {second} at the jeweller: {error} [{}]",
                error.code()
            )),
            Ok(_) => {
                return Err(DemoError::Step(
                    "a packet paid an ineligible jeweller".into(),
                ))
            }
        }
    }
    let started = Instant::now();
    let now_ms = story.platform.node_mut().now_ms();
    let channels = [
        PaymentChannel::StaticQr,
        PaymentChannel::TapZone,
        PaymentChannel::PaymentCode,
    ];
    // Every third winner spends: one in ten of them at the online shop's checkout (an order
    // each), the rest at the restaurant by turns of QR, tap zone and payment code.
    let (mut orders, mut payments) = (Vec::new(), Vec::new());
    for (index, wallet) in winners.iter().enumerate().skip(2).step_by(3) {
        let owner = story
            .platform
            .state()
            .wallet(*wallet)
            .map_err(step("winner"))?
            .operator;
        let online = index % 10 == 0;
        let (shop, channel) = if online {
            (&city.online, PaymentChannel::DynamicQr)
        } else {
            (&city.restaurant, channels[index / 3 % channels.len()])
        };
        let amount = if online {
            Amount::from_fen(15_000)
        } else {
            Amount::from_fen(1_000 + (index as i64 * 7_919) % 19_001)
        };
        let order = online.then(|| format!("JD-{index}"));
        if let Some(reference) = &order {
            orders.push(Command::CreateOrder {
                merchant: shop.id,
                reference: reference.clone(),
                amount,
                expires_at_ms: u64::MAX,
                terminal: 0,
                cash_on_delivery: false,
            });
        }
        let terminal = if channel == PaymentChannel::PaymentCode {
            shop.scan_gun
        } else {
            0
        };
        let at = PaidAt {
            merchant: shop.id,
            channel,
            terminal,
            order,
        };
        let key = IdempotencyKey(1 << 100 | index as u128);
        payments.push((owner, merchant_payment(*wallet, at, amount, key, now_ms)));
    }
    let count = payments.len();
    story.batch(city.online.operator, orders)?;
    for op in [city.jiangnan, city.lakeside] {
        let mine = payments
            .iter()
            .filter(|(owner, _)| *owner == op)
            .map(|(_, command)| command.clone())
            .collect();
        story.batch(op, mine)?;
    }
    story.say(&format!(
        "  ✓ {count} more winners spend at the restaurant and the online shop, in operator batches ({:.1} s)",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}
