//! The central bank on a running server: it admits operators (their desks serve at once, no
//! restart), brings in their reserves, issues e-CNY against them and redeems it, suspends and
//! reinstates operators, and reads the money in circulation by operator and by form, from the
//! ledger's accounts. Only the central bank's credential may call these.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::amount::Amount;
use crate::command::{Command, Outcome};
use crate::ids::{EventId, OperatorId};
use crate::ledger::{AccountKind, LedgerKind};
use crate::parties::{Operation, Party};

use super::extract::{blocking, AppState, Authenticated, PathId};
use super::fields::amount_field;
use super::gateway::{Gateway, GatewayError};
use super::problem::{JsonBody, Problem};

/// Longest name of an operator, in bytes.
pub const OPERATOR_NAME_BYTES_MAX: usize = 128;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/operators", post(admit_operator))
        .route("/v1/operators/{op}/reserves", post(fund_reserves))
        .route("/v1/operators/{op}/issuance", post(issue))
        .route("/v1/operators/{op}/redemption", post(redeem))
        .route("/v1/operators/{op}/suspension", put(suspend))
        .route("/v1/circulation", get(circulation))
}

/// Paths these handlers serve, in the document's order.
pub const OPENAPI_PATHS: [&str; 6] = [
    "/v1/operators",
    "/v1/operators/{op}/reserves",
    "/v1/operators/{op}/issuance",
    "/v1/operators/{op}/redemption",
    "/v1/operators/{op}/suspension",
    "/v1/circulation",
];

/// e-CNY by where it sits: the forms of the ledger's e-CNY accounts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Forms {
    pub wallets: Amount,
    pub vaults: Amount,
    pub offline_float: Amount,
    pub escrow: Amount,
    pub red_packets: Amount,
}

impl Forms {
    fn add(&mut self, kind: AccountKind, balance: Amount) {
        let form = match kind {
            AccountKind::Wallet => &mut self.wallets,
            AccountKind::OperatorVault => &mut self.vaults,
            AccountKind::OfflineFloat => &mut self.offline_float,
            AccountKind::Escrow => &mut self.escrow,
            AccountKind::RedPacketPool | AccountKind::RedPacket => &mut self.red_packets,
            _ => return,
        };
        *form = Amount::from_fen(form.fen() + balance.fen());
    }

    pub fn total(&self) -> Amount {
        Amount::from_fen(
            self.wallets.fen()
                + self.vaults.fen()
                + self.offline_float.fen()
                + self.escrow.fen()
                + self.red_packets.fen(),
        )
    }
}

/// One operator's e-CNY and what backs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorCirculation {
    pub operator: OperatorId,
    pub name: String,
    pub suspended: bool,
    pub reserves: Amount,
    pub backing: Amount,
    pub forms: Forms,
}

/// Money in circulation: every e-CNY account but the issuance account, by operator and form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Circulation {
    pub issued_net: Amount,
    pub forms: Forms,
    pub operators: Vec<OperatorCirculation>,
}

impl Gateway {
    /// Admits an operator under the central bank's signature; its desk serves at once.
    pub fn admit(&self, party: Party, name: String) -> Result<OperatorId, GatewayError> {
        self.allow(Operation::AdmitOperator, party)?;
        let name = name.trim().to_string();
        if name.is_empty() || name.len() > OPERATOR_NAME_BYTES_MAX {
            return Err(GatewayError::Invalid {
                code: "OPERATOR_NAME_INVALID",
                detail: format!(
                    "an operator's name is 1 to {OPERATOR_NAME_BYTES_MAX} bytes of text"
                ),
            });
        }
        self.admit_operator(name)
    }

    /// One of the central bank's money commands on an operator: reserves in, issue, redeem.
    pub fn central_bank_transfer(
        &self,
        party: Party,
        operation: Operation,
        operator: OperatorId,
        amount: Amount,
    ) -> Result<EventId, GatewayError> {
        self.allow(operation, party)?;
        let command = match operation {
            Operation::FundReserves => Command::FundReserves { operator, amount },
            Operation::Issue => Command::Issue { operator, amount },
            Operation::Redeem => Command::Redeem { operator, amount },
            other => unreachable!("{other:?} is not a central bank transfer"),
        };
        match self.submit_as_central_bank(command)? {
            Outcome::Transfer(id) => Ok(id),
            other => unreachable!("{operation:?} answered {other:?}"),
        }
    }

