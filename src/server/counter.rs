//! The operator's counter: what a branch clerk does for a wallet holder across the desk. A teller
//! opens a deposit account with the cash the holder brings and binds it to the wallet, in one
//! command under an idempotency key; a KYC officer records the holder's identity to raise the
//! wallet's class (class 1 only in person), while the holder may raise it remotely as far as
//! remote KYC goes (classes 3 and 2); the holder exchanges bank deposits into e-CNY by signing.
//!
//! Only the wallet's own operator's staff serve its holders here; another operator's wallet is
//! answered as unknown.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::amount::Amount;
use crate::command::{Command, Outcome};
use crate::ids::{AccountId, EventId, IdempotencyKey, WalletId};
use crate::parties::{Operation, Party};
use crate::wallet::WalletClass;

use super::extract::{blocking, AppState, Authenticated, IdempotencyKeyHeader, PathId};
use super::fields::{amount_field, unprocessable};
use super::gateway::{Gateway, GatewayError, HolderSignature, WalletResponse, WalletView};
use super::problem::{JsonBody, Problem};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/wallets/{id}/bank-account", post(open_bank_account))
        .route("/v1/wallets/{id}/kyc", post(upgrade_wallet))
        .route("/v1/wallets/{id}/exchange", post(exchange))
}

/// Paths these handlers serve, in the document's order.
pub const OPENAPI_PATHS: [&str; 3] = [
    "/v1/wallets/{id}/bank-account",
    "/v1/wallets/{id}/kyc",
    "/v1/wallets/{id}/exchange",
];

/// What the holder states at the counter to raise the wallet's class.
pub struct KycStatement {
    pub to: WalletClass,
    pub name: Option<String>,
    pub id_number: Option<String>,
    pub in_person: bool,
}

impl Gateway {
    /// Opens a deposit account at the wallet's operator with the holder's cash and binds it to the
    /// wallet, in one command: all of it happens or none. A retry with the same key answers the
    /// same account; a wallet keeps the account it has (`BANK_ACCOUNT_ALREADY_BOUND`).
    pub fn open_bank_account(
        &self,
        party: Party,
        wallet: WalletId,
        cash: Amount,
        key: IdempotencyKey,
    ) -> Result<(AccountId, EventId), GatewayError> {
        self.allow(Operation::OpenBankAccount, party)?;
        let operator = self.wallet_in_scope(party, wallet)?;
        let command = Command::OpenBankAccountWithCash { wallet, cash, key };
        match self.submit_one(operator, command)? {
            Outcome::BankAccount { account, deposit } => Ok((account, deposit)),
            other => unreachable!("opening a bank account answered {other:?}"),
        }
    }

    /// Raises the wallet's class with what the holder stated; the operator's rules say what each
    /// class needs (real name and ID, a bound bank account, a visit in person).
    pub fn upgrade_wallet(
        &self,
        party: Party,
        wallet: WalletId,
        statement: KycStatement,
    ) -> Result<WalletView, GatewayError> {
        self.allow(Operation::UpgradeWallet, party)?;
        let operator = self.wallet_in_scope(party, wallet)?;
        if matches!(party, Party::Holder(_))
            && (statement.in_person || statement.to == WalletClass::One)
        {
            return Err(GatewayError::Forbidden {
                code: "KYC_IN_PERSON_ONLY",
                detail: "class 1 and verification in person are a KYC officer's, at a branch; \
                         a holder upgrades remotely to class 3 or 2"
                    .into(),
            });
        }
        let command = Command::UpgradeWallet {
            wallet,
            to: statement.to,
            name: statement.name.map(Into::into),
            id_number: statement.id_number.map(Into::into),
            in_person: statement.in_person,
        };
        self.submit_one(operator, command)?;
        self.wallet(party, wallet)
    }

