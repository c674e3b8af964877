//! Parties' credentials over HTTP. An operator's administrator registers staff members, each with
//! one role and a credential answered once, lists them and revokes one for good; a holder opens a
//! short session by signing a challenge with the wallet's key, for reads (the wallet, its payment
//! code, its sub-wallets). Staff records and revocations are commands in the log.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::certs::Signature;
use crate::command::{Command, Outcome};
use crate::error::CommandError;
use crate::ids::{OperatorId, StaffId, WalletId};
use crate::parties::{
    session_signing_bytes, CredentialSubject, Operation, Party, StaffRecord, StaffRole,
};

use super::auth::{CHALLENGE_TTL_S, SESSION_TTL_S};
use super::extract::{blocking, AppState, Authenticated, PathId};
use super::fields::{id_field, unprocessable};
use super::gateway::{now_s, staff_of, Gateway, GatewayError};
use super::problem::{JsonBody, Problem};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/operators/{op}/staff", post(add_staff).get(list_staff))
        .route("/v1/operators/{op}/staff/{s}/revoke", post(revoke_staff))
        .route("/v1/sessions/challenges", post(challenge))
        .route("/v1/sessions", post(open_session))
}

pub const OPENAPI_PATHS: [&str; 4] = [
    "/v1/operators/{op}/staff",
    "/v1/operators/{op}/staff/{s}/revoke",
    "/v1/sessions/challenges",
    "/v1/sessions",
];

#[derive(Clone, Debug, Serialize)]
pub struct StaffView {
    pub staff: String,
    pub operator: String,
    pub role: &'static str,
    pub label: String,
    pub revoked: bool,
    /// Answered once, when the staff member is registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl From<&StaffRecord> for StaffView {
    fn from(record: &StaffRecord) -> StaffView {
        StaffView {
            staff: record.id.to_string(),
            operator: record.operator.to_string(),
            role: record.role.as_str(),
            label: record.label.clone(),
            revoked: record.revoked,
            token: None,
        }
    }
}

impl Gateway {
    /// Registers a staff member at the administrator's own operator.
    pub fn add_staff(
        &self,
        party: Party,
        operator: OperatorId,
        role: StaffRole,
        label: String,
    ) -> Result<StaffView, GatewayError> {
        self.allow(Operation::AddStaff, party)?;
        staff_of(party, operator)?;
        let command = Command::AddStaff {
            operator,
            role,
            label,
        };
        let id = match self.submit_one(operator, command)? {
            Outcome::Staff(id) => id,
            other => unreachable!("adding staff answered {other:?}"),
        };
        self.refresh_credentials()?;
        self.staff_view(id)
    }

    fn staff_view(&self, id: StaffId) -> Result<StaffView, GatewayError> {
        let book = self.credentials.read().expect("credentials lock");
        Ok(StaffView::from(book.staff(id)?))
    }

    pub fn list_staff(
        &self,
        party: Party,
        operator: OperatorId,
    ) -> Result<Vec<StaffView>, GatewayError> {
        self.allow(Operation::ListStaff, party)?;
        staff_of(party, operator)?;
        let book = self.credentials.read().expect("credentials lock");
        Ok(book.staff_of(operator).map(StaffView::from).collect())
    }

    /// Revokes a staff member's credential for good; it fails at once, and after a restart.
    pub fn revoke_staff(
        &self,
        party: Party,
        operator: OperatorId,
        staff: StaffId,
    ) -> Result<StaffView, GatewayError> {
        self.allow(Operation::RevokeStaff, party)?;
        staff_of(party, operator)?;
        let of_operator = self.staff_view(staff)?.operator == operator.to_string();
        if !of_operator {
            // Another operator's staff looks like no staff at all.
            return Err(CommandError::UnknownStaff(staff).into());
        }
        let subject = CredentialSubject::Staff(staff);
        self.submit_one(operator, Command::RevokeCredential { subject })?;
        self.refresh_credentials()?;
        self.staff_view(staff)
    }

