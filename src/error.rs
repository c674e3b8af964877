//! Why a command was refused. Every variant has a stable code that the API, the CLI and web pages
//! all show the same way; a refused command moves nothing.

use std::fmt;

use thiserror::Error;

use crate::amount::Amount;
use crate::channels::payment_code::CodeError;
use crate::ids::{
    AccountId, CampaignId, ContractId, DeviceId, EventId, IdentityLookupId, MerchantId, OperatorId,
    StaffId, SubWalletId, WalletId,
};
use crate::programs::campaign::Ineligible;
use crate::programs::{CampaignError, LotteryError};
use crate::signing::SigningContext;
use crate::time::china_date_time;
use crate::wallet::class::{WalletClass, WalletStatus};

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CommandError {
    #[error("amount must be positive, got {0}")]
    AmountNotPositive(Amount),
    #[error("amount {0} is above the largest single command amount")]
    AmountTooLarge(Amount),
    #[error("unknown operator {0}")]
    UnknownOperator(OperatorId),
    #[error(
        "operator {0} is suspended by the central bank: its holders may still take their money out"
    )]
    OperatorSuspended(OperatorId),
    #[error("operator {0} already exists")]
    OperatorExists(OperatorId),
    #[error("unknown wallet {0}")]
    UnknownWallet(WalletId),
    #[error("wallet {0} already exists")]
    WalletExists(WalletId),
    #[error("no wallet is registered for phone number {0}")]
    UnknownPhone(String),
    #[error("this phone number already has a wallet at this operator")]
    PhoneTaken,
    #[error("{0:?} is not a mainland mobile number (11 digits starting with 1)")]
    MalformedPhone(String),
    #[error("unknown account {0}")]
    UnknownAccount(AccountId),
    #[error("wallet {wallet} is {status}; unfreeze it first")]
    WalletFrozen {
        wallet: WalletId,
        status: WalletStatus,
    },
    #[error("wallet {0} is closed")]
    WalletClosed(WalletId),
    #[error("a wallet cannot pay itself")]
    SameWallet,
    #[error("insufficient funds: available {available}, needed {needed}")]
    InsufficientFunds { available: Amount, needed: Amount },
    #[error("payment of {amount} is above the class {class} single-payment limit of {limit}")]
    LimitSinglePayment {
        class: WalletClass,
        amount: Amount,
        limit: Amount,
    },
    #[error("payment of {amount} would exceed the class {class} daily limit of {limit} (already paid today: {used})")]
    LimitDaily {
        class: WalletClass,
        amount: Amount,
        limit: Amount,
        used: Amount,
    },
    #[error("payment of {amount} would exceed the class {class} annual limit of {limit} (already paid this year: {used})")]
    LimitAnnual {
        class: WalletClass,
        amount: Amount,
        limit: Amount,
        used: Amount,
    },
    #[error("receiving {amount} would take wallet {wallet} above its class {class} balance cap of {limit} (balance {balance})")]
    LimitBalanceCap {
        wallet: WalletId,
        class: WalletClass,
        amount: Amount,
        limit: Amount,
        balance: Amount,
    },
    #[error("class {to} needs {missing}")]
    KycIncomplete {
        to: WalletClass,
        missing: &'static str,
    },
    #[error(
        "wallet is already class {current}; a wallet moves up from class 4 towards class 1 only"
    )]
    ClassNotAnUpgrade { current: WalletClass },
    #[error("wallet {0} has no bound bank account; bind one first")]
    NoBoundBankAccount(WalletId),
    #[error("operator {operator} has reserves of {available}, needs {needed}")]
    InsufficientReserves {
        operator: OperatorId,
        available: Amount,
        needed: Amount,
    },
    #[error(
        "operator {operator} may redeem at most {backing} (the reserves it gave up), asked {asked}"
    )]
    RedemptionExceedsBacking {
        operator: OperatorId,
        backing: Amount,
        asked: Amount,
    },
    #[error("operator {operator} vault holds {available}, needs {needed}")]
    VaultInsufficient {
        operator: OperatorId,
        available: Amount,
        needed: Amount,
    },
    #[error("wallet {wallet} belongs to operator {owner}, not {caller}")]
    NotYourWallet {
        wallet: WalletId,
        owner: OperatorId,
        caller: OperatorId,
    },
    #[error("this command may only come from the central bank")]
    CentralBankOnly,
    #[error("the signature does not verify under the wallet's registered key")]
    SignatureInvalid,
    #[error("this command must be signed by the paying wallet's key")]
    SignatureMissing,
    /// The registration center's own refusal of a command that moves a holder's money without
    /// the holder's signature, whoever submitted it.
    #[error("the registration center moves {wallet}'s money only on its holder's signature, and this command carries none")]
    SignatureRequired { wallet: WalletId },
    #[error("the signature's window closed at {not_after_ms} ms (now {now_ms} ms); sign again")]
    SignatureExpired { not_after_ms: u64, now_ms: u64 },
    #[error("the signature stays good until {not_after_ms} ms, more than {max_min} minutes after now ({now_ms} ms)", max_min = crate::signing::SIGNATURE_WINDOW_MS_MAX / 60_000)]
    SignatureWindowTooLong { not_after_ms: u64, now_ms: u64 },
    #[error("the signature is for deployment {} at {}; this is deployment {} at {}", signed.deployment, signed.operator, here.deployment, here.operator)]
    SignatureWrongContext {
        signed: SigningContext,
        here: SigningContext,
    },
    #[error("the operator batch signature does not verify")]
    BatchSignatureInvalid,
    #[error("the batch does not decode: {0}")]
    MalformedBatch(String),
    #[error("idempotency key was used before for a different command (first result: {first})")]
    IdempotencyKeyReused { first: String },
    #[error("unknown pending transfer {0}")]
    PendingNotFound(EventId),
    #[error("no transfer {0} that this caller is a party to")]
    UnknownTransfer(EventId),
    #[error("pending transfer {0} was already posted, voided or expired")]
    PendingAlreadyResolved(EventId),
    #[error("transfer {0} is not a pending transfer")]
    NotPending(EventId),
    #[error("accounts are in different ledgers; a conversion is two linked transfers")]
    LedgerMismatch,
    #[error("wallet {0} still has a balance; close returns it to the bound bank account")]
    WalletNotEmpty(WalletId),
    #[error("balance overflow")]
    Overflow,
    #[error("unknown secure element {0}")]
    UnknownDevice(DeviceId),
    #[error("secure element {0} is already registered")]
    DeviceExists(DeviceId),
    #[error("secure element {0} is blocked")]
    DeviceBlocked(DeviceId),
    #[error("load {got} for secure element {device} is out of sequence; the next is {expected}")]
    LoadOutOfSequence {
        device: DeviceId,
        expected: u32,
        got: u32,
    },
    #[error("loading would take secure element {device} above its offline balance cap of {cap}")]
    OfflineBalanceCap { device: DeviceId, cap: Amount },
    #[error("secure element {0} is neither payer nor payee of a record it reported")]
    NotYourRecord(DeviceId),
    #[error("secure element {0} has no sync open with this nonce; begin a sync and attest over its nonce")]
    SyncNonceUnknown(DeviceId),
    #[error("the entries of secure element {0}'s sync are not the ones it attested")]
    SyncNotAttested(DeviceId),
    #[error("secure element {device} is believed to hold {believed}; it cannot unload {amount} (sync it first)")]
    UnloadAboveBelieved {
        device: DeviceId,
        believed: Amount,
        amount: Amount,
    },
    #[error("unknown merchant {0}")]
    UnknownMerchant(MerchantId),
    #[error("merchant {merchant} belongs to operator {owner}, not {caller}")]
    NotYourMerchant {
        merchant: MerchantId,
        owner: OperatorId,
        caller: OperatorId,
    },
    #[error("a merchant settles into a class 2 or better wallet (bank account bound); {wallet} is class {class}")]
    MerchantWalletUnverified {
        wallet: WalletId,
        class: WalletClass,
    },
    #[error("merchant name must be 1 to {max} characters")]
    MalformedMerchantName { max: usize },
    #[error("merchant {merchant} has no terminal {terminal}")]
    UnknownTerminal { merchant: MerchantId, terminal: u16 },
    #[error("{0}")]
    TerminalKindWrong(&'static str),
    #[error("order reference {0:?} must be 1 to 25 printable ASCII characters")]
    MalformedOrderReference(String),
    #[error("merchant {merchant} already has an order {reference:?}")]
    OrderExists {
        merchant: MerchantId,
        reference: String,
    },
    #[error("merchant {merchant} has no order {reference:?}")]
    UnknownOrder {
        merchant: MerchantId,
        reference: String,
    },
    #[error("order {reference:?} is already paid by transfer {transfer}")]
    OrderAlreadyPaid {
        reference: String,
        transfer: EventId,
    },
    #[error("order {reference:?} expired; ask the merchant for a new one")]
    OrderExpired { reference: String },
    #[error("order {reference:?} is for {expected}, not {got}")]
    OrderAmountMismatch {
        reference: String,
        expected: Amount,
        got: Amount,
    },
    #[error("transfer {0} is not a payment to a merchant")]
    NotAMerchantPayment(EventId),
    #[error("payment {payment} has {refundable} left to refund; asked {asked}")]
    RefundExceedsPayment {
        payment: EventId,
        refundable: Amount,
        asked: Amount,
    },
    #[error("unknown sub-wallet {0}")]
    UnknownSubWallet(SubWalletId),
    #[error("sub-wallet {0} is closed")]
    SubWalletClosed(SubWalletId),
    #[error("sub-wallet {sub_wallet} was not pushed to merchant {merchant}")]
    NotYourSubWallet {
        sub_wallet: SubWalletId,
        merchant: MerchantId,
    },
    #[error("charge of {amount} is above sub-wallet {sub_wallet}'s per-payment limit of {limit}")]
    SubWalletLimitSingle {
        sub_wallet: SubWalletId,
        amount: Amount,
        limit: Amount,
    },
    #[error("charge of {amount} would exceed sub-wallet {sub_wallet}'s daily limit of {limit} (already charged today: {used})")]
    SubWalletLimitDaily {
        sub_wallet: SubWalletId,
        amount: Amount,
        limit: Amount,
        used: Amount,
    },
    #[error("sub-wallet limits must be positive and the per-payment limit at most the daily one")]
    SubWalletLimitsInvalid,
    #[error("{0}")]
    ChannelMismatch(&'static str),
    #[error("a merchant's printed QR carries no amount: the payer enters it")]
    AmountRequired,
    #[error(
        "secure element {0} is owed nothing at the counter: no payment of it is proven uncredited"
    )]
    NothingOwedAtCounter(DeviceId),
    #[error("{field} is {bytes} bytes; at most {max}")]
    TextTooLong {
        field: &'static str,
        bytes: usize,
        max: usize,
    },
    #[error("unknown contract {0}")]
    UnknownContract(ContractId),
    #[error("contract terms refused: {0}")]
    ContractTermsInvalid(&'static str),
    #[error(
        "{units} units at {unit_price} each is more than the largest amount a contract may hold"
    )]
    ContractFundingTooLarge { units: u32, unit_price: Amount },
    #[error("contract {contract} is {status}")]
    ContractNotActive {
        contract: ContractId,
        status: &'static str,
    },
    #[error("contract {contract} holds {holding}; it cannot release {asked}")]
    ContractExceedsHoldings {
        contract: ContractId,
        holding: Amount,
        asked: Amount,
    },
    #[error("{0}")]
    ContractTemplateMismatch(&'static str),
    #[error("wallet {wallet} is not a party to contract {contract}")]
    NotAContractParty {
        contract: ContractId,
        wallet: WalletId,
    },
    #[error("the payment request names merchant {merchant} at operator {stated}, but that merchant is at {actual}")]
    RequestMerchantMismatch {
        merchant: MerchantId,
        stated: OperatorId,
        actual: OperatorId,
    },
    /// A campaign's terms refused; the code is the campaign's own (`CAMPAIGN_BUDGET_MISMATCH`, …).
    #[error("{0}")]
    Campaign(CampaignError),
    /// A registration or draw refused by the lottery; the code is the lottery's own
    /// (`REGISTRATION_NOT_OPEN`, `SEED_COMMITMENT_MISMATCH`, …).
    #[error("{0}")]
    Lottery(LotteryError),
    #[error("unknown red-packet campaign {0}")]
    UnknownCampaign(CampaignId),
    #[error("campaign {0} already exists with other terms")]
    CampaignExists(CampaignId),
    #[error("campaign ids are assigned in order: the next is {next}, not {got}")]
    CampaignIdNotNext { got: CampaignId, next: CampaignId },
    #[error("registration for campaign {campaign} closed at {} Beijing time: a campaign and its seed commitment are published before registration closes", china_date_time(*closes_at_ms))]
    CampaignTooLate {
        campaign: CampaignId,
        closes_at_ms: u64,
    },
    #[error("campaign {campaign} is already funded, by transfer {transfer}")]
    CampaignAlreadyFunded {
        campaign: CampaignId,
        transfer: EventId,
    },
    #[error("campaign {0} is not funded; its sponsor funds the whole budget before the draw")]
    CampaignNotFunded(CampaignId),
    #[error("campaign {0} has already been drawn")]
    CampaignAlreadyDrawn(CampaignId),
    #[error("campaign {0} has not been drawn yet: its sponsor reveals the seed after registration closes")]
    CampaignNotDrawn(CampaignId),
    #[error("the holder of wallet {wallet} has already registered for campaign {campaign} with wallet {registered}: one registration per person")]
    CampaignIdentityRegistered {
        campaign: CampaignId,
        wallet: WalletId,
        registered: WalletId,
    },
    #[error("campaign {campaign} ended at {} Beijing time (the end of its packets' validity)", china_date_time(*closed_at_ms))]
    CampaignEnded {
        campaign: CampaignId,
        closed_at_ms: u64,
    },
    #[error("wallet {wallet} sponsors campaign {campaign}, which has not ended; its pool comes back to this wallet when it does")]
    WalletSponsorsCampaign {
        wallet: WalletId,
        campaign: CampaignId,
    },
    #[error("insufficient funds: available {available}, needed {needed}; red packet {campaign} #{packet}: {reason}")]
    RedPacketNotUsable {
        available: Amount,
        needed: Amount,
        campaign: CampaignId,
        packet: u32,
        reason: PacketUnusable,
    },
    #[error("only a wallet's operator holds its holder's identity; wallet {wallet} is at {owner}")]
    IdentityAtOperatorOnly { wallet: WalletId, owner: OperatorId },
    #[error("a de-anonymization states its legal reason: 1 to {max} bytes of printable text")]
    DeanonymizationReasonInvalid { max: usize },
    #[error("unknown de-anonymization {0}")]
    UnknownIdentityLookup(IdentityLookupId),
    #[error("unknown staff member {0}")]
    UnknownStaff(StaffId),
    #[error(
        "a staff credential's label is 1 to {max} bytes of printable text (a desk or badge number)"
    )]
    StaffLabelInvalid { max: usize },
    #[error("an operator registers at most {max} staff members")]
    StaffLimitReached { max: usize },
    #[error("this credential was revoked")]
    CredentialRevoked,
    #[error("a merchant has at most {max} terminals")]
    TerminalLimitReached { max: usize },
    #[error("{0:?} is not a resident ID number: 17 digits and a GB 11643 check character (a digit or X)")]
    IdNumberInvalid(String),
    #[error(
        "this identity already has {max} wallet(s) of class {class} or better at this operator"
    )]
    IdentityWalletLimit { class: WalletClass, max: usize },
    #[error("a holder's identity reaches the log only sealed by its operator's desk")]
    IdentityNotSealed,
    #[error("a sealed identity does not open under this operator's key")]
    IdentitySealBroken,
    #[error("one cash deposit at the counter is at most {max}; {cash} is for the branch's large-cash procedure")]
    CashDepositTooLarge { cash: Amount, max: Amount },
    #[error("wallet {wallet} already has deposit account {account} bound; exchange from it")]
    BankAccountAlreadyBound {
        wallet: WalletId,
        account: AccountId,
    },
    /// A payment code refused at the log: stale, or already used; the code is the code's own.
    #[error("{0}")]
    PaymentCode(CodeError),
    #[error("a payment code pays at most {cap} without the holder's confirmation; {amount} asked")]
    LimitPasswordFree { amount: Amount, cap: Amount },
}

