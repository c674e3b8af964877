//! A holder's everyday operations on a running server: money back to the bound bank account, the
//! wallet's history (paged with a cursor, by day and kind), a lost phone reported (freeze) and the
//! wallet unfrozen at the counter, and the wallet closed with its balance returned to the bound
//! account. What moves or locks the holder's money is signed with the wallet's key; a teller may
//! freeze on the holder's call, and alone unfreezes, since whoever found the phone may hold the
//! key.
//!
//! A history never names the wallets that paid a merchant's settlement wallet: a merchant learns
//! what it was paid, never by whom.
//!
//! To pay a phone number, the payer's app asks for the wallet it opens: the payer's operator
//! asks each operator, which alone can match the number against its sealed directory (the
//! payee's operator answers). Each look-up is logged (operators and wallets, never the number)
//! and counted: a wallet makes at most `PHONE_LOOKUPS_PER_HOUR`, so numbers cannot be walked.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::amount::Amount;
use crate::command::{Command, Outcome};
use crate::error::CommandError;
use crate::ids::{EventId, IdempotencyKey, WalletId};
use crate::ledger::TransferKind;
use crate::parties::{Operation, Party};
use crate::wallet::WalletStatus;

use super::extract::{blocking, AppState, Authenticated, IdempotencyKeyHeader, Params, PathId};
use super::fields::{amount_field, holder_signature};
use super::gateway::{now_ms, staff_of, Gateway, GatewayError, HolderSignature, WalletResponse};
use super::problem::{JsonBody, Problem};

/// Entries one history page holds unless asked for fewer.
pub const HISTORY_PAGE_DEFAULT: usize = 50;
/// Most entries one history page holds.
pub const HISTORY_PAGE_MAX: usize = 200;
/// Phone look-ups one wallet may make in an hour, found or not.
pub const PHONE_LOOKUPS_PER_HOUR: u32 = 20;
const PHONE_LOOKUP_WINDOW_S: u64 = 3_600;
/// Wallets whose look-ups are counted at once; past it, counts of ended windows are dropped.
const PHONE_LOOKUP_WALLETS_MAX: usize = 100_000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/wallets/{id}/deposit-back", post(deposit_back))
        .route("/v1/wallets/{id}/history", get(history))
        .route("/v1/wallets/{id}/freeze", post(freeze))
        .route("/v1/wallets/{id}/unfreeze", post(unfreeze))
        .route("/v1/wallets/{id}/close", post(close))
        .route("/v1/wallets/{id}/phone-lookups", post(lookup_phone))
}

/// Paths these handlers serve, in the document's order.
pub const OPENAPI_PATHS: [&str; 6] = [
    "/v1/wallets/{id}/deposit-back",
    "/v1/wallets/{id}/history",
    "/v1/wallets/{id}/freeze",
    "/v1/wallets/{id}/unfreeze",
    "/v1/wallets/{id}/close",
    "/v1/wallets/{id}/phone-lookups",
];

/// Which part of a wallet's history to read.
#[derive(Clone, Copy, Debug, Default)]
pub struct HistoryQuery {
    /// The last entry of the previous page: this page starts just before it.
    pub cursor: Option<EventId>,
    /// China days, inclusive.
    pub from_day: Option<u32>,
    pub to_day: Option<u32>,
    pub kind: Option<TransferKind>,
    pub limit: usize,
}

/// One line of a wallet's history, as its reader may see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    pub transfer: EventId,
    pub kind: TransferKind,
    pub at_ms: u64,
    /// Into the wallet (true) or out of it.
    pub incoming: bool,
    pub amount: Amount,
    /// The other wallet, when there is one and the reader may know it.
    pub counterparty: Option<WalletId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryPage {
    pub entries: Vec<HistoryEntry>,
    /// Pass as `cursor` for the next, older page; none when this page is the last.
    pub next_cursor: Option<EventId>,
}

impl Gateway {
    /// e-CNY back into the bound bank account, as the holder signed; a retry with the same key
    /// answers the first transfer.
    pub fn deposit_back(
        &self,
        party: Party,
        wallet: WalletId,
        amount: Amount,
        key: IdempotencyKey,
        signature: HolderSignature,
    ) -> Result<EventId, GatewayError> {
        self.allow(Operation::DepositBack, party)?;
        let command = Command::DepositBack {
            wallet,
            amount,
            key,
            auth: None,
        };
        match self.submit_signed(party, wallet, command, signature)? {
            Outcome::Transfer(id) => Ok(id),
            other => unreachable!("deposit back answered {other:?}"),
        }
    }

