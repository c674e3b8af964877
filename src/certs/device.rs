//! Compact certificates for secure elements, small enough to cross NFC in one short APDU each.
//!
//! The chain is two links long: the central bank's root key signs operator certificates, and an
//! operator signs the certificates of the hardware wallets (devices) it issues. A device
//! certificate carries the offline caps the operator set for that wallet. Issuers sign the SM3
//! digest of a domain tag and the encoded body, so a certificate digest is never mistaken for
//! any other signed message. The central bank also signs a [`RevocationList`] of blocked devices
//! that secure elements and terminals receive at sync.

use thiserror::Error;

use crate::amount::Amount;
use crate::certs::{sm3_parts, CertError, KeyPair, PublicKey, Signature};
use crate::codec::{DecodeError, Reader, Writer};
use crate::ids::{DeviceId, OperatorId};

/// Largest encoded certificate: one fits a short APDU with room to spare.
pub const CERTIFICATE_BYTES_MAX: usize = 200;
/// Blocked devices one revocation list carries; sized for a secure element's memory.
pub const REVOKED_DEVICES_MAX: usize = 128;
/// Encoded size of a revocation list holding [`REVOKED_DEVICES_MAX`] devices.
pub const REVOCATION_LIST_BYTES_MAX: usize = REVOCATION_FIXED_BYTES + REVOKED_DEVICES_MAX * 8;

const CERTIFICATE_FORMAT: u8 = 1;
const CERTIFICATE_DOMAIN: &[u8] = b"ecny.compact-certificate.v1";
const REVOCATION_DOMAIN: &[u8] = b"ecny.revocation-list.v1";
const REVOCATION_FIXED_BYTES: usize = 4 + 4 + 2 + 64;

const SUBJECT_OPERATOR: u8 = 1;
const SUBJECT_DEVICE: u8 = 2;
const ISSUER_CENTRAL_BANK: u8 = 0;
const ISSUER_OPERATOR: u8 = 1;

/// Whom a certificate speaks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    Operator(OperatorId),
    Device(DeviceId),
}

/// Who signed a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Issuer {
    CentralBank,
    Operator(OperatorId),
}

/// Offline limits an operator sets for one hardware wallet; the secure element enforces them
/// with no network, and the other side of a tap checks the payer's per-payment cap again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeviceCaps {
    pub per_payment_cap: Amount,
    pub balance_cap: Amount,
    /// Set by a guardian on a student card; `None` means no daily limit.
    pub daily_cap: Option<Amount>,
    pub payments_before_sync: u16,
    /// What the card may pay between two online syncs, whatever it receives meanwhile: what a
    /// copy of it can spend before its next sync gives it away.
    pub spend_before_sync: Amount,
}

/// Everything a certificate says, without the issuer's signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CertificateBody {
    pub serial: u64,
    pub subject: Subject,
    pub issuer: Issuer,
    pub public_key: PublicKey,
    pub not_before_s: u32,
    pub not_after_s: u32,
    /// Present exactly when the subject is a device.
    pub caps: Option<DeviceCaps>,
}

/// A signed certificate: 118 bytes for an operator, 153 (161 with a daily cap) for a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CompactCertificate {
    pub body: CertificateBody,
    pub signature: Signature,
}

/// Why a certificate chain was refused, each with a stable code.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum CertChainError {
    #[error("certificate {serial} expired at {not_after_s} s (now {now_s} s)")]
    ExpiredCertificate {
        serial: u64,
        not_after_s: u32,
        now_s: u32,
    },
    #[error("certificate {serial} is valid only from {not_before_s} s (now {now_s} s)")]
    NotYetValid {
        serial: u64,
        not_before_s: u32,
        now_s: u32,
    },
    #[error("certificate {serial} is not signed by its issuer")]
    BadSignature { serial: u64 },
    #[error("certificate {serial} names an issuer that cannot issue it")]
    WrongIssuer { serial: u64 },
    #[error("certificate {serial} has the wrong kind of subject for its place in the chain")]
    WrongSubject { serial: u64 },
    #[error("device {0} is on the central bank's revocation list")]
    Revoked(DeviceId),
}

