//! Smart contracts over HTTP: a payer's app opens one from a template and confirms deliveries, a
//! party cancels, and the payer's operator, the payee's operator and the central bank (the
//! regulator) read the same state. Every opening, confirmation and cancellation carries the
//! acting holder's SM2 signature over the exact command.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::amount::Amount;
use crate::command::{Command, Outcome};
use crate::ids::{ContractId, WalletId};
use crate::parties::{Operation, Party};
use crate::programs::contracts::{Contract, Template};
use crate::state_machine::StateMachine;

use super::extract::{blocking, AppState, Authenticated, IdempotencyKeyHeader, PathId};
use super::fields::{holder_signature, unprocessable};
use super::gateway::{Gateway, GatewayError, HolderSignature};
use super::problem::{JsonBody, Problem};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/contracts", post(open))
        .route("/v1/contracts/{id}", get(read))
        .route("/v1/contracts/{id}/confirm", post(confirm))
        .route("/v1/contracts/{id}/cancel", post(cancel))
}

/// A contract as its parties and the regulator see it.
#[derive(Clone, Debug, Serialize)]
pub struct ContractView {
    pub contract: String,
    pub template: &'static str,
    pub payer: String,
    pub payee: String,
    pub purpose: String,
    pub status: &'static str,
    /// What opening took from the payer (escrow, prepaid); 0.00 for recurring.
    pub funded: String,
    pub holding: String,
    pub released: String,
    pub refunded: String,
    /// Lessons confirmed, or recurring payments made.
    pub delivered: u32,
    pub missed: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_miss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_run_ms: Option<u64>,
    pub opened_at_ms: u64,
}

fn view(state: &StateMachine, contract: &Contract) -> ContractView {
    ContractView {
        contract: contract.id.to_string(),
        template: contract.template.name(),
        payer: contract.payer.to_string(),
        payee: contract.payee.to_string(),
        purpose: contract.purpose.clone(),
        status: state.contract_status(contract).as_str(),
        funded: contract
            .template
            .funding()
            .expect("a contract's terms were checked when it opened")
            .to_string(),
        holding: state.contract_holding(contract).to_string(),
        released: contract.released.to_string(),
        refunded: contract.refunded.to_string(),
        delivered: contract.delivered,
        missed: contract.missed,
        last_miss: contract.last_miss.clone(),
        next_run_ms: contract.next_run_ms,
        opened_at_ms: contract.opened_at_ms,
    }
}

impl Gateway {
    /// The contract, if the caller is the regulator, the operator's staff of one of its parties,
    /// or the holder of one of its parties.
    pub fn contract(&self, party: Party, id: ContractId) -> Result<ContractView, GatewayError> {
        self.allow(Operation::ReadContract, party)?;
        self.node.query(move |state| {
            let contract = state.contracts().get(id)?;
            let operator_of = |wallet: WalletId| state.wallet(wallet).map(|w| w.operator);
            let allowed = match party {
                Party::CentralBank => true,
                Party::Staff { operator: op, .. } => {
                    operator_of(contract.payer)? == op || operator_of(contract.payee)? == op
                }
                Party::Holder(wallet) => wallet == contract.payer || wallet == contract.payee,
                _ => false,
            };
            if !allowed {
                return Err(GatewayError::Forbidden {
                    code: "NOT_A_CONTRACT_PARTY",
                    detail: format!(
                        "the credential presented is neither a party's, its operator's nor the regulator's for {id}"
                    ),
                });
            }
            Ok(view(state, contract))
        })?
    }

    /// The contract as its signer sees it right after a command it signed went through.
    fn contract_view(&self, id: ContractId) -> Result<ContractView, GatewayError> {
        Ok(self.node.query(move |state| {
            state
                .contracts()
                .get(id)
                .map(|contract| view(state, contract))
        })??)
    }

    /// Submits a holder-signed contract command through the signing wallet's operator.
    fn submit_contract_command(
        &self,
        party: Party,
        operation: Operation,
        command: Command,
        signature: HolderSignature,
    ) -> Result<Outcome, GatewayError> {
        self.allow(operation, party)?;
        let acting = match &command {
            Command::OpenContract { payer, .. } => *payer,
            Command::ConfirmContract { contract, .. } => {
                let contract = *contract;
                self.node
                    .query(move |state| state.contracts().get(contract).map(|c| c.payer))??
            }
            Command::CancelContract {
                contract, by_payee, ..
            } => {
                let (contract, by_payee) = (*contract, *by_payee);
                self.node.query(move |state| {
                    state
                        .contracts()
                        .get(contract)
                        .map(|c| if by_payee { c.payee } else { c.payer })
                })??
            }
            other => unreachable!("not a contract command: {other:?}"),
        };
        self.submit_signed(party, acting, command, signature)
    }
}

fn amount(name: &str, text: Option<&str>) -> Result<Amount, Problem> {
    let text = text.ok_or_else(|| {
        unprocessable(
            "CONTRACT_TERMS_INVALID",
            format!("this template needs {name}"),
        )
    })?;
    text.parse::<Amount>()
        .map_err(|error| unprocessable("MALFORMED_AMOUNT", format!("{name}: {error}")))
}

