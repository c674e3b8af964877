//! X.509 v3 certificates for the certification center: the central bank's
//! self-signed root and each operator's intermediate CA, signed SM2-with-SM3
//! (GM/T 0015) so that OpenSSL 3 and other GM/T stacks read and verify them.
//!
//! Keys are written as OpenSSL 3 writes SM2 keys: id-ecPublicKey with the SM2
//! curve as its parameter, the point uncompressed. Signatures use the GM/T 0009
//! default user id [`DEFAULT_DISTID`](super::DEFAULT_DISTID), as Chinese CAs,
//! GmSSL and Tongsuo do.
//! OpenSSL 1.1.1 to 3.x instead default to an empty id, so tell it the id:
//!
//! ```text
//! openssl verify -CAfile root.pem root.pem
//! openssl verify -vfyopt distid:1234567812345678 -CAfile root.pem operator.pem
//! ```
//!
//! (The first needs no option: OpenSSL does not check a trust anchor's own
//! signature. `-vfyopt` reaches only the certificate being verified, so
//! OpenSSL 3.0 cannot check a three-level SM2 chain in one command.)

use std::fmt;
use std::time::Duration;

use der::asn1::{AnyRef, BitString, BitStringRef, ObjectIdentifier, OctetString, UintRef};
use der::oid::AssociatedOid;
use der::pem::LineEnding;
use der::{Any, DateTime, Decode, Encode, Sequence, Tag};
use sm2::elliptic_curve::sec1::ToSec1Point;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{
    AlgorithmIdentifierOwned, AlgorithmIdentifierRef, SubjectPublicKeyInfoOwned,
};
use x509_cert::time::{Time, Validity};
use x509_cert::Version;

use super::{sm3, KeyPair, PublicKey, Signature};
use crate::ids::OperatorId;

/// GM/T 0006: SM2 signature over an SM3 digest.
pub const SM2_WITH_SM3_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.501");
/// RFC 5480 id-ecPublicKey; the curve parameter says which curve.
pub const EC_PUBLIC_KEY_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// GM/T 0006: the SM2 curve.
pub const SM2_CURVE_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.301");
const COMMON_NAME_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const ORGANIZATION_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.10");

pub const ROOT_COMMON_NAME: &str = "ecny Central Bank Root";
pub const ROOT_ORGANIZATION: &str = "People's Bank (demo)";
pub const OPERATOR_ORGANIZATION: &str = "ecny operator";

/// RFC 5280 ub-common-name.
pub const COMMON_NAME_CHARS_MAX: usize = 64;
/// Key identifiers are 20 bytes, the size RFC 5280 method 1 gives with SHA-1.
const KEY_ID_BYTES: usize = 20;
const COORDINATE_BYTES: usize = 32;
/// Operators issue end-entity certificates (merchants, terminals, secure
/// elements) but never another CA.
const OPERATOR_PATH_LEN: u8 = 0;

/// Failures building or checking certificates, each with a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum X509Error {
    #[error("certificate is not valid DER X.509: {0}")]
    Encoding(der::Error),
    #[error("serial number must be positive")]
    SerialNotPositive,
    #[error("validity must start before it ends, between 1970 and 9999: {not_before_s} s to {not_after_s} s after the epoch")]
    ValidityInvalid { not_before_s: u64, not_after_s: u64 },
    #[error("common name must be 1 to {COMMON_NAME_CHARS_MAX} printable characters")]
    NameInvalid,
    #[error("certificate uses an algorithm other than SM2 with SM3")]
    AlgorithmUnsupported,
    #[error("certificate public key is not a valid SM2 point")]
    PublicKeyInvalid,
    #[error("signing key does not match the issuer certificate's public key")]
    KeyMismatch,
    #[error("certificate's issuer is not the given issuer certificate's subject")]
    IssuerMismatch,
    #[error("issuer certificate is not a CA allowed to sign certificates")]
    IssuerNotCa,
    #[error("certificate signature does not verify")]
    SignatureInvalid,
}

impl X509Error {
    /// Machine-readable code; stable across releases, unlike the message.
    pub fn code(&self) -> &'static str {
        match self {
            X509Error::Encoding(_) => "X509_ENCODING",
            X509Error::SerialNotPositive => "X509_SERIAL_INVALID",
            X509Error::ValidityInvalid { .. } => "X509_VALIDITY_INVALID",
            X509Error::NameInvalid => "X509_NAME_INVALID",
            X509Error::AlgorithmUnsupported => "X509_ALGORITHM_UNSUPPORTED",
            X509Error::PublicKeyInvalid => "X509_PUBLIC_KEY_INVALID",
            X509Error::KeyMismatch => "X509_KEY_MISMATCH",
            X509Error::IssuerMismatch => "X509_ISSUER_MISMATCH",
            X509Error::IssuerNotCa => "X509_ISSUER_NOT_CA",
            X509Error::SignatureInvalid => "X509_SIGNATURE_INVALID",
        }
    }
}

