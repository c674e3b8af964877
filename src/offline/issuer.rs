//! The issuing operator's side of dual offline: it holds a certificate from the central bank,
//! certifies the secure elements it issues with their profile's caps, and signs the orders a
//! secure element obeys only from its own operator (loads and sync confirmations).

use crate::amount::Amount;
use crate::certs::device::{CertificateBody, CompactCertificate, Issuer, Subject};
use crate::certs::{KeyPair, PublicKey};
use crate::ids::{DeviceId, OperatorId};
use crate::offline::applet::{Applet, Personalization};
use crate::offline::error::OfflineError;
use crate::offline::messages::{LoadAuthorization, SyncConfirmation};
use crate::offline::profiles::Profile;

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

    /// Moves `amount` from the holder's online wallet (or a visitor's cash) into the SE.
    pub fn authorize_load(
        &self,
        device: DeviceId,
        load_seq: u32,
        amount: Amount,
    ) -> LoadAuthorization {
        LoadAuthorization::sign(device, load_seq, amount, &self.key)
    }

    /// Confirms that the center recorded the SE's log up to `through_seq`.
    pub fn confirm_sync(
        &self,
        device: DeviceId,
        through_seq: u32,
        time_s: u32,
    ) -> SyncConfirmation {
        SyncConfirmation::sign(device, through_seq, time_s, &self.key)
    }
}
