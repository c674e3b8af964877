//! The issuing operator's side of dual offline: it holds a certificate from the central bank,
//! certifies the secure elements it issues with their profile's caps, signs the orders a
//! secure element obeys only from its own operator (loads and sync confirmations, each naming
//! the attestation the card made in the same session), and runs a card's online sync.

use thiserror::Error;

use crate::amount::Amount;
use crate::certs::device::{CertificateBody, CompactCertificate, Issuer, Subject};
use crate::certs::sm3_parts;
use crate::certs::{KeyPair, PublicKey};
use crate::command::{Command, CommandResult, Outcome};
use crate::error::CommandError;
use crate::ids::{DeviceId, OperatorId};
use crate::offline::applet::{Applet, Personalization};
use crate::offline::error::OfflineError;
use crate::offline::messages::{
    AttestationDigest, LoadAuthorization, Nonce, SyncConfirmation, NONCE_BYTES,
};
use crate::offline::profiles::Profile;
use crate::offline::protocol::{Relay, RelayError};
use crate::offline::settlement::SyncReport;

const LOAD_NONCE_DOMAIN: &[u8] = b"ecny.offline.load-nonce.v1";

/// Why an online sync of a card did not finish.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SyncError {
    #[error("the center refused the sync: {0}")]
    Center(CommandError),
    #[error("the card: {0}")]
    Card(RelayError),
    #[error("the center answered {0:?} where a sync step expected otherwise")]
    Unexpected(Outcome),
    #[error("the center could not be reached: {0}")]
    Unreachable(String),
}

impl SyncError {
    /// The stable code of the refusal.
    pub fn code(&self) -> &str {
        match self {
            SyncError::Center(error) => error.code(),
            SyncError::Card(error) => error.code().unwrap_or("OFFLINE_CARD_UNREACHABLE"),
            SyncError::Unexpected(_) => "SYNC_UNEXPECTED_ANSWER",
            SyncError::Unreachable(_) => "SYNC_CENTER_UNREACHABLE",
        }
    }
}

/// An operator able to issue hardware wallets.
#[derive(Clone, Debug)]
pub struct OperatorIssuer {
    operator: OperatorId,
    key: KeyPair,
    certificate: CompactCertificate,
    root: PublicKey,
}

impl OperatorIssuer {
    /// The central bank certifies `key` as `operator`'s from `not_before_s` to `not_after_s`.
    pub fn certify(
        central_bank: &KeyPair,
        operator: OperatorId,
        key: KeyPair,
        serial: u64,
        validity_s: (u32, u32),
    ) -> OperatorIssuer {
        let certificate = CertificateBody {
            serial,
            subject: Subject::Operator(operator),
            issuer: Issuer::CentralBank,
            public_key: key.public_key(),
            not_before_s: validity_s.0,
            not_after_s: validity_s.1,
            caps: None,
        }
        .sign(central_bank);
        OperatorIssuer {
            operator,
            key,
            certificate,
            root: central_bank.public_key(),
        }
    }

    pub fn operator(&self) -> OperatorId {
        self.operator
    }

    pub fn certificate(&self) -> &CompactCertificate {
        &self.certificate
    }

    pub fn key(&self) -> &KeyPair {
        &self.key
    }

    /// A device certificate carrying the profile's caps, valid from `now_s`.
    pub fn certify_device(
        &self,
        profile: &Profile,
        device: DeviceId,
        device_key: &PublicKey,
        serial: u64,
        now_s: u32,
    ) -> CompactCertificate {
        CertificateBody {
            serial,
            subject: Subject::Device(device),
            issuer: Issuer::Operator(self.operator),
            public_key: *device_key,
            not_before_s: now_s,
            not_after_s: now_s.saturating_add(profile.validity_s()),
            caps: Some(profile.caps()),
        }
        .sign(&self.key)
    }

    /// Certifies and personalizes a new secure element of the given profile.
    pub fn issue(
        &self,
        profile: &Profile,
        device: DeviceId,
        device_key: KeyPair,
        serial: u64,
        now_s: u32,
    ) -> Result<Applet, OfflineError> {
        let device_cert =
            self.certify_device(profile, device, &device_key.public_key(), serial, now_s);
        Applet::personalize(Personalization {
            device_key,
            device_cert,
            operator_cert: self.certificate,
            root: self.root,
            issued_at_s: now_s,
        })
    }

    /// Moves `amount` from the holder's online wallet (or a visitor's cash) into the SE in the
    /// state it attested in this session.
    pub fn authorize_load(
        &self,
        (device, load_seq, amount): (DeviceId, u32, Amount),
        attestation: &AttestationDigest,
    ) -> LoadAuthorization {
        LoadAuthorization::sign((device, load_seq, amount), attestation, &self.key)
    }

    /// Confirms that the center booked the SE's attested log up to `through_seq`.
    pub fn confirm_sync(
        &self,
        (device, through_seq, time_s): (DeviceId, u32, u32),
        attestation: &AttestationDigest,
    ) -> SyncConfirmation {
        SyncConfirmation::sign((device, through_seq, time_s), attestation, &self.key)
    }

    /// Loads a card over its phone, once the center has booked the load: the card attests its
    /// state, this operator signs an order naming that attestation, the card applies it.
    pub fn load_card(
        &self,
        card: &mut Applet,
        (device, load_seq, amount): (DeviceId, u32, Amount),
    ) -> Result<(), RelayError> {
        let mut relay = Relay::new();
        let nonce = load_nonce(device, load_seq);
        let attested = relay.attest(card, nonce)?;
        let order = self.authorize_load((device, load_seq, amount), &attested.attestation.digest());
        relay.load(card, &order)
    }
}

impl OperatorIssuer {
    /// One online sync of a card through its phone: the center hands out a nonce, the card
    /// attests over it, the center books the attestation, and this operator confirms what the
    /// center booked back to the card in the same session. `center` submits a command in this
    /// operator's batch ([`SyncError::Unreachable`] when it cannot). A blocked card gets no
    /// confirmation.
    pub fn sync_card(
        &self,
        card: &mut Applet,
        (device, device_key): (DeviceId, PublicKey),
        center: &mut dyn FnMut(Command) -> Result<CommandResult, SyncError>,
    ) -> Result<SyncReport, SyncError> {
        let nonce = match center(Command::BeginSync { device })?.map_err(SyncError::Center)? {
            Outcome::SyncNonce(nonce) => nonce,
            other => return Err(SyncError::Unexpected(other)),
        };
        let mut relay = Relay::new();
        let sync = relay.attest(card, nonce).map_err(SyncError::Card)?;
        let attestation = sync.attestation.digest();
        let command = Command::SyncOffline { sync, device_key };
        let report = match center(command)?.map_err(SyncError::Center)? {
            Outcome::Synced(report) => report,
            other => return Err(SyncError::Unexpected(other)),
        };
        if let Some(confirm) = report.confirm {
            let order =
                self.confirm_sync((device, confirm.through_seq, confirm.time_s), &attestation);
            relay.confirm_sync(card, &order).map_err(SyncError::Card)?;
        }
        Ok(report)
    }
}

/// The nonce a card attests over before a load: freshness does not matter there, the order is
/// bound to the state the card attested.
fn load_nonce(device: DeviceId, load_seq: u32) -> Nonce {
    let digest = sm3_parts(&[
        LOAD_NONCE_DOMAIN,
        &device.0.to_le_bytes(),
        &load_seq.to_le_bytes(),
    ]);
    let mut nonce = [0u8; NONCE_BYTES];
    nonce.copy_from_slice(&digest[..NONCE_BYTES]);
    Nonce(nonce)
}