impl From<der::Error> for X509Error {
    fn from(error: der::Error) -> X509Error {
        X509Error::Encoding(error)
    }
}

/// A parsed SM2 certificate together with its exact DER bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
    parsed: x509_cert::Certificate,
    subject_key: PublicKey,
}

impl Certificate {
    /// Parses strict DER, accepting only SM2-with-SM3 signatures over SM2 keys.
    pub fn from_der(bytes: &[u8]) -> Result<Certificate, X509Error> {
        let parsed = x509_cert::Certificate::from_der(bytes)?;
        let tbs = parsed.tbs_certificate();
        let signed_with_sm2 = parsed.signature_algorithm().oid == SM2_WITH_SM3_OID
            && tbs.signature().oid == SM2_WITH_SM3_OID;
        if !signed_with_sm2 {
            return Err(X509Error::AlgorithmUnsupported);
        }
        let subject_key = sm2_public_key(tbs.subject_public_key_info())?;
        Ok(Certificate {
            der: bytes.to_vec(),
            parsed,
            subject_key,
        })
    }

    /// Parses one PEM `CERTIFICATE` block.
    pub fn from_pem(text: &str) -> Result<Certificate, X509Error> {
        let (label, der) = der::pem::decode_vec(text.as_bytes())
            .map_err(|error| X509Error::Encoding(error.into()))?;
        if label != "CERTIFICATE" {
            return Err(X509Error::Encoding(der::ErrorKind::Failed.into()));
        }
        Certificate::from_der(&der)
    }

    pub fn to_der(&self) -> Vec<u8> {
        self.der.clone()
    }

    pub fn to_pem(&self) -> String {
        der::pem::encode_string("CERTIFICATE", LineEnding::LF, &self.der)
            .expect("a parsed certificate is small enough to encode as PEM")
    }

    pub fn subject_public_key(&self) -> PublicKey {
        self.subject_key
    }

    /// The subject in RFC 4514 form, e.g. `CN=ecny Central Bank Root,O=People's Bank (demo)`.
    pub fn subject(&self) -> String {
        self.parsed.tbs_certificate().subject().to_string()
    }

    pub fn issuer(&self) -> String {
        self.parsed.tbs_certificate().issuer().to_string()
    }

    /// Big-endian serial number without leading zeros.
    pub fn serial(&self) -> &[u8] {
        self.parsed.tbs_certificate().serial_number().as_bytes()
    }
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject())
            .field("issuer", &self.issuer())
            .field("serial", &self.serial())
            .finish_non_exhaustive()
    }
}

/// The central bank's self-signed root CA certificate.
pub fn root_certificate(
    central_bank: &KeyPair,
    serial: u64,
    not_before_s: u64,
    not_after_s: u64,
) -> Result<Certificate, X509Error> {
    let name = distinguished_name(ROOT_COMMON_NAME, ROOT_ORGANIZATION)?;
    let key = central_bank.public_key();
    let fields = CertificateFields {
        serial,
        not_before_s,
        not_after_s,
        issuer: name.clone(),
        issuer_key: key,
        subject: name,
        subject_key: key,
        path_len: None,
    };
    issue(central_bank, fields)
}

/// An operator's intermediate CA certificate, issued by the central bank's root.
#[allow(clippy::too_many_arguments)]
pub fn operator_certificate(
    root: &KeyPair,
    root_cert: &Certificate,
    operator_id: OperatorId,
    name: &str,
    operator_key: &PublicKey,
    serial: u64,
    not_before_s: u64,
    not_after_s: u64,
) -> Result<Certificate, X509Error> {
    if root.public_key() != root_cert.subject_public_key() {
        return Err(X509Error::KeyMismatch);
    }
    let common_name = format!("{operator_id} {}", name.trim());
    let fields = CertificateFields {
        serial,
        not_before_s,
        not_after_s,
        issuer: root_cert.parsed.tbs_certificate().subject().clone(),
        issuer_key: root_cert.subject_public_key(),
        subject: distinguished_name(&common_name, OPERATOR_ORGANIZATION)?,
        subject_key: *operator_key,
        path_len: Some(OPERATOR_PATH_LEN),
    };
    issue(root, fields)
}