impl CertChainError {
    /// Machine-readable code; stable across releases, unlike the message.
    pub fn code(&self) -> &'static str {
        match self {
            CertChainError::ExpiredCertificate { .. } => "CERT_EXPIRED",
            CertChainError::NotYetValid { .. } => "CERT_NOT_YET_VALID",
            CertChainError::BadSignature { .. } => "CERT_SIGNATURE_INVALID",
            CertChainError::WrongIssuer { .. } => "CERT_WRONG_ISSUER",
            CertChainError::WrongSubject { .. } => "CERT_WRONG_SUBJECT",
            CertChainError::Revoked(_) => "CERT_REVOKED",
        }
    }
}

impl CertificateBody {
    /// Encodes the body in the order it is signed and sent.
    pub fn encode_into(&self, writer: &mut Writer) {
        assert_eq!(
            self.caps.is_some(),
            matches!(self.subject, Subject::Device(_)),
            "device certificates carry caps, operator certificates do not"
        );
        writer.u8(CERTIFICATE_FORMAT).u64(self.serial);
        match self.subject {
            Subject::Operator(operator) => writer.u8(SUBJECT_OPERATOR).u16(operator.0),
            Subject::Device(device) => writer.u8(SUBJECT_DEVICE).u64(device.0),
        };
        match self.issuer {
            Issuer::CentralBank => writer.u8(ISSUER_CENTRAL_BANK),
            Issuer::Operator(operator) => writer.u8(ISSUER_OPERATOR).u16(operator.0),
        };
        writer.raw(&self.public_key.0);
        writer.u32(self.not_before_s).u32(self.not_after_s);
        if let Some(caps) = &self.caps {
            encode_caps(caps, writer);
        }
    }

    /// What the issuer signs: SM3 over a domain tag and the encoded body.
    pub fn digest(&self) -> [u8; 32] {
        let mut writer = Writer::with_capacity(CERTIFICATE_BYTES_MAX);
        self.encode_into(&mut writer);
        sm3_parts(&[CERTIFICATE_DOMAIN, &writer.bytes])
    }

    /// Signs the body with the issuer's key.
    pub fn sign(self, issuer_key: &KeyPair) -> CompactCertificate {
        let signature = issuer_key.sign(&self.digest());
        CompactCertificate {
            body: self,
            signature,
        }
    }

    fn decode_from(reader: &mut Reader<'_>) -> Result<CertificateBody, DecodeError> {
        let format_at = reader.offset();
        if reader.u8("certificate format")? != CERTIFICATE_FORMAT {
            return Err(malformed("certificate format", format_at));
        }
        let serial = reader.u64("certificate serial")?;
        let subject = decode_subject(reader)?;
        let issuer = decode_issuer(reader)?;
        let public_key = decode_public_key(reader)?;
        let not_before_s = reader.u32("certificate not_before_s")?;
        let not_after_s = reader.u32("certificate not_after_s")?;
        let caps = match subject {
            Subject::Device(_) => Some(decode_caps(reader)?),
            Subject::Operator(_) => None,
        };
        Ok(CertificateBody {
            serial,
            subject,
            issuer,
            public_key,
            not_before_s,
            not_after_s,
            caps,
        })
    }
}

