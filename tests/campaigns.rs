//! Red-packet campaigns in the ledger, end to end through the operator tier and the durable node:
//! a city funds a campaign, people register through their operators, the registration center
//! draws the winners itself from the revealed seed and hands out packets, packets pay eligible
//! merchants before the holder's own money (and never a person), what is unspent at the end goes
//! back to the city, and the redemption report says where the packets went. The draw is verified
//! from the published files alone; every refusal leaves the state hash as it was; the audit holds
//! after every step and a restart replays it all to the same state hash.
//!
//! The Suzhou campaign runs at full size, 100,000 packets among 1,000,000 registrants: about 25 s
//! in a debug build on this project's 2-core machines.

mod support;

use std::collections::HashSet;
use std::time::Instant;

use ecny::amount::Amount;
use ecny::bench::wallet_holder_key;
use ecny::channels::acquiring::{PaymentChannel, TerminalKind};
use ecny::channels::emvco::Mcc;
use ecny::command::{Command, CommandResult, Outcome};
use ecny::error::PacketUnusable;
use ecny::ids::{CampaignId, EventId, MerchantId, OperatorId, SubWalletId, WalletId};
use ecny::programs::campaign::RegionCode;
use ecny::programs::red_packets::CampaignStatus;
use ecny::programs::{
    winner_notices, Campaign, CampaignTerms, Draw, Eligibility, RegistrantList, Seed, Sponsor,
    Window,
};
use ecny::state_machine::StateMachine;
use ecny::wallet::sub_wallet::SubWalletLimits;
use ecny::wallet::WalletClass;
use support::{yuan, Holder, World, START_MS};

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 24 * HOUR_MS;
/// Commands per operator batch when registering wallets in bulk.
const BATCH_COMMANDS: usize = 32_768;

const REGISTRATION: Window = Window {
    opens_at_ms: START_MS + HOUR_MS,
    closes_at_ms: START_MS + 3 * DAY_MS,
};
const VALIDITY: Window = Window {
    opens_at_ms: START_MS + 4 * DAY_MS,
    closes_at_ms: START_MS + 20 * DAY_MS,
};

fn mcc(code: u16) -> Mcc {
    Mcc::new(code).unwrap()
}

fn code(result: CommandResult) -> &'static str {
    result.expect_err("expected a refusal").code()
}

fn transfer(result: CommandResult) -> EventId {
    match result {
        Ok(Outcome::Transfer(id)) => id,
        other => panic!("expected a transfer, got {other:?}"),
    }
}

struct Shop {
    id: MerchantId,
    owner: Holder,
    scan_gun: u16,
}

fn onboard(world: &mut World, op: OperatorId, name: &str, category: u16, region: u32) -> Shop {
    // Verified at a branch: a busy restaurant's takings outgrow a class 2 balance cap.
    let owner = world.open_banked(op, "1", WalletClass::One);
    let onboard = Command::OnboardMerchant {
        operator: op,
        wallet: owner.wallet,
        name: name.into(),
        mcc: mcc(category),
        region,
    };
    let Ok(Outcome::Merchant(id)) = world.run(op, onboard) else {
        panic!("onboarding {name} refused");
    };
    let Ok(Outcome::Terminal(scan_gun)) = world.run(
        op,
        Command::AddTerminal {
            merchant: id,
            kind: TerminalKind::ScanGun,
        },
    ) else {
        panic!("terminal refused");
    };
    Shop {
        id,
        owner,
        scan_gun,
    }
}

/// Everything the story needs: the city, its merchants and the registrants.
struct City {
    world: World,
    sponsor: Holder,
    seed: Seed,
    restaurant: Shop,
    jeweller: Shop,
    shanghai: Shop,
    online: Shop,
    registrants: Vec<(WalletId, OperatorId)>,
}

impl City {
    fn new(registrants: u32) -> City {
        let mut world = World::new();
        let [jiangnan, lakeside] = world.operators;
        // The city's treasury banks with Jiangnan, which needs the e-CNY for a 20-million budget.
        let issue = vec![
            Command::FundReserves {
                operator: jiangnan,
                amount: yuan("30000000"),
            },
            Command::Issue {
                operator: jiangnan,
                amount: yuan("30000000"),
            },
        ];
        for result in world.platform.as_central_bank(issue).unwrap() {
            result.unwrap();
        }
        let sponsor = world.open_banked(jiangnan, "25000000", WalletClass::One);
        world.exchange(&sponsor, "21000000").unwrap();
        let restaurant = onboard(&mut world, jiangnan, "Songhelou", 5812, 320_508);
        let jeweller = onboard(&mut world, lakeside, "Guanqian Gold", 5944, 320_505);
        let shanghai = onboard(&mut world, lakeside, "Nanxiang Buns", 5812, 310_101);
        let online = onboard(&mut world, jiangnan, "JD.com", 5732, 110_105);
        let registrants = open_registrants(&mut world, registrants);
        City {
            world,
            sponsor,
            seed: Seed::from_bytes(*b"Suzhou Double Twelve 2020 seed!!"),
            restaurant,
            jeweller,
            shanghai,
            online,
            registrants,
        }
    }