/// Checks that `issuer` is a CA whose subject issued `cert` and whose key
/// signed it. Validity dates are the caller's business: time is handed in.
pub fn verify_issued_by(cert: &Certificate, issuer: &Certificate) -> Result<(), X509Error> {
    let issuer_tbs = issuer.parsed.tbs_certificate();
    if cert.parsed.tbs_certificate().issuer() != issuer_tbs.subject() {
        return Err(X509Error::IssuerMismatch);
    }
    check_may_sign_certificates(issuer_tbs)?;
    // The signature covers the TBSCertificate exactly as it was received.
    let signed = SignedCertificate::from_der(&cert.der)?;
    let tbs_der = signed.tbs_certificate.to_der()?;
    let signature_der = signed
        .signature
        .as_bytes()
        .ok_or(X509Error::SignatureInvalid)?;
    let signature = signature_from_der(signature_der)?;
    issuer
        .subject_key
        .verify(&tbs_der, &signature)
        .map_err(|_| X509Error::SignatureInvalid)
}

fn check_may_sign_certificates(tbs: &x509_cert::TbsCertificate) -> Result<(), X509Error> {
    let is_ca = matches!(
        tbs.get_extension::<BasicConstraints>()?,
        Some((_, constraints)) if constraints.ca
    );
    let may_sign = match tbs.get_extension::<KeyUsage>()? {
        Some((_, usage)) => usage.key_cert_sign(),
        None => true,
    };
    if is_ca && may_sign {
        Ok(())
    } else {
        Err(X509Error::IssuerNotCa)
    }
}

/// Everything that differs between the certificates this module issues.
struct CertificateFields {
    serial: u64,
    not_before_s: u64,
    not_after_s: u64,
    issuer: Name,
    issuer_key: PublicKey,
    subject: Name,
    subject_key: PublicKey,
    path_len: Option<u8>,
}

/// RFC 5280 TBSCertificate for v3, without the unique ids nobody uses.
#[derive(Sequence)]
struct TbsCertificateV3 {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    version: Version,
    serial_number: SerialNumber,
    signature: AlgorithmIdentifierOwned,
    issuer: Name,
    validity: Validity,
    subject: Name,
    subject_public_key_info: SubjectPublicKeyInfoOwned,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT")]
    extensions: Vec<Extension>,
}

/// RFC 5280 Certificate with the TBSCertificate kept as raw DER, so the bytes
/// signed are the bytes checked.
#[derive(Sequence)]
struct SignedCertificate<'a> {
    tbs_certificate: AnyRef<'a>,
    signature_algorithm: AlgorithmIdentifierRef<'a>,
    signature: BitStringRef<'a>,
}

/// GM/T 0009 SM2 signature value.
#[derive(Sequence)]
struct SignatureValue<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

fn issue(signer: &KeyPair, fields: CertificateFields) -> Result<Certificate, X509Error> {
    let tbs_der = tbs_certificate(&fields)?.to_der()?;
    let signature_der = signature_to_der(&signer.sign(&tbs_der))?;
    let signed = SignedCertificate {
        tbs_certificate: AnyRef::from_der(&tbs_der)?,
        signature_algorithm: AlgorithmIdentifierRef {
            oid: SM2_WITH_SM3_OID,
            parameters: None,
        },
        signature: BitStringRef::from_bytes(&signature_der)?,
    };
    Certificate::from_der(&signed.to_der()?)
}

fn tbs_certificate(fields: &CertificateFields) -> Result<TbsCertificateV3, X509Error> {
    if fields.serial == 0 {
        return Err(X509Error::SerialNotPositive);
    }
    let subject_public_key_info = sm2_public_key_info(&fields.subject_key)?;
    let subject_key_id = key_id(&fields.subject_key)?;
    let authority_key_id = key_id(&fields.issuer_key)?;
    Ok(TbsCertificateV3 {
        version: Version::V3,
        serial_number: SerialNumber::new(&fields.serial.to_be_bytes())?,
        signature: sm2_with_sm3(),
        issuer: fields.issuer.clone(),
        validity: validity(fields.not_before_s, fields.not_after_s)?,
        subject: fields.subject.clone(),
        subject_public_key_info,
        extensions: ca_extensions(subject_key_id, authority_key_id, fields.path_len)?,
    })
}

fn sm2_with_sm3() -> AlgorithmIdentifierOwned {
    // RFC 5758 style: no parameters, as OpenSSL writes it.
    AlgorithmIdentifierOwned {
        oid: SM2_WITH_SM3_OID,
        parameters: None,
    }
}

