//! The certification center's cryptography: SM2 signatures (GM/T 0003) over
//! SM3 digests (GM/T 0004), with the GM/T 0009 default user id for every key.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use sm2::dsa::signature::{RandomizedSigner, Signer, Verifier as _};
use sm2::elliptic_curve::common::getrandom::SysRng;
use sm2::elliptic_curve::sec1::ToSec1Point;
use sm2::elliptic_curve::Generate;
use sm3::{Digest, Sm3};

pub mod device;
pub mod x509;

/// The GM/T 0009 default user id, used by Chinese CAs, GmSSL and Tongsuo. OpenSSL 3 defaults to
/// an empty id and needs `-vfyopt distid:1234567812345678` (or `-sigopt`) to check our signatures.
pub const DEFAULT_DISTID: &str = "1234567812345678";

const PUBLIC_KEY_LEN: usize = 33;
const SIGNATURE_LEN: usize = 64;
const SECRET_LEN: usize = 32;

/// Failures of key parsing and signature checks, each with a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("signature does not verify")]
    BadSignature,
    #[error("public key is not a valid SM2 curve point")]
    BadPublicKey,
    #[error("secret key is not a valid SM2 private scalar")]
    BadSecretKey,
    #[error("malformed hex string")]
    BadHex,
}

impl CertError {
    /// Machine-readable code; stable across releases, unlike the message.
    pub fn code(&self) -> &'static str {
        match self {
            CertError::BadSignature => "SIGNATURE_INVALID",
            CertError::BadPublicKey => "PUBLIC_KEY_INVALID",
            CertError::BadSecretKey => "SECRET_KEY_INVALID",
            CertError::BadHex => "MALFORMED_HEX",
        }
    }
}

/// SM3 digest of one byte string.
pub fn sm3(bytes: &[u8]) -> [u8; 32] {
    sm3_parts(&[bytes])
}

/// SM3 digest of the concatenation of `parts`, without building it in memory.
pub fn sm3_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sm3::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// SM2 public key in SEC1 compressed form (33 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; PUBLIC_KEY_LEN]);

impl PublicKey {
    /// Parses a SEC1 point (compressed or uncompressed), rejecting anything
    /// that is not on the curve, and stores it compressed.
    pub fn from_sec1(bytes: &[u8]) -> Result<PublicKey, CertError> {
        // Only the two standard SEC1 forms: other tags would give a second
        // spelling of the same key.
        let standard = matches!(
            (bytes.len(), bytes.first()),
            (33, Some(0x02 | 0x03)) | (65, Some(0x04))
        );
        if !standard {
            return Err(CertError::BadPublicKey);
        }
        let point = sm2::PublicKey::from_sec1_bytes(bytes).map_err(|_| CertError::BadPublicKey)?;
        Ok(compress(&point))
    }

    /// Parses 66 hex digits of a compressed point and checks it is on the curve.
    pub fn from_hex(text: &str) -> Result<PublicKey, CertError> {
        let mut bytes = [0u8; PUBLIC_KEY_LEN];
        decode_hex(text, &mut bytes)?;
        PublicKey::from_sec1(&bytes)
    }

    pub fn to_hex(&self) -> String {
        encode_hex(&self.0)
    }

    /// One-off check; parse a [`Verifier`] instead when checking many signatures.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), CertError> {
        Verifier::new(self)?.verify(message, signature)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

/// SM2 signature as r || s, each 32 bytes big-endian.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; SIGNATURE_LEN]);

impl Signature {
    /// Parses 128 hex digits; range checks on r and s happen at verification.
    pub fn from_hex(text: &str) -> Result<Signature, CertError> {
        let mut bytes = [0u8; SIGNATURE_LEN];
        decode_hex(text, &mut bytes)?;
        Ok(Signature(bytes))
    }

    pub fn to_hex(&self) -> String {
        encode_hex(&self.0)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", self.to_hex())
    }
}

/// An SM2 signing key bound to [`DEFAULT_DISTID`].
#[derive(Clone)]
pub struct KeyPair {
    signing_key: sm2::dsa::SigningKey,
}

impl KeyPair {
    /// Fresh key from the operating system's random source.
    pub fn generate() -> KeyPair {
        loop {
            let secret = sm2::SecretKey::generate();
            if let Ok(key_pair) = KeyPair::from_secret_bytes(&secret.to_bytes()) {
                return key_pair;
            }
        }
    }

