//! NFC Data Exchange Format (NFC Forum NDEF 1.0) for the "tap zone" on a merchant's stand: the
//! same payment request as the merchant QR, read by touching the phone to the tag.
//!
//! The record is a well-known URI record (TNF 0x01, type `U`, identifier code 0x00) holding
//! `ecny:pay?qr=<percent-encoded EMVCo payload>`. Every NDEF reader understands URI records: a
//! phone hands `ecny:` links to the wallet app registered for the scheme, and a phone without it
//! shows a link rather than an opaque external-type blob. The EMVCo payload inside is the QR's,
//! CRC included, so one reader (`MerchantQr::parse`) checks both channels.
//!
//! Records are written short (SR) when the payload fits 255 bytes and long otherwise; the reader
//! takes both, with or without an ID (IL), and refuses chunked records, lying lengths, a message
//! without ME and bytes after it. A Type 4 Tag keeps the message in its NDEF file behind a 2-byte
//! big-endian length, NLEN.

use thiserror::Error;

use super::emvco::{MerchantQr, QrError};

/// Largest message read or written: a 512-character QR percent-encoded fits with room to spare.
pub const NDEF_MESSAGE_BYTES_MAX: usize = 8192;
/// Records per message; a tap-zone tag carries one, other writers may add an app record or two.
pub const NDEF_RECORDS_MAX: usize = 8;
/// A short record's payload length is one byte.
pub const NDEF_SHORT_PAYLOAD_BYTES_MAX: usize = 255;
/// Type and ID lengths are one byte.
pub const NDEF_TYPE_OR_ID_BYTES_MAX: usize = 255;
/// The scheme and path every tap-zone URI starts with.
pub const TAP_ZONE_URI_PREFIX: &str = "ecny:pay?qr=";
/// A Type 4 Tag's NDEF file starts with NLEN, the message length.
pub const TYPE4_NLEN_BYTES: usize = 2;

const FLAG_MB: u8 = 0x80;
const FLAG_ME: u8 = 0x40;
const FLAG_CF: u8 = 0x20;
const FLAG_SR: u8 = 0x10;
const FLAG_IL: u8 = 0x08;
const TNF_MASK: u8 = 0x07;
const URI_TYPE: &[u8] = b"U";
/// URI identifier code "no abbreviation": the URI follows in full.
const URI_CODE_NONE: u8 = 0x00;

/// Why an NDEF message was refused; `code()` is stable across releases.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NdefError {
    #[error("NDEF message is malformed at byte {offset}: {what}")]
    Malformed { offset: usize, what: String },
    #[error("NDEF message is not supported here: {0}")]
    Unsupported(String),
    #[error("NDEF message is {bytes} bytes; at most {NDEF_MESSAGE_BYTES_MAX}")]
    TooLong { bytes: usize },
    #[error("the tag's payment request is refused: {0}")]
    Request(#[from] QrError),
}

impl NdefError {
    /// Machine-readable code; a refused payment request keeps its QR code.
    pub fn code(&self) -> &'static str {
        match self {
            NdefError::Malformed { .. } => "NDEF_MALFORMED",
            NdefError::Unsupported(_) => "NDEF_UNSUPPORTED",
            NdefError::TooLong { .. } => "NDEF_TOO_LONG",
            NdefError::Request(inner) => inner.code(),
        }
    }
}

fn malformed(offset: usize, what: impl Into<String>) -> NdefError {
    NdefError::Malformed {
        offset,
        what: what.into(),
    }
}

/// Type Name Format: how a record's type is to be read. 0x06 (unchanged) only appears in chunks
/// and 0x07 is reserved, so neither is a value here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tnf {
    Empty = 0x00,
    WellKnown = 0x01,
    Media = 0x02,
    AbsoluteUri = 0x03,
    External = 0x04,
    Unknown = 0x05,
}

