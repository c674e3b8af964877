//! EMVCo merchant-presented QR payloads (EMV QRCPS-MPM v1.1) for e-CNY: the static code on a
//! shop's stand and the dynamic code a till, a courier (cash on delivery) or a web checkout shows
//! for one order.
//!
//! A payload is a run of data objects, each `id` (2 digits) `length` (2 digits) `value`, lengths
//! counted in characters. The layout written and read here:
//!
//! | id    | object                          | value                                              |
//! |-------|---------------------------------|----------------------------------------------------|
//! | 00    | payload format indicator        | `01`, always first                                 |
//! | 01    | point of initiation method      | `11` static, `12` dynamic                          |
//! | 26    | merchant account information    | e-CNY template:                                    |
//! | 26/00 | globally unique identifier      | `cn.ecny`                                          |
//! | 26/01 | operator                        | e.g. `OP03`                                        |
//! | 26/02 | merchant                        | e.g. `M00000042`                                   |
//! | 52    | merchant category code          | 4 digits, e.g. `5812`                              |
//! | 53    | transaction currency            | `156` (CNY, ISO 4217)                              |
//! | 54    | transaction amount              | dynamic only: yuan, e.g. `66.60`                   |
//! | 58    | country code                    | `CN`                                               |
//! | 59    | merchant name                   | 1–25 characters                                    |
//! | 60    | merchant city                   | 1–15 characters                                    |
//! | 62    | additional data field template  | dynamic only:                                      |
//! | 62/01 | bill number                     | the order id, 1–25 characters                      |
//! | 62/50 | payment-system template (e-CNY) | 50/00 `cn.ecny`, 50/01 expiry in Unix seconds       |
//! | 63    | CRC                             | CRC-16/CCITT-FALSE of all before it incl. `6304`   |
//!
//! The reader finds the e-CNY template in any of 26–51 (and the expiry in any of 62/50–99), since
//! other networks' templates may sit beside it, and ignores objects it does not use, as the
//! specification asks.

use std::fmt::Write as _;
use std::ops::RangeInclusive;
use std::str::FromStr;

use thiserror::Error;

use crate::amount::Amount;
use crate::ids::{MerchantId, OperatorId};

/// Longest payload the specification allows.
pub const QR_PAYLOAD_CHARS_MAX: usize = 512;
/// A value's length is two decimal digits.
pub const QR_VALUE_CHARS_MAX: usize = 99;
/// Merchant name (59) per the specification.
pub const QR_NAME_CHARS_MAX: usize = 25;
/// Merchant city (60) per the specification.
pub const QR_CITY_CHARS_MAX: usize = 15;
/// Bill number (62/01) per the specification.
pub const QR_BILL_NUMBER_CHARS_MAX: usize = 25;
/// Transaction amount (54) per the specification.
pub const QR_AMOUNT_CHARS_MAX: usize = 13;
/// Largest amount whose text fits 13 characters: 9,999,999,999.99 yuan.
pub const QR_AMOUNT_FEN_MAX: i64 = 999_999_999_999;
/// Reverse-domain globally unique identifier of the e-CNY templates.
pub const ECNY_GUI: &str = "cn.ecny";
/// ISO 4217 numeric code of the renminbi.
pub const CURRENCY_CNY: &str = "156";
/// ISO 3166-1 alpha-2 code of China.
pub const COUNTRY_CN: &str = "CN";

const ID_FORMAT: u8 = 0;
const ID_INITIATION: u8 = 1;
const ID_ECNY_ACCOUNT: u8 = 26;
const ACCOUNT_IDS: RangeInclusive<u8> = 26..=51;
const ID_MCC: u8 = 52;
const ID_CURRENCY: u8 = 53;
const ID_AMOUNT: u8 = 54;
const ID_COUNTRY: u8 = 58;
const ID_NAME: u8 = 59;
const ID_CITY: u8 = 60;
const ID_ADDITIONAL: u8 = 62;
const ID_CRC: u8 = 63;
const SUB_GUI: u8 = 0;
const SUB_OPERATOR: u8 = 1;
const SUB_MERCHANT: u8 = 2;
const SUB_BILL_NUMBER: u8 = 1;
const SUB_ECNY_DATA: u8 = 50;
const PAYMENT_SYSTEM_IDS: RangeInclusive<u8> = 50..=99;
const SUB_EXPIRY: u8 = 1;
const INITIATION_STATIC: &str = "11";
const INITIATION_DYNAMIC: &str = "12";
/// `6304` and four hex digits close every payload.
const CRC_OBJECT_CHARS: usize = 8;
const CRC_HEADER: &str = "6304";
const HEADER_CHARS: usize = 4;
/// A UTF-8 character is at most 4 bytes: longer input cannot be within the character limit.
const UTF8_BYTES_PER_CHAR_MAX: usize = 4;