impl CommandError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        use CommandError::*;
        match self {
            AmountNotPositive(_) => "AMOUNT_NOT_POSITIVE",
            AmountTooLarge(_) => "AMOUNT_TOO_LARGE",
            UnknownOperator(_) => "UNKNOWN_OPERATOR",
            OperatorSuspended(_) => "OPERATOR_SUSPENDED",
            OperatorExists(_) => "OPERATOR_EXISTS",
            UnknownWallet(_) => "UNKNOWN_WALLET",
            WalletExists(_) => "WALLET_EXISTS",
            UnknownPhone(_) => "UNKNOWN_PHONE",
            PhoneTaken => "PHONE_TAKEN",
            MalformedPhone(_) => "MALFORMED_PHONE",
            UnknownAccount(_) => "UNKNOWN_ACCOUNT",
            WalletFrozen { .. } => "WALLET_FROZEN",
            WalletClosed(_) => "WALLET_CLOSED",
            SameWallet => "SAME_WALLET",
            InsufficientFunds { .. } => "INSUFFICIENT_FUNDS",
            LimitSinglePayment { .. } => "LIMIT_SINGLE_PAYMENT",
            LimitDaily { .. } => "LIMIT_DAILY",
            LimitAnnual { .. } => "LIMIT_ANNUAL",
            LimitBalanceCap { .. } => "LIMIT_BALANCE_CAP",
            KycIncomplete { .. } => "KYC_INCOMPLETE",
            ClassNotAnUpgrade { .. } => "CLASS_NOT_AN_UPGRADE",
            NoBoundBankAccount(_) => "NO_BOUND_BANK_ACCOUNT",
            InsufficientReserves { .. } => "INSUFFICIENT_RESERVES",
            RedemptionExceedsBacking { .. } => "REDEMPTION_EXCEEDS_BACKING",
            VaultInsufficient { .. } => "VAULT_INSUFFICIENT",
            NotYourWallet { .. } => "NOT_YOUR_WALLET",
            CentralBankOnly => "CENTRAL_BANK_ONLY",
            SignatureInvalid => "SIGNATURE_INVALID",
            SignatureMissing => "SIGNATURE_MISSING",
            SignatureRequired { .. } => "SIGNATURE_REQUIRED",
            SignatureExpired { .. } => "SIGNATURE_EXPIRED",
            SignatureWindowTooLong { .. } => "SIGNATURE_WINDOW_TOO_LONG",
            SignatureWrongContext { .. } => "SIGNATURE_WRONG_CONTEXT",
            BatchSignatureInvalid => "BATCH_SIGNATURE_INVALID",
            MalformedBatch(_) => "MALFORMED_BATCH",
            IdempotencyKeyReused { .. } => "IDEMPOTENCY_KEY_REUSED",
            PendingNotFound(_) => "PENDING_NOT_FOUND",
            UnknownTransfer(_) => "UNKNOWN_TRANSFER",
            PendingAlreadyResolved(_) => "PENDING_ALREADY_RESOLVED",
            NotPending(_) => "NOT_PENDING",
            LedgerMismatch => "LEDGER_MISMATCH",
            WalletNotEmpty(_) => "WALLET_NOT_EMPTY",
            Overflow => "OVERFLOW",
            UnknownDevice(_) => "UNKNOWN_DEVICE",
            DeviceExists(_) => "DEVICE_EXISTS",
            DeviceBlocked(_) => "DEVICE_BLOCKED",
            LoadOutOfSequence { .. } => "LOAD_OUT_OF_SEQUENCE",
            OfflineBalanceCap { .. } => "OFFLINE_BALANCE_CAP",
            NotYourRecord(_) => "NOT_YOUR_RECORD",
            SyncNonceUnknown(_) => "SYNC_NONCE_UNKNOWN",
            SyncNotAttested(_) => "SYNC_NOT_ATTESTED",
            UnloadAboveBelieved { .. } => "OFFLINE_UNLOAD_ABOVE_BELIEVED",
            UnknownMerchant(_) => "UNKNOWN_MERCHANT",
            NotYourMerchant { .. } => "NOT_YOUR_MERCHANT",
            MerchantWalletUnverified { .. } => "MERCHANT_WALLET_UNVERIFIED",
            MalformedMerchantName { .. } => "MALFORMED_MERCHANT_NAME",
            UnknownTerminal { .. } => "UNKNOWN_TERMINAL",
            TerminalKindWrong(_) => "TERMINAL_KIND_WRONG",
            MalformedOrderReference(_) => "MALFORMED_ORDER_REFERENCE",
            OrderExists { .. } => "ORDER_EXISTS",
            UnknownOrder { .. } => "UNKNOWN_ORDER",
            OrderAlreadyPaid { .. } => "ORDER_ALREADY_PAID",
            OrderExpired { .. } => "ORDER_EXPIRED",
            OrderAmountMismatch { .. } => "ORDER_AMOUNT_MISMATCH",
            NotAMerchantPayment(_) => "NOT_A_MERCHANT_PAYMENT",
            RefundExceedsPayment { .. } => "REFUND_EXCEEDS_PAYMENT",
            UnknownSubWallet(_) => "UNKNOWN_SUB_WALLET",
            SubWalletClosed(_) => "SUB_WALLET_CLOSED",
            NotYourSubWallet { .. } => "NOT_YOUR_SUB_WALLET",
            SubWalletLimitSingle { .. } => "SUB_WALLET_LIMIT_SINGLE",
            SubWalletLimitDaily { .. } => "SUB_WALLET_LIMIT_DAILY",
            SubWalletLimitsInvalid => "SUB_WALLET_LIMITS_INVALID",
            ChannelMismatch(_) => "CHANNEL_MISMATCH",
            AmountRequired => "AMOUNT_REQUIRED",
            TextTooLong { .. } => "TEXT_TOO_LONG",
            NothingOwedAtCounter(_) => "NOTHING_OWED_AT_COUNTER",
            UnknownContract(_) => "UNKNOWN_CONTRACT",
            ContractTermsInvalid(_) => "CONTRACT_TERMS_INVALID",
            ContractFundingTooLarge { .. } => "CONTRACT_FUNDING_TOO_LARGE",
            ContractNotActive { .. } => "CONTRACT_NOT_ACTIVE",
            ContractExceedsHoldings { .. } => "CONTRACT_EXCEEDS_HOLDINGS",
            ContractTemplateMismatch(_) => "CONTRACT_TEMPLATE_MISMATCH",
            NotAContractParty { .. } => "NOT_A_CONTRACT_PARTY",
            RequestMerchantMismatch { .. } => "REQUEST_MERCHANT_MISMATCH",
            Campaign(error) => error.code(),
            Lottery(error) => error.code(),
            UnknownCampaign(_) => "UNKNOWN_CAMPAIGN",
            CampaignExists(_) => "CAMPAIGN_EXISTS",
            CampaignIdNotNext { .. } => "CAMPAIGN_ID_NOT_NEXT",
            CampaignTooLate { .. } => "CAMPAIGN_TOO_LATE",
            CampaignAlreadyFunded { .. } => "CAMPAIGN_ALREADY_FUNDED",
            CampaignNotFunded(_) => "CAMPAIGN_NOT_FUNDED",
            CampaignAlreadyDrawn(_) => "CAMPAIGN_ALREADY_DRAWN",
            CampaignIdentityRegistered { .. } => "CAMPAIGN_IDENTITY_REGISTERED",
            CampaignNotDrawn(_) => "CAMPAIGN_NOT_DRAWN",
            CampaignEnded { .. } => "CAMPAIGN_ENDED",
            WalletSponsorsCampaign { .. } => "WALLET_SPONSORS_CAMPAIGN",
            RedPacketNotUsable { reason, .. } => reason.code(),
            IdentityAtOperatorOnly { .. } => "IDENTITY_AT_OPERATOR_ONLY",
            DeanonymizationReasonInvalid { .. } => "DEANONYMIZATION_REASON_INVALID",
            UnknownIdentityLookup(_) => "UNKNOWN_IDENTITY_LOOKUP",
            UnknownStaff(_) => "UNKNOWN_STAFF",
            StaffLabelInvalid { .. } => "STAFF_LABEL_INVALID",
            StaffLimitReached { .. } => "STAFF_LIMIT_REACHED",
            CredentialRevoked => "CREDENTIAL_REVOKED",
            TerminalLimitReached { .. } => "TERMINAL_LIMIT_REACHED",
            IdNumberInvalid(_) => "ID_NUMBER_INVALID",
            IdentityWalletLimit { .. } => "IDENTITY_WALLET_LIMIT",
            IdentityNotSealed => "IDENTITY_NOT_SEALED",
            IdentitySealBroken => "IDENTITY_SEAL_BROKEN",
            CashDepositTooLarge { .. } => "CASH_DEPOSIT_TOO_LARGE",
            BankAccountAlreadyBound { .. } => "BANK_ACCOUNT_ALREADY_BOUND",
            PaymentCode(error) => error.code(),
            LimitPasswordFree { .. } => "LIMIT_PASSWORD_FREE",
        }
    }
}

