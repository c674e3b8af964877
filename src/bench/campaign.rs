//! `ecny bench campaign`: a red-packet campaign's work in the registration center — the draw
//! re-run over the registrations and the packets handed out, payments that spend packets, and the
//! expiry sweep — measured on the state machine alone, as replay would apply it. Set-up (wallets,
//! registrations) is not timed.

use std::time::{Duration, Instant};

use crate::amount::Amount;
use crate::certs::KeyPair;
use crate::channels::acquiring::PaymentChannel;
use crate::channels::emvco::Mcc;
use crate::command::{Command, CommandResult, Origin, Outcome, Submission};
use crate::ids::{CampaignId, IdempotencyKey, MerchantId, OperatorId, WalletId};
use crate::programs::campaign::{CampaignTerms, Eligibility, RegionCode, Sponsor, Window};
use crate::programs::lottery::Seed;
use crate::programs::red_packets::CampaignStatus;
use crate::state_machine::StateMachine;
use crate::time::{DAY_MS, HOUR_MS};
use crate::wallet::WalletClass;

use super::{sign_all, wallet_holder_key, BENCH_BATCH_COMMANDS};
use crate::progress::progress;
use crate::signing::SIGNATURE_WINDOW_MS_CLIENT;

/// 2026-11-23 12:00 Beijing time: when the benchmark's city starts.
const START_MS: u64 = 1_795_406_400_000;
const PACKET_VALUE: Amount = Amount::from_yuan(200);
/// What each winner pays the benchmark's restaurant: less than a packet, so packets pay it all.
const PAYMENT: Amount = Amount::from_yuan(88);

/// What `ecny bench campaign` measured, one sample per campaign.
pub struct CampaignBenchReport {
    pub registrants: usize,
    pub packets: u32,
    /// Each campaign's draw command: the canonical list, the draw, the packet accounts and their
    /// funding transfers.
    pub distribution: Vec<Duration>,
    /// Each campaign's expiry: every packet's remainder swept into the pool, the pool returned.
    pub expiry: Vec<Duration>,
    /// Payments to an eligible merchant paid from packets, by the first campaign's winners.
    pub packet_payments: usize,
    pub packet_payments_elapsed: Duration,
}

/// A state machine driven directly, entry by entry, with the entries' time handed in.
struct Center {
    state: StateMachine,
    central_bank: KeyPair,
    operator: KeyPair,
}

impl Center {
    fn apply(&mut self, origin: Origin, commands: &[Command], at_ms: u64) -> Vec<CommandResult> {
        let signer = match origin {
            Origin::CentralBank => &self.central_bank,
            Origin::Operator(_) => &self.operator,
        };
        let mut entry = Vec::new();
        Submission::new(origin, commands, signer).encode_entry(at_ms, &mut entry);
        let mut results = Vec::with_capacity(commands.len());
        self.state
            .apply_entry(&entry, &mut results)
            .expect("benchmark entries decode");
        results
    }

    fn operator(&mut self, commands: &[Command], at_ms: u64) -> Vec<Outcome> {
        self.apply(Origin::Operator(OperatorId(1)), commands, at_ms)
            .into_iter()
            .map(|result| result.expect("benchmark command refused"))
            .collect()
    }

    /// Times one entry's application.
    fn timed(&mut self, commands: &[Command], at_ms: u64) -> (Duration, Vec<Outcome>) {
        let started = Instant::now();
        let outcomes = self.operator(commands, at_ms);
        (started.elapsed(), outcomes)
    }
}

/// A class 1 wallet holding `amount` of e-CNY (a city treasury, a busy restaurant).
fn verified_wallet(center: &mut Center, phone: u64, amount: Amount) -> WalletId {
    let next = StateMachine::wallet_id_at(center.state.wallets().len());
    let open = [
        Command::OpenWallet {
            operator: OperatorId(1),
            phone: phone.into(),
            public_key: wallet_holder_key(next).public_key(),
        },
        Command::OpenDepositAccount {
            operator: OperatorId(1),
        },
    ];
    let [Outcome::Wallet(wallet), Outcome::Account(account)] = center.operator(&open, START_MS)[..]
    else {
        panic!("benchmark set-up refused");
    };
    let mut verify = vec![
        Command::CashDeposit {
            account,
            amount: Amount::from_fen(amount.fen().max(1)),
        },
        holder_signed(
            center,
            wallet,
            Command::BindBankAccount {
                wallet,
                account,
                auth: None,
            },
        ),
        Command::UpgradeWallet {
            wallet,
            to: WalletClass::One,
            name: Some("Suzhou Municipal Finance Bureau".into()),
            // One sponsor identity per benchmark campaign: an identity holds one class-2-or-better
            // wallet at an operator.
            id_number: Some(
                crate::wallet::id_number_from(&format!("11320500{:09}", phone % 1_000_000_000))
                    .into(),
            ),
            in_person: true,
        },
    ];
    if amount.is_positive() {
        let exchange = Command::Exchange {
            wallet,
            amount,
            key: IdempotencyKey(u128::from(phone)),
            auth: None,
        };
        verify.push(holder_signed(center, wallet, exchange));
    }
    center.operator(&verify, START_MS);
    wallet
}

