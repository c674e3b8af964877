//! The OpenAPI 3 document, written by hand as JSON: the API is small, and a derive crate would add
//! a proc-macro tree to every build for a few hundred lines of output.

use serde_json::{json, Value};

/// Paths the router serves; a test checks the document and the router agree.
pub const PATHS: [&str; 76] = [
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/v1/operators/{op}/wallets",
    "/v1/wallets/{id}",
    "/v1/payments",
    "/v1/context",
    "/v1/transfers/{id}",
    "/v1/audit",
    "/v1/operators/{op}/limits",
    "/v1/operators/{op}/code-payment-cap",
    // Staff and holders' sessions (`staff::OPENAPI_PATHS`).
    "/v1/operators/{op}/staff",
    "/v1/operators/{op}/staff/{s}/revoke",
    "/v1/sessions/challenges",
    "/v1/sessions",
    // The acquiring side (`merchants::OPENAPI_PATHS`).
    "/v1/operators/{op}/merchants",
    "/v1/merchants/{m}",
    "/v1/merchants/{m}/terminals",
    "/v1/merchants/{m}/token",
    "/v1/merchants/{m}/terminals/{t}/token",
    "/v1/merchants/{m}/qr",
    "/v1/merchants/{m}/tap-zone",
    "/v1/merchants/{m}/orders",
    "/v1/merchants/{m}/orders/{reference}",
    "/v1/merchants/{m}/code-payments",
    "/v1/merchants/{m}/sub-wallets",
    "/v1/merchants/{m}/sub-wallet-charges",
    "/v1/merchants/{m}/refunds",
    "/v1/merchants/{m}/payments",
    "/v1/merchants/{m}/settlement",
    "/v1/request-payments",
    "/v1/wallets/{id}/payment-code",
    "/v1/wallets/{id}/sub-wallets",
    "/v1/sub-wallets/{sw}",
    // Smart contracts (`contracts::OPENAPI_PATHS`).
    "/v1/contracts",
    "/v1/contracts/{id}",
    "/v1/contracts/{id}/confirm",
    "/v1/contracts/{id}/cancel",
    // The operator's counter (`counter::OPENAPI_PATHS`).
    "/v1/wallets/{id}/bank-account",
    "/v1/wallets/{id}/kyc",
    "/v1/wallets/{id}/exchange",
    // Controllable anonymity (`identity::OPENAPI_PATHS`).
    "/v1/wallets/{id}/deanonymize",
    "/v1/deanonymizations",
    // The central bank (`central_bank::OPENAPI_PATHS`).
    "/v1/operators",
    "/v1/operators/{op}/reserves",
    "/v1/operators/{op}/issuance",
    "/v1/operators/{op}/redemption",
    "/v1/operators/{op}/suspension",
    "/v1/circulation",
    // A holder's everyday operations (`holders::OPENAPI_PATHS`).
    "/v1/wallets/{id}/deposit-back",
    "/v1/wallets/{id}/history",
    "/v1/wallets/{id}/freeze",
    "/v1/wallets/{id}/unfreeze",
    "/v1/wallets/{id}/close",
    "/v1/wallets/{id}/phone-lookups",
    // The analysis center (`analytics::OPENAPI_PATHS`).
    "/v1/analytics/statistics",
    "/v1/analytics/alerts",
    "/v1/wallets/{id}/statement",
    // Hardware wallets (`devices::OPENAPI_PATHS`).
    "/v1/operators/{op}/devices",
    "/v1/devices/{d}",
    "/v1/devices/{d}/loads",
    "/v1/devices/{d}/unloads",
    "/v1/devices/{d}/sync-nonce",
    "/v1/devices/{d}/syncs",
    "/v1/devices/{d}/block",
    "/v1/revocations",
    // Red-packet campaigns (`campaigns::OPENAPI_PATHS`).
    "/v1/campaigns",
    "/v1/campaigns/{c}",
    "/v1/campaigns/{c}/funding",
    "/v1/campaigns/{c}/registrations",
    "/v1/campaigns/{c}/draw",
    "/v1/campaigns/{c}/redemption",
    "/v1/campaigns/{c}/notices",
    "/v1/wallets/{id}/packets",
];