    /// A page of the wallet's transfers, newest first, for its holder, its operator's staff or
    /// the central bank.
    pub fn history(
        &self,
        party: Party,
        wallet: WalletId,
        query: HistoryQuery,
    ) -> Result<HistoryPage, GatewayError> {
        self.allow(Operation::ReadHistory, party)?;
        self.wallet_in_scope(party, wallet)?;
        self.node.query(move |state| {
            let account = state.wallet(wallet)?.account;
            // A merchant's settlement wallet: its payers stay unnamed.
            let settles_a_merchant = state
                .acquiring()
                .merchants()
                .iter()
                .any(|merchant| merchant.wallet == wallet);
            let ledger = state.ledger();
            let transfers: Box<dyn Iterator<Item = _>> = match query.cursor {
                Some(cursor) => {
                    Box::new(ledger.history_after(account, cursor).ok_or_else(|| {
                        GatewayError::BadQuery {
                            code: "CURSOR_INVALID",
                            detail: format!("{cursor} is not a transfer of {wallet}'s history"),
                        }
                    })?)
                }
                None => Box::new(ledger.history(account)?),
            };
            let day = |at_ms| crate::time::china_day(at_ms);
            let mut entries = Vec::new();
            let mut more = false;
            for (id, transfer) in transfers {
                if query
                    .to_day
                    .is_some_and(|to| day(transfer.timestamp_ms) > to)
                {
                    continue;
                }
                if query
                    .from_day
                    .is_some_and(|from| day(transfer.timestamp_ms) < from)
                {
                    break;
                }
                if query.kind.is_some_and(|kind| kind != transfer.kind) {
                    continue;
                }
                if entries.len() == query.limit {
                    more = true;
                    break;
                }
                let incoming = transfer.credit == account;
                let other = if incoming {
                    transfer.debit
                } else {
                    transfer.credit
                };
                entries.push(HistoryEntry {
                    transfer: id,
                    kind: transfer.kind,
                    at_ms: transfer.timestamp_ms,
                    incoming,
                    amount: transfer.amount,
                    counterparty: state
                        .wallet_of_account(other)
                        .filter(|_| !settles_a_merchant),
                });
            }
            let next_cursor = more
                .then(|| entries.last().map(|entry| entry.transfer))
                .flatten();
            Ok(HistoryPage {
                entries,
                next_cursor,
            })
        })?
    }

    /// Freezes or unfreezes the wallet: a freeze on the holder's signature (any of its devices)
    /// or by a teller of its operator, an unfreeze by a teller alone.
    pub fn set_frozen(
        &self,
        party: Party,
        wallet: WalletId,
        frozen: bool,
        signature: Option<HolderSignature>,
    ) -> Result<(), GatewayError> {
        let operation = if frozen {
            Operation::FreezeWallet
        } else {
            Operation::UnfreezeWallet
        };
        self.allow(operation, party)?;
        let status = if frozen {
            WalletStatus::Frozen
        } else {
            WalletStatus::Active
        };
        let command = Command::SetWalletStatus { wallet, status };
        let operator = self.holder_or_staff(party, wallet, &command, signature)?;
        self.submit_one(operator, command)?;
        Ok(())
    }

    /// Closes the wallet as the holder signed: its balance goes to its bound bank account (or it
    /// stays open). Answers what was returned.
    pub fn close_wallet(
        &self,
        party: Party,
        wallet: WalletId,
        signature: HolderSignature,
    ) -> Result<Amount, GatewayError> {
        self.allow(Operation::CloseWallet, party)?;
        let command = Command::CloseWallet { wallet };
        let operator = self.holder_or_staff(party, wallet, &command, Some(signature))?;
        let balance = self.node.query(move |state| state.balance(wallet))??;
        self.submit_one(operator, command)?;
        Ok(balance)
    }

