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
    /// OP01's and OP02's bearer tokens.
    pub operators: [String; 2],
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
        Served {
            operators: [read("OP01.token"), read("OP02.token")],
            central_bank: read("central-bank.token"),
            server,
            dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }
}