impl CompactCertificate {
    pub fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::with_capacity(CERTIFICATE_BYTES_MAX);
        self.encode_into(&mut writer);
        writer.bytes
    }

    pub fn encode_into(&self, writer: &mut Writer) {
        let start = writer.bytes.len();
        self.body.encode_into(writer);
        writer.raw(&self.signature.0);
        debug_assert!(writer.bytes.len() - start <= CERTIFICATE_BYTES_MAX);
    }

    /// Decodes exactly one certificate; trailing bytes are an error.
    pub fn decode(bytes: &[u8]) -> Result<CompactCertificate, DecodeError> {
        let mut reader = Reader::new(bytes);
        let certificate = CompactCertificate::decode_from(&mut reader)?;
        if !reader.is_empty() {
            return Err(malformed("bytes after the certificate", reader.offset()));
        }
        Ok(certificate)
    }

    /// Decodes one certificate from the front of a longer message.
    pub fn decode_from(reader: &mut Reader<'_>) -> Result<CompactCertificate, DecodeError> {
        let body = CertificateBody::decode_from(reader)?;
        let signature = Signature(reader.array("certificate signature")?);
        Ok(CompactCertificate { body, signature })
    }

    pub fn encoded_len(&self) -> usize {
        self.encode().len()
    }

    /// The device this certificate speaks for, if it is a device certificate.
    pub fn device(&self) -> Option<DeviceId> {
        match self.body.subject {
            Subject::Device(device) => Some(device),
            Subject::Operator(_) => None,
        }
    }

    fn verify_signature(&self, issuer_key: &PublicKey) -> Result<(), CertChainError> {
        issuer_key
            .verify(&self.body.digest(), &self.signature)
            .map_err(|_| CertChainError::BadSignature {
                serial: self.body.serial,
            })
    }

    fn check_validity(&self, now_s: u32) -> Result<(), CertChainError> {
        let body = &self.body;
        if now_s < body.not_before_s {
            return Err(CertChainError::NotYetValid {
                serial: body.serial,
                not_before_s: body.not_before_s,
                now_s,
            });
        }
        if now_s > body.not_after_s {
            return Err(CertChainError::ExpiredCertificate {
                serial: body.serial,
                not_after_s: body.not_after_s,
                now_s,
            });
        }
        Ok(())
    }
}

/// Checks root → operator → device at `now_s` against `revoked`, and returns the device's caps.
pub fn verify_chain(
    root: &PublicKey,
    operator_cert: &CompactCertificate,
    device_cert: &CompactCertificate,
    now_s: u32,
    revoked: &RevocationList,
) -> Result<DeviceCaps, CertChainError> {
    let known = KnownSignatures::default();
    verify_chain_known(root, operator_cert, device_cert, now_s, revoked, known)
}

/// Which certificates of a chain the verifier already checked the signature of, on exactly
/// these bytes; everything else about them (issuer, subject, validity, revocation) is checked
/// again every time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KnownSignatures {
    pub operator: bool,
    /// Only meaningful with `operator`: a device is trusted through its operator's key.
    pub device: bool,
}

impl KnownSignatures {
    /// Signature verifications the chain still needs.
    pub fn to_verify(self) -> u32 {
        u32::from(!self.operator) + u32::from(!(self.operator && self.device))
    }
}

/// [`verify_chain`], skipping the signature checks `known` says were done on these bytes.
pub fn verify_chain_known(
    root: &PublicKey,
    operator_cert: &CompactCertificate,
    device_cert: &CompactCertificate,
    now_s: u32,
    revoked: &RevocationList,
    known: KnownSignatures,
) -> Result<DeviceCaps, CertChainError> {
    let operator = match (operator_cert.body.subject, operator_cert.body.issuer) {
        (Subject::Operator(operator), Issuer::CentralBank) => operator,
        (Subject::Operator(_), Issuer::Operator(_)) => {
            return Err(CertChainError::WrongIssuer {
                serial: operator_cert.body.serial,
            })
        }
        (Subject::Device(_), _) => {
            return Err(CertChainError::WrongSubject {
                serial: operator_cert.body.serial,
            })
        }
    };
    if !known.operator {
        operator_cert.verify_signature(root)?;
    }
    operator_cert.check_validity(now_s)?;
    let wrong_subject = CertChainError::WrongSubject {
        serial: device_cert.body.serial,
    };
    let (device, caps) = match (device_cert.body.subject, device_cert.body.caps) {
        (Subject::Device(device), Some(caps)) => (device, caps),
        _ => return Err(wrong_subject),
    };
    if device_cert.body.issuer != Issuer::Operator(operator) {
        return Err(CertChainError::WrongIssuer {
            serial: device_cert.body.serial,
        });
    }
    if !(known.operator && known.device) {
        device_cert.verify_signature(&operator_cert.body.public_key)?;
    }
    device_cert.check_validity(now_s)?;
    if revoked.is_blocked(device) {
        return Err(CertChainError::Revoked(device));
    }
    Ok(caps)
}

/// Why a revocation list could not be issued.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum RevocationError {
    #[error("{count} blocked devices do not fit a revocation list of at most {max}")]
    TooManyDevices { count: usize, max: usize },
}

