//! ecny: a retail central-bank digital currency platform in the shape of China's e-CNY.
//!
//! The tree follows the system's parts (see DESIGN.md and the README's module table):
//!
//! - the coin (`amount`), typed `ids`, and China time and the calendar (`time`);
//! - the central bank's issuance vault (`issuance`) and the operators (`operator`, with its front
//!   office for merchants), who alone hold holders' identities, `sealed` at rest;
//! - the registration center's ledger of record (`ledger`), driven by the deterministic
//!   `state_machine` from `command`s in the `codec`'s bytes, refused with an `error`'s stable
//!   code, kept once per key (`idempotency`);
//! - who may do what (`parties`) and what a holder's signature is bound to (`signing`);
//! - the certification center's cryptography (`certs`) and the keys of a data directory
//!   (`keyring`);
//! - wallets (`wallet`), hardware wallets and dual offline payments (`offline`), merchant
//!   channels: QR, tap zones, payment codes, acquiring (`channels`), and programmable money
//!   (`programs`: red-packet campaigns, their lottery, smart contracts);
//! - durable embedded storage (`storage`, `node`), the `scheduler` that submits an entry when
//!   time-driven work falls due on a quiet server, the `audit` of every invariant, and the
//!   analysis center (`analytics`), which reads the events of a synthetic city (`city`) driven
//!   through the real platform;
//! - the whole system simulated under faults from one seed and checked against what every party
//!   was told (`sim`);
//! - the HTTP edge (`server`), the wiring of a data directory (`platform`), the walk-through
//!   (`demo`), the benchmarks (`bench`) with their progress bars (`progress`) and seeded
//!   randomness (`rng`).

pub mod amount;
pub mod analytics;
pub mod audit;
pub mod bench;
pub mod certs;
pub mod channels;
pub mod city;
pub mod codec;
pub mod command;
pub mod demo;
pub mod error;
pub mod idempotency;
pub mod ids;
pub mod issuance;
pub mod keyring;
pub mod ledger;
pub mod node;
pub mod offline;
pub mod operator;
pub mod parties;
pub mod platform;
pub mod programs;
pub mod progress;
pub mod rng;
pub mod scheduler;
pub mod sealed;
pub mod server;
pub mod signing;
pub mod sim;
pub mod state_machine;
pub mod storage;
pub mod time;
pub mod wallet;

pub use amount::Amount;
pub use error::CommandError;
