//! What the HTTP layer calls: an operator's front office on one node. It builds commands, runs
//! them through the caller's signing desk, submits them and waits until they are durable. Every
//! call blocks; handlers run them on the blocking pool.

use std::collections::HashMap;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use thiserror::Error;

use crate::amount::Amount;
use crate::audit::{audit, AuditReport};
use crate::certs::PublicKey;
use crate::channels::payment_code::{
    CodeError, OperatorCodeSecret, PaymentCodeIssuer, PaymentCodeVerifier,
};
use crate::channels::{NdefError, QrError, RenderError};
use crate::command::{Command, HolderAuth, Outcome};
use crate::error::CommandError;
use crate::ids::{EventId, IdempotencyKey, OperatorId, WalletId};
use crate::node::{NodeError, NodeHandle};
use crate::operator::BatchDesk;
use crate::wallet::{WalletClass, WalletStatus};

use super::auth::Caller;
use super::metrics::Metrics;

#[derive(Debug, Error)]
pub enum GatewayError {
    #[error(transparent)]
    Refused(#[from] CommandError),
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("this endpoint belongs to operator {owner}; the token presented is {caller}'s")]
    NotYourOperator { owner: OperatorId, caller: Caller },
    #[error("only an operator's token may call this endpoint")]
    OperatorOnly,
    #[error(
        "operator {0} has no signing desk on this server; restart the server after admitting it"
    )]
    NoDesk(OperatorId),
    #[error("{detail}")]
    Forbidden { code: &'static str, detail: String },
    /// The request clashes with what is already there, e.g. a second bank account to bind.
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    #[error(transparent)]
    Qr(#[from] QrError),
    #[error(transparent)]
    Ndef(#[from] NdefError),
    #[error(transparent)]
    Code(#[from] CodeError),
    #[error(transparent)]
    Render(#[from] RenderError),
}

impl GatewayError {
    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::Refused(error) => error.code(),
            GatewayError::Node(error) => error.code(),
            GatewayError::NotYourOperator { .. } => "NOT_YOUR_OPERATOR",
            GatewayError::OperatorOnly => "OPERATOR_ONLY",
            GatewayError::NoDesk(_) => "UNKNOWN_OPERATOR",
            GatewayError::Forbidden { code, .. } | GatewayError::Conflict { code, .. } => code,
            GatewayError::Qr(error) => error.code(),
            GatewayError::Ndef(error) => error.code(),
            GatewayError::Code(error) => error.code(),
            GatewayError::Render(error) => error.code(),
        }
    }
}

/// A holder's signed payment order, as the holder signed it.
#[derive(Clone, Debug)]
pub struct PaymentOrder {
    pub payer: WalletId,
    pub payee: WalletId,
    pub amount: Amount,
    pub key: IdempotencyKey,
    pub auth: HolderAuth,
}

impl PaymentOrder {
    /// The command the holder signs (`signing_bytes`) and the operator submits.
    pub fn command(&self) -> Command {
        Command::Pay {
            payer: self.payer,
            payee: self.payee,
            amount: self.amount,
            key: self.key,
            auth: Some(self.auth),
        }
    }
}

/// What an operator sees of its own wallet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletView {
    pub id: WalletId,
    pub operator: OperatorId,
    pub class: WalletClass,
    pub status: WalletStatus,
    pub balance: Amount,
}

/// Payment codes of one operator: it issues them to its wallets and redeems them at tills.
pub struct CodeDesk {
    pub issuer: PaymentCodeIssuer,
    pub verifier: Mutex<PaymentCodeVerifier>,
}

impl CodeDesk {
    pub fn new(operator: OperatorId, secret: &OperatorCodeSecret) -> Result<CodeDesk, CodeError> {
        Ok(CodeDesk {
            issuer: PaymentCodeIssuer::new(operator, secret)?,
            verifier: Mutex::new(PaymentCodeVerifier::new(operator, secret)?),
        })
    }
}

/// Charges already made from payment codes, by terminal and idempotency key, so a till that
/// retries after a lost answer gets the first charge back instead of "code already used".
pub(super) type CodeCharges = HashMap<(u64, crate::ids::IdempotencyKey), (String, EventId)>;

/// Most requests one operator batch gathers: bounds the latency a batch adds to its first request.
const BATCH_REQUESTS_MAX: usize = 1_024;
/// Batches one operator prepares and commits at once: one signs the next while another commits.
const BATCHERS_PER_OPERATOR: usize = 2;

/// What a batcher answers one request: the command's result, or why the batch failed.
type Answer = Result<crate::command::CommandResult, GatewayError>;

struct Job {
    command: Command,
    reply: mpsc::SyncSender<Answer>,
}

/// One operator's front office: requests that arrive while a batch is being signed or committed
/// wait and go together in the next one, so a busy server signs and verifies one batch signature
/// per batch rather than per request; a lone request goes at once.
struct Batcher {
    jobs: mpsc::Sender<Job>,
}

impl Batcher {
    fn spawn(desk: BatchDesk, node: NodeHandle, metrics: Arc<Metrics>) -> Batcher {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let desk = Arc::new(desk);
        for worker in 0..BATCHERS_PER_OPERATOR {
            let (queue, desk, node, metrics) =
                (queue.clone(), desk.clone(), node.clone(), metrics.clone());
            std::thread::Builder::new()
                .name(format!("desk-{}-{worker}", desk.operator))
                .spawn(move || loop {
                    let Some(batch) = next_batch(&queue) else {
                        return; // the gateway is gone
                    };
                    run_batch(&desk, &node, &metrics, batch);
                })
                .expect("a desk thread starts");
        }
        Batcher { jobs }
    }
}

/// The next request and whatever queued behind it.
fn next_batch(queue: &Mutex<mpsc::Receiver<Job>>) -> Option<Vec<Job>> {
    let queue = queue.lock().ok()?;
    let first = queue.recv().ok()?;
    let mut batch = vec![first];
    while batch.len() < BATCH_REQUESTS_MAX {
        match queue.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    Some(batch)
}

fn run_batch(desk: &BatchDesk, node: &NodeHandle, metrics: &Metrics, batch: Vec<Job>) {
    let commands: Vec<Command> = batch.iter().map(|job| job.command.clone()).collect();
    let prepared = desk.prepare(&commands);
    let mut answers: Vec<Option<Answer>> = (0..batch.len()).map(|_| None).collect();
    for (position, error) in prepared.refused {
        answers[position] = Some(Ok(Err(error)));
    }
    if !prepared.kept.is_empty() {
        let started = Instant::now();
        match node.submit(prepared.submission) {
            Ok(Ok(results)) => {
                metrics.observe_commit(started.elapsed());
                for (position, result) in prepared.kept.iter().zip(results) {
                    answers[*position] = Some(Ok(result));
                }
            }
            Ok(Err(refused)) => {
                for position in &prepared.kept {
                    answers[*position] = Some(Ok(Err(refused.clone())));
                }
            }
            Err(failure) => {
                tracing::error!(%failure, operator = %desk.operator, "a batch could not be committed");
                let stopped = matches!(failure, NodeError::Stopped);
                for position in &prepared.kept {
                    // A failed write poisons the node: every request of the batch hears it.
                    let error = if stopped {
                        NodeError::Stopped
                    } else {
                        NodeError::Poisoned
                    };
                    answers[*position] = Some(Err(GatewayError::Node(error)));
                }
            }
        }
    }
    for (job, answer) in batch.into_iter().zip(answers) {
        let answer = answer.expect("every request of a batch is answered");
        // A caller that went away (a dropped connection) no longer needs its answer.
        let _ = job.reply.send(answer);
    }
}

pub struct Gateway {
    pub(super) node: NodeHandle,
    /// Indexed by operator id - 1, as operator ids are dense.
    batchers: Vec<Batcher>,
    /// Indexed like `batchers`; an operator without a code secret (above 99) has none.
    pub(super) codes: Vec<Option<CodeDesk>>,
    pub(super) code_charges: Mutex<CodeCharges>,
    pub(super) metrics: Arc<Metrics>,
}

impl Gateway {
    pub fn new(
        node: NodeHandle,
        desks: Vec<BatchDesk>,
        codes: Vec<Option<CodeDesk>>,
        metrics: Arc<Metrics>,
    ) -> Gateway {
        for (index, desk) in desks.iter().enumerate() {
            assert_eq!(
                desk.operator.index(),
                index + 1,
                "desks are in operator order"
            );
        }
        let batchers = desks
            .into_iter()
            .map(|desk| Batcher::spawn(desk, node.clone(), metrics.clone()))
            .collect();
        Gateway {
            node,
            batchers,
            codes,
            code_charges: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    /// The node answers a query: it is up and has replayed its log.
    pub fn ready(&self) -> Result<u64, GatewayError> {
        Ok(self.node.query(|state| state.entries_applied())?)
    }

    pub fn open_wallet(
        &self,
        caller: Caller,
        operator: OperatorId,
        phone: u64,
        public_key: PublicKey,
    ) -> Result<WalletId, GatewayError> {
        if caller != Caller::Operator(operator) {
            return Err(GatewayError::NotYourOperator {
                owner: operator,
                caller,
            });
        }
        let command = Command::OpenWallet {
            operator,
            phone,
            public_key,
        };
        match self.submit_one(operator, command)? {
            Outcome::Wallet(id) => Ok(id),
            other => unreachable!("open wallet answered {other:?}"),
        }
    }

    pub fn wallet(&self, caller: Caller, id: WalletId) -> Result<WalletView, GatewayError> {
        let operator = operator_of(caller)?;
        let view = self.node.query(move |state| {
            let wallet = state.wallet(id)?;
            if wallet.operator != operator {
                return Err(CommandError::NotYourWallet {
                    wallet: id,
                    owner: wallet.operator,
                    caller: operator,
                });
            }
            Ok(WalletView {
                id,
                operator: wallet.operator,
                class: wallet.class,
                status: wallet.status,
                balance: state.balance(id)?,
            })
        })??;
        Ok(view)
    }

    /// Pays as the holder signed; a retry with the same key answers the first transfer.
    pub fn pay(&self, caller: Caller, order: &PaymentOrder) -> Result<EventId, GatewayError> {
        let operator = operator_of(caller)?;
        match self.submit_one(operator, order.command())? {
            Outcome::Transfer(id) => {
                self.metrics.count_payment();
                Ok(id)
            }
            other => unreachable!("pay answered {other:?}"),
        }
    }

    pub fn audit(&self, caller: Caller) -> Result<AuditReport, GatewayError> {
        if caller != Caller::CentralBank {
            return Err(CommandError::CentralBankOnly.into());
        }
        Ok(self.node.query(audit)?)
    }

    pub(super) fn submit_one(
        &self,
        operator: OperatorId,
        command: Command,
    ) -> Result<Outcome, GatewayError> {
        let batcher = operator
            .index()
            .checked_sub(1)
            .and_then(|i| self.batchers.get(i))
            .ok_or(GatewayError::NoDesk(operator))?;
        let (reply, answer) = mpsc::sync_channel(1);
        let stopped = || GatewayError::Node(NodeError::Stopped);
        batcher
            .jobs
            .send(Job { command, reply })
            .map_err(|_| stopped())?;
        let result = answer.recv().map_err(|_| stopped())??;
        Ok(result?)
    }
}

/// Unix seconds now: QR expiry and payment-code steps are wall-clock matters of the front office.
pub(super) fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

pub(super) fn operator_of(caller: Caller) -> Result<OperatorId, GatewayError> {
    match caller {
        Caller::Operator(id) => Ok(id),
        _ => Err(GatewayError::OperatorOnly),
    }
}