    /// The wallet's registered key, to check a holder's session signature against.
    pub fn wallet_key(&self, wallet: WalletId) -> Result<crate::certs::PublicKey, GatewayError> {
        Ok(self
            .node
            .query(move |state| state.wallet_key(wallet).copied())??)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddStaffRequest {
    /// teller, kyc_officer, compliance_officer or administrator.
    pub role: String,
    /// A desk or badge number: stored in the log, so never a customer's data.
    pub label: String,
}

async fn add_staff(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(operator): PathId<OperatorId>,
    JsonBody(body): JsonBody<AddStaffRequest>,
) -> Result<(StatusCode, Json<StaffView>), Problem> {
    let role = StaffRole::parse(&body.role).ok_or_else(|| {
        unprocessable(
            "MALFORMED_ROLE",
            format!(
                "role {:?} is not teller, kyc_officer, compliance_officer or administrator",
                body.role
            ),
        )
    })?;
    let label = body.label;
    let mut view = blocking(&app, move |gateway| {
        gateway.add_staff(caller, operator, role, label)
    })
    .await?;
    let id: StaffId = view.staff.parse().expect("a staff id prints and parses");
    view.token = Some(app.tokens.token_for(CredentialSubject::Staff(id)));
    Ok((StatusCode::CREATED, Json(view)))
}

async fn list_staff(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(operator): PathId<OperatorId>,
) -> Result<Json<Vec<StaffView>>, Problem> {
    let staff = blocking(&app, move |gateway| gateway.list_staff(caller, operator)).await?;
    Ok(Json(staff))
}

async fn revoke_staff(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Path((operator, staff)): Path<(String, String)>,
) -> Result<Json<StaffView>, Problem> {
    let malformed = |detail: String| Problem::new(StatusCode::BAD_REQUEST, "MALFORMED_ID", detail);
    let operator: OperatorId = operator
        .parse()
        .map_err(|error: crate::ids::IdParseError| malformed(error.to_string()))?;
    let staff: StaffId = staff
        .parse()
        .map_err(|error: crate::ids::IdParseError| malformed(error.to_string()))?;
    let view = blocking(&app, move |gateway| {
        gateway.revoke_staff(caller, operator, staff)
    })
    .await?;
    Ok(Json(view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    pub wallet: String,
}

#[derive(Serialize)]
pub struct ChallengeResponse {
    pub wallet: String,
    /// Sign `session_signing_bytes(wallet, challenge)` with the wallet's key.
    pub challenge: String,
    pub expires_at_s: u64,
}

async fn challenge(
    State(app): State<AppState>,
    Authenticated(_): Authenticated,
    JsonBody(body): JsonBody<ChallengeRequest>,
) -> Result<(StatusCode, Json<ChallengeResponse>), Problem> {
    let wallet: WalletId = id_field("wallet", &body.wallet)?;
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce)
        .map_err(|error| Problem::internal(format!("no randomness for a challenge: {error}")))?;
    let expires_at_s = now_s() + CHALLENGE_TTL_S;
    Ok((
        StatusCode::CREATED,
        Json(ChallengeResponse {
            wallet: wallet.to_string(),
            challenge: app.tokens.challenge_for(wallet, expires_at_s, &nonce),
            expires_at_s,
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    pub wallet: String,
    pub challenge: String,
    /// SM2 signature (128 hex digits) by the wallet's key over the session signing bytes.
    pub signature: String,
}

#[derive(Serialize)]
pub struct SessionResponse {
    pub wallet: String,
    /// `Authorization: Bearer <token>` for the holder's reads until it expires.
    pub token: String,
    pub expires_at_s: u64,
}

async fn open_session(
    State(app): State<AppState>,
    Authenticated(_): Authenticated,
    JsonBody(body): JsonBody<SessionRequest>,
) -> Result<(StatusCode, Json<SessionResponse>), Problem> {
    let wallet: WalletId = id_field("wallet", &body.wallet)?;
    let signature = Signature::from_hex(&body.signature)
        .map_err(|error| unprocessable("MALFORMED_SIGNATURE", format!("signature: {error}")))?;
    let now = now_s();
    app.tokens
        .check_challenge(wallet, &body.challenge, now)
        .map_err(|failure| failure.problem())?;
    let key = blocking(&app, move |gateway| gateway.wallet_key(wallet)).await?;
    key.verify(&session_signing_bytes(wallet, &body.challenge), &signature)
        .map_err(|_| Problem::from(CommandError::SignatureInvalid))?;
    // Only now, signed by the holder, is the challenge spent: once.
    app.used_challenges
        .claim(&body.challenge, now)
        .map_err(|failure| failure.problem())?;
    let expires_at_s = now + SESSION_TTL_S;
    Ok((
        StatusCode::CREATED,
        Json(SessionResponse {
            wallet: wallet.to_string(),
            token: app.tokens.session_for(wallet, expires_at_s),
            expires_at_s,
        }),
    ))
}