/// Why a QR payload was refused; `code()` is stable across releases.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QrError {
    #[error("QR payload is {chars} characters; at most {QR_PAYLOAD_CHARS_MAX}")]
    TooLong { chars: usize },
    #[error("QR CRC says {stated} but the payload gives {computed}: the code is damaged or altered, scan it again")]
    CrcMismatch { stated: String, computed: String },
    #[error("QR payload is malformed at character {offset}: {what}")]
    Malformed { offset: usize, what: String },
    #[error("QR payload lacks {0}")]
    MissingField(&'static str),
    #[error("not an e-CNY payment request: {0}")]
    Unsupported(String),
    #[error("this QR expired at {expires_at_s} (now {now_s}); ask the merchant for a new one")]
    Expired { expires_at_s: u64, now_s: u64 },
    #[error("cannot encode the QR: {field} {reason}")]
    InvalidField { field: &'static str, reason: String },
}

impl QrError {
    /// Machine-readable code shown alike by the API, the CLI and web pages.
    pub fn code(&self) -> &'static str {
        match self {
            QrError::TooLong { .. } => "QR_TOO_LONG",
            QrError::CrcMismatch { .. } => "QR_CRC_MISMATCH",
            QrError::Malformed { .. } => "QR_MALFORMED",
            QrError::MissingField(_) => "QR_MISSING_FIELD",
            QrError::Unsupported(_) => "QR_UNSUPPORTED",
            QrError::Expired { .. } => "QR_EXPIRED",
            QrError::InvalidField { .. } => "QR_FIELD_INVALID",
        }
    }
}

fn malformed(offset: usize, what: impl Into<String>) -> QrError {
    QrError::Malformed {
        offset,
        what: what.into(),
    }
}

/// CRC-16/CCITT-FALSE: polynomial 0x1021, initial value 0xFFFF, no reflection, no final XOR.
pub fn crc16_ccitt_false(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// An ISO 18245 merchant category code, four digits (`0742` keeps its leading zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mcc(u16);

impl Mcc {
    pub const fn new(code: u16) -> Option<Mcc> {
        if code <= 9999 {
            Some(Mcc(code))
        } else {
            None
        }
    }

    pub const fn code(self) -> u16 {
        self.0
    }
}

impl std::fmt::Display for Mcc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}", self.0)
    }
}

impl FromStr for Mcc {
    type Err = String;
    fn from_str(text: &str) -> Result<Mcc, String> {
        if text.len() != 4 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("merchant category code {text:?} is not 4 digits"));
        }
        text.parse().map(Mcc).map_err(|_| format!("{text:?}"))
    }
}

/// Static: the payer types the amount. Dynamic: one order, one amount, until it expires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QrKind {
    Static,
    Dynamic {
        amount: Amount,
        order_id: String,
        expires_at_s: u64,
    },
}

/// A merchant's payment request as its QR carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerchantQr {
    pub kind: QrKind,
    pub operator: OperatorId,
    pub merchant: MerchantId,
    pub name: String,
    pub city: String,
    pub mcc: Mcc,
}

/// One data object of a payload: `offset` is where its id starts, in characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataObject {
    pub id: u8,
    pub value: String,
    pub offset: usize,
}

impl DataObject {
    fn value_offset(&self) -> usize {
        self.offset + HEADER_CHARS
    }

    /// Reads the value as a template of nested data objects.
    fn objects(&self) -> Result<Vec<DataObject>, QrError> {
        let chars: Vec<char> = self.value.chars().collect();
        read_objects(&chars, self.value_offset())
    }
}

/// Splits a payload into its top-level data objects, checking only the id-length-value frame.
pub fn data_objects(payload: &str) -> Result<Vec<DataObject>, QrError> {
    read_objects(&payload_chars(payload)?, 0)
}

/// Checks the trailing CRC object against the payload.
pub fn verify_crc(payload: &str) -> Result<(), QrError> {
    payload_chars(payload)?;
    let Some(stated) = stated_crc(payload) else {
        return Err(crc_frame_error(payload));
    };
    let covered = &payload.as_bytes()[..payload.len() - 4];
    let computed = format!("{:04X}", crc16_ccitt_false(covered));
    if computed != stated {
        return Err(QrError::CrcMismatch {
            stated: stated.to_string(),
            computed,
        });
    }
    Ok(())
}

fn payload_chars(payload: &str) -> Result<Vec<char>, QrError> {
    if payload.len() > QR_PAYLOAD_CHARS_MAX * UTF8_BYTES_PER_CHAR_MAX {
        return Err(QrError::TooLong {
            chars: payload.chars().count(),
        });
    }
    let chars: Vec<char> = payload.chars().collect();
    if chars.len() > QR_PAYLOAD_CHARS_MAX {
        return Err(QrError::TooLong { chars: chars.len() });
    }
    Ok(chars)
}

/// The four hex digits after a final `6304`, if the payload ends that way.
fn stated_crc(payload: &str) -> Option<&str> {
    let tail = payload.get(payload.len().checked_sub(CRC_OBJECT_CHARS)?..)?;
    let digits = tail.strip_prefix(CRC_HEADER)?;
    let uppercase_hex = |b: u8| b.is_ascii_digit() || (b'A'..=b'F').contains(&b);
    digits.bytes().all(uppercase_hex).then_some(digits)
}

