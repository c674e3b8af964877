//! The HTTP API as a stranger reaches it: `ecny serve` over the demo's data directory, started
//! once per process on loopback, and one request per input sent on a kept-alive connection.
//!
//! An input is written like the request itself: a request line (`POST /v1/payments`), header
//! lines, a blank line and the body. `$CB`, `$OP1`, `$OP2` in a header stand for the central
//! bank's and the operators' bearer tokens, `$T0`…`$T7` for tokens the server handed out in
//! earlier answers (a merchant's, a terminal's); the harness sets `Host` and `Content-Length`.
//!
//! * No request gets a 5xx, and no handler panics (a panic on any thread aborts the process).
//! * Every refusal by the service is `application/problem+json` with its status and a stable
//!   `code` (requests HTTP itself refuses never reach it).
//! * Every JSON answer is JSON.
//! * Every so often the central bank's `GET /v1/audit` finds every invariant holding.

#![no_main]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use ecny::server::{Server, ServerConfig};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Requests between two audits.
const AUDIT_EVERY_REQUESTS: u64 = 64;
const TOKENS_KEPT_MAX: usize = 8;
const ANSWER_TIMEOUT_S: u64 = 30;

struct Service {
    addr: SocketAddr,
    central_bank: String,
    operators: Vec<String>,
    /// Kept alive for the process: dropping it stops the server.
    _server: Server,
}

struct Client {
    stream: Option<BufReader<TcpStream>>,
    handed_out: Vec<String>,
    requests: u64,
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn service() -> &'static Service {
    static SERVICE: OnceLock<Service> = OnceLock::new();
    SERVICE.get_or_init(|| {
        let data = ecny_fuzz::process_dir("ecny-fuzz-api").join("data");
        ecny::demo::run(&data, &mut |_| {}).expect("the demo runs");
        let config = ServerConfig {
            data: data.clone(),
            listen: "127.0.0.1:0".to_string(),
            auth_failures_per_minute_max: u32::MAX,
            ..ServerConfig::default()
        };
        let server = Server::start(&config).expect("ecny serve starts");
        let token = |name: &str| {
            std::fs::read_to_string(data.join("keys").join(name))
                .map(|text| text.trim().to_string())
                .unwrap_or_default()
        };
        Service {
            addr: server.addr(),
            central_bank: token("central-bank.token"),
            operators: vec![token("OP01.token"), token("OP02.token")],
            _server: server,
        }
    })
}

fn client() -> &'static Mutex<Client> {
    static CLIENT: OnceLock<Mutex<Client>> = OnceLock::new();
    CLIENT.get_or_init(|| {
        Mutex::new(Client {
            stream: None,
            handed_out: Vec::new(),
            requests: 0,
        })
    })
}

fuzz_target!(init: ecny_fuzz::write_seeds_if_asked(seeds), |data: &[u8]| {
    let service = service();
    let mut client = client().lock().expect("one fuzzing thread");
    let Some(request) = request(service, &client, data) else {
        return;
    };
    let answer = client.send(service, &request.bytes, request.head);
    check(&request, &answer);
    client.keep_tokens(&answer);
    client.requests += 1;
    if client.requests.is_multiple_of(AUDIT_EVERY_REQUESTS) {
        audit(service, &mut client);
    }
});

struct Request {
    line: String,
    bytes: Vec<u8>,
    head: bool,
}