impl Tnf {
    fn from_bits(bits: u8, offset: usize) -> Result<Tnf, NdefError> {
        match bits {
            0x00 => Ok(Tnf::Empty),
            0x01 => Ok(Tnf::WellKnown),
            0x02 => Ok(Tnf::Media),
            0x03 => Ok(Tnf::AbsoluteUri),
            0x04 => Ok(Tnf::External),
            0x05 => Ok(Tnf::Unknown),
            0x06 => Err(malformed(
                offset,
                "TNF 0x06 (unchanged) outside a chunked record",
            )),
            _ => Err(malformed(offset, "TNF 0x07 is reserved")),
        }
    }
}

/// One NDEF record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NdefRecord {
    pub tnf: Tnf,
    pub record_type: Vec<u8>,
    pub id: Vec<u8>,
    pub payload: Vec<u8>,
}

impl NdefRecord {
    /// The tap-zone record for an EMVCo payload.
    pub fn payment_request(qr_payload: &str) -> NdefRecord {
        let mut payload = vec![URI_CODE_NONE];
        payload.extend_from_slice(TAP_ZONE_URI_PREFIX.as_bytes());
        payload.extend_from_slice(percent_encode(qr_payload).as_bytes());
        NdefRecord {
            tnf: Tnf::WellKnown,
            record_type: URI_TYPE.to_vec(),
            id: Vec::new(),
            payload,
        }
    }

    /// The EMVCo payload, if this is a tap-zone URI record.
    pub fn payment_request_text(&self) -> Option<Result<String, NdefError>> {
        if self.tnf != Tnf::WellKnown || self.record_type != URI_TYPE {
            return None;
        }
        let (&code, uri) = self.payload.split_first()?;
        let encoded = uri.strip_prefix(TAP_ZONE_URI_PREFIX.as_bytes())?;
        (code == URI_CODE_NONE).then(|| percent_decode(encoded))
    }

    fn check_shape(&self) -> Result<(), String> {
        if self.record_type.len() > NDEF_TYPE_OR_ID_BYTES_MAX
            || self.id.len() > NDEF_TYPE_OR_ID_BYTES_MAX
        {
            return Err("type and id are at most 255 bytes".to_string());
        }
        let empty = self.record_type.is_empty() && self.id.is_empty() && self.payload.is_empty();
        match self.tnf {
            Tnf::Empty if !empty => {
                Err("an empty record (TNF 0x00) has no type, id or payload".into())
            }
            Tnf::Unknown if !self.record_type.is_empty() => {
                Err("an unknown-type record (TNF 0x05) has no type".into())
            }
            Tnf::WellKnown | Tnf::Media | Tnf::AbsoluteUri | Tnf::External
                if self.record_type.is_empty() =>
            {
                Err(format!("a {:?} record needs a type", self.tnf))
            }
            _ => Ok(()),
        }
    }

    fn write(&self, out: &mut Vec<u8>, first: bool, last: bool) {
        let short = self.payload.len() <= NDEF_SHORT_PAYLOAD_BYTES_MAX;
        let mut header = self.tnf as u8;
        for (set, flag) in [
            (first, FLAG_MB),
            (last, FLAG_ME),
            (short, FLAG_SR),
            (!self.id.is_empty(), FLAG_IL),
        ] {
            if set {
                header |= flag;
            }
        }
        out.push(header);
        out.push(self.record_type.len() as u8);
        if short {
            out.push(self.payload.len() as u8);
        } else {
            out.extend_from_slice(&(self.payload.len() as u32).to_be_bytes());
        }
        if !self.id.is_empty() {
            out.push(self.id.len() as u8);
        }
        out.extend_from_slice(&self.record_type);
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&self.payload);
    }
}