/// UTCTime through 2049 and GeneralizedTime from 2050, as RFC 5280 4.1.2.5 asks.
fn validity(not_before_s: u64, not_after_s: u64) -> Result<Validity, X509Error> {
    let invalid = X509Error::ValidityInvalid {
        not_before_s,
        not_after_s,
    };
    let time = |seconds: u64| {
        DateTime::from_unix_duration(Duration::from_secs(seconds))
            .map(Time::from)
            .map_err(|_| invalid)
    };
    if not_before_s >= not_after_s {
        return Err(invalid);
    }
    Ok(Validity::new(time(not_before_s)?, time(not_after_s)?))
}

/// A name of organization then common name, so RFC 4514 prints `CN=…,O=…`.
/// Built from attributes, not parsed from text, so no character of an
/// operator's name can inject another attribute.
fn distinguished_name(common_name: &str, organization: &str) -> Result<Name, X509Error> {
    let mut rdns = Vec::new();
    for (oid, value) in [
        (ORGANIZATION_OID, organization),
        (COMMON_NAME_OID, common_name),
    ] {
        check_name_value(value)?;
        let attribute = AttributeTypeAndValue {
            oid,
            value: Any::new(Tag::Utf8String, value.as_bytes())?,
        };
        rdns.push(RelativeDistinguishedName::try_from(vec![attribute])?);
    }
    Ok(Name::from_der(&RdnSequence::from(rdns).to_der()?)?)
}

fn check_name_value(value: &str) -> Result<(), X509Error> {
    let chars = value.chars().count();
    let printable = !value.chars().any(char::is_control);
    if (1..=COMMON_NAME_CHARS_MAX).contains(&chars) && printable && value.trim() == value {
        Ok(())
    } else {
        Err(X509Error::NameInvalid)
    }
}

fn ca_extensions(
    subject_key_id: OctetString,
    authority_key_id: OctetString,
    path_len: Option<u8>,
) -> Result<Vec<Extension>, X509Error> {
    let constraints = BasicConstraints {
        ca: true,
        path_len_constraint: path_len,
    };
    let usage = KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign | KeyUsages::DigitalSignature);
    let authority = AuthorityKeyIdentifier {
        key_identifier: Some(authority_key_id),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    Ok(vec![
        extension(&constraints, true)?,
        extension(&usage, true)?,
        extension(&SubjectKeyIdentifier(subject_key_id), false)?,
        extension(&authority, false)?,
    ])
}

fn extension<T: AssociatedOid + Encode>(value: &T, critical: bool) -> Result<Extension, X509Error> {
    Ok(Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

/// First 20 bytes of SM3 over the subjectPublicKey bits: RFC 5280 method 1
/// with SM3 in place of SHA-1.
fn key_id(key: &PublicKey) -> Result<OctetString, X509Error> {
    let digest = sm3(&uncompressed_point(key)?);
    Ok(OctetString::new(&digest[..KEY_ID_BYTES])?)
}

fn sm2_public_key_info(key: &PublicKey) -> Result<SubjectPublicKeyInfoOwned, X509Error> {
    Ok(SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: EC_PUBLIC_KEY_OID,
            parameters: Some(Any::encode_from(&SM2_CURVE_OID)?),
        },
        subject_public_key: BitString::from_bytes(&uncompressed_point(key)?)?,
    })
}

/// Reads an id-ecPublicKey on the SM2 curve; other key types are refused.
fn sm2_public_key(info: &SubjectPublicKeyInfoOwned) -> Result<PublicKey, X509Error> {
    let curve = info
        .algorithm
        .parameters
        .as_ref()
        .and_then(|parameters| parameters.decode_as::<ObjectIdentifier>().ok());
    if info.algorithm.oid != EC_PUBLIC_KEY_OID || curve != Some(SM2_CURVE_OID) {
        return Err(X509Error::AlgorithmUnsupported);
    }
    let point = info
        .subject_public_key
        .as_bytes()
        .ok_or(X509Error::PublicKeyInvalid)?;
    PublicKey::from_sec1(point).map_err(|_| X509Error::PublicKeyInvalid)
}

/// OpenSSL writes and expects SM2 points uncompressed in certificates.
fn uncompressed_point(key: &PublicKey) -> Result<Vec<u8>, X509Error> {
    let point = sm2::PublicKey::from_sec1_bytes(&key.0).map_err(|_| X509Error::PublicKeyInvalid)?;
    Ok(point.to_sec1_point(false).as_bytes().to_vec())
}

fn signature_to_der(signature: &Signature) -> Result<Vec<u8>, X509Error> {
    let (r, s) = signature.0.split_at(COORDINATE_BYTES);
    let value = SignatureValue {
        r: UintRef::new(r)?,
        s: UintRef::new(s)?,
    };
    Ok(value.to_der()?)
}