/// Canonical forms; the server also accepts a little more for phones (surrounding spaces, "+86").
/// Amounts and idempotency keys are taken exactly in these forms.
const OPERATOR_PATTERN: &str = "^OP[0-9]{1,4}$";
const WALLET_PATTERN: &str = "^W[0-9]{1,10}$";
const PHONE_PATTERN: &str = "^1[0-9]{10}$";
const AMOUNT_PATTERN: &str = "^[0-9]{1,13}([.][0-9]{1,2})?$";
const PUBLIC_KEY_PATTERN: &str = "^0[23][0-9a-fA-F]{64}$";
const SIGNATURE_PATTERN: &str = "^[0-9a-fA-F]{128}$";
const IDEMPOTENCY_KEY_PATTERN: &str =
    "^([0-9a-fA-F]{1,32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$";

fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
    })
}

fn ok_json(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn body(schema: &str) -> Value {
    json!({
        "required": true,
        "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } }
    })
}

fn schemas() -> Value {
    json!({
        "Problem": {
            "type": "object",
            "description": "RFC 9457 problem details; `code` is the stable machine-readable code.",
            "required": ["type", "title", "status", "detail", "code"],
            "properties": {
                "type": { "type": "string", "example": "urn:ecny:problem:LIMIT_SINGLE_PAYMENT" },
                "title": { "type": "string", "example": "Unprocessable Entity" },
                "status": { "type": "integer", "example": 422 },
                "detail": { "type": "string" },
                "code": { "type": "string", "example": "LIMIT_SINGLE_PAYMENT" }
            }
        },
        "OpenWalletRequest": {
            "type": "object", "additionalProperties": false,
            "required": ["phone", "public_key"],
            "properties": {
                "phone": { "type": "string", "pattern": PHONE_PATTERN, "example": "13800138000" },
                "public_key": { "type": "string", "pattern": PUBLIC_KEY_PATTERN, "description": "SM2 public key, compressed SEC1, 66 hex digits" },
                "signature": { "type": "string", "pattern": SIGNATURE_PATTERN, "description": "SM2 signature by that key over Command::OpenWallet's signing bytes for this deployment and operator (docs/signing.md): the app's proof it holds the key (a teller may leave it out)" },
                "not_after_ms": { "type": "integer", "minimum": 0, "description": "with a signature: the last Unix millisecond it is good (see GET /v1/context)" }
            }
        },
        "OpenWalletResponse": {
            "type": "object",
            "required": ["wallet", "operator", "class"],
            "properties": {
                "wallet": { "type": "string", "pattern": WALLET_PATTERN, "example": "W0000000001" },
                "operator": { "type": "string", "pattern": OPERATOR_PATTERN, "example": "OP01" },
                "class": { "type": "integer", "enum": [4] }
            }
        },
        "Wallet": {
            "type": "object",
            "required": ["wallet", "operator", "class", "status", "balance"],
            "properties": {
                "wallet": { "type": "string", "pattern": WALLET_PATTERN },
                "operator": { "type": "string", "pattern": OPERATOR_PATTERN },
                "class": { "type": "integer", "minimum": 1, "maximum": 4 },
                "status": { "type": "string", "enum": ["active", "frozen", "closed"] },
                "balance": { "type": "string", "pattern": AMOUNT_PATTERN, "example": "100.00" }
            }
        },
        "PaymentRequest": {
            "type": "object", "additionalProperties": false,
            "required": ["payer", "payee", "amount", "public_key", "signature", "not_after_ms"],
            "properties": {
                "payer": { "type": "string", "pattern": WALLET_PATTERN, "example": "W0000000001" },
                "payee": { "type": "string", "pattern": WALLET_PATTERN, "example": "W0000000002" },
                "amount": { "type": "string", "pattern": AMOUNT_PATTERN, "example": "66.60", "description": "yuan, at most two decimals" },
                "public_key": { "type": "string", "pattern": PUBLIC_KEY_PATTERN, "description": "the payer's SM2 public key (66 hex digits)" },
                "signature": { "type": "string", "pattern": SIGNATURE_PATTERN, "description": "SM2 signature (128 hex digits) over Command::Pay's signing bytes (docs/signing.md), idempotency key included" },
                "not_after_ms": { "type": "integer", "minimum": 0, "description": "the last Unix millisecond the signature is good, at most signature_window_ms_max after the server's now" }
            }
        },
        "SigningContext": {
            "type": "object",
            "required": ["deployment", "now_ms", "signature_window_ms_max"],
            "properties": {
                "deployment": { "type": "string", "pattern": "^[0-9a-f]{32}$", "description": "this deployment's id, signed into every holder's signature" },
                "now_ms": { "type": "integer", "description": "the server's clock, Unix milliseconds" },
                "signature_window_ms_max": { "type": "integer", "example": 600000 }
            }
        },
        "Transfer": {
            "type": "object",
            "required": ["transfer", "kind", "amount", "at_ms"],
            "properties": {
                "transfer": { "type": "string", "pattern": "^T[0-9]+$" },
                "kind": { "type": "string", "example": "payment" },
                "amount": { "type": "string", "pattern": AMOUNT_PATTERN },
                "at_ms": { "type": "integer" },
                "from": { "type": "string", "nullable": true, "pattern": WALLET_PATTERN, "description": "the debited wallet, if a wallet" },
                "to": { "type": "string", "nullable": true, "pattern": WALLET_PATTERN, "description": "the credited wallet, if a wallet" }
            }
        },
        "Payment": {
            "type": "object",
            "required": ["transfer", "payer", "payee", "amount"],
            "properties": {
                "transfer": { "type": "string", "pattern": "^T[0-9]+$", "example": "T000000000042" },
                "payer": { "type": "string", "pattern": WALLET_PATTERN },
                "payee": { "type": "string", "pattern": WALLET_PATTERN },
                "amount": { "type": "string", "pattern": AMOUNT_PATTERN }
            }
        },
        "ChallengeRequest": {
            "type": "object", "additionalProperties": false, "required": ["wallet"],
            "properties": { "wallet": { "type": "string", "pattern": WALLET_PATTERN, "example": "W0000000001" } }
        },
        "SessionRequest": {
            "type": "object", "additionalProperties": false, "required": ["wallet", "challenge", "signature"],
            "properties": {
                "wallet": { "type": "string", "pattern": WALLET_PATTERN },
                "challenge": { "type": "string", "description": "as POST /v1/sessions/challenges answered it" },
                "signature": { "type": "string", "pattern": SIGNATURE_PATTERN, "description": "SM2 signature by the wallet's key over the session signing bytes" }
            }
        },
        "AuditReport": {
            "type": "object",
            "required": ["clean", "violations", "issued", "redeemed", "circulation", "operators"],
            "properties": {
                "clean": { "type": "boolean" },
                "violations": { "type": "array", "items": { "type": "string" } },
                "issued": { "type": "string" },
                "redeemed": { "type": "string" },
                "circulation": { "type": "string" },
                "operators": { "type": "array", "items": { "type": "object" } }
            }
        }
    })
}

pub fn document() -> Value {
    let mut document = described_paths();
    if let Some(paths) = document["paths"].as_object_mut() {
        paths.extend(super::merchants::openapi::paths());
        paths.extend(super::contracts::openapi::paths());
        paths.extend(super::campaigns::openapi::paths());
        paths.extend(super::counter::openapi::paths());
        paths.extend(super::identity::openapi::paths());
        paths.extend(super::central_bank::openapi::paths());
        paths.extend(super::holders::openapi::paths());
        paths.extend(super::analytics::openapi::paths());
        paths.extend(super::devices::openapi::paths());
        paths.extend(parties_paths());
    }
    if let Some(schemas) = document["components"]["schemas"].as_object_mut() {
        schemas.extend(super::merchants::openapi::schemas());
        schemas.extend(super::contracts::openapi::schemas());
        schemas.extend(super::campaigns::openapi::schemas());
        schemas.extend(super::counter::openapi::schemas());
        schemas.extend(super::identity::openapi::schemas());
        schemas.extend(super::central_bank::openapi::schemas());
        schemas.extend(super::holders::openapi::schemas());
        schemas.extend(super::analytics::openapi::schemas());
        schemas.extend(super::devices::openapi::schemas());
    }
    document["components"]["securitySchemes"] = security_schemes();
    apply_the_table(&mut document);
    add_token_responses(&mut document);
    list_problem_codes(&mut document);
    document
}

/// One bearer scheme per kind of credential, so a client knows which it needs where.
fn security_schemes() -> Value {
    let bearer = |description: &str| json!({ "type": "http", "scheme": "bearer", "description": description });
    json!({
        "centralBank": bearer("the central bank's token, DIR/keys/central-bank.token"),
        "staff": bearer("an operator staff member's token `ST000001.<mac>`, answered once by POST /v1/operators/{op}/staff; its role (teller, kyc_officer, compliance_officer, administrator) says what it may do. DIR/keys/OPxx.token is the operator's administrator"),
        "holderSession": bearer("a holder's session `W0000000001.<expires_s>.<mac>` from POST /v1/sessions (a challenge signed with the wallet's SM2 key); for reads. Money-moving commands carry the holder's signature instead and need no session"),
        "merchant": bearer("a merchant's token `M00000001.<mac>`, answered at onboarding or by POST /v1/merchants/{m}/token"),
        "terminal": bearer("a terminal's token `M00000001-T0002.<mac>`; a terminal may only what its kind (pos, scan_gun, courier, online_shop) may")
    })
}

/// Each operation's `security`, from the one authorization table (`parties::Operation`): the
/// schemes of the parties that may call it, and `{}` where no credential is needed (public, or
/// authorised by the holder's signature in the body).
fn apply_the_table(document: &mut Value) {
    use crate::parties::{Operation, PartyKind};
    for operation in Operation::ALL {
        let (method, path) = operation.route();
        // Where two operations share a route, the first (the more permissive) documents it.
        if Operation::at(method, path) != Some(operation) {
            continue;
        }
        let entry = &mut document["paths"][path][method.to_ascii_lowercase()];
        let Some(object) = entry.as_object_mut() else {
            continue;
        };
        if operation.denial_codes().is_empty() {
            // Public: no credential at all.
            object.remove("security");
            continue;
        }
        let mut security: Vec<Value> = Vec::new();
        let mut parties: Vec<String> = Vec::new();
        for kind in PartyKind::ALL {
            if operation.decide(kind).is_err() {
                continue;
            }
            parties.push(kind.name());
            let requirement = match kind {
                PartyKind::CentralBank => json!({ "centralBank": [] }),
                PartyKind::Staff(_) => json!({ "staff": [] }),
                PartyKind::Holder => json!({ "holderSession": [] }),
                PartyKind::Merchant => json!({ "merchant": [] }),
                PartyKind::Terminal(_) => json!({ "terminal": [] }),
                // The holder's signature in the body is the authority.
                PartyKind::Anonymous => json!({}),
            };
            if !security.contains(&requirement) {
                security.push(requirement);
            }
        }
        object.insert("security".into(), Value::Array(security));
        object.insert("x-parties".into(), json!(parties));
    }
}

/// Every operation behind a token shares the answers of the token check (401, 429) and of a
/// node that is stopping (503) or a fault of the server's own (500).
fn add_token_responses(document: &mut Value) {
    let retry_after = json!({
        "Retry-After": { "description": "seconds until the client's minute is over", "schema": { "type": "integer", "minimum": 1 } }
    });
    let paths = document["paths"].as_object_mut().expect("paths");
    for operation in paths
        .values_mut()
        .flat_map(|ops| ops.as_object_mut().expect("operations").values_mut())
    {
        if operation.get("security").is_none() {
            continue;
        }
        let responses = operation["responses"].as_object_mut().expect("responses");
        responses
            .entry("401")
            .or_insert_with(|| problem("UNAUTHENTICATED: no or unknown token"));
        let mut too_many = problem(
            "TOO_MANY_AUTH_FAILURES: this address presented too many wrong tokens this minute",
        );
        too_many["headers"] = retry_after.clone();
        responses.entry("429").or_insert(too_many);
        responses
            .entry("500")
            .or_insert_with(|| problem("INTERNAL: a fault of the server's own"));
        responses.entry("503").or_insert_with(|| problem("NODE_STOPPED, NODE_POISONED: the node is stopping, or stopped after a storage fault"));
    }
}

fn described_paths() -> Value {
    let bearer = json!([{ "bearer": [] }]);
    let idempotency = json!({
        "name": "Idempotency-Key", "in": "header", "required": true,
        "description": "1 to 32 hex digits, or a UUID (8-4-4-4-12); a retry with the same key and command answers the first result, the key on another command is refused IDEMPOTENCY_KEY_REUSED",
        "schema": { "type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN }
    });
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "ecny",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "API of a retail CBDC node. Operators authenticate with the bearer token in DIR/keys/OPxx.token, the central bank with DIR/keys/central-bank.token, merchants and their terminals with the tokens they were given at onboarding; a holder authorises a payment by signing it. Every failure is application/problem+json."
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": schemas()
        },
        "paths": {
            "/healthz": { "get": { "summary": "The process is alive", "responses": { "200": ok_json("alive", json!({"type": "object"})) } } },
            "/readyz": { "get": { "summary": "The node answers a query", "responses": {
                "200": ok_json("ready", json!({"type": "object"})), "503": problem("the node does not answer") } } },
            "/metrics": { "get": { "summary": "Prometheus text: requests, payments committed, commit latency",
                "responses": { "200": { "description": "text exposition format 0.0.4",
                    "content": { "text/plain": { "schema": { "type": "string" } } } } } } },
            "/openapi.json": { "get": { "summary": "This document", "responses": { "200": ok_json("OpenAPI 3", json!({"type": "object"})) } } },
            "/docs": { "get": { "summary": "A page listing these endpoints", "responses": { "200": { "description": "the page",
                "content": { "text/html": { "schema": { "type": "string" } } } } } } },
            "/v1/operators/{op}/wallets": { "post": {
                "summary": "Open a class-4 (phone-only) wallet at this operator",
                "security": bearer,
                "parameters": [{ "name": "op", "in": "path", "required": true, "schema": { "type": "string", "pattern": OPERATOR_PATTERN, "example": "OP01" } }],
                "requestBody": body("OpenWalletRequest"),
                "responses": {
                    "201": ok_json("opened", json!({ "$ref": "#/components/schemas/OpenWalletResponse" })),
                    "400": problem("malformed JSON or operator id"), "401": problem("no or unknown token"),
                    "403": problem("NOT_YOUR_OPERATOR"), "404": problem("UNKNOWN_OPERATOR"), "409": problem("PHONE_TAKEN"),
                    "413": problem("BODY_TOO_LARGE"), "415": problem("CONTENT_TYPE_UNSUPPORTED"),
                    "422": problem("MALFORMED_PHONE, MALFORMED_PUBLIC_KEY, JSON_DATA")
                }
            } },
            "/v1/wallets/{id}": { "get": {
                "summary": "Class, status and balance of one of the caller's wallets",
                "security": bearer,
                "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string", "pattern": WALLET_PATTERN, "example": "W0000000001" } }],
                "responses": {
                    "200": ok_json("the wallet", json!({ "$ref": "#/components/schemas/Wallet" })),
                    "400": problem("MALFORMED_ID"), "401": problem("no or unknown token"),
                    "403": problem("NOT_YOUR_WALLET"), "404": problem("UNKNOWN_WALLET")
                }
            } },
            "/v1/payments": { "post": {
                "summary": "Pay from a wallet, as its holder signed",
                "security": bearer,
                "parameters": [idempotency],
                "requestBody": body("PaymentRequest"),
                "responses": {
                    "201": ok_json("durable transfer (a replay answers the first one)", json!({ "$ref": "#/components/schemas/Payment" })),
                    "400": problem("IDEMPOTENCY_KEY_MISSING, IDEMPOTENCY_KEY_MALFORMED, JSON_SYNTAX"),
                    "401": problem("no or unknown token"),
                    "403": problem("SIGNATURE_INVALID, SIGNATURE_EXPIRED, SIGNATURE_WINDOW_TOO_LONG, NOT_YOUR_WALLET"),
                    "404": problem("UNKNOWN_WALLET"),
                    "409": problem("IDEMPOTENCY_KEY_REUSED"),
                    "413": problem("BODY_TOO_LARGE"), "415": problem("CONTENT_TYPE_UNSUPPORTED"),
                    "422": problem("LIMIT_SINGLE_PAYMENT, LIMIT_DAILY, INSUFFICIENT_FUNDS, MALFORMED_AMOUNT, JSON_DATA, …")
                }
            } },
            "/v1/context": { "get": {
                "summary": "What a holder's signature names: this deployment's id, and the clock its window is measured by",
                "responses": { "200": ok_json("the context", json!({ "$ref": "#/components/schemas/SigningContext" })) }
            } },
            "/v1/transfers/{id}": { "get": {
                "summary": "A transfer by its id, for its parties (the holder of either side's wallet, either side's operator's staff, a merchant it pays or refunds from, the central bank)",
                "security": bearer,
                "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string", "pattern": "^T[0-9]{1,12}$", "example": "T000000000042" } }],
                "responses": {
                    "200": ok_json("the transfer", json!({ "$ref": "#/components/schemas/Transfer" })),
                    "400": problem("MALFORMED_ID"), "401": problem("no or unknown token"),
                    "403": problem("a kind of party that reads no transfers (a terminal)"),
                    "404": problem("UNKNOWN_TRANSFER: none, or the caller is no party to it")
                }
            } },
            "/v1/audit": { "get": {
                "summary": "Every invariant checked over the node's state (central bank only)",
                "security": bearer,
                "responses": {
                    "200": ok_json("the report", json!({ "$ref": "#/components/schemas/AuditReport" })),
                    "401": problem("no or unknown token"), "403": problem("CENTRAL_BANK_ONLY")
                }
            } }
        }
    })
}

