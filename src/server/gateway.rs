//! What the HTTP layer calls: an operator's front office on one node. It builds commands, runs
//! them through the caller's signing desk, submits them and waits until they are durable. Every
//! call blocks; handlers run them on the blocking pool.

use std::sync::{mpsc, Arc, Mutex, RwLock};
use std::time::Instant;

use thiserror::Error;

use crate::amount::Amount;
use crate::audit::{audit, AuditReport};
use crate::certs::{KeyPair, PublicKey, Signature};
use crate::channels::payment_code::{
    CodeError, OperatorCodeSecret, PaymentCodeIssuer, PaymentCodeVerifier,
};
use crate::channels::{NdefError, QrError, RenderError};
use crate::command::{Command, HolderAuth, Outcome};
use crate::error::CommandError;
use crate::ids::{EventId, IdempotencyKey, OperatorId, WalletId};
use crate::ledger::{Event, TransferKind};
use crate::node::{NodeError, NodeHandle};
use crate::offline::issuer::OperatorIssuer;
use crate::operator::front_office::MerchantAccessError;
use crate::operator::BatchDesk;
use crate::parties::{CredentialBook, Denial, Operation, Party};
use crate::signing::{DeploymentId, SigningContext};
use crate::wallet::{WalletClass, WalletStatus};

use super::metrics::Metrics;

