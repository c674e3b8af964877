//! `ecny sim`: the whole system in process under a seeded random workload with faults, checked
//! after every step against what every party was told (see `ecny::sim`).

use clap::Args;

use ecny::sim::{run_seeds, SimFailure, STEPS_DEFAULT};

use super::coded;

/// Most seeds one run takes; a longer campaign is several runs with other first seeds.
const SEEDS_MAX: u64 = 1_000_000;
const STEPS_MAX: u32 = 100_000;

#[derive(Args)]
pub struct SimArgs {
    /// How many seeds to run, one after another: SEED, SEED+1, …
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// The first seed; a failure names its seed, and `--seed S` replays it exactly.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Steps per seed: each step passes time, sends requests through a faulty network, commits
    /// a group (maybe crashing around it), maybe runs an offline round, then checks everything.
    #[arg(long, default_value_t = STEPS_DEFAULT)]
    steps: u32,
}

pub fn run(args: SimArgs) -> Result<(), String> {
    if !(1..=SEEDS_MAX).contains(&args.seeds) {
        return Err(coded(
            format!("--seeds must be between 1 and {SEEDS_MAX}"),
            "ARGUMENT_INVALID",
        ));
    }
    if !(1..=STEPS_MAX).contains(&args.steps) {
        return Err(coded(
            format!("--steps must be between 1 and {STEPS_MAX}"),
            "ARGUMENT_INVALID",
        ));
    }
    let last = args.seed.checked_add(args.seeds - 1).ok_or_else(|| {
        coded(
            "--seed + --seeds passes the largest seed",
            "ARGUMENT_INVALID",
        )
    })?;
    let seeds: Vec<u64> = (args.seed..=last).collect();
    let summary = run_seeds(&seeds, args.steps).map_err(failed)?;
    println!("seeds {}..={last}", args.seed);
    println!("{summary}");
    println!("trace digest {}", summary.trace_digest_hex());
    Ok(())
}

fn failed(failure: SimFailure) -> String {
    coded(
        format!("simulation failed: {failure}"),
        "SIMULATION_CHECK_FAILED",
    )
}
