//! Certificates and revocation lists as a secure element, the center or an operator receives
//! them: the compact device certificates and lists of `certs::device`, and the X.509 (DER and
//! PEM) certificates of `certs::x509`.
//!
//! * Compact certificates and revocation lists are canonical: what decodes encodes to the same
//!   bytes; a list's devices are strictly ascending and within the limit.
//! * A chain that verifies is one whose every rule holds: right subjects and issuers, `now`
//!   inside both validities, the device not revoked, its caps the certificate's.
//! * An X.509 certificate that parses keeps its exact DER, survives PEM, and is issued by a
//!   certificate only when the names chain.

#![no_main]

use std::sync::OnceLock;

use ecny::certs::device::{verify_chain, CompactCertificate, Issuer, RevocationList, Subject};
use ecny::certs::x509::{self, Certificate};
use ecny::certs::{KeyPair, PublicKey};
use ecny::ids::{DeviceId, OperatorId};
use ecny::offline::issuer::OperatorIssuer;
use ecny::offline::profiles::{Profile, WalletForm};
use ecny_fuzz::{Script, ScriptWriter};
use libfuzzer_sys::fuzz_target;

const NOW_S: u32 = 1_700_000_000;
const YEAR_S: u32 = 365 * 86_400;

struct World {
    root: PublicKey,
    root_x509: Certificate,
    operator_x509: Certificate,
    /// A chain that verifies at `NOW_S`, for the fuzzer to start from.
    operator_cert: CompactCertificate,
    device_cert: CompactCertificate,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let central_bank = KeyPair::from_seed(b"fuzz central bank");
        let operator_key = KeyPair::from_seed(b"fuzz operator 1");
        let validity = (NOW_S - YEAR_S, NOW_S + YEAR_S);
        let issuer = OperatorIssuer::certify(
            &central_bank,
            OperatorId(1),
            operator_key.clone(),
            1,
            validity,
        );
        let device_key = KeyPair::from_seed(b"fuzz device 1");
        let device_cert = issuer.certify_device(
            &Profile::new(WalletForm::PhoneEse),
            DeviceId(1),
            &device_key.public_key(),
            100,
            NOW_S,
        );
        let (from, to) = (u64::from(validity.0), u64::from(validity.1));
        let root_x509 = x509::root_certificate(&central_bank, 1, from, to).expect("a root");
        let operator_x509 = x509::operator_certificate(
            &central_bank,
            &root_x509,
            OperatorId(1),
            "Jiangnan Bank",
            &operator_key.public_key(),
            2,
            from,
            to,
        )
        .expect("an operator certificate");
        World {
            root: central_bank.public_key(),
            root_x509,
            operator_x509,
            operator_cert: *issuer.certificate(),
            device_cert,
        }
    })
}

/// A certificate for the chain: the world's own with one byte edited (mask 0: as issued), or
/// any bytes.
enum Part<'a> {
    Issued { at: u16, mask: u8 },
    Bytes(&'a [u8]),
}