    /// Restaurants, groceries and department stores anywhere in Suzhou, and one online shop
    /// registered in Beijing.
    fn terms(&self, id: u32, packets: u32) -> CampaignTerms {
        let packet_value = yuan("200");
        CampaignTerms {
            id: CampaignId(id),
            name: "Suzhou Double Twelve e-CNY red packets".into(),
            sponsor: Sponsor {
                name: "Suzhou Municipal People's Government".into(),
                wallet: self.sponsor.wallet,
            },
            budget: Amount::from_fen(packet_value.fen() * i64::from(packets)),
            packet_count: packets,
            packet_value,
            region: RegionCode::new(320_500).unwrap(),
            eligibility: Eligibility {
                categories: vec![mcc(5812), mcc(5411), mcc(5311)],
                regions: Vec::new(),
                merchants: vec![self.online.id],
            },
            registration: REGISTRATION,
            validity: VALIDITY,
            offline_trial: true,
            seed_commitment: self.seed.commitment(),
        }
    }

    fn sponsor_run(&mut self, command: Command) -> CommandResult {
        let op = self.sponsor.operator;
        self.world.run_signed(op, command)
    }

    fn batch(&mut self, op: OperatorId, commands: Vec<Command>) -> Vec<CommandResult> {
        let mut results = Vec::with_capacity(commands.len());
        for chunk in commands.chunks(BATCH_COMMANDS) {
            results.extend(self.world.platform.as_operator(op, chunk.to_vec()).unwrap());
        }
        results
    }

    fn pay(
        &mut self,
        payer: WalletId,
        shop: MerchantId,
        amount: &str,
        channel: PaymentChannel,
    ) -> CommandResult {
        let op = self.world.platform.state().wallet(payer).unwrap().operator;
        let terminal = if channel == PaymentChannel::PaymentCode {
            self.restaurant.scan_gun
        } else {
            0
        };
        let key = self.world.key();
        let now_ms = self.world.clock.load(std::sync::atomic::Ordering::SeqCst);
        let command = merchant_payment(payer, shop, yuan(amount), (channel, terminal), key, now_ms);
        let command = self.signed(command);
        self.world.run(op, command)
    }

    /// `command` as its holder's phone sends it: signed with the wallet's key if it moves the
    /// holder's money (a payment code is the operator's to charge, unsigned).
    fn signed(&mut self, command: Command) -> Command {
        if !command.needs_holder_signature() {
            return command;
        }
        let state = self.world.platform.state();
        let wallet = state.holder_signer(&command).unwrap().unwrap();
        let op = state.wallet(wallet).unwrap().operator;
        let key = if wallet == self.sponsor.wallet {
            self.sponsor.key.clone()
        } else {
            wallet_holder_key(wallet).clone()
        };
        self.world.platform.sign_as_holder(command, &key, op)
    }

    fn packet_balance(&self, wallet: WalletId) -> Amount {
        self.world.platform.state().packet_balance(wallet)
    }

    /// Gives a registrant some money of its own, from the city's treasury.
    fn give(&mut self, to: WalletId, amount: &str) {
        let key = self.world.key();
        let command = Command::Pay {
            payer: self.sponsor.wallet,
            payee: to,
            amount: yuan(amount),
            key,
            auth: None,
        };
        let command =
            self.world
                .platform
                .sign_as_holder(command, &self.sponsor.key, self.sponsor.operator);
        let op = self.sponsor.operator;
        self.world.run(op, command).unwrap();
    }

    /// A person-to-person payment from a registrant, signed by it.
    fn pay_person(&mut self, from: WalletId, to: WalletId, amount: &str) -> CommandResult {
        let op = self.world.platform.state().wallet(from).unwrap().operator;
        let key = self.world.key();
        let command = Command::Pay {
            payer: from,
            payee: to,
            amount: yuan(amount),
            key,
            auth: None,
        };
        let command = self.signed(command);
        self.world.run(op, command)
    }
}

