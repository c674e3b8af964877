//! Secrets and personal data never reach the logs: the real `ecny serve` at its most verbose
//! (`--log trace`, every crate) serves a whole run — `ecny api-examples` onboarding staff of every
//! role, holders with keys, phones, names, ID numbers, bank accounts and sessions, merchants and
//! their terminals, then every operation of the API once as its party (payments, KYC, payment
//! codes, de-anonymization), and a holder's `ecny wallet` app opening a wallet and a session. Its
//! standard output and error are searched for every token, session, secret key and personal
//! value used; the data directory's files (outside `keys/`) for every personal value in clear.

#![cfg(unix)]

#[path = "support/http_client.rs"]
#[allow(dead_code)]
mod http_client;
#[path = "support/served.rs"]
mod served;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use ecny::parties::Operation;
use ecny::platform::Platform;

const START_WAIT_MS: u64 = 30_000;

/// `ecny serve --log trace` on `dir`; every line it prints lands in the returned buffer.
fn serve_verbose(dir: &Path) -> (Child, String, Arc<Mutex<Vec<String>>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ecny"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log",
            "trace",
            "--data",
        ])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = Arc::new(Mutex::new(Vec::new()));
    let (banner, heard) = mpsc::channel();
    let streams: [Box<dyn std::io::Read + Send>; 2] = [
        Box::new(child.stdout.take().unwrap()),
        Box::new(child.stderr.take().unwrap()),
    ];
    for stream in streams {
        let (output, banner) = (output.clone(), banner.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("ecny serving on ") {
                    let _ = banner.send(rest.split_whitespace().next().unwrap().to_string());
                }
                output.lock().unwrap().push(line);
            }
        });
    }
    let url = heard
        .recv_timeout(Duration::from_millis(START_WAIT_MS))
        .expect("ecny serve prints its banner");
    (child, url, output)
}

fn ecny(args: &[&str], dir: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_ecny"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "ecny {args:?}: {printed}");
    printed
}

