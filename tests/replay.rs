//! Random command sequences: after every step the audit holds, and replaying the log (from
//! scratch, and from a snapshot) gives the same state hash.

mod support;

use ecny::audit::audit;
use ecny::command::{Command, Outcome};
use ecny::ids::{EventId, IdempotencyKey, WalletId};
use ecny::wallet::{WalletClass, WalletStatus};
use proptest::prelude::*;
use support::{Holder, World};

#[derive(Clone, Debug)]
enum Step {
    Pay {
        from: usize,
        to: usize,
        fen: i64,
        key: u8,
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
    let who = 0usize..6;
    prop_oneof![
        6 => (who.clone(), who.clone(), 1i64..300_000, any::<u8>()).prop_map(|(from, to, fen, key)| Step::Pay { from, to, fen, key }),
        2 => (who.clone(), 1i64..500_000).prop_map(|(who, fen)| Step::Exchange { who, fen }),
        1 => (who.clone(), 1i64..200_000).prop_map(|(who, fen)| Step::DepositBack { who, fen }),
        2 => (who.clone(), who.clone(), 1i64..100_000, 0u64..5_000).prop_map(|(from, to, fen, timeout_ms)| Step::Hold { from, to, fen, timeout_ms }),
        2 => (0usize..8, any::<bool>()).prop_map(|(nth, post)| Step::Resolve { nth, post }),
        1 => (who, any::<bool>()).prop_map(|(who, frozen)| Step::Freeze { who, frozen }),
        1 => (0usize..2, 1i64..1_000_000_000).prop_map(|(op, fen)| Step::Redeem { op, fen }),
        1 => (0u64..90_000_000).prop_map(|ms| Step::Advance { ms }),
        1 => Just(Step::Snapshot),
    ]
}

fn apply(world: &mut World, holders: &[Holder], holds: &mut Vec<EventId>, step: &Step) {
    let amount = ecny::Amount::from_fen;
    let result = match *step {
        Step::Pay { from, to, fen, key } => {
            let command = Command::Pay {
                payer: holders[from].wallet,
                payee: holders[to].wallet,
                amount: amount(fen),
                key: IdempotencyKey(key as u128),
                auth: None,
            };
            world.run(holders[from].operator, command.sign(&holders[from].key))
        }
        Step::Exchange { who, fen } => {
            let key = world.key();
            world.run(
                holders[who].operator,
                Command::Exchange {
                    wallet: holders[who].wallet,
                    amount: amount(fen),
                    key,
                    auth: None,
                },
            )
        }
        Step::DepositBack { who, fen } => {
            let key = world.key();
            world.run(
                holders[who].operator,
                Command::DepositBack {
                    wallet: holders[who].wallet,
                    amount: amount(fen),
                    key,
                    auth: None,
                },
            )
        }
        Step::Hold {
            from,
            to,
            fen,
            timeout_ms,
        } => {
            let key = world.key();
            let command = Command::Hold {
                payer: holders[from].wallet,
                payee: holders[to].wallet,
                amount: amount(fen),
                timeout_ms,
                key,
                auth: None,
            };
            let result = world.run(holders[from].operator, command);
            if let Ok(Outcome::Transfer(id)) = result {
                holds.push(id);
            }
            result
        }
        Step::Resolve { nth, post } => match holds.get(nth) {
            Some(hold) => {
                let op = holders
                    .iter()
                    .find(|h| {
                        world.platform.state().wallet(h.wallet).unwrap().account
                            == hold_debit(world, *hold)
                    })
                    .unwrap()
                    .operator;
                world.run(op, Command::ResolveHold { hold: *hold, post })
            }
            None => return,
        },
        Step::Freeze { who, frozen } => {
            let status = if frozen {
                WalletStatus::Frozen
            } else {
                WalletStatus::Active
            };
            world.run(
                holders[who].operator,
                Command::SetWalletStatus {
                    wallet: holders[who].wallet,
                    status,
                },
            )
        }
        Step::Redeem { op, fen } => {
            let operator = world.operators[op];
            world.run(
                operator,
                Command::Redeem {
                    operator,
                    amount: amount(fen),
                },
            )
        }
        Step::Advance { ms } => {
            world.advance_ms(ms);
            return;
        }
        Step::Snapshot => {
            world.platform.node_mut().snapshot().unwrap();
            return;
        }
    };
    // Refusals are part of the test; only a state that breaks an invariant fails it.
    let _ = result;
}

fn hold_debit(world: &World, hold: EventId) -> ecny::ids::AccountId {
    match world.platform.state().ledger().event(hold) {
        Some(ecny::ledger::Event::Transfer(t)) => t.debit,
        other => panic!("hold {hold} is {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_keep_every_invariant_and_replay_identically(steps in proptest::collection::vec(step(), 1..40)) {
        let mut world = World::new();
        let [jiangnan, lakeside] = world.operators;
        let classes = [WalletClass::Four, WalletClass::Three, WalletClass::Two];
        let holders: Vec<Holder> = (0..6).map(|i| {
            let op = if i % 2 == 0 { jiangnan } else { lakeside };
            world.open_banked(op, "8000", classes[i % 3])
        }).collect();
        let mut holds = Vec::new();
        for step in &steps {
            apply(&mut world, &holders, &mut holds, step);
            let report = audit(world.platform.state());
            prop_assert!(report.is_clean(), "after {:?}:\n{}", step, report);
        }
        let hash = world.hash();
        let world = world.reopen();
        prop_assert_eq!(world.hash(), hash);
        prop_assert!(world.platform.state().wallet(WalletId(1)).is_ok());
    }
}
