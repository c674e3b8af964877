//! Hardware wallets against the platform, as their phones and operators drive them: issue and
//! register a card, load it, sync it (nonce, attestation, confirmation), unload it. Included
//! with `#[path = "support/offline.rs"] mod offline;` next to `mod support;`.
#![allow(dead_code)]

use ecny::amount::Amount;
use ecny::certs::{KeyPair, PublicKey};
use ecny::command::{Command, CommandResult, Outcome};
use ecny::ids::{DeviceId, OperatorId, WalletId};
use ecny::offline::applet::Applet;
use ecny::offline::issuer::{OperatorIssuer, SyncError};
use ecny::offline::messages::{AttestedSync, LogEntry, SyncAttestation};
use ecny::offline::profiles::Profile;
use ecny::offline::protocol::Relay;
use ecny::offline::settlement::SyncReport;

use crate::support::{yuan, World};

/// 2026-11-23 12:00 Beijing time, the support world's start.
pub const NOW_S: u32 = 1_795_406_400;

/// The issuing side of each operator, keyed as the platform's seeded test keys are.
pub fn issuers() -> Vec<OperatorIssuer> {
    ecny::platform::seeded_issuers("test", 2, (NOW_S - 86_400, NOW_S + 3_650 * 86_400))
}

pub fn device_key(id: u64) -> KeyPair {
    KeyPair::from_seed(format!("device/{id}").as_bytes())
}

/// A secure element in a test: its card, and who issued it.
pub struct Device {
    pub id: DeviceId,
    pub card: Applet,
    pub operator: OperatorId,
}

impl Device {
    pub fn key(&self) -> PublicKey {
        device_key(self.id.0).public_key()
    }

    /// Another card in the same state: a clone, or an image kept to restore later.
    pub fn copy(&self) -> Device {
        Device {
            id: self.id,
            card: self.card.clone_card(),
            operator: self.operator,
        }
    }

    pub fn balance(&mut self) -> Amount {
        Relay::new().summary(&mut self.card).unwrap().balance
    }
}

/// Issues a card of `profile` and registers it with the center.
pub fn issue(
    world: &mut World,
    issuers: &[OperatorIssuer],
    op: OperatorId,
    profile: Profile,
    id: u64,
    wallet: Option<WalletId>,
) -> Device {
    let card = issuers[op.0 as usize - 1]
        .issue(&profile, DeviceId(id), device_key(id), 1_000 + id, NOW_S)
        .unwrap();
    let register = Command::RegisterDevice {
        operator: op,
        device: DeviceId(id),
        public_key: device_key(id).public_key(),
        wallet,
        caps: profile.caps(),
        auth: None,
    };
    world.run_signed(op, register).unwrap();
    Device {
        id: DeviceId(id),
        card,
        operator: op,
    }
}

/// The center books the load; then the operator's order, bound to the card's attestation,
/// loads the card. The card is loaded only if the center accepted.
pub fn load(
    world: &mut World,
    issuers: &[OperatorIssuer],
    device: &mut Device,
    seq: u32,
    amount: &str,
) -> CommandResult {
    let command = Command::LoadDevice {
        device: device.id,
        load_seq: seq,
        amount: yuan(amount),
        auth: None,
    };
    let outcome = world.run_signed(device.operator, command)?;
    issuers[device.operator.0 as usize - 1]
        .load_card(&mut device.card, (device.id, seq, yuan(amount)))
        .unwrap();
    Ok(outcome)
}

/// One online sync of the card: nonce, attestation, the center's booking, the confirmation.
pub fn sync(
    world: &mut World,
    issuers: &[OperatorIssuer],
    device: &mut Device,
) -> Result<SyncReport, SyncError> {
    let (operator, id, key) = (device.operator, device.id, device.key());
    let mut center = |command: Command| Ok(world.run(operator, command));
    issuers[operator.0 as usize - 1].sync_card(&mut device.card, (id, key), &mut center)
}

/// The card debits and signs an unload at the phone's `time_s`; the center credits it.
pub fn unload(world: &mut World, device: &mut Device, amount: &str, time_s: u32) -> CommandResult {
    let unload = Relay::new()
        .unload(&mut device.card, yuan(amount), time_s)
        .unwrap();
    let device_key = device.key();
    world.run(
        device.operator,
        Command::UnloadDevice { unload, device_key },
    )
}

pub fn float(world: &World, op: OperatorId) -> Amount {
    let account = world.platform.state().operator(op).unwrap().offline_float;
    balance_of(world, account)
}

pub fn vault(world: &World, op: OperatorId) -> Amount {
    let account = world.platform.state().operator(op).unwrap().vault;
    balance_of(world, account)
}

fn balance_of(world: &World, account: ecny::ids::AccountId) -> Amount {
    world
        .platform
        .state()
        .ledger()
        .account(account)
        .unwrap()
        .balance
}

/// Opens a sync for the card and has it attest over the center's nonce: what its phone would
/// take to the center, before it does.
pub fn attest(world: &mut World, device: &mut Device) -> AttestedSync {
    let nonce = match world.run(device.operator, Command::BeginSync { device: device.id }) {
        Ok(Outcome::SyncNonce(nonce)) => nonce,
        other => panic!("no sync nonce: {other:?}"),
    };
    Relay::new().attest(&mut device.card, nonce).unwrap()
}

/// An attestation made with a device key outside any genuine card (a key its issuer kept):
/// anything its holder wants to claim, signed.
pub fn forged_sync(
    world: &mut World,
    (device, operator): (DeviceId, OperatorId),
    key: &KeyPair,
    log: Vec<LogEntry>,
) -> AttestedSync {
    let nonce = match world.run(operator, Command::BeginSync { device }) {
        Ok(Outcome::SyncNonce(nonce)) => nonce,
        other => panic!("no sync nonce: {other:?}"),
    };
    let mut attestation = SyncAttestation {
        device,
        nonce,
        balance: Amount::ZERO,
        counter: 0,
        load_seq: 0,
        unload_seq: 0,
        synced_through: 0,
        next_log_seq: log.len() as u32 + 1,
        last_sync_s: NOW_S,
        clock_floor_s: NOW_S,
        payments_since_sync: 0,
        spent_since_sync: Amount::ZERO,
        blocked: false,
        entries_digest: SyncAttestation::entries_digest(&log, &[]),
        signature: ecny::certs::Signature([0; 64]),
    };
    attestation.signature = key.sign(&attestation.digest());
    AttestedSync {
        attestation,
        log,
        unloads: Vec::new(),
    }
}