/// Problem codes each status can carry, for every operation: `x-problem-codes` lists them, so a
/// client switches on codes it knows will come.
fn list_problem_codes(document: &mut Value) {
    use crate::parties::Operation;
    let paths = document["paths"].as_object_mut().expect("paths");
    for (path, operations) in paths.iter_mut() {
        for (method, entry) in operations.as_object_mut().expect("operations") {
            let method_upper = method.to_ascii_uppercase();
            let served: Vec<Operation> = Operation::ALL
                .into_iter()
                .filter(|op| op.route() == (method_upper.as_str(), path.as_str()))
                .collect();
            let Some(responses) = entry["responses"].as_object_mut() else {
                continue;
            };
            for (status, response) in responses.iter_mut() {
                if !status.starts_with('4') && !status.starts_with('5') {
                    continue;
                }
                let codes = super::problem_codes::codes(&served, path, status, response);
                response["x-problem-codes"] = json!(codes);
            }
        }
    }
}

fn parties_paths() -> serde_json::Map<String, Value> {
    use super::openapi_doc::{body, ok, path_param, responses, schema_ref};
    let string = || json!({ "type": "string" });
    let op = || path_param("op", "OP01");
    let m = || path_param("m", "M00000001");
    let mut all = serde_json::Map::new();
    let staff_view = json!({ "type": "object", "properties": {
        "staff": string(), "operator": string(), "role": string(), "label": string(),
        "revoked": { "type": "boolean" }, "token": string() } });
    let token_view = json!({ "type": "object", "properties": {
        "merchant": string(), "terminal": { "type": "integer" }, "token": string() } });
    let class_limits = json!({ "type": "object", "properties": {
        "class": { "type": "integer" }, "requirement": string(), "balance_cap": string(),
        "single_payment": string(), "daily": string(), "annual": string() } });
    let mut put = |path: &str, item: Value| {
        all.insert(path.to_string(), item);
    };
    put(
        "/v1/operators/{op}/limits",
        json!({ "get": {
        "summary": "Each wallet class's limits at this operator, in yuan (absent: no limit)",
        "parameters": [op()],
        "responses": responses(ok("200", "classes 1 to 4, and the password-free cap", json!({ "type": "object", "properties": {
            "operator": string(), "classes": { "type": "array", "items": class_limits },
            "code_payment_cap": { "type": "string", "description": "yuan: the most one payment code takes without the holder's confirmation" } } })), false, &[]),
    } }),
    );
    put(
        "/v1/operators/{op}/code-payment-cap",
        json!({ "put": {
        "summary": "Set the most one payment code takes without the holder's confirmation (the operator's administrator)",
        "security": [], "parameters": [op()],
        "requestBody": { "required": true, "content": { "application/json": { "schema": {
            "type": "object", "additionalProperties": false, "required": ["cap"],
            "properties": { "cap": { "type": "string", "pattern": AMOUNT_PATTERN, "example": "500.00" } } } } } },
        "responses": responses(ok("200", "the cap now in force", json!({ "type": "object", "properties": {
            "operator": string(), "cap": string() } })), true, &[]),
    } }),
    );
    put(
        "/v1/operators/{op}/staff",
        json!({
            "post": {
                "summary": "Register a staff member with one role; answers the member's token once (an administrator)",
                "security": [], "parameters": [op()],
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "type": "object", "additionalProperties": false, "required": ["role", "label"],
                    "properties": {
                        "role": { "type": "string", "enum": ["teller", "kyc_officer", "compliance_officer", "administrator"] },
                        "label": { "type": "string", "example": "Guanqian branch, desk 3", "description": "a desk or badge number; stored in the log" } } } } } },
                "responses": responses(ok("201", "registered", staff_view.clone()), true, &[]),
            },
            "get": {
                "summary": "The operator's staff, revoked ones included (an administrator)",
                "security": [], "parameters": [op()],
                "responses": responses(ok("200", "staff", json!({ "type": "array", "items": staff_view.clone() })), false, &[]),
            }
        }),
    );
    put(
        "/v1/operators/{op}/staff/{s}/revoke",
        json!({ "post": {
        "summary": "Revoke a staff member's credential for good (an administrator); durable across restarts",
        "security": [], "parameters": [op(), path_param("s", "ST000001")],
        "responses": responses(ok("200", "revoked", staff_view), false, &[("409", "CREDENTIAL_REVOKED")]),
    } }),
    );
    put(
        "/v1/sessions/challenges",
        json!({ "post": {
        "summary": "A challenge for a wallet's holder to sign (valid 120 s)",
        "requestBody": body("ChallengeRequest"),
        "responses": responses(ok("201", "the challenge", json!({ "type": "object", "properties": {
            "wallet": string(), "challenge": string(), "expires_at_s": { "type": "integer" } } })), true, &[]),
    } }),
    );
    put(
        "/v1/sessions",
        json!({ "post": {
        "summary": "A holder's session (15 minutes) for a challenge signed with the wallet's key: SM2 (GM/T 0009 default user id 1234567812345678), signature r||s as 128 hex digits, over ASCII `ECNY-SESSION-v1` ‖ wallet number as u32 little-endian ‖ challenge length as u16 little-endian ‖ the challenge",
        "requestBody": body("SessionRequest"),
        "responses": responses(ok("201", "the session", json!({ "type": "object", "properties": {
            "wallet": string(), "token": string(), "expires_at_s": { "type": "integer" } } })), true,
            &[("409", "CHALLENGE_USED: the challenge already opened a session"),
              ("503", "CHALLENGES_BUSY: too many sessions opened at once to remember another")]),
    } }),
    );
    put(
        "/v1/merchants/{m}/token",
        json!({ "post": {
        "summary": "Replace the merchant's token: the old one stops working at once, and after a restart (the merchant, or its operator's administrator)",
        "security": [], "parameters": [m()],
        "responses": responses(ok("201", "the new token", token_view.clone()), false, &[]),
    } }),
    );
    put(
        "/v1/merchants/{m}/terminals/{t}/token",
        json!({ "post": {
        "summary": "Replace one terminal's token (a lost scan gun): the old one stops working (the merchant, or its operator's administrator)",
        "security": [], "parameters": [m(), path_param("t", "2")],
        "responses": responses(ok("201", "the new token", token_view), false, &[]),
    } }),
    );
    let _ = schema_ref;
    all
}

