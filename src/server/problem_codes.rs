//! Which problem codes each operation answers with each status: the document lists them
//! (`x-problem-codes`), and a test checks that every code the HTTP tests meet is listed.
//!
//! The lists are built from what decides them: the authorization table's denials, the token
//! check, the request parsing every handler shares, each operation's scope checks and the domain
//! refusals of the commands it submits.

use serde_json::Value;

use crate::parties::Operation;

/// Refusals of the request's form, shared by every handler that takes ids, queries or a body.
const MALFORMED_REQUEST: &[&str] = &[
    "MALFORMED_ID",
    "MALFORMED_PATH",
    "MALFORMED_QUERY",
    "JSON_SYNTAX",
    "IDEMPOTENCY_KEY_MISSING",
    "IDEMPOTENCY_KEY_MALFORMED",
    "MALFORMED_DATE",
    "MALFORMED_FORMAT",
];
const TOKEN_REFUSALS: &[&str] = &["UNAUTHENTICATED", "CREDENTIAL_REVOKED", "SESSION_EXPIRED"];
/// What a holder-signed command may meet at the desk and in the state machine.
const SIGNED: &[&str] = &[
    "SIGNATURE_INVALID",
    "SIGNATURE_MISSING",
    "SIGNATURE_REQUIRED",
];
/// Domain refusals of a payment, wherever it comes from.
const PAYMENT_REFUSALS: &[&str] = &[
    "AMOUNT_NOT_POSITIVE",
    "AMOUNT_TOO_LARGE",
    "INSUFFICIENT_FUNDS",
    "LIMIT_SINGLE_PAYMENT",
    "LIMIT_DAILY",
    "LIMIT_ANNUAL",
    "LIMIT_BALANCE_CAP",
    "WALLET_FROZEN",
    "WALLET_CLOSED",
    "SAME_WALLET",
    "MALFORMED_AMOUNT",
    "MALFORMED_PUBLIC_KEY",
    "MALFORMED_SIGNATURE",
    "JSON_DATA",
    "TEXT_TOO_LONG",
];

/// The codes a 4xx or 5xx `status` of the operations served at `path` may carry; `response` is its
/// entry in the document, whose description may name more.
pub fn codes(operations: &[Operation], path: &str, status: &str, response: &Value) -> Vec<String> {
    let mut codes: Vec<&str> = Vec::new();
    match status {
        "400" => codes.extend(MALFORMED_REQUEST),
        "401" => codes.extend(TOKEN_REFUSALS),
        "403" => {
            for operation in operations {
                codes.extend(
                    operation
                        .denial_codes()
                        .into_iter()
                        .filter(|code| *code != "UNAUTHENTICATED"),
                );
            }
            codes.extend(scope_refusals(path));
        }
        "404" => codes.extend(unknowns(path)),
        "405" => codes.push("METHOD_NOT_ALLOWED"),
        "413" => codes.push("BODY_TOO_LARGE"),
        "415" => codes.push("CONTENT_TYPE_UNSUPPORTED"),
        "422" => codes.extend(["JSON_DATA", "TEXT_TOO_LONG"]),
        "429" => codes.push("TOO_MANY_AUTH_FAILURES"),
        "500" => codes.push("INTERNAL"),
        "503" => codes.extend(["NODE_STOPPED", "NODE_POISONED", "NOT_READY"]),
        _ => {}
    }
    for operation in operations {
        codes.extend(domain(*operation, status));
    }
    let mut all: Vec<String> = codes.into_iter().map(str::to_string).collect();
    // The description's own list (`CODE_A, CODE_B: why`) counts too.
    if let Some(text) = response["description"].as_str() {
        all.extend(
            text.split(|c: char| !(c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit()))
                .filter(|word| word.len() > 3 && word.contains('_'))
                .map(str::to_string),
        );
    }
    all.sort_unstable();
    all.dedup();
    all
}

/// A caller of the right kind that is not the named thing's own.
fn scope_refusals(path: &str) -> Vec<&'static str> {
    let mut codes = Vec::new();
    if path.starts_with("/v1/operators/{op}") {
        codes.push("NOT_YOUR_OPERATOR");
    }
    if path.starts_with("/v1/merchants/{m}") {
        codes.push("NOT_YOUR_MERCHANT");
    }
    if path.starts_with("/v1/contracts/{id}") {
        codes.push("NOT_A_CONTRACT_PARTY");
    }
    if path.starts_with("/v1/campaigns") {
        // Staff of an operator other than the sponsor's.
        codes.push("NOT_YOUR_OPERATOR");
    }
    codes
}