    pub fn suspend_operator(
        &self,
        party: Party,
        operator: OperatorId,
        suspended: bool,
    ) -> Result<(), GatewayError> {
        self.allow(Operation::SuspendOperator, party)?;
        let command = Command::SetOperatorSuspended {
            operator,
            suspended,
        };
        self.submit_as_central_bank(command)?;
        Ok(())
    }

    pub fn circulation(&self, party: Party) -> Result<Circulation, GatewayError> {
        self.allow(Operation::ReadCirculation, party)?;
        Ok(self.node.query(|state| {
            let mut operators: Vec<OperatorCirculation> = state
                .operators()
                .iter()
                .map(|op| {
                    let balance = |account| {
                        state
                            .ledger()
                            .account(account)
                            .map_or(Amount::ZERO, |a| a.balance)
                    };
                    OperatorCirculation {
                        operator: op.id,
                        name: op.name.clone(),
                        suspended: op.suspended,
                        reserves: balance(op.reserve),
                        backing: balance(op.backing),
                        forms: Forms::default(),
                    }
                })
                .collect();
            let mut forms = Forms::default();
            let mut issued_net = Amount::ZERO;
            for account in state.ledger().accounts() {
                if account.kind.ledger() != LedgerKind::Ecny {
                    continue;
                }
                if account.kind == AccountKind::Issuance {
                    issued_net = Amount::from_fen(-account.balance.fen());
                    continue;
                }
                forms.add(account.kind, account.balance);
                if let Some(slot) = account.operator.slot() {
                    if let Some(op) = operators.get_mut(slot) {
                        op.forms.add(account.kind, account.balance);
                    }
                }
            }
            Circulation {
                issued_net,
                forms,
                operators,
            }
        })?)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdmitRequest {
    /// The operator's name, e.g. "Taihu Rural Bank".
    pub name: String,
}

#[derive(Serialize)]
pub struct AdmitResponse {
    pub operator: String,
    pub name: String,
    /// Where the operator's administrator finds its bearer token on the server.
    pub administrator_token_file: String,
}

async fn admit_operator(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(body): JsonBody<AdmitRequest>,
) -> Result<(StatusCode, Json<AdmitResponse>), Problem> {
    let name = body.name.trim().to_string();
    let admitted = name.clone();
    let operator = blocking(&app, move |gateway| gateway.admit(caller, admitted)).await?;
    // Its administrator's token, so the operator can be served at once.
    app.tokens
        .admit_administrator(operator)
        .map_err(|error| Problem::internal(format!("cannot write the token: {error}")))?;
    Ok((
        StatusCode::CREATED,
        Json(AdmitResponse {
            operator: operator.to_string(),
            name,
            administrator_token_file: format!("keys/{operator}.token"),
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmountRequest {
    /// Yuan with at most two decimals, e.g. "1000000.00".
    pub amount: String,
}

#[derive(Serialize)]
pub struct CentralBankTransferResponse {
    pub transfer: String,
    pub operator: String,
    pub amount: String,
}

async fn central_bank_transfer(
    app: AppState,
    caller: Party,
    operation: Operation,
    operator: OperatorId,
    body: AmountRequest,
) -> Result<(StatusCode, Json<CentralBankTransferResponse>), Problem> {
    let amount = amount_field("amount", &body.amount)?;
    let transfer = blocking(&app, move |gateway| {
        gateway.central_bank_transfer(caller, operation, operator, amount)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CentralBankTransferResponse {
            transfer: transfer.to_string(),
            operator: operator.to_string(),
            amount: amount.to_string(),
        }),
    ))
}

async fn fund_reserves(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(operator): PathId<OperatorId>,
    JsonBody(body): JsonBody<AmountRequest>,
) -> Result<(StatusCode, Json<CentralBankTransferResponse>), Problem> {
    central_bank_transfer(app, caller, Operation::FundReserves, operator, body).await
}

async fn issue(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(operator): PathId<OperatorId>,
    JsonBody(body): JsonBody<AmountRequest>,
) -> Result<(StatusCode, Json<CentralBankTransferResponse>), Problem> {
    central_bank_transfer(app, caller, Operation::Issue, operator, body).await
}

async fn redeem(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(operator): PathId<OperatorId>,
    JsonBody(body): JsonBody<AmountRequest>,
) -> Result<(StatusCode, Json<CentralBankTransferResponse>), Problem> {
    central_bank_transfer(app, caller, Operation::Redeem, operator, body).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuspensionRequest {
    /// true suspends the operator; false reinstates it.
    pub suspended: bool,
}

#[derive(Serialize)]
pub struct SuspensionResponse {
    pub operator: String,
    pub suspended: bool,
}

async fn suspend(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(operator): PathId<OperatorId>,
    JsonBody(body): JsonBody<SuspensionRequest>,
) -> Result<Json<SuspensionResponse>, Problem> {
    let suspended = body.suspended;
    blocking(&app, move |gateway| {
        gateway.suspend_operator(caller, operator, suspended)
    })
    .await?;
    Ok(Json(SuspensionResponse {
        operator: operator.to_string(),
        suspended,
    }))
}

#[derive(Serialize)]
pub struct FormsResponse {
    pub wallets: String,
    pub vaults: String,
    pub offline_float: String,
    pub escrow: String,
    pub red_packets: String,
    pub total: String,
}

impl From<Forms> for FormsResponse {
    fn from(forms: Forms) -> FormsResponse {
        FormsResponse {
            wallets: forms.wallets.to_string(),
            vaults: forms.vaults.to_string(),
            offline_float: forms.offline_float.to_string(),
            escrow: forms.escrow.to_string(),
            red_packets: forms.red_packets.to_string(),
            total: forms.total().to_string(),
        }
    }
}

#[derive(Serialize)]
pub struct OperatorCirculationResponse {
    pub operator: String,
    pub name: String,
    pub suspended: bool,
    pub reserves: String,
    pub backing: String,
    pub circulation: FormsResponse,
}

#[derive(Serialize)]
pub struct CirculationResponse {
    /// Issued less redeemed: what the issuance account owes.
    pub issued_net: String,
    pub circulation: FormsResponse,
    pub operators: Vec<OperatorCirculationResponse>,
}

async fn circulation(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<CirculationResponse>, Problem> {
    let read = blocking(&app, move |gateway| gateway.circulation(caller)).await?;
    Ok(Json(CirculationResponse {
        issued_net: read.issued_net.to_string(),
        circulation: read.forms.into(),
        operators: read
            .operators
            .into_iter()
            .map(|op| OperatorCirculationResponse {
                operator: op.operator.to_string(),
                name: op.name,
                suspended: op.suspended,
                reserves: op.reserves.to_string(),
                backing: op.backing.to_string(),
                circulation: op.forms.into(),
            })
            .collect(),
    }))
}

// ----- the OpenAPI description of these endpoints -----

pub mod openapi {
    use serde_json::{json, Map, Value};

    use crate::server::openapi_doc::{body, ok, path_param, responses, schema_ref, string};

    pub fn schemas() -> Map<String, Value> {
        let object = |required: &[&str], properties: Value| json!({ "type": "object", "additionalProperties": false, "required": required, "properties": properties });
        let forms = json!({ "type": "object", "properties": {
            "wallets": string(), "vaults": string(), "offline_float": string(),
            "escrow": string(), "red_packets": string(), "total": string()
        } });
        let mut all = Map::new();
        let mut put = |name: &str, schema: Value| {
            all.insert(name.to_string(), schema);
        };
        put(
            "AdmitOperatorRequest",
            object(
                &["name"],
                json!({ "name": { "type": "string", "minLength": 1, "maxLength": 128, "pattern": "\\S", "example": "Taihu Rural Bank" } }),
            ),
        );
        put(
            "AdmittedOperator",
            json!({ "type": "object", "properties": {
                "operator": { "type": "string", "example": "OP03" }, "name": string(),
                "administrator_token_file": { "type": "string", "example": "keys/OP03.token" }
            } }),
        );
        put(
            "CentralBankAmountRequest",
            object(
                &["amount"],
                json!({ "amount": { "type": "string", "pattern": "^[0-9]{1,13}([.][0-9]{1,2})?$", "example": "1000.00" } }),
            ),
        );
        put(
            "CentralBankTransfer",
            json!({ "type": "object", "properties": {
                "transfer": string(), "operator": string(), "amount": string()
            } }),
        );
        put(
            "SuspensionRequest",
            object(
                &["suspended"],
                json!({ "suspended": { "type": "boolean" } }),
            ),
        );
        put(
            "Suspension",
            json!({ "type": "object", "properties": {
                "operator": string(), "suspended": { "type": "boolean" }
            } }),
        );
        put(
            "Circulation",
            json!({ "type": "object", "properties": {
                "issued_net": string(),
                "circulation": forms.clone(),
                "operators": { "type": "array", "items": { "type": "object", "properties": {
                    "operator": string(), "name": string(), "suspended": { "type": "boolean" },
                    "reserves": string(), "backing": string(), "circulation": forms
                } } }
            } }),
        );
        all
    }

    pub fn paths() -> Map<String, Value> {
        let bearer = json!([{ "bearer": [] }]);
        let operator = path_param("op", "OP01");
        let mut all = Map::new();
        let mut put = |path: &str, item: Value| {
            all.insert(path.to_string(), item);
        };
        put(
            "/v1/operators",
            json!({ "post": {
                "summary": "Admit an operator (the central bank): its key, reserve account and desk, serving at once; its administrator's token is written to DIR/keys/OPxx.token",
                "security": bearer,
                "requestBody": body("AdmitOperatorRequest"),
                "responses": responses(ok("201", "admitted", schema_ref("AdmittedOperator")), true,
                    &[("409", "OPERATOR_EXISTS: no operator ids are left")]),
            } }),
        );
        let transfer = |summary: &str, refusals: &str| {
            json!({ "post": {
                "summary": summary,
                "security": bearer, "parameters": [operator],
                "requestBody": body("CentralBankAmountRequest"),
                "responses": responses(ok("201", "durable transfer", schema_ref("CentralBankTransfer")), true,
                    &[("409", "OPERATOR_SUSPENDED"), ("422", refusals)]),
            } })
        };
        put(
            "/v1/operators/{op}/reserves",
            transfer(
                "Bring an operator's reserves into its account at the central bank",
                "MALFORMED_AMOUNT, AMOUNT_NOT_POSITIVE, AMOUNT_TOO_LARGE",
            ),
        );
        put(
            "/v1/operators/{op}/issuance",
            transfer(
                "Issue e-CNY to an operator's vault against its reserves (100 % backing)",
                "INSUFFICIENT_RESERVES, MALFORMED_AMOUNT, AMOUNT_NOT_POSITIVE",
            ),
        );
        put(
            "/v1/operators/{op}/redemption",
            transfer(
                "Redeem e-CNY from an operator's vault, its reserves given back",
                "REDEMPTION_EXCEEDS_BACKING, VAULT_INSUFFICIENT, MALFORMED_AMOUNT, AMOUNT_NOT_POSITIVE",
            ),
        );
        put(
            "/v1/operators/{op}/suspension",
            json!({ "put": {
                "summary": "Suspend an operator (only its holders' money going back to their banks, freezes and its redemption are still booked) or reinstate it",
                // Another operator than the one every other example acts at: a suspension
                // tried while exploring the API leaves those examples working.
                "security": bearer, "parameters": [path_param("op", "OP02")],
                "requestBody": body("SuspensionRequest"),
                "responses": responses(ok("200", "the operator's standing now", schema_ref("Suspension")), true, &[]),
            } }),
        );
        put(
            "/v1/circulation",
            json!({ "get": {
                "summary": "Money in circulation by operator and by form (wallets, vaults, offline float, escrow, red packets), with each operator's reserves and backing",
                "security": bearer,
                "responses": responses(ok("200", "from the ledger's accounts", schema_ref("Circulation")), false, &[]),
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
