//! A server on a loopback port over a fresh data directory holding two funded operators and no
//! wallets yet, with the bearer tokens it wrote.
#![allow(dead_code)]

use std::path::Path;

use ecny::command::Command;
use ecny::ids::OperatorId;
use ecny::platform::Platform;
use ecny::server::{Server, ServerConfig};

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
                amount: "1,000,000".parse().unwrap(),
            },
            Command::Issue {
                operator: op,
                amount: "500,000".parse().unwrap(),
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
        let dir = tempfile::tempdir().unwrap();
        seed(dir.path());
        let server = Server::start(&ServerConfig {
            data: dir.path().to_path_buf(),
            listen: "127.0.0.1:0".into(),
            ..ServerConfig::default()
        })
        .unwrap();
        let read =
            |name: &str| std::fs::read_to_string(dir.path().join("keys").join(name)).unwrap();
        let operators = [read("OP01.token"), read("OP02.token")];
        let staff = |role: &str| -> [String; 2] {
            [0, 1].map(|op| register(&server, op, &operators[op], role))
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
}

/// Registers a staff member at OP0`op + 1` with the administrator's token; answers its token.
fn register(server: &Server, op: usize, admin: &str, role: &str) -> String {
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