fn unknowns(path: &str) -> Vec<&'static str> {
    let mut codes = vec!["ROUTE_NOT_FOUND"];
    if path.contains("{op}") {
        codes.push("UNKNOWN_OPERATOR");
    }
    // A wallet the caller may not see is answered as unknown, wherever one is named.
    codes.push("UNKNOWN_WALLET");
    if path.contains("{m}") {
        codes.extend(["UNKNOWN_MERCHANT", "UNKNOWN_ORDER", "UNKNOWN_TERMINAL"]);
    }
    if path.contains("sub-wallet") {
        codes.push("UNKNOWN_SUB_WALLET");
    }
    if path.starts_with("/v1/contracts") {
        codes.push("UNKNOWN_CONTRACT");
    }
    if path.starts_with("/v1/campaigns/{c}") {
        codes.push("UNKNOWN_CAMPAIGN");
    }
    if path.contains("staff") {
        codes.push("UNKNOWN_STAFF");
    }
    if path.contains("refunds") {
        codes.push("NOT_A_MERCHANT_PAYMENT");
    }
    if path.contains("{d}") {
        codes.push("UNKNOWN_DEVICE");
    }
    codes
}

/// Each operation's own refusals, by status.
fn domain(operation: Operation, status: &str) -> &'static [&'static str] {
    use Operation::*;
    match (operation, status) {
        (OpenWallet, "403") => &[
            "SIGNATURE_INVALID",
            "SIGNATURE_MISSING",
            "SIGNATURE_EXPIRED",
            "SIGNATURE_WINDOW_TOO_LONG",
        ],
        (OpenWallet, "409") => &["PHONE_TAKEN"],
        (OpenWallet, "422") => &[
            "NOT_AFTER_MISSING",
            "MALFORMED_PHONE",
            "MALFORMED_PUBLIC_KEY",
            "MALFORMED_SIGNATURE",
        ],
        (OpenSession, "403") => &["SIGNATURE_INVALID"],
        (OpenSession, "409") => &["CHALLENGE_USED"],
        (SetCodePaymentCap, "422") => &[
            "MALFORMED_AMOUNT",
            "AMOUNT_NOT_POSITIVE",
            "AMOUNT_TOO_LARGE",
        ],
        (OpenSession, "422") => &[
            "CHALLENGE_INVALID",
            "CHALLENGE_EXPIRED",
            "MALFORMED_SIGNATURE",
        ],
        (
            Pay | PayRequest | Exchange | OpenSubWallet | SetSubWallet | OpenContract
            | ConfirmContract | CancelContract,
            "403",
        ) => SIGNED,
        (Pay | PayRequest | Exchange | OpenContract | ConfirmContract, "409") => &[
            "IDEMPOTENCY_KEY_REUSED",
            "ORDER_ALREADY_PAID",
            "CONTRACT_KEY_REUSED",
        ],
        (Pay, "422") => PAYMENT_REFUSALS,
        (PayRequest, "422") => &[
            "QR_TOO_LONG",
            "QR_CRC_MISMATCH",
            "QR_MALFORMED",
            "QR_MISSING_FIELD",
            "QR_UNSUPPORTED",
            "QR_EXPIRED",
            "QR_FIELD_INVALID",
            "MALFORMED_READ",
            "AMOUNT_REQUIRED",
            "REQUEST_MERCHANT_MISMATCH",
            "CHANNEL_MISMATCH",
            "INSUFFICIENT_FUNDS",
            "LIMIT_SINGLE_PAYMENT",
            "LIMIT_DAILY",
            "LIMIT_ANNUAL",
            "LIMIT_BALANCE_CAP",
            "WALLET_FROZEN",
            "WALLET_CLOSED",
            "MALFORMED_AMOUNT",
            "MALFORMED_PUBLIC_KEY",
            "MALFORMED_SIGNATURE",
        ],
        (OpenBankAccount, "422") => &[
            "CASH_DEPOSIT_TOO_LARGE",
            "MALFORMED_AMOUNT",
            "AMOUNT_NOT_POSITIVE",
            "AMOUNT_TOO_LARGE",
            "WALLET_FROZEN",
            "WALLET_CLOSED",
            "OVERFLOW",
        ],
        (Exchange, "422") => &[
            "NO_BOUND_BANK_ACCOUNT",
            "VAULT_INSUFFICIENT",
            "MALFORMED_AMOUNT",
            "AMOUNT_NOT_POSITIVE",
            "AMOUNT_TOO_LARGE",
            "WALLET_FROZEN",
            "WALLET_CLOSED",
            "OVERFLOW",
        ],
        (OpenBankAccount, "409") => &["BANK_ACCOUNT_ALREADY_BOUND", "IDEMPOTENCY_KEY_REUSED"],
        (UpgradeWallet, "403") => &["KYC_IN_PERSON_ONLY"],
        (UpgradeWallet, "409") => &["IDENTITY_WALLET_LIMIT"],
        (UpgradeWallet, "422") => &[
            "KYC_INCOMPLETE",
            "CLASS_NOT_AN_UPGRADE",
            "ID_NUMBER_INVALID",
            "MALFORMED_CLASS",
            "WALLET_CLOSED",
        ],
        (AddStaff, "422") => &[
            "MALFORMED_ROLE",
            "STAFF_LABEL_INVALID",
            "STAFF_LIMIT_REACHED",
        ],
        (RevokeStaff | ReplaceMerchantToken | ReplaceTerminalToken, "409") => {
            &["CREDENTIAL_REVOKED"]
        }
        (OnboardMerchant, "422") => &[
            "MERCHANT_WALLET_UNVERIFIED",
            "MALFORMED_MCC",
            "MALFORMED_REGION",
            "MERCHANT_NAME_INVALID",
        ],
        (AddTerminal, "422") => &["TERMINAL_LIMIT_REACHED", "MALFORMED_TERMINAL_KIND"],
        (CreateOrder, "409") => &["ORDER_EXISTS"],
        (CreateOrder, "422") => &[
            "ORDER_VALIDITY_OUT_OF_RANGE",
            "MALFORMED_AMOUNT",
            "ORDER_EXPIRED",
            "CHANNEL_MISMATCH",
        ],
        (ChargeCode, "409") => &["CODE_REUSED", "IDEMPOTENCY_KEY_REUSED"],
        (ChargeCode, "422") => &["CODE_MALFORMED", "CODE_STALE", "CODE_UNKNOWN"],
        (ChargeCode, "429") => &["CODE_RATE_LIMITED"],
        (ChargeCode, "503") => &["CODE_VERIFIER_FULL"],
        (ChargeSubWallet, "409") => &["IDEMPOTENCY_KEY_REUSED", "ORDER_ALREADY_PAID"],
        (ChargeSubWallet, "422") => &[
            "SUB_WALLET_LIMIT_SINGLE",
            "SUB_WALLET_LIMIT_DAILY",
            "SUB_WALLET_CLOSED",
            "MALFORMED_AMOUNT",
            "INSUFFICIENT_FUNDS",
        ],
        (Refund, "409") => &["IDEMPOTENCY_KEY_REUSED"],
        (Refund, "422") => &["REFUND_EXCEEDS_PAYMENT", "MALFORMED_AMOUNT"],
        (Deanonymize, "422") => &["DEANONYMIZATION_REASON_INVALID"],
        (AdmitOperator, "409") => &["OPERATOR_EXISTS"],
        (AdmitOperator, "422") => &["OPERATOR_NAME_INVALID"],
        (FundReserves | Issue | Redeem, "422") => &[
            "MALFORMED_AMOUNT",
            "AMOUNT_NOT_POSITIVE",
            "AMOUNT_TOO_LARGE",
            "INSUFFICIENT_RESERVES",
            "REDEMPTION_EXCEEDS_BACKING",
            "VAULT_INSUFFICIENT",
            "OVERFLOW",
        ],
        (Issue, "409") => &["OPERATOR_SUSPENDED"],
        (DepositBack | FreezeWallet | CloseWallet, "403") => &[
            "SIGNATURE_INVALID",
            "SIGNATURE_MISSING",
            "SIGNATURE_REQUIRED",
            "SIGNATURE_EXPIRED",
            "SIGNATURE_WINDOW_TOO_LONG",
            "NOT_YOUR_OPERATOR",
        ],
        (UnfreezeWallet, "403") => &["NOT_YOUR_OPERATOR"],
        (DepositBack, "409") => &["IDEMPOTENCY_KEY_REUSED", "OPERATOR_SUSPENDED"],
        (DepositBack, "422") => &[
            "NO_BOUND_BANK_ACCOUNT",
            "INSUFFICIENT_FUNDS",
            "MALFORMED_AMOUNT",
            "AMOUNT_NOT_POSITIVE",
            "AMOUNT_TOO_LARGE",
            "MALFORMED_PUBLIC_KEY",
            "MALFORMED_SIGNATURE",
            "WALLET_FROZEN",
            "WALLET_CLOSED",
            "OVERFLOW",
        ],
        (FreezeWallet | UnfreezeWallet | CloseWallet, "409") => &["OPERATOR_SUSPENDED"],
        (FreezeWallet | UnfreezeWallet | CloseWallet, "422") => &[
            "SIGNATURE_INCOMPLETE",
            "MALFORMED_PUBLIC_KEY",
            "MALFORMED_SIGNATURE",
            "WALLET_CLOSED",
            "WALLET_NOT_EMPTY",
            "NO_BOUND_BANK_ACCOUNT",
            "WALLET_SPONSORS_CAMPAIGN",
        ],
        (ReadHistory, "400") => &["CURSOR_INVALID", "MALFORMED_KIND"],
        (LookupPhone, "404") => &["UNKNOWN_PHONE"],
        (LookupPhone, "422") => &["MALFORMED_PHONE"],
        (LookupPhone, "429") => &["PHONE_LOOKUP_RATE_LIMITED"],
        (ReadPaymentCode, "422") => &["CODE_OPERATOR_OUT_OF_RANGE"],
        (OpenContract | ConfirmContract | CancelContract, "422") => &[
            "CONTRACT_TERMS_INVALID",
            "CONTRACT_NOT_ACTIVE",
            "CONTRACT_EXCEEDS_HOLDINGS",
            "MALFORMED_TEMPLATE",
            "MALFORMED_PARTY",
            "MALFORMED_AMOUNT",
            "INSUFFICIENT_FUNDS",
        ],
        (IssueDevice, "403") => &[
            "SIGNATURE_INVALID",
            "SIGNATURE_MISSING",
            "SIGNATURE_REQUIRED",
            "SIGNATURE_EXPIRED",
            "SIGNATURE_WINDOW_TOO_LONG",
            "SIGNATURE_WRONG_CONTEXT",
            "NOT_YOUR_WALLET",
        ],
        (IssueDevice, "409") => &["DEVICE_EXISTS"],
        (IssueDevice, "422") => &[
            "MALFORMED_PUBLIC_KEY",
            "MALFORMED_SIGNATURE",
            "MALFORMED_FORM",
            "MALFORMED_CAPS",
            "MALFORMED_AMOUNT",
            "FORM_WALLET_MISMATCH",
            "SIGNATURE_INCOMPLETE",
            "WALLET_FROZEN",
            "WALLET_CLOSED",
        ],
        (LoadDevice, "403") => &[
            "SIGNATURE_INVALID",
            "SIGNATURE_MISSING",
            "SIGNATURE_REQUIRED",
            "SIGNATURE_EXPIRED",
            "SIGNATURE_WINDOW_TOO_LONG",
            "SIGNATURE_WRONG_CONTEXT",
            "VISITOR_CARD_AT_COUNTER",
            "DEVICE_MISMATCH",
            "NOT_YOUR_OPERATOR",
        ],
        (LoadDevice, "422") => &[
            "MALFORMED_MESSAGE",
            "MALFORMED_AMOUNT",
            "MALFORMED_PUBLIC_KEY",
            "MALFORMED_SIGNATURE",
            "SIGNATURE_INCOMPLETE",
            "SYNC_NOT_ATTESTED",
            "DEVICE_BLOCKED",
            "LOAD_OUT_OF_SEQUENCE",
            "OFFLINE_BALANCE_CAP",
            "AMOUNT_NOT_POSITIVE",
            "AMOUNT_TOO_LARGE",
            "INSUFFICIENT_FUNDS",
            "LIMIT_DAILY",
            "LIMIT_ANNUAL",
            "WALLET_FROZEN",
            "WALLET_CLOSED",
        ],
        (UnloadDevice, "403") => &[
            "SIGNATURE_INVALID",
            "VISITOR_CARD_AT_COUNTER",
            "DEVICE_MISMATCH",
            "NOT_YOUR_OPERATOR",
        ],
        (UnloadDevice, "422") => &[
            "MALFORMED_MESSAGE",
            "DEVICE_BLOCKED",
            "OFFLINE_UNLOAD_ABOVE_BELIEVED",
            "LOAD_OUT_OF_SEQUENCE",
            "LIMIT_BALANCE_CAP",
            "AMOUNT_NOT_POSITIVE",
        ],
        (SyncDevice, "403") => &["SIGNATURE_INVALID", "DEVICE_MISMATCH"],
        (SyncDevice, "422") => &[
            "SYNC_NONCE_UNKNOWN",
            "SYNC_NOT_ATTESTED",
            "MALFORMED_MESSAGE",
        ],
        (BeginSync, "422") => &["DEVICE_BLOCKED"],
        (FundCampaign | RegisterForCampaign, "403") => &[
            "SIGNATURE_INVALID",
            "SIGNATURE_MISSING",
            "SIGNATURE_REQUIRED",
            "SIGNATURE_EXPIRED",
            "SIGNATURE_WINDOW_TOO_LONG",
        ],
        (CreateCampaign, "409") => &["CAMPAIGN_EXISTS"],
        (CreateCampaign, "422") => CAMPAIGN_TERMS_REFUSALS,
        (FundCampaign, "409") => &["CAMPAIGN_ALREADY_FUNDED"],
        (FundCampaign, "422") => &[
            "CAMPAIGN_ENDED",
            "INSUFFICIENT_FUNDS",
            "LIMIT_SINGLE_PAYMENT",
            "LIMIT_DAILY",
            "LIMIT_ANNUAL",
            "WALLET_FROZEN",
            "WALLET_CLOSED",
            "MALFORMED_PUBLIC_KEY",
            "MALFORMED_SIGNATURE",
        ],
        (RegisterForCampaign, "409") => &["CAMPAIGN_IDENTITY_REGISTERED"],
        (RegisterForCampaign, "422") => &[
            "REGISTRATION_NOT_OPEN",
            "OFFLINE_TRIAL_NOT_OFFERED",
            "REGISTRANTS_TOO_MANY",
            "WALLET_FROZEN",
            "WALLET_CLOSED",
            "MALFORMED_PUBLIC_KEY",
            "MALFORMED_SIGNATURE",
        ],
        (DrawCampaign, "409") => &["CAMPAIGN_ALREADY_DRAWN"],
        (DrawCampaign, "422") => &[
            "SEED_MALFORMED",
            "SEED_COMMITMENT_MISMATCH",
            "REGISTRATION_STILL_OPEN",
            "CAMPAIGN_NOT_FUNDED",
            "CAMPAIGN_ENDED",
        ],
        (ReadDraw, "409") => &["CAMPAIGN_NOT_DRAWN"],
        _ => &[],
    }
}

/// Why a campaign's terms are refused when it is published.
const CAMPAIGN_TERMS_REFUSALS: &[&str] = &[
    "CAMPAIGN_NO_PACKETS",
    "CAMPAIGN_TOO_MANY_PACKETS",
    "CAMPAIGN_PACKET_VALUE_NOT_POSITIVE",
    "CAMPAIGN_BUDGET_MISMATCH",
    "CAMPAIGN_BUDGET_TOO_LARGE",
    "CAMPAIGN_BAD_NAME",
    "CAMPAIGN_EMPTY_WINDOW",
    "CAMPAIGN_VALID_BEFORE_DRAW",
    "CAMPAIGN_REGION_OUTSIDE",
    "CAMPAIGN_TOO_MANY_ELIGIBLE",
    "CAMPAIGN_FILE_MALFORMED",
    "REGION_MALFORMED",
    "CAMPAIGN_ID_NOT_NEXT",
    "CAMPAIGN_TOO_LATE",
    "WALLET_FROZEN",
    "WALLET_CLOSED",
];