    /// The wallet a phone number opens, for the holder of `wallet` to pay it: each operator's
    /// desk matches the number against its own sealed directory. Counted per wallet, found or
    /// not, and logged without the number.
    pub fn lookup_phone(
        &self,
        party: Party,
        wallet: WalletId,
        phone: u64,
    ) -> Result<(WalletId, crate::ids::OperatorId), GatewayError> {
        self.allow(Operation::LookupPhone, party)?;
        let asking = self.wallet_in_scope(party, wallet)?;
        self.count_phone_lookup(wallet)?;
        let desks: Vec<_> = self.desks_snapshot();
        let tags: Vec<_> = desks
            .iter()
            .map(|(operator, desk)| (*operator, desk.identity_key.phone_tag(phone)))
            .collect();
        let found = self.node.query(move |state| {
            tags.iter()
                .filter_map(|(operator, tag)| {
                    let found = state.wallet_by_phone_tag(*operator, tag).ok();
                    found.map(|payee| (payee, *operator))
                })
                .collect::<Vec<_>>()
        })?;
        match found.as_slice() {
            [(payee, operator)] => {
                tracing::info!(%wallet, asking = %asking, answering = %operator, %payee,
                    "phone look-up answered");
                Ok((*payee, *operator))
            }
            _ => {
                tracing::info!(%wallet, asking = %asking, "phone look-up found no wallet");
                let digits = phone.to_string();
                let masked = format!(
                    "{}****{}",
                    &digits[..3.min(digits.len())],
                    &digits[digits.len().saturating_sub(4)..]
                );
                Err(CommandError::UnknownPhone(masked).into())
            }
        }
    }

    /// Counts one look-up against the wallet's hourly allowance.
    fn count_phone_lookup(&self, wallet: WalletId) -> Result<(), GatewayError> {
        let now = super::gateway::now_s();
        let mut counts = self.phone_lookups.lock().expect("phone look-ups lock");
        if counts.len() >= PHONE_LOOKUP_WALLETS_MAX {
            counts.retain(|_, (start, _)| now < *start + PHONE_LOOKUP_WINDOW_S);
        }
        let (start, used) = counts.entry(wallet).or_insert((now, 0));
        if now >= *start + PHONE_LOOKUP_WINDOW_S {
            (*start, *used) = (now, 0);
        }
        if *used >= PHONE_LOOKUPS_PER_HOUR {
            return Err(GatewayError::TooMany {
                code: "PHONE_LOOKUP_RATE_LIMITED",
                detail: format!(
                    "a wallet looks up at most {PHONE_LOOKUPS_PER_HOUR} phone numbers an hour"
                ),
                retry_after_s: *start + PHONE_LOOKUP_WINDOW_S - now,
            });
        }
        *used += 1;
        Ok(())
    }

    /// The wallet as it is now, for a caller that has just acted on it.
    fn wallet_status(&self, wallet: WalletId) -> Result<super::gateway::WalletView, GatewayError> {
        self.wallet(Party::CentralBank, wallet)
    }

