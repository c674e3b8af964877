//! The client side of the HTTP API: JSON requests with a bearer token, to a server on plain HTTP
//! (the `ecny serve` next door; no TLS is built in). A refusal comes back as the server's problem
//! code and detail. A money-moving request carries an idempotency key and, when the connection
//! fails, is sent once more with the same key, so a lost answer never pays twice.

use std::time::Duration;

use serde_json::Value;
use ureq::Agent;

use ecny::ids::IdempotencyKey;

use super::client::Failure;

pub const SERVER_DEFAULT: &str = "http://127.0.0.1:8080";
/// Longest a request may take, connection to last byte; a commit takes milliseconds.
const REQUEST_TIMEOUT_MS: u64 = 30_000;
const CONNECT_TIMEOUT_MS: u64 = 5_000;
/// Sends of a request that is safe to repeat: the first and one more after a failed connection.
const SAFE_SENDS_MAX: usize = 2;
/// Pause before sending again, so a server that dropped a connection can recover.
const RESEND_PAUSE_MS: u64 = 300;
/// Largest answer read; the longest is a busy merchant's list of a day's payments.
const RESPONSE_BYTES_MAX: u64 = 16 << 20;
const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";
/// How much of an answer that is not a problem document is shown with its status.
const PLAIN_ERROR_CHARS_MAX: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Get,
    Post,
    Put,
}

/// One server, spoken to with one bearer token, or none (an empty token): a holder's signed
/// commands carry their authority in the body.
pub struct Api {
    base: String,
    token: String,
    agent: Agent,
}

/// Why a send did not get an answer: the connection failed (safe to repeat a keyed request) or
/// the request itself cannot be sent.
enum SendError {
    ConnectionLost(String),
    Failed(Failure),
}

/// A fresh idempotency key from the operating system's random source.
pub fn fresh_key() -> Result<IdempotencyKey, Failure> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|error| {
        Failure::new(
            "RANDOM_UNAVAILABLE",
            format!("cannot draw an idempotency key: {error}"),
        )
    })?;
    Ok(IdempotencyKey(u128::from_be_bytes(bytes)))
}

/// `8-4-4-4-12` hex digits, the UUID shape; the server reads the same 128 bits back.
pub fn uuid_text(key: IdempotencyKey) -> String {
    let hex = key.to_string();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// `http://host:port` without a trailing slash; a bare `host:port` gets `http://`.
pub fn server_base(server: &str) -> Result<String, Failure> {
    let server = server.trim();
    if server.starts_with("https://") {
        return Err(Failure::new(
            "SERVER_URL_UNSUPPORTED",
            format!("{server}: this client speaks plain HTTP to a server on this machine or network; use http://"),
        ));
    }
    let host = server
        .strip_prefix("http://")
        .unwrap_or(server)
        .trim_end_matches('/');
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(Failure::new(
            "SERVER_URL_MALFORMED",
            format!("{server:?} is not a server address like {SERVER_DEFAULT}"),
        ));
    }
    Ok(format!("http://{host}"))
}

impl Api {
    pub fn new(server: &str, token: &str) -> Result<Api, Failure> {
        let config = Agent::config_builder()
            .http_status_as_error(false)
            // Talk straight to the server: a proxy set for downloads must not swallow loopback.
            .proxy(None)
            .timeout_global(Some(Duration::from_millis(REQUEST_TIMEOUT_MS)))
            .timeout_connect(Some(Duration::from_millis(CONNECT_TIMEOUT_MS)))
            .max_redirects(0)
            .build();
        Ok(Api {
            base: server_base(server)?,
            token: token.trim().to_string(),
            agent: config.into(),
        })
    }

    /// A read; repeated once if the connection fails.
    pub fn get(&self, path: &str) -> Result<Value, Failure> {
        self.send(Method::Get, path, None, None, SAFE_SENDS_MAX)
    }

    /// A read whose answer is a document (a statement's XML) rather than JSON; sent once.
    pub fn get_text(&self, path: &str) -> Result<String, Failure> {
        let url = format!("{}{path}", self.base);
        let mut request = self.agent.get(&url);
        if !self.token.is_empty() {
            request = request.header("Authorization", format!("Bearer {}", self.token));
        }
        let unreachable = |error: SendError| match error {
            SendError::Failed(failure) => failure,
            SendError::ConnectionLost(why) => Failure::new(
                "SERVER_UNREACHABLE",
                format!(
                    "no answer from {} ({why}); is `ecny serve` running there? (--server URL)",
                    self.base
                ),
            ),
        };
        let response = request
            .call()
            .map_err(|error| unreachable(transport_error(error)))?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .with_config()
            .limit(RESPONSE_BYTES_MAX)
            .read_to_vec()
            .map_err(|error| unreachable(transport_error(error)))?;
        if (200..300).contains(&status) {
            return String::from_utf8(bytes).map_err(|_| {
                Failure::new(
                    "RESPONSE_MALFORMED",
                    "the server's answer is not UTF-8 text",
                )
            });
        }
        Err(answer(status, &bytes).err().unwrap_or_else(|| {
            Failure::new(format!("HTTP_{status}"), "the server refused the read")
        }))
    }

