//! The HTTP surface: each handler parses, calls the gateway, and maps the answer to a status.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tracing::Instrument;

use crate::amount::Amount;
use crate::audit::AuditReport;
use crate::certs::PublicKey;
use crate::ids::{EventId, IdempotencyKey, OperatorId, WalletId};
use crate::signing::SIGNATURE_WINDOW_MS_MAX;
use crate::wallet::{parse_phone, WalletClass};

use super::extract::{blocking, AppState, Authenticated, IdempotencyKeyHeader, PathId};
use super::fields::{holder_signature, unprocessable};
use super::gateway::{PaymentOrder, WalletResponse};
use super::openapi;
use super::problem::{JsonBody, Problem};

/// Longest client-supplied request id echoed back; longer ones are replaced.
const REQUEST_ID_CHARS_MAX: usize = 128;
const REQUEST_ID_HEADER: &str = "x-request-id";

pub fn router(app: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi_json))
        .route("/docs", get(docs))
        .route("/v1/operators/{op}/wallets", post(open_wallet))
        .route("/v1/operators/{op}/limits", get(limits))
        .route(
            "/v1/operators/{op}/code-payment-cap",
            axum::routing::put(set_code_payment_cap),
        )
        .route("/v1/wallets/{id}", get(wallet))
        .route("/v1/payments", post(pay))
        .route("/v1/context", get(signing_context))
        .route("/v1/transfers/{id}", get(transfer))
        .route("/v1/audit", get(audit_report))
        .merge(super::merchants::routes())
        .merge(super::contracts::routes())
        .merge(super::campaigns::routes())
        .merge(super::identity::routes())
        .merge(super::counter::routes())
        .merge(super::staff::routes())
        .merge(super::central_bank::routes())
        .merge(super::holders::routes())
        .merge(super::analytics::routes())
        .merge(super::devices::routes())
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(app.body_limit_bytes))
        .layer(middleware::from_fn_with_state(app.clone(), observe))
        .with_state(app)
}

fn field<T: FromStr>(name: &str, code: &'static str, text: &str) -> Result<T, Problem>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|error: T::Err| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            code,
            format!("{name}: {error}"),
        )
    })
}

fn hex_field<T, E: std::fmt::Display>(
    name: &str,
    code: &'static str,
    parsed: Result<T, E>,
) -> Result<T, Problem> {
    parsed.map_err(|error| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            code,
            format!("{name}: {error}"),
        )
    })
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(app): State<AppState>) -> Result<Json<Value>, Problem> {
    let entries = blocking(&app, |gateway| gateway.ready())
        .await
        .map_err(|problem| {
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, "NOT_READY", problem.detail)
        })?;
    Ok(Json(
        json!({ "status": "ready", "log_entries_applied": entries }),
    ))
}