/// Anonymous class-4 wallets at both operators, opened in operator batches; wallet ids are
/// assigned densely in the batches' order, so each registers the key of its own id.
fn open_registrants(world: &mut World, count: u32) -> Vec<(WalletId, OperatorId)> {
    let mut opened = Vec::with_capacity(count as usize);
    for (index, op) in world.operators.into_iter().enumerate() {
        let mine: Vec<u32> = (0..count).filter(|i| *i as usize % 2 == index).collect();
        let first = world.platform.state().wallets().len();
        let keys = (first..first + mine.len())
            .map(|n| wallet_holder_key(StateMachine::wallet_id_at(n)).public_key());
        let commands: Vec<Command> = mine
            .iter()
            .zip(keys)
            .map(|(i, public_key)| Command::OpenWallet {
                operator: op,
                phone: (15_000_000_000 + u64::from(*i)).into(),
                public_key,
            })
            .collect();
        for chunk in commands.chunks(BATCH_COMMANDS) {
            for result in world.platform.as_operator(op, chunk.to_vec()).unwrap() {
                let Ok(Outcome::Wallet(wallet)) = result else {
                    panic!("open wallet refused: {result:?}");
                };
                let key = world.platform.state().wallet_key(wallet).unwrap();
                assert_eq!(*key, wallet_holder_key(wallet).public_key());
                opened.push((wallet, op));
            }
        }
    }
    opened
}

fn register_all(city: &mut City, campaign: CampaignId) {
    let registrants = city.registrants.clone();
    for op in city.world.operators {
        let commands: Vec<Command> = registrants
            .iter()
            .filter(|(_, owner)| *owner == op)
            .map(|(wallet, _)| Command::RegisterForCampaign {
                campaign,
                wallet: *wallet,
                // One in five opts in to the offline-wallet trial.
                offline_trial: wallet.0 % 5 == 0,
            })
            .collect();
        for result in city.batch(op, commands) {
            assert_eq!(result, Ok(Outcome::Done));
        }
    }
}

fn at(city: &City, ms: u64) {
    let now = city.world.clock.load(std::sync::atomic::Ordering::SeqCst);
    assert!(ms >= now, "time runs forward");
    city.world.advance_ms(ms - now);
}

