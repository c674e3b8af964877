//! A holder's personal data at rest: phone numbers, names and ID numbers reach the log, the
//! snapshots and the state machine only sealed under a key their operator alone holds. The
//! operator's front office sees them in the clear; `Submission::new` seals every one before the
//! batch is encoded, so no clear identity is ever written.
//!
//! # The sealing key
//!
//! Derived from the operator's SM2 secret key, so the operator's key file is the one secret to
//! guard and nothing new is stored (replacing that key means re-sealing the directory):
//!
//! | key | bytes | derivation |
//! |---|---|---|
//! | cipher key `Ke` | 16 | the first 16 bytes of HMAC-SM3(SM2 secret key, `ECNY-IDENTITY-v1/cipher`) |
//! | MAC key `Km` | 32 | HMAC-SM3(SM2 secret key, `ECNY-IDENTITY-v1/mac`) |
//!
//! # A sealed field (SM4-CTR with a synthetic IV, authenticated by HMAC-SM3)
//!
//! | bytes | field |
//! |---|---|
//! | 16 | tag: the first 16 bytes of HMAC-SM3(`Km`, field kind (1 phone, 2 name, 3 ID number) ‖ plaintext) |
//! | n | ciphertext: the plaintext XOR SM4-CTR(`Ke`) keystream, the counter block starting at the tag (a big-endian u128, +1 per 16-byte block) |
//!
//! A phone is its 8-byte big-endian number; a name or ID number its UTF-8 bytes. In a command
//! a sealed text is the tag, a u16 length and the ciphertext; a sealed phone the tag and its 8
//! bytes.
//!
//! Opening decrypts with the tag as the counter, recomputes the tag over the plaintext and
//! compares it in constant time: a changed bit anywhere is refused, never read as another name.
//! The construction is deterministic, as a synthetic IV is: the same phone or ID number seals to
//! the same bytes at one operator. That is what lets the state machine refuse a phone twice and
//! count one identity's wallets by its tag, a keyed digest, without seeing the number; it reveals
//! only that two sealed fields are equal, at one operator.

use std::fmt;

use sm4::cipher::{BlockCipherEncrypt, KeyInit};

use crate::certs::KeyPair;
use crate::channels::payment_code::hmac_sm3;
use crate::codec::{DecodeError, Reader, Writer};

/// Bytes of a seal's tag: its synthetic IV, its MAC, and the keyed digest the state machine
/// indexes by.
pub const SEAL_TAG_BYTES: usize = 16;
const SM4_KEY_BYTES: usize = 16;
const SM4_BLOCK_BYTES: usize = 16;
const CIPHER_KEY_DOMAIN: &[u8] = b"ECNY-IDENTITY-v1/cipher";
const MAC_KEY_DOMAIN: &[u8] = b"ECNY-IDENTITY-v1/mac";

/// A tag: the keyed digest of one field's plaintext.
pub type SealTag = [u8; SEAL_TAG_BYTES];

/// Which personal field a seal holds; part of what the tag covers, so a sealed name cannot be
/// passed off as an ID number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Field {
    Phone = 1,
    Name = 2,
    IdNumber = 3,
}

/// A sealed name or ID number.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SealedText {
    pub tag: SealTag,
    pub ciphertext: Vec<u8>,
}

/// A sealed phone number: fixed size, so the operator's phone index stays small.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SealedPhone {
    pub tag: SealTag,
    pub ciphertext: [u8; 8],
}

impl fmt::Debug for SealedText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedText({}…)", hex(&self.tag[..4]))
    }
}

impl fmt::Debug for SealedPhone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedPhone({}…)", hex(&self.tag[..4]))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A phone number as a command carries it: in the clear in the front office, sealed in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phone {
    Clear(u64),
    Sealed(SealedPhone),
}

/// A name or ID number as a command carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PersonalText {
    Clear(String),
    Sealed(SealedText),
}

impl From<u64> for Phone {
    fn from(phone: u64) -> Phone {
        Phone::Clear(phone)
    }
}

impl From<&str> for PersonalText {
    fn from(text: &str) -> PersonalText {
        PersonalText::Clear(text.to_string())
    }
}

impl From<String> for PersonalText {
    fn from(text: String) -> PersonalText {
        PersonalText::Clear(text)
    }
}

impl PersonalText {
    /// The text, while still in the clear.
    pub fn clear(&self) -> Option<&str> {
        match self {
            PersonalText::Clear(text) => Some(text),
            PersonalText::Sealed(_) => None,
        }
    }
}

/// A seal that does not open: another operator's, or damaged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a sealed identity field does not open under this operator's key")]
pub struct SealBroken;

/// One operator's sealing key.
#[derive(Clone)]
pub struct IdentityKey {
    cipher: sm4::Sm4,
    mac_key: [u8; 32],
}

impl fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdentityKey(…)")
    }
}