    /// A request without an idempotency key: sent once, since a repeat could act twice.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value, Failure> {
        self.send(Method::Post, path, None, Some(body), 1)
    }

    pub fn put(&self, path: &str, body: &Value) -> Result<Value, Failure> {
        self.send(Method::Put, path, None, Some(body), 1)
    }

    /// A money-moving request under `key`; repeated once with the same key if the connection
    /// fails, and the server answers a repeat with the first result.
    pub fn post_keyed(
        &self,
        path: &str,
        key: IdempotencyKey,
        body: &Value,
    ) -> Result<Value, Failure> {
        self.send(Method::Post, path, Some(key), Some(body), SAFE_SENDS_MAX)
    }

    fn send(
        &self,
        method: Method,
        path: &str,
        key: Option<IdempotencyKey>,
        body: Option<&Value>,
        sends_max: usize,
    ) -> Result<Value, Failure> {
        let url = format!("{}{path}", self.base);
        let mut lost = String::new();
        for send in 0..sends_max {
            if send > 0 {
                std::thread::sleep(Duration::from_millis(RESEND_PAUSE_MS));
            }
            match self.send_once(method, &url, key, body) {
                Ok(value) => return Ok(value),
                Err(SendError::Failed(failure)) => return Err(failure),
                Err(SendError::ConnectionLost(why)) => lost = why,
            }
        }
        let mut detail = format!(
            "no answer from {} ({lost}); is `ecny serve` running there? (--server URL)",
            self.base
        );
        if key.is_some() {
            detail
                .push_str("; the request may have been carried out: check before sending it again");
        }
        Err(Failure::new("SERVER_UNREACHABLE", detail))
    }

    fn send_once(
        &self,
        method: Method,
        url: &str,
        key: Option<IdempotencyKey>,
        body: Option<&Value>,
    ) -> Result<Value, SendError> {
        let bearer = format!("Bearer {}", self.token);
        let bearer = (!self.token.is_empty()).then_some(bearer.as_str());
        let sent = match method {
            Method::Get => match bearer {
                Some(bearer) => self.agent.get(url).header("Authorization", bearer).call(),
                None => self.agent.get(url).call(),
            },
            Method::Post | Method::Put => {
                let request = if method == Method::Post {
                    self.agent.post(url)
                } else {
                    self.agent.put(url)
                };
                let mut request = request.content_type("application/json");
                if let Some(bearer) = bearer {
                    request = request.header("Authorization", bearer);
                }
                if let Some(key) = key {
                    request = request.header(IDEMPOTENCY_KEY_HEADER, uuid_text(key));
                }
                let text = body.map_or_else(String::new, Value::to_string);
                request.send(text)
            }
        };
        let response = sent.map_err(transport_error)?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .with_config()
            .limit(RESPONSE_BYTES_MAX)
            .read_to_vec()
            .map_err(transport_error)?;
        answer(status, &bytes).map_err(SendError::Failed)
    }
}

fn transport_error(error: ureq::Error) -> SendError {
    match error {
        ureq::Error::Io(_)
        | ureq::Error::ConnectionFailed
        | ureq::Error::Timeout(_)
        | ureq::Error::Protocol(_) => SendError::ConnectionLost(error.to_string()),
        ureq::Error::HostNotFound => SendError::Failed(Failure::new(
            "SERVER_UNREACHABLE",
            "the server's host name does not resolve; check --server",
        )),
        other => SendError::Failed(Failure::new("HTTP_CLIENT", other.to_string())),
    }
}