/// Explains a payload that does not end in `6304XXXX`.
fn crc_frame_error(payload: &str) -> QrError {
    let chars: Vec<char> = payload.chars().collect();
    match read_objects(&chars, 0) {
        Err(error) => error,
        Ok(objects) => match objects.iter().find(|o| o.id == ID_CRC) {
            None => QrError::MissingField("63 CRC"),
            Some(crc) => malformed(
                crc.offset,
                "the CRC must be the last object: 6304 and 4 uppercase hex digits",
            ),
        },
    }
}

fn two_digits(pair: &[char]) -> Option<u8> {
    match pair {
        [tens, ones] => Some(tens.to_digit(10)? as u8 * 10 + ones.to_digit(10)? as u8),
        _ => None,
    }
}

/// Walks id-length-value objects; `base` is where `chars` starts in the whole payload.
fn read_objects(chars: &[char], base: usize) -> Result<Vec<DataObject>, QrError> {
    let mut objects: Vec<DataObject> = Vec::new();
    let mut pos = 0;
    while pos < chars.len() {
        let at = base + pos;
        let left = chars.len() - pos;
        let header = chars.get(pos..pos + HEADER_CHARS).ok_or_else(|| {
            malformed(
                at,
                format!("object cut short: {left} characters left, a header needs 4"),
            )
        })?;
        let id = two_digits(&header[..2]).ok_or_else(|| malformed(at, "id is not two digits"))?;
        let len = two_digits(&header[2..])
            .ok_or_else(|| malformed(at + 2, format!("length of id {id:02} is not two digits")))?;
        if len == 0 {
            return Err(malformed(at + 2, format!("id {id:02} has length 00")));
        }
        let start = pos + HEADER_CHARS;
        let value = chars.get(start..start + usize::from(len)).ok_or_else(|| {
            let remain = chars.len() - start;
            malformed(
                at + 2,
                format!("id {id:02} claims {len} characters but {remain} remain"),
            )
        })?;
        if objects.iter().any(|o| o.id == id) {
            return Err(malformed(at, format!("id {id:02} appears twice")));
        }
        objects.push(DataObject {
            id,
            value: value.iter().collect(),
            offset: at,
        });
        pos = start + usize::from(len);
    }
    debug_assert_eq!(pos, chars.len());
    Ok(objects)
}

fn find(objects: &[DataObject], id: u8) -> Option<&DataObject> {
    objects.iter().find(|o| o.id == id)
}

fn require<'a>(
    objects: &'a [DataObject],
    id: u8,
    what: &'static str,
) -> Result<&'a DataObject, QrError> {
    find(objects, id).ok_or(QrError::MissingField(what))
}

/// The first template in `ids` whose globally unique identifier is e-CNY's; others are skipped.
/// The one e-CNY template among `ids`; two would leave it to the reader which merchant or
/// expiry is meant, so a second is refused rather than silently ignored.
fn ecny_template(
    objects: &[DataObject],
    ids: RangeInclusive<u8>,
) -> Result<Option<Vec<DataObject>>, QrError> {
    let mut found = objects
        .iter()
        .filter(|o| ids.contains(&o.id))
        .filter_map(|o| Some((o, o.objects().ok()?)))
        .filter(|(_, subs)| find(subs, SUB_GUI).is_some_and(|gui| gui.value == ECNY_GUI));
    let first = found.next();
    if let Some((second, _)) = found.next() {
        let what = format!(
            "id {:02} is a second {ECNY_GUI} template; a request names one",
            second.id
        );
        return Err(malformed(second.offset, what));
    }
    Ok(first.map(|(_, subs)| subs))
}

/// Printable ASCII ("ans" in the specification), 1 to `max` characters.
fn check_text(value: &str, max: usize) -> Result<(), String> {
    let chars = value.chars().count();
    if chars == 0 || chars > max {
        return Err(format!("is {chars} characters; 1 to {max} allowed"));
    }
    if let Some(c) = value.chars().find(|c| !(' '..='~').contains(c)) {
        return Err(format!("contains {c:?}; only printable ASCII is allowed"));
    }
    Ok(())
}

fn check_amount(amount: Amount) -> Result<(), String> {
    if !amount.is_positive() {
        return Err(format!("is {amount}; it must be above zero"));
    }
    if amount.fen() > QR_AMOUNT_FEN_MAX {
        return Err(format!("is {amount}; at most 9999999999.99 fits the QR"));
    }
    Ok(())
}

/// Digits with at most two decimals (the one amount syntax, `Amount`'s), above zero.
fn parse_amount(text: &str) -> Result<Amount, String> {
    if text.len() > QR_AMOUNT_CHARS_MAX {
        return Err(format!(
            "amount {text:?} is longer than {QR_AMOUNT_CHARS_MAX} characters"
        ));
    }
    let amount: Amount = text.parse().map_err(|error| format!("{error}"))?;
    check_amount(amount).map_err(|why| format!("amount {why}"))?;
    Ok(amount)
}

