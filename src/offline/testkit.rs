//! Fixtures for the offline tests: a central bank, two operators, and funded hardware wallets.

use crate::amount::Amount;
use crate::certs::device::RevocationList;
use crate::certs::KeyPair;
use crate::ids::{DeviceId, OperatorId};
use crate::offline::applet::Applet;
use crate::offline::issuer::OperatorIssuer;
use crate::offline::messages::{AttestedSync, Nonce, SyncConfirmation, NONCE_BYTES};
use crate::offline::profiles::{Profile, WalletForm};
use crate::offline::protocol::{Relay, RelayError};

/// 2023-11-14 22:13:20 UTC: a fixed "now" keeps every test deterministic.
pub const NOW_S: u32 = 1_700_000_000;
const YEAR_S: u32 = 365 * 86_400;

pub struct World {
    pub central_bank: KeyPair,
    pub operators: Vec<OperatorIssuer>,
}

impl World {
    pub fn new() -> World {
        let central_bank = KeyPair::from_seed(b"people's bank of china");
        let operators = (1u16..=2)
            .map(|id| {
                let key = KeyPair::from_seed(&[b"operator".as_slice(), &id.to_le_bytes()].concat());
                let validity = (NOW_S - YEAR_S, NOW_S + 10 * YEAR_S);
                OperatorIssuer::certify(&central_bank, OperatorId(id), key, u64::from(id), validity)
            })
            .collect();
        World {
            central_bank,
            operators,
        }
    }

    pub fn device_key(device: u64) -> KeyPair {
        KeyPair::from_seed(&[b"device".as_slice(), &device.to_le_bytes()].concat())
    }

    /// A wallet of `form` issued by operator `operator` and loaded with `balance` over APDUs.
    pub fn wallet(
        &self,
        operator: usize,
        form: WalletForm,
        device: u64,
        balance: Amount,
    ) -> Applet {
        self.wallet_with(operator, &Profile::new(form), device, balance)
    }

    pub fn wallet_with(
        &self,
        operator: usize,
        profile: &Profile,
        device: u64,
        balance: Amount,
    ) -> Applet {
        let issuer = &self.operators[operator];
        let serial = 1_000 + device;
        let mut card = issuer
            .issue(
                profile,
                DeviceId(device),
                World::device_key(device),
                serial,
                NOW_S,
            )
            .expect("a fresh chain verifies");
        if balance.is_positive() {
            issuer
                .load_card(&mut card, (DeviceId(device), 1, balance))
                .expect("load within caps");
        }
        card
    }

    /// The card attests, and `operator` confirms through its last entry at trusted `time_s`, as
    /// if the center had booked everything.
    pub fn confirm_all(
        &self,
        operator: usize,
        card: &mut Applet,
        time_s: u32,
    ) -> Result<(AttestedSync, SyncConfirmation), RelayError> {
        let mut relay = Relay::new();
        let sync = relay.attest(card, Nonce([0; NONCE_BYTES]))?;
        let attestation = &sync.attestation;
        let through = attestation.next_log_seq - 1;
        let order = self.operators[operator]
            .confirm_sync((attestation.device, through, time_s), &attestation.digest());
        relay.confirm_sync(card, &order)?;
        Ok((sync, order))
    }

    pub fn revocation_list(&self, version: u32, blocked: &[DeviceId]) -> RevocationList {
        RevocationList::issue(version, NOW_S, blocked.iter().copied(), &self.central_bank)
            .expect("a short list")
    }
}
