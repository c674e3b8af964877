//! What every handler in `server/` extracts from a request, and the state they share: the
//! caller (authenticated, with the table's answer for the route), the `Idempotency-Key`, typed
//! path ids and query parameters, each refused as a problem with a stable code. Handlers import
//! these from here, never from one another.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Path, Query};
use axum::http::request::Parts;
use axum::http::StatusCode;

use crate::ids::IdempotencyKey;
use crate::parties::{Operation, Party};

use super::auth::{AuthFailureLimiter, Tokens, UsedChallenges};
use super::gateway::{DeviceDesk, Gateway, GatewayError};
use super::metrics::Metrics;
use super::problem::Problem;

const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// What every handler shares: the gateway to the domain, the credentials and their limits.
pub struct App {
    pub gateway: Arc<Gateway>,
    pub tokens: Tokens,
    pub auth_failures: AuthFailureLimiter,
    /// Challenges already exchanged for a session.
    pub used_challenges: UsedChallenges,
    pub body_limit_bytes: usize,
    pub metrics: Arc<Metrics>,
    /// The analysis center, following the node as entries are applied.
    pub analytics: Arc<crate::analytics::live::LiveCenter>,
    /// What the scheduler knows and has done.
    pub due: Arc<crate::scheduler::DueWatch>,
    /// What operators sign for their hardware wallets.
    pub devices: Arc<DeviceDesk>,
    /// The winners' SMS outbox and its senders.
    pub notifier: super::notifier::Notifier,
}

pub type AppState = Arc<App>;

/// Runs a blocking gateway call off the async workers.
pub async fn blocking<T: Send + 'static>(
    app: &AppState,
    call: impl FnOnce(&Gateway) -> Result<T, GatewayError> + Send + 'static,
) -> Result<T, Problem> {
    let gateway = app.gateway.clone();
    tokio::task::spawn_blocking(move || call(&gateway))
        .await
        .map_err(|error| Problem::internal(format!("request task failed: {error}")))?
        .map_err(Problem::from)
}

/// The authenticated caller (anonymous without an `Authorization` header), with the table's
/// answer for the route checked before any body is read. The gateway checks again, with the
/// state: whose wallet, merchant or operator it is, and a terminal's kind.
pub struct Authenticated(pub Party);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Problem> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let party =
            app.tokens
                .authenticate(&parts.headers, &app.auth_failures, peer, Instant::now())?;
        let operation = parts
            .extensions
            .get::<MatchedPath>()
            .and_then(|path| Operation::at(parts.method.as_str(), path.as_str()));
        let terminal_deferred = matches!(party, Party::Terminal { .. })
            && operation.is_some_and(|op| op.admits_terminals());
        if let (Some(operation), false) = (operation, terminal_deferred) {
            operation
                .authorize(party, || None)
                .map_err(|denial| Problem::from(GatewayError::Denied { operation, denial }))?;
        }
        Ok(Authenticated(party))
    }
}

/// The `Idempotency-Key` header that every money-moving request carries.
pub struct IdempotencyKeyHeader(pub IdempotencyKey);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKeyHeader {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        let value = parts.headers.get(IDEMPOTENCY_KEY_HEADER).ok_or_else(|| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "IDEMPOTENCY_KEY_MISSING",
                "money-moving requests need an Idempotency-Key header (a UUID or up to 32 hex digits)",
            )
        })?;
        let malformed = |detail: String| {
            Problem::new(StatusCode::BAD_REQUEST, "IDEMPOTENCY_KEY_MALFORMED", detail)
        };
        let text = value
            .to_str()
            .map_err(|_| malformed("the Idempotency-Key header is not ASCII".into()))?;
        text.parse()
            .map(IdempotencyKeyHeader)
            .map_err(|error| malformed(error.to_string()))
    }
}

/// A typed id from the path, e.g. `W0000000001` or `OP01`.
pub struct PathId<T>(pub T);

impl<T, S> FromRequestParts<S> for PathId<T>
where
    T: FromStr<Err = crate::ids::IdParseError> + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let Path(text) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| {
                Problem::new(rejection.status(), "MALFORMED_PATH", rejection.body_text())
            })?;
        text.parse()
            .map(PathId)
            .map_err(|error: crate::ids::IdParseError| {
                Problem::new(StatusCode::BAD_REQUEST, "MALFORMED_ID", error.to_string())
            })
    }
}

/// Query parameters whose rejections are problems rather than axum's plain-text bodies.
pub struct Params<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| Params(value))
            .map_err(|rejection| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "MALFORMED_QUERY",
                    rejection.body_text(),
                )
            })
    }
}