#[derive(Debug, Error)]
pub enum GatewayError {
    #[error(transparent)]
    Refused(#[from] CommandError),
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("this endpoint belongs to operator {owner}; the credential presented is another's")]
    NotYourOperator { owner: OperatorId },
    #[error("{}", .denial.detail(*.operation))]
    Denied {
        operation: Operation,
        denial: Denial,
    },
    #[error("operator {0} has no signing desk on this server")]
    NoDesk(OperatorId),
    /// A key or secret file of the data directory could not be made or read.
    #[error("cannot set up on this server: {0}")]
    Setup(String),
    #[error("{detail}")]
    Forbidden { code: &'static str, detail: String },
    /// A query names something that is not there to read, e.g. a history cursor of another wallet.
    #[error("{detail}")]
    BadQuery { code: &'static str, detail: String },
    /// Too many of something in a window: try again after `retry_after_s`.
    #[error("{detail}")]
    TooMany {
        code: &'static str,
        detail: String,
        retry_after_s: u64,
    },
    /// The request's content is not acceptable, e.g. an empty name.
    #[error("{detail}")]
    Invalid { code: &'static str, detail: String },
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

impl From<MerchantAccessError> for GatewayError {
    fn from(error: MerchantAccessError) -> GatewayError {
        match error {
            MerchantAccessError::Denied { operation, denial } => {
                GatewayError::Denied { operation, denial }
            }
            MerchantAccessError::NotYourMerchant(_) => GatewayError::Forbidden {
                code: "NOT_YOUR_MERCHANT",
                detail: error.to_string(),
            },
        }
    }
}

impl GatewayError {
    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::Refused(error) => error.code(),
            GatewayError::Node(error) => error.code(),
            GatewayError::NotYourOperator { .. } => "NOT_YOUR_OPERATOR",
            GatewayError::Denied { denial, .. } => denial.code(),
            GatewayError::NoDesk(_) => "UNKNOWN_OPERATOR",
            GatewayError::Setup(_) => "INTERNAL",
            GatewayError::Forbidden { code, .. }
            | GatewayError::Conflict { code, .. }
            | GatewayError::Invalid { code, .. }
            | GatewayError::BadQuery { code, .. }
            | GatewayError::TooMany { code, .. } => code,
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
    pub signature: HolderSignature,
}

impl PaymentOrder {
    /// The command the holder signs (`signing_bytes`), without its signature.
    pub fn command(&self) -> Command {
        Command::Pay {
            payer: self.payer,
            payee: self.payee,
            amount: self.amount,
            key: self.key,
            auth: None,
        }
    }
}

/// A transfer as its parties read it: wallets by their pseudonymous ids, other accounts unnamed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferView {
    pub id: EventId,
    pub kind: TransferKind,
    pub amount: Amount,
    pub at_ms: u64,
    pub from: Option<WalletId>,
    pub to: Option<WalletId>,
}

/// What an operator sees of its own wallet.
/// What the holder, its operator's staff and the central bank see of a wallet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletView {
    pub id: WalletId,
    pub operator: OperatorId,
    pub class: WalletClass,
    pub status: WalletStatus,
    pub balance: Amount,
}

/// A wallet as an answer shows it.
#[derive(serde::Serialize)]
pub struct WalletResponse {
    pub wallet: String,
    pub operator: String,
    pub class: u8,
    pub status: String,
    pub balance: String,
}

impl From<WalletView> for WalletResponse {
    fn from(view: WalletView) -> WalletResponse {
        WalletResponse {
            wallet: view.id.to_string(),
            operator: view.operator.to_string(),
            class: view.class as u8,
            status: view.status.to_string(),
            balance: view.balance.to_string(),
        }
    }
}

/// A holder's signature as a request carries it: the key, the SM2 signature and the end of its
/// window. The context it names (this deployment, the wallet's operator) is not in the request:
/// the gateway binds it once it knows the wallet's operator (`Gateway::bind`).
#[derive(Clone, Copy, Debug)]
pub struct HolderSignature {
    pub public_key: PublicKey,
    pub signature: Signature,
    pub not_after_ms: u64,
}

impl HolderSignature {
    /// The signature as made for `context`.
    pub fn bound(self, context: SigningContext) -> HolderAuth {
        HolderAuth {
            public_key: self.public_key,
            signature: self.signature,
            context,
            not_after_ms: self.not_after_ms,
        }
    }
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

/// Threads one desk verifies a batch's signatures on: every core.
pub const DESK_VERIFY_THREADS: usize = 0;

impl OperatorDesk {
    /// Starts the operator's batchers: requests that arrive while a batch is being signed or
    /// committed wait and go together in the next one, so a busy server signs and verifies one
    /// batch signature per batch rather than per request; a lone request goes at once.
    fn spawn(
        desk: BatchDesk,
        codes: Option<CodeDesk>,
        node: &NodeHandle,
        metrics: &Arc<Metrics>,
    ) -> OperatorDesk {
        let identity_key = desk.identity_key();
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
        OperatorDesk {
            jobs,
            identity_key,
            codes,
        }
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

/// One operator's front office on this server: its batcher, the key it seals identities under
/// (opened for a logged de-anonymization) and its payment-code desk (none above operator 99).
pub(super) struct OperatorDesk {
    jobs: mpsc::Sender<Job>,
    pub(super) identity_key: crate::sealed::IdentityKey,
    pub(super) codes: Option<CodeDesk>,
}

/// What the gateway needs to admit an operator while serving: the central bank's key to sign
/// the admission, and where the new operator's keys go.
pub struct Admission {
    pub data: std::path::PathBuf,
    pub central_bank: crate::certs::KeyPair,
    /// The payment-code desk of a new operator, from its secret in the data directory.
    pub code_desk: fn(&std::path::Path, OperatorId) -> std::io::Result<Option<CodeDesk>>,
}

pub struct Gateway {
    pub(super) node: NodeHandle,
    /// Indexed by operator id - 1, as operator ids are dense; grows when the central bank admits
    /// an operator, so its desk serves at once.
    desks: RwLock<Vec<Arc<OperatorDesk>>>,
    /// Held while an operator is admitted: ids are assigned in order, one admission at a time.
    admission: Mutex<Admission>,
    /// What holders' signatures here must name; fixed at genesis.
    deployment: DeploymentId,
    pub(super) metrics: Arc<Metrics>,
    /// Each wallet's operator, by wallet id - 1 (0: not looked up yet): a wallet never moves, so
    /// a holder's signed command is routed without asking the node twice.
    wallet_operators: RwLock<Vec<u16>>,
    /// The credentials the tokens are checked against, refreshed after each credential command.
    pub(super) credentials: Arc<RwLock<CredentialBook>>,
    /// Phone look-ups each wallet made in its current window.
    pub(super) phone_lookups: Mutex<std::collections::HashMap<WalletId, (u64, u32)>>,
}

impl Gateway {
    pub fn new(
        node: NodeHandle,
        desks: Vec<(BatchDesk, Option<CodeDesk>)>,
        admission: Admission,
        metrics: Arc<Metrics>,
        credentials: Arc<RwLock<CredentialBook>>,
    ) -> Gateway {
        for (index, (desk, _)) in desks.iter().enumerate() {
            assert_eq!(
                desk.operator.index(),
                index + 1,
                "desks are in operator order"
            );
        }
        let desks = desks
            .into_iter()
            .map(|(desk, codes)| Arc::new(OperatorDesk::spawn(desk, codes, &node, &metrics)))
            .collect();
        let deployment = node
            .query(|state| state.deployment())
            .expect("the node answers while the gateway starts");
        let gateway = Gateway {
            node,
            desks: RwLock::new(desks),
            admission: Mutex::new(admission),
            deployment,
            metrics,
            wallet_operators: RwLock::new(Vec::new()),
            credentials,
            phone_lookups: Mutex::new(std::collections::HashMap::new()),
        };
        // A stopped node leaves the book empty: every derived token is then refused.
        let _ = gateway.refresh_credentials();
        gateway
    }

    /// Every operator's front office on this server, in operator order.
    pub(super) fn desks_snapshot(&self) -> Vec<(OperatorId, Arc<OperatorDesk>)> {
        let desks = self.desks.read().expect("desks lock");
        desks
            .iter()
            .enumerate()
            .map(|(slot, desk)| (OperatorId(slot as u16 + 1), desk.clone()))
            .collect()
    }

    /// The front office of `operator` on this server.
    pub(super) fn desk(&self, operator: OperatorId) -> Result<Arc<OperatorDesk>, GatewayError> {
        operator
            .slot()
            .and_then(|slot| self.desks.read().expect("desks lock").get(slot).cloned())
            .ok_or(GatewayError::NoDesk(operator))
    }

    /// The central bank admits an operator: its signing key is made in the data directory, the
    /// admission is logged under the central bank's signature, and its desk starts serving
    /// before the answer, so the operator's first request needs no restart.
    pub(super) fn admit_operator(&self, name: String) -> Result<OperatorId, GatewayError> {
        let admission = self.admission.lock().expect("admission lock");
        let id = self
            .node
            .query(|state| OperatorId(state.operators().len() as u16 + 1))?;
        let keyring = crate::keyring::Keyring::new(&admission.data);
        let key = keyring
            .operator(id)
            .map_err(|error| GatewayError::Setup(error.to_string()))?;
        let command = Command::CreateOperator {
            name,
            public_key: key.public_key(),
        };
        match self.as_central_bank(&admission.central_bank, command)? {
            Outcome::Operator(created) => assert_eq!(created, id, "operator ids are dense"),
            other => unreachable!("admitting an operator answered {other:?}"),
        }
        let codes = (admission.code_desk)(&admission.data, id)
            .map_err(|error| GatewayError::Setup(error.to_string()))?;
        let desk = BatchDesk::new(id, key, DESK_VERIFY_THREADS);
        let desk = OperatorDesk::spawn(desk, codes, &self.node, &self.metrics);
        let mut desks = self.desks.write().expect("desks lock");
        assert_eq!(desks.len() + 1, id.index(), "desks are in operator order");
        desks.push(Arc::new(desk));
        Ok(id)
    }

    /// One command under the central bank's signature, straight to the node.
    pub(super) fn as_central_bank(
        &self,
        key: &crate::certs::KeyPair,
        command: Command,
    ) -> Result<Outcome, GatewayError> {
        let submission =
            crate::command::Submission::new(crate::command::Origin::CentralBank, &[command], key);
        let mut results = self.node.submit(submission)??;
        Ok(results.remove(0)?)
    }

    /// A command of the central bank's own (issuance, redemption, suspension).
    pub(super) fn submit_as_central_bank(&self, command: Command) -> Result<Outcome, GatewayError> {
        let admission = self.admission.lock().expect("admission lock");
        self.as_central_bank(&admission.central_bank, command)
    }

    /// Reloads the credential book from the log's state, after a command changed it.
    pub(super) fn refresh_credentials(&self) -> Result<(), GatewayError> {
        let book = self.node.query(|state| state.credentials().clone())?;
        *self.credentials.write().expect("credentials lock") = book;
        Ok(())
    }

    /// The table's answer for a caller whose kind needs no look-up (not a terminal of a
    /// merchant operation: `merchant_for` decides those).
    pub(super) fn allow(&self, operation: Operation, party: Party) -> Result<(), GatewayError> {
        operation
            .authorize(party, || None)
            .map_err(|denial| GatewayError::Denied { operation, denial })
    }

    /// The operator a wallet is held at.
    pub(super) fn operator_of_wallet(&self, wallet: WalletId) -> Result<OperatorId, GatewayError> {
        let index = (wallet.0 as usize).checked_sub(1);
        let known = index.and_then(|i| {
            self.wallet_operators
                .read()
                .expect("wallet directory lock")
                .get(i)
                .copied()
        });
        if let Some(operator) = known.filter(|op| *op != 0) {
            return Ok(OperatorId(operator));
        }
        let operator = self
            .node
            .query(move |state| state.wallet(wallet).map(|w| w.operator))??;
        let index = index.expect("a known wallet has an index");
        let mut directory = self
            .wallet_operators
            .write()
            .expect("wallet directory lock");
        if directory.len() <= index {
            directory.resize(index + 1, 0);
        }
        directory[index] = operator.0;
        Ok(operator)
    }

    /// The wallet's operator, if the caller may see the wallet: its holder, its operator's staff,
    /// the central bank. Anyone else hears of it as of a wallet that does not exist.
    pub(super) fn wallet_in_scope(
        &self,
        party: Party,
        wallet: WalletId,
    ) -> Result<OperatorId, GatewayError> {
        let operator = self.operator_of_wallet(wallet)?;
        let in_scope = match party {
            Party::CentralBank => true,
            Party::Staff { operator: own, .. } => own == operator,
            Party::Holder(own) => own == wallet,
            _ => false,
        };
        if !in_scope {
            return Err(CommandError::UnknownWallet(wallet).into());
        }
        Ok(operator)
    }

    /// The operator that submits a command the holder of `acting` signed; a session of another
    /// wallet cannot carry it.
    pub(super) fn signer_operator(
        &self,
        party: Party,
        acting: WalletId,
    ) -> Result<OperatorId, GatewayError> {
        if let Party::Holder(own) = party {
            if own != acting {
                return Err(CommandError::UnknownWallet(acting).into());
            }
        }
        self.operator_of_wallet(acting)
    }

    /// What a holder of one of `operator`'s wallets signs for.
    pub fn signing_context(&self, operator: OperatorId) -> SigningContext {
        SigningContext {
            deployment: self.deployment,
            operator,
        }
    }

    /// Submits `command` as the holder of `acting` signed it, through the wallet's operator: the
    /// signature is bound to the context that operator and this deployment make, so one made for
    /// another operator or deployment fails its check.
    pub(super) fn submit_signed(
        &self,
        party: Party,
        acting: WalletId,
        command: Command,
        signature: HolderSignature,
    ) -> Result<Outcome, GatewayError> {
        let operator = self.signer_operator(party, acting)?;
        let auth = signature.bound(self.signing_context(operator));
        self.submit_one(operator, command.with_auth(auth))
    }

    pub fn deployment(&self) -> DeploymentId {
        self.deployment
    }

    /// A transfer by its id, for a party to it: the holder of either side's wallet, the staff of
    /// either side's operator, the merchant whose settlement wallet it pays or debits, or the
    /// central bank.
    pub fn transfer(&self, party: Party, id: EventId) -> Result<TransferView, GatewayError> {
        self.allow(Operation::ReadTransfer, party)?;
        self.node.query(move |state| {
            let not_found = || GatewayError::Refused(CommandError::UnknownTransfer(id));
            let Some(Event::Transfer(transfer)) = state.ledger().events().get(id.0 as usize) else {
                return Err(not_found());
            };
            let side = |account| {
                let at = state.ledger().account(account)?;
                Ok::<_, CommandError>((at.operator, state.wallet_of_account(account)))
            };
            let (from, to) = (side(transfer.debit)?, side(transfer.credit)?);
            let is_party = match party {
                Party::CentralBank => true,
                Party::Staff { operator, .. } => from.0 == operator || to.0 == operator,
                Party::Holder(wallet) => {
                    // The wallet itself, or its bound bank account (an exchange's first leg).
                    let bank = state.wallet(wallet).ok().and_then(|w| w.bank_account());
                    [from.1, to.1].contains(&Some(wallet))
                        || bank
                            .is_some_and(|bank| [transfer.debit, transfer.credit].contains(&bank))
                }
                Party::Merchant(merchant) => {
                    let settles_into = state.acquiring().merchant(merchant)?.wallet;
                    [from.1, to.1].contains(&Some(settles_into))
                }
                Party::Terminal { .. } | Party::Anonymous => false,
            };
            if !is_party {
                // Not a party: as good as no such transfer, so ids cannot be probed.
                return Err(not_found());
            }
            Ok(TransferView {
                id,
                kind: transfer.kind,
                amount: transfer.amount,
                at_ms: transfer.timestamp_ms,
                from: from.1,
                to: to.1,
            })
        })?
    }

    /// The node answers a query: it is up and has replayed its log.
    pub fn ready(&self) -> Result<u64, GatewayError> {
        Ok(self.node.query(|state| state.entries_applied())?)
    }

    /// Opens a class-4 wallet: a teller at the counter, or the holder's app proving it holds the
    /// key with a signature over the command.
    pub fn open_wallet(
        &self,
        party: Party,
        operator: OperatorId,
        phone: u64,
        (public_key, signature): (PublicKey, Option<HolderSignature>),
    ) -> Result<WalletId, GatewayError> {
        self.allow(Operation::OpenWallet, party)?;
        let command = Command::OpenWallet {
            operator,
            phone: phone.into(),
            public_key,
        };
        match party {
            Party::Staff { .. } => staff_of(party, operator)?,
            _ => {
                // Proof that the app holds the key: signed for this deployment and operator,
                // within a window, like every other signature a holder makes.
                let signature = signature.ok_or(CommandError::SignatureMissing)?;
                let signed =
                    command.signing_bytes(&self.signing_context(operator), signature.not_after_ms);
                signature
                    .public_key
                    .verify(&signed, &signature.signature)
                    .map_err(|_| CommandError::SignatureInvalid)?;
                crate::command::check_window(signature.not_after_ms, now_ms())?;
            }
        }
        match self.submit_one(operator, command)? {
            Outcome::Wallet(id) => Ok(id),
            other => unreachable!("open wallet answered {other:?}"),
        }
    }

    pub fn wallet(&self, party: Party, id: WalletId) -> Result<WalletView, GatewayError> {
        self.allow(Operation::ReadWallet, party)?;
        self.wallet_in_scope(party, id)?;
        let view = self.node.query(move |state| {
            let wallet = state.wallet(id)?;
            Ok::<_, CommandError>(WalletView {
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
    pub fn pay(&self, party: Party, order: &PaymentOrder) -> Result<EventId, GatewayError> {
        self.allow(Operation::Pay, party)?;
        match self.submit_signed(party, order.payer, order.command(), order.signature)? {
            Outcome::Transfer(id) => {
                self.metrics.count_payment();
                Ok(id)
            }
            other => unreachable!("pay answered {other:?}"),
        }
    }

    /// Each wallet class's limits at an operator, classes 1 to 4, and its password-free cap.
    pub fn class_limits(
        &self,
        operator: OperatorId,
    ) -> Result<([crate::wallet::ClassLimits; 4], Amount), GatewayError> {
        Ok(self.node.query(move |state| {
            state
                .operator(operator)
                .map(|op| (op.limits, op.code_payment_cap))
        })??)
    }

    /// The operator's administrator sets the most one payment code takes without the holder's
    /// confirmation.
    pub fn set_code_payment_cap(
        &self,
        party: Party,
        operator: OperatorId,
        cap: Amount,
    ) -> Result<(), GatewayError> {
        self.allow(Operation::SetCodePaymentCap, party)?;
        staff_of(party, operator)?;
        self.submit_one(operator, Command::SetCodePaymentCap { operator, cap })?;
        Ok(())
    }

    pub fn audit(&self, party: Party) -> Result<AuditReport, GatewayError> {
        self.allow(Operation::Audit, party)?;
        Ok(self.node.query(audit)?)
    }

    pub(super) fn submit_one(
        &self,
        operator: OperatorId,
        command: Command,
    ) -> Result<Outcome, GatewayError> {
        let desk = self.desk(operator)?;
        let (reply, answer) = mpsc::sync_channel(1);
        let stopped = || GatewayError::Node(NodeError::Stopped);
        desk.jobs
            .send(Job { command, reply })
            .map_err(|_| stopped())?;
        let result = answer.recv().map_err(|_| stopped())??;
        Ok(result?)
    }
}

/// Unix seconds now: QR expiry and payment-code steps are wall-clock matters of the front office.
pub(super) fn now_s() -> u64 {
    now_ms() / 1000
}

/// Unix milliseconds now, the clock signers' windows are measured against.
pub fn now_ms() -> u64 {
    crate::time::system_now_ms()
}

/// A staff caller of `operator` itself; the table has checked it is staff in a role that may.
pub(super) fn staff_of(party: Party, operator: OperatorId) -> Result<(), GatewayError> {
    match party.staff_operator() {
        Some(own) if own == operator => Ok(()),
        _ => Err(GatewayError::NotYourOperator { owner: operator }),
    }
}

/// What the operator signs for its cards on this server: each operator's issuer (its key,
/// certified by the central bank) and the central bank's key that signs the revocation list.
pub struct DeviceDesk {
    issuers: Vec<OperatorIssuer>,
    central_bank: KeyPair,
}

/// How long an operator's issuing certificate made at start-up is good: ten years.
const ISSUER_VALIDITY_S: u32 = 3_650 * 86_400;

impl DeviceDesk {
    /// Certifies each operator's key under the central bank's, from a day before `now_s` (for
    /// cards' clocks a little behind).
    pub fn new(central_bank: KeyPair, operators: Vec<(OperatorId, KeyPair)>, now_s: u32) -> Self {
        let validity = (now_s.saturating_sub(86_400), now_s + ISSUER_VALIDITY_S);
        let issuers = operators
            .into_iter()
            .map(|(id, key)| {
                OperatorIssuer::certify(&central_bank, id, key, u64::from(id.0), validity)
            })
            .collect();
        DeviceDesk {
            issuers,
            central_bank,
        }
    }

    pub(super) fn issuer(&self, operator: OperatorId) -> Result<&OperatorIssuer, GatewayError> {
        self.issuers
            .iter()
            .find(|issuer| issuer.operator() == operator)
            .ok_or(GatewayError::NoDesk(operator))
    }

    pub(super) fn central_bank(&self) -> &KeyPair {
        &self.central_bank
    }
}
