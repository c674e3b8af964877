//! Why the secure-element applet refused a command. Each refusal has a stable code and the
//! ISO/IEC 7816-4 status word the card answers with; a refused command changes nothing.

use thiserror::Error;

use crate::amount::Amount;
use crate::certs::device::CertChainError;
use crate::codec::DecodeError;
use crate::offline::apdu::{ApduError, StatusWord};
use crate::time::china_date_time;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum OfflineError {
    #[error("malformed APDU: {0}")]
    Apdu(ApduError),
    #[error("extended-length APDUs are not supported; the protocol uses short APDUs")]
    ExtendedLengthUnsupported,
    #[error("class byte {0:#04X} is not supported")]
    ClaNotSupported(u8),
    #[error("instruction {0:#04X} is not supported")]
    InsNotSupported(u8),
    #[error("P1-P2 {p1:#04X} {p2:#04X} are not valid for this instruction")]
    IncorrectP1P2 { p1: u8, p2: u8 },
    #[error("this command takes {expected} data bytes, got {got}")]
    UnexpectedData { expected: usize, got: usize },
    #[error("a chained command of more than {max} bytes does not fit the card's buffer")]
    ChainTooLong { max: usize },
    #[error("a different command arrived in the middle of a command chain")]
    ChainBroken,
    #[error("the application is not selected")]
    NotSelected,
    #[error("no application with this identifier")]
    ApplicationNotFound,
    #[error("GET DATA tag {0:#06X} is unknown")]
    DataNotFound(u16),
    #[error("record {0} does not exist")]
    RecordNotFound(u8),
    #[error("malformed message: {0}")]
    Malformed(DecodeError),
    #[error("certificate chain refused: {0}")]
    Certificate(CertChainError),
    #[error("the {0} signature does not verify")]
    SignatureInvalid(&'static str),
    #[error("this secure element is blocked by the central bank; it can only sync")]
    DeviceBlocked,
    #[error("the phone's clock ({} Beijing time) is before the last trusted time ({})", china_date_time(u64::from(*time_s) * 1000), china_date_time(u64::from(*floor_s) * 1000))]
    TimeBeforeSync { time_s: u32, floor_s: u32 },
    #[error("amount must be positive, got {0}")]
    AmountNotPositive(Amount),
    #[error("{amount} is above the offline per-payment cap of {cap}")]
    PaymentCap { amount: Amount, cap: Amount },
    #[error("{amount} would exceed the daily cap of {cap} (already paid today: {spent})")]
    DailyCap {
        amount: Amount,
        cap: Amount,
        spent: Amount,
    },
    #[error("{payments} offline payments since the last sync; sync before paying again")]
    SyncRequired { payments: u16 },
    #[error("receiving {amount} would exceed the balance cap of {cap} (balance {balance})")]
    BalanceCap {
        amount: Amount,
        cap: Amount,
        balance: Amount,
    },
    #[error("the record log is full; sync before the next payment")]
    LogFull,
    #[error("{max} unloads wait for the center; sync before unloading again")]
    UnloadsPending { max: usize },
    #[error("insufficient balance: {balance}, needed {amount}")]
    InsufficientBalance { balance: Amount, amount: Amount },
    #[error("a secure element cannot pay itself")]
    SelfPayment,
    #[error("this challenge was already paid")]
    ChallengeReplayed,
    #[error("the record answers no challenge this secure element has outstanding")]
    NonceUnknown,
    #[error("the record's amount {record} differs from the challenge's {challenge}")]
    AmountMismatch { record: Amount, challenge: Amount },
    #[error("the message is addressed to another secure element")]
    WrongDevice,
    #[error("the record's payer is not the certificate's device")]
    PayerMismatch,
    #[error("the payer reused counter {0} for a different record: a cloned secure element")]
    CounterReused(u32),
    #[error("the transaction counter is exhausted")]
    CounterExhausted,
    #[error("sequence number {got} was expected to be {expected}")]
    SequenceOutOfOrder { got: u32, expected: u32 },
    #[error("sync confirmation time {} Beijing time is not after the last sync at {}", china_date_time(u64::from(*time_s) * 1000), china_date_time(u64::from(*last_sync_s) * 1000))]
    SyncStale { time_s: u32, last_sync_s: u32 },
    #[error("sync through record {through_seq} is outside {synced_through}..={last_seq}")]
    SyncOutOfRange {
        through_seq: u32,
        synced_through: u32,
        last_seq: u32,
    },
    #[error("no paid record with counter {0} is waiting for a receipt")]
    ReceiptUnexpected(u32),
    #[error("revocation list version {got} is not newer than {current}")]
    RevocationStale { got: u32, current: u32 },
    #[error("the device key does not match its certificate")]
    KeyMismatch,
    #[error("the phone's clock ({time_s} s) is past the offline period, which ends at {until_s} s: sync online first")]
    OfflinePeriodOver { time_s: u32, until_s: u32 },
    #[error("{amount} would exceed the cap of {cap} spent between two syncs (spent since the last: {spent})")]
    SpendCap {
        amount: Amount,
        cap: Amount,
        spent: Amount,
    },
    #[error("the challenge was not made for this card in this tap")]
    ChallengeNotBound,
    #[error(
        "the challenge's time {challenge_s} s and this tap's time {time_s} s are too far apart"
    )]
    ChallengeStale { challenge_s: u32, time_s: u32 },
    #[error("this card has already paid once in this tap; take it away and tap again")]
    OnePaymentPerTap,
    #[error("the order answers no attestation this card made in this session")]
    NotAttested,
}

