//! Every failure as `application/problem+json` (RFC 9457) with the domain's stable `code`, so the
//! API, the CLI and the web pages name a refusal the same way.

use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::CommandError;
use crate::node::NodeError;

use super::gateway::GatewayError;
use crate::channels::CodeError;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// One refusal: an HTTP status, a stable code and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    /// Sent as `Retry-After` (whole seconds) when the client should come back later.
    pub retry_after: Option<Duration>,
}

#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// 429 for a client address that presented too many wrong tokens this minute.
    pub fn too_many_auth_failures(retry_after: Duration) -> Problem {
        Problem {
            retry_after: Some(retry_after),
            ..Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TOO_MANY_AUTH_FAILURES",
                format!(
                    "too many wrong bearer tokens from this address; retry in {} s",
                    retry_after.as_secs()
                ),
            )
        }
    }

    pub fn unauthenticated(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", detail)
    }

    pub fn internal(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", detail)
    }

    /// The body; `type` is a URN per code so clients can switch on it without a network look-up.
    pub fn to_json(&self) -> String {
        let body = ProblemBody {
            kind: format!("urn:ecny:problem:{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            detail: &self.detail,
            code: self.code,
        };
        serde_json::to_string(&body).expect("a problem serializes")
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.to_json()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(retry_after) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after.as_secs().into());
        }
        response
    }
}

/// HTTP status of each domain refusal; the code itself comes from `CommandError::code`.
pub fn command_status(error: &CommandError) -> StatusCode {
    use CommandError::*;
    match error {
        UnknownOperator(_) | UnknownWallet(_) | UnknownPhone(_) | UnknownAccount(_)
        | UnknownDevice(_) | PendingNotFound(_) | UnknownTransfer(_) => StatusCode::NOT_FOUND,
        UnknownMerchant(_)
        | UnknownTerminal { .. }
        | UnknownOrder { .. }
        | UnknownSubWallet(_)
        | UnknownContract(_)
        | UnknownCampaign(_)
        | UnknownIdentityLookup(_)
        | UnknownStaff(_)
        | NotAMerchantPayment(_) => StatusCode::NOT_FOUND,
        NotYourWallet { .. }
        | NotYourMerchant { .. }
        | NotYourSubWallet { .. }
        | NotAContractParty { .. }
        | IdentityAtOperatorOnly { .. }
        | CentralBankOnly
        | NotYourRecord(_)
        | SignatureInvalid
        | SignatureMissing
        | SignatureRequired { .. }
        | SignatureExpired { .. }
        | SignatureWindowTooLong { .. }
        | SignatureWrongContext { .. } => StatusCode::FORBIDDEN,
        IdempotencyKeyReused { .. }
        | OperatorExists(_)
        | WalletExists(_)
        | PhoneTaken
        | DeviceExists(_)
        | OrderExists { .. }
        | OrderAlreadyPaid { .. }
        | PaymentCode(CodeError::Reused)
        | CampaignExists(_)
        | CampaignAlreadyFunded { .. }
        | CampaignAlreadyDrawn(_)
        | CampaignIdentityRegistered { .. }
        | CampaignNotDrawn(_)
        | PendingAlreadyResolved(_)
        | CredentialRevoked
        | OperatorSuspended(_)
        | IdentityWalletLimit { .. }
        | BankAccountAlreadyBound { .. } => StatusCode::CONFLICT,
        // The server built and signed the batch itself: these are its own faults.
        BatchSignatureInvalid | MalformedBatch(_) | IdentityNotSealed | IdentitySealBroken => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl From<CommandError> for Problem {
    fn from(error: CommandError) -> Problem {
        Problem::new(command_status(&error), error.code(), error.to_string())
    }
}

impl From<NodeError> for Problem {
    fn from(error: NodeError) -> Problem {
        let status = match error {
            NodeError::Stopped | NodeError::Poisoned => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Problem::new(status, error.code(), error.to_string())
    }
}

impl From<GatewayError> for Problem {
    fn from(error: GatewayError) -> Problem {
        match error {
            GatewayError::Refused(error) => error.into(),
            GatewayError::Node(error) => error.into(),
            GatewayError::NotYourOperator { .. } => {
                Problem::new(StatusCode::FORBIDDEN, error.code(), error.to_string())
            }
            GatewayError::Denied { denial, .. } if denial.is_unauthenticated() => {
                Problem::new(StatusCode::UNAUTHORIZED, error.code(), error.to_string())
            }
            GatewayError::Denied { .. } => {
                Problem::new(StatusCode::FORBIDDEN, error.code(), error.to_string())
            }
            GatewayError::NoDesk(_) => {
                Problem::new(StatusCode::NOT_FOUND, error.code(), error.to_string())
            }
            GatewayError::Forbidden { .. } => {
                Problem::new(StatusCode::FORBIDDEN, error.code(), error.to_string())
            }
            GatewayError::Code(CodeError::RateLimited { retry_after_s, .. }) => Problem {
                retry_after: Some(std::time::Duration::from_secs(retry_after_s.max(1))),
                ..Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    error.code(),
                    error.to_string(),
                )
            },
            GatewayError::Conflict { .. } => {
                Problem::new(StatusCode::CONFLICT, error.code(), error.to_string())
            }
            GatewayError::Setup(_) => Problem::internal(error.to_string()),
            GatewayError::TooMany { retry_after_s, .. } => Problem {
                retry_after: Some(std::time::Duration::from_secs(retry_after_s.max(1))),
                ..Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    error.code(),
                    error.to_string(),
                )
            },
            GatewayError::BadQuery { .. } => {
                Problem::new(StatusCode::BAD_REQUEST, error.code(), error.to_string())
            }
            GatewayError::Invalid { .. } => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                error.code(),
                error.to_string(),
            ),
            GatewayError::Code(CodeError::Reused) => {
                Problem::new(StatusCode::CONFLICT, error.code(), error.to_string())
            }
            GatewayError::Qr(_)
            | GatewayError::Ndef(_)
            | GatewayError::Code(_)
            | GatewayError::Render(_) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                error.code(),
                error.to_string(),
            ),
        }
    }
}