fn signature_from_der(bytes: &[u8]) -> Result<Signature, X509Error> {
    let value = SignatureValue::from_der(bytes).map_err(|_| X509Error::SignatureInvalid)?;
    let mut signature = Signature([0u8; 2 * COORDINATE_BYTES]);
    let (r, s) = signature.0.split_at_mut(COORDINATE_BYTES);
    left_pad(value.r.as_bytes(), r)?;
    left_pad(value.s.as_bytes(), s)?;
    Ok(signature)
}

/// Copies a big-endian integer right-aligned into `out`; too long is invalid.
fn left_pad(integer: &[u8], out: &mut [u8]) -> Result<(), X509Error> {
    let start = out
        .len()
        .checked_sub(integer.len())
        .ok_or(X509Error::SignatureInvalid)?;
    out[start..].copy_from_slice(integer);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::{Command, Output};

    use super::*;
    use crate::certs::DEFAULT_DISTID;

    /// 2024-01-01T00:00:00Z.
    const NOT_BEFORE_S: u64 = 1_704_067_200;
    /// 2035-01-01T00:00:00Z: still UTCTime.
    const OPERATOR_NOT_AFTER_S: u64 = 2_051_222_400;
    /// 2060-01-01T00:00:00Z: GeneralizedTime from 2050 on.
    const ROOT_NOT_AFTER_S: u64 = 2_840_140_800;
    const JIANGNAN: OperatorId = OperatorId(1);

    struct Hierarchy {
        root_key: KeyPair,
        operator_key: KeyPair,
        root: Certificate,
        operator: Certificate,
    }

    fn hierarchy() -> Hierarchy {
        let root_key = KeyPair::from_seed(b"central bank root");
        let operator_key = KeyPair::from_seed(b"OP01 Jiangnan");
        let root = root_certificate(&root_key, 1, NOT_BEFORE_S, ROOT_NOT_AFTER_S).unwrap();
        let operator = operator_certificate(
            &root_key,
            &root,
            JIANGNAN,
            "Jiangnan Commercial Bank",
            &operator_key.public_key(),
            2,
            NOT_BEFORE_S,
            OPERATOR_NOT_AFTER_S,
        )
        .unwrap();
        Hierarchy {
            root_key,
            operator_key,
            root,
            operator,
        }
    }

    /// An operator certificate naming the real root as issuer, down to its key
    /// identifier, but signed by another key.
    fn forged_operator(hierarchy: &Hierarchy) -> Certificate {
        let impostor = KeyPair::from_seed(b"impostor");
        let fields = CertificateFields {
            serial: 3,
            not_before_s: NOT_BEFORE_S,
            not_after_s: OPERATOR_NOT_AFTER_S,
            issuer: hierarchy.root.parsed.tbs_certificate().subject().clone(),
            issuer_key: hierarchy.root_key.public_key(),
            subject: distinguished_name("OP09 Forged Bank", OPERATOR_ORGANIZATION).unwrap(),
            subject_key: impostor.public_key(),
            path_len: Some(OPERATOR_PATH_LEN),
        };
        issue(&impostor, fields).unwrap()
    }

    /// The certificate with one byte of its operator name changed; the DER
    /// still parses, only the signature no longer matches.
    fn tampered(cert: &Certificate, from: &[u8], to: &[u8]) -> Certificate {
        let mut der = cert.to_der();
        let at = der
            .windows(from.len())
            .position(|window| window == from)
            .expect("the certificate contains the bytes to change");
        der[at..at + to.len()].copy_from_slice(to);
        Certificate::from_der(&der).unwrap()
    }

    #[test]
    fn root_is_self_signed_and_round_trips_der_and_pem() {
        let Hierarchy { root_key, root, .. } = hierarchy();
        assert_eq!(verify_issued_by(&root, &root), Ok(()));
        assert_eq!(
            root.subject(),
            "CN=ecny Central Bank Root,O=People's Bank (demo)"
        );
        assert_eq!(root.issuer(), root.subject());
        assert_eq!(root.subject_public_key(), root_key.public_key());
        assert_eq!(root.serial(), [1]);
        assert_eq!(Certificate::from_der(&root.to_der()), Ok(root.clone()));
        assert!(root.to_pem().starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert_eq!(Certificate::from_pem(&root.to_pem()), Ok(root));
    }

    #[test]
    fn operator_certificate_is_issued_by_the_root() {
        let Hierarchy {
            operator_key,
            root,
            operator,
            ..
        } = hierarchy();
        assert_eq!(verify_issued_by(&operator, &root), Ok(()));
        assert_eq!(
            operator.subject(),
            "CN=OP01 Jiangnan Commercial Bank,O=ecny operator"
        );
        assert_eq!(operator.issuer(), root.subject());
        assert_eq!(operator.subject_public_key(), operator_key.public_key());
        let tbs = operator.parsed.tbs_certificate();
        let (critical, constraints) = tbs.get_extension::<BasicConstraints>().unwrap().unwrap();
        assert!(critical && constraints.ca);
        assert_eq!(constraints.path_len_constraint, Some(OPERATOR_PATH_LEN));
    }

    #[test]
    fn tampered_tbs_fails_verification() {
        let Hierarchy { root, operator, .. } = hierarchy();
        let changed = tampered(&operator, b"Jiangnan", b"Jiangnam");
        assert_eq!(
            changed.subject(),
            "CN=OP01 Jiangnam Commercial Bank,O=ecny operator"
        );
        assert_eq!(
            verify_issued_by(&changed, &root),
            Err(X509Error::SignatureInvalid)
        );
    }

    #[test]
    fn wrong_signer_and_wrong_issuer_are_refused() {
        let hierarchy = hierarchy();
        let forged = forged_operator(&hierarchy);
        assert_eq!(
            verify_issued_by(&forged, &hierarchy.root),
            Err(X509Error::SignatureInvalid)
        );
        assert_eq!(
            verify_issued_by(&hierarchy.root, &hierarchy.operator),
            Err(X509Error::IssuerMismatch)
        );
        let result = operator_certificate(
            &hierarchy.operator_key,
            &hierarchy.root,
            JIANGNAN,
            "Jiangnan Commercial Bank",
            &hierarchy.operator_key.public_key(),
            4,
            NOT_BEFORE_S,
            OPERATOR_NOT_AFTER_S,
        );
        assert_eq!(result.err(), Some(X509Error::KeyMismatch));
    }

    #[test]
    fn validity_uses_utc_time_until_2049_and_generalized_time_after() {
        let Hierarchy { root, operator, .. } = hierarchy();
        let root_validity = root.parsed.tbs_certificate().validity();
        assert!(matches!(root_validity.not_before, Time::UtcTime(_)));
        assert!(matches!(root_validity.not_after, Time::GeneralTime(_)));
        let operator_validity = operator.parsed.tbs_certificate().validity();
        assert!(matches!(operator_validity.not_after, Time::UtcTime(_)));
        assert_eq!(
            operator_validity.not_after.to_unix_duration().as_secs(),
            OPERATOR_NOT_AFTER_S
        );
    }

    #[test]
    fn key_identifiers_chain_operator_to_root() {
        let Hierarchy { root, operator, .. } = hierarchy();
        let subject_key_id = |cert: &Certificate| {
            let tbs = cert.parsed.tbs_certificate();
            tbs.get_extension::<SubjectKeyIdentifier>()
                .unwrap()
                .unwrap()
                .1
                 .0
        };
        let authority = operator
            .parsed
            .tbs_certificate()
            .get_extension::<AuthorityKeyIdentifier>()
            .unwrap()
            .unwrap()
            .1;
        assert_eq!(authority.key_identifier, Some(subject_key_id(&root)));
        assert_eq!(subject_key_id(&root).as_bytes().len(), KEY_ID_BYTES);
        assert_ne!(subject_key_id(&root), subject_key_id(&operator));
    }

    #[test]
    fn bad_parameters_are_refused_with_stable_codes() {
        let key = KeyPair::from_seed(b"central bank root");
        let zero_serial = root_certificate(&key, 0, NOT_BEFORE_S, ROOT_NOT_AFTER_S);
        assert_eq!(zero_serial.unwrap_err().code(), "X509_SERIAL_INVALID");
        let reversed = root_certificate(&key, 1, ROOT_NOT_AFTER_S, NOT_BEFORE_S);
        assert_eq!(reversed.unwrap_err().code(), "X509_VALIDITY_INVALID");
        let beyond_9999 = root_certificate(&key, 1, NOT_BEFORE_S, u64::MAX);
        assert_eq!(beyond_9999.unwrap_err().code(), "X509_VALIDITY_INVALID");
        let root = root_certificate(&key, 1, NOT_BEFORE_S, ROOT_NOT_AFTER_S).unwrap();
        let operator_key = KeyPair::from_seed(b"op").public_key();
        for name in ["", "   ", &"x".repeat(COMMON_NAME_CHARS_MAX), "line\nbreak"] {
            let result = operator_certificate(
                &key,
                &root,
                JIANGNAN,
                name,
                &operator_key,
                2,
                NOT_BEFORE_S,
                OPERATOR_NOT_AFTER_S,
            );
            assert_eq!(result.err(), Some(X509Error::NameInvalid), "{name:?}");
        }
    }

    #[test]
    fn separators_in_an_operator_name_stay_inside_the_common_name() {
        let Hierarchy { root_key, root, .. } = hierarchy();
        let cert = operator_certificate(
            &root_key,
            &root,
            OperatorId(7),
            "Bank, O=Evil+CN=x",
            &root_key.public_key(),
            5,
            NOT_BEFORE_S,
            OPERATOR_NOT_AFTER_S,
        )
        .unwrap();
        let subject = cert.parsed.tbs_certificate().subject();
        assert_eq!(subject.iter().count(), 2);
        let common_name = subject.common_name().unwrap().unwrap();
        assert_eq!(common_name.value(), "OP07 Bank, O=Evil+CN=x");
    }

    #[test]
    fn malformed_or_foreign_der_is_refused() {
        let Hierarchy { root, .. } = hierarchy();
        assert_eq!(
            Certificate::from_der(b"").unwrap_err().code(),
            "X509_ENCODING"
        );
        let mut trailing = root.to_der();
        trailing.push(0);
        assert_eq!(
            Certificate::from_der(&trailing).unwrap_err().code(),
            "X509_ENCODING"
        );
        let mut truncated = root.to_der();
        truncated.pop();
        assert_eq!(
            Certificate::from_der(&truncated).unwrap_err().code(),
            "X509_ENCODING"
        );
        // The outer signatureAlgorithm is the last OID 1.2.156.10197.1.501.
        let mut other_algorithm = root.to_der();
        let oid_end = other_algorithm
            .windows(3)
            .rposition(|window| window == [0x01, 0x83, 0x75])
            .unwrap();
        other_algorithm[oid_end + 2] = 0x76;
        let result = Certificate::from_der(&other_algorithm);
        assert_eq!(result.unwrap_err().code(), "X509_ALGORITHM_UNSUPPORTED");
        assert!(Certificate::from_pem("-----BEGIN CERTIFICATE-----\nAA==\n").is_err());
    }

    #[test]
    fn signature_der_round_trips_short_integers() {
        let mut raw = [0u8; 64];
        raw[31] = 5;
        raw[32] = 0x80;
        let signature = Signature(raw);
        let der = signature_to_der(&signature).unwrap();
        assert_eq!(signature_from_der(&der), Ok(signature));
        let too_long = [0x30, 0x26, 0x02, 0x21, 0x01]
            .into_iter()
            .chain([0u8; 32])
            .chain([0x02, 0x01, 0x01])
            .collect::<Vec<u8>>();
        assert_eq!(
            signature_from_der(&too_long),
            Err(X509Error::SignatureInvalid)
        );
    }

    #[test]
    fn error_codes_are_stable() {
        let codes = [
            (
                X509Error::Encoding(der::ErrorKind::Failed.into()),
                "X509_ENCODING",
            ),
            (X509Error::SerialNotPositive, "X509_SERIAL_INVALID"),
            (
                X509Error::ValidityInvalid {
                    not_before_s: 1,
                    not_after_s: 0,
                },
                "X509_VALIDITY_INVALID",
            ),
            (X509Error::NameInvalid, "X509_NAME_INVALID"),
            (
                X509Error::AlgorithmUnsupported,
                "X509_ALGORITHM_UNSUPPORTED",
            ),
            (X509Error::PublicKeyInvalid, "X509_PUBLIC_KEY_INVALID"),
            (X509Error::KeyMismatch, "X509_KEY_MISMATCH"),
            (X509Error::IssuerMismatch, "X509_ISSUER_MISMATCH"),
            (X509Error::IssuerNotCa, "X509_ISSUER_NOT_CA"),
            (X509Error::SignatureInvalid, "X509_SIGNATURE_INVALID"),
        ];
        for (error, code) in codes {
            assert_eq!(error.code(), code);
        }
    }

    // OpenSSL 3 is the reference reader: these tests run the real binary and
    // fail, rather than skip, when it is missing.

    fn openssl(args: &[&str], dir: &Path) -> Output {
        Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("the `openssl` binary (OpenSSL 3) must be on PATH for the X.509 tests; install the `openssl` package")
    }

    fn text(output: &Output) -> String {
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    }

    fn write_pems(files: &[(&str, &Certificate)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, cert) in files {
            std::fs::write(dir.path().join(name), cert.to_pem()).unwrap();
        }
        dir
    }

    #[test]
    fn openssl_reads_root_and_operator_certificates() {
        let Hierarchy { root, operator, .. } = hierarchy();
        let dir = write_pems(&[("root.pem", &root), ("operator.pem", &operator)]);
        let output = openssl(&["x509", "-in", "root.pem", "-noout", "-text"], dir.path());
        let shown = text(&output);
        assert!(output.status.success(), "{shown}");
        assert!(
            shown.contains("Signature Algorithm: SM2-with-SM3"),
            "{shown}"
        );
        assert!(shown.contains("ASN1 OID: SM2"), "{shown}");
        assert!(shown.contains("CN = ecny Central Bank Root"), "{shown}");
        assert!(shown.contains("CA:TRUE"), "{shown}");
        assert!(
            shown.contains("Digital Signature, Certificate Sign, CRL Sign"),
            "{shown}"
        );
        let output = openssl(
            &["x509", "-in", "operator.pem", "-noout", "-text"],
            dir.path(),
        );
        let shown = text(&output);
        assert!(output.status.success(), "{shown}");
        assert!(
            shown.contains("CN = OP01 Jiangnan Commercial Bank"),
            "{shown}"
        );
        assert!(shown.contains("CA:TRUE, pathlen:0"), "{shown}");
    }

    fn distid_option() -> String {
        format!("distid:{DEFAULT_DISTID}")
    }

    #[test]
    fn openssl_verifies_root_and_operator_chain() {
        let Hierarchy { root, operator, .. } = hierarchy();
        let dir = write_pems(&[("root.pem", &root), ("operator.pem", &operator)]);
        let distid = distid_option();
        let commands: [&[&str]; 2] = [
            &["verify", "-CAfile", "root.pem", "root.pem"],
            &[
                "verify",
                "-vfyopt",
                &distid,
                "-CAfile",
                "root.pem",
                "operator.pem",
            ],
        ];
        for args in commands {
            let output = openssl(args, dir.path());
            let shown = text(&output);
            assert!(output.status.success(), "{args:?}: {shown}");
            assert_eq!(shown.trim(), format!("{}: OK", args[args.len() - 1]));
        }
    }

    #[test]
    fn openssl_checks_the_root_self_signature_with_the_default_id() {
        let Hierarchy { root, .. } = hierarchy();
        let dir = write_pems(&[("root.pem", &root)]);
        let signed = SignedCertificate::from_der(&root.der).unwrap();
        std::fs::write(
            dir.path().join("root.tbs"),
            signed.tbs_certificate.to_der().unwrap(),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("root.sig"),
            signed.signature.as_bytes().unwrap(),
        )
        .unwrap();
        let distid = distid_option();
        let commands: [(&[&str], &str); 3] = [
            (
                &[
                    "x509", "-in", "root.pem", "-noout", "-pubkey", "-out", "root.pub",
                ],
                "",
            ),
            (
                &["pkey", "-pubin", "-in", "root.pub", "-noout", "-text"],
                "ASN1 OID: SM2",
            ),
            (
                &[
                    "dgst",
                    "-sm3",
                    "-verify",
                    "root.pub",
                    "-sigopt",
                    &distid,
                    "-signature",
                    "root.sig",
                    "root.tbs",
                ],
                "Verified OK",
            ),
        ];
        for (args, expected) in commands {
            let output = openssl(args, dir.path());
            let shown = text(&output);
            assert!(
                output.status.success() && shown.contains(expected),
                "{args:?}: {shown}"
            );
        }
    }

    #[test]
    fn we_verify_a_certificate_openssl_signed_with_the_default_id() {
        let dir = tempfile::tempdir().unwrap();
        let distid = distid_option();
        let args = [
            "req",
            "-x509",
            "-newkey",
            "sm2",
            "-sm3",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=OpenSSL SM2 CA",
            "-sigopt",
            &distid,
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ];
        let output = openssl(&args, dir.path());
        assert!(output.status.success(), "{}", text(&output));
        let pem = std::fs::read_to_string(dir.path().join("ca.pem")).unwrap();
        let theirs = Certificate::from_pem(&pem).unwrap();
        assert_eq!(theirs.subject(), "CN=OpenSSL SM2 CA");
        assert_eq!(verify_issued_by(&theirs, &theirs), Ok(()));
    }

    #[test]
    fn openssl_rejects_wrong_signer_and_tampered_certificates() {
        let hierarchy = hierarchy();
        let forged = forged_operator(&hierarchy);
        let changed = tampered(&hierarchy.operator, b"Jiangnan", b"Jiangnam");
        let dir = write_pems(&[
            ("root.pem", &hierarchy.root),
            ("forged.pem", &forged),
            ("tampered.pem", &changed),
        ]);
        let distid = distid_option();
        for leaf in ["forged.pem", "tampered.pem"] {
            let args = ["verify", "-vfyopt", &distid, "-CAfile", "root.pem", leaf];
            let output = openssl(&args, dir.path());
            let shown = text(&output);
            assert!(!output.status.success(), "{shown}");
            assert!(shown.contains("certificate signature failure"), "{shown}");
        }
    }
}