async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    use std::fmt::Write as _;
    let mut text = app.metrics.render();
    // Time and the analysis center: what the scheduler submitted and how far the center read.
    let _ = writeln!(
        text,
        "# TYPE ecny_scheduler_entries_total counter\necny_scheduler_entries_total {}",
        app.due.ticks()
    );
    let _ = writeln!(
        text,
        "# TYPE ecny_analytics_events_read_total counter\necny_analytics_events_read_total {}",
        app.analytics.books().events_read()
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

async fn openapi_json() -> Json<Value> {
    Json(openapi::document())
}

async fn docs() -> Html<&'static str> {
    Html(openapi::DOCS_HTML)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenWalletRequest {
    /// Mainland mobile number, e.g. "13800138000".
    pub phone: String,
    /// The holder's SM2 public key, compressed SEC1, 66 hex digits.
    pub public_key: String,
    /// The holder's SM2 signature (128 hex digits) over the OpenWallet command's signing bytes:
    /// proof that the app holds the key. A teller at the counter may leave it out.
    pub signature: Option<String>,
    /// The last Unix millisecond the signature is good (see `GET /v1/context`); with a signature.
    pub not_after_ms: Option<u64>,
}

#[derive(Serialize)]
pub struct OpenWalletResponse {
    pub wallet: String,
    pub operator: String,
    pub class: u8,
}

async fn open_wallet(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(operator): PathId<OperatorId>,
    JsonBody(body): JsonBody<OpenWalletRequest>,
) -> Result<(StatusCode, Json<OpenWalletResponse>), Problem> {
    let phone = parse_phone(&body.phone).map_err(Problem::from)?;
    let key = hex_field(
        "public_key",
        "MALFORMED_PUBLIC_KEY",
        PublicKey::from_hex(&body.public_key),
    )?;
    let signature = match (&body.signature, body.not_after_ms) {
        (Some(signature), Some(not_after_ms)) => {
            Some(holder_signature(&body.public_key, signature, not_after_ms)?)
        }
        (Some(_), None) => {
            return Err(unprocessable(
                "NOT_AFTER_MISSING",
                "a signature needs the end of its window, not_after_ms".into(),
            ))
        }
        (None, _) => None,
    };
    let wallet = blocking(&app, move |gateway| {
        gateway.open_wallet(caller, operator, phone, (key, signature))
    })
    .await?;
    let response = OpenWalletResponse {
        wallet: wallet.to_string(),
        operator: operator.to_string(),
        class: 4,
    };
    Ok((StatusCode::CREATED, Json(response)))
}

async fn wallet(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(id): PathId<WalletId>,
) -> Result<Json<WalletResponse>, Problem> {
    let view = blocking(&app, move |gateway| gateway.wallet(caller, id)).await?;
    Ok(Json(view.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    pub payer: String,
    pub payee: String,
    /// Yuan with at most two decimals, e.g. "66.60".
    pub amount: String,
    /// The payer's SM2 public key (66 hex digits).
    pub public_key: String,
    /// The payer's SM2 signature (128 hex digits) over the Pay command's signing bytes.
    pub signature: String,
    /// The last Unix millisecond the signature is good (see `GET /v1/context`).
    pub not_after_ms: u64,
}

impl PaymentRequest {
    fn order(&self, key: IdempotencyKey) -> Result<PaymentOrder, Problem> {
        Ok(PaymentOrder {
            payer: field("payer", "MALFORMED_ID", &self.payer)?,
            payee: field("payee", "MALFORMED_ID", &self.payee)?,
            amount: field::<Amount>("amount", "MALFORMED_AMOUNT", &self.amount)?,
            key,
            signature: holder_signature(&self.public_key, &self.signature, self.not_after_ms)?,
        })
    }
}

#[derive(Serialize)]
pub struct PaymentResponse {
    pub transfer: String,
    pub payer: String,
    pub payee: String,
    pub amount: String,
}

async fn pay(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    JsonBody(body): JsonBody<PaymentRequest>,
) -> Result<(StatusCode, Json<PaymentResponse>), Problem> {
    let order = body.order(key)?;
    let response = PaymentResponse {
        transfer: String::new(),
        payer: order.payer.to_string(),
        payee: order.payee.to_string(),
        amount: order.amount.to_string(),
    };
    let transfer = blocking(&app, move |gateway| gateway.pay(caller, &order)).await?;
    let response = PaymentResponse {
        transfer: transfer.to_string(),
        ..response
    };
    Ok((StatusCode::CREATED, Json(response)))
}

#[derive(Serialize)]
pub struct ClassLimitsView {
    pub class: u8,
    /// What a holder brings to reach it.
    pub requirement: &'static str,
    /// Yuan, or absent for no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance_cap: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub single_payment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annual: Option<String>,
}

/// Each wallet class's limits at an operator: public, so an app can say what an upgrade brings.
async fn limits(
    State(app): State<AppState>,
    PathId(operator): PathId<OperatorId>,
) -> Result<Json<Value>, Problem> {
    let (limits, cap) = blocking(&app, move |gateway| gateway.class_limits(operator)).await?;
    let classes: Vec<ClassLimitsView> = WalletClass::ALL
        .into_iter()
        .zip(limits)
        .map(|(class, limits)| {
            let yuan = |limit: Option<Amount>| limit.map(|a| a.to_string());
            ClassLimitsView {
                class: class as u8,
                requirement: class.requirement(),
                balance_cap: yuan(limits.balance_cap),
                single_payment: yuan(limits.single_payment),
                daily: yuan(limits.daily),
                annual: yuan(limits.annual),
            }
        })
        .collect();
    Ok(Json(json!({
        "operator": operator.to_string(),
        "classes": classes,
        "code_payment_cap": cap.to_string(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodePaymentCapRequest {
    /// Yuan, e.g. "500.00": the most one payment code takes without the holder's confirmation.
    pub cap: String,
}

async fn set_code_payment_cap(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(operator): PathId<OperatorId>,
    JsonBody(body): JsonBody<CodePaymentCapRequest>,
) -> Result<Json<Value>, Problem> {
    let cap = super::fields::amount_field("cap", &body.cap)?;
    blocking(&app, move |gateway| {
        gateway.set_code_payment_cap(caller, operator, cap)
    })
    .await?;
    Ok(Json(
        json!({ "operator": operator.to_string(), "cap": cap.to_string() }),
    ))
}

/// What every holder's signature here names, and the clock its window is measured by.
async fn signing_context(State(app): State<AppState>) -> Json<Value> {
    Json(json!({
        "deployment": app.gateway.deployment().to_hex(),
        "now_ms": super::gateway::now_ms(),
        "signature_window_ms_max": SIGNATURE_WINDOW_MS_MAX,
    }))
}

async fn transfer(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(id): PathId<EventId>,
) -> Result<Json<Value>, Problem> {
    let view = blocking(&app, move |gateway| gateway.transfer(caller, id)).await?;
    let wallet = |side: Option<WalletId>| side.map(|w| w.to_string());
    Ok(Json(json!({
        "transfer": view.id.to_string(),
        "kind": view.kind.as_str(),
        "amount": view.amount.to_string(),
        "at_ms": view.at_ms,
        "from": wallet(view.from),
        "to": wallet(view.to),
    })))
}

async fn audit_report(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<Value>, Problem> {
    let report = blocking(&app, move |gateway| gateway.audit(caller)).await?;
    Ok(Json(audit_json(&report)))
}

fn audit_json(report: &AuditReport) -> Value {
    let operators: Vec<Value> = report
        .operators
        .iter()
        .map(|op| {
            json!({
                "operator": op.operator.to_string(),
                "name": op.name,
                "reserves": op.reserves.to_string(),
                "backing": op.backing.to_string(),
                "vault": op.vault.to_string(),
                "wallets": op.wallets.to_string(),
                "offline": op.offline.to_string(),
                "wallet_count": op.wallet_count,
                "customer_deposits": op.customer_deposits.to_string(),
            })
        })
        .collect();
    json!({
        "clean": report.is_clean(),
        "violations": report.violations.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "issued": report.issued.to_string(),
        "redeemed": report.redeemed.to_string(),
        "circulation": report.circulation.to_string(),
        "reserves_total": report.reserves_total.to_string(),
        "deposits_total": report.deposits_total.to_string(),
        "accounts": report.accounts,
        "events": report.events,
        "operators": operators,
    })
}

async fn route_not_found(method: Method, uri: axum::http::Uri) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "ROUTE_NOT_FOUND",
        format!("no route for {method} {}; see /docs", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!("{} does not take {method}; see /docs", uri.path()),
    )
}

/// Request id, one log line per request, and the request counter.
async fn observe(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|text| {
            !text.is_empty()
                && text.len() <= REQUEST_ID_CHARS_MAX
                && text.bytes().all(|b| b.is_ascii_graphic())
        })
        .map(str::to_string)
        .unwrap_or_else(new_request_id);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |path| path.as_str())
        .to_string();
    let method = request.method().clone();
    let span = tracing::info_span!("request", request_id = %id, %method, %route);
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.in_scope(|| {
        tracing::info!(
            status,
            elapsed_us = started.elapsed().as_micros() as u64,
            "answered"
        );
    });
    app.metrics.count_request(method.as_str(), &route, status);
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

fn new_request_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut bytes = [0u8; 8];
    // Without randomness a per-process sequence still ties one request's log lines together.
    if getrandom::fill(&mut bytes).is_err() {
        bytes = NEXT.fetch_add(1, Ordering::Relaxed).to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
