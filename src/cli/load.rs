//! The crash test's load generator: pays in a loop on a data directory and prints one line per
//! acknowledged (durable) transfer, so that a test can kill it at any moment and check that every
//! acknowledged transfer survived.

use std::io::Write;
use std::path::Path;

use ecny::amount::Amount;
use ecny::bench::{placeholder_key, populate};
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
    if platform.state().operators().is_empty() {
        populate(&mut platform, CRASH_WALLETS, &|i| placeholder_key(i as u64))
            .map_err(|e| e.to_string())?;
    }
    let wallets: Vec<(WalletId, OperatorId)> = platform
        .state()
        .wallets()
        .iter()
        .enumerate()
        .map(|(i, w)| (StateMachine::wallet_id_at(i), w.operator))
        .collect();
    println!("READY {}", wallets.len());
    let mut random = SplitMix(seed);
    let stdout = std::io::stdout();
    for round in 0u64.. {
        let op = OperatorId(1 + (round % 2) as u16);
        let mine: Vec<WalletId> = wallets
            .iter()
            .filter(|(_, o)| *o == op)
            .map(|(w, _)| *w)
            .collect();
        let commands: Vec<Command> = (0..CRASH_BATCH_COMMANDS)
            .map(|n| {
                let payer = mine[random.below(mine.len() as u64) as usize];
                let payee = wallets[random.below(wallets.len() as u64) as usize].0;
                let key = IdempotencyKey(
                    u128::from(seed) << 64 | u128::from(round * CRASH_BATCH_COMMANDS + n),
                );
                Command::Pay {
                    payer,
                    payee,
                    amount: Amount::from_fen(1 + random.below(500) as i64),
                    key,
                    auth: None,
                }
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