    /// Deterministic key for tests, demos and benchmarks: the secret is
    /// sm3(seed || counter) for the first counter giving a valid scalar.
    pub fn from_seed(seed: &[u8]) -> KeyPair {
        (0u32..)
            .find_map(|counter| {
                let candidate = sm3_parts(&[seed, &counter.to_be_bytes()]);
                KeyPair::from_secret_bytes(&candidate).ok()
            })
            .expect("a valid scalar appears within the first few counters")
    }

    /// Restores a key saved with [`KeyPair::secret_bytes`].
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<KeyPair, CertError> {
        let signing_key = sm2::dsa::SigningKey::from_slice(DEFAULT_DISTID, bytes)
            .map_err(|_| CertError::BadSecretKey)?;
        // SM2 signing divides by (1 + d), so d = n - 1 can never sign.
        let one_plus_secret = *signing_key.as_nonzero_scalar().as_ref() + sm2::Scalar::ONE;
        if bool::from(one_plus_secret.is_zero()) {
            return Err(CertError::BadSecretKey);
        }
        Ok(KeyPair { signing_key })
    }

    /// The 32-byte big-endian secret scalar; whoever holds it can sign.
    pub fn secret_bytes(&self) -> [u8; SECRET_LEN] {
        self.signing_key.to_bytes().into()
    }

    /// The secret scalar as 64 hex digits, for a key file; whoever holds it can sign.
    pub fn secret_hex(&self) -> String {
        encode_hex(&self.secret_bytes())
    }

    /// Restores a key saved with [`KeyPair::secret_hex`].
    pub fn from_secret_hex(text: &str) -> Result<KeyPair, CertError> {
        let mut bytes = [0u8; SECRET_LEN];
        decode_hex(text.trim(), &mut bytes)?;
        KeyPair::from_secret_bytes(&bytes)
    }

    pub fn public_key(&self) -> PublicKey {
        compress(&sm2::PublicKey::from(self.signing_key.verifying_key()))
    }

    /// Deterministic (RFC 6979 style) SM2 signature over `message`.
    pub fn sign(&self, message: &[u8]) -> Signature {
        let signature = self
            .signing_key
            .try_sign(message)
            .unwrap_or_else(|_| self.sign_with_fresh_nonce(message));
        Signature(signature.to_bytes().into())
    }