impl OfflineError {
    /// Machine-readable code; stable across releases, unlike the message.
    pub fn code(&self) -> &'static str {
        use OfflineError::*;
        match self {
            Apdu(error) => error.code(),
            ExtendedLengthUnsupported => "APDU_EXTENDED_UNSUPPORTED",
            ClaNotSupported(_) => "APDU_CLA_NOT_SUPPORTED",
            InsNotSupported(_) => "APDU_INS_NOT_SUPPORTED",
            IncorrectP1P2 { .. } => "APDU_INCORRECT_P1P2",
            UnexpectedData { .. } => "APDU_UNEXPECTED_DATA",
            ChainTooLong { .. } => "APDU_CHAIN_TOO_LONG",
            ChainBroken => "APDU_CHAIN_BROKEN",
            NotSelected => "APPLET_NOT_SELECTED",
            ApplicationNotFound => "APPLET_NOT_FOUND",
            DataNotFound(_) => "DATA_NOT_FOUND",
            RecordNotFound(_) => "RECORD_NOT_FOUND",
            Malformed(_) => "OFFLINE_MESSAGE_MALFORMED",
            Certificate(error) => error.code(),
            SignatureInvalid(_) => "OFFLINE_SIGNATURE_INVALID",
            DeviceBlocked => "OFFLINE_DEVICE_BLOCKED",
            TimeBeforeSync { .. } => "OFFLINE_TIME_BEFORE_SYNC",
            AmountNotPositive(_) => "AMOUNT_NOT_POSITIVE",
            PaymentCap { .. } => "OFFLINE_PAYMENT_CAP",
            DailyCap { .. } => "OFFLINE_DAILY_CAP",
            SyncRequired { .. } => "OFFLINE_SYNC_REQUIRED",
            BalanceCap { .. } => "OFFLINE_BALANCE_CAP",
            LogFull => "OFFLINE_LOG_FULL",
            UnloadsPending { .. } => "OFFLINE_UNLOADS_PENDING",
            InsufficientBalance { .. } => "OFFLINE_INSUFFICIENT_BALANCE",
            SelfPayment => "OFFLINE_SELF_PAYMENT",
            ChallengeReplayed => "OFFLINE_CHALLENGE_REPLAYED",
            NonceUnknown => "OFFLINE_NONCE_UNKNOWN",
            AmountMismatch { .. } => "OFFLINE_AMOUNT_MISMATCH",
            WrongDevice => "OFFLINE_WRONG_DEVICE",
            PayerMismatch => "OFFLINE_PAYER_MISMATCH",
            CounterReused(_) => "OFFLINE_COUNTER_REUSED",
            CounterExhausted => "OFFLINE_COUNTER_EXHAUSTED",
            SequenceOutOfOrder { .. } => "OFFLINE_SEQUENCE_OUT_OF_ORDER",
            SyncStale { .. } => "OFFLINE_SYNC_STALE",
            SyncOutOfRange { .. } => "OFFLINE_SYNC_OUT_OF_RANGE",
            ReceiptUnexpected(_) => "OFFLINE_RECEIPT_UNEXPECTED",
            RevocationStale { .. } => "OFFLINE_REVOCATION_STALE",
            KeyMismatch => "PERSONALIZATION_KEY_MISMATCH",
            OfflinePeriodOver { .. } => "OFFLINE_PERIOD_OVER",
            SpendCap { .. } => "OFFLINE_SPEND_CAP",
            ChallengeNotBound => "OFFLINE_CHALLENGE_NOT_BOUND",
            ChallengeStale { .. } => "OFFLINE_CHALLENGE_STALE",
            OnePaymentPerTap => "OFFLINE_ONE_PAYMENT_PER_TAP",
            NotAttested => "OFFLINE_NOT_ATTESTED",
        }
    }

    /// The status word the card answers with.
    pub fn status_word(&self) -> StatusWord {
        use OfflineError::*;
        match self {
            Apdu(_) | ExtendedLengthUnsupported | UnexpectedData { .. } => StatusWord::WRONG_LENGTH,
            ClaNotSupported(_) => StatusWord::CLA_NOT_SUPPORTED,
            InsNotSupported(_) => StatusWord::INS_NOT_SUPPORTED,
            IncorrectP1P2 { .. } => StatusWord::INCORRECT_P1_P2,
            ChainBroken => StatusWord::LAST_COMMAND_OF_CHAIN_EXPECTED,
            ApplicationNotFound => StatusWord::APPLICATION_NOT_FOUND,
            DataNotFound(_) | ReceiptUnexpected(_) => StatusWord::REFERENCED_DATA_NOT_FOUND,
            RecordNotFound(_) => StatusWord::RECORD_NOT_FOUND,
            Malformed(_)
            | AmountNotPositive(_)
            | AmountMismatch { .. }
            | WrongDevice
            | PayerMismatch
            | ChallengeNotBound => StatusWord::INCORRECT_DATA,
            Certificate(_) | SignatureInvalid(_) | KeyMismatch => {
                StatusWord::SECURITY_STATUS_NOT_SATISFIED
            }
            DeviceBlocked => StatusWord::AUTHENTICATION_METHOD_BLOCKED,
            ChainTooLong { .. }
            | PaymentCap { .. }
            | DailyCap { .. }
            | SyncRequired { .. }
            | BalanceCap { .. }
            | LogFull
            | SpendCap { .. }
            | UnloadsPending { .. } => StatusWord::NOT_ENOUGH_MEMORY,
            NotSelected
            | TimeBeforeSync { .. }
            | InsufficientBalance { .. }
            | SelfPayment
            | ChallengeReplayed
            | NonceUnknown
            | CounterReused(_)
            | CounterExhausted
            | SequenceOutOfOrder { .. }
            | SyncStale { .. }
            | SyncOutOfRange { .. }
            | RevocationStale { .. }
            | OfflinePeriodOver { .. }
            | ChallengeStale { .. }
            | OnePaymentPerTap
            | NotAttested => StatusWord::CONDITIONS_OF_USE_NOT_SATISFIED,
        }
    }
}