/// The input as an HTTP/1.1 request; `None` when its head cannot be a request line and headers.
fn request(service: &Service, client: &Client, data: &[u8]) -> Option<Request> {
    let split = data.windows(2).position(|pair| pair == b"\n\n");
    let (head, body) = match split {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &[][..]),
    };
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.lines();
    let line = lines.next()?.trim_end_matches('\r');
    let (method, target) = line.split_once(' ')?;
    let token_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if method.is_empty() || !method.chars().all(token_char) {
        return None;
    }
    if target.is_empty() || target.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let mut bytes = format!("{method} {target} HTTP/1.1\r\nHost: fuzz\r\n").into_bytes();
    for header in lines {
        let (name, value) = header.trim_end_matches('\r').split_once(':')?;
        let name = name.trim();
        if name.is_empty() || !name.chars().all(token_char) {
            return None;
        }
        let framing = ["host", "content-length", "transfer-encoding", "connection"];
        if framing.iter().any(|f| name.eq_ignore_ascii_case(f)) {
            continue;
        }
        let value = substitute(service, client, value.trim());
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return None;
        }
        bytes.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    bytes.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    bytes.extend_from_slice(body);
    Some(Request {
        line: line.to_string(),
        bytes,
        head: method == "HEAD",
    })
}

fn substitute(service: &Service, client: &Client, value: &str) -> String {
    let mut value = value.replace("$CB", &service.central_bank);
    for (index, token) in service.operators.iter().enumerate() {
        value = value.replace(&format!("$OP{}", index + 1), token);
    }
    for index in 0..TOKENS_KEPT_MAX {
        let token = client.handed_out.get(index).map_or("", String::as_str);
        value = value.replace(&format!("$T{index}"), token);
    }
    value
}

fn check(request: &Request, answer: &Answer) {
    let line = &request.line;
    assert!(
        answer.status < 500,
        "{line} answered {}: {}",
        answer.status,
        String::from_utf8_lossy(&answer.body)
    );
    let content_type = answer.header("content-type").unwrap_or_default();
    // Requests HTTP itself refuses (a malformed target, say) never reach the service, whose
    // every answer carries a request id.
    let served = answer.header("x-request-id").is_some();
    if answer.status >= 400 && !request.head && served {
        assert_eq!(
            content_type, "application/problem+json",
            "{line} refused without a problem"
        );
        let problem: Value = serde_json::from_slice(&answer.body).expect("a problem is JSON");
        assert_eq!(
            problem["status"].as_u64(),
            Some(u64::from(answer.status)),
            "{line}"
        );
        let code = problem["code"].as_str().unwrap_or_default();
        assert!(
            !code.is_empty() && code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
            "{line}: code {code:?} is not a stable code"
        );
    }
    if content_type.contains("json") && !request.head {
        serde_json::from_slice::<Value>(&answer.body).expect("a JSON answer is JSON");
    }
}

fn audit(service: &Service, client: &mut Client) {
    let request = format!(
        "GET /v1/audit HTTP/1.1\r\nHost: fuzz\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\n\r\n",
        service.central_bank
    );
    let answer = client.send(service, request.as_bytes(), false);
    assert_eq!(answer.status, 200, "the audit answered {}", answer.status);
    let report: Value = serde_json::from_slice(&answer.body).expect("the audit is JSON");
    assert_eq!(
        report["clean"],
        Value::Bool(true),
        "an invariant broke: {}",
        report["violations"]
    );
}

impl Client {
    /// Sends one request, reconnecting once if the server closed the kept-alive connection.
    fn send(&mut self, service: &Service, request: &[u8], head: bool) -> Answer {
        for attempt in 0..2 {
            let stream = self.stream.get_or_insert_with(|| connect(service.addr));
            let sent = stream.get_mut().write_all(request);
            match sent
                .map_err(|e| e.to_string())
                .and_then(|()| read_answer(stream, head))
            {
                Ok(answer) => {
                    if answer.header("connection") == Some("close") {
                        self.stream = None;
                    }
                    return answer;
                }
                Err(error) => {
                    self.stream = None;
                    assert!(attempt == 0, "no answer from the server: {error}");
                }
            }
        }
        unreachable!("the second attempt answers or fails the run")
    }

