//! `ecny api-examples` against a live server: every operation of the authorization table has an
//! example in the document it writes, each example answers a success when sent once with the
//! credential schemathesis.toml gives its operation, and the audit is clean afterwards.

#[path = "support/http_client.rs"]
#[allow(dead_code)]
mod http_client;
#[path = "support/served.rs"]
mod served;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use ecny::parties::Operation;
use http_client::send;
use served::Served;

/// Runs `ecny api-examples` on the server; answers the document and each route's credential.
fn generate(served: &Served, out: &Path) -> (Value, HashMap<String, String>) {
    let output = Command::new(env!("CARGO_BIN_EXE_ecny"))
        .args(["api-examples", "--server", &served.url(), "--data"])
        .arg(served.dir.path())
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let document = std::fs::read_to_string(out.join("openapi.json")).unwrap();
    let config = std::fs::read_to_string(out.join("schemathesis.toml")).unwrap();
    let config: toml::Table = config.parse().unwrap();
    let mut credentials = HashMap::new();
    for operation in config["operations"].as_array().unwrap() {
        // Written as an exact regular expression: `^POST /v1/operators/\{op\}/wallets$`.
        let name = operation["include-name-regex"].as_str().unwrap();
        let name = name
            .trim_start_matches('^')
            .trim_end_matches('$')
            .replace('\\', "");
        if let Some(bearer) = operation
            .get("headers")
            .and_then(|headers| headers.get("Authorization"))
        {
            credentials.insert(name, bearer.as_str().unwrap().to_string());
        }
    }
    (serde_json::from_str(&document).unwrap(), credentials)
}

/// One example as the document gives it: the route with its path parameters and query filled in,
/// its headers (the idempotency key) and its body.
fn request(entry: &Value, path: &str, name: &str) -> (String, Vec<(String, String)>, Vec<u8>) {
    let mut target = path.to_string();
    let mut query = Vec::new();
    let mut headers = Vec::new();
    for parameter in entry["parameters"].as_array().into_iter().flatten() {
        let Some(value) = parameter["examples"][name]["value"].as_str() else {
            continue;
        };
        let parameter_name = parameter["name"].as_str().unwrap();
        match parameter["in"].as_str().unwrap() {
            "path" => target = target.replace(&format!("{{{parameter_name}}}"), value),
            "query" => query.push(format!("{parameter_name}={value}")),
            "header" => headers.push((parameter_name.to_string(), value.to_string())),
            other => panic!("{name}: a parameter in {other}"),
        }
    }
    assert!(!target.contains('{'), "{name}: {target} is not filled in");
    if !query.is_empty() {
        target = format!("{target}?{}", query.join("&"));
    }
    let body = &entry["requestBody"]["content"]["application/json"]["examples"][name]["value"];
    let body = if body.is_null() {
        Vec::new()
    } else {
        headers.push(("Content-Type".into(), "application/json".into()));
        body.to_string().into_bytes()
    };
    (target, headers, body)
}

#[test]
fn every_operation_has_an_example_that_succeeds_as_its_party_and_the_audit_stays_clean() {
    let served = Served::start();
    let out = tempfile::tempdir().unwrap();
    let (document, credentials) = generate(&served, out.path());

    let mut failures = Vec::new();
    for operation in Operation::ALL {
        let name = format!("{operation:?}");
        let (method, path) = operation.route();
        let entry = &document["paths"][path][method.to_ascii_lowercase()];
        let listed = entry["x-ecny-examples"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let Some(listed) = listed.iter().find(|example| example["name"] == name) else {
            failures.push(format!("{name}: no example at {method} {path}"));
            continue;
        };
        let (target, mut headers, body) = request(entry, path, &name);
        let route = format!("{method} {path}");
        match credentials.get(&route) {
            Some(bearer) => headers.push(("Authorization".into(), bearer.clone())),
            // Only a public operation, or one the holder's signature authorises, goes without.
            None => assert!(
                operation.denial_codes().is_empty() || listed["party"] == "anonymous",
                "{name}: no credential in schemathesis.toml for {route}"
            ),
        }
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let reply = send(served.server.addr(), method, &target, &headers, &body);
        if !(200..300).contains(&reply.status) {
            failures.push(format!(
                "{name} as the {}: {method} {target} answered {} {}",
                listed["party"],
                reply.status,
                reply.text()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let audit = send(
        served.server.addr(),
        "GET",
        "/v1/audit",
        &[(
            "Authorization",
            &format!("Bearer {}", served.central_bank.trim()),
        )],
        b"",
    )
    .ok(200);
    assert_eq!(audit["clean"], true, "{audit}");
}

#[test]
fn without_a_data_directory_it_says_where_the_tokens_should_be() {
    let served = Served::start();
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ecny"))
        .args(["api-examples", "--server", &served.url(), "--data"])
        .arg(out.path().join("nowhere"))
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("[TOKEN_MISSING]") && stderr.contains("nowhere"),
        "{stderr}"
    );
    assert!(!out.path().join("openapi.json").exists());
}