/// Writes records as one message: MB on the first, ME on the last.
pub fn encode_message(records: &[NdefRecord]) -> Result<Vec<u8>, NdefError> {
    if records.is_empty() || records.len() > NDEF_RECORDS_MAX {
        let what = format!("{} records; 1 to {NDEF_RECORDS_MAX} allowed", records.len());
        return Err(NdefError::Unsupported(what));
    }
    let mut out = Vec::new();
    for (index, record) in records.iter().enumerate() {
        record
            .check_shape()
            .map_err(|what| malformed(out.len(), what))?;
        record.write(&mut out, index == 0, index + 1 == records.len());
        if out.len() > NDEF_MESSAGE_BYTES_MAX {
            return Err(NdefError::TooLong { bytes: out.len() });
        }
    }
    Ok(out)
}

/// Reads a whole message: every record complete, MB first, ME last, nothing after.
pub fn parse_message(bytes: &[u8]) -> Result<Vec<NdefRecord>, NdefError> {
    if bytes.len() > NDEF_MESSAGE_BYTES_MAX {
        return Err(NdefError::TooLong { bytes: bytes.len() });
    }
    if bytes.is_empty() {
        return Err(malformed(0, "empty message"));
    }
    let mut cursor = Cursor { bytes, pos: 0 };
    let mut records = Vec::new();
    loop {
        if records.len() == NDEF_RECORDS_MAX {
            let what = format!("more than {NDEF_RECORDS_MAX} records");
            return Err(NdefError::Unsupported(what));
        }
        let (record, last) = read_record(&mut cursor, records.is_empty())?;
        records.push(record);
        if last {
            break;
        }
        if cursor.left() == 0 {
            return Err(malformed(
                cursor.pos,
                "message ends without a record flagged ME",
            ));
        }
    }
    if cursor.left() > 0 {
        let what = format!("{} bytes after the record flagged ME", cursor.left());
        return Err(malformed(cursor.pos, what));
    }
    Ok(records)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn left(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// Takes `n` bytes or says which field ran past the end.
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], NdefError> {
        if n > self.left() {
            let why = format!("{what} needs {n} bytes but {} remain", self.left());
            return Err(malformed(self.pos, why));
        }
        let taken = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(taken)
    }

    fn byte(&mut self, what: &str) -> Result<u8, NdefError> {
        Ok(self.take(1, what)?[0])
    }
}

/// Reads one record; returns it and whether it carried ME.
fn read_record(cursor: &mut Cursor<'_>, first: bool) -> Result<(NdefRecord, bool), NdefError> {
    let start = cursor.pos;
    let header = cursor.byte("record header")?;
    if header & FLAG_CF != 0 {
        let what = "chunked record (CF): a tap-zone tag carries whole records";
        return Err(NdefError::Unsupported(what.to_string()));
    }
    if (header & FLAG_MB != 0) != first {
        let what = if first {
            "first record lacks MB"
        } else {
            "MB on a record after the first"
        };
        return Err(malformed(start, what));
    }
    let tnf = Tnf::from_bits(header & TNF_MASK, start)?;
    let type_len = cursor.byte("type length")?;
    let payload_len = if header & FLAG_SR != 0 {
        usize::from(cursor.byte("payload length")?)
    } else {
        let field: [u8; 4] = cursor
            .take(4, "long payload length")?
            .try_into()
            .expect("4 bytes");
        u32::from_be_bytes(field) as usize
    };
    let id_len = if header & FLAG_IL != 0 {
        cursor.byte("id length")?
    } else {
        0
    };
    let record_type = cursor.take(usize::from(type_len), "type")?.to_vec();
    let id = cursor.take(usize::from(id_len), "id")?.to_vec();
    let payload = cursor.take(payload_len, "payload")?.to_vec();
    let record = NdefRecord {
        tnf,
        record_type,
        id,
        payload,
    };
    record
        .check_shape()
        .map_err(|what| malformed(start, what))?;
    Ok((record, header & FLAG_ME != 0))
}