/// Every string under a key named `phone`, `id_number` or `bank_account`, and the `name` beside
/// an ID number (a person's, not a shop's), anywhere in `value`.
fn personal_values(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields {
                let personal = matches!(key.as_str(), "phone" | "id_number" | "bank_account")
                    || (key == "name" && fields.contains_key("id_number"));
                match field {
                    Value::String(text) if personal => found.push(text.clone()),
                    _ => personal_values(field, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| personal_values(item, found)),
        _ => {}
    }
}

/// Sends every example of the document once with its operation's credential.
fn replay_every_example(addr: std::net::SocketAddr, document: &Value, config: &toml::Table) {
    let mut credentials = std::collections::HashMap::new();
    for operation in config["operations"].as_array().unwrap() {
        if let Some(bearer) = operation
            .get("headers")
            .and_then(|h| h.get("Authorization"))
        {
            // Written as an exact regular expression: `^POST /v1/operators/\{op\}/wallets$`.
            let route = operation["include-name-regex"].as_str().unwrap();
            let route = route
                .trim_start_matches('^')
                .trim_end_matches('$')
                .replace('\\', "");
            credentials.insert(route, bearer.as_str().unwrap().to_string());
        }
    }
    for operation in Operation::ALL {
        let name = format!("{operation:?}");
        let (method, path) = operation.route();
        let entry = &document["paths"][path][method.to_ascii_lowercase()];
        let mut target = path.to_string();
        let mut query = Vec::new();
        let mut headers: Vec<(String, String)> = Vec::new();
        for parameter in entry["parameters"].as_array().into_iter().flatten() {
            let Some(value) = parameter["examples"][&name]["value"].as_str() else {
                continue;
            };
            let parameter_name = parameter["name"].as_str().unwrap();
            match parameter["in"].as_str().unwrap() {
                "path" => target = target.replace(&format!("{{{parameter_name}}}"), value),
                "query" => query.push(format!("{parameter_name}={value}")),
                _ => headers.push((parameter_name.to_string(), value.to_string())),
            }
        }
        if !query.is_empty() {
            target = format!("{target}?{}", query.join("&"));
        }
        let body = &entry["requestBody"]["content"]["application/json"]["examples"][&name]["value"];
        let body = if body.is_null() {
            Vec::new()
        } else {
            headers.push(("Content-Type".into(), "application/json".into()));
            body.to_string().into_bytes()
        };
        if let Some(bearer) = credentials.get(&format!("{method} {path}")) {
            headers.push(("Authorization".into(), bearer.clone()));
        }
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let reply = http_client::send(addr, method, &target, &headers, &body);
        assert!(
            (200..300).contains(&reply.status),
            "{name}: {method} {target} answered {} {}",
            reply.status,
            reply.text()
        );
    }
}

/// Every file under `dir` but the key directory, as bytes.
fn data_files(dir: &Path, files: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().unwrap() != "keys" {
                data_files(&path, files);
            }
        } else {
            files.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
}

#[test]
fn a_whole_run_at_trace_level_logs_no_secret_and_no_personal_value() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    {
        let (mut platform, _) = Platform::open(&data).unwrap();
        served::two_funded_operators(&mut platform);
    }
    let (mut server, url, output) = serve_verbose(&data);
    let addr: std::net::SocketAddr = url.trim_start_matches("http://").parse().unwrap();

    // Every operation, as its party, after onboarding everyone it needs.
    let out = work.path().join("examples");
    let data_arg = data.to_str().unwrap();
    let out_arg = out.to_str().unwrap();
    ecny(
        &[
            "api-examples",
            "--server",
            &url,
            "--data",
            data_arg,
            "--out",
            out_arg,
        ],
        work.path(),
    );
    let document: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("openapi.json")).unwrap()).unwrap();
    let config: toml::Table = std::fs::read_to_string(out.join("schemathesis.toml"))
        .unwrap()
        .parse()
        .unwrap();
    replay_every_example(addr, &document, &config);

    // A holder's own app: a key made on the phone, a wallet, a session.
    let phone = "13612345678";
    ecny(
        &[
            "wallet",
            "--server",
            &url,
            "--profile",
            "li.json",
            "open",
            "--operator",
            "OP01",
            "--phone",
            phone,
        ],
        work.path(),
    );
    ecny(&["wallet", "--profile", "li.json", "balance"], work.path());
    let profile: Value =
        serde_json::from_str(&std::fs::read_to_string(work.path().join("li.json")).unwrap())
            .unwrap();

    let mut secrets: Vec<(String, String)> = Vec::new();
    for operation in config["operations"].as_array().unwrap() {
        if let Some(bearer) = operation
            .get("headers")
            .and_then(|h| h.get("Authorization"))
        {
            let token = bearer
                .as_str()
                .unwrap()
                .trim_start_matches("Bearer ")
                .to_string();
            secrets.push(("a credential".into(), token));
        }
    }
    for entry in std::fs::read_dir(data.join("keys")).unwrap() {
        let path = entry.unwrap().path();
        if let Ok(text) = std::fs::read_to_string(&path) {
            secrets.push((path.display().to_string(), text.trim().to_string()));
        }
    }
    for field in ["secret_key", "session"] {
        let value = profile[field]
            .as_str()
            .unwrap_or_else(|| panic!("{profile}"));
        secrets.push((format!("the holder's {field}"), value.to_string()));
    }
    // The phone of the app's wallet, the name `ecny api-examples` verifies in its set-up, and
    // every phone, name and ID number of its examples.
    let mut personal = vec![phone.to_string(), "Chen Jing".to_string()];
    personal_values(&document, &mut personal);
    assert!(
        personal
            .iter()
            .any(|v| v.len() == 18 && v.starts_with("3205"))
            && personal.iter().filter(|v| v.starts_with("13")).count() >= 2
            && personal.len() >= 5,
        "the run used ID numbers, names and phones: {personal:?}"
    );
    for value in &personal {
        secrets.push(("a personal value".into(), value.clone()));
    }
    assert!(secrets.len() > 10, "{secrets:?}");

    server.kill().unwrap();
    server.wait().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let lines = output.lock().unwrap().clone();
    // Every request was logged (at trace nothing is filtered out; the HTTP stack itself has no
    // log events compiled in, so the server's own lines are all there is).
    let answered = lines
        .iter()
        .filter(|line| line.contains("answered"))
        .count();
    assert!(
        answered > Operation::ALL.len(),
        "{answered} requests logged:\n{}",
        lines.join("\n")
    );
    let log = lines.join("\n");
    for (what, secret) in &secrets {
        assert!(!secret.is_empty(), "{what}");
        if let Some(at) = log.find(secret.as_str()) {
            let line = log[..at].rsplit('\n').next().unwrap_or_default();
            panic!("{what} ({secret}) is in the server's log: {line}…");
        }
    }

    let mut files = Vec::new();
    data_files(&data, &mut files);
    assert!(
        files.iter().any(|(name, _)| name.contains("log")),
        "{files:?}"
    );
    for value in &personal {
        for (name, bytes) in &files {
            assert!(
                !bytes.windows(value.len()).any(|w| w == value.as_bytes()),
                "{value} in clear in {name}"
            );
        }
    }
}