/// Self-contained: no CDN, no script beyond listing the document's paths.
pub const DOCS_HTML: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ecny API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem}
code{background:#f3f3f3;padding:0 .3em}li{margin:.4em 0}.m{font-weight:bold;display:inline-block;width:4.5em}</style>
</head><body>
<h1>ecny API</h1>
<p>Operators send <code>Authorization: Bearer &lt;token&gt;</code> from <code>DIR/keys/OPxx.token</code>;
the central bank uses <code>DIR/keys/central-bank.token</code>. Payments need an <code>Idempotency-Key</code>.
Errors are <code>application/problem+json</code> with a stable <code>code</code>. Full document: <a href="/openapi.json">/openapi.json</a>.</p>
<ul id="paths"><li>loading /openapi.json…</li></ul>
<script>
fetch('/openapi.json').then(r => r.json()).then(doc => {
  const list = document.getElementById('paths');
  list.textContent = '';
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const item = document.createElement('li');
      const m = document.createElement('span'); m.className = 'm'; m.textContent = method.toUpperCase();
      const p = document.createElement('code'); p.textContent = path;
      item.append(m, p, ' — ' + (op.summary || ''));
      item.title = Object.keys(op.responses || {}).join(' ');
      list.append(item);
    }
  }
}).catch(e => { document.getElementById('paths').textContent = 'could not load /openapi.json: ' + e; });
</script>
</body></html>
"#;