/// Keeps RFC 3986 unreserved characters and percent-encodes every other byte.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn percent_decode(encoded: &[u8]) -> Result<String, NdefError> {
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut pos = 0;
    while pos < encoded.len() {
        if encoded[pos] != b'%' {
            bytes.push(encoded[pos]);
            pos += 1;
            continue;
        }
        let hex = encoded
            .get(pos + 1..pos + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| {
                u8::from_str_radix(pair, 16)
                    .ok()
                    .filter(|_| !pair.starts_with('+'))
            })
            .ok_or_else(|| malformed(pos, "'%' not followed by two hex digits in the URI"))?;
        bytes.push(hex);
        pos += 3;
    }
    String::from_utf8(bytes)
        .map_err(|e| malformed(e.utf8_error().valid_up_to(), "URI is not UTF-8"))
}

/// The tap-zone NDEF message for a merchant's payment request.
pub fn write_tap_zone(request: &MerchantQr) -> Result<Vec<u8>, NdefError> {
    encode_message(&[NdefRecord::payment_request(&request.encode()?)])
}

/// The EMVCo payload text from a tap-zone message: the first `ecny:pay` URI record's.
pub fn tap_zone_text(message: &[u8]) -> Result<String, NdefError> {
    parse_message(message)?
        .iter()
        .find_map(NdefRecord::payment_request_text)
        .unwrap_or_else(|| {
            let what = format!("no URI record starting {TAP_ZONE_URI_PREFIX}");
            Err(NdefError::Unsupported(what))
        })
}

/// The payment request a tapped tag carries, checked as a scanned QR is.
pub fn read_tap_zone(message: &[u8]) -> Result<MerchantQr, NdefError> {
    Ok(MerchantQr::parse(&tap_zone_text(message)?)?)
}

/// A Type 4 Tag NDEF file: NLEN (2 bytes, big-endian) and the message.
pub fn type4_ndef_file(message: &[u8]) -> Result<Vec<u8>, NdefError> {
    if message.len() > NDEF_MESSAGE_BYTES_MAX {
        return Err(NdefError::TooLong {
            bytes: message.len(),
        });
    }
    let mut file = Vec::with_capacity(TYPE4_NLEN_BYTES + message.len());
    file.extend_from_slice(&(message.len() as u16).to_be_bytes());
    file.extend_from_slice(message);
    Ok(file)
}

