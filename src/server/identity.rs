//! Controllable anonymity over HTTP: the only way to link a wallet to a person is a logged
//! de-anonymization request made by a compliance officer of the wallet's own operator with a
//! legal reason; the identity is answered to that officer alone. The central bank (the
//! regulator) reads the log — who looked, at which wallet, why, when — never the identities.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::command::{Command, Origin, Outcome};
use crate::error::CommandError;
use crate::ids::WalletId;
use crate::parties::{Operation, Party};

use super::extract::{blocking, AppState, Authenticated, PathId};
use super::gateway::{Gateway, GatewayError};
use super::problem::{JsonBody, Problem};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/wallets/{id}/deanonymize", post(deanonymize))
        .route("/v1/deanonymizations", get(log))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeanonymizeRequest {
    /// The legal basis, e.g. a case number and the authority that asked; logged verbatim.
    pub reason: String,
}

#[derive(Serialize)]
pub struct DisclosedIdentityView {
    pub lookup: String,
    pub wallet: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_number: Option<String>,
    pub verified_in_person: bool,
}

#[derive(Serialize)]
pub struct LookupView {
    pub lookup: String,
    pub operator: String,
    pub wallet: String,
    pub reason: String,
    pub at_ms: u64,
}

impl Gateway {
    /// Logs the look-up, then answers the identity from the operator's own directory.
    pub fn deanonymize(
        &self,
        party: Party,
        wallet: WalletId,
        reason: String,
    ) -> Result<DisclosedIdentityView, GatewayError> {
        self.allow(Operation::Deanonymize, party)?;
        let operator = self.wallet_in_scope(party, wallet)?;
        let lookup = match self.submit_one(operator, Command::Deanonymize { wallet, reason })? {
            Outcome::IdentityLookup(lookup) => lookup,
            other => unreachable!("de-anonymization answered {other:?}"),
        };
        let sealed = self
            .node
            .query(move |state| state.disclosed_identity(Origin::Operator(operator), lookup))??;
        let desk = self.desk(operator)?;
        let disclosed = sealed
            .opened(&desk.identity_key)
            .map_err(|_| CommandError::IdentitySealBroken)?;
        Ok(DisclosedIdentityView {
            lookup: disclosed.lookup.to_string(),
            wallet: disclosed.wallet.to_string(),
            phone: disclosed.phone.map(|phone| phone.to_string()),
            name: disclosed.name,
            id_number: disclosed.id_number,
            verified_in_person: disclosed.verified_in_person,
        })
    }

    /// The log of every look-up: the regulator's whole of it, an operator's own entries.
    pub fn deanonymization_log(&self, party: Party) -> Result<Vec<LookupView>, GatewayError> {
        self.allow(Operation::ReadDeanonymizations, party)?;
        let only = party.staff_operator();
        Ok(self.node.query(move |state| {
            state
                .deanonymization_log()
                .iter()
                .filter(|entry| only.is_none_or(|op| op == entry.operator))
                .map(|entry| LookupView {
                    lookup: entry.id.to_string(),
                    operator: entry.operator.to_string(),
                    wallet: entry.wallet.to_string(),
                    reason: entry.reason.clone(),
                    at_ms: entry.at_ms,
                })
                .collect()
        })?)
    }
}

async fn deanonymize(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(wallet): PathId<WalletId>,
    JsonBody(body): JsonBody<DeanonymizeRequest>,
) -> Result<(StatusCode, Json<DisclosedIdentityView>), Problem> {
    let reason = body.reason;
    let view = blocking(&app, move |gateway| {
        gateway.deanonymize(caller, wallet, reason)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

async fn log(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<Vec<LookupView>>, Problem> {
    let entries = blocking(&app, move |gateway| gateway.deanonymization_log(caller)).await?;
    Ok(Json(entries))
}

pub const OPENAPI_PATHS: [&str; 2] = ["/v1/wallets/{id}/deanonymize", "/v1/deanonymizations"];

pub mod openapi {
    use serde_json::{json, Map, Value};

    use crate::server::openapi_doc::{body, ok, path_param, responses, schema_ref};

    pub fn schemas() -> Map<String, Value> {
        let s = || json!({ "type": "string" });
        let mut all = Map::new();
        all.insert(
            "DeanonymizeRequest".into(),
            json!({
                "type": "object", "additionalProperties": false, "required": ["reason"],
                "properties": { "reason": { "type": "string", "description": "the legal basis, logged verbatim" } }
            }),
        );
        all.insert(
            "DisclosedIdentity".into(),
            json!({ "type": "object", "properties": {
                "lookup": s(), "wallet": s(), "phone": s(), "name": s(), "id_number": s(),
                "verified_in_person": { "type": "boolean" }
            } }),
        );
        all.insert(
            "IdentityLookup".into(),
            json!({ "type": "object", "properties": {
                "lookup": s(), "operator": s(), "wallet": s(), "reason": s(),
                "at_ms": { "type": "integer" }
            } }),
        );
        all
    }

    pub fn paths() -> Map<String, Value> {
        let bearer = json!([{ "bearer": [] }]);
        let mut all = Map::new();
        all.insert(
            "/v1/wallets/{id}/deanonymize".into(),
            json!({ "post": {
                "summary": "Link a wallet to its holder, with a legal reason; logged, and answered to the wallet's own operator only",
                "security": bearer, "parameters": [path_param("id", "W0000000001")],
                "requestBody": body("DeanonymizeRequest"),
                "responses": responses(ok("201", "logged, and the identity the operator holds", schema_ref("DisclosedIdentity")), true, &[]),
            } }),
        );
        all.insert(
            "/v1/deanonymizations".into(),
            json!({ "get": {
                "summary": "The de-anonymization log: every look-up (the central bank) or the caller's own (an operator)",
                "security": bearer,
                "responses": responses(ok("200", "the log, oldest first", json!({ "type": "array", "items": schema_ref("IdentityLookup") })), false, &[]),
            } }),
        );
        all
    }
}
