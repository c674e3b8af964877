//! The analysis center on a running server: its statistics, its alerts and wallets' account
//! statements, read from the live center (`analytics::live`) that follows the node as entries
//! are applied. The central bank reads every figure and alert by pseudonymous ids; an operator
//! its own figures and the alerts about its own wallets; a statement goes to the wallet's
//! holder, its operator's staff and the central bank.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::analytics::alerts::Alert;
use crate::analytics::live::LiveCenter;
use crate::analytics::statement::{camt053, check_days, statement, StatementError};
use crate::ids::{OperatorId, WalletId};
use crate::parties::{Operation, Party};
use crate::time::parse_day;

use super::extract::{blocking, AppState, Authenticated, Params, PathId};
use super::gateway::{Gateway, GatewayError};
use super::problem::Problem;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/analytics/statistics", get(statistics))
        .route("/v1/analytics/alerts", get(alerts))
        .route("/v1/wallets/{id}/statement", get(account_statement))
}

#[derive(Serialize)]
pub struct StatisticsView {
    /// `all` for the central bank, else the operator whose own figures these are.
    pub scope: String,
    /// Ledger events the center has read: its place in the stream.
    pub events_read: u64,
    pub rows: Vec<StatRowView>,
}

#[derive(Serialize)]
pub struct StatRowView {
    pub table: String,
    pub key: String,
    pub count: u64,
    pub amount: String,
}

#[derive(Serialize)]
pub struct AlertView {
    pub key: String,
    pub rule: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wallet: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    pub at_ms: u64,
    pub amount: String,
    pub transfers: Vec<String>,
    pub explanation: String,
    pub status: &'static str,
}

impl From<&Alert> for AlertView {
    fn from(alert: &Alert) -> AlertView {
        AlertView {
            key: alert.key.clone(),
            rule: alert.rule.code(),
            wallet: alert.wallet.map(|w| w.to_string()),
            device: alert.device.map(|d| d.to_string()),
            operator: alert.operator.map(|o| o.to_string()),
            at_ms: alert.at_ms,
            amount: alert.amount.to_string(),
            transfers: alert.transfers.iter().map(|t| t.to_string()).collect(),
            explanation: alert.explanation.clone(),
            status: alert.status.as_str(),
        }
    }
}

/// Whose figures a caller reads: every one (`None`) or its operator's own.
fn scope(party: Party) -> Option<OperatorId> {
    party.staff_operator()
}

impl Gateway {
    pub fn statistics(
        &self,
        live: &LiveCenter,
        party: Party,
    ) -> Result<StatisticsView, GatewayError> {
        self.allow(Operation::ReadStatistics, party)?;
        let only = scope(party);
        let books = live.books();
        Ok(StatisticsView {
            scope: only.map_or_else(|| "all".to_string(), |op| op.to_string()),
            events_read: books.events_read(),
            rows: books
                .statistics_rows(only)
                .into_iter()
                .map(|row| StatRowView {
                    table: row.table,
                    key: row.key,
                    count: row.count,
                    amount: row.amount.to_string(),
                })
                .collect(),
        })
    }

    pub fn alerts(&self, live: &LiveCenter, party: Party) -> Result<Vec<AlertView>, GatewayError> {
        self.allow(Operation::ListAlerts, party)?;
        let alerts = live.books().alerts(scope(party));
        Ok(alerts.iter().map(AlertView::from).collect())
    }

    /// The wallet's camt.053 statement over China-time days `from`..=`to`, from the durable
    /// state and the live center's pseudonymous directory.
    pub fn statement(
        &self,
        live: Arc<LiveCenter>,
        party: Party,
        wallet: WalletId,
        days: (u32, u32),
    ) -> Result<Result<String, StatementError>, GatewayError> {
        self.allow(Operation::ReadStatement, party)?;
        self.wallet_in_scope(party, wallet)?;
        Ok(self.node.query(move |state| {
            let books = live.directory_now(state);
            statement(state, books.directory(), wallet, days)
                .map(|found| camt053(&found, books.directory(), state.last_timestamp_ms()))
        })?)
    }
}