/// The whole campaign: create, fund, register, draw, verify, spend, refund, expire, report,
/// replay. `registrants` register for `packets` packets of 200 yuan.
fn suzhou_campaign(registrants: u32, packets: u32) {
    let started = Instant::now();
    let mut city = City::new(registrants);
    let opened = started.elapsed();
    let terms = city.terms(1, packets);
    let [jiangnan, lakeside] = city.world.operators;

    // Only the sponsor's operator may publish it; the budget must be packets × value.
    let by_stranger = city.world.run(
        lakeside,
        Command::CreateCampaign {
            terms: terms.clone(),
        },
    );
    // Another operator hears of the sponsor's wallet as of none: it learns nothing of where it
    // is held.
    assert_eq!(code(by_stranger), "UNKNOWN_WALLET");
    let mut miscounted = terms.clone();
    miscounted.budget = yuan("1");
    assert_eq!(
        code(city.sponsor_run(Command::CreateCampaign { terms: miscounted })),
        "CAMPAIGN_BUDGET_MISMATCH"
    );
    let created = city.sponsor_run(Command::CreateCampaign {
        terms: terms.clone(),
    });
    let campaign = CampaignId(1);
    assert_eq!(created, Ok(Outcome::Campaign(campaign)));
    // Sent again, the same terms answer the same campaign; other terms under its id are refused.
    assert_eq!(
        city.sponsor_run(Command::CreateCampaign {
            terms: terms.clone()
        }),
        Ok(Outcome::Campaign(campaign))
    );
    let mut other = terms.clone();
    other.name = "Another campaign".into();
    assert_eq!(
        code(city.sponsor_run(Command::CreateCampaign { terms: other })),
        "CAMPAIGN_EXISTS"
    );

    // A sponsor without the budget cannot fund its campaign; nothing changes.
    let poor = city.world.open_banked(jiangnan, "10", WalletClass::One);
    let mut poor_terms = city.terms(2, packets);
    poor_terms.sponsor.wallet = poor.wallet;
    assert_eq!(
        city.world
            .run(jiangnan, Command::CreateCampaign { terms: poor_terms }),
        Ok(Outcome::Campaign(CampaignId(2)))
    );
    let before = city.world.hash();
    let unfunded = city.world.run_signed(
        jiangnan,
        Command::FundCampaign {
            campaign: CampaignId(2),
            auth: None,
        },
    );
    assert_eq!(code(unfunded), "INSUFFICIENT_FUNDS");
    assert_eq!(
        city.world.hash(),
        before,
        "a refused funding changes nothing"
    );

    // The city's operator cannot fund a campaign out of the city's wallet on its own word, nor
    // with another holder's signature.
    let before = city.world.hash();
    let sponsor_operator = city.sponsor.operator;
    let unsigned = Command::FundCampaign {
        campaign,
        auth: None,
    };
    let refused = city.world.run(sponsor_operator, unsigned.clone());
    assert_eq!(code(refused), "SIGNATURE_REQUIRED");
    let by_another = city
        .world
        .platform
        .sign_as_holder(unsigned, &poor.key, sponsor_operator);
    let refused = city.world.run(sponsor_operator, by_another);
    assert_eq!(code(refused), "SIGNATURE_INVALID");
    assert_eq!(city.world.hash(), before);

    // The city funds its campaign once: the whole budget into the pool.
    let treasury = city.world.balance(city.sponsor.wallet);
    let funding = transfer(city.sponsor_run(Command::FundCampaign {
        campaign,
        auth: None,
    }));
    assert_eq!(
        city.world.balance(city.sponsor.wallet),
        Amount::from_fen(treasury.fen() - terms.budget.fen())
    );
    let twice = city.sponsor_run(Command::FundCampaign {
        campaign,
        auth: None,
    });
    assert_eq!(
        twice,
        Err(ecny::error::CommandError::CampaignAlreadyFunded {
            campaign,
            transfer: funding
        })
    );
    city.world.assert_audit();

    // Registration only inside its window.
    let (early, early_op) = city.registrants[0];
    let register = |wallet| Command::RegisterForCampaign {
        campaign,
        wallet,
        offline_trial: false,
    };
    assert_eq!(
        code(city.world.run(early_op, register(early))),
        "REGISTRATION_NOT_OPEN"
    );
    at(&city, REGISTRATION.opens_at_ms);
    let other_op = if early_op == jiangnan {
        lakeside
    } else {
        jiangnan
    };
    assert_eq!(
        code(city.world.run(other_op, register(early))),
        "UNKNOWN_WALLET"
    );
    let registering = Instant::now();
    register_all(&mut city, campaign);
    let registered = registering.elapsed();

    // The draw waits for registration to close; a late registration is refused.
    let draw = |seed: &Seed| Command::DrawCampaign {
        campaign,
        seed: seed.clone(),
    };
    let seed = city.seed.clone();
    assert_eq!(
        code(city.sponsor_run(draw(&seed))),
        "REGISTRATION_STILL_OPEN"
    );
    at(&city, REGISTRATION.closes_at_ms);
    assert_eq!(
        code(city.world.run(early_op, register(early))),
        "REGISTRATION_NOT_OPEN"
    );

    // A wrong seed is refused by its commitment, and changes nothing.
    let before = city.world.hash();
    let wrong = Seed::from_bytes([9; 32]);
    assert_eq!(
        code(city.sponsor_run(draw(&wrong))),
        "SEED_COMMITMENT_MISMATCH"
    );
    assert_eq!(city.world.hash(), before, "a refused draw changes nothing");

    let drawing = Instant::now();
    let drawn = city.sponsor_run(draw(&seed));
    let draw_time = drawing.elapsed();
    let winners = registrants.min(packets);
    assert_eq!(drawn, Ok(Outcome::Drawn { campaign, winners }));
    assert_eq!(
        code(city.sponsor_run(draw(&seed))),
        "CAMPAIGN_ALREADY_DRAWN"
    );
    city.world.assert_audit();

    // Anyone re-runs the draw from the published campaign, registrant list and draw files.
    let state = city.world.platform.state();
    let book = state.campaign(campaign).unwrap();
    let published_campaign = Campaign::from_json(&book.campaign().to_json()).unwrap();
    let published_list = RegistrantList::parse(&book.registrant_list().unwrap().to_text()).unwrap();
    let published_draw = Draw::from_json(&book.draw().unwrap().to_json()).unwrap();
    assert_eq!(published_list.len(), registrants as usize);
    assert_eq!(
        published_draw.verify(&published_campaign, &published_list),
        Ok(winners as usize)
    );
    let mut tampered = published_draw.clone();
    tampered.seed = wrong.clone();
    assert_eq!(
        tampered
            .verify(&published_campaign, &published_list)
            .unwrap_err()
            .code(),
        "SEED_COMMITMENT_MISMATCH"
    );
    let opted_in = published_list
        .registrants()
        .iter()
        .filter(|r| r.offline_trial)
        .count();
    assert_eq!(
        opted_in,
        city.registrants
            .iter()
            .filter(|(w, _)| w.0 % 5 == 0)
            .count()
    );

    // Each winner holds one packet of 200 yuan in its own packet account, apart from its wallet.
    let winners_list = published_draw.winners.clone();
    let distinct: HashSet<WalletId> = winners_list.iter().copied().collect();
    assert_eq!(distinct.len(), winners as usize);
    for (index, packet) in book.packets().iter().enumerate() {
        assert_eq!(packet.wallet, winners_list[index]);
        let account = state.ledger().account(packet.account).unwrap();
        assert_eq!(account.balance, yuan("200"));
        assert_eq!(
            account.operator,
            state.wallet(packet.wallet).unwrap().operator
        );
    }
    assert_eq!(state.balance(winners_list[0]).unwrap(), Amount::ZERO);
    assert_eq!(
        winner_notices(&published_campaign, &published_draw).len(),
        winners as usize
    );
    let pool = book.pool.unwrap();
    assert_eq!(
        state.ledger().account(pool).unwrap().balance,
        Amount::from_fen(terms.budget.fen() - 20_000 * i64::from(winners))
    );

    spend_and_refund(&mut city, campaign, &winners_list);
    let state = city.world.platform.state();
    let report_before_end = state.redemption_report(campaign).unwrap();
    // A snapshot taken mid-campaign, packets half spent, restores the very same state.
    let restored = StateMachine::decode_snapshot(&state.encode_snapshot()).unwrap();
    assert!(restored == *state, "a snapshot round-trips every campaign");
    assert_eq!(restored.state_hash(), state.state_hash());

    // The end of validity: the next entry sweeps what is unspent back to the city.
    let treasury = city.world.balance(city.sponsor.wallet);
    let unspent = report_before_end.unspent;
    let in_pool = city
        .world
        .platform
        .state()
        .ledger()
        .account(pool)
        .unwrap()
        .balance;
    // The end of its validity is the time a scheduler wakes for (a server with no traffic
    // submits an empty entry then); once it has passed, nothing waits on it.
    assert_eq!(
        city.world.platform.state().next_due_ms(),
        Some(VALIDITY.closes_at_ms)
    );
    at(&city, VALIDITY.closes_at_ms);
    city.give(city.restaurant.owner.wallet, "0.01");
    let state = city.world.platform.state();
    assert_eq!(state.next_due_ms(), None);
    let book = state.campaign(campaign).unwrap();
    assert_eq!(book.status, CampaignStatus::Expired);
    assert_eq!(state.ledger().account(pool).unwrap().balance, Amount::ZERO);
    assert!(book
        .packets()
        .iter()
        .all(|p| state.ledger().account(p.account).unwrap().balance == Amount::ZERO));
    assert_eq!(
        city.world.balance(city.sponsor.wallet),
        Amount::from_fen(treasury.fen() - 1 + unspent.fen() + in_pool.fen()),
        "the unspent packets and the undrawn pool are back with the city"
    );
    let report = state.redemption_report(campaign).unwrap();
    assert_eq!(report.status, CampaignStatus::Expired);
    assert_eq!(report.unspent, Amount::ZERO);
    assert_eq!(
        report.spent.fen() + report.returned.fen(),
        terms.budget.fen(),
        "every fen of the budget was spent or went back"
    );
    city.world.assert_audit();

    after_the_end(&mut city, campaign, &winners_list);

    let hash = city.world.hash();
    let replaying = Instant::now();
    let world = city.world.reopen();
    assert_eq!(world.hash(), hash, "replay rebuilds every campaign exactly");
    world.assert_audit();
    eprintln!(
        "{registrants} registrants, {packets} packets: wallets opened in {opened:.2?}, registered in {registered:.2?}, drawn and distributed in {draw_time:.2?}, replayed in {:.2?}; {:.2?} in all",
        replaying.elapsed(),
        started.elapsed()
    );
}