impl From<JsonRejection> for Problem {
    fn from(rejection: JsonRejection) -> Problem {
        let code = match &rejection {
            JsonRejection::JsonSyntaxError(_) => "JSON_SYNTAX",
            JsonRejection::JsonDataError(_) => "JSON_DATA",
            JsonRejection::MissingJsonContentType(_) => "CONTENT_TYPE_UNSUPPORTED",
            _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => "BODY_TOO_LARGE",
            _ => "BODY_UNREADABLE",
        };
        Problem::new(rejection.status(), code, rejection.body_text())
    }
}

/// `Json` whose rejections are problems rather than axum's plain-text bodies.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        let axum::Json(value) = axum::Json::<T>::from_request(request, state).await?;
        Ok(JsonBody(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::WalletId;

    #[test]
    fn refusals_map_to_the_statuses_clients_branch_on() {
        let unknown = Problem::from(CommandError::UnknownWallet(WalletId(9)));
        assert_eq!(
            (unknown.status, unknown.code),
            (StatusCode::NOT_FOUND, "UNKNOWN_WALLET")
        );
        let reused = Problem::from(CommandError::IdempotencyKeyReused {
            first: crate::ids::EventId(1).to_string(),
        });
        assert_eq!(reused.status, StatusCode::CONFLICT);
        assert_eq!(
            Problem::from(CommandError::SignatureInvalid).status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            Problem::from(CommandError::SameWallet).status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let body: serde_json::Value = serde_json::from_str(&unknown.to_json()).unwrap();
        assert_eq!(body["type"], "urn:ecny:problem:UNKNOWN_WALLET");
        assert_eq!(body["status"], 404);
    }
}
