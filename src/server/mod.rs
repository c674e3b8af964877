//! The HTTP API of a node: operators open wallets and submit their holders' signed payments, the
//! central bank reads the audit. Handlers in `routes` only translate; `gateway` calls the domain;
//! `problem` turns every failure into RFC 9457 problem details with the domain's stable code.
//! The handler modules (`routes`, `merchants`, `contracts`, `campaigns`, `counter`, `devices`,
//! `identity`, `staff`, `central_bank`, `holders`, `analytics`) share
//! the extractors of `extract` and the OpenAPI pieces of `openapi_doc` and never import one
//! another; `tests/architecture.rs` keeps `server/` free of import cycles.
//!
//! Start-up opens the platform once (genesis on a new directory), builds one signing desk per
//! operator from `DIR/keys`, writes missing bearer tokens (`DIR/keys/OPxx.token`,
//! `DIR/keys/central-bank.token`) and runs the node on its own thread behind a `NodeHandle`.

pub mod analytics;
pub mod auth;
pub mod campaigns;
pub mod central_bank;
pub mod config;
pub mod connections;
pub mod contracts;
pub mod counter;
pub mod devices;
pub mod extract;
pub mod fields;
pub mod gateway;
pub mod holders;
pub mod identity;
pub mod merchants;
pub mod metrics;
pub mod notifier;
pub mod openapi;
pub mod openapi_doc;
pub mod problem;
pub mod problem_codes;
pub mod routes;
pub mod staff;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use thiserror::Error;
use tokio::sync::oneshot;

use crate::analytics::live::LiveCenter;
use crate::analytics::rules::RuleConfig;
use crate::certs::sm3;
use crate::certs::KeyPair;
use crate::channels::payment_code::OperatorCodeSecret;
use crate::ids::OperatorId;
use crate::keyring::{Keyring, KeyringError};
use crate::node::{Node, NodeHandle};
use crate::operator::BatchDesk;
use crate::platform::{Platform, PlatformError};
use crate::scheduler::{DueWatch, Scheduler};
use crate::time::SharedClock;

use self::auth::{AuthFailureLimiter, Tokens, UsedChallenges};
use self::extract::App;
use self::gateway::{Admission, CodeDesk, DeviceDesk, Gateway};
use self::metrics::Metrics;

/// Largest request body accepted unless configured otherwise; a payment is a few hundred bytes.
pub const REQUEST_BODY_BYTES_MAX: usize = 64 * 1024;
pub const LISTEN_DEFAULT: &str = "127.0.0.1:8080";
/// Async workers; signature checks and commits run on the blocking pool, not here.
const WORKER_THREADS: usize = 2;
/// How long shutdown waits for in-flight blocking calls (a commit) before giving up on them.
const SHUTDOWN_WAIT_MS: u64 = 5_000;

#[derive(Debug, Error)]
pub enum ServerError {
    #[error("cannot open the data directory: {0} [{code}]", code = .0.code())]
    Platform(#[from] PlatformError),
    #[error("cannot read an operator key: {0}")]
    Keyring(#[from] KeyringError),
    #[error("cannot read or write a token file in DIR/keys: {0}")]
    Tokens(std::io::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("the server thread panicked")]
    Panicked,
}

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub data: PathBuf,
    pub listen: String,
    /// Stop on ctrl-c or SIGTERM (the binary); tests stop the server by dropping it instead.
    pub stop_on_ctrl_c: bool,
    /// Larger request bodies are refused with 413.
    pub body_limit_bytes: usize,
    /// Wrong bearer tokens a client address may present a minute before it gets 429.
    pub auth_failures_per_minute_max: u32,
    /// How long a client may take over a request's headers (or idle between requests) and body.
    pub timeouts: connections::Timeouts,
    /// What stamps entries and tells the scheduler when work is due: the machine's clock, or
    /// one a test moves.
    pub clock: SharedClock,
    /// Where the winners' SMS notices are POSTed (`http://host:port/path`); without one they
    /// wait in the outbox.
    pub sms_gateway: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            data: PathBuf::from(config::DATA_DEFAULT),
            listen: LISTEN_DEFAULT.to_string(),
            stop_on_ctrl_c: false,
            body_limit_bytes: REQUEST_BODY_BYTES_MAX,
            auth_failures_per_minute_max: auth::AUTH_FAILURES_PER_MINUTE_DEFAULT,
            timeouts: connections::Timeouts::default(),
            clock: SharedClock::System,
            sms_gateway: None,
        }
    }
}