impl<'a> Part<'a> {
    fn read(script: &mut Script<'a>) -> Option<Part<'a>> {
        Some(match script.u8()? % 2 {
            0 => Part::Issued {
                at: script.u16()?,
                mask: script.u8()?,
            },
            _ => Part::Bytes(script.bytes()?),
        })
    }
}

const MODE_COMPACT: u8 = 0;
const MODE_REVOCATION: u8 = 1;
const MODE_CHAIN: u8 = 2;
const MODE_DER: u8 = 3;
const MODE_PEM: u8 = 4;

// An input: a mode byte, then the certificate or list (modes 0, 1, 3, 4), or for a chain (2):
// the time's offset from issuance (i32), the operator's and the device's certificate (each a
// part: 0 and an edit, or 1 and bytes), and the revocation list.
fuzz_target!(init: ecny_fuzz::write_seeds_if_asked(seeds), |data: &[u8]| {
    let mut script = Script::new(data);
    let Some(mode) = script.u8() else {
        return;
    };
    let world = world();
    match mode % 5 {
        MODE_COMPACT => compact(script.rest()),
        MODE_REVOCATION => revocation(world, script.rest()),
        MODE_CHAIN => {
            let (Some(offset_s), Some(operator), Some(device)) = (
                script.i32(),
                Part::read(&mut script),
                Part::read(&mut script),
            ) else {
                return;
            };
            let operator = part(operator, &world.operator_cert);
            let device = part(device, &world.device_cert);
            let list = RevocationList::decode(script.rest()).unwrap_or_else(|_| RevocationList::empty());
            let now_s = NOW_S.saturating_add_signed(offset_s);
            if let (Some(operator), Some(device)) = (operator, device) {
                chain(world, &operator, &device, now_s, &list);
            }
        }
        MODE_DER => der(world, script.rest()),
        _ => {
            let Ok(text) = std::str::from_utf8(script.rest()) else {
                return;
            };
            if let Ok(certificate) = Certificate::from_pem(text) {
                der(world, &certificate.to_der());
            }
        }
    }
});

fn compact(bytes: &[u8]) {
    if let Ok(certificate) = CompactCertificate::decode(bytes) {
        assert_eq!(
            certificate.encode(),
            bytes,
            "a second spelling of a certificate"
        );
        assert_eq!(
            certificate.body.caps.is_some(),
            matches!(certificate.body.subject, Subject::Device(_))
        );
    }
}

fn revocation(world: &World, bytes: &[u8]) {
    let Ok(list) = RevocationList::decode(bytes) else {
        return;
    };
    assert_eq!(
        list.encode(),
        bytes,
        "a second spelling of a revocation list"
    );
    let blocked = list.blocked();
    assert!(blocked.windows(2).all(|pair| pair[0] < pair[1]));
    assert!(blocked.len() <= ecny::certs::device::REVOKED_DEVICES_MAX);
    for device in blocked {
        assert!(list.is_blocked(*device));
    }
    let _ = list.verify(&world.root);
}

fn part(part: Part<'_>, issued: &CompactCertificate) -> Option<CompactCertificate> {
    match part {
        Part::Issued { at, mask } => {
            let mut bytes = issued.encode();
            let at = usize::from(at) % bytes.len();
            bytes[at] ^= mask;
            CompactCertificate::decode(&bytes).ok()
        }
        Part::Bytes(bytes) => CompactCertificate::decode(bytes).ok(),
    }
}

fn chain(
    world: &World,
    operator: &CompactCertificate,
    device: &CompactCertificate,
    now_s: u32,
    list: &RevocationList,
) {
    let Ok(caps) = verify_chain(&world.root, operator, device, now_s, list) else {
        return;
    };
    let Subject::Operator(operator_id) = operator.body.subject else {
        panic!("a chain through a non-operator verified");
    };
    assert_eq!(operator.body.issuer, Issuer::CentralBank);
    assert_eq!(device.body.issuer, Issuer::Operator(operator_id));
    for body in [&operator.body, &device.body] {
        assert!((body.not_before_s..=body.not_after_s).contains(&now_s));
    }
    let device_id = device.device().expect("a device certificate");
    assert!(!list.is_blocked(device_id), "a revoked device verified");
    assert_eq!(Some(caps), device.body.caps);
}

fn der(world: &World, bytes: &[u8]) {
    let Ok(certificate) = Certificate::from_der(bytes) else {
        return;
    };
    assert_eq!(certificate.to_der(), bytes);
    let pem = certificate.to_pem();
    assert_eq!(Certificate::from_pem(&pem).as_ref(), Ok(&certificate));
    let (subject, issuer) = (certificate.subject(), certificate.issuer());
    let _ = (certificate.serial(), format!("{certificate:?}"));
    for candidate in [&world.root_x509, &world.operator_x509, &certificate] {
        if x509::verify_issued_by(&certificate, candidate).is_ok() {
            assert_eq!(
                issuer,
                candidate.subject(),
                "issued by a certificate it does not name"
            );
        }
        if x509::verify_issued_by(candidate, &certificate).is_ok() {
            assert_eq!(candidate.issuer(), subject);
        }
    }
}

/// The world's certificates and a list, in every mode.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let world = world();
    let central_bank = KeyPair::from_seed(b"fuzz central bank");
    let list = RevocationList::issue(3, NOW_S, [DeviceId(1), DeviceId(9)], &central_bank)
        .expect("two devices fit");
    let with = |mode: u8, bytes: &[u8]| {
        let mut writer = ScriptWriter::new();
        writer.u8(mode).raw(bytes);
        writer.take()
    };
    let chain = |offset_s: i32, list: &[u8]| {
        let mut writer = ScriptWriter::new();
        writer.u8(MODE_CHAIN).i32(offset_s);
        writer.u8(0).u16(0).u8(0).u8(0).u16(0).u8(0).raw(list);
        writer.take()
    };
    vec![
        ("device", with(MODE_COMPACT, &world.device_cert.encode())),
        (
            "operator",
            with(MODE_COMPACT, &world.operator_cert.encode()),
        ),
        ("revocation-list", with(MODE_REVOCATION, &list.encode())),
        ("chain", chain(0, &[])),
        ("chain-revoked", chain(60, &list.encode())),
        ("chain-expired", chain(2 * YEAR_S as i32, &[])),
        ("x509-root", with(MODE_DER, &world.root_x509.to_der())),
        (
            "x509-operator",
            with(MODE_DER, &world.operator_x509.to_der()),
        ),
        (
            "x509-operator-pem",
            with(MODE_PEM, world.operator_x509.to_pem().as_bytes()),
        ),
    ]
}
