//! Random command sequences that mostly succeed: six funded holders at two operators pay each
//! other, exchange, deposit back, hold and resolve, retry with the same idempotency key, get
//! frozen and unfrozen, and operators redeem. Each step's result is checked against what it must
//! have done (the money it moved, or a refusal for a reason that applies, with nothing moved);
//! after every step the audit holds; replaying the log, from scratch and from snapshots taken at
//! random points, gives the same state hash. The share of steps that succeeded is printed and
//! must stay high, so the test exercises the ledger rather than its refusals.

mod support;

use std::collections::BTreeMap;

use ecny::audit::audit;
use ecny::command::{Command, CommandResult, Outcome};
use ecny::ids::{AccountId, EventId, IdempotencyKey, WalletId};
use ecny::wallet::{WalletClass, WalletStatus};
use ecny::Amount;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};
use support::{Holder, World};

const HOLDERS: usize = 6;
/// Each holder's e-CNY at the start, of ¥8,000 in the bank.
const START_YUAN: &str = "3000";
/// Least share of money-moving steps that must succeed over the whole run.
const SUCCESS_SHARE_MIN: f64 = 0.8;

#[derive(Clone, Debug)]
enum Step {
    Pay {
        from: usize,
        to: usize,
        fen: i64,
    },
    /// The last payment sent again with its key: unchanged, or (changed) with another amount.
    Retry {
        changed: bool,
    },
    Exchange {
        who: usize,
        fen: i64,
    },
    DepositBack {
        who: usize,
        fen: i64,
    },
    Hold {
        from: usize,
        to: usize,
        fen: i64,
        timeout_ms: u64,
    },
    Resolve {
        nth: usize,
        post: bool,
    },
    Freeze {
        who: usize,
        frozen: bool,
    },
    Redeem {
        op: usize,
        fen: i64,
    },
    Advance {
        ms: u64,
    },
    Snapshot,
}

fn step() -> impl Strategy<Value = Step> {
    let who = 0..HOLDERS;
    // `to` is an offset from `from`, so a payer never pays itself.
    let other = 1..HOLDERS;
    prop_oneof![
        12 => (who.clone(), other.clone(), 1i64..60_000).prop_map(|(from, to, fen)| Step::Pay { from, to: (from + to) % HOLDERS, fen }),
        2 => any::<bool>().prop_map(|changed| Step::Retry { changed }),
        3 => (who.clone(), 1i64..50_000).prop_map(|(who, fen)| Step::Exchange { who, fen }),
        2 => (who.clone(), 1i64..50_000).prop_map(|(who, fen)| Step::DepositBack { who, fen }),
        3 => (who.clone(), other, 1i64..30_000, 1_000u64..600_000).prop_map(|(from, to, fen, timeout_ms)| Step::Hold { from, to: (from + to) % HOLDERS, fen, timeout_ms }),
        3 => (0usize..4, any::<bool>()).prop_map(|(nth, post)| Step::Resolve { nth, post }),
        1 => (who, prop::bool::weighted(0.3)).prop_map(|(who, frozen)| Step::Freeze { who, frozen }),
        1 => (0usize..2, 1i64..10_000_000).prop_map(|(op, fen)| Step::Redeem { op, fen }),
        1 => (0u64..900_000).prop_map(|ms| Step::Advance { ms }),
        1 => Just(Step::Snapshot),
    ]
}

/// What the test knows between steps: open holds, the last payment, the wallets it froze.
struct Run {
    world: World,
    holders: Vec<Holder>,
    holds: Vec<(EventId, usize, usize, i64)>,
    last_pay: Option<(usize, usize, i64, IdempotencyKey, EventId)>,
    frozen: [bool; HOLDERS],
    /// Step kind → (succeeded, tried).
    tally: BTreeMap<&'static str, (u32, u32)>,
}

fn fen(amount: i64) -> Amount {
    Amount::from_fen(amount)
}

impl Run {
    fn new() -> Run {
        let mut world = World::new();
        let [jiangnan, lakeside] = world.operators;
        let classes = [WalletClass::Four, WalletClass::Three, WalletClass::Two];
        let holders: Vec<Holder> = (0..HOLDERS)
            .map(|i| {
                let op = if i % 2 == 0 { jiangnan } else { lakeside };
                let holder = world.open_banked(op, "8000", classes[i % 3]);
                world.exchange(&holder, START_YUAN).unwrap();
                holder
            })
            .collect();
        Run {
            world,
            holders,
            holds: Vec::new(),
            last_pay: None,
            frozen: [false; HOLDERS],
            tally: BTreeMap::new(),
        }
    }

    fn account(&self, who: usize) -> AccountId {
        let wallet = self.holders[who].wallet;
        self.world.platform.state().wallet(wallet).unwrap().account
    }