async fn statistics(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<StatisticsView>, Problem> {
    let live = app.analytics.clone();
    let view = blocking(&app, move |gateway| gateway.statistics(&live, caller)).await?;
    Ok(Json(view))
}

async fn alerts(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<Vec<AlertView>>, Problem> {
    let live = app.analytics.clone();
    let view = blocking(&app, move |gateway| gateway.alerts(&live, caller)).await?;
    Ok(Json(view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementQuery {
    /// First day, China time, `YYYY-MM-DD`.
    pub from: String,
    /// Last day, China time, `YYYY-MM-DD`.
    pub to: String,
}

fn day(name: &str, text: &str) -> Result<u32, Problem> {
    parse_day(text).ok_or_else(|| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "MALFORMED_DATE",
            format!("{name} {text:?} is not a YYYY-MM-DD day from 1970 on"),
        )
    })
}

async fn account_statement(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    PathId(wallet): PathId<WalletId>,
    Params(query): Params<StatementQuery>,
) -> Result<impl IntoResponse, Problem> {
    let days = (day("from", &query.from)?, day("to", &query.to)?);
    let refused = |error: StatementError| {
        let status = match error {
            StatementError::UnknownWallet(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        Problem::new(status, error.code(), error.to_string())
    };
    // The range is refused before anything is read.
    check_days(days.0, days.1).map_err(refused)?;
    let live = app.analytics.clone();
    let xml = blocking(&app, move |gateway| {
        gateway.statement(live, caller, wallet, days)
    })
    .await?
    .map_err(refused)?;
    Ok(([(header::CONTENT_TYPE, "application/xml")], xml))
}

pub const OPENAPI_PATHS: [&str; 3] = [
    "/v1/analytics/statistics",
    "/v1/analytics/alerts",
    "/v1/wallets/{id}/statement",
];

pub mod openapi {
    use serde_json::{json, Map, Value};

    use crate::server::openapi_doc::{ok, path_param, responses, schema_ref};

    pub fn schemas() -> Map<String, Value> {
        let s = || json!({ "type": "string" });
        let mut all = Map::new();
        all.insert(
            "StatRow".into(),
            json!({ "type": "object", "properties": {
                "table": { "type": "string", "description": "total, day, active_wallets, channel, operator, region, mcc, merchants, wallets or movement" },
                "key": s(), "count": { "type": "integer" },
                "amount": { "type": "string", "description": "yuan with two decimals" }
            } }),
        );
        all.insert(
            "Statistics".into(),
            json!({ "type": "object", "properties": {
                "scope": { "type": "string", "description": "all (the central bank) or the operator whose own figures these are" },
                "events_read": { "type": "integer", "description": "ledger events the analysis center has read so far" },
                "rows": { "type": "array", "items": schema_ref("StatRow") }
            } }),
        );
        all.insert(
            "Alert".into(),
            json!({ "type": "object", "properties": {
                "key": s(), "rule": s(), "wallet": s(), "device": s(), "operator": s(),
                "at_ms": { "type": "integer" }, "amount": s(),
                "transfers": { "type": "array", "items": s() },
                "explanation": s(),
                "status": { "type": "string", "enum": ["open", "explained", "closed"] }
            } }),
        );
        all
    }

    pub fn paths() -> Map<String, Value> {
        let bearer = json!([{ "bearer": [] }]);
        let day = |name: &str, description: &str| {
            json!({ "name": name, "in": "query", "required": true, "description": description,
                "schema": { "type": "string", "format": "date", "example": "2026-11-23" } })
        };
        let mut all = Map::new();
        all.insert(
            "/v1/analytics/statistics".into(),
            json!({ "get": {
                "summary": "The analysis center's statistics, kept up to date as entries are applied: every figure (the central bank) or the operator's own payments",
                "security": bearer,
                "responses": responses(ok("200", "the figures as rows", schema_ref("Statistics")), false, &[]),
            } }),
        );
        all.insert(
            "/v1/analytics/alerts".into(),
            json!({ "get": {
                "summary": "The analysis center's alerts with their explanations: every one (the central bank) or those about the operator's own wallets",
                "security": bearer,
                "responses": responses(ok("200", "the alerts, oldest first", json!({ "type": "array", "items": schema_ref("Alert") })), false, &[]),
            } }),
        );
        let mut statement = responses(
            (
                "200".into(),
                json!({ "description": "the statement as ISO 20022 camt.053.001.08",
                    "content": { "application/xml": { "schema": { "type": "string" } } } }),
            ),
            false,
            &[],
        );
        statement["422"]["description"] = json!(
            "STATEMENT_DAYS_REVERSED, STATEMENT_TOO_LONG: the days asked for are not a range of at most 366"
        );
        all.insert(
            "/v1/wallets/{id}/statement".into(),
            json!({ "get": {
                "summary": "A wallet's account statement over China-time days, counterparties by pseudonymous ids: to its holder, its operator's staff and the central bank",
                "security": bearer,
                "parameters": [path_param("id", "W0000000001"), day("from", "first day, China time"), day("to", "last day, China time")],
                "responses": statement,
            } }),
        );
        all
    }
}
