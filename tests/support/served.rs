//! A server on a loopback port over a fresh data directory holding two funded operators and no
//! wallets yet, with the bearer tokens it wrote.
#![allow(dead_code)]

use std::path::Path;

use ecny::certs::KeyPair;
use ecny::command::Command;
use ecny::ids::{OperatorId, WalletId};
use ecny::platform::Platform;
use ecny::server::{Server, ServerConfig};
use ecny::signing::{DeploymentId, SigningContext};

pub struct Served {
    pub dir: tempfile::TempDir,
    pub server: Server,
    /// OP01's and OP02's administrators' bearer tokens (`DIR/keys/OPxx.token`).
    pub operators: [String; 2],
    /// A teller, a KYC officer and a compliance officer at each operator, registered over HTTP.
    pub tellers: [String; 2],
    pub kyc_officers: [String; 2],
    pub compliance_officers: [String; 2],
    pub central_bank: String,
}

/// Jiangnan Commercial Bank (OP01) and Lakeside Digital Bank (OP02), each with ¥1,000,000 of
/// reserves and ¥500,000 of e-CNY issued: the operators every HTTP test world starts from.
pub fn two_funded_operators(platform: &mut Platform) -> [OperatorId; 2] {
    let ops = [
        platform
            .create_operator("Jiangnan Commercial Bank")
            .unwrap(),
        platform.create_operator("Lakeside Digital Bank").unwrap(),
    ];
    for op in ops {
        let funding = vec![
            Command::FundReserves {
                operator: op,
                amount: "1000000".parse().unwrap(),
            },
            Command::Issue {
                operator: op,
                amount: "500000".parse().unwrap(),
            },
        ];
        for result in platform.as_central_bank(funding).unwrap() {
            result.unwrap();
        }
    }
    ops
}

fn seed(dir: &Path) {
    let (mut platform, _) = Platform::open(dir).unwrap();
    two_funded_operators(&mut platform);
}

impl Served {
    pub fn start() -> Served {
        Served::configured(ServerConfig::default())
    }

    /// With settings of the test's own; the data directory and address are the fixture's.
    pub fn configured(config: ServerConfig) -> Served {
        let dir = tempfile::tempdir().unwrap();
        seed(dir.path());
        let server = Server::start(&ServerConfig {
            data: dir.path().to_path_buf(),
            listen: "127.0.0.1:0".into(),
            ..config
        })
        .unwrap();
        let read =
            |name: &str| std::fs::read_to_string(dir.path().join("keys").join(name)).unwrap();
        let operators = [read("OP01.token"), read("OP02.token")];
        let staff = |role: &str| -> [String; 2] {
            [0, 1].map(|op| register_staff(&server, op, &operators[op], role))
        };
        Served {
            tellers: staff("teller"),
            kyc_officers: staff("kyc_officer"),
            compliance_officers: staff("compliance_officer"),
            operators,
            central_bank: read("central-bank.token"),
            server,
            dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// What a holder at `operator` signs for, as this server states it (`GET /v1/context`), and
    /// the end of a five-minute window by the server's clock.
    pub fn signing_window(&self, operator: OperatorId) -> (SigningContext, u64) {
        let stated = get_json(&self.server, "/v1/context");
        let context = SigningContext {
            deployment: DeploymentId::from_hex(stated["deployment"].as_str().unwrap()).unwrap(),
            operator,
        };
        (context, stated["now_ms"].as_u64().unwrap() + 5 * 60 * 1000)
    }

    /// `body` with the holder's key, signature over `command` for `operator`'s context, and the
    /// window's end: the fields every signed request carries.
    pub fn signed(
        &self,
        operator: OperatorId,
        key: &KeyPair,
        command: &Command,
        mut body: serde_json::Value,
    ) -> serde_json::Value {
        let (context, not_after_ms) = self.signing_window(operator);
        let signature = key.sign(&command.signing_bytes(&context, not_after_ms));
        body["public_key"] = serde_json::json!(key.public_key().to_hex());
        body["signature"] = serde_json::json!(signature.to_hex());
        body["not_after_ms"] = serde_json::json!(not_after_ms);
        body
    }
}

/// A holder's session for `wallet`, from a challenge signed with the wallet's key.
pub fn open_session(server: &Server, wallet: WalletId, key: &KeyPair) -> String {
    let asked = serde_json::json!({ "wallet": wallet.to_string() });
    let challenge = post_json(server, "/v1/sessions/challenges", &asked);
    let challenge = challenge["challenge"].as_str().unwrap().to_string();
    let signature = key.sign(&ecny::parties::session_signing_bytes(wallet, &challenge));
    let opened = serde_json::json!({ "wallet": wallet.to_string(), "challenge": challenge,
        "signature": signature.to_hex() });
    let session = post_json(server, "/v1/sessions", &opened);
    session["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{session}"))
        .to_string()
}

fn post_json(server: &Server, path: &str, body: &serde_json::Value) -> serde_json::Value {
    use std::io::{Read, Write};
    let body = body.to_string();
    let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    serde_json::from_str(raw.split("\r\n\r\n").nth(1).unwrap()).unwrap()
}

fn get_json(server: &Server, path: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    serde_json::from_str(raw.split("\r\n\r\n").nth(1).unwrap()).unwrap()
}

/// Registers a staff member at OP0`op + 1` with the administrator's token; answers its token.
pub fn register_staff(server: &Server, op: usize, admin: &str, role: &str) -> String {
    use std::io::{Read, Write};
    let body = format!(r#"{{"role":"{role}","label":"{role} desk"}}"#);
    let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
    write!(
        stream,
        "POST /v1/operators/OP0{}/staff HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {admin}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        op + 1,
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let json = raw.split("\r\n\r\n").nth(1).unwrap();
    let value: serde_json::Value = serde_json::from_str(json).unwrap();
    value["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{raw}"))
        .to_string()
}