    fn balances(&self) -> Vec<i64> {
        let ledger = self.world.platform.state().ledger();
        ledger.accounts().iter().map(|a| a.balance.fen()).collect()
    }

    /// The time the next entry will carry: the node stamps an entry with its clock, never
    /// earlier than the last.
    fn entry_ms(&self) -> u64 {
        let clock = self.world.clock.load(std::sync::atomic::Ordering::SeqCst);
        clock.max(self.world.platform.state().last_timestamp_ms())
    }

    /// What `who` may spend in the next entry: its balance less the holds still open then (the
    /// ledger voids a hold once an entry's time reaches its expiry).
    fn available(&self, who: usize) -> i64 {
        let (ledger, account, now) = (
            self.world.platform.state().ledger(),
            self.account(who),
            self.entry_ms(),
        );
        let held: i64 = ledger
            .pending()
            .values()
            .filter(|p| p.debit == account && p.expires_at_ms > now)
            .map(|p| p.amount.fen())
            .sum();
        ledger.account(account).unwrap().balance.fen() - held
    }

    /// A conversion for `who`: e-CNY from the operator's vault into the wallet and deposits out
    /// of the bank account into the operator's books (negated, the way back).
    fn exchanged(&self, who: usize, amount: i64) -> [(AccountId, i64); 4] {
        let operator = self
            .world
            .platform
            .state()
            .operator(self.holders[who].operator)
            .unwrap();
        let bank = self.holders[who]
            .bank
            .expect("every holder has a bank account");
        [
            (self.account(who), amount),
            (operator.vault, -amount),
            (bank, -amount),
            (operator.bank_funding, amount),
        ]
    }

    /// A command signed by holder `who` for its operator, good for the clients' window.
    fn signed(&mut self, command: Command, who: usize) -> Command {
        let (context, not_after_ms) = self.world.signing(&self.holders[who]);
        command.sign(&self.holders[who].key, &context, not_after_ms)
    }

    fn pay(&mut self, from: usize, to: usize, amount: i64, key: IdempotencyKey) -> CommandResult {
        let command = Command::Pay {
            payer: self.holders[from].wallet,
            payee: self.holders[to].wallet,
            amount: fen(amount),
            key,
            auth: None,
        };
        let command = self.signed(command, from);
        self.world.run(self.holders[from].operator, command)
    }

