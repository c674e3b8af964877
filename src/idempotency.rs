//! Client idempotency keys: one rule for every keyed command. A key is remembered in its scope
//! (the paying wallet; a merchant's refunds under its settlement wallet) with a digest of what
//! the command does and the command's first result. The same key with the same digest answers
//! that result and moves nothing; the same key with another digest is refused
//! `IDEMPOTENCY_KEY_REUSED`. The digest (`Command::digest`) covers the command's body, not the
//! signature's window, so a retry signed again later is still the same command.
//!
//! Keys live in shards so that growing the index never stalls a commit for long (a rehash
//! touches one shard, not all of them); one probe claims a key or finds its first result.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use foldhash::fast::RandomState;

use crate::command::CommandDigest;
use crate::ids::{IdempotencyKey, WalletId};

/// Shards of the index; a power of two.
const SHARDS: usize = 64;

/// What a keyed command was and what it first answered: a transfer's event id, or the contract
/// it opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FirstResult {
    pub digest: CommandDigest,
    pub first: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// The key is new and now held for this command.
    New,
    /// The same command was done before: its first result.
    Retry(u64),
    /// Another command holds the key: its first result.
    Reused(u64),
}

/// Wallet and key, packed without u128's 16-byte alignment: 24 bytes instead of 32 per entry.
type Slot = (u32, u64, u64);

fn slot(wallet: WalletId, key: IdempotencyKey) -> Slot {
    (wallet.0, (key.0 >> 64) as u64, key.0 as u64)
}

fn unslot((wallet, high, low): Slot) -> (WalletId, IdempotencyKey) {
    (
        WalletId(wallet),
        IdempotencyKey((u128::from(high) << 64) | u128::from(low)),
    )
}

#[derive(Clone, Debug, PartialEq)]
pub struct IdempotencyIndex {
    shards: Vec<HashMap<Slot, FirstResult, RandomState>>,
}

impl Default for IdempotencyIndex {
    fn default() -> Self {
        IdempotencyIndex {
            shards: (0..SHARDS).map(|_| HashMap::default()).collect(),
        }
    }
}

fn shard_of(key: IdempotencyKey) -> usize {
    // Keys are chosen by clients at random; their low bits spread well enough for sharding.
    (key.0 as usize ^ (key.0 >> 64) as usize) & (SHARDS - 1)
}

impl IdempotencyIndex {
    /// Looks the key up and, if new, holds it for `attempt` in the same probe.
    pub fn claim(&mut self, wallet: WalletId, key: IdempotencyKey, attempt: FirstResult) -> Claim {
        match self.shards[shard_of(key)].entry(slot(wallet, key)) {
            Entry::Vacant(vacant) => {
                vacant.insert(attempt);
                Claim::New
            }
            Entry::Occupied(first) if first.get().digest == attempt.digest => {
                Claim::Retry(first.get().first)
            }
            Entry::Occupied(first) => Claim::Reused(first.get().first),
        }
    }

    /// What the command done under `key` in `wallet`'s scope was and first answered, if any.
    pub fn first_result(&self, wallet: WalletId, key: IdempotencyKey) -> Option<FirstResult> {
        self.shards[shard_of(key)].get(&slot(wallet, key)).copied()
    }

    /// Forgets a claimed key whose command was refused: refusals are not remembered.
    pub fn release(&mut self, wallet: WalletId, key: IdempotencyKey) {
        self.shards[shard_of(key)].remove(&slot(wallet, key));
    }

    pub fn insert(&mut self, wallet: WalletId, key: IdempotencyKey, first: FirstResult) {
        self.shards[shard_of(key)].insert(slot(wallet, key), first);
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every entry in key order: the canonical order for snapshots and state hashes.
    pub fn sorted(&self) -> Vec<((WalletId, IdempotencyKey), FirstResult)> {
        let mut entries: Vec<_> = self
            .shards
            .iter()
            .flat_map(|s| s.iter().map(|(k, v)| (unslot(*k), *v)))
            .collect();
        entries.sort_unstable_by_key(|(k, _)| *k);
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(digest: u8, first: u64) -> FirstResult {
        FirstResult {
            digest: [digest; 16],
            first,
        }
    }

    #[test]
    fn a_key_is_claimed_once_then_retries_see_the_first_result() {
        let mut index = IdempotencyIndex::default();
        let (wallet, key) = (WalletId(1), IdempotencyKey(42));
        assert_eq!(index.claim(wallet, key, attempt(1, 5)), Claim::New);
        assert_eq!(index.claim(wallet, key, attempt(1, 9)), Claim::Retry(5));
        assert_eq!(index.claim(wallet, key, attempt(2, 9)), Claim::Reused(5));
        // Another wallet's key space is its own.
        assert_eq!(index.claim(WalletId(2), key, attempt(2, 10)), Claim::New);
        index.release(wallet, key);
        assert_eq!(index.claim(wallet, key, attempt(2, 11)), Claim::New);
        assert_eq!(index.len(), 2);
        assert_eq!(index.sorted()[0].0, (wallet, key));
    }

    #[test]
    fn an_entry_stays_48_bytes() {
        // The index is a large share of the state's memory and of apply's cache misses.
        assert_eq!(
            std::mem::size_of::<Slot>() + std::mem::size_of::<FirstResult>(),
            48
        );
    }
}