    fn keep_tokens(&mut self, answer: &Answer) {
        let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&answer.body) else {
            return;
        };
        let tokens = fields.iter().filter(|(name, _)| name.ends_with("token"));
        for token in tokens.filter_map(|(_, value)| value.as_str()) {
            if self.handed_out.len() == TOKENS_KEPT_MAX {
                self.handed_out.remove(0);
            }
            self.handed_out.push(token.to_string());
        }
    }
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    let stream = TcpStream::connect(addr).expect("connect to ecny serve");
    stream
        .set_read_timeout(Some(Duration::from_secs(ANSWER_TIMEOUT_S)))
        .expect("a read timeout");
    stream.set_nodelay(true).expect("no delay");
    BufReader::new(stream)
}

/// Reads one HTTP/1.1 response: status line, headers, then a sized or chunked body.
fn read_answer(stream: &mut BufReader<TcpStream>, head: bool) -> Result<Answer, String> {
    let mut line = String::new();
    stream.read_line(&mut line).map_err(|e| e.to_string())?;
    if line.is_empty() {
        return Err("connection closed".into());
    }
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("bad status line {line:?}"))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        stream.read_line(&mut line).map_err(|e| e.to_string())?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').ok_or("bad header")?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let mut answer = Answer {
        status,
        headers,
        body: Vec::new(),
    };
    if head || status == 204 || status == 304 {
        return Ok(answer);
    }
    if answer.header("transfer-encoding") == Some("chunked") {
        answer.body = read_chunked(stream)?;
    } else {
        let length: usize = answer
            .header("content-length")
            .and_then(|len| len.parse().ok())
            .ok_or("an answer without a length")?;
        answer.body = vec![0; length];
        stream
            .read_exact(&mut answer.body)
            .map_err(|e| e.to_string())?;
    }
    Ok(answer)
}

fn read_chunked(stream: &mut BufReader<TcpStream>) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        stream.read_line(&mut line).map_err(|e| e.to_string())?;
        let size = usize::from_str_radix(line.trim(), 16).map_err(|e| e.to_string())?;
        let mut chunk = vec![0; size + 2];
        stream.read_exact(&mut chunk).map_err(|e| e.to_string())?;
        body.extend_from_slice(&chunk[..size]);
        if size == 0 {
            return Ok(body);
        }
    }
}