/// A card refusal in plain words, from the stable code the card reports: what a phone shows its
/// holder. The card's own message carries the amounts; this needs only the code.
pub fn refusal_in_words(code: &str) -> Option<&'static str> {
    Some(match code {
        "OFFLINE_PAYMENT_CAP" => "the amount is above the card's limit for one offline payment",
        "OFFLINE_DAILY_CAP" => "the card's offline spending limit for today is used up",
        "OFFLINE_SYNC_REQUIRED" | "OFFLINE_LOG_FULL" | "OFFLINE_UNLOADS_PENDING" => {
            "the card must go online and sync before it pays again"
        }
        "OFFLINE_BALANCE_CAP" => "the receiving card would hold more than its balance limit",
        "OFFLINE_INSUFFICIENT_BALANCE" => "the card does not hold enough",
        "OFFLINE_DEVICE_BLOCKED" => "the card is blocked by the central bank",
        "OFFLINE_TIME_BEFORE_SYNC" => "the phone's clock is behind the card's last trusted time",
        "OFFLINE_SELF_PAYMENT" => "a card cannot pay itself",
        "AMOUNT_NOT_POSITIVE" => "the amount must be above zero",
        "CERT_REVOKED" => "the other card is on the central bank's revocation list",
        "CERT_EXPIRED" | "CERT_NOT_YET_VALID" => "the other card's certificate is not valid now",
        "CERT_SIGNATURE_INVALID" | "CERT_WRONG_ISSUER" | "CERT_WRONG_SUBJECT" => {
            "the other card's certificate does not check out"
        }
        "OFFLINE_SIGNATURE_INVALID" => "a signature from the other card does not verify",
        _ => return None,
    })
}

impl From<ApduError> for OfflineError {
    fn from(error: ApduError) -> OfflineError {
        OfflineError::Apdu(error)
    }
}

impl From<DecodeError> for OfflineError {
    fn from(error: DecodeError) -> OfflineError {
        OfflineError::Malformed(error)
    }
}

impl From<CertChainError> for OfflineError {
    fn from(error: CertChainError) -> OfflineError {
        OfflineError::Certificate(error)
    }
}