    /// Bank deposits into e-CNY, as the holder signed; a retry with the same key answers the
    /// first transfer.
    pub fn exchange(
        &self,
        party: Party,
        wallet: WalletId,
        amount: Amount,
        key: IdempotencyKey,
        signature: HolderSignature,
    ) -> Result<EventId, GatewayError> {
        self.allow(Operation::Exchange, party)?;
        let command = Command::Exchange {
            wallet,
            amount,
            key,
            auth: None,
        };
        match self.submit_signed(party, wallet, command, signature)? {
            Outcome::Transfer(id) => Ok(id),
            other => unreachable!("exchange answered {other:?}"),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BankAccountRequest {
    /// Yuan the holder pays in at the counter, e.g. "5000.00".
    pub cash: String,
}

#[derive(Serialize)]
pub struct BankAccountResponse {
    pub wallet: String,
    pub account: String,
    pub cash: String,
    /// The cash deposit's transfer.
    pub deposit: String,
}

async fn open_bank_account(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(wallet): PathId<WalletId>,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    JsonBody(body): JsonBody<BankAccountRequest>,
) -> Result<(StatusCode, Json<BankAccountResponse>), Problem> {
    let cash = amount_field("cash", &body.cash)?;
    let (account, deposit) = blocking(&app, move |gateway| {
        gateway.open_bank_account(caller, wallet, cash, key)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(BankAccountResponse {
            wallet: wallet.to_string(),
            account: account.to_string(),
            cash: cash.to_string(),
            deposit: deposit.to_string(),
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KycRequest {
    /// The class to reach: 3, 2 or 1.
    pub class: u8,
    /// The holder's real name; may be left out when the operator already has it.
    pub name: Option<String>,
    /// The 18-character resident ID number; may be left out when the operator already has it.
    pub id_number: Option<String>,
    /// Verified in person at a branch (class 1 needs it).
    pub in_person: Option<bool>,
}

async fn upgrade_wallet(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(wallet): PathId<WalletId>,
    JsonBody(body): JsonBody<KycRequest>,
) -> Result<Json<WalletResponse>, Problem> {
    let to = WalletClass::from_u8(body.class).ok_or_else(|| {
        unprocessable(
            "MALFORMED_CLASS",
            format!("class {} is not a wallet class (1 to 4)", body.class),
        )
    })?;
    let statement = KycStatement {
        to,
        name: body.name,
        id_number: body.id_number,
        in_person: body.in_person.unwrap_or(false),
    };
    let view = blocking(&app, move |gateway| {
        gateway.upgrade_wallet(caller, wallet, statement)
    })
    .await?;
    Ok(Json(view.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeRequest {
    /// Yuan of bank deposits to turn into e-CNY, e.g. "500.00".
    pub amount: String,
    /// The holder's SM2 public key (66 hex digits).
    pub public_key: String,
    /// SM2 signature (128 hex digits) over the Exchange command's signing bytes.
    pub signature: String,
    /// The last Unix millisecond the signature is good (see `GET /v1/context`).
    pub not_after_ms: u64,
}

#[derive(Serialize)]
pub struct ExchangeResponse {
    pub transfer: String,
    pub wallet: String,
    pub amount: String,
}

async fn exchange(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(wallet): PathId<WalletId>,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    JsonBody(body): JsonBody<ExchangeRequest>,
) -> Result<(StatusCode, Json<ExchangeResponse>), Problem> {
    let amount = amount_field("amount", &body.amount)?;
    let signature =
        super::fields::holder_signature(&body.public_key, &body.signature, body.not_after_ms)?;
    let transfer = blocking(&app, move |gateway| {
        gateway.exchange(caller, wallet, amount, key, signature)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(ExchangeResponse {
            transfer: transfer.to_string(),
            wallet: wallet.to_string(),
            amount: amount.to_string(),
        }),
    ))
}

// ----- the OpenAPI description of these endpoints -----

pub mod openapi {
    use serde_json::{json, Map, Value};

    use crate::server::openapi_doc::{
        body, idempotency, ok, path_param, responses, schema_ref, string,
    };

    pub fn schemas() -> Map<String, Value> {
        let object = |required: &[&str], properties: Value| json!({ "type": "object", "additionalProperties": false, "required": required, "properties": properties });
        let mut all = Map::new();
        let mut put = |name: &str, schema: Value| {
            all.insert(name.to_string(), schema);
        };
        put(
            "BankAccountRequest",
            object(
                &["cash"],
                json!({ "cash": { "type": "string", "example": "5000.00", "description": "yuan paid in at the counter" } }),
            ),
        );
        put(
            "BankAccount",
            json!({ "type": "object", "properties": {
                "wallet": string(), "account": { "type": "string", "example": "A0000000007" }, "cash": string()
            } }),
        );
        put(
            "KycRequest",
            object(
                &["class"],
                json!({
                    "class": { "type": "integer", "minimum": 1, "maximum": 3, "example": 2 },
                    "name": { "type": "string", "example": "Wang Wu" },
                    "id_number": { "type": "string", "pattern": "^[0-9]{17}[0-9X]$", "example": "110101199003074514", "description": "18-character resident ID (GB 11643): 17 digits and the check character" },
                    "in_person": { "type": "boolean", "description": "verified at a branch; class 1 needs it" }
                }),
            ),
        );
        put(
            "ExchangeRequest",
            object(
                &["amount", "public_key", "signature", "not_after_ms"],
                json!({
                    "amount": { "type": "string", "example": "500.00" },
                    "public_key": { "type": "string", "description": "the holder's SM2 public key (66 hex digits)" },
                    "signature": { "type": "string", "description": "SM2 signature (128 hex digits) over Command::Exchange's signing bytes, idempotency key included" },
                    "not_after_ms": { "type": "integer", "minimum": 0, "description": "the last Unix millisecond the signature is good; see GET /v1/context and docs/signing.md" }
                }),
            ),
        );
        put(
            "Exchange",
            json!({ "type": "object", "properties": {
                "transfer": string(), "wallet": string(), "amount": string()
            } }),
        );
        all
    }

    pub fn paths() -> Map<String, Value> {
        let bearer = json!([{ "bearer": [] }]);
        let wallet = path_param("id", "W0000000001");
        let mut all = Map::new();
        let mut put = |path: &str, item: Value| {
            all.insert(path.to_string(), item);
        };
        put(
            "/v1/wallets/{id}/bank-account",
            json!({ "post": {
                "summary": "At the counter: open a deposit account with the holder's cash (at most 50,000 yuan) and bind it to the wallet (a teller of the wallet's operator)",
                "security": bearer, "parameters": [wallet, idempotency()],
                "requestBody": body("BankAccountRequest"),
                "responses": responses(ok("201", "opened, funded and bound", schema_ref("BankAccount")), true,
                    &[("409", "BANK_ACCOUNT_ALREADY_BOUND")]),
            } }),
        );
        put(
            "/v1/wallets/{id}/kyc",
            json!({ "post": {
                "summary": "Raise the wallet's class with the holder's name, ID number (GB 11643) and, for class 1, a visit in person (a KYC officer of the wallet's operator; the holder remotely up to class 2)",
                "security": bearer, "parameters": [wallet],
                "requestBody": body("KycRequest"),
                "responses": responses(ok("200", "the wallet now", schema_ref("Wallet")), true,
                    &[("409", "IDENTITY_WALLET_LIMIT: this identity already holds its class-2-or-better wallets at this operator")]),
            } }),
        );
        put(
            "/v1/wallets/{id}/exchange",
            json!({ "post": {
                "summary": "Exchange bound bank deposits into e-CNY, as the holder signed",
                "security": bearer, "parameters": [wallet, idempotency()],
                "requestBody": body("ExchangeRequest"),
                "responses": responses(ok("201", "durable transfer (a replay answers the first one)", schema_ref("Exchange")), true,
                    &[("409", "IDEMPOTENCY_KEY_REUSED")]),
            } }),
        );
        all
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_documented_paths_are_the_served_ones() {
        let mut documented: Vec<String> = super::openapi::paths().keys().cloned().collect();
        let mut listed: Vec<String> = super::OPENAPI_PATHS.iter().map(|p| p.to_string()).collect();
        documented.sort();
        listed.sort();
        assert_eq!(documented, listed);
        for path in super::OPENAPI_PATHS {
            assert!(crate::server::openapi::PATHS.contains(&path), "{path}");
        }
    }
}