/// The message in a Type 4 Tag NDEF file; bytes past NLEN are the file's unused room.
pub fn type4_message(file: &[u8]) -> Result<&[u8], NdefError> {
    let nlen_field: [u8; 2] = file
        .get(..TYPE4_NLEN_BYTES)
        .and_then(|field| field.try_into().ok())
        .ok_or_else(|| malformed(0, "NDEF file is shorter than its 2-byte NLEN"))?;
    let nlen = usize::from(u16::from_be_bytes(nlen_field));
    if nlen == 0 {
        return Err(malformed(0, "NLEN is 0: the tag is empty or being written"));
    }
    if nlen > NDEF_MESSAGE_BYTES_MAX {
        return Err(NdefError::TooLong { bytes: nlen });
    }
    let left = file.len() - TYPE4_NLEN_BYTES;
    file.get(TYPE4_NLEN_BYTES..TYPE4_NLEN_BYTES + nlen)
        .ok_or_else(|| {
            malformed(
                0,
                format!("NLEN says {nlen} bytes but the file holds {left}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amount::Amount;
    use crate::channels::emvco::{Mcc, QrKind};
    use crate::ids::{MerchantId, OperatorId};
    use proptest::prelude::*;

    fn noodle_stand() -> MerchantQr {
        MerchantQr {
            kind: QrKind::Dynamic {
                amount: "18.50".parse().unwrap(),
                order_id: "N-0042".to_string(),
                expires_at_s: 1_714_550_400,
            },
            operator: OperatorId(3),
            merchant: MerchantId(7),
            name: "Chongqing Noodles".to_string(),
            city: "Chengdu".to_string(),
            mcc: Mcc::new(5812).unwrap(),
        }
    }

    fn uri_record(payload_len: usize) -> NdefRecord {
        NdefRecord {
            tnf: Tnf::WellKnown,
            record_type: URI_TYPE.to_vec(),
            id: Vec::new(),
            payload: vec![b'a'; payload_len],
        }
    }

    #[test]
    fn a_tap_at_the_noodle_stand_reads_the_same_request_as_its_qr() {
        let request = noodle_stand();
        let message = write_tap_zone(&request).unwrap();
        // One short record: MB, ME, SR, TNF well-known; type "U"; no ID.
        assert_eq!(
            message[0],
            FLAG_MB | FLAG_ME | FLAG_SR | Tnf::WellKnown as u8
        );
        assert_eq!(&message[1..2], &[1]);
        assert_eq!(usize::from(message[2]), message.len() - 4);
        assert_eq!(&message[3..5], b"U\x00");
        assert!(message[5..].starts_with(b"ecny:pay?qr=000201"));
        assert_eq!(tap_zone_text(&message).unwrap(), request.encode().unwrap());
        assert_eq!(read_tap_zone(&message).unwrap(), request);
        let file = type4_ndef_file(&message).unwrap();
        assert_eq!(
            usize::from(u16::from_be_bytes([file[0], file[1]])),
            message.len()
        );
        let mut roomy_file = file.clone();
        roomy_file.extend_from_slice(&[0; 32]);
        assert_eq!(type4_message(&roomy_file).unwrap(), &message[..]);
    }

    #[test]
    fn spaces_in_the_name_are_percent_encoded_and_decoded() {
        let record = NdefRecord::payment_request("a b%c");
        assert!(record.payload.ends_with(b"a%20b%25c"));
        assert_eq!(record.payment_request_text(), Some(Ok("a b%c".to_string())));
    }

    #[test]
    fn short_and_long_records_both_round_trip() {
        for len in [0, 1, 255, 256, 4000] {
            let record = uri_record(len);
            let message = encode_message(std::slice::from_ref(&record)).unwrap();
            assert_eq!(message[0] & FLAG_SR != 0, len <= 255, "{len}");
            assert_eq!(parse_message(&message).unwrap(), vec![record]);
        }
        // A long record may carry a small payload; the reader takes it too.
        let long_small = [FLAG_MB | FLAG_ME | 0x01, 1, 0, 0, 0, 2, b'U', 0, b'x'];
        assert_eq!(
            parse_message(&long_small).unwrap()[0].payload,
            vec![0, b'x']
        );
    }

    #[test]
    fn an_id_and_several_records_are_read() {
        let mut first = uri_record(3);
        first.id = b"stand-7".to_vec();
        let app = NdefRecord {
            tnf: Tnf::External,
            record_type: b"android.com:pkg".to_vec(),
            id: Vec::new(),
            payload: b"cn.ecny.wallet".to_vec(),
        };
        let message = encode_message(&[first.clone(), app.clone()]).unwrap();
        assert_ne!(message[0] & FLAG_IL, 0);
        assert_eq!(parse_message(&message).unwrap(), vec![first, app]);
    }

    #[test]
    fn truncated_records_are_malformed_at_every_cut() {
        let message = write_tap_zone(&noodle_stand()).unwrap();
        for cut in 0..message.len() {
            let error = parse_message(&message[..cut]).unwrap_err();
            assert_eq!(error.code(), "NDEF_MALFORMED", "cut at {cut}: {error}");
        }
    }

    #[test]
    fn lying_lengths_are_malformed() {
        let mut message = write_tap_zone(&noodle_stand()).unwrap();
        message[2] += 1;
        let error = parse_message(&message).unwrap_err();
        assert!(error.to_string().contains("payload needs"), "{error}");
        message[2] -= 2;
        assert!(parse_message(&message)
            .unwrap_err()
            .to_string()
            .contains("after the record"));
        let huge = [FLAG_MB | FLAG_ME | 0x01, 1, 0xFF, 0xFF, 0xFF, 0xFF, b'U', 0];
        assert_eq!(parse_message(&huge).unwrap_err().code(), "NDEF_MALFORMED");
        let file = [0x01, 0x00, 0xD1];
        assert_eq!(type4_message(&file).unwrap_err().code(), "NDEF_MALFORMED");
        assert_eq!(
            type4_message(&[0, 0, 1]).unwrap_err().code(),
            "NDEF_MALFORMED"
        );
        assert_eq!(type4_message(&[0]).unwrap_err().code(), "NDEF_MALFORMED");
    }

    #[test]
    fn chunks_missing_me_and_trailing_bytes_are_refused() {
        let message = write_tap_zone(&noodle_stand()).unwrap();
        let mut chunked = message.clone();
        chunked[0] |= FLAG_CF;
        let error = parse_message(&chunked).unwrap_err();
        assert_eq!(error.code(), "NDEF_UNSUPPORTED");
        assert!(error.to_string().contains("chunked"), "{error}");
        let mut no_me = message.clone();
        no_me[0] &= !FLAG_ME;
        assert!(parse_message(&no_me)
            .unwrap_err()
            .to_string()
            .contains("ME"));
        let mut trailing = message.clone();
        trailing.push(0);
        assert!(parse_message(&trailing)
            .unwrap_err()
            .to_string()
            .contains("after the record"));
        let mut no_mb = message.clone();
        no_mb[0] &= !FLAG_MB;
        assert_eq!(parse_message(&no_mb).unwrap_err().code(), "NDEF_MALFORMED");
    }

    #[test]
    fn other_records_and_damaged_requests_are_refused() {
        let web = NdefRecord {
            payload: b"\x04example.com".to_vec(),
            ..uri_record(0)
        };
        let message = encode_message(&[web]).unwrap();
        assert_eq!(
            tap_zone_text(&message).unwrap_err().code(),
            "NDEF_UNSUPPORTED"
        );
        let bad_escape = encode_message(&[NdefRecord {
            payload: b"\x00ecny:pay?qr=00%2".to_vec(),
            ..uri_record(0)
        }])
        .unwrap();
        assert_eq!(
            tap_zone_text(&bad_escape).unwrap_err().code(),
            "NDEF_MALFORMED"
        );
        let mut text = noodle_stand().encode().unwrap();
        text = text.replacen("18.50", "81.50", 1);
        let altered = encode_message(&[NdefRecord::payment_request(&text)]).unwrap();
        assert_eq!(
            read_tap_zone(&altered).unwrap_err().code(),
            "QR_CRC_MISMATCH"
        );
        let reserved = [FLAG_MB | FLAG_ME | FLAG_SR | 0x07, 0, 0];
        assert_eq!(
            parse_message(&reserved).unwrap_err().code(),
            "NDEF_MALFORMED"
        );
        let too_big = vec![0u8; NDEF_MESSAGE_BYTES_MAX + 1];
        assert_eq!(parse_message(&too_big).unwrap_err().code(), "NDEF_TOO_LONG");
        let free = MerchantQr {
            kind: QrKind::Dynamic {
                amount: Amount::ZERO,
                order_id: "x".into(),
                expires_at_s: 0,
            },
            ..noodle_stand()
        };
        assert_eq!(
            write_tap_zone(&free).unwrap_err().code(),
            "QR_FIELD_INVALID"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_message(&bytes);
            let _ = read_tap_zone(&bytes);
            let _ = type4_message(&bytes);
        }

        #[test]
        fn any_text_survives_the_uri(text in any::<String>()) {
            let record = NdefRecord::payment_request(&text);
            prop_assert_eq!(record.payment_request_text(), Some(Ok(text)));
        }

        #[test]
        fn any_records_round_trip(
            payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..400), 1..4),
            id in prop::collection::vec(any::<u8>(), 0..8),
        ) {
            let records: Vec<NdefRecord> = payloads
                .into_iter()
                .map(|payload| NdefRecord { tnf: Tnf::Media, record_type: b"text/plain".to_vec(), id: id.clone(), payload })
                .collect();
            let message = encode_message(&records).unwrap();
            prop_assert_eq!(parse_message(&message).unwrap(), records);
        }
    }
}
