//! What the HTTP layer calls: an operator's front office on one node. It builds commands, runs
//! them through the caller's signing desk, submits them and waits until they are durable. Every
//! call blocks; handlers run them on the blocking pool.

use std::sync::Arc;
use std::time::Instant;

use thiserror::Error;

use crate::amount::Amount;
use crate::audit::{audit, AuditReport};
use crate::certs::PublicKey;
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
}

impl GatewayError {
    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::Refused(error) => error.code(),
            GatewayError::Node(error) => error.code(),
            GatewayError::NotYourOperator { .. } => "NOT_YOUR_OPERATOR",
            GatewayError::OperatorOnly => "OPERATOR_ONLY",
            GatewayError::NoDesk(_) => "UNKNOWN_OPERATOR",
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

pub struct Gateway {
    node: NodeHandle,
    /// Indexed by operator id - 1, as operator ids are dense.
    desks: Vec<BatchDesk>,
    metrics: Arc<Metrics>,
}

impl Gateway {
    pub fn new(node: NodeHandle, desks: Vec<BatchDesk>, metrics: Arc<Metrics>) -> Gateway {
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

    fn submit_one(&self, operator: OperatorId, command: Command) -> Result<Outcome, GatewayError> {
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

fn operator_of(caller: Caller) -> Result<OperatorId, GatewayError> {
    match caller {
        Caller::Operator(id) => Ok(id),
        Caller::CentralBank => Err(GatewayError::OperatorOnly),
    }
}