/// Packets pay eligible merchants first and the holder's own balance the rest; never a person,
/// never an ineligible merchant, never before validity; refunds go back the way they came.
fn spend_and_refund(city: &mut City, campaign: CampaignId, winners: &[WalletId]) {
    let (li, han, mei) = (winners[0], winners[1], winners[2]);
    let restaurant = city.restaurant.id;
    city.give(li, "100");

    // Not yet valid: Li pays from her own money, and a payment her money cannot cover says why.
    city.pay(li, restaurant, "30", PaymentChannel::StaticQr)
        .unwrap();
    assert_eq!(city.world.balance(li), yuan("70"));
    assert_eq!(city.packet_balance(li), yuan("200"));
    assert_eq!(
        code(city.pay(li, restaurant, "100", PaymentChannel::StaticQr)),
        "RED_PACKET_NOT_YET_VALID"
    );
    at(city, VALIDITY.opens_at_ms);

    // At a Suzhou restaurant the packet pays first.
    city.pay(li, restaurant, "66.60", PaymentChannel::StaticQr)
        .unwrap();
    assert_eq!(
        (city.packet_balance(li), city.world.balance(li)),
        (yuan("133.40"), yuan("70"))
    );
    // Then the packet's rest and the wallet's own balance together, by payment code.
    let both = transfer(city.pay(li, restaurant, "150", PaymentChannel::PaymentCode));
    assert_eq!(
        (city.packet_balance(li), city.world.balance(li)),
        (yuan("0"), yuan("53.40"))
    );
    // The whole payment counts towards the wallet's limits, packet part included.
    let state = city.world.platform.state();
    let now = state.last_timestamp_ms();
    assert_eq!(state.wallet(li).unwrap().spent(now).0, yuan("216.60"));

    // A jeweller is not an eligible category: Han's packet does not pay there, and with too
    // little money of his own the payment is refused with the packet's reason; nothing moves.
    let before = city.world.hash();
    let refused = city
        .pay(han, city.jeweller.id, "300", PaymentChannel::StaticQr)
        .unwrap_err();
    assert_eq!(refused.code(), "RED_PACKET_CATEGORY_NOT_ELIGIBLE");
    assert!(
        refused
            .to_string()
            .contains("packet not usable here: merchant category 5944 not eligible"),
        "{refused}"
    );
    assert_eq!(city.world.hash(), before);
    city.give(han, "500");
    city.pay(han, city.jeweller.id, "300", PaymentChannel::TapZone)
        .unwrap();
    assert_eq!(
        (city.packet_balance(han), city.world.balance(han)),
        (yuan("200"), yuan("200"))
    );
    // Nor in Shanghai, whatever the category: the holder can ask why.
    city.pay(han, city.shanghai.id, "12", PaymentChannel::StaticQr)
        .unwrap();
    assert_eq!(city.packet_balance(han), yuan("200"));
    let seen = city
        .world
        .platform
        .state()
        .packets_at_merchant(han, city.shanghai.id, now)
        .unwrap();
    assert_eq!(seen.len(), 1);
    let reason = seen[0].usable.unwrap_err();
    assert!(matches!(reason, PacketUnusable::Merchant(_)));
    assert_eq!(
        reason.to_string(),
        "packet not usable here: merchant region 310101 outside the eligible regions"
    );

    // The listed online shop charges Han's sub-wallet: the packet pays, though the shop is in
    // Beijing and sells electronics.
    let open = Command::OpenSubWallet {
        wallet: han,
        merchant: city.online.id,
        limits: SubWalletLimits {
            per_payment: yuan("1000"),
            daily: yuan("2000"),
        },
        auth: None,
    };
    let han_op = city.world.platform.state().wallet(han).unwrap().operator;
    let open = city.signed(open);
    let Ok(Outcome::SubWallet(sub)) = city.world.run(han_op, open) else {
        panic!("sub-wallet refused");
    };
    let key = city.world.key();
    let charge = Command::ChargeSubWallet {
        sub_wallet: sub,
        merchant: city.online.id,
        amount: yuan("180"),
        order: None,
        key,
    };
    city.world.run(han_op, charge).unwrap();
    assert_eq!(
        (city.packet_balance(han), city.world.balance(han)),
        (yuan("20"), yuan("188"))
    );
    assert_ne!(sub, SubWalletId(0));

    // Person to person, packets never pay: Han's own money goes to Mei, his packet stays.
    city.pay_person(han, mei, "50").unwrap();
    assert_eq!(
        (city.packet_balance(han), city.world.balance(han)),
        (yuan("20"), yuan("138"))
    );
    // And a packet does not fill a wallet's balance cap: Mei can still receive up to her class 4
    // cap of 10,000 in her own money while her 200-yuan packet sits beside it.
    city.give(mei, "9950");
    assert_eq!(city.world.balance(mei), yuan("10000"));
    assert_eq!(city.packet_balance(mei), yuan("200"));
    city.pay(mei, restaurant, "200", PaymentChannel::TapZone)
        .unwrap();
    assert_eq!(
        (city.packet_balance(mei), city.world.balance(mei)),
        (yuan("0"), yuan("10000"))
    );

    // The city's wallet cannot close while its campaign runs: the pool comes back to it.
    let close = Command::CloseWallet {
        wallet: city.sponsor.wallet,
    };
    assert_eq!(code(city.sponsor_run(close)), "WALLET_SPONSORS_CAMPAIGN");

    // A merchant refunds 20 of Li's mixed payment: her own 16.60 first, then 3.40 back into the
    // packet, which is restricted again.
    let key = city.world.key();
    let refund = Command::Refund {
        payment: both,
        amount: yuan("20"),
        key,
    };
    city.world
        .run(city.restaurant.owner.operator, refund)
        .unwrap();
    assert_eq!(
        (city.packet_balance(li), city.world.balance(li)),
        (yuan("3.40"), yuan("70"))
    );

    // Most winners spend some of their packets, in operator batches, across the channels.
    spend_in_bulk(city, &winners[10..]);
    let state = city.world.platform.state();
    let report = state.redemption_report(campaign).unwrap();
    let channel = |c: PaymentChannel| {
        report
            .by_channel
            .iter()
            .find(|line| line.key == c)
            .map(|line| (line.payments, line.amount))
    };
    assert!(channel(PaymentChannel::SubWallet).is_some());
    assert!(channel(PaymentChannel::PaymentCode).is_some());
    // No packet ever paid the jeweller or the Shanghai restaurant.
    assert!(report.by_category.iter().all(|line| line.key != mcc(5944)));
    let restaurants = report
        .by_category
        .iter()
        .find(|line| line.key == mcc(5812))
        .unwrap();
    let online = report
        .by_category
        .iter()
        .find(|line| line.key == mcc(5732))
        .unwrap();
    assert_eq!(online.amount, yuan("180"));
    assert_eq!(
        restaurants.amount.fen() + online.amount.fen(),
        report.spent.fen()
    );
    assert_eq!(report.refunded, yuan("3.40"));
    assert_eq!(
        report.spent.fen() + report.unspent.fen(),
        report.distributed.fen()
    );
    assert!(report.packets_used >= 4 && report.payments > report.packets_used / 2);
    city.world.assert_audit();
}

