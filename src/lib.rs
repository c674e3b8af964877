//! ecny: a retail central-bank digital currency platform in the shape of China's e-CNY.
//!
//! The tree follows the system's parts (see DESIGN.md): the coin (`amount`), the central bank's
//! issuance vault (`issuance`), operators (`operator`), the registration center's ledger of record
//! (`ledger`, driven by the deterministic `state_machine`), the certification center's
//! cryptography (`certs`), wallets (`wallet`), programmable money (`programs`: red-packet
//! campaigns and their lottery), durable embedded storage (`storage`, `node`), and the `audit` of
//! every invariant.

pub mod amount;
pub mod analytics;
pub mod audit;
pub mod bench;
pub mod certs;
pub mod channels;
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
pub mod sealed;
pub mod server;
pub mod signing;
pub mod state_machine;
pub mod storage;
pub mod time;
pub mod wallet;

pub use amount::Amount;
pub use error::CommandError;
