//! The crash test's load generator: pays in a loop on a data directory and prints one line per
//! acknowledged (durable) transfer, so that a test can kill it at any moment and check that every
//! acknowledged transfer survived.

use std::io::Write;
use std::path::Path;

use ecny::amount::Amount;
use ecny::bench::{holder_key, populate, with_holders};
use ecny::certs::KeyPair;
use ecny::command::{Command, Outcome};
use ecny::ids::{IdempotencyKey, OperatorId, WalletId};
use ecny::node::SystemClock;
use ecny::platform::Platform;
use ecny::rng::SplitMix;
use ecny::state_machine::StateMachine;

/// Wallets the crash scenario pays between.
pub const CRASH_WALLETS: usize = 2_000;
/// Payments per operator batch in the crash load.
const CRASH_BATCH_COMMANDS: u64 = 64;

pub fn run(dir: &Path, seed: u64) -> Result<(), String> {
    let (mut platform, _) =
        Platform::open_seeded(dir, "crash", Box::new(SystemClock)).map_err(|e| e.to_string())?;
    let holders: Vec<KeyPair> = (0..CRASH_WALLETS).map(holder_key).collect();
    if platform.state().operators().is_empty() {
        populate(&mut platform, &holders).map_err(|e| e.to_string())?;
    }
    let wallets: Vec<(WalletId, OperatorId)> = platform
        .state()
        .wallets()
        .iter()
        .enumerate()
        .map(|(i, w)| (StateMachine::wallet_id_at(i), w.operator))
        .collect();
    let signers = with_holders(platform.state(), &wallets, &holders);
    println!("READY {}", wallets.len());
    let mut random = SplitMix(seed);
    let stdout = std::io::stdout();
    for round in 0u64.. {
        let op = OperatorId(1 + (round % 2) as u16);
        let mine: Vec<(WalletId, &KeyPair)> = signers
            .iter()
            .filter(|(_, o, _)| *o == op)
            .map(|(w, _, key)| (*w, *key))
            .collect();
        let commands: Vec<Command> = (0..CRASH_BATCH_COMMANDS)
            .map(|n| {
                let (payer, holder) = mine[random.below(mine.len() as u64) as usize];
                let payee = wallets[random.below(wallets.len() as u64) as usize].0;
                let key = IdempotencyKey(
                    u128::from(seed) << 64 | u128::from(round * CRASH_BATCH_COMMANDS + n),
                );
                let pay = Command::Pay {
                    payer,
                    payee,
                    amount: Amount::from_fen(1 + random.below(500) as i64),
                    key,
                    auth: None,
                };
                platform.sign_as_holder(pay, holder, op)
            })
            .collect();
        let results = platform
            .as_operator(op, commands.clone())
            .map_err(|e| e.to_string())?;
        let mut out = stdout.lock();
        for (command, result) in commands.iter().zip(results) {
            if let (
                Command::Pay {
                    payer,
                    payee,
                    amount,
                    key,
                    ..
                },
                Ok(Outcome::Transfer(event)),
            ) = (command, result)
            {
                writeln!(
                    out,
                    "ACK {} {} {} {} {}",
                    payer.0,
                    payee.0,
                    amount.fen(),
                    key.0,
                    event.0
                )
                .map_err(|e| e.to_string())?;
            }
        }
        out.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}