    /// Applies one step and checks its result; `Ok(None)` for steps that submit nothing.
    fn apply(&mut self, step: &Step) -> Result<Option<(&'static str, bool)>, TestCaseError> {
        let before = self.balances();
        let moved = |run: &Run, changes: &[(AccountId, i64)]| -> Result<(), TestCaseError> {
            let mut expected = before.clone();
            for (account, delta) in changes {
                expected[account.index()] += delta;
            }
            let after = run.balances();
            prop_assert_eq!(
                &after[..expected.len()],
                &expected[..],
                "balances after {:?}",
                step
            );
            Ok(())
        };
        let refused = |run: &Run, result: &CommandResult, allowed: &[&str]| {
            let code = result
                .as_ref()
                .err()
                .map(|e| e.code())
                .unwrap_or("accepted");
            prop_assert!(
                allowed.contains(&code),
                "{:?} refused with {} (allowed {:?})",
                step,
                code,
                allowed
            );
            prop_assert_eq!(
                run.balances(),
                before.clone(),
                "a refusal moved money: {:?}",
                step
            );
            Ok(())
        };
        let kind: &'static str;
        let ok: bool;
        match *step {
            Step::Pay {
                from,
                to,
                fen: amount,
            } => {
                kind = "pay";
                let key = self.world.key();
                let (available, frozen) =
                    (self.available(from), self.frozen[from] || self.frozen[to]);
                let result = self.pay(from, to, amount, key);
                ok = result.is_ok();
                match result {
                    Ok(Outcome::Transfer(id)) => {
                        prop_assert!(
                            !frozen && available >= amount,
                            "{:?} paid from a frozen or short wallet",
                            step
                        );
                        moved(
                            self,
                            &[(self.account(from), -amount), (self.account(to), amount)],
                        )?;
                        self.last_pay = Some((from, to, amount, key, id));
                    }
                    Ok(other) => prop_assert!(false, "{:?} answered {:?}", step, other),
                    Err(_) if frozen => refused(self, &result, &["WALLET_FROZEN"])?,
                    Err(_) if available < amount => refused(
                        self,
                        &result,
                        &["INSUFFICIENT_FUNDS", "LIMIT_DAILY", "LIMIT_BALANCE_CAP"],
                    )?,
                    Err(_) => refused(
                        self,
                        &result,
                        &["LIMIT_DAILY", "LIMIT_BALANCE_CAP", "LIMIT_ANNUAL"],
                    )?,
                }
            }
            Step::Retry { changed } => {
                let Some((from, to, amount, key, first)) = self.last_pay else {
                    return Ok(None);
                };
                kind = "retry";
                let result = self.pay(from, to, amount + i64::from(changed), key);
                ok = !changed;
                if changed {
                    refused(self, &result, &["IDEMPOTENCY_KEY_REUSED"])?;
                } else {
                    prop_assert_eq!(
                        result,
                        Ok(Outcome::Transfer(first)),
                        "a retry answers the first transfer"
                    );
                    moved(self, &[])?;
                }
            }
            Step::Exchange { who, fen: amount } => {
                kind = "exchange";
                let key = self.world.key();
                let command = Command::Exchange {
                    wallet: self.holders[who].wallet,
                    amount: fen(amount),
                    key,
                    auth: None,
                };
                let command = self.signed(command, who);
                let result = self.world.run(self.holders[who].operator, command);
                ok = result.is_ok();
                match result {
                    Ok(_) => moved(self, &self.exchanged(who, amount))?,
                    Err(_) if self.frozen[who] => refused(self, &result, &["WALLET_FROZEN"])?,
                    Err(_) => refused(self, &result, &["INSUFFICIENT_FUNDS", "LIMIT_BALANCE_CAP"])?,
                }
            }
            Step::DepositBack { who, fen: amount } => {
                kind = "deposit back";
                let key = self.world.key();
                let available = self.available(who);
                let command = Command::DepositBack {
                    wallet: self.holders[who].wallet,
                    amount: fen(amount),
                    key,
                    auth: None,
                };
                let command = self.signed(command, who);
                let result = self.world.run(self.holders[who].operator, command);
                ok = result.is_ok();
                match result {
                    Ok(_) => moved(self, &self.exchanged(who, -amount))?,
                    Err(_) if self.frozen[who] => refused(self, &result, &["WALLET_FROZEN"])?,
                    Err(_) => {
                        prop_assert!(available < amount, "{:?} refused with money there", step);
                        refused(self, &result, &["INSUFFICIENT_FUNDS"])?
                    }
                }
            }
            Step::Hold {
                from,
                to,
                fen: amount,
                timeout_ms,
            } => {
                kind = "hold";
                let key = self.world.key();
                let (available, frozen) =
                    (self.available(from), self.frozen[from] || self.frozen[to]);
                let command = Command::Hold {
                    payer: self.holders[from].wallet,
                    payee: self.holders[to].wallet,
                    amount: fen(amount),
                    timeout_ms,
                    key,
                    auth: None,
                };
                let command = self.signed(command, from);
                let result = self.world.run(self.holders[from].operator, command);
                ok = result.is_ok();
                match result {
                    Ok(Outcome::Transfer(id)) => {
                        prop_assert!(!frozen && available >= amount);
                        moved(self, &[])?;
                        prop_assert_eq!(
                            self.available(from),
                            available - amount,
                            "a hold sets money aside"
                        );
                        self.holds.push((id, from, to, amount));
                    }
                    Ok(other) => prop_assert!(false, "{:?} answered {:?}", step, other),
                    Err(_) if frozen => refused(self, &result, &["WALLET_FROZEN"])?,
                    Err(_) if available < amount => refused(
                        self,
                        &result,
                        &["INSUFFICIENT_FUNDS", "LIMIT_DAILY", "LIMIT_BALANCE_CAP"],
                    )?,
                    Err(_) => refused(
                        self,
                        &result,
                        &["LIMIT_DAILY", "LIMIT_BALANCE_CAP", "LIMIT_ANNUAL"],
                    )?,
                }
            }
            Step::Resolve { nth, post } => {
                if self.holds.is_empty() {
                    return Ok(None);
                }
                kind = "resolve";
                let (hold, from, to, amount) = self.holds.remove(nth % self.holds.len());
                // Open at the resolving entry's time, or voided by the ledger as that entry begins.
                let entry_ms = self.entry_ms();
                let open = self
                    .world
                    .platform
                    .state()
                    .ledger()
                    .pending()
                    .get(&hold.0)
                    .is_some_and(|p| p.expires_at_ms > entry_ms);
                let result = self.world.run(
                    self.holders[from].operator,
                    Command::ResolveHold { hold, post },
                );
                ok = result.is_ok();
                match result {
                    Ok(_) if post => {
                        prop_assert!(open, "{:?} posted a hold that had timed out", step);
                        moved(
                            self,
                            &[(self.account(from), -amount), (self.account(to), amount)],
                        )?
                    }
                    Ok(_) => moved(self, &[])?,
                    // The ledger voids a hold at its timeout.
                    Err(_) => {
                        prop_assert!(!open, "{:?} refused an open hold", step);
                        refused(
                            self,
                            &result,
                            &["PENDING_ALREADY_RESOLVED", "PENDING_NOT_FOUND"],
                        )?
                    }
                }
            }
            Step::Freeze { who, frozen } => {
                kind = "freeze";
                let status = if frozen {
                    WalletStatus::Frozen
                } else {
                    WalletStatus::Active
                };
                let result = self.world.run(
                    self.holders[who].operator,
                    Command::SetWalletStatus {
                        wallet: self.holders[who].wallet,
                        status,
                    },
                );
                ok = result.is_ok();
                prop_assert!(ok, "{:?}: {:?}", step, result);
                moved(self, &[])?;
                self.frozen[who] = frozen;
            }
            Step::Redeem { op, fen: amount } => {
                kind = "redeem";
                let operator = self.world.operators[op];
                let vault = self
                    .world
                    .platform
                    .state()
                    .operator(operator)
                    .unwrap()
                    .vault;
                let in_vault = self
                    .world
                    .platform
                    .state()
                    .ledger()
                    .account(vault)
                    .unwrap()
                    .balance
                    .fen();
                let result = self.world.run(
                    operator,
                    Command::Redeem {
                        operator,
                        amount: fen(amount),
                    },
                );
                ok = result.is_ok();
                match result {
                    Ok(_) => {
                        let backing = self
                            .world
                            .platform
                            .state()
                            .operator(operator)
                            .unwrap()
                            .backing;
                        let reserve = self
                            .world
                            .platform
                            .state()
                            .operator(operator)
                            .unwrap()
                            .reserve;
                        moved(
                            self,
                            &[
                                (vault, -amount),
                                (backing, -amount),
                                (reserve, amount),
                                (self.world.platform.state().issuance_account(), amount),
                            ],
                        )?
                    }
                    Err(_) => {
                        prop_assert!(
                            in_vault < amount,
                            "{:?} refused with the vault holding {}",
                            step,
                            in_vault
                        );
                        refused(
                            self,
                            &result,
                            &[
                                "VAULT_INSUFFICIENT",
                                "REDEMPTION_EXCEEDS_BACKING",
                                "INSUFFICIENT_FUNDS",
                            ],
                        )?
                    }
                }
            }
            Step::Advance { ms } => {
                self.world.advance_ms(ms);
                return Ok(None);
            }
            Step::Snapshot => {
                self.world.platform.node_mut().snapshot().unwrap();
                return Ok(None);
            }
        }
        Ok(Some((kind, ok)))
    }
}

