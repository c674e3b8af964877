//! What the HTTP layer calls: an operator's front office on one node. It builds commands, runs
//! them through the caller's signing desk, submits them and waits until they are durable. Every
//! call blocks; handlers run them on the blocking pool.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
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
    #[error("this endpoint belongs to operator {owner}; the token presented is {caller:?}'s")]
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

pub struct Gateway {
    pub(super) node: NodeHandle,
    /// Indexed by operator id - 1, as operator ids are dense.
    desks: Vec<BatchDesk>,
    /// Indexed like `desks`; an operator without a code secret (above 99) has none.
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
        Gateway {
            node,
            desks,
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
        let desk = operator
            .index()
            .checked_sub(1)
            .and_then(|i| self.desks.get(i))
            .ok_or(GatewayError::NoDesk(operator))?;
        let prepared = desk.prepare(std::slice::from_ref(&command));
        if let Some((_, error)) = prepared.refused.into_iter().next() {
            return Err(error.into());
        }
        let started = Instant::now();
        let results = self.node.submit(prepared.submission)??;
        self.metrics.observe_commit(started.elapsed());
        let result = results
            .into_iter()
            .next()
            .expect("one result per submitted command");
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