/// The JSON of a success, or the problem the server answered with.
fn answer(status: u16, bytes: &[u8]) -> Result<Value, Failure> {
    let parsed: Option<Value> = serde_json::from_slice(bytes).ok();
    if (200..300).contains(&status) {
        return parsed.ok_or_else(|| {
            Failure::new(
                "RESPONSE_MALFORMED",
                format!("the server answered {status} with something other than JSON"),
            )
        });
    }
    let problem = parsed.as_ref().and_then(|body| {
        let code = body.get("code")?.as_str()?;
        let detail = body.get("detail")?.as_str()?;
        Some(Failure::new(code, detail))
    });
    Err(problem.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(bytes);
        let shown: String = text.chars().take(PLAIN_ERROR_CHARS_MAX).collect();
        Failure::new(format!("HTTP_{status}"), shown)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::mpsc;

    /// Reads one request: its head lines and body.
    fn read_request(stream: &TcpStream) -> (Vec<String>, String) {
        let mut reader = BufReader::new(stream);
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end().to_string();
            if line.is_empty() {
                break;
            }
            head.push(line);
        }
        let length = head
            .iter()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().unwrap())
            })
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        (head, String::from_utf8(body).unwrap())
    }

    fn header(head: &[String], name: &str) -> Option<String> {
        head.iter().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    /// A server that drops the first `dropped` connections after reading their request, then
    /// answers `reply`; it reports each request's idempotency key.
    fn flaky_server(dropped: usize, reply: String) -> (String, mpsc::Receiver<Option<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (seen, keys) = mpsc::channel();
        std::thread::spawn(move || {
            for (index, stream) in listener.incoming().enumerate() {
                let mut stream = stream.unwrap();
                let (head, _) = read_request(&stream);
                seen.send(header(&head, IDEMPOTENCY_KEY_HEADER)).unwrap();
                if index >= dropped {
                    stream.write_all(reply.as_bytes()).unwrap();
                }
            }
        });
        (format!("http://{addr}"), keys)
    }

    fn reply(status: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    fn created() -> String {
        reply("201 Created", r#"{"transfer":"T00000001"}"#)
    }

    #[test]
    fn a_keyed_request_whose_connection_drops_is_sent_again_with_the_same_key() {
        let (server, keys) = flaky_server(1, created());
        let api = Api::new(&server, "token").unwrap();
        let key = IdempotencyKey(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        let answer = api
            .post_keyed("/v1/payments", key, &serde_json::json!({}))
            .unwrap();
        assert_eq!(answer["transfer"], "T00000001");
        let first = keys.recv().unwrap().unwrap();
        let second = keys.recv().unwrap().unwrap();
        assert_eq!(first, "01234567-89ab-cdef-0011-223344556677");
        assert_eq!(first, second);
        assert_eq!(first.parse::<IdempotencyKey>(), Ok(key));
    }

    #[test]
    fn a_request_without_a_key_is_not_sent_twice() {
        let (server, keys) = flaky_server(1, created());
        let api = Api::new(&server, "token").unwrap();
        let failure = api
            .post("/v1/operators/OP01/wallets", &serde_json::json!({}))
            .unwrap_err();
        assert_eq!(failure.code, "SERVER_UNREACHABLE");
        assert!(!failure.detail.contains("may have been carried out"));
        assert_eq!(keys.recv().unwrap(), None);
        assert!(keys
            .recv_timeout(Duration::from_millis(2 * RESEND_PAUSE_MS))
            .is_err());
    }

    #[test]
    fn a_keyed_request_that_never_gets_an_answer_says_it_may_have_happened() {
        let (server, keys) = flaky_server(usize::MAX, created());
        let api = Api::new(&server, "token").unwrap();
        let failure = api
            .post_keyed("/v1/payments", fresh_key().unwrap(), &serde_json::json!({}))
            .unwrap_err();
        assert_eq!(failure.code, "SERVER_UNREACHABLE");
        assert!(
            failure.detail.contains("may have been carried out"),
            "{failure}"
        );
        assert_eq!(keys.iter().take(SAFE_SENDS_MAX).count(), SAFE_SENDS_MAX);
    }

    #[test]
    fn a_problem_is_its_code_and_detail_and_is_not_sent_again() {
        let (server, keys) = flaky_server(
            0,
            reply(
                "422 Unprocessable Entity",
                r#"{"code":"LIMIT_DAILY","detail":"over the daily limit","status":422}"#,
            ),
        );
        let api = Api::new(&server, "token").unwrap();
        let failure = api
            .post_keyed("/v1/payments", fresh_key().unwrap(), &serde_json::json!({}))
            .unwrap_err();
        assert_eq!(
            (failure.code.as_str(), failure.detail.as_str()),
            ("LIMIT_DAILY", "over the daily limit")
        );
        assert!(keys.recv().unwrap().is_some());
        assert!(keys
            .recv_timeout(Duration::from_millis(2 * RESEND_PAUSE_MS))
            .is_err());
    }

    #[test]
    fn a_server_that_is_not_there_is_named() {
        let unused = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = unused.local_addr().unwrap();
        drop(unused);
        let api = Api::new(&addr.to_string(), "token").unwrap();
        let failure = api.get("/v1/wallets/W1").unwrap_err();
        assert_eq!(failure.code, "SERVER_UNREACHABLE");
        assert!(
            failure.detail.contains(&format!("http://{addr}")),
            "{failure}"
        );
    }

    #[test]
    fn server_addresses_are_plain_http() {
        assert_eq!(
            server_base("127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(server_base(SERVER_DEFAULT).unwrap(), SERVER_DEFAULT);
        assert_eq!(
            server_base("https://bank.example").unwrap_err().code,
            "SERVER_URL_UNSUPPORTED"
        );
        assert_eq!(
            server_base("http://").unwrap_err().code,
            "SERVER_URL_MALFORMED"
        );
    }

    #[test]
    fn fresh_keys_differ_and_read_back() {
        let (a, b) = (fresh_key().unwrap(), fresh_key().unwrap());
        assert_ne!(a, b);
        assert_eq!(uuid_text(a).parse::<IdempotencyKey>(), Ok(a));
        assert_eq!(uuid_text(a).len(), 36);
    }
}