/// A running server; dropping it shuts it down cleanly and waits for the node to stop.
pub struct Server {
    addr: SocketAddr,
    /// The operators whose tokens it accepts; none means only the central bank can call it.
    operators: Vec<OperatorId>,
    /// The analysis center following the node, and what the scheduler has done: for benchmarks.
    analytics: Arc<LiveCenter>,
    due: Arc<DueWatch>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(config: &ServerConfig) -> Result<Server, ServerError> {
        // Every secret is its owner's alone before anything reads one.
        crate::keyring::secure_secrets_dir(&config.data.join("keys"))
            .map_err(ServerError::Tokens)?;
        let (node, desks, central_bank, devices) = open_node(&config.data, &config.clock)?;
        let operators: Vec<_> = desks.iter().map(|desk| desk.operator).collect();
        let tokens =
            Tokens::load_or_create(&config.data, &operators).map_err(ServerError::Tokens)?;
        let mut with_codes = Vec::with_capacity(desks.len());
        for desk in desks {
            let codes = code_desk(&config.data, desk.operator).map_err(ServerError::Tokens)?;
            with_codes.push((desk, codes));
        }
        let admission = Admission {
            data: config.data.clone(),
            central_bank: Keyring::new(&config.data).central_bank()?,
            code_desk,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .enable_all()
            .build()
            .map_err(ServerError::Runtime)?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(&config.listen))
            .map_err(|source| ServerError::Listen {
                addr: config.listen.clone(),
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ServerError::Listen {
                addr: config.listen.clone(),
                source,
            })?;
        let due = Arc::new(DueWatch::default());
        let live = LiveCenter::new(RuleConfig::default());
        let (observed, arrived) = (due.clone(), live.clone());
        let (handle, node_thread) = NodeHandle::spawn_observed(
            node,
            Box::new(move |state| {
                observed.observe(state);
                arrived.arrived();
            }),
        );
        let follower = live.start_follower(handle.clone(), config.clock.clone());
        let scheduler = Scheduler::start(
            handle.clone(),
            central_bank,
            config.clock.clone(),
            due.clone(),
        );
        let metrics = Arc::new(Metrics::default());
        let credentials = tokens.book();
        let app = Arc::new(App {
            gateway: Arc::new(Gateway::new(
                handle,
                with_codes,
                admission,
                metrics.clone(),
                credentials,
            )),
            tokens,
            auth_failures: AuthFailureLimiter::new(config.auth_failures_per_minute_max),
            used_challenges: UsedChallenges::new(gateway::now_s()),
            body_limit_bytes: config.body_limit_bytes,
            metrics,
            analytics: live.clone(),
            due: due.clone(),
            devices: Arc::new(devices),
            notifier: notifier::Notifier::start(config.sms_gateway.clone()),
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let on_ctrl_c = config.stop_on_ctrl_c;
        let timeouts = config.timeouts;
        // Listening for SIGTERM starts here, before anyone is told the server is up: a stop
        // asked for at once must find the listener, not the default action.
        let sigterm = on_ctrl_c.then(|| listen_for_sigterm(&runtime)).flatten();
        let thread = std::thread::Builder::new()
            .name("ecny-http".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let shutdown = async move {
                        if on_ctrl_c {
                            tokio::select! {
                                _ = stopped => {}
                                _ = tokio::signal::ctrl_c() => tracing::info!("ctrl-c: stopping"),
                                _ = terminated(sigterm) => tracing::info!("SIGTERM: stopping"),
                            }
                        } else {
                            let _ = stopped.await;
                        }
                    };
                    connections::serve(listener, routes::router(app), timeouts, shutdown).await;
                });
                runtime.shutdown_timeout(Duration::from_millis(SHUTDOWN_WAIT_MS));
                // The scheduler's and the analysis center's handles go last, with their work in
                // flight finished.
                scheduler.stop();
                follower.stop();
                // Every handle is gone with the router: the node finishes what is in flight.
                if node_thread.join().is_err() {
                    tracing::error!("the node thread panicked");
                }
            })
            .map_err(ServerError::Runtime)?;
        tracing::info!(%addr, data = %config.data.display(), "listening");
        Ok(Server {
            addr,
            operators,
            analytics: live,
            due,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The operators of its data directory, each with a bearer token in DIR/keys.
    pub fn operators(&self) -> &[OperatorId] {
        &self.operators
    }

    /// The analysis center that follows this server's node.
    pub fn analytics(&self) -> &Arc<LiveCenter> {
        &self.analytics
    }

    /// What the scheduler knows and has done.
    pub fn due(&self) -> &DueWatch {
        &self.due
    }

    /// Waits until the server stops (ctrl-c, when configured).
    pub fn wait(mut self) -> Result<(), ServerError> {
        let thread = self.thread.take().expect("joined once");
        thread.join().map_err(|_| ServerError::Panicked)
    }

    /// Stops accepting, finishes requests in flight, stops the node.
    pub fn stop(mut self) -> Result<(), ServerError> {
        self.shut_down()
    }

    fn shut_down(&mut self) -> Result<(), ServerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(thread) => thread.join().map_err(|_| ServerError::Panicked),
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.shut_down();
    }
}

#[cfg(unix)]
type Sigterm = tokio::signal::unix::Signal;
#[cfg(not(unix))]
type Sigterm = ();

/// Starts listening for SIGTERM, so `systemctl stop` and container runtimes get the same clean
/// shutdown as ctrl-c.
fn listen_for_sigterm(runtime: &tokio::runtime::Runtime) -> Option<Sigterm> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let _entered = runtime.enter();
        match signal(SignalKind::terminate()) {
            Ok(sigterm) => Some(sigterm),
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; ctrl-c still stops the server");
                None
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = runtime;
        None
    }
}

/// Resolves when a service manager asks the process to stop (SIGTERM).
async fn terminated(sigterm: Option<Sigterm>) {
    #[cfg(unix)]
    if let Some(mut sigterm) = sigterm {
        sigterm.recv().await;
        return;
    }
    #[cfg(not(unix))]
    let _ = sigterm;
    // Without a listener only ctrl-c or dropping the server stops it.
    std::future::pending::<()>().await;
}

/// An operator's payment-code desk, from its secret in `DIR/keys/OPxx.code-secret` (made on
/// first start or at admission). Operators above 99 cannot be routed by a payment code and get
/// none.
fn code_desk(data: &Path, id: OperatorId) -> std::io::Result<Option<CodeDesk>> {
    let path = data.join("keys").join(format!("{id}.code-secret"));
    let hex = auth::load_or_create(&path)?;
    let bytes = sm3(hex.as_bytes());
    Ok(CodeDesk::new(id, &OperatorCodeSecret::from_bytes(bytes)).ok())
}

/// Opens the platform once (genesis on a new directory), the desks of known operators and what
/// they sign for their hardware wallets; the central bank's key signs the scheduler's entries.
fn open_node(
    data: &Path,
    clock: &SharedClock,
) -> Result<(Node, Vec<BatchDesk>, KeyPair, DeviceDesk), ServerError> {
    let (platform, _) = Platform::open_with_clock(data, Box::new(clock.clone()))?;
    let keyring = Keyring::new(data);
    let issuers = platform
        .state()
        .operators()
        .iter()
        .map(|op| Ok((op.id, keyring.operator(op.id)?)))
        .collect::<Result<Vec<_>, KeyringError>>()?;
    let devices = DeviceDesk::new(keyring.central_bank()?, issuers, gateway::now_s() as u32);
    let desks = platform
        .state()
        .operators()
        .iter()
        .map(|op| {
            Ok(BatchDesk::new(
                op.id,
                keyring.operator(op.id)?,
                gateway::DESK_VERIFY_THREADS,
            ))
        })
        .collect::<Result<Vec<_>, KeyringError>>()?;
    let central_bank = platform.central_bank().clone();
    Ok((platform.into_node(), desks, central_bank, devices))
}
