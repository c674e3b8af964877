//! ISO/IEC 7816-4 command and response APDUs.
//!
//! The dual-offline protocol uses SHORT APDUs only (Lc ≤ 255, Le ≤ 256): every phone NFC stack
//! and secure element supports them, while extended lengths are optional. A message longer than
//! 255 bytes is split with command chaining (CLA bit b5, `0x10`) and reassembled by the applet.
//! The parser also reads extended APDUs, so that the applet can refuse them with the right
//! status word instead of misreading them.

use std::fmt;

use thiserror::Error;

/// CLA, INS, P1, P2.
pub const HEADER_BYTES: usize = 4;
/// Largest data field of a short command APDU.
pub const SHORT_DATA_BYTES_MAX: usize = 255;
/// Largest response data a short Le (`00`) asks for.
pub const SHORT_RESPONSE_BYTES_MAX: usize = 256;
/// Largest data field of an extended command APDU.
pub const EXTENDED_DATA_BYTES_MAX: usize = 65_535;
/// Largest response data an extended Le (`0000`) asks for.
pub const EXTENDED_RESPONSE_BYTES_MAX: usize = 65_536;
/// CLA bit b5: more command data follows in the next APDU.
pub const CLA_CHAINING: u8 = 0x10;

/// SW1-SW2 of a response APDU.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusWord(pub u16);

impl StatusWord {
    pub const SUCCESS: StatusWord = StatusWord(0x9000);
    pub const WRONG_LENGTH: StatusWord = StatusWord(0x6700);
    pub const LAST_COMMAND_OF_CHAIN_EXPECTED: StatusWord = StatusWord(0x6883);
    pub const SECURITY_STATUS_NOT_SATISFIED: StatusWord = StatusWord(0x6982);
    pub const AUTHENTICATION_METHOD_BLOCKED: StatusWord = StatusWord(0x6983);
    pub const CONDITIONS_OF_USE_NOT_SATISFIED: StatusWord = StatusWord(0x6985);
    pub const INCORRECT_DATA: StatusWord = StatusWord(0x6A80);
    pub const APPLICATION_NOT_FOUND: StatusWord = StatusWord(0x6A82);
    pub const RECORD_NOT_FOUND: StatusWord = StatusWord(0x6A83);
    pub const NOT_ENOUGH_MEMORY: StatusWord = StatusWord(0x6A84);
    pub const INCORRECT_P1_P2: StatusWord = StatusWord(0x6A86);
    pub const REFERENCED_DATA_NOT_FOUND: StatusWord = StatusWord(0x6A88);
    pub const INS_NOT_SUPPORTED: StatusWord = StatusWord(0x6D00);
    pub const CLA_NOT_SUPPORTED: StatusWord = StatusWord(0x6E00);

    pub fn sw1(self) -> u8 {
        (self.0 >> 8) as u8
    }

    pub fn sw2(self) -> u8 {
        self.0 as u8
    }

    pub fn is_success(self) -> bool {
        self == StatusWord::SUCCESS
    }

    /// The ISO/IEC 7816-4 meaning, for logs and the phone's screen.
    pub fn meaning(self) -> &'static str {
        match self.0 {
            0x9000 => "success",
            0x6700 => "wrong length",
            0x6883 => "last command of the chain expected",
            0x6982 => "security status not satisfied",
            0x6983 => "authentication method blocked",
            0x6985 => "conditions of use not satisfied",
            0x6A80 => "incorrect data",
            0x6A82 => "application not found",
            0x6A83 => "record not found",
            0x6A84 => "not enough memory space",
            0x6A86 => "incorrect P1-P2",
            0x6A88 => "referenced data not found",
            0x6D00 => "instruction not supported",
            0x6E00 => "class not supported",
            _ => "unknown status",
        }
    }
}

impl fmt::Debug for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SW {:04X} ({})", self.0, self.meaning())
    }
}

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", self.0)
    }
}

/// How a command's Lc and Le are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LengthForm {
    Short,
    Extended,
}

/// A command APDU. `ne` is the number of response bytes expected (Le decoded: short `00`
/// means 256, extended `0000` means 65 536); `None` when the command has no Le field.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CommandApdu {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: Vec<u8>,
    pub ne: Option<u32>,
    pub form: LengthForm,
}