fn number<T>(name: &str, value: Option<T>) -> Result<T, Problem> {
    value.ok_or_else(|| {
        unprocessable(
            "CONTRACT_TERMS_INVALID",
            format!("this template needs {name}"),
        )
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenContractRequest {
    pub payer: String,
    pub payee: String,
    /// escrow, prepaid or recurring.
    pub template: String,
    pub purpose: String,
    /// Escrow and recurring: the amount.
    pub amount: Option<String>,
    /// Escrow: when unconfirmed money goes back (Unix ms).
    pub deadline_ms: Option<u64>,
    /// Prepaid: units (lessons) and the price of one.
    pub units: Option<u32>,
    pub unit_price: Option<String>,
    /// Recurring: first payment (Unix ms), period and count (0: until cancelled).
    pub first_ms: Option<u64>,
    pub every_ms: Option<u64>,
    pub count: Option<u32>,
    pub public_key: String,
    /// SM2 signature over the OpenContract command's signing bytes, idempotency key included.
    pub signature: String,
    /// The last Unix millisecond the signature is good (see `GET /v1/context`).
    pub not_after_ms: u64,
}

impl OpenContractRequest {
    fn template(&self) -> Result<Template, Problem> {
        match self.template.as_str() {
            "escrow" => Ok(Template::Escrow {
                amount: amount("amount", self.amount.as_deref())?,
                deadline_ms: number("deadline_ms", self.deadline_ms)?,
            }),
            "prepaid" => {
                let template = Template::Prepaid {
                    units: number("units", self.units)?,
                    unit_price: amount("unit_price", self.unit_price.as_deref())?,
                };
                // Refused here, before any desk or the ledger sees the product.
                template.funding().map_err(Problem::from)?;
                Ok(template)
            }
            "recurring" => Ok(Template::Recurring {
                amount: amount("amount", self.amount.as_deref())?,
                first_ms: number("first_ms", self.first_ms)?,
                every_ms: number("every_ms", self.every_ms)?,
                count: self.count.unwrap_or(0),
            }),
            other => Err(unprocessable(
                "MALFORMED_TEMPLATE",
                format!("template {other:?} is not escrow, prepaid or recurring"),
            )),
        }
    }
}

async fn open(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    JsonBody(body): JsonBody<OpenContractRequest>,
) -> Result<(StatusCode, Json<ContractView>), Problem> {
    let id_field = |name: &str, text: &str| {
        text.parse::<WalletId>()
            .map_err(|error| unprocessable("MALFORMED_ID", format!("{name}: {error}")))
    };
    let command = Command::OpenContract {
        payer: id_field("payer", &body.payer)?,
        payee: id_field("payee", &body.payee)?,
        template: body.template()?,
        purpose: body.purpose.clone(),
        key,
        auth: None,
    };
    let signature = holder_signature(&body.public_key, &body.signature, body.not_after_ms)?;
    let view = blocking(&app, move |gateway| {
        let id = match gateway.submit_contract_command(
            caller,
            Operation::OpenContract,
            command,
            signature,
        )? {
            Outcome::Contract(id) => id,
            other => unreachable!("open contract answered {other:?}"),
        };
        gateway.contract_view(id)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

async fn read(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(id): PathId<ContractId>,
) -> Result<Json<ContractView>, Problem> {
    let view = blocking(&app, move |gateway| gateway.contract(caller, id)).await?;
    Ok(Json(view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    /// Lessons delivered (prepaid); 1 for an escrow.
    pub units: u32,
    pub public_key: String,
    /// SM2 signature over the ConfirmContract command's signing bytes, idempotency key included.
    pub signature: String,
    pub not_after_ms: u64,
}

#[derive(Serialize)]
pub struct ConfirmResponse {
    pub transfer: String,
    pub contract: ContractView,
}

async fn confirm(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(id): PathId<ContractId>,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    JsonBody(body): JsonBody<ConfirmRequest>,
) -> Result<(StatusCode, Json<ConfirmResponse>), Problem> {
    let command = Command::ConfirmContract {
        contract: id,
        units: body.units,
        key,
        auth: None,
    };
    let signature = holder_signature(&body.public_key, &body.signature, body.not_after_ms)?;
    let (transfer, contract) = blocking(&app, move |gateway| {
        let submitted = gateway.submit_contract_command(
            caller,
            Operation::ConfirmContract,
            command,
            signature,
        )?;
        let Outcome::Transfer(transfer) = submitted else {
            unreachable!("confirm answered {submitted:?}")
        };
        Ok((transfer, gateway.contract_view(id)?))
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(ConfirmResponse {
            transfer: transfer.to_string(),
            contract,
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// payer or payee: who ends it.
    pub by: String,
    pub public_key: String,
    /// SM2 signature over the CancelContract command's signing bytes.
    pub signature: String,
    pub not_after_ms: u64,
}

async fn cancel(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(id): PathId<ContractId>,
    JsonBody(body): JsonBody<CancelRequest>,
) -> Result<Json<ContractView>, Problem> {
    let by_payee = match body.by.as_str() {
        "payer" => false,
        "payee" => true,
        other => {
            return Err(unprocessable(
                "MALFORMED_PARTY",
                format!("by {other:?} is not payer or payee"),
            ))
        }
    };
    let command = Command::CancelContract {
        contract: id,
        by_payee,
        auth: None,
    };
    let signature = holder_signature(&body.public_key, &body.signature, body.not_after_ms)?;
    let view = blocking(&app, move |gateway| {
        gateway.submit_contract_command(caller, Operation::CancelContract, command, signature)?;
        gateway.contract_view(id)
    })
    .await?;
    Ok(Json(view))
}

pub const OPENAPI_PATHS: [&str; 4] = [
    "/v1/contracts",
    "/v1/contracts/{id}",
    "/v1/contracts/{id}/confirm",
    "/v1/contracts/{id}/cancel",
];

pub mod openapi {
    use serde_json::{json, Map, Value};

    use crate::server::openapi_doc::{body, idempotency, ok, path_param, schema_ref};

    /// The contract refusals on top of those every call can meet.
    fn responses(status: &str, description: &str, schema: &str, body: bool) -> Value {
        crate::server::openapi_doc::responses(
            ok(status, description, schema_ref(schema)),
            body,
            &[("409", "IDEMPOTENCY_KEY_REUSED")],
        )
    }

    fn id() -> Value {
        path_param("id", "C00000001")
    }

    pub fn schemas() -> Map<String, Value> {
        let s = || json!({ "type": "string" });
        let n = || json!({ "type": "integer", "minimum": 0 });
        let mut all = Map::new();
        all.insert("OpenContractRequest".into(), json!({
            "type": "object", "additionalProperties": false,
            "required": ["payer", "payee", "template", "purpose", "public_key", "signature", "not_after_ms"],
            "properties": {
                "payer": s(), "payee": s(),
                "template": { "type": "string", "enum": ["escrow", "prepaid", "recurring"] },
                "purpose": s(), "amount": s(), "deadline_ms": n(), "units": n(), "unit_price": s(),
                "first_ms": n(), "every_ms": n(), "count": n(), "public_key": s(), "signature": s(),
                "not_after_ms": n()
            }
        }));
        all.insert(
            "ConfirmContractRequest".into(),
            json!({
                "type": "object", "additionalProperties": false,
                "required": ["units", "public_key", "signature", "not_after_ms"],
                "properties": { "units": n(), "public_key": s(), "signature": s(), "not_after_ms": n() }
            }),
        );
        all.insert("CancelContractRequest".into(), json!({
            "type": "object", "additionalProperties": false,
            "required": ["by", "public_key", "signature", "not_after_ms"],
            "properties": { "by": { "type": "string", "enum": ["payer", "payee"] }, "public_key": s(), "signature": s(), "not_after_ms": n() }
        }));
        all.insert("Contract".into(), json!({ "type": "object", "properties": {
            "contract": s(), "template": s(), "payer": s(), "payee": s(), "purpose": s(),
            "status": { "type": "string", "enum": ["active", "completed", "cancelled", "expired"] },
            "funded": s(), "holding": s(), "released": s(), "refunded": s(),
            "delivered": n(), "missed": n(), "last_miss": s(), "next_run_ms": n(), "opened_at_ms": n()
        } }));
        all.insert(
            "ContractConfirmation".into(),
            json!({ "type": "object", "properties": {
            "transfer": s(), "contract": { "$ref": "#/components/schemas/Contract" }
        } }),
        );
        all
    }

    pub fn paths() -> Map<String, Value> {
        let bearer = json!([{ "bearer": [] }]);
        let mut all = Map::new();
        all.insert("/v1/contracts".into(), json!({ "post": {
            "summary": "Open a contract from a template (escrow, prepaid, recurring), as the payer signed",
            "security": bearer, "parameters": [idempotency()],
            "requestBody": body("OpenContractRequest"),
            "responses": responses("201", "opened", "Contract", true),
        } }));
        all.insert(
            "/v1/contracts/{id}".into(),
            json!({ "get": {
            "summary": "A contract's state (a party's operator or the central bank)",
            "security": bearer, "parameters": [id()],
            "responses": responses("200", "the contract", "Contract", false),
        } }),
        );
        all.insert(
            "/v1/contracts/{id}/confirm".into(),
            json!({ "post": {
            "summary": "The payer confirms delivery: the escrow, or lessons of a prepaid term",
            "security": bearer, "parameters": [id(), idempotency()],
            "requestBody": body("ConfirmContractRequest"),
            "responses": responses("201", "released", "ContractConfirmation", true),
        } }),
        );
        all.insert(
            "/v1/contracts/{id}/cancel".into(),
            json!({ "post": {
            "summary": "A party ends the contract; what it holds goes back to the payer",
            "security": bearer, "parameters": [id()],
            "requestBody": body("CancelContractRequest"),
            "responses": responses("200", "the contract now", "Contract", true),
        } }),
        );
        all
    }
}