fn push_object(out: &mut String, id: u8, value: &str) {
    let len = value.chars().count();
    debug_assert!(
        (1..=QR_VALUE_CHARS_MAX).contains(&len),
        "id {id:02} value length {len}"
    );
    write!(out, "{id:02}{len:02}{value}").expect("writing to a String cannot fail");
}

impl MerchantQr {
    pub fn is_dynamic(&self) -> bool {
        matches!(self.kind, QrKind::Dynamic { .. })
    }

    /// Refuses an expired dynamic QR; `now_s` is Unix seconds handed in by the caller.
    pub fn check_fresh(&self, now_s: u64) -> Result<(), QrError> {
        match self.kind {
            QrKind::Dynamic { expires_at_s, .. } if now_s >= expires_at_s => {
                Err(QrError::Expired {
                    expires_at_s,
                    now_s,
                })
            }
            _ => Ok(()),
        }
    }

    /// Checks every field the reader checks, so `parse(encode(x)) == x` whenever encoding works.
    pub fn validate(&self) -> Result<(), QrError> {
        let invalid = |field| move |reason| QrError::InvalidField { field, reason };
        check_text(&self.name, QR_NAME_CHARS_MAX).map_err(invalid("merchant name"))?;
        check_text(&self.city, QR_CITY_CHARS_MAX).map_err(invalid("merchant city"))?;
        if let QrKind::Dynamic {
            amount, order_id, ..
        } = &self.kind
        {
            check_amount(*amount).map_err(invalid("amount"))?;
            check_text(order_id, QR_BILL_NUMBER_CHARS_MAX).map_err(invalid("order id"))?;
        }
        Ok(())
    }

    /// The payload text to render as a QR code.
    pub fn encode(&self) -> Result<String, QrError> {
        self.validate()?;
        let mut out = String::with_capacity(QR_PAYLOAD_CHARS_MAX);
        let initiation = if self.is_dynamic() {
            INITIATION_DYNAMIC
        } else {
            INITIATION_STATIC
        };
        push_object(&mut out, ID_FORMAT, "01");
        push_object(&mut out, ID_INITIATION, initiation);
        push_object(&mut out, ID_ECNY_ACCOUNT, &self.account_template());
        push_object(&mut out, ID_MCC, &self.mcc.to_string());
        push_object(&mut out, ID_CURRENCY, CURRENCY_CNY);
        if let QrKind::Dynamic { amount, .. } = &self.kind {
            push_object(&mut out, ID_AMOUNT, &amount.to_string());
        }
        push_object(&mut out, ID_COUNTRY, COUNTRY_CN);
        push_object(&mut out, ID_NAME, &self.name);
        push_object(&mut out, ID_CITY, &self.city);
        if let QrKind::Dynamic {
            order_id,
            expires_at_s,
            ..
        } = &self.kind
        {
            push_object(
                &mut out,
                ID_ADDITIONAL,
                &additional_template(order_id, *expires_at_s),
            );
        }
        out.push_str(CRC_HEADER);
        let crc = crc16_ccitt_false(out.as_bytes());
        write!(out, "{crc:04X}").expect("writing to a String cannot fail");
        let chars = out.chars().count();
        if chars > QR_PAYLOAD_CHARS_MAX {
            return Err(QrError::TooLong { chars });
        }
        Ok(out)
    }

    fn account_template(&self) -> String {
        let mut template = String::new();
        push_object(&mut template, SUB_GUI, ECNY_GUI);
        push_object(&mut template, SUB_OPERATOR, &self.operator.to_string());
        push_object(&mut template, SUB_MERCHANT, &self.merchant.to_string());
        template
    }

    /// Reads a scanned payload: CRC first (so any altered character reads as damage), then the
    /// frame, then each field.
    pub fn parse(payload: &str) -> Result<MerchantQr, QrError> {
        verify_crc(payload)?;
        let objects = data_objects(payload)?;
        check_frame(&objects)?;
        let (operator, merchant) = merchant_account(&objects)?;
        check_currency_and_country(&objects)?;
        let mcc_object = require(&objects, ID_MCC, "52 merchant category code")?;
        let mcc = mcc_object
            .value
            .parse()
            .map_err(|why| malformed(mcc_object.value_offset(), why))?;
        let name = text_field(&objects, ID_NAME, "59 merchant name", QR_NAME_CHARS_MAX)?;
        let city = text_field(&objects, ID_CITY, "60 merchant city", QR_CITY_CHARS_MAX)?;
        let initiation = require(&objects, ID_INITIATION, "01 point of initiation method")?;
        let kind = match initiation.value.as_str() {
            INITIATION_STATIC => static_kind(&objects)?,
            INITIATION_DYNAMIC => dynamic_kind(&objects)?,
            other => {
                let what = format!("point of initiation {other:?} is neither 11 nor 12");
                return Err(malformed(initiation.value_offset(), what));
            }
        };
        Ok(MerchantQr {
            kind,
            operator,
            merchant,
            name,
            city,
            mcc,
        })
    }
}