/// A payment to a merchant on its operator's word; a payment code read at `terminal` is charged
/// as the code of the step holding `now_ms`.
fn merchant_payment(
    payer: WalletId,
    merchant: MerchantId,
    amount: Amount,
    (channel, terminal): (PaymentChannel, u16),
    key: ecny::ids::IdempotencyKey,
    now_ms: u64,
) -> Command {
    if channel == PaymentChannel::PaymentCode {
        return Command::ChargePaymentCode {
            payer,
            merchant,
            terminal,
            amount,
            code_step: now_ms / 1000 / ecny::channels::payment_code::CODE_STEP_S,
            key,
        };
    }
    Command::PayMerchant {
        payer,
        merchant,
        amount,
        channel,
        terminal,
        order: None,
        key,
        auth: None,
    }
}

/// Every third winner pays the restaurant 10 to 200 yuan from its packet, by turns of QR, tap
/// zone and payment code.
fn spend_in_bulk(city: &mut City, winners: &[WalletId]) {
    let restaurant = city.restaurant.id;
    let channels = [
        PaymentChannel::StaticQr,
        PaymentChannel::TapZone,
        PaymentChannel::PaymentCode,
    ];
    let scan_gun = city.restaurant.scan_gun;
    let now_ms = city.world.clock.load(std::sync::atomic::Ordering::SeqCst);
    let state = city.world.platform.state();
    let mut by_operator: Vec<(OperatorId, Vec<Command>)> = city
        .world
        .operators
        .iter()
        .map(|op| (*op, Vec::new()))
        .collect();
    for (index, wallet) in winners.iter().enumerate().step_by(3) {
        let op = state.wallet(*wallet).unwrap().operator;
        let channel = channels[index / 3 % channels.len()];
        let terminal = if channel == PaymentChannel::PaymentCode {
            scan_gun
        } else {
            0
        };
        let command = merchant_payment(
            *wallet,
            restaurant,
            Amount::from_fen(1_000 + (index as i64 * 7_919) % 19_001),
            (channel, terminal),
            ecny::ids::IdempotencyKey(1 << 64 | index as u128),
            now_ms,
        );
        let list = &mut by_operator.iter_mut().find(|(o, _)| *o == op).unwrap().1;
        list.push(command);
    }
    for (_, commands) in by_operator.iter_mut() {
        *commands = commands.drain(..).map(|c| city.signed(c)).collect();
    }
    for (op, commands) in by_operator {
        for result in city.batch(op, commands) {
            result.unwrap();
        }
    }
}