impl RevocationError {
    pub fn code(&self) -> &'static str {
        match self {
            RevocationError::TooManyDevices { .. } => "REVOCATION_LIST_TOO_LONG",
        }
    }
}

/// Devices the central bank has blocked (cloned or lost), sorted, signed by the central bank.
/// A higher version replaces a lower one; `issued_at_s` is a trusted time the secure element
/// never lets a phone's clock go below.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RevocationList {
    version: u32,
    issued_at_s: u32,
    blocked: Vec<DeviceId>,
    signature: Signature,
}

impl RevocationList {
    /// What a secure element holds before its first sync: version 0, nothing blocked, unsigned.
    pub fn empty() -> RevocationList {
        RevocationList {
            version: 0,
            issued_at_s: 0,
            blocked: Vec::new(),
            signature: Signature([0; 64]),
        }
    }

    /// The central bank's signed list; duplicates are dropped and the devices sorted.
    pub fn issue(
        version: u32,
        issued_at_s: u32,
        blocked: impl IntoIterator<Item = DeviceId>,
        central_bank: &KeyPair,
    ) -> Result<RevocationList, RevocationError> {
        let mut blocked: Vec<DeviceId> = blocked.into_iter().collect();
        blocked.sort_unstable();
        blocked.dedup();
        if blocked.len() > REVOKED_DEVICES_MAX {
            return Err(RevocationError::TooManyDevices {
                count: blocked.len(),
                max: REVOKED_DEVICES_MAX,
            });
        }
        let mut list = RevocationList {
            version,
            issued_at_s,
            blocked,
            signature: Signature([0; 64]),
        };
        list.signature = central_bank.sign(&list.digest());
        Ok(list)
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn issued_at_s(&self) -> u32 {
        self.issued_at_s
    }

    pub fn blocked(&self) -> &[DeviceId] {
        &self.blocked
    }

    pub fn is_blocked(&self, device: DeviceId) -> bool {
        self.blocked.binary_search(&device).is_ok()
    }

    /// Checks the central bank's signature.
    pub fn verify(&self, root: &PublicKey) -> Result<(), CertError> {
        root.verify(&self.digest(), &self.signature)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::with_capacity(REVOCATION_FIXED_BYTES + self.blocked.len() * 8);
        self.encode_body(&mut writer);
        writer.raw(&self.signature.0);
        writer.bytes
    }

    /// Decodes a list, refusing unsorted or duplicate devices and lists over the limit.
    pub fn decode(bytes: &[u8]) -> Result<RevocationList, DecodeError> {
        let mut reader = Reader::new(bytes);
        let version = reader.u32("revocation version")?;
        let issued_at_s = reader.u32("revocation issued_at_s")?;
        let count_at = reader.offset();
        let count = usize::from(reader.u16("revocation count")?);
        if count > REVOKED_DEVICES_MAX {
            return Err(malformed("revocation count", count_at));
        }
        let mut blocked = Vec::with_capacity(count);
        for _ in 0..count {
            let device_at = reader.offset();
            let device = DeviceId(reader.u64("revoked device")?);
            if blocked.last().is_some_and(|last| *last >= device) {
                return Err(malformed("revoked devices out of order", device_at));
            }
            blocked.push(device);
        }
        let signature = Signature(reader.array("revocation signature")?);
        if !reader.is_empty() {
            return Err(malformed(
                "bytes after the revocation list",
                reader.offset(),
            ));
        }
        Ok(RevocationList {
            version,
            issued_at_s,
            blocked,
            signature,
        })
    }

    fn encode_body(&self, writer: &mut Writer) {
        assert!(self.blocked.len() <= REVOKED_DEVICES_MAX);
        writer.u32(self.version).u32(self.issued_at_s);
        writer.u16(self.blocked.len() as u16);
        for device in &self.blocked {
            writer.u64(device.0);
        }
    }

    fn digest(&self) -> [u8; 32] {
        let mut writer = Writer::new();
        self.encode_body(&mut writer);
        sm3_parts(&[REVOCATION_DOMAIN, &writer.bytes])
    }
}

fn malformed(what: &'static str, offset: usize) -> DecodeError {
    DecodeError { what, offset }
}

fn encode_caps(caps: &DeviceCaps, writer: &mut Writer) {
    writer
        .i64(caps.per_payment_cap.fen())
        .i64(caps.balance_cap.fen());
    match caps.daily_cap {
        Some(daily_cap) => writer.u8(1).i64(daily_cap.fen()),
        None => writer.u8(0),
    };
    writer.u16(caps.payments_before_sync);
    writer.i64(caps.spend_before_sync.fen());
}

fn decode_caps(reader: &mut Reader<'_>) -> Result<DeviceCaps, DecodeError> {
    let per_payment_cap = decode_cap(reader, "per-payment cap")?;
    let balance_cap = decode_cap(reader, "balance cap")?;
    let daily_cap = if reader.bool("daily cap flag")? {
        Some(decode_cap(reader, "daily cap")?)
    } else {
        None
    };
    let payments_before_sync = reader.u16("payments before sync")?;
    let spend_before_sync = decode_cap(reader, "spend before sync")?;
    Ok(DeviceCaps {
        per_payment_cap,
        balance_cap,
        daily_cap,
        payments_before_sync,
        spend_before_sync,
    })
}

fn decode_cap(reader: &mut Reader<'_>, what: &'static str) -> Result<Amount, DecodeError> {
    let at = reader.offset();
    let amount = Amount::from_fen(reader.i64(what)?);
    if !amount.is_positive() || amount > Amount::MAX {
        return Err(malformed(what, at));
    }
    Ok(amount)
}

fn decode_subject(reader: &mut Reader<'_>) -> Result<Subject, DecodeError> {
    let at = reader.offset();
    match reader.u8("certificate subject")? {
        SUBJECT_OPERATOR => Ok(Subject::Operator(OperatorId(
            reader.u16("subject operator")?,
        ))),
        SUBJECT_DEVICE => Ok(Subject::Device(DeviceId(reader.u64("subject device")?))),
        _ => Err(malformed("certificate subject", at)),
    }
}

fn decode_issuer(reader: &mut Reader<'_>) -> Result<Issuer, DecodeError> {
    let at = reader.offset();
    match reader.u8("certificate issuer")? {
        ISSUER_CENTRAL_BANK => Ok(Issuer::CentralBank),
        ISSUER_OPERATOR => Ok(Issuer::Operator(OperatorId(reader.u16("issuer operator")?))),
        _ => Err(malformed("certificate issuer", at)),
    }
}

fn decode_public_key(reader: &mut Reader<'_>) -> Result<PublicKey, DecodeError> {
    let at = reader.offset();
    let bytes: [u8; 33] = reader.array("certificate public key")?;
    PublicKey::from_sec1(&bytes).map_err(|_| malformed("certificate public key", at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW_S: u32 = 1_700_000_000;
    const YEAR_S: u32 = 365 * 24 * 3600;

    struct Chain {
        root: KeyPair,
        operator_key: KeyPair,
        operator_cert: CompactCertificate,
        device_cert: CompactCertificate,
    }

    fn caps() -> DeviceCaps {
        DeviceCaps {
            per_payment_cap: Amount::from_yuan(1_000),
            balance_cap: Amount::from_yuan(5_000),
            daily_cap: None,
            payments_before_sync: 50,
            spend_before_sync: Amount::from_yuan(5_000),
        }
    }

    fn operator_body(operator_key: &KeyPair) -> CertificateBody {
        CertificateBody {
            serial: 1,
            subject: Subject::Operator(OperatorId(7)),
            issuer: Issuer::CentralBank,
            public_key: operator_key.public_key(),
            not_before_s: NOW_S - YEAR_S,
            not_after_s: NOW_S + 5 * YEAR_S,
            caps: None,
        }
    }

    fn device_body(device_key: &KeyPair) -> CertificateBody {
        CertificateBody {
            serial: 1001,
            subject: Subject::Device(DeviceId(42)),
            issuer: Issuer::Operator(OperatorId(7)),
            public_key: device_key.public_key(),
            not_before_s: NOW_S - 100,
            not_after_s: NOW_S + YEAR_S,
            caps: Some(caps()),
        }
    }

    fn chain() -> Chain {
        let root = KeyPair::from_seed(b"central bank");
        let operator_key = KeyPair::from_seed(b"operator 7");
        let device_key = KeyPair::from_seed(b"device 42");
        let operator_cert = operator_body(&operator_key).sign(&root);
        let device_cert = device_body(&device_key).sign(&operator_key);
        Chain {
            root,
            operator_key,
            operator_cert,
            device_cert,
        }
    }

    fn verify(
        chain: &Chain,
        now_s: u32,
        revoked: &RevocationList,
    ) -> Result<DeviceCaps, CertChainError> {
        verify_chain(
            &chain.root.public_key(),
            &chain.operator_cert,
            &chain.device_cert,
            now_s,
            revoked,
        )
    }

    #[test]
    fn a_valid_chain_yields_the_device_caps() {
        let chain = chain();
        assert_eq!(verify(&chain, NOW_S, &RevocationList::empty()), Ok(caps()));
    }

    #[test]
    fn certificates_are_compact() {
        let chain = chain();
        assert_eq!(chain.operator_cert.encoded_len(), 118);
        assert_eq!(chain.device_cert.encoded_len(), 153);
        let mut student = device_body(&chain.operator_key);
        student.caps = Some(DeviceCaps {
            daily_cap: Some(Amount::from_yuan(50)),
            ..caps()
        });
        let student = student.sign(&chain.operator_key);
        assert_eq!(student.encoded_len(), 161);
        assert!(student.encoded_len() <= CERTIFICATE_BYTES_MAX);
    }

    #[test]
    fn encoding_round_trips_and_rejects_trailing_bytes() {
        let chain = chain();
        for cert in [chain.operator_cert, chain.device_cert] {
            let bytes = cert.encode();
            assert_eq!(CompactCertificate::decode(&bytes), Ok(cert));
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(CompactCertificate::decode(&longer).is_err());
            assert!(CompactCertificate::decode(&bytes[..bytes.len() - 1]).is_err());
        }
    }

    #[test]
    fn expired_and_not_yet_valid_certificates_are_refused() {
        let chain = chain();
        let empty = RevocationList::empty();
        let late = NOW_S + YEAR_S + 1;
        assert!(matches!(
            verify(&chain, late, &empty),
            Err(CertChainError::ExpiredCertificate { serial: 1001, .. })
        ));
        let early = NOW_S - 101;
        let error = verify(&chain, early, &empty).unwrap_err();
        assert_eq!(error.code(), "CERT_NOT_YET_VALID");
        let later_still = NOW_S + 6 * YEAR_S;
        assert!(matches!(
            verify(&chain, later_still, &empty),
            Err(CertChainError::ExpiredCertificate { serial: 1, .. })
        ));
    }

    #[test]
    fn tampered_certificates_fail_the_signature_check() {
        let mut chain = chain();
        chain.device_cert.body.caps = Some(DeviceCaps {
            per_payment_cap: Amount::from_yuan(1_000_000),
            ..caps()
        });
        let error = verify(&chain, NOW_S, &RevocationList::empty()).unwrap_err();
        assert_eq!(error, CertChainError::BadSignature { serial: 1001 });
        assert_eq!(error.code(), "CERT_SIGNATURE_INVALID");
    }

    #[test]
    fn an_operator_certificate_signed_by_another_root_is_refused() {
        let mut chain = chain();
        let impostor = KeyPair::from_seed(b"not the central bank");
        chain.operator_cert = operator_body(&chain.operator_key).sign(&impostor);
        let error = verify(&chain, NOW_S, &RevocationList::empty()).unwrap_err();
        assert_eq!(error, CertChainError::BadSignature { serial: 1 });
    }

    #[test]
    fn a_device_certificate_from_another_operator_is_refused() {
        let mut chain = chain();
        let mut body = chain.device_cert.body;
        body.issuer = Issuer::Operator(OperatorId(8));
        chain.device_cert = body.sign(&chain.operator_key);
        let error = verify(&chain, NOW_S, &RevocationList::empty()).unwrap_err();
        assert_eq!(error, CertChainError::WrongIssuer { serial: 1001 });
        assert_eq!(error.code(), "CERT_WRONG_ISSUER");
    }

    #[test]
    fn certificates_in_the_wrong_place_are_refused() {
        let original = chain();
        let swapped = Chain {
            operator_cert: original.device_cert,
            device_cert: original.operator_cert,
            ..original
        };
        let error = verify(&swapped, NOW_S, &RevocationList::empty()).unwrap_err();
        assert_eq!(error.code(), "CERT_WRONG_SUBJECT");
        let mut self_issued = chain();
        let mut body = self_issued.operator_cert.body;
        body.issuer = Issuer::Operator(OperatorId(7));
        self_issued.operator_cert = body.sign(&self_issued.root);
        let error = verify(&self_issued, NOW_S, &RevocationList::empty()).unwrap_err();
        assert_eq!(error.code(), "CERT_WRONG_ISSUER");
    }

    #[test]
    fn a_revoked_device_is_refused() {
        let chain = chain();
        let list =
            RevocationList::issue(3, NOW_S, [DeviceId(9), DeviceId(42)], &chain.root).unwrap();
        let error = verify(&chain, NOW_S, &list).unwrap_err();
        assert_eq!(error, CertChainError::Revoked(DeviceId(42)));
        assert_eq!(error.code(), "CERT_REVOKED");
    }

    #[test]
    fn revocation_lists_are_sorted_signed_and_round_trip() {
        let root = KeyPair::from_seed(b"central bank");
        let list = RevocationList::issue(
            2,
            NOW_S,
            [DeviceId(30), DeviceId(10), DeviceId(30), DeviceId(20)],
            &root,
        )
        .unwrap();
        assert_eq!(list.blocked(), &[DeviceId(10), DeviceId(20), DeviceId(30)]);
        assert_eq!(list.verify(&root.public_key()), Ok(()));
        let bytes = list.encode();
        assert_eq!(bytes.len(), REVOCATION_FIXED_BYTES + 3 * 8);
        assert_eq!(RevocationList::decode(&bytes), Ok(list.clone()));
        let other = KeyPair::from_seed(b"someone else");
        assert_eq!(
            list.verify(&other.public_key()),
            Err(CertError::BadSignature)
        );
        assert!(RevocationList::empty().verify(&root.public_key()).is_err());
    }

    #[test]
    fn revocation_lists_refuse_disorder_and_excess() {
        let root = KeyPair::from_seed(b"central bank");
        let list = RevocationList::issue(1, NOW_S, [DeviceId(1), DeviceId(2)], &root).unwrap();
        let mut bytes = list.encode();
        // Swap the two device ids: same content, wrong order.
        let (first, second) = bytes[10..26].split_at_mut(8);
        first.swap_with_slice(second);
        assert!(RevocationList::decode(&bytes).is_err());
        let too_many = (0..=REVOKED_DEVICES_MAX as u64).map(DeviceId);
        let error = RevocationList::issue(1, NOW_S, too_many, &root).unwrap_err();
        assert_eq!(error.code(), "REVOCATION_LIST_TOO_LONG");
        let full = RevocationList::issue(
            1,
            NOW_S,
            (0..REVOKED_DEVICES_MAX as u64).map(DeviceId),
            &root,
        )
        .unwrap();
        assert_eq!(full.encode().len(), REVOCATION_LIST_BYTES_MAX);
    }

    #[test]
    fn decoding_refuses_bad_tags_keys_and_caps() {
        let chain = chain();
        let bytes = chain.device_cert.encode();
        for (index, value) in [(0, 9u8), (9, 3), (18, 7), (21, 0x05)] {
            let mut bad = bytes.clone();
            bad[index] = value;
            assert!(CompactCertificate::decode(&bad).is_err(), "byte {index}");
        }
        let mut zero_cap = bytes.clone();
        zero_cap[62..70].copy_from_slice(&0i64.to_le_bytes());
        assert!(CompactCertificate::decode(&zero_cap).is_err());
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = CompactCertificate::decode(&bytes);
            let _ = RevocationList::decode(&bytes);
        }
    }
}