fn additional_template(order_id: &str, expires_at_s: u64) -> String {
    let mut ecny_data = String::new();
    push_object(&mut ecny_data, SUB_GUI, ECNY_GUI);
    push_object(&mut ecny_data, SUB_EXPIRY, &expires_at_s.to_string());
    let mut template = String::new();
    push_object(&mut template, SUB_BILL_NUMBER, order_id);
    push_object(&mut template, SUB_ECNY_DATA, &ecny_data);
    template
}

/// `00` = `01` first and the CRC last.
fn check_frame(objects: &[DataObject]) -> Result<(), QrError> {
    let first = objects
        .first()
        .ok_or(QrError::MissingField("00 payload format indicator"))?;
    if first.id != ID_FORMAT {
        return Err(malformed(
            0,
            "the payload must start with 00, the payload format indicator",
        ));
    }
    if first.value != "01" {
        let what = format!(
            "payload format indicator {:?}; only 01 is known",
            first.value
        );
        return Err(QrError::Unsupported(what));
    }
    match objects.last() {
        Some(last) if last.id == ID_CRC => Ok(()),
        Some(last) => Err(malformed(last.offset, "the CRC 63 must be the last object")),
        None => Err(QrError::MissingField("63 CRC")),
    }
}

fn merchant_account(objects: &[DataObject]) -> Result<(OperatorId, MerchantId), QrError> {
    if !objects.iter().any(|o| (2..=51).contains(&o.id)) {
        return Err(QrError::MissingField("02–51 merchant account information"));
    }
    let account = ecny_template(objects, ACCOUNT_IDS)?.ok_or_else(|| {
        QrError::Unsupported(format!("no merchant account template 26–51 for {ECNY_GUI}"))
    })?;
    let operator = canonical_id(&account, SUB_OPERATOR, "26/01 operator")?;
    let merchant = canonical_id(&account, SUB_MERCHANT, "26/02 merchant")?;
    Ok((operator, merchant))
}