#[test]
fn random_sequences_mostly_succeed_keep_every_invariant_and_replay_identically() {
    let mut runner = TestRunner::new(Config {
        cases: 24,
        // Failing cases are kept beside this file, as `proptest!` would keep them.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/replay.proptest-regressions"
        )))),
        ..Config::default()
    });
    let tally = std::cell::RefCell::new(BTreeMap::<&'static str, (u32, u32)>::new());
    runner
        .run(&proptest::collection::vec(step(), 1..40), |steps| {
            let mut run = Run::new();
            for step in &steps {
                if let Some((kind, ok)) = run.apply(step)? {
                    let entry = run.tally.entry(kind).or_default();
                    entry.0 += u32::from(ok);
                    entry.1 += 1;
                }
                let report = audit(run.world.platform.state());
                prop_assert!(report.is_clean(), "after {:?}:\n{}", step, report);
            }
            let mut total = tally.borrow_mut();
            for (kind, (ok, tried)) in &run.tally {
                let entry = total.entry(kind).or_default();
                entry.0 += ok;
                entry.1 += tried;
            }
            drop(total);
            let hash = run.world.hash();
            let world = run.world.reopen();
            prop_assert_eq!(world.hash(), hash);
            prop_assert!(world.platform.state().wallet(WalletId(1)).is_ok());
            Ok(())
        })
        .unwrap();
    let tally = tally.into_inner();
    let (ok, tried) = tally
        .values()
        .fold((0, 0), |(a, b), (ok, tried)| (a + ok, b + tried));
    for (kind, (ok, tried)) in &tally {
        println!("{kind:<13} {ok:>4} of {tried:>4} succeeded");
    }
    let share = f64::from(ok) / f64::from(tried);
    println!(
        "all steps: {ok} of {tried} succeeded ({:.0} %)",
        share * 100.0
    );
    assert!(tried > 200, "the run tried too little: {tried} steps");
    assert!(
        share >= SUCCESS_SHARE_MIN,
        "only {:.0} % of the steps succeeded",
        share * 100.0
    );
    let (pays_ok, pays) = tally["pay"];
    assert!(
        f64::from(pays_ok) / f64::from(pays) >= SUCCESS_SHARE_MIN,
        "only {pays_ok} of {pays} payments succeeded"
    );
}