/// Why bytes are not a well-formed command APDU. All map to SW 6700 (wrong length).
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum ApduError {
    #[error("{len} bytes cannot hold the 4-byte header")]
    HeaderTruncated { len: usize },
    #[error("Lc says {declared} data bytes but only {present} follow")]
    DataTruncated { declared: usize, present: usize },
    #[error("{present} bytes follow the header where Lc and Le allow {expected}")]
    TrailingBytes { expected: usize, present: usize },
    #[error("the length fields after the header are neither short nor extended")]
    LengthMalformed,
}

impl ApduError {
    pub fn code(&self) -> &'static str {
        match self {
            ApduError::HeaderTruncated { .. } => "APDU_HEADER_TRUNCATED",
            ApduError::DataTruncated { .. } => "APDU_DATA_TRUNCATED",
            ApduError::TrailingBytes { .. } => "APDU_TRAILING_BYTES",
            ApduError::LengthMalformed => "APDU_LENGTH_MALFORMED",
        }
    }
}

impl CommandApdu {
    /// A short APDU; panics if `data` or `ne` do not fit, which is a bug in the caller.
    pub fn short(cla: u8, ins: u8, p1: u8, p2: u8, data: Vec<u8>, ne: Option<u32>) -> Self {
        let apdu = CommandApdu {
            cla,
            ins,
            p1,
            p2,
            data,
            ne,
            form: LengthForm::Short,
        };
        assert!(apdu.is_well_formed(), "short APDU lengths out of range");
        apdu
    }

    /// Whether the lengths fit the form; only well-formed APDUs can be encoded.
    pub fn is_well_formed(&self) -> bool {
        let (data_max, ne_max) = match self.form {
            LengthForm::Short => (SHORT_DATA_BYTES_MAX, SHORT_RESPONSE_BYTES_MAX),
            LengthForm::Extended => (EXTENDED_DATA_BYTES_MAX, EXTENDED_RESPONSE_BYTES_MAX),
        };
        let ne_ok = self.ne.is_none_or(|ne| ne >= 1 && ne as usize <= ne_max);
        // A header-only APDU (case 1) has no length fields, so it has no extended form.
        let case_1_extended =
            self.form == LengthForm::Extended && self.data.is_empty() && self.ne.is_none();
        self.data.len() <= data_max && ne_ok && !case_1_extended
    }

    pub fn encode(&self) -> Vec<u8> {
        assert!(self.is_well_formed(), "APDU lengths out of range");
        let mut bytes = Vec::with_capacity(HEADER_BYTES + 3 + self.data.len() + 2);
        bytes.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        match self.form {
            LengthForm::Short => self.encode_short_body(&mut bytes),
            LengthForm::Extended => self.encode_extended_body(&mut bytes),
        }
        bytes
    }

    fn encode_short_body(&self, bytes: &mut Vec<u8>) {
        if !self.data.is_empty() {
            bytes.push(self.data.len() as u8);
            bytes.extend_from_slice(&self.data);
        }
        if let Some(ne) = self.ne {
            // Le 00 stands for 256.
            bytes.push((ne % 256) as u8);
        }
    }

    fn encode_extended_body(&self, bytes: &mut Vec<u8>) {
        bytes.push(0);
        if !self.data.is_empty() {
            bytes.extend_from_slice(&(self.data.len() as u16).to_be_bytes());
            bytes.extend_from_slice(&self.data);
        }
        if let Some(ne) = self.ne {
            // Le 0000 stands for 65 536.
            bytes.extend_from_slice(&((ne % 65_536) as u16).to_be_bytes());
        }
    }

    /// Parses one command APDU; every byte must be accounted for by the length fields.
    pub fn parse(bytes: &[u8]) -> Result<CommandApdu, ApduError> {
        if bytes.len() < HEADER_BYTES {
            return Err(ApduError::HeaderTruncated { len: bytes.len() });
        }
        let body = &bytes[HEADER_BYTES..];
        let (data, ne, form) = match body {
            [] => (&[][..], None, LengthForm::Short),
            [le] => (&[][..], Some(short_ne(*le)), LengthForm::Short),
            [lc, rest @ ..] if *lc != 0 => {
                let (data, ne) = split_short(usize::from(*lc), rest)?;
                (data, ne, LengthForm::Short)
            }
            [_, _] => return Err(ApduError::LengthMalformed),
            [_, high, low] => (
                &[][..],
                Some(extended_ne(*high, *low)),
                LengthForm::Extended,
            ),
            [_, high, low, rest @ ..] => {
                let lc = usize::from(u16::from_be_bytes([*high, *low]));
                let (data, ne) = split_extended(lc, rest)?;
                (data, ne, LengthForm::Extended)
            }
        };
        Ok(CommandApdu {
            cla: bytes[0],
            ins: bytes[1],
            p1: bytes[2],
            p2: bytes[3],
            data: data.to_vec(),
            ne,
            form,
        })
    }
}