impl IdentityKey {
    /// The sealing key of the operator whose SM2 key this is.
    pub fn of_operator(key: &KeyPair) -> IdentityKey {
        let secret = key.secret_bytes();
        let cipher_key = hmac_sm3(&secret, &[CIPHER_KEY_DOMAIN]);
        let cipher_key: [u8; SM4_KEY_BYTES] =
            cipher_key[..SM4_KEY_BYTES].try_into().expect("16 bytes");
        IdentityKey {
            cipher: sm4::Sm4::new(&cipher_key.into()),
            mac_key: hmac_sm3(&secret, &[MAC_KEY_DOMAIN]),
        }
    }

    /// The tag of `plaintext` as `field`: a keyed digest only this operator can compute.
    pub fn tag(&self, field: Field, plaintext: &[u8]) -> SealTag {
        let mac = hmac_sm3(&self.mac_key, &[&[field as u8], plaintext]);
        mac[..SEAL_TAG_BYTES].try_into().expect("16 bytes")
    }

    fn apply_keystream(&self, tag: &SealTag, bytes: &mut [u8]) {
        let start = u128::from_be_bytes(*tag);
        for (index, chunk) in bytes.chunks_mut(SM4_BLOCK_BYTES).enumerate() {
            let mut block = start.wrapping_add(index as u128).to_be_bytes().into();
            self.cipher.encrypt_block(&mut block);
            for (byte, key) in chunk.iter_mut().zip(block.iter()) {
                *byte ^= key;
            }
        }
    }

    fn seal_bytes(&self, field: Field, plaintext: &[u8]) -> (SealTag, Vec<u8>) {
        let tag = self.tag(field, plaintext);
        let mut ciphertext = plaintext.to_vec();
        self.apply_keystream(&tag, &mut ciphertext);
        (tag, ciphertext)
    }

    fn open_bytes(
        &self,
        field: Field,
        tag: &SealTag,
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, SealBroken> {
        let mut plaintext = ciphertext.to_vec();
        self.apply_keystream(tag, &mut plaintext);
        let expected = self.tag(field, &plaintext);
        let difference = expected
            .iter()
            .zip(tag)
            .fold(0u8, |diff, (a, b)| diff | (a ^ b));
        if difference == 0 {
            Ok(plaintext)
        } else {
            Err(SealBroken)
        }
    }

    pub fn seal_phone(&self, phone: u64) -> SealedPhone {
        let (tag, ciphertext) = self.seal_bytes(Field::Phone, &phone.to_be_bytes());
        SealedPhone {
            tag,
            ciphertext: ciphertext.try_into().expect("8 bytes in, 8 out"),
        }
    }

    pub fn open_phone(&self, sealed: &SealedPhone) -> Result<u64, SealBroken> {
        let plain = self.open_bytes(Field::Phone, &sealed.tag, &sealed.ciphertext)?;
        Ok(u64::from_be_bytes(
            plain.try_into().map_err(|_| SealBroken)?,
        ))
    }

    /// The tag a phone number seals under: how the operator finds a wallet by phone.
    pub fn phone_tag(&self, phone: u64) -> SealTag {
        self.tag(Field::Phone, &phone.to_be_bytes())
    }

    pub fn seal_text(&self, field: Field, text: &str) -> SealedText {
        let (tag, ciphertext) = self.seal_bytes(field, text.as_bytes());
        SealedText { tag, ciphertext }
    }

    pub fn open_text(&self, field: Field, sealed: &SealedText) -> Result<String, SealBroken> {
        let plain = self.open_bytes(field, &sealed.tag, &sealed.ciphertext)?;
        String::from_utf8(plain).map_err(|_| SealBroken)
    }

    /// `phone` sealed, if it is still in the clear.
    pub fn seal_phone_field(&self, phone: &Phone) -> Phone {
        match phone {
            Phone::Clear(number) => Phone::Sealed(self.seal_phone(*number)),
            sealed => *sealed,
        }
    }

    /// `text` sealed as `field`, if it is still in the clear.
    pub fn seal_text_field(&self, field: Field, text: &PersonalText) -> PersonalText {
        match text {
            PersonalText::Clear(clear) => PersonalText::Sealed(self.seal_text(field, clear)),
            sealed => sealed.clone(),
        }
    }
}

/// Kind byte of a personal field in a command's encoding.
const CLEAR: u8 = 0;
const SEALED: u8 = 1;

pub fn encode_phone(phone: &Phone, out: &mut Writer) {
    match phone {
        Phone::Clear(number) => out.u8(CLEAR).u64(*number),
        Phone::Sealed(sealed) => out.u8(SEALED).raw(&sealed.tag).raw(&sealed.ciphertext),
    };
}

pub fn decode_phone(input: &mut Reader<'_>) -> Result<Phone, DecodeError> {
    let start = input.offset();
    Ok(match input.u8("phone kind")? {
        CLEAR => Phone::Clear(input.u64("phone")?),
        SEALED => Phone::Sealed(SealedPhone {
            tag: input.array("phone tag")?,
            ciphertext: input.array("sealed phone")?,
        }),
        _ => {
            return Err(DecodeError {
                what: "phone kind",
                offset: start,
            })
        }
    })
}

pub fn encode_text(text: &PersonalText, out: &mut Writer) {
    match text {
        PersonalText::Clear(clear) => out.u8(CLEAR).str(clear),
        PersonalText::Sealed(sealed) => encode_sealed_text(sealed, out.u8(SEALED)),
    };
}

pub fn encode_sealed_text<'w>(sealed: &SealedText, out: &'w mut Writer) -> &'w mut Writer {
    out.raw(&sealed.tag)
        .u16(sealed.ciphertext.len() as u16)
        .raw(&sealed.ciphertext)
}