/// `command` as the holder of bulk-opened `wallet` signs it at the benchmark's start.
fn holder_signed(center: &Center, wallet: WalletId, command: Command) -> Command {
    let context = center.state.signing_context(OperatorId(1));
    let key = wallet_holder_key(wallet);
    command.sign(key, &context, START_MS + SIGNATURE_WINDOW_MS_CLIENT)
}

fn terms(id: u32, packets: u32, sponsor: WalletId, validity_ends_ms: u64) -> CampaignTerms {
    CampaignTerms {
        id: CampaignId(id),
        name: format!("Suzhou e-CNY red packets, round {id}"),
        sponsor: Sponsor {
            name: "Suzhou Municipal People's Government".into(),
            wallet: sponsor,
        },
        budget: Amount::from_fen(PACKET_VALUE.fen() * i64::from(packets)),
        packet_count: packets,
        packet_value: PACKET_VALUE,
        region: RegionCode::new(320_500).expect("Suzhou is a region"),
        eligibility: Eligibility::default(),
        registration: Window {
            opens_at_ms: START_MS + HOUR_MS,
            closes_at_ms: START_MS + DAY_MS,
        },
        validity: Window {
            opens_at_ms: START_MS + 2 * DAY_MS,
            closes_at_ms: validity_ends_ms,
        },
        offline_trial: true,
        seed_commitment: seed(id).commitment(),
    }
}

fn seed(campaign: u32) -> Seed {
    Seed::from_bytes(crate::certs::sm3(&campaign.to_be_bytes()))
}

/// The city, its restaurant, `registrants` wallets, and `campaigns` funded campaigns every wallet
/// registered for.
fn set_up(registrants: usize, packets: u32, campaigns: u32) -> (Center, MerchantId) {
    let mut center = Center {
        state: StateMachine::default(),
        central_bank: KeyPair::from_seed(b"bench-campaign/central-bank"),
        operator: KeyPair::from_seed(b"bench-campaign/operator"),
    };
    let budget = Amount::from_fen(PACKET_VALUE.fen() * i64::from(packets) * i64::from(campaigns));
    let genesis = [
        Command::Genesis {
            central_bank_key: center.central_bank.public_key(),
        },
        Command::CreateOperator {
            name: "Jiangnan Commercial Bank".into(),
            public_key: center.operator.public_key(),
        },
        Command::FundReserves {
            operator: OperatorId(1),
            amount: budget,
        },
        Command::Issue {
            operator: OperatorId(1),
            amount: budget,
        },
    ];
    for result in center.apply(Origin::CentralBank, &genesis, START_MS) {
        result.expect("benchmark genesis refused");
    }
    let sponsor = verified_wallet(&mut center, 12_000_000_001, budget);
    let owner = verified_wallet(&mut center, 12_000_000_002, Amount::ZERO);
    let onboard = [Command::OnboardMerchant {
        operator: OperatorId(1),
        wallet: owner,
        name: "Songhelou".into(),
        mcc: Mcc::new(5812).expect("restaurants"),
        region: 320_508,
    }];
    let [Outcome::Merchant(restaurant)] = center.operator(&onboard, START_MS)[..] else {
        panic!("benchmark merchant refused");
    };
    for id in 1..=campaigns {
        let ends = START_MS + 10 * DAY_MS + u64::from(id) * HOUR_MS;
        let commands = [
            Command::CreateCampaign {
                terms: terms(id, packets, sponsor, ends),
            },
            holder_signed(
                &center,
                sponsor,
                Command::FundCampaign {
                    campaign: CampaignId(id),
                    auth: None,
                },
            ),
        ];
        center.operator(&commands, START_MS);
    }
    let bar = progress(registrants as u64, "opening wallets");
    let mut wallets = Vec::with_capacity(registrants);
    let mut commands = Vec::with_capacity(BENCH_BATCH_COMMANDS);
    for start in (0..registrants).step_by(BENCH_BATCH_COMMANDS) {
        commands.clear();
        let end = (start + BENCH_BATCH_COMMANDS).min(registrants);
        // Wallet ids are assigned densely, in the batch's order: each key is its wallet's.
        let first = center.state.wallets().len();
        let keys = (first..first + end - start)
            .map(|n| wallet_holder_key(StateMachine::wallet_id_at(n)).public_key());
        commands.extend(
            (start..end)
                .zip(keys)
                .map(|(i, public_key)| Command::OpenWallet {
                    operator: OperatorId(1),
                    phone: (15_000_000_000 + i as u64).into(),
                    public_key,
                }),
        );
        for outcome in center.operator(&commands, START_MS) {
            let Outcome::Wallet(wallet) = outcome else {
                panic!("benchmark wallet refused");
            };
            wallets.push(wallet);
        }
        bar.inc(commands.len() as u64);
    }
    bar.finish_and_clear();
    let bar = progress(registrants as u64 * u64::from(campaigns), "registering");
    for id in 1..=campaigns {
        for chunk in wallets.chunks(BENCH_BATCH_COMMANDS) {
            commands.clear();
            commands.extend(chunk.iter().map(|wallet| Command::RegisterForCampaign {
                campaign: CampaignId(id),
                wallet: *wallet,
                offline_trial: wallet.0 % 5 == 0,
            }));
            center.operator(&commands, START_MS + 2 * HOUR_MS);
            bar.inc(chunk.len() as u64);
        }
    }
    bar.finish_and_clear();
    (center, restaurant)
}

