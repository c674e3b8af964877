//! Pieces of the OpenAPI document every handler module describes its paths with: references to
//! schemas, bodies, parameters, and the refusals any call can meet as problem+json.

use serde_json::{json, Map, Value};

fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
    })
}

pub fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

pub fn ok(status: &str, description: &str, schema: Value) -> (String, Value) {
    (
        status.to_string(),
        json!({ "description": description, "content": { "application/json": { "schema": schema } } }),
    )
}

/// Responses: the success, the refusals every authenticated call can meet, then `extra`.
pub fn responses(success: (String, Value), body: bool, extra: &[(&str, &str)]) -> Value {
    let mut all = Map::new();
    all.insert(success.0, success.1);
    all.insert(
        "400".into(),
        problem("MALFORMED_ID, MALFORMED_QUERY, JSON_SYNTAX, IDEMPOTENCY_KEY_MISSING, …"),
    );
    all.insert(
        "401".into(),
        problem("UNAUTHENTICATED: no or unknown token"),
    );
    all.insert(
        "403".into(),
        problem("NOT_YOUR_MERCHANT, NOT_YOUR_OPERATOR, OPERATOR_ONLY, TERMINAL_NOT_ALLOWED, …"),
    );
    all.insert("404".into(), problem("UNKNOWN_MERCHANT, UNKNOWN_WALLET, …"));
    if body {
        all.insert("413".into(), problem("BODY_TOO_LARGE"));
        all.insert("415".into(), problem("CONTENT_TYPE_UNSUPPORTED"));
    }
    all.insert(
        "422".into(),
        problem("the domain refused the request; `code` says why"),
    );
    for (status, description) in extra {
        let mut answer = problem(description);
        if *status == "429" {
            answer["headers"] = json!({ "Retry-After": {
                "description": "seconds until the terminal may try again",
                "schema": { "type": "integer", "minimum": 1 } } });
        }
        all.insert(status.to_string(), answer);
    }
    Value::Object(all)
}

pub fn path_param(name: &str, example: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string", "example": example } })
}

pub fn query_param(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": { "type": "string" } })
}

pub fn idempotency() -> Value {
    json!({
        "name": "Idempotency-Key", "in": "header", "required": true,
        "description": "UUID or up to 32 hex digits; a retry with the same key and body answers the first result",
        "schema": { "type": "string" }
    })
}

pub fn body(schema: &str) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema_ref(schema) } } })
}

pub fn string() -> Value {
    json!({ "type": "string" })
}