pub fn decode_sealed_text(input: &mut Reader<'_>) -> Result<SealedText, DecodeError> {
    let tag = input.array("seal tag")?;
    let length = input.u16("sealed length")? as usize;
    Ok(SealedText {
        tag,
        ciphertext: input.take(length, "sealed text")?.to_vec(),
    })
}

pub fn decode_text(input: &mut Reader<'_>) -> Result<PersonalText, DecodeError> {
    let start = input.offset();
    Ok(match input.u8("personal text kind")? {
        CLEAR => PersonalText::Clear(input.string("personal text")?),
        SEALED => PersonalText::Sealed(decode_sealed_text(input)?),
        _ => {
            return Err(DecodeError {
                what: "personal text kind",
                offset: start,
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: &str) -> IdentityKey {
        IdentityKey::of_operator(&KeyPair::from_seed(seed.as_bytes()))
    }

    #[test]
    fn a_sealed_field_opens_under_its_operators_key_alone() {
        let jiangnan = key("OP01");
        let name = jiangnan.seal_text(Field::Name, "张晓明");
        assert!(!name.ciphertext.windows(3).any(|w| "张".as_bytes() == w));
        assert_eq!(jiangnan.open_text(Field::Name, &name).unwrap(), "张晓明");
        assert_eq!(key("OP02").open_text(Field::Name, &name), Err(SealBroken));
        // The same name seals the same way; passed off as an ID number, it does not open.
        assert_eq!(jiangnan.seal_text(Field::Name, "张晓明"), name);
        assert_eq!(jiangnan.open_text(Field::IdNumber, &name), Err(SealBroken));
        let phone = jiangnan.seal_phone(13_800_138_000);
        assert_eq!(phone.tag, jiangnan.phone_tag(13_800_138_000));
        assert_eq!(jiangnan.open_phone(&phone).unwrap(), 13_800_138_000);
    }

    #[test]
    fn every_flipped_bit_is_refused() {
        let jiangnan = key("OP01");
        let id = jiangnan.seal_text(Field::IdNumber, "11010519491231002X");
        for byte in 0..SEAL_TAG_BYTES + id.ciphertext.len() {
            for bit in 0..8 {
                let mut damaged = id.clone();
                if byte < SEAL_TAG_BYTES {
                    damaged.tag[byte] ^= 1 << bit;
                } else {
                    damaged.ciphertext[byte - SEAL_TAG_BYTES] ^= 1 << bit;
                }
                assert_eq!(
                    jiangnan.open_text(Field::IdNumber, &damaged),
                    Err(SealBroken)
                );
            }
        }
    }

    #[test]
    fn sm4_is_the_standards_and_the_keystream_spans_blocks() {
        // GB/T 32907-2016, appendix A: key = plaintext = 0123456789abcdeffedcba9876543210.
        let bytes: [u8; 16] = [
            0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54,
            0x32, 0x10,
        ];
        let cipher = sm4::Sm4::new(&bytes.into());
        let mut block = bytes.into();
        cipher.encrypt_block(&mut block);
        assert_eq!(hex(&block), "681edf34d206965e86b3e94f536e4246");
        let jiangnan = key("OP01");
        let long = "王".repeat(40);
        let sealed = jiangnan.seal_text(Field::Name, &long);
        assert_eq!(sealed.ciphertext.len(), long.len());
        assert_eq!(jiangnan.open_text(Field::Name, &sealed).unwrap(), long);
    }

    #[test]
    fn fields_round_trip_through_their_encoding() {
        let jiangnan = key("OP01");
        for phone in [
            Phone::Clear(13_800_138_000),
            Phone::Sealed(jiangnan.seal_phone(1)),
        ] {
            let mut out = Writer::new();
            encode_phone(&phone, &mut out);
            assert_eq!(decode_phone(&mut Reader::new(&out.bytes)).unwrap(), phone);
        }
        for text in [
            PersonalText::Clear("Wang Wu".into()),
            PersonalText::Sealed(jiangnan.seal_text(Field::Name, "Wang Wu")),
        ] {
            let mut out = Writer::new();
            encode_text(&text, &mut out);
            assert_eq!(decode_text(&mut Reader::new(&out.bytes)).unwrap(), text);
        }
    }
}