/// Why a packet cannot pay here and now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketUnusable {
    Merchant(Ineligible),
    NotYetValid { from_ms: u64 },
    Expired { at_ms: u64 },
    UsedUp,
}

impl PacketUnusable {
    pub fn code(self) -> &'static str {
        match self {
            PacketUnusable::Merchant(Ineligible::Category(_)) => "RED_PACKET_CATEGORY_NOT_ELIGIBLE",
            PacketUnusable::Merchant(Ineligible::Region(_)) => "RED_PACKET_REGION_NOT_ELIGIBLE",
            PacketUnusable::NotYetValid { .. } => "RED_PACKET_NOT_YET_VALID",
            PacketUnusable::Expired { .. } => "RED_PACKET_EXPIRED",
            PacketUnusable::UsedUp => "RED_PACKET_USED_UP",
        }
    }
}

impl fmt::Display for PacketUnusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("packet not usable here: ")?;
        match self {
            PacketUnusable::Merchant(why) => write!(f, "{why}"),
            PacketUnusable::NotYetValid { from_ms } => {
                write!(
                    f,
                    "valid only from {} Beijing time",
                    china_date_time(*from_ms)
                )
            }
            PacketUnusable::Expired { at_ms } => {
                write!(f, "expired at {} Beijing time", china_date_time(*at_ms))
            }
            PacketUnusable::UsedUp => f.write_str("nothing left in it"),
        }
    }
}
