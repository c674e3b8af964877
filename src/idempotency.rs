//! Client idempotency keys: a retried command returns its first result, never a second movement.
//! Keys are remembered per paying wallet, in shards so that growing the index never stalls a
//! commit for long (a rehash touches one shard, not all of them).

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use foldhash::fast::RandomState;

use crate::error::CommandError;
use crate::ids::{EventId, IdempotencyKey, WalletId};

/// Shards of the index; a power of two.
const SHARDS: usize = 64;

/// What a money-moving command was, so that a retry can be told from a different command that
/// reuses the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FirstResult {
    pub tag: u8,
    pub counterparty: u32,
    pub amount: i64,
    pub event: EventId,
}

pub enum Claim {
    /// The key is new and now held for this command.
    New,
    /// The same command was done before: its first result.
    Retry(EventId),
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
    pub fn claim(
        &mut self,
        wallet: WalletId,
        key: IdempotencyKey,
        attempt: FirstResult,
    ) -> Result<Claim, CommandError> {
        match self.shards[shard_of(key)].entry(slot(wallet, key)) {
            Entry::Vacant(vacant) => {
                vacant.insert(attempt);
                Ok(Claim::New)
            }
            Entry::Occupied(first) => {
                let first = first.get();
                if (first.tag, first.counterparty, first.amount)
                    == (attempt.tag, attempt.counterparty, attempt.amount)
                {
                    Ok(Claim::Retry(first.event))
                } else {
                    Err(CommandError::IdempotencyKeyReused { first: first.event })
                }
            }
        }
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

    fn attempt(amount: i64, event: u64) -> FirstResult {
        FirstResult {
            tag: 3,
            counterparty: 7,
            amount,
            event: EventId(event),
        }
    }

    #[test]
    fn a_key_is_claimed_once_then_retries_see_the_first_result() {
        let mut index = IdempotencyIndex::default();
        let (wallet, key) = (WalletId(1), IdempotencyKey(42));
        assert!(matches!(
            index.claim(wallet, key, attempt(100, 5)),
            Ok(Claim::New)
        ));
        assert!(matches!(
            index.claim(wallet, key, attempt(100, 9)),
            Ok(Claim::Retry(EventId(5)))
        ));
        let reused = index.claim(wallet, key, attempt(101, 9)).err().unwrap();
        assert_eq!(reused.code(), "IDEMPOTENCY_KEY_REUSED");
        // Another wallet's key space is its own.
        assert!(matches!(
            index.claim(WalletId(2), key, attempt(1, 10)),
            Ok(Claim::New)
        ));
        index.release(wallet, key);
        assert!(matches!(
            index.claim(wallet, key, attempt(1, 11)),
            Ok(Claim::New)
        ));
        assert_eq!(index.len(), 2);
        assert_eq!(index.sorted()[0].0, (wallet, key));
    }
}
