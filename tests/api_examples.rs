//! `ecny api-examples` gives CI's API fuzzer an example request for each operation; each must
//! succeed against a server on the directory it populated, with the token it names, or the
//! fuzzer would again see only refusals. Sent here in the order of the document, once each.

#[allow(dead_code)]
#[path = "support/http_client.rs"]
mod http_client;

use std::path::Path;
use std::process::Command;

use ecny::server::{Server, ServerConfig};
use serde_json::Value;

fn ecny(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_ecny"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ecny {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The token the configuration gives `METHOD path`, else its default.
fn token_for(config: &str, name: &str) -> String {
    let mut default = None;
    let mut current = None;
    for line in config.lines() {
        if let Some(rest) = line.strip_prefix("include-name = ") {
            current = Some(rest.trim_matches('"').to_string());
        }
        if let Some(rest) = line.strip_prefix("headers = { Authorization = \"") {
            let value = rest.trim_end_matches("\" }").to_string();
            match &current {
                None => default = Some(value),
                Some(op) if op == name => return value,
                Some(_) => {}
            }
        }
    }
    default.expect("a default token")
}

/// The example request of an operation: path with its parameters, headers, body.
fn request(operation: &Value, path: &str) -> (String, Vec<(String, String)>, Vec<u8>) {
    let (mut path, mut query, mut headers) = (path.to_string(), Vec::new(), Vec::new());
    for parameter in operation["parameters"].as_array().into_iter().flatten() {
        let Some(example) = parameter["example"].as_str() else {
            continue;
        };
        let name = parameter["name"].as_str().unwrap();
        match parameter["in"].as_str().unwrap() {
            "path" => path = path.replace(&format!("{{{name}}}"), example),
            "query" => query.push(format!("{name}={example}")),
            "header" => headers.push((name.to_string(), example.to_string())),
            other => panic!("a parameter in {other}"),
        }
    }
    if !query.is_empty() {
        path = format!("{path}?{}", query.join("&"));
    }
    let body = &operation["requestBody"]["content"]["application/json"]["example"];
    let body = if body.is_null() {
        Vec::new()
    } else {
        headers.push(("Content-Type".into(), "application/json".into()));
        serde_json::to_vec(body).unwrap()
    };
    (path, headers, body)
}

#[test]
fn every_example_request_succeeds_with_its_callers_token() {
    let dir = tempfile::tempdir().unwrap();
    let (data, out) = (dir.path().join("data"), dir.path().join("api"));
    let (data_text, out_text) = (data.to_str().unwrap(), out.to_str().unwrap());
    ecny(&["demo", "--data", data_text]);
    ecny(&["api-examples", "--data", data_text, "--out", out_text]);
    let read = |name: &str| std::fs::read_to_string(Path::new(out_text).join(name)).unwrap();
    let document: Value = serde_json::from_str(&read("openapi.json")).unwrap();
    let config = read("schemathesis.toml");
    let success = read("success.txt");
    let server = Server::start(&ServerConfig {
        data: data.clone(),
        listen: "127.0.0.1:0".into(),
        ..ServerConfig::default()
    })
    .unwrap();
    let mut sent = 0;
    for line in success.lines() {
        let (method, path) = line.split_once(' ').unwrap();
        let operation = &document["paths"][path][method.to_lowercase()];
        assert!(operation.is_object(), "{line} is in the document");
        let (target, mut headers, body) = request(operation, path);
        headers.push((
            "Authorization".into(),
            token_for(&config, &format!("{method} {path}")),
        ));
        let refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let reply = http_client::send(server.addr(), method, &target, &refs, &body);
        assert!(
            (200..300).contains(&reply.status),
            "{method} {target}: {} {}",
            reply.status,
            reply.text()
        );
        sent += 1;
    }
    assert!(sent >= 30, "examples for {sent} operations");
    server.stop().unwrap();
    let (platform, _) = ecny::platform::Platform::open(&data).unwrap();
    let report = ecny::audit::audit(platform.state());
    assert!(report.is_clean(), "{report}");
}