/// A request to every route, as the README and the clients send them, on the demo's wallets
/// and merchant; holders' signatures are well-formed but not the holders'.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let key = ecny::certs::KeyPair::from_seed(b"fuzz holder");
    let public_key = key.public_key().to_hex();
    let signature = key.sign(b"not the signing bytes").to_hex();
    let signed = format!(
        r#""public_key":"{public_key}","signature":"{signature}","not_after_ms":1900000000000"#
    );
    let post = |target: &str, token: &str, key: Option<&str>, body: &str| {
        let key = key.map_or(String::new(), |key| format!("Idempotency-Key: {key}\n"));
        format!(
            "POST {target}\nAuthorization: Bearer {token}\n{key}Content-Type: application/json\n\n{body}"
        )
    };
    let get =
        |target: &str, token: &str| format!("GET {target}\nAuthorization: Bearer {token}\n\n");
    let requests = [
        ("healthz", "GET /healthz\n\n".to_string()),
        ("readyz", "GET /readyz\n\n".to_string()),
        ("openapi", "GET /openapi.json\n\n".to_string()),
        ("context", get("/v1/context", "$OP1")),
        ("audit", get("/v1/audit", "$CB")),
        (
            "open-wallet",
            post(
                "/v1/operators/OP01/wallets",
                "$OP1",
                None,
                &format!(r#"{{"phone":"13912345678","public_key":"{public_key}"}}"#),
            ),
        ),
        ("wallet", get("/v1/wallets/W0000000001", "$OP1")),
        (
            "pay",
            post(
                "/v1/payments",
                "$OP1",
                Some("123e4567-e89b-12d3-a456-426614174000"),
                &format!(r#"{{"payer":"W0000000001","payee":"W0000000002","amount":"66.60",{signed}}}"#),
            ),
        ),
        ("transfer", get("/v1/transfers/T000000000001", "$CB")),
        (
            "onboard",
            post(
                "/v1/operators/OP02/merchants",
                "$OP2",
                None,
                r#"{"wallet":"W0000000003","name":"Corner Books","mcc":"5942","region":320500}"#,
            ),
        ),
        (
            "terminal",
            post("/v1/merchants/M00000001/terminals", "$T0", None, r#"{"kind":"pos"}"#),
        ),
        ("qr", get("/v1/merchants/M00000001/qr?format=json", "$T0")),
        ("tap-zone", get("/v1/merchants/M00000001/tap-zone", "$T0")),
        (
            "order",
            post(
                "/v1/merchants/M00000001/orders",
                "$T0",
                None,
                r#"{"reference":"SZ-0007","amount":"28.50","valid_s":600}"#,
            ),
        ),
        (
            "request-payment",
            post(
                "/v1/request-payments",
                "$OP1",
                Some("1f"),
                &format!(r#"{{"payer":"W0000000001","request":"00020101021126390007cn.ecny0104OP020209M000000015204594253031565802CN5912Corner Books6006Suzhou6304ABCD","amount":"3.00","read":"qr",{signed}}}"#),
            ),
        ),
        (
            "code-payment",
            post(
                "/v1/merchants/M00000001/code-payments",
                "$T1",
                Some("2a"),
                r#"{"code":"280112345678901234","amount":"12.00"}"#,
            ),
        ),
        (
            "sub-wallet",
            post(
                "/v1/wallets/W0000000001/sub-wallets",
                "$OP1",
                None,
                &format!(r#"{{"merchant":"M00000001","per_payment":"50","daily":"200",{signed}}}"#),
            ),
        ),
        (
            "sub-wallet-limits",
            format!(
                "PUT /v1/sub-wallets/SW00000001\nAuthorization: Bearer $OP1\nContent-Type: application/json\n\n{{\"per_payment\":\"20\",\"daily\":\"100\",\"open\":true,{signed}}}"
            ),
        ),
        (
            "refund",
            post(
                "/v1/merchants/M00000001/refunds",
                "$T0",
                Some("3b"),
                r#"{"payment":"T000000000040","amount":"1.00"}"#,
            ),
        ),
        ("payments", get("/v1/merchants/M00000001/payments", "$T0")),
        (
            "settlement",
            get("/v1/merchants/M00000001/settlement?date=2026-11-23", "$T0"),
        ),
        (
            "contract",
            post(
                "/v1/contracts",
                "$OP1",
                Some("4c"),
                &format!(r#"{{"payer":"W0000000001","payee":"W0000000002","template":"prepaid","purpose":"reading club","units":10,"unit_price":"2.00",{signed}}}"#),
            ),
        ),
        ("contract-read", get("/v1/contracts/C00000001", "$CB")),
        (
            "bank-account",
            post(
                "/v1/wallets/W0000000001/bank-account",
                "$OP1",
                Some("5d"),
                r#"{"cash":"100"}"#,
            ),
        ),
        (
            "kyc",
            post(
                "/v1/wallets/W0000000001/kyc",
                "$OP1",
                None,
                r#"{"class":3,"name":"Li Hua","id_number":"320102199001011234"}"#,
            ),
        ),
        (
            "exchange",
            post(
                "/v1/wallets/W0000000001/exchange",
                "$OP1",
                Some("6e"),
                &format!(r#"{{"amount":"10",{signed}}}"#),
            ),
        ),
        (
            "deanonymize",
            post(
                "/v1/wallets/W0000000001/deanonymize",
                "$OP1",
                None,
                r#"{"reason":"court order 2024-17"}"#,
            ),
        ),
        ("deanonymizations", get("/v1/deanonymizations", "$CB")),
        ("payment-code", get("/v1/wallets/W0000000001/payment-code", "$OP1")),
        ("wrong-token", get("/v1/audit", "OP01.not-a-token")),
        ("wrong-method", "DELETE /v1/payments\nAuthorization: Bearer $OP1\n\n".to_string()),
    ];
    requests
        .into_iter()
        .map(|(name, text)| (name, text.into_bytes()))
        .collect()
}