fn short_ne(le: u8) -> u32 {
    if le == 0 {
        SHORT_RESPONSE_BYTES_MAX as u32
    } else {
        u32::from(le)
    }
}

fn extended_ne(high: u8, low: u8) -> u32 {
    match u16::from_be_bytes([high, low]) {
        0 => EXTENDED_RESPONSE_BYTES_MAX as u32,
        le => u32::from(le),
    }
}

fn split_short(lc: usize, rest: &[u8]) -> Result<(&[u8], Option<u32>), ApduError> {
    debug_assert!((1..=SHORT_DATA_BYTES_MAX).contains(&lc));
    match rest.len() {
        len if len < lc => Err(ApduError::DataTruncated {
            declared: lc,
            present: len,
        }),
        len if len == lc => Ok((rest, None)),
        len if len == lc + 1 => Ok((&rest[..lc], Some(short_ne(rest[lc])))),
        len => Err(ApduError::TrailingBytes {
            expected: lc + 1,
            present: len,
        }),
    }
}

fn split_extended(lc: usize, rest: &[u8]) -> Result<(&[u8], Option<u32>), ApduError> {
    // An extended Lc of zero would make case 2E and 3E indistinguishable.
    if lc == 0 {
        return Err(ApduError::LengthMalformed);
    }
    match rest.len() {
        len if len < lc => Err(ApduError::DataTruncated {
            declared: lc,
            present: len,
        }),
        len if len == lc => Ok((rest, None)),
        len if len == lc + 2 => Ok((&rest[..lc], Some(extended_ne(rest[lc], rest[lc + 1])))),
        len => Err(ApduError::TrailingBytes {
            expected: lc + 2,
            present: len,
        }),
    }
}

/// A response APDU: data then SW1 SW2.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResponseApdu {
    pub data: Vec<u8>,
    pub sw: StatusWord,
}

impl ResponseApdu {
    pub fn success(data: Vec<u8>) -> ResponseApdu {
        ResponseApdu {
            data,
            sw: StatusWord::SUCCESS,
        }
    }

    /// A status word alone; errors never carry data.
    pub fn status(sw: StatusWord) -> ResponseApdu {
        ResponseApdu {
            data: Vec::new(),
            sw,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.data.len() + 2);
        bytes.extend_from_slice(&self.data);
        bytes.extend_from_slice(&self.sw.0.to_be_bytes());
        bytes
    }