/// After the end: packets pay nothing and say so, a refund of a packet's part goes to the city,
/// and the city's wallet cannot close while it sponsors a running campaign (checked on campaign
/// 2, never funded nor drawn, which ended with campaign 1).
fn after_the_end(city: &mut City, campaign: CampaignId, winners: &[WalletId]) {
    let tao = winners[3];
    let before = city.world.hash();
    assert_eq!(
        code(city.pay(tao, city.restaurant.id, "50", PaymentChannel::StaticQr)),
        "RED_PACKET_EXPIRED"
    );
    assert_eq!(city.world.hash(), before);

    // The restaurant refunds the last 100 of one of the bulk payments: the packet's part goes to
    // the city, not the holder, since the packet is gone.
    let state = city.world.platform.state();
    let spend = *state
        .campaign(campaign)
        .unwrap()
        .spends()
        .iter()
        .rev()
        .find(|s| s.amount >= yuan("100") && s.refunded == Amount::ZERO)
        .unwrap();
    let payer = state.campaign(campaign).unwrap().packets()[spend.packet as usize].wallet;
    let (own, treasury) = (
        city.world.balance(payer),
        city.world.balance(city.sponsor.wallet),
    );
    let key = city.world.key();
    let refund = Command::Refund {
        payment: spend.payment,
        amount: yuan("100"),
        key,
    };
    city.world
        .run(city.restaurant.owner.operator, refund)
        .unwrap();
    assert_eq!(city.world.balance(payer), own);
    assert_eq!(
        city.world.balance(city.sponsor.wallet),
        Amount::from_fen(treasury.fen() + 10_000)
    );
    city.world.assert_audit();

    // Once the city has closed its wallet, a packet's part of a refund has nowhere to go: the
    // refund is refused, and nothing moves.
    let close = Command::CloseWallet {
        wallet: city.sponsor.wallet,
    };
    assert_eq!(city.sponsor_run(close), Ok(Outcome::Done));
    let before = city.world.hash();
    let key = city.world.key();
    let refund = Command::Refund {
        payment: spend.payment,
        amount: yuan("1"),
        key,
    };
    let refused = city.world.run(city.restaurant.owner.operator, refund);
    assert_eq!(code(refused), "WALLET_CLOSED");
    assert_eq!(city.world.hash(), before);
    city.world.assert_audit();

    // Campaign 2 ended too: nothing to return, and a draw now is refused.
    let state = city.world.platform.state();
    assert_eq!(
        state.campaign(CampaignId(2)).unwrap().status,
        CampaignStatus::Expired
    );
    let jiangnan = city.world.operators[0];
    let late = Command::DrawCampaign {
        campaign: CampaignId(2),
        seed: city.seed.clone(),
    };
    assert_eq!(code(city.world.run(jiangnan, late)), "CAMPAIGN_ENDED");
}

