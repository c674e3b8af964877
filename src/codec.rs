//! The byte encoding of commands and snapshots: fixed-width little-endian fields, length-prefixed
//! strings. Plain and fast, because every command crosses it on the way into the log and back on
//! replay; a decoding error names what it was reading and where.

use thiserror::Error;

/// Longest string field any command carries (names, ID numbers).
pub const STRING_BYTES_MAX: usize = 256;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("malformed {what} at byte {offset}")]
pub struct DecodeError {
    pub what: &'static str,
    pub offset: usize,
}

#[derive(Default)]
pub struct Writer {
    pub bytes: Vec<u8>,
}

impl Writer {
    pub fn new() -> Writer {
        Writer::default()
    }

    pub fn with_capacity(capacity: usize) -> Writer {
        Writer {
            bytes: Vec::with_capacity(capacity),
        }
    }

    pub fn u8(&mut self, value: u8) -> &mut Self {
        self.bytes.push(value);
        self
    }

    pub fn u16(&mut self, value: u16) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    pub fn u32(&mut self, value: u32) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    pub fn u64(&mut self, value: u64) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    pub fn i64(&mut self, value: i64) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    pub fn u128(&mut self, value: u128) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(bytes);
        self
    }

    pub fn str(&mut self, text: &str) -> &mut Self {
        assert!(
            text.len() <= STRING_BYTES_MAX,
            "string field too long to encode"
        );
        self.u16(text.len() as u16).raw(text.as_bytes())
    }

    pub fn opt_str(&mut self, text: Option<&str>) -> &mut Self {
        match text {
            Some(text) => self.u8(1).str(text),
            None => self.u8(0),
        }
    }
}

pub struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, offset: 0 }
    }

    pub fn offset(&self) -> usize {
        self.offset
    }

    pub fn is_empty(&self) -> bool {
        self.offset == self.bytes.len()
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.offset
    }

    pub fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < len {
            return Err(DecodeError {
                what,
                offset: self.offset,
            });
        }
        let slice = &self.bytes[self.offset..self.offset + len];
        self.offset += len;
        Ok(slice)
    }

    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        Ok(self
            .take(N, what)?
            .try_into()
            .expect("length checked by take"))
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        self.array(what).map(u16::from_le_bytes)
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        self.array(what).map(u32::from_le_bytes)
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        self.array(what).map(u64::from_le_bytes)
    }

    pub fn i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        self.array(what).map(i64::from_le_bytes)
    }

    pub fn u128(&mut self, what: &'static str) -> Result<u128, DecodeError> {
        self.array(what).map(u128::from_le_bytes)
    }

    pub fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError {
                what,
                offset: self.offset - 1,
            }),
        }
    }

    pub fn string(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let start = self.offset;
        let len = self.u16(what)? as usize;
        if len > STRING_BYTES_MAX {
            return Err(DecodeError {
                what,
                offset: start,
            });
        }
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError {
            what,
            offset: start,
        })
    }

    pub fn opt_string(&mut self, what: &'static str) -> Result<Option<String>, DecodeError> {
        if self.bool(what)? {
            self.string(what).map(Some)
        } else {
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fields_round_trip() {
        let mut writer = Writer::new();
        writer
            .u8(7)
            .u16(300)
            .u32(70_000)
            .u64(u64::MAX)
            .i64(-5)
            .u128(1 << 100);
        writer.str("Zhang San").opt_str(None).opt_str(Some("张三"));
        let mut reader = Reader::new(&writer.bytes);
        assert_eq!(reader.u8("a").unwrap(), 7);
        assert_eq!(reader.u16("b").unwrap(), 300);
        assert_eq!(reader.u32("c").unwrap(), 70_000);
        assert_eq!(reader.u64("d").unwrap(), u64::MAX);
        assert_eq!(reader.i64("e").unwrap(), -5);
        assert_eq!(reader.u128("f").unwrap(), 1 << 100);
        assert_eq!(reader.string("g").unwrap(), "Zhang San");
        assert_eq!(reader.opt_string("h").unwrap(), None);
        assert_eq!(reader.opt_string("i").unwrap().as_deref(), Some("张三"));
        assert!(reader.is_empty());
    }

    #[test]
    fn truncated_input_names_the_field_and_offset() {
        let mut reader = Reader::new(&[1, 2, 3]);
        assert_eq!(reader.u16("amount").unwrap(), 0x0201);
        assert_eq!(
            reader.u32("payee").unwrap_err(),
            DecodeError {
                what: "payee",
                offset: 2
            }
        );
    }

    proptest! {
        #[test]
        fn reading_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut reader = Reader::new(&bytes);
            while reader.string("s").is_ok() {}
            let _ = reader.u128("x");
        }
    }
}
