//! The whole system on one machine: a durable node and the keys of the parties that sign for it
//! (the central bank and each operator). What the demo, the command line and the tests drive.

use std::path::Path;

use thiserror::Error;

use crate::certs::KeyPair;
use crate::command::{Command, CommandResult, Origin, Outcome, Submission};
use crate::error::CommandError;
use crate::ids::{IdentityLookupId, OperatorId, WalletId};
use crate::keyring::{Keyring, KeyringError};
use crate::node::{Clock, Node, NodeError, Recovery, SystemClock};
use crate::operator::BatchDesk;
use crate::operator::ClearIdentity;
use crate::sealed::IdentityKey;
use crate::signing::SIGNATURE_WINDOW_MS_CLIENT;
use crate::state_machine::StateMachine;

#[derive(Debug, Error)]
pub enum PlatformError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    #[error("submission refused: {0}")]
    Refused(CommandError),
}

impl PlatformError {
    pub fn code(&self) -> &'static str {
        match self {
            PlatformError::Node(error) => error.code(),
            PlatformError::Keyring(_) => "KEY_FILE",
            PlatformError::Refused(error) => error.code(),
        }
    }
}

/// Where the parties' keys come from.
enum Keys {
    /// Files in the data directory, created on first use.
    Files(Keyring),
    /// Derived from a seed: reproducible runs for tests and benchmarks.
    Seeded(String),
}

pub struct Platform {
    node: Node,
    keys: Keys,
    central_bank: KeyPair,
    desks: Vec<BatchDesk>,
    /// Threads the operator tier verifies signatures on (0: every core).
    verify_threads: usize,
}

impl Platform {
    /// Opens (or creates) a data directory with keys kept in `DIR/keys`.
    pub fn open(dir: &Path) -> Result<(Platform, Recovery), PlatformError> {
        Platform::open_with_clock(dir, Box::new(SystemClock))
    }

    /// Opens (or creates) a data directory with keys kept in `DIR/keys`, with the given clock.
    pub fn open_with_clock(
        dir: &Path,
        clock: Box<dyn Clock>,
    ) -> Result<(Platform, Recovery), PlatformError> {
        let keyring = Keyring::new(dir);
        let central_bank = keyring.central_bank()?;
        Platform::start(dir, Keys::Files(keyring), central_bank, clock)
    }

    /// Opens a data directory whose keys derive from `seed`, with the given clock.
    pub fn open_seeded(
        dir: &Path,
        seed: &str,
        clock: Box<dyn Clock>,
    ) -> Result<(Platform, Recovery), PlatformError> {
        let central_bank = seeded_key(seed, "central-bank");
        Platform::start(dir, Keys::Seeded(seed.to_string()), central_bank, clock)
    }

    fn start(
        dir: &Path,
        keys: Keys,
        central_bank: KeyPair,
        clock: Box<dyn Clock>,
    ) -> Result<(Platform, Recovery), PlatformError> {
        let (node, recovery) = Node::open_with_clock(dir, clock)?;
        let mut platform = Platform {
            node,
            keys,
            central_bank,
            desks: Vec::new(),
            verify_threads: 0,
        };
        for op in platform.node.state().operators().to_vec() {
            let key = platform.operator_key(op.id)?;
            platform.desks.push(BatchDesk::new(op.id, key, 0));
        }
        if platform.node.state().central_bank_key().is_none() {
            let genesis = Command::Genesis {
                central_bank_key: platform.central_bank.public_key(),
            };
            platform
                .as_central_bank(vec![genesis])?
                .remove(0)
                .map_err(PlatformError::Refused)?;
        }
        Ok((platform, recovery))
    }

    pub fn set_verify_threads(&mut self, threads: usize) {
        self.verify_threads = threads;
        let operators: Vec<OperatorId> = self.desks.iter().map(|desk| desk.operator).collect();
        for (desk, id) in self.desks.iter_mut().zip(operators) {
            let key = match &self.keys {
                Keys::Files(keyring) => keyring.operator(id).expect("key loaded before"),
                Keys::Seeded(seed) => seeded_key(seed, &id.to_string()),
            };
            *desk = BatchDesk::new(id, key, threads);
        }
    }

    fn operator_key(&self, id: OperatorId) -> Result<KeyPair, PlatformError> {
        Ok(match &self.keys {
            Keys::Files(keyring) => keyring.operator(id)?,
            Keys::Seeded(seed) => seeded_key(seed, &id.to_string()),
        })
    }

    pub fn state(&self) -> &StateMachine {
        self.node.state()
    }

    pub fn node_mut(&mut self) -> &mut Node {
        &mut self.node
    }

    /// The central bank's key pair: what signs the entries a scheduler submits.
    pub fn central_bank(&self) -> &KeyPair {
        &self.central_bank
    }

    pub fn into_node(self) -> Node {
        self.node
    }

    /// Commands signed by the central bank, committed durably.
    pub fn as_central_bank(
        &mut self,
        commands: Vec<Command>,
    ) -> Result<Vec<CommandResult>, PlatformError> {
        let submission = Submission::new(Origin::CentralBank, &commands, &self.central_bank);
        let outcome = self.node.submit(vec![submission])?.remove(0);
        outcome.map_err(PlatformError::Refused)
    }

    /// The central bank admits a new operator; its key is created (or derived) here.
    pub fn create_operator(&mut self, name: &str) -> Result<OperatorId, PlatformError> {
        let id = OperatorId(self.state().operators().len() as u16 + 1);
        let key = self.operator_key(id)?;
        let command = Command::CreateOperator {
            name: name.to_string(),
            public_key: key.public_key(),
        };
        match self.as_central_bank(vec![command])?.remove(0) {
            Ok(Outcome::Operator(created)) => {
                assert_eq!(created, id, "operator ids are assigned densely");
                self.desks
                    .push(BatchDesk::new(id, key, self.verify_threads));
                Ok(id)
            }
            Ok(other) => panic!("create operator returned {other:?}"),
            Err(error) => Err(PlatformError::Refused(error)),
        }
    }