/// Parses an id and insists on its printed form, so each request has exactly one spelling.
fn canonical_id<T>(objects: &[DataObject], id: u8, what: &'static str) -> Result<T, QrError>
where
    T: FromStr + std::fmt::Display,
{
    let object = require(objects, id, what)?;
    match object.value.parse::<T>() {
        Ok(parsed) if parsed.to_string() == object.value => Ok(parsed),
        _ => Err(malformed(
            object.value_offset(),
            format!("{what} {:?} is not a valid id", object.value),
        )),
    }
}

fn check_currency_and_country(objects: &[DataObject]) -> Result<(), QrError> {
    let currency = require(objects, ID_CURRENCY, "53 transaction currency")?;
    if currency.value != CURRENCY_CNY {
        let what = format!("currency {}; e-CNY is {CURRENCY_CNY} (CNY)", currency.value);
        return Err(QrError::Unsupported(what));
    }
    let country = require(objects, ID_COUNTRY, "58 country code")?;
    if country.value != COUNTRY_CN {
        let what = format!(
            "country {}; e-CNY merchants are in {COUNTRY_CN}",
            country.value
        );
        return Err(QrError::Unsupported(what));
    }
    Ok(())
}

fn text_field(
    objects: &[DataObject],
    id: u8,
    what: &'static str,
    max: usize,
) -> Result<String, QrError> {
    let object = require(objects, id, what)?;
    check_text(&object.value, max)
        .map_err(|why| malformed(object.value_offset(), format!("{what} {why}")))?;
    Ok(object.value.clone())
}

fn static_kind(objects: &[DataObject]) -> Result<QrKind, QrError> {
    if find(objects, ID_AMOUNT).is_some() {
        let what = "a static QR with a fixed amount; the payer enters the amount";
        return Err(QrError::Unsupported(what.to_string()));
    }
    Ok(QrKind::Static)
}

fn dynamic_kind(objects: &[DataObject]) -> Result<QrKind, QrError> {
    let amount_object = require(objects, ID_AMOUNT, "54 transaction amount")?;
    let amount = parse_amount(&amount_object.value)
        .map_err(|why| malformed(amount_object.value_offset(), why))?;
    let additional = require(objects, ID_ADDITIONAL, "62 additional data field template")?;
    let subs = additional.objects()?;
    let order_id = text_field(
        &subs,
        SUB_BILL_NUMBER,
        "62/01 bill number",
        QR_BILL_NUMBER_CHARS_MAX,
    )?;
    let ecny_data = ecny_template(&subs, PAYMENT_SYSTEM_IDS)?.ok_or(QrError::MissingField(
        "62/50 e-CNY template with the expiry",
    ))?;
    let expiry = require(&ecny_data, SUB_EXPIRY, "62/50/01 expiry")?;
    let expires_at_s = match expiry.value.parse::<u64>() {
        Ok(seconds) if expiry.value.bytes().all(|b| b.is_ascii_digit()) => seconds,
        _ => {
            let what = format!("expiry {:?} is not Unix seconds", expiry.value);
            return Err(malformed(expiry.value_offset(), what));
        }
    };
    Ok(QrKind::Dynamic {
        amount,
        order_id,
        expires_at_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// EMV QRCPS-MPM v1.1, Appendix A: the specification's own example payload.
    const SPEC_EXAMPLE: &str = "00020101021229300012D156000000000510A93FO3230Q31280012D15600000001030812345678520441115802CN5914BEST TRANSPORT6007BEIJING64200002ZH0104最佳运输0202北京540523.7253031565502016233030412340603***0708A60086670902ME91320016A0112233449988770708123456786304A13A";
    /// The widely published Thai PromptPay static payload (mobile number 0066000000000).
    const PROMPTPAY_EXAMPLE: &str =
        "00020101021129370016A000000677010111011300660000000005802TH530376463048956";
    /// A published Cambodian dynamic payload in US dollars, objects out of numeric order.
    const KHQR_EXAMPLE: &str = "00020101021252044131153137210116372101160123456789ABCDE6016Banteay Meanchey5913Kuntheas Shop5802KH540510.005303840621201081234567863041FF2";

    fn snack_shop() -> MerchantQr {
        MerchantQr {
            kind: QrKind::Static,
            operator: OperatorId(3),
            merchant: MerchantId(42),
            name: "Lao Wang Snacks".to_string(),
            city: "Shenzhen".to_string(),
            mcc: Mcc::new(5814).unwrap(),
        }
    }

    fn snack_shop_order() -> MerchantQr {
        MerchantQr {
            kind: QrKind::Dynamic {
                amount: "66.60".parse().unwrap(),
                order_id: "SZ20240501-0007".to_string(),
                expires_at_s: 1_714_550_400,
            },
            ..snack_shop()
        }
    }

    /// Appends `6304` and the right CRC, for payloads altered on purpose.
    fn with_crc(body: &str) -> String {
        let covered = format!("{body}{CRC_HEADER}");
        format!("{covered}{:04X}", crc16_ccitt_false(covered.as_bytes()))
    }

    fn body_of(payload: &str) -> &str {
        &payload[..payload.len() - CRC_OBJECT_CHARS]
    }

    #[test]
    fn crc_reproduces_the_published_check_value_and_examples() {
        assert_eq!(crc16_ccitt_false(b"123456789"), 0x29B1);
        assert_eq!(crc16_ccitt_false(b""), 0xFFFF);
        assert_eq!(verify_crc(PROMPTPAY_EXAMPLE), Ok(()));
        assert_eq!(verify_crc(SPEC_EXAMPLE), Ok(()));
        assert_eq!(verify_crc(KHQR_EXAMPLE), Ok(()));
        // The same payload with one digit of the mobile number dropped no longer checks.
        let dropped = PROMPTPAY_EXAMPLE.replacen("0066000000000", "006600000000", 1);
        assert_eq!(verify_crc(&dropped).unwrap_err().code(), "QR_CRC_MISMATCH");
    }

    #[test]
    fn the_specification_example_splits_into_its_objects() {
        let objects = data_objects(SPEC_EXAMPLE).unwrap();
        let ids: Vec<u8> = objects.iter().map(|o| o.id).collect();
        assert_eq!(
            ids,
            [0, 1, 29, 31, 52, 58, 59, 60, 64, 54, 53, 55, 62, 91, 63]
        );
        let language = find(&objects, 64).unwrap().objects().unwrap();
        assert_eq!(find(&language, 1).unwrap().value, "最佳运输");
        assert_eq!(find(&objects, 54).unwrap().value, "23.72");
        // A valid payload, but its account templates belong to another network.
        let error = MerchantQr::parse(SPEC_EXAMPLE).unwrap_err();
        assert_eq!(error.code(), "QR_UNSUPPORTED");
        assert_eq!(
            MerchantQr::parse(PROMPTPAY_EXAMPLE).unwrap_err().code(),
            "QR_UNSUPPORTED"
        );
    }

    #[test]
    fn a_snack_shop_stand_qr_round_trips() {
        let qr = snack_shop();
        let payload = qr.encode().unwrap();
        assert_eq!(
            payload,
            with_crc(
                "00020101021126320007cn.ecny0104OP030209M00000042520458145303156\
                      5802CN5915Lao Wang Snacks6008Shenzhen"
            )
        );
        assert_eq!(MerchantQr::parse(&payload), Ok(qr));
    }

    #[test]
    fn a_till_qr_for_66_60_round_trips_and_expires() {
        let qr = snack_shop_order();
        let payload = qr.encode().unwrap();
        assert!(payload.contains("540566.60"), "{payload}");
        assert!(payload.contains("6248"), "{payload}");
        assert!(payload.contains("0115SZ20240501-0007"), "{payload}");
        assert!(
            payload.contains("50250007cn.ecny01101714550400"),
            "{payload}"
        );
        let parsed = MerchantQr::parse(&payload).unwrap();
        assert_eq!(parsed, qr);
        assert_eq!(parsed.check_fresh(1_714_550_399), Ok(()));
        let expired = parsed.check_fresh(1_714_550_400).unwrap_err();
        assert_eq!(expired.code(), "QR_EXPIRED");
        assert_eq!(snack_shop().check_fresh(u64::MAX), Ok(()));
    }

    #[test]
    fn one_changed_character_is_a_crc_mismatch() {
        let payload = snack_shop_order().encode().unwrap();
        let altered = payload.replacen("66.60", "99.60", 1);
        assert_eq!(
            MerchantQr::parse(&altered).unwrap_err().code(),
            "QR_CRC_MISMATCH"
        );
        let mut digits: Vec<char> = payload.chars().collect();
        let last = digits.len() - 1;
        digits[last] = if digits[last] == '0' { '1' } else { '0' };
        let altered: String = digits.into_iter().collect();
        assert_eq!(
            MerchantQr::parse(&altered).unwrap_err().code(),
            "QR_CRC_MISMATCH"
        );
        let lowercase = format!(
            "{}{}",
            &payload[..payload.len() - 4],
            payload[payload.len() - 4..].to_lowercase()
        );
        if lowercase != payload {
            assert_eq!(
                MerchantQr::parse(&lowercase).unwrap_err().code(),
                "QR_MALFORMED"
            );
        }
    }

    #[test]
    fn another_currency_or_country_is_unsupported() {
        let payload = snack_shop_order().encode().unwrap();
        let dollars = with_crc(&body_of(&payload).replacen("5303156", "5303840", 1));
        let error = MerchantQr::parse(&dollars).unwrap_err();
        assert_eq!(error.code(), "QR_UNSUPPORTED");
        assert!(error.to_string().contains("840"), "{error}");
        let abroad = with_crc(&body_of(&payload).replacen("5802CN", "5802TH", 1));
        assert_eq!(
            MerchantQr::parse(&abroad).unwrap_err().code(),
            "QR_UNSUPPORTED"
        );
    }

    #[test]
    fn missing_mandatory_fields_are_named() {
        let payload = snack_shop_order().encode().unwrap();
        let body = body_of(&payload);
        let cases = [
            ("5915Lao Wang Snacks", "59 merchant name"),
            ("6008Shenzhen", "60 merchant city"),
            ("52045814", "52 merchant category code"),
            ("5303156", "53 transaction currency"),
            ("540566.60", "54 transaction amount"),
            ("5802CN", "58 country code"),
        ];
        for (object, what) in cases {
            let without = with_crc(&body.replacen(object, "", 1));
            assert_eq!(
                MerchantQr::parse(&without),
                Err(QrError::MissingField(what))
            );
        }
        assert_eq!(
            MerchantQr::parse(body),
            Err(QrError::MissingField("63 CRC"))
        );
        let no_expiry = with_crc(&body.replacen("6248", "6219", 1).replacen(
            "50250007cn.ecny01101714550400",
            "",
            1,
        ));
        assert_eq!(
            MerchantQr::parse(&no_expiry),
            Err(QrError::MissingField(
                "62/50 e-CNY template with the expiry"
            ))
        );
    }

    #[test]
    fn lying_lengths_are_malformed_with_their_offset() {
        let payload = snack_shop().encode().unwrap();
        let body = body_of(&payload);
        // The name claims 26 characters, so every later object is read off by one.
        let longer = with_crc(&body.replacen("5915Lao", "5916Lao", 1));
        let error = MerchantQr::parse(&longer).unwrap_err();
        assert_eq!(error.code(), "QR_MALFORMED", "{error}");
        // The last object claims more than the payload holds.
        let overrun = with_crc(&format!("{body}6299ab"));
        let error = MerchantQr::parse(&overrun).unwrap_err();
        let offset = body.chars().count() + 2;
        assert!(
            matches!(error, QrError::Malformed { offset: o, .. } if o == offset),
            "{error}"
        );
        let letters = with_crc(&body.replacen("5915Lao", "59x5Lao", 1));
        assert_eq!(
            MerchantQr::parse(&letters).unwrap_err().code(),
            "QR_MALFORMED"
        );
        let twice = with_crc(&format!("{body}6008Shenzhen"));
        assert!(MerchantQr::parse(&twice)
            .unwrap_err()
            .to_string()
            .contains("twice"));
    }

    #[test]
    fn a_request_with_two_ecny_templates_is_refused_not_read_by_the_first() {
        let payload = snack_shop().encode().unwrap();
        let other = MerchantQr {
            merchant: MerchantId(43),
            ..snack_shop()
        }
        .account_template();
        let two = with_crc(&format!(
            "{}27{:02}{other}",
            body_of(&payload),
            other.chars().count()
        ));
        let error = MerchantQr::parse(&two).unwrap_err();
        assert_eq!(error.code(), "QR_MALFORMED", "{error}");
        assert!(error.to_string().contains("second"), "{error}");
    }

    #[test]
    fn field_formats_are_checked() {
        let body = body_of(&snack_shop_order().encode().unwrap()).to_string();
        let bad_amounts = [
            "+6.60",
            "66.601",
            "0.00",
            "-6.60",
            "1,000",
            "66.",
            ".60",
            "6e2",
            "1 00",
            "¥66.60",
            "12345678901.00",
        ];
        for bad in bad_amounts {
            let object = format!("54{:02}{bad}", bad.chars().count());
            let altered = with_crc(&body.replacen("540566.60", &object, 1));
            let error = MerchantQr::parse(&altered).unwrap_err();
            assert_eq!(error.code(), "QR_MALFORMED", "{bad}: {error}");
        }
        let mcc = with_crc(&body.replacen("52045814", "520458a4", 1));
        assert_eq!(MerchantQr::parse(&mcc).unwrap_err().code(), "QR_MALFORMED");
        let long_name = MerchantQr {
            name: "A".repeat(26),
            ..snack_shop()
        };
        assert_eq!(long_name.encode().unwrap_err().code(), "QR_FIELD_INVALID");
        let free = MerchantQr {
            kind: QrKind::Dynamic {
                amount: Amount::ZERO,
                order_id: "1".into(),
                expires_at_s: 1,
            },
            ..snack_shop()
        };
        assert_eq!(free.encode().unwrap_err().code(), "QR_FIELD_INVALID");
        let city = MerchantQr {
            city: "深圳".into(),
            ..snack_shop()
        };
        assert_eq!(city.encode().unwrap_err().code(), "QR_FIELD_INVALID");
    }

    #[test]
    fn oversized_payloads_are_too_long() {
        let long = "0".repeat(QR_PAYLOAD_CHARS_MAX + 1);
        assert_eq!(MerchantQr::parse(&long).unwrap_err().code(), "QR_TOO_LONG");
        let wide = "最".repeat(QR_PAYLOAD_CHARS_MAX * 2);
        assert_eq!(MerchantQr::parse(&wide).unwrap_err().code(), "QR_TOO_LONG");
    }

    fn any_request() -> impl Strategy<Value = MerchantQr> {
        let kind = prop_oneof![
            Just(QrKind::Static),
            (1..=QR_AMOUNT_FEN_MAX, "[ -~]{1,25}", any::<u64>()).prop_map(
                |(fen, order_id, expires_at_s)| {
                    QrKind::Dynamic {
                        amount: Amount::from_fen(fen),
                        order_id,
                        expires_at_s,
                    }
                }
            ),
        ];
        (
            kind,
            any::<u16>(),
            any::<u32>(),
            "[ -~]{1,25}",
            "[ -~]{1,15}",
            0..=9999u16,
        )
            .prop_map(|(kind, operator, merchant, name, city, mcc)| MerchantQr {
                kind,
                operator: OperatorId(operator),
                merchant: MerchantId(merchant),
                name,
                city,
                mcc: Mcc::new(mcc).unwrap(),
            })
    }

    proptest! {
        #[test]
        fn every_valid_request_round_trips(qr in any_request()) {
            let payload = qr.encode().unwrap();
            prop_assert!(payload.len() <= QR_PAYLOAD_CHARS_MAX);
            prop_assert_eq!(MerchantQr::parse(&payload), Ok(qr));
        }

        #[test]
        fn any_single_changed_character_is_caught(
            qr in any_request(),
            position in any::<prop::sample::Index>(),
            replacement in 0x20u8..0x7f,
        ) {
            let payload = qr.encode().unwrap();
            let at = position.index(payload.len() - CRC_OBJECT_CHARS);
            prop_assume!(payload.as_bytes()[at] != replacement);
            let mut bytes = payload.into_bytes();
            bytes[at] = replacement;
            let altered = String::from_utf8(bytes).unwrap();
            prop_assert_eq!(MerchantQr::parse(&altered).unwrap_err().code(), "QR_CRC_MISMATCH");
        }

        #[test]
        fn arbitrary_text_never_panics(text in any::<String>()) {
            let _ = MerchantQr::parse(&text);
            let _ = data_objects(&text);
        }

        #[test]
        fn altered_payloads_with_a_fresh_crc_never_panic(
            qr in any_request(),
            position in any::<prop::sample::Index>(),
            replacement in any::<char>(),
        ) {
            let payload = qr.encode().unwrap();
            let mut chars: Vec<char> = body_of(&payload).chars().collect();
            let at = position.index(chars.len());
            chars[at] = replacement;
            let altered = with_crc(&chars.into_iter().collect::<String>());
            let _ = MerchantQr::parse(&altered);
        }

        #[test]
        fn digit_soup_never_panics(text in "[0-9A-Z.]{0,600}") {
            let _ = MerchantQr::parse(&with_crc(&text));
        }
    }
}