    /// The wallet's operator, once the caller has shown it may act: staff of that operator, or
    /// the holder's signature over `command` by the wallet's own key, for this deployment and
    /// operator, within its window. Checked here: the command itself carries no signature.
    fn holder_or_staff(
        &self,
        party: Party,
        wallet: WalletId,
        command: &Command,
        signature: Option<HolderSignature>,
    ) -> Result<crate::ids::OperatorId, GatewayError> {
        if let Party::Staff { .. } = party {
            let operator = self.wallet_in_scope(party, wallet)?;
            staff_of(party, operator)?;
            return Ok(operator);
        }
        let operator = self.signer_operator(party, wallet)?;
        let signature = signature.ok_or(CommandError::SignatureMissing)?;
        let registered = self
            .node
            .query(move |state| state.wallet_key(wallet).copied())??;
        if registered != signature.public_key {
            return Err(CommandError::SignatureInvalid.into());
        }
        let signed = command.signing_bytes(&self.signing_context(operator), signature.not_after_ms);
        signature
            .public_key
            .verify(&signed, &signature.signature)
            .map_err(|_| CommandError::SignatureInvalid)?;
        crate::command::check_window(signature.not_after_ms, now_ms())?;
        Ok(operator)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepositBackRequest {
    /// Yuan of e-CNY to turn back into bank deposits, e.g. "200.00".
    pub amount: String,
    pub public_key: String,
    /// SM2 signature (128 hex digits) over the DepositBack command's signing bytes.
    pub signature: String,
    pub not_after_ms: u64,
}

#[derive(Serialize)]
pub struct DepositBackResponse {
    pub transfer: String,
    pub wallet: String,
    pub amount: String,
}

async fn deposit_back(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(wallet): PathId<WalletId>,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    JsonBody(body): JsonBody<DepositBackRequest>,
) -> Result<(StatusCode, Json<DepositBackResponse>), Problem> {
    let amount = amount_field("amount", &body.amount)?;
    let signature = holder_signature(&body.public_key, &body.signature, body.not_after_ms)?;
    let transfer = blocking(&app, move |gateway| {
        gateway.deposit_back(caller, wallet, amount, key, signature)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(DepositBackResponse {
            transfer: transfer.to_string(),
            wallet: wallet.to_string(),
            amount: amount.to_string(),
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryParams {
    pub cursor: Option<String>,
    /// YYYY-MM-DD, China time, inclusive.
    pub from: Option<String>,
    pub to: Option<String>,
    /// A transfer kind, e.g. `payment`, `exchange`, `deposit_back`.
    pub kind: Option<String>,
    pub limit: Option<usize>,
}

#[derive(Serialize)]
pub struct HistoryEntryResponse {
    pub transfer: String,
    pub kind: &'static str,
    /// China time, ISO 8601.
    pub at: String,
    pub direction: &'static str,
    pub amount: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterparty: Option<String>,
}

#[derive(Serialize)]
pub struct HistoryResponse {
    pub wallet: String,
    pub entries: Vec<HistoryEntryResponse>,
    pub next_cursor: Option<String>,
}

fn bad_query(code: &'static str, detail: String) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, code, detail)
}

fn history_query(params: HistoryParams) -> Result<HistoryQuery, Problem> {
    let day = |text: Option<String>| {
        text.map(|text| {
            crate::time::parse_day(&text).ok_or_else(|| {
                bad_query(
                    "MALFORMED_DATE",
                    format!("date {text:?} is not a YYYY-MM-DD day from 1970 on"),
                )
            })
        })
        .transpose()
    };
    let cursor = params
        .cursor
        .map(|text| {
            text.parse::<EventId>()
                .map_err(|error| bad_query("CURSOR_INVALID", format!("cursor: {error}")))
        })
        .transpose()?;
    let kind = params
        .kind
        .map(|text| {
            (1..=u8::MAX)
                .map_while(TransferKind::from_u8)
                .find(|kind| kind.as_str() == text)
                .ok_or_else(|| {
                    bad_query(
                        "MALFORMED_KIND",
                        format!(
                            "{text:?} is not a transfer kind (payment, exchange, deposit_back, …)"
                        ),
                    )
                })
        })
        .transpose()?;
    let limit = params.limit.unwrap_or(HISTORY_PAGE_DEFAULT);
    if !(1..=HISTORY_PAGE_MAX).contains(&limit) {
        return Err(bad_query(
            "MALFORMED_QUERY",
            format!("limit: 1 to {HISTORY_PAGE_MAX} entries a page, not {limit}"),
        ));
    }
    Ok(HistoryQuery {
        cursor,
        from_day: day(params.from)?,
        to_day: day(params.to)?,
        kind,
        limit,
    })
}

async fn history(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(wallet): PathId<WalletId>,
    Params(params): Params<HistoryParams>,
) -> Result<Json<HistoryResponse>, Problem> {
    let query = history_query(params)?;
    let page = blocking(&app, move |gateway| gateway.history(caller, wallet, query)).await?;
    Ok(Json(HistoryResponse {
        wallet: wallet.to_string(),
        entries: page
            .entries
            .into_iter()
            .map(|entry| HistoryEntryResponse {
                transfer: entry.transfer.to_string(),
                kind: entry.kind.as_str(),
                at: crate::time::china_time(entry.at_ms),
                direction: if entry.incoming { "in" } else { "out" },
                amount: entry.amount.to_string(),
                counterparty: entry.counterparty.map(|w| w.to_string()),
            })
            .collect(),
        next_cursor: page.next_cursor.map(|id| id.to_string()),
    }))
}

/// A freeze or a close: the holder's signature, or nothing when a teller acts.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalletSignatureRequest {
    pub public_key: Option<String>,
    /// SM2 signature (128 hex digits) over the command's signing bytes (`SetWalletStatus` with
    /// status frozen, or `CloseWallet`).
    pub signature: Option<String>,
    pub not_after_ms: Option<u64>,
}

fn optional_signature(body: &WalletSignatureRequest) -> Result<Option<HolderSignature>, Problem> {
    match (&body.public_key, &body.signature, body.not_after_ms) {
        (None, None, None) => Ok(None),
        (Some(key), Some(signature), Some(not_after_ms)) => {
            Ok(Some(holder_signature(key, signature, not_after_ms)?))
        }
        _ => Err(super::fields::unprocessable(
            "SIGNATURE_INCOMPLETE",
            "a holder's signature needs public_key, signature and not_after_ms together".into(),
        )),
    }
}

async fn set_frozen(
    app: AppState,
    caller: Party,
    wallet: WalletId,
    frozen: bool,
    body: WalletSignatureRequest,
) -> Result<Json<WalletResponse>, Problem> {
    let signature = optional_signature(&body)?;
    let view = blocking(&app, move |gateway| {
        gateway.set_frozen(caller, wallet, frozen, signature)?;
        // The answer shows the new status; a holder without a session reads it by its signature.
        gateway.wallet_status(wallet)
    })
    .await?;
    Ok(Json(view.into()))
}

async fn freeze(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(wallet): PathId<WalletId>,
    JsonBody(body): JsonBody<WalletSignatureRequest>,
) -> Result<Json<WalletResponse>, Problem> {
    set_frozen(app, caller, wallet, true, body).await
}

async fn unfreeze(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(wallet): PathId<WalletId>,
    JsonBody(body): JsonBody<WalletSignatureRequest>,
) -> Result<Json<WalletResponse>, Problem> {
    set_frozen(app, caller, wallet, false, body).await
}

#[derive(Serialize)]
pub struct CloseResponse {
    pub wallet: String,
    pub status: String,
    /// What went back to the bound bank account.
    pub returned: String,
}

async fn close(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(wallet): PathId<WalletId>,
    JsonBody(body): JsonBody<WalletSignatureRequest>,
) -> Result<Json<CloseResponse>, Problem> {
    let signature = optional_signature(&body)?
        .ok_or_else(|| Problem::from(GatewayError::Refused(CommandError::SignatureMissing)))?;
    let returned = blocking(&app, move |gateway| {
        gateway.close_wallet(caller, wallet, signature)
    })
    .await?;
    Ok(Json(CloseResponse {
        wallet: wallet.to_string(),
        status: WalletStatus::Closed.to_string(),
        returned: returned.to_string(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneLookupRequest {
    /// The payee's mainland mobile number, e.g. "13900000012".
    pub phone: String,
}

#[derive(Serialize)]
pub struct PhoneLookupResponse {
    /// The wallet the number opens: sign a payment to it (`POST /v1/payments`).
    pub wallet: String,
    pub operator: String,
}

async fn lookup_phone(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(wallet): PathId<WalletId>,
    JsonBody(body): JsonBody<PhoneLookupRequest>,
) -> Result<Json<PhoneLookupResponse>, Problem> {
    let phone = crate::wallet::parse_phone(&body.phone).map_err(Problem::from)?;
    let (payee, operator) = blocking(&app, move |gateway| {
        gateway.lookup_phone(caller, wallet, phone)
    })
    .await?;
    Ok(Json(PhoneLookupResponse {
        wallet: payee.to_string(),
        operator: operator.to_string(),
    }))
}

// ----- the OpenAPI description of these endpoints -----

pub mod openapi {
    use serde_json::{json, Map, Value};

    use crate::server::openapi_doc::{
        body, idempotency, ok, path_param, query_param, responses, schema_ref, string,
    };

    pub fn schemas() -> Map<String, Value> {
        let mut all = Map::new();
        let mut put = |name: &str, schema: Value| {
            all.insert(name.to_string(), schema);
        };
        put(
            "DepositBackRequest",
            json!({ "type": "object", "additionalProperties": false,
                "required": ["amount", "public_key", "signature", "not_after_ms"],
                "properties": {
                    "amount": { "type": "string", "example": "200.00" },
                    "public_key": { "type": "string", "description": "the holder's SM2 public key (66 hex digits)" },
                    "signature": { "type": "string", "description": "SM2 signature (128 hex digits) over Command::DepositBack's signing bytes, idempotency key included" },
                    "not_after_ms": { "type": "integer", "minimum": 0, "description": "the last Unix millisecond the signature is good; see GET /v1/context" }
                } }),
        );
        put(
            "DepositBack",
            json!({ "type": "object", "properties": {
                "transfer": string(), "wallet": string(), "amount": string()
            } }),
        );
        put(
            "History",
            json!({ "type": "object", "properties": {
                "wallet": string(),
                "entries": { "type": "array", "items": { "type": "object", "properties": {
                    "transfer": string(), "kind": string(), "at": string(),
                    "direction": { "type": "string", "enum": ["in", "out"] },
                    "amount": string(),
                    "counterparty": { "type": "string", "description": "the other wallet; never shown on a merchant's settlement wallet" }
                } } },
                "next_cursor": { "type": ["string", "null"], "description": "pass as cursor for the next, older page" }
            } }),
        );
        put(
            "WalletSignatureRequest",
            json!({ "type": "object", "additionalProperties": false,
                "properties": {
                    "public_key": { "type": "string", "description": "the wallet's registered SM2 key (66 hex digits); left out by a teller" },
                    "signature": { "type": "string", "description": "SM2 signature over Command::SetWalletStatus (frozen) or Command::CloseWallet's signing bytes" },
                    "not_after_ms": { "type": "integer", "minimum": 0 }
                } }),
        );
        put(
            "PhoneLookupRequest",
            json!({ "type": "object", "additionalProperties": false, "required": ["phone"],
                "properties": { "phone": { "type": "string", "pattern": "^1[0-9]{10}$", "example": "13900000012" } } }),
        );
        put(
            "PhoneLookup",
            json!({ "type": "object", "properties": { "wallet": string(), "operator": string() } }),
        );
        put(
            "ClosedWallet",
            json!({ "type": "object", "properties": {
                "wallet": string(), "status": string(), "returned": string()
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
            "/v1/wallets/{id}/deposit-back",
            json!({ "post": {
                "summary": "Turn e-CNY back into deposits at the bound bank account, as the holder signed",
                "security": bearer, "parameters": [wallet, idempotency()],
                "requestBody": body("DepositBackRequest"),
                "responses": responses(ok("201", "durable transfer (a replay answers the first one)", schema_ref("DepositBack")), true,
                    &[("409", "IDEMPOTENCY_KEY_REUSED, OPERATOR_SUSPENDED")]),
            } }),
        );
        put(
            "/v1/wallets/{id}/history",
            json!({ "get": {
                "summary": "The wallet's transfers, newest first, paged with a cursor, by day and kind (the holder, its operator's staff, the central bank); a merchant's settlement wallet never names its payers",
                "security": bearer,
                "parameters": [wallet,
                    query_param("cursor", "next_cursor of the previous page"),
                    query_param("from", "first day, YYYY-MM-DD China time"),
                    query_param("to", "last day, YYYY-MM-DD China time"),
                    query_param("kind", "one transfer kind, e.g. payment"),
                    { "name": "limit", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 1, "maximum": 200 } }],
                "responses": responses(ok("200", "a page", schema_ref("History")), false,
                    &[("400", "CURSOR_INVALID, MALFORMED_KIND, MALFORMED_DATE, MALFORMED_QUERY")]),
            } }),
        );
        let status_change = |summary: &str| {
            json!({ "post": {
                "summary": summary,
                "security": bearer, "parameters": [wallet],
                "requestBody": body("WalletSignatureRequest"),
                "responses": responses(ok("200", "the wallet now", schema_ref("Wallet")), true,
                    &[("409", "OPERATOR_SUSPENDED")]),
            } })
        };
        put(
            "/v1/wallets/{id}/freeze",
            status_change("Report a lost phone: freeze the wallet (the holder's signature from any device, or a teller of its operator on the holder's call)"),
        );
        put(
            "/v1/wallets/{id}/unfreeze",
            status_change("Unfreeze the wallet at the counter, the holder's identity checked (a teller of its operator)"),
        );
        put(
            "/v1/wallets/{id}/close",
            json!({ "post": {
                "summary": "Close the wallet, as the holder signed: its balance goes back to its bound bank account",
                "security": bearer, "parameters": [wallet],
                "requestBody": body("WalletSignatureRequest"),
                "responses": responses(ok("200", "closed", schema_ref("ClosedWallet")), true, &[]),
            } }),
        );
        put(
            "/v1/wallets/{id}/phone-lookups",
            json!({ "post": {
                "summary": "The wallet a phone number opens, at any operator, for the holder to pay it; logged, and at most 20 an hour per wallet",
                "security": bearer, "parameters": [wallet],
                "requestBody": body("PhoneLookupRequest"),
                "responses": responses(ok("200", "the payee's wallet", schema_ref("PhoneLookup")), true,
                    &[("404", "UNKNOWN_PHONE"), ("429", "PHONE_LOOKUP_RATE_LIMITED")]),
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