    /// Commands through an operator's desk: holders' signatures verified on every core, then one
    /// operator-signed batch, committed durably. One result per command, in order.
    pub fn as_operator(
        &mut self,
        operator: OperatorId,
        commands: Vec<Command>,
    ) -> Result<Vec<CommandResult>, PlatformError> {
        let desk = self
            .desks
            .get((operator.0 as usize).wrapping_sub(1))
            .ok_or(PlatformError::Refused(CommandError::UnknownOperator(
                operator,
            )))?;
        let prepared = desk.prepare(&commands);
        let applied = self
            .node
            .submit(vec![prepared.submission])?
            .remove(0)
            .map_err(PlatformError::Refused)?;
        let mut results: Vec<Option<CommandResult>> = vec![None; commands.len()];
        for (position, error) in prepared.refused {
            results[position] = Some(Err(error));
        }
        for (position, result) in prepared.kept.into_iter().zip(applied) {
            results[position] = Some(result);
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every command has a result"))
            .collect())
    }

    /// Signs `command` as the holder of `key` would now, at a wallet of `operator`: for this
    /// deployment and that operator, good for the clients' window from the platform's clock.
    pub fn sign_as_holder(
        &mut self,
        command: Command,
        key: &KeyPair,
        operator: OperatorId,
    ) -> Command {
        let context = self.state().signing_context(operator);
        let not_after_ms = self.node.now_ms() + SIGNATURE_WINDOW_MS_CLIENT;
        command.sign(key, &context, not_after_ms)
    }

    /// `command` signed by the holder whose signature the center needs on it (as the state knows
    /// that holder now), with the key `key_of` gives for that wallet; unchanged if no holder
    /// signs it or the key is unknown (the center then refuses it, as it must).
    pub fn signed_by_its_holder<'k>(
        &mut self,
        command: Command,
        key_of: impl FnOnce(WalletId) -> Option<&'k KeyPair>,
    ) -> Command {
        if !command.needs_holder_signature() {
            return command;
        }
        let state = self.state();
        let Ok(Some(wallet)) = state.holder_signer(&command) else {
            return command;
        };
        let Ok(operator) = state.wallet(wallet).map(|w| w.operator) else {
            return command;
        };
        match key_of(wallet) {
            Some(key) => self.sign_as_holder(command, key, operator),
            None => command,
        }
    }

    /// The key `operator` seals its holders' identities under.
    pub fn identity_key(&self, operator: OperatorId) -> Result<IdentityKey, PlatformError> {
        Ok(IdentityKey::of_operator(&self.operator_key(operator)?))
    }

    /// The wallet opened with `phone` at `operator`, or at whichever one operator has it: each
    /// operator's directory knows the number only by its seal tag.
    pub fn wallet_by_phone(
        &self,
        phone: u64,
        operator: Option<OperatorId>,
    ) -> Result<WalletId, PlatformError> {
        let operators: Vec<OperatorId> = match operator {
            Some(id) => vec![id],
            None => self.state().operators().iter().map(|op| op.id).collect(),
        };
        let mut found = Vec::new();
        for id in operators {
            let tag = self.identity_key(id)?.phone_tag(phone);
            if let Ok(wallet) = self.state().wallet_by_phone_tag(id, &tag) {
                found.push(wallet);
            }
        }
        match found.as_slice() {
            [wallet] => Ok(*wallet),
            _ => Err(PlatformError::Refused(CommandError::UnknownPhone(
                phone.to_string(),
            ))),
        }
    }

    /// What a logged de-anonymization disclosed to `operator`, opened with its key.
    pub fn disclosed_identity(
        &self,
        operator: OperatorId,
        lookup: IdentityLookupId,
    ) -> Result<ClearIdentity, PlatformError> {
        let sealed = self
            .state()
            .disclosed_identity(Origin::Operator(operator), lookup)
            .map_err(PlatformError::Refused)?;
        sealed
            .opened(&self.identity_key(operator)?)
            .map_err(|_| PlatformError::Refused(CommandError::IdentitySealBroken))
    }

    /// One command through an operator's desk.
    pub fn one(
        &mut self,
        operator: OperatorId,
        command: Command,
    ) -> Result<CommandResult, PlatformError> {
        Ok(self.as_operator(operator, vec![command])?.remove(0))
    }
}

/// The key a seeded platform derives for `party` ("central-bank", "OP01", …): the one place
/// the derivation is written, so that tests and demos can hold the same keys.
pub fn seeded_key(seed: &str, party: &str) -> KeyPair {
    KeyPair::from_seed(format!("{seed}/{party}").as_bytes())
}

/// The certificate issuers (central bank root → operator) of a seeded platform's first
/// `operators` operators, valid over `validity_s`: what issues their secure elements.
pub fn seeded_issuers(
    seed: &str,
    operators: u16,
    validity_s: (u32, u32),
) -> Vec<crate::offline::issuer::OperatorIssuer> {
    let central_bank = seeded_key(seed, "central-bank");
    (1..=operators)
        .map(|id| {
            let key = seeded_key(seed, &OperatorId(id).to_string());
            crate::offline::issuer::OperatorIssuer::certify(
                &central_bank,
                OperatorId(id),
                key,
                u64::from(id),
                validity_s,
            )
        })
        .collect()
}