    /// `None` when fewer than two bytes arrived: there is no status word to read.
    pub fn parse(bytes: &[u8]) -> Option<ResponseApdu> {
        let split = bytes.len().checked_sub(2)?;
        let (data, sw) = bytes.split_at(split);
        Some(ResponseApdu {
            data: data.to_vec(),
            sw: StatusWord(u16::from_be_bytes([sw[0], sw[1]])),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    #[test]
    fn the_four_short_cases_parse() {
        let case_1 = CommandApdu::parse(&hex("00A40400")).unwrap();
        assert_eq!((case_1.data.len(), case_1.ne), (0, None));
        let case_2 = CommandApdu::parse(&hex("80CADF0100")).unwrap();
        assert_eq!((case_2.p1, case_2.p2, case_2.ne), (0xDF, 0x01, Some(256)));
        let select = CommandApdu::parse(&hex("00A4040007A0000006320101")).unwrap();
        assert_eq!(select.data, hex("A0000006320101"));
        assert_eq!(select.ne, None);
        let case_4 = CommandApdu::parse(&hex("00A4040007A000000632010110")).unwrap();
        assert_eq!((case_4.data.len(), case_4.ne), (7, Some(16)));
        assert!([case_1, case_2, select, case_4]
            .iter()
            .all(|apdu| apdu.form == LengthForm::Short));
    }

    #[test]
    fn the_extended_cases_parse() {
        let case_2 = CommandApdu::parse(&hex("80CA0000 000000")).unwrap();
        assert_eq!(case_2.ne, Some(65_536));
        let case_3 = CommandApdu::parse(&hex("80540000 000002 AABB")).unwrap();
        assert_eq!(case_3.data, vec![0xAA, 0xBB]);
        let case_4 = CommandApdu::parse(&hex("80540000 000001 AA 0100")).unwrap();
        assert_eq!((case_4.data.len(), case_4.ne), (1, Some(256)));
        assert_eq!(case_4.form, LengthForm::Extended);
    }

    #[test]
    fn lying_length_fields_are_refused() {
        let cases = [
            ("00A4", ApduError::HeaderTruncated { len: 2 }),
            (
                "00A4040007A00000",
                ApduError::DataTruncated {
                    declared: 7,
                    present: 3,
                },
            ),
            (
                "00A4040002AABBCCDD",
                ApduError::TrailingBytes {
                    expected: 3,
                    present: 4,
                },
            ),
            ("00A404000000", ApduError::LengthMalformed),
            ("80540000 00000000", ApduError::LengthMalformed),
            ("80540000 000000 AABB", ApduError::LengthMalformed),
            (
                "80540000 000003 AABB",
                ApduError::DataTruncated {
                    declared: 3,
                    present: 2,
                },
            ),
            (
                "80540000 000001 AA 01",
                ApduError::TrailingBytes {
                    expected: 3,
                    present: 2,
                },
            ),
            (
                "80540000 000001 AA 010203",
                ApduError::TrailingBytes {
                    expected: 3,
                    present: 4,
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(CommandApdu::parse(&hex(text)), Err(expected), "{text}");
        }
    }

    #[test]
    fn status_words_split_and_name_themselves() {
        let response = ResponseApdu::parse(&hex("0102 6A84")).unwrap();
        assert_eq!(response.data, vec![1, 2]);
        assert_eq!(response.sw, StatusWord::NOT_ENOUGH_MEMORY);
        assert_eq!((response.sw.sw1(), response.sw.sw2()), (0x6A, 0x84));
        assert_eq!(format!("{:?}", StatusWord::SUCCESS), "SW 9000 (success)");
        assert_eq!(ResponseApdu::parse(&[0x90]), None);
        assert_eq!(ResponseApdu::success(vec![7]).encode(), vec![7, 0x90, 0x00]);
    }

    #[test]
    #[should_panic(expected = "short APDU lengths out of range")]
    fn short_apdus_refuse_long_data() {
        CommandApdu::short(0x80, 0x54, 0, 0, vec![0; 256], None);
    }

    fn well_formed_apdu() -> impl Strategy<Value = CommandApdu> {
        let short = (
            proptest::collection::vec(any::<u8>(), 0..=SHORT_DATA_BYTES_MAX),
            proptest::option::of(1u32..=256),
        )
            .prop_map(|(data, ne)| (data, ne, LengthForm::Short));
        let extended = (
            proptest::collection::vec(any::<u8>(), 0..600),
            proptest::option::of(1u32..=65_536),
        )
            .prop_filter("case 1 has no extended form", |(data, ne)| {
                !data.is_empty() || ne.is_some()
            })
            .prop_map(|(data, ne)| (data, ne, LengthForm::Extended));
        (any::<[u8; 4]>(), prop_oneof![short, extended]).prop_map(|(header, (data, ne, form))| {
            CommandApdu {
                cla: header[0],
                ins: header[1],
                p1: header[2],
                p2: header[3],
                data,
                ne,
                form,
            }
        })
    }

    proptest! {
        #[test]
        fn parse_inverts_encode(apdu in well_formed_apdu()) {
            prop_assert_eq!(CommandApdu::parse(&apdu.encode()), Ok(apdu));
        }

        #[test]
        fn parsing_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(apdu) = CommandApdu::parse(&bytes) {
                // Whatever parses re-encodes to the very same bytes: no second spelling.
                prop_assert_eq!(apdu.encode(), bytes.clone());
            }
            let _ = ResponseApdu::parse(&bytes);
        }

        #[test]
        fn response_parse_inverts_encode(data in proptest::collection::vec(any::<u8>(), 0..300), sw in any::<u16>()) {
            let response = ResponseApdu { data, sw: StatusWord(sw) };
            prop_assert_eq!(ResponseApdu::parse(&response.encode()), Some(response));
        }
    }
}
