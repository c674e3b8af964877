//! The OpenAPI 3 document, written by hand as JSON: the API is small, and a derive crate would add
//! a proc-macro tree to every build for a few hundred lines of output.

use serde_json::{json, Value};

/// Paths the router serves; a test checks the document and the router agree.
pub const PATHS: [&str; 35] = [
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/v1/operators/{op}/wallets",
    "/v1/wallets/{id}",
    "/v1/payments",
    "/v1/audit",
    // The acquiring side (`merchants::OPENAPI_PATHS`).
    "/v1/operators/{op}/merchants",
    "/v1/merchants/{m}",
    "/v1/merchants/{m}/terminals",
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
];

/// Canonical forms; the server also accepts a little more for ids and phones (surrounding spaces,
/// "+86"). Amounts have the one form the pattern shows.
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
                "public_key": { "type": "string", "pattern": PUBLIC_KEY_PATTERN, "description": "SM2 public key, compressed SEC1, 66 hex digits" }
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
            "required": ["payer", "payee", "amount", "public_key", "signature"],
            "properties": {
                "payer": { "type": "string", "pattern": WALLET_PATTERN, "example": "W0000000001" },
                "payee": { "type": "string", "pattern": WALLET_PATTERN, "example": "W0000000002" },
                "amount": { "type": "string", "pattern": AMOUNT_PATTERN, "example": "66.60", "description": "yuan, at most two decimals" },
                "public_key": { "type": "string", "pattern": PUBLIC_KEY_PATTERN, "description": "the payer's SM2 public key (66 hex digits)" },
                "signature": { "type": "string", "pattern": SIGNATURE_PATTERN, "description": "SM2 signature (128 hex digits) over Command::Pay's signing bytes, idempotency key included" }
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
        paths.extend(super::counter::openapi::paths());
        paths.extend(super::identity::openapi::paths());
    }
    if let Some(schemas) = document["components"]["schemas"].as_object_mut() {
        schemas.extend(super::merchants::openapi::schemas());
        schemas.extend(super::contracts::openapi::schemas());
        schemas.extend(super::counter::openapi::schemas());
        schemas.extend(super::identity::openapi::schemas());
    }
    add_token_responses(&mut document);
    document
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
        "description": "UUID or up to 32 hex digits; a retry with the same key and body answers the first result",
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
                    "403": problem("SIGNATURE_INVALID, NOT_YOUR_WALLET"),
                    "404": problem("UNKNOWN_WALLET"),
                    "409": problem("IDEMPOTENCY_KEY_REUSED"),
                    "413": problem("BODY_TOO_LARGE"), "415": problem("CONTENT_TYPE_UNSUPPORTED"),
                    "422": problem("LIMIT_SINGLE_PAYMENT, LIMIT_DAILY, INSUFFICIENT_FUNDS, MALFORMED_AMOUNT, JSON_DATA, …")
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
