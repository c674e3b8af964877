//! The OpenAPI 3 document, written by hand as JSON: the API is small, and a derive crate would add
//! a proc-macro tree to every build for a few hundred lines of output.

use serde_json::{json, Value};

/// Paths the router serves; a test checks the document and the router agree.
pub const PATHS: [&str; 33] = [
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
];

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
                "phone": { "type": "string", "example": "13800138000" },
                "public_key": { "type": "string", "description": "SM2 public key, compressed SEC1, 66 hex digits" }
            }
        },
        "OpenWalletResponse": {
            "type": "object",
            "properties": {
                "wallet": { "type": "string", "example": "W0000000001" },
                "operator": { "type": "string", "example": "OP01" },
                "class": { "type": "integer", "example": 4 }
            }
        },
        "Wallet": {
            "type": "object",
            "properties": {
                "wallet": { "type": "string" },
                "operator": { "type": "string" },
                "class": { "type": "integer", "minimum": 1, "maximum": 4 },
                "status": { "type": "string", "enum": ["active", "frozen", "closed"] },
                "balance": { "type": "string", "example": "100.00" }
            }
        },
        "PaymentRequest": {
            "type": "object", "additionalProperties": false,
            "required": ["payer", "payee", "amount", "public_key", "signature"],
            "properties": {
                "payer": { "type": "string", "example": "W0000000001" },
                "payee": { "type": "string", "example": "W0000000002" },
                "amount": { "type": "string", "example": "66.60", "description": "yuan, at most two decimals" },
                "public_key": { "type": "string", "description": "the payer's SM2 public key (66 hex digits)" },
                "signature": { "type": "string", "description": "SM2 signature (128 hex digits) over Command::Pay's signing bytes, idempotency key included" }
            }
        },
        "Payment": {
            "type": "object",
            "properties": {
                "transfer": { "type": "string", "example": "T000000000042" },
                "payer": { "type": "string" },
                "payee": { "type": "string" },
                "amount": { "type": "string" }
            }
        },
        "AuditReport": {
            "type": "object",
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
    let mut document = base_document();
    if let Some(paths) = document["paths"].as_object_mut() {
        paths.extend(super::merchants::openapi::paths());
        paths.extend(super::contracts::openapi::paths());
        paths.extend(super::counter::openapi::paths());
    }
    if let Some(schemas) = document["components"]["schemas"].as_object_mut() {
        schemas.extend(super::merchants::openapi::schemas());
        schemas.extend(super::contracts::openapi::schemas());
        schemas.extend(super::counter::openapi::schemas());
    }
    document
}

fn base_document() -> Value {
    let bearer = json!([{ "bearer": [] }]);
    let idempotency = json!({
        "name": "Idempotency-Key", "in": "header", "required": true,
        "description": "UUID or up to 32 hex digits; a retry with the same key and body answers the first result",
        "schema": { "type": "string" }
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
                "responses": { "200": { "description": "text/plain exposition format" } } } },
            "/openapi.json": { "get": { "summary": "This document", "responses": { "200": ok_json("OpenAPI 3", json!({"type": "object"})) } } },
            "/docs": { "get": { "summary": "A page listing these endpoints", "responses": { "200": { "description": "text/html" } } } },
            "/v1/operators/{op}/wallets": { "post": {
                "summary": "Open a class-4 (phone-only) wallet at this operator",
                "security": bearer,
                "parameters": [{ "name": "op", "in": "path", "required": true, "schema": { "type": "string", "example": "OP01" } }],
                "requestBody": body("OpenWalletRequest"),
                "responses": {
                    "201": ok_json("opened", json!({ "$ref": "#/components/schemas/OpenWalletResponse" })),
                    "400": problem("malformed JSON or operator id"), "401": problem("no or unknown token"),
                    "403": problem("NOT_YOUR_OPERATOR"), "409": problem("PHONE_TAKEN"),
                    "413": problem("BODY_TOO_LARGE"), "415": problem("CONTENT_TYPE_UNSUPPORTED"),
                    "422": problem("MALFORMED_PHONE, MALFORMED_PUBLIC_KEY, JSON_DATA")
                }
            } },
            "/v1/wallets/{id}": { "get": {
                "summary": "Class, status and balance of one of the caller's wallets",
                "security": bearer,
                "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string", "example": "W0000000001" } }],
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