/// Runs `campaigns` campaigns of `packets` packets among `registrants` registrants each.
pub fn campaign(registrants: usize, packets: u32, campaigns: u32) -> CampaignBenchReport {
    assert!(campaigns >= 1, "at least one campaign");
    let (mut center, restaurant) = set_up(registrants, packets, campaigns);
    let mut distribution = Vec::new();
    for id in 1..=campaigns {
        let draw = [Command::DrawCampaign {
            campaign: CampaignId(id),
            seed: seed(id),
        }];
        let (elapsed, outcomes) = center.timed(&draw, START_MS + DAY_MS + u64::from(id));
        assert!(
            matches!(outcomes[..], [Outcome::Drawn { winners, .. }] if winners as usize == registrants.min(packets as usize))
        );
        distribution.push(elapsed);
    }

    let winners: Vec<WalletId> = center
        .state
        .campaign(CampaignId(1))
        .expect("campaign 1 drawn")
        .packets()
        .iter()
        .map(|packet| packet.wallet)
        .collect();
    let mut packet_payments_elapsed = Duration::ZERO;
    let paid_at_ms = START_MS + 3 * DAY_MS;
    let context = center.state.signing_context(OperatorId(1));
    for (batch, chunk) in winners.chunks(BENCH_BATCH_COMMANDS).enumerate() {
        let payments: Vec<Command> = chunk
            .iter()
            .enumerate()
            .map(|(i, wallet)| Command::PayMerchant {
                payer: *wallet,
                merchant: restaurant,
                amount: PAYMENT,
                channel: PaymentChannel::StaticQr,
                terminal: 0,
                order: None,
                key: IdempotencyKey((batch * BENCH_BATCH_COMMANDS + i) as u128),
                auth: None,
            })
            .collect();
        // Each winner signs its payment before the clock starts (the phones' work); the entry is
        // applied as replay applies it, its signatures verified before it was logged.
        let signer = |n: usize| (wallet_holder_key(chunk[n]), context);
        let commands = sign_all(payments, &signer, paid_at_ms + SIGNATURE_WINDOW_MS_CLIENT);
        let (elapsed, _) = center.timed(&commands, paid_at_ms);
        packet_payments_elapsed += elapsed;
    }

    let mut expiry = Vec::new();
    for id in 1..=campaigns {
        // A campaign larger than one entry's sweep finishes in the next entries.
        let mut at_ms = START_MS + 10 * DAY_MS + u64::from(id) * HOUR_MS;
        let mut elapsed = Duration::ZERO;
        loop {
            elapsed += center.timed(&[], at_ms).0;
            let book = center.state.campaign(CampaignId(id)).expect("campaign");
            if book.status == CampaignStatus::Expired {
                break;
            }
            at_ms += 1;
        }
        expiry.push(elapsed);
    }
    let audit = crate::audit::audit(&center.state);
    assert!(audit.is_clean(), "benchmark broke an invariant:\n{audit}");
    CampaignBenchReport {
        registrants,
        packets,
        distribution,
        expiry,
        packet_payments: winners.len(),
        packet_payments_elapsed,
    }
}