    /// The derived nonce is rejected with probability about 2^-255; a random
    /// one then takes over.
    fn sign_with_fresh_nonce(&self, message: &[u8]) -> sm2::dsa::Signature {
        (0..8)
            .find_map(|_| {
                self.signing_key
                    .try_sign_with_rng(&mut SysRng, message)
                    .ok()
            })
            .expect("operating system random source is unavailable")
    }
}

impl fmt::Debug for KeyPair {
    // The secret never appears in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

/// A public key parsed once (point decompressed, user-id hash ZA computed),
/// ready to check many signatures.
#[derive(Clone)]
pub struct Verifier {
    public_key: PublicKey,
    verifying_key: sm2::dsa::VerifyingKey,
}

impl Verifier {
    pub fn new(public_key: &PublicKey) -> Result<Verifier, CertError> {
        let verifying_key = sm2::dsa::VerifyingKey::from_sec1_bytes(DEFAULT_DISTID, &public_key.0)
            .map_err(|_| CertError::BadPublicKey)?;
        Ok(Verifier {
            public_key: *public_key,
            verifying_key,
        })
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), CertError> {
        let parsed =
            sm2::dsa::Signature::from_slice(&signature.0).map_err(|_| CertError::BadSignature)?;
        self.verifying_key
            .verify(message, &parsed)
            .map_err(|_| CertError::BadSignature)
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Verifier").field(&self.public_key).finish()
    }
}

/// One signature to check in a batch.
#[derive(Debug, Clone, Copy)]
pub struct SignedItem<'a> {
    pub key: &'a PublicKey,
    pub message: &'a [u8],
    pub signature: &'a Signature,
}

/// Verifies every item, spread over `threads` threads (0 = all available
/// cores); the result at index i belongs to `items[i]`.
pub fn verify_all_parallel(items: &[SignedItem<'_>], threads: usize) -> Vec<Result<(), CertError>> {
    let mut results = vec![Ok(()); items.len()];
    if items.is_empty() {
        return results;
    }
    // Items from one signer next to each other share one parsed key (a point decompression).
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| items[i].key.0);
    let next_block = AtomicUsize::new(0);
    let workers = thread_count(threads).min(items.len().div_ceil(VERIFY_BLOCK_ITEMS));
    let verdicts: Vec<Vec<(usize, Result<(), CertError>)>> = thread::scope(|scope| {
        let work = || verify_blocks(items, &order, &next_block);
        let helpers: Vec<_> = (1..workers).map(|_| scope.spawn(work)).collect();
        // The calling thread works too instead of idling.
        let mut all = vec![work()];
        all.extend(
            helpers
                .into_iter()
                .map(|h| h.join().expect("verifier thread")),
        );
        all
    });
    for (index, verdict) in verdicts.into_iter().flatten() {
        results[index] = verdict;
    }
    results
}

fn thread_count(requested: usize) -> usize {
    if requested > 0 {
        return requested;
    }
    thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// Items a verifier thread takes at a time: small enough to balance two uneven cores.
const VERIFY_BLOCK_ITEMS: usize = 32;

/// Takes blocks of the key-sorted order until none is left.
fn verify_blocks(
    items: &[SignedItem<'_>],
    order: &[usize],
    next_block: &AtomicUsize,
) -> Vec<(usize, Result<(), CertError>)> {
    let mut verdicts = Vec::new();
    let mut cached: Option<Verifier> = None;
    loop {
        let start = next_block.fetch_add(VERIFY_BLOCK_ITEMS, Ordering::Relaxed);
        if start >= order.len() {
            return verdicts;
        }
        for &index in &order[start..(start + VERIFY_BLOCK_ITEMS).min(order.len())] {
            let item = &items[index];
            if cached.as_ref().map(Verifier::public_key) != Some(item.key) {
                cached = Verifier::new(item.key).ok();
            }
            let verdict = match &cached {
                Some(verifier) => verifier.verify(item.message, item.signature),
                None => Err(CertError::BadPublicKey),
            };
            verdicts.push((index, verdict));
        }
    }
}

fn compress(point: &sm2::PublicKey) -> PublicKey {
    let mut bytes = [0u8; PUBLIC_KEY_LEN];
    bytes.copy_from_slice(point.to_sec1_point(true).as_bytes());
    PublicKey(bytes)
}

/// Lower-case hex, two digits per byte.
pub fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// Fills `out` exactly; any other length or a non-hex digit is an error.
pub fn decode_hex(text: &str, out: &mut [u8]) -> Result<(), CertError> {
    let digits = text.as_bytes();
    if digits.len() != out.len() * 2 {
        return Err(CertError::BadHex);
    }
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
    }
    Ok(())
}

fn hex_value(digit: u8) -> Result<u8, CertError> {
    match digit {
        b'0'..=b'9' => Ok(digit - b'0'),
        b'a'..=b'f' => Ok(digit - b'a' + 10),
        b'A'..=b'F' => Ok(digit - b'A' + 10),
        _ => Err(CertError::BadHex),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn uncompressed(key: &PublicKey) -> [u8; 65] {
        let point = sm2::PublicKey::from_sec1_bytes(&key.0).unwrap();
        let mut bytes = [0u8; 65];
        bytes.copy_from_slice(point.to_sec1_point(false).as_bytes());
        bytes
    }

    #[test]
    fn sign_then_verify_round_trips() {
        let key_pair = KeyPair::from_seed(b"issuer");
        let signature = key_pair.sign(b"mint 100 e-CNY");
        assert_eq!(
            key_pair.public_key().verify(b"mint 100 e-CNY", &signature),
            Ok(())
        );
    }

    #[test]
    fn generated_keys_sign_and_differ() {
        let first = KeyPair::generate();
        let second = KeyPair::generate();
        assert_ne!(first.public_key(), second.public_key());
        let signature = first.sign(b"payload");
        assert_eq!(first.public_key().verify(b"payload", &signature), Ok(()));
    }

    #[test]
    fn changed_message_fails() {
        let key_pair = KeyPair::from_seed(b"issuer");
        let signature = key_pair.sign(b"pay 10");
        let result = key_pair.public_key().verify(b"pay 11", &signature);
        assert_eq!(result, Err(CertError::BadSignature));
    }

    #[test]
    fn changed_signature_byte_fails() {
        let key_pair = KeyPair::from_seed(b"issuer");
        let verifier = Verifier::new(&key_pair.public_key()).unwrap();
        let signature = key_pair.sign(b"pay 10");
        for index in [0, 31, 32, 63] {
            let mut tampered = signature;
            tampered.0[index] ^= 0x01;
            assert_eq!(
                verifier.verify(b"pay 10", &tampered),
                Err(CertError::BadSignature)
            );
        }
    }

    #[test]
    fn out_of_range_signature_is_rejected_not_panicking() {
        let key = KeyPair::from_seed(b"issuer").public_key();
        for signature in [Signature([0u8; 64]), Signature([0xff; 64])] {
            assert_eq!(key.verify(b"m", &signature), Err(CertError::BadSignature));
        }
    }

    #[test]
    fn wrong_key_fails() {
        let signer = KeyPair::from_seed(b"alice");
        let other = KeyPair::from_seed(b"bob");
        let signature = signer.sign(b"transfer");
        let result = other.public_key().verify(b"transfer", &signature);
        assert_eq!(result, Err(CertError::BadSignature));
    }

    #[test]
    fn signing_is_deterministic() {
        let key_pair = KeyPair::from_seed(b"issuer");
        assert_eq!(key_pair.sign(b"same"), key_pair.sign(b"same"));
    }

    #[test]
    fn from_seed_is_deterministic_and_seed_dependent() {
        let first = KeyPair::from_seed(b"seed-1");
        assert_eq!(
            first.public_key(),
            KeyPair::from_seed(b"seed-1").public_key()
        );
        assert_eq!(
            first.secret_bytes(),
            KeyPair::from_seed(b"seed-1").secret_bytes()
        );
        assert_ne!(
            first.public_key(),
            KeyPair::from_seed(b"seed-2").public_key()
        );
    }

    #[test]
    fn secret_bytes_round_trip() {
        let original = KeyPair::from_seed(b"vault");
        let restored = KeyPair::from_secret_bytes(&original.secret_bytes()).unwrap();
        assert_eq!(restored.public_key(), original.public_key());
        let from_file = KeyPair::from_secret_hex(&format!("{}\n", original.secret_hex())).unwrap();
        assert_eq!(from_file.public_key(), original.public_key());
        let short = KeyPair::from_secret_hex(&original.secret_hex()[2..]).map(|k| k.public_key());
        assert_eq!(short, Err(CertError::BadHex));
    }

    #[test]
    fn invalid_secrets_are_rejected() {
        let order_minus_one =
            decode_fixed::<32>("fffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54122");
        let order =
            decode_fixed::<32>("fffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123");
        for secret in [[0u8; 32], order, order_minus_one] {
            let result = KeyPair::from_secret_bytes(&secret).map(|key| key.public_key());
            assert_eq!(result, Err(CertError::BadSecretKey));
        }
        let short = KeyPair::from_secret_bytes(&[1u8; 31]).map(|key| key.public_key());
        assert_eq!(short, Err(CertError::BadSecretKey));
    }

    #[test]
    fn compressed_key_round_trips() {
        let key = KeyPair::from_seed(b"operator").public_key();
        assert!(key.0[0] == 0x02 || key.0[0] == 0x03);
        assert_eq!(PublicKey::from_sec1(&key.0), Ok(key));
        assert_eq!(PublicKey::from_sec1(&uncompressed(&key)), Ok(key));
        assert_eq!(PublicKey::from_hex(&key.to_hex()), Ok(key));
    }

    #[test]
    fn invalid_points_are_rejected() {
        let key = KeyPair::from_seed(b"operator").public_key();
        let mut off_curve = uncompressed(&key);
        off_curve[64] ^= 0x01;
        assert_eq!(
            PublicKey::from_sec1(&off_curve),
            Err(CertError::BadPublicKey)
        );
        let mut bad_tag = key.0;
        bad_tag[0] = 0x05;
        assert_eq!(PublicKey::from_sec1(&bad_tag), Err(CertError::BadPublicKey));
        // x = p - 1 has no square root on SM2, so no point exists with it.
        let no_point = decode_fixed::<33>(
            "02fffffffeffffffffffffffffffffffffffffffff00000000fffffffffffffffe",
        );
        assert_eq!(
            PublicKey::from_sec1(&no_point),
            Err(CertError::BadPublicKey)
        );
        let mut x_beyond_field = [0xff; 33];
        x_beyond_field[0] = 0x03;
        assert_eq!(
            PublicKey::from_sec1(&x_beyond_field),
            Err(CertError::BadPublicKey)
        );
        assert_eq!(
            PublicKey::from_sec1(&[0u8; 1]),
            Err(CertError::BadPublicKey)
        );
        assert_eq!(PublicKey::from_sec1(&[]), Err(CertError::BadPublicKey));
        assert_eq!(
            Verifier::new(&PublicKey([0u8; 33])).err(),
            Some(CertError::BadPublicKey)
        );
    }

    #[test]
    fn hex_round_trips_and_rejects_garbage() {
        let signature = KeyPair::from_seed(b"k").sign(b"m");
        assert_eq!(Signature::from_hex(&signature.to_hex()), Ok(signature));
        assert_eq!(
            Signature::from_hex(&signature.to_hex().to_uppercase()),
            Ok(signature)
        );
        assert_eq!(Signature::from_hex("abc"), Err(CertError::BadHex));
        assert_eq!(
            Signature::from_hex(&"zz".repeat(64)),
            Err(CertError::BadHex)
        );
        assert_eq!(Signature::from_hex(&"é".repeat(64)), Err(CertError::BadHex));
        assert_eq!(PublicKey::from_hex(&"0".repeat(65)), Err(CertError::BadHex));
        assert_eq!(
            PublicKey::from_hex(&"02".repeat(34)),
            Err(CertError::BadHex)
        );
        assert_eq!(
            PublicKey::from_hex(&"00".repeat(33)),
            Err(CertError::BadPublicKey)
        );
    }

    #[test]
    fn debug_shows_hex_and_hides_secrets() {
        let key_pair = KeyPair::from_seed(b"k");
        let public_hex = key_pair.public_key().to_hex();
        assert_eq!(
            format!("{:?}", key_pair.public_key()),
            format!("PublicKey({public_hex})")
        );
        let secret_hex = encode_hex(&key_pair.secret_bytes());
        assert!(!format!("{key_pair:?}").contains(&secret_hex));
    }

    #[test]
    fn error_codes_are_stable() {
        assert_eq!(CertError::BadSignature.code(), "SIGNATURE_INVALID");
        assert_eq!(CertError::BadPublicKey.code(), "PUBLIC_KEY_INVALID");
        assert_eq!(CertError::BadSecretKey.code(), "SECRET_KEY_INVALID");
        assert_eq!(CertError::BadHex.code(), "MALFORMED_HEX");
    }

    #[test]
    fn sm3_matches_the_standard_vector() {
        // GM/T 0004-2012 appendix A, example 1.
        let expected = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0";
        assert_eq!(encode_hex(&sm3(b"abc")), expected);
        assert_eq!(sm3_parts(&[b"a", b"", b"bc"]), sm3(b"abc"));
    }

    struct Batch {
        keys: Vec<PublicKey>,
        messages: Vec<Vec<u8>>,
        signatures: Vec<Signature>,
    }

    /// Every third item has a flipped message byte, every fifth a key that is
    /// not on the curve, and items 7.. reuse a key to exercise the cache.
    fn mixed_batch(len: usize) -> Batch {
        let signers: Vec<KeyPair> = (0..4u8).map(|i| KeyPair::from_seed(&[i])).collect();
        let mut batch = Batch {
            keys: vec![],
            messages: vec![],
            signatures: vec![],
        };
        for index in 0..len {
            let signer = &signers[if index >= 7 { 0 } else { index % signers.len() }];
            let mut message = format!("payment #{index}").into_bytes();
            batch.signatures.push(signer.sign(&message));
            if index % 3 == 1 {
                message[0] ^= 0x20;
            }
            let key = if index % 5 == 4 {
                PublicKey([0x02; 33])
            } else {
                signer.public_key()
            };
            batch.keys.push(key);
            batch.messages.push(message);
        }
        batch
    }

    fn items(batch: &Batch) -> Vec<SignedItem<'_>> {
        (0..batch.keys.len())
            .map(|i| SignedItem {
                key: &batch.keys[i],
                message: &batch.messages[i],
                signature: &batch.signatures[i],
            })
            .collect()
    }

    #[test]
    fn parallel_verification_matches_sequential() {
        for len in [0, 1, 2, 11] {
            let batch = mixed_batch(len);
            let items = items(&batch);
            let sequential: Vec<_> = items
                .iter()
                .map(|item| item.key.verify(item.message, item.signature))
                .collect();
            for threads in [0, 1, 2, 3, 16] {
                assert_eq!(
                    verify_all_parallel(&items, threads),
                    sequential,
                    "len {len}, threads {threads}"
                );
            }
        }
    }

    #[test]
    fn mixed_batch_contains_every_outcome() {
        let batch = mixed_batch(11);
        let results = verify_all_parallel(&items(&batch), 2);
        assert!(results.contains(&Ok(())));
        assert!(results.contains(&Err(CertError::BadSignature)));
        assert!(results.contains(&Err(CertError::BadPublicKey)));
    }

    #[test]
    fn efficient_sm2_verifies_our_signatures() {
        let key_pair = KeyPair::from_seed(b"interop");
        let message = b"GM/T 0003 interoperability";
        let signature = key_pair.sign(message);

        let theirs = efficient_sm2::KeyPair::new(&key_pair.secret_bytes()).unwrap();
        let their_public = theirs.public_key();
        assert_eq!(
            their_public.bytes_less_safe(),
            uncompressed(&key_pair.public_key())
        );

        let their_signature =
            efficient_sm2::Signature::new(&signature.0[..32], &signature.0[32..]).unwrap();
        assert!(their_signature.verify(&their_public, message).is_ok());
        assert!(their_signature
            .verify(&their_public, b"other message")
            .is_err());
    }

    #[test]
    fn we_verify_efficient_sm2_signatures() {
        let key_pair = KeyPair::from_seed(b"interop");
        let message = b"GM/T 0003 interoperability";
        let theirs = efficient_sm2::KeyPair::new(&key_pair.secret_bytes()).unwrap();
        let their_signature = theirs.sign(message).unwrap();

        let signature = join_r_s(&their_signature.r(), &their_signature.s());
        assert_eq!(key_pair.public_key().verify(message, &signature), Ok(()));
    }

    #[test]
    fn gmcrypto_core_agrees_both_ways() {
        use gmcrypto_core::asn1::{decode_sig, encode_sig};
        use gmcrypto_core::sm2::{sign_with_id, verify_with_id, Sm2PrivateKey, DEFAULT_SIGNER_ID};
        assert_eq!(DEFAULT_SIGNER_ID.as_slice(), DEFAULT_DISTID.as_bytes());
        let key_pair = KeyPair::from_seed(b"interop");
        let message = b"GM/T 0003 interoperability";
        let theirs = Sm2PrivateKey::from_bytes_be(&key_pair.secret_bytes()).unwrap();
        let their_public = theirs.public_key();
        assert_eq!(
            their_public.to_sec1_uncompressed(),
            uncompressed(&key_pair.public_key())
        );

        let ours = key_pair.sign(message);
        let r: [u8; 32] = ours.0[..32].try_into().unwrap();
        let s: [u8; 32] = ours.0[32..].try_into().unwrap();
        let der = encode_sig(&r, &s);
        assert!(verify_with_id(
            &their_public,
            DEFAULT_SIGNER_ID,
            message,
            &der
        ));

        let their_der = sign_with_id(&theirs, DEFAULT_SIGNER_ID, message, &mut SysRng).unwrap();
        let (r, s) = decode_sig(&their_der).unwrap();
        let signature = join_r_s(&r, &s);
        assert_eq!(key_pair.public_key().verify(message, &signature), Ok(()));
    }

    fn join_r_s(r: &[u8; 32], s: &[u8; 32]) -> Signature {
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(r);
        bytes[32..].copy_from_slice(s);
        Signature(bytes)
    }

    fn decode_fixed<const N: usize>(text: &str) -> [u8; N] {
        let mut bytes = [0u8; N];
        decode_hex(text, &mut bytes).unwrap();
        bytes
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn random_messages_round_trip(message in proptest::collection::vec(any::<u8>(), 0..512)) {
            let key_pair = KeyPair::from_seed(b"proptest");
            let signature = key_pair.sign(&message);
            prop_assert_eq!(key_pair.public_key().verify(&message, &signature), Ok(()));
        }
    }
}