#[test]
fn more_packets_than_registrants_leave_the_rest_in_the_pool_for_the_sponsor() {
    suzhou_campaign(300, 1_000);
}

#[test]
fn the_suzhou_campaign_at_full_size_100000_packets_among_1000000_registrants() {
    suzhou_campaign(1_000_000, 100_000);
}

fn ecny(args: &[&str]) -> (bool, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ecny"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn the_campaign_demo_publishes_a_draw_anyone_verifies_and_reports_its_redemption() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let data = data.to_str().unwrap();
    let (ok, text) = ecny(&[
        "campaign",
        "demo",
        "--data",
        data,
        "--registrants",
        "3000",
        "--packets",
        "500",
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("500 packets handed out"), "{text}");
    assert!(
        text.contains("merchant category 5944 not eligible [RED_PACKET_CATEGORY_NOT_ELIGIBLE]"),
        "{text}"
    );
    assert!(text.contains("Audit: every invariant holds."), "{text}");

    let published = |name: &str| format!("{data}/RP000001/{name}");
    let (ok, text) = ecny(&[
        "lottery",
        "verify",
        "--campaign",
        &published("campaign.json"),
        "--registrants",
        &published("registrants.txt"),
        "--draw",
        &published("draw.json"),
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("verified: 500 winners"), "{text}");

    let (ok, report) = ecny(&["campaign", "report", "--data", data]);
    assert!(ok, "{report}");
    for line in [
        "Red-packet campaign RP000001",
        "(expired)",
        "500 packets of ¥200.00 drawn",
        "still in packets ¥0.00",
        "by merchant category",
        "5812",
        "5732",
        "static_qr",
        "tap_zone",
        "payment_code",
        "dynamic_qr",
    ] {
        assert!(report.contains(line), "{line:?} missing from\n{report}");
    }
    assert!(!report.contains("5944"), "{report}");
    let (ok, text) = ecny(&[
        "campaign",
        "report",
        "--data",
        data,
        "--campaign",
        "RP000002",
    ]);
    assert!(!ok && text.contains("UNKNOWN_CAMPAIGN"), "{text}");
}
