//! Parties' credentials and the counter's one-step bank account. Staff records and revocations
//! are commands in the log, so that a revoked credential stays revoked after a restart; the
//! tokens themselves are derived by the server from names and generations and never logged.

use super::*;
use crate::operator::COUNTER_CASH_DEPOSIT_MAX;
use crate::parties::{CredentialBook, CredentialSubject, StaffRole};

impl StateMachine {
    pub fn credentials(&self) -> &CredentialBook {
        &self.credentials
    }

    pub(super) fn add_staff(
        &mut self,
        origin: Origin,
        operator: OperatorId,
        role: StaffRole,
        label: String,
    ) -> CommandResult {
        self.require_operator(origin, operator)?;
        let id = self.credentials.add_staff(operator, role, label)?;
        Ok(Outcome::Staff(id))
    }

    /// Only the subject's own operator may revoke it.
    pub(super) fn revoke_credential(
        &mut self,
        origin: Origin,
        subject: CredentialSubject,
    ) -> CommandResult {
        match subject {
            CredentialSubject::Staff(id) => {
                let operator = self.credentials.staff(id)?.operator;
                self.require_operator(origin, operator)?;
            }
            CredentialSubject::Merchant(merchant) => {
                self.own_merchant(origin, merchant)?;
            }
            CredentialSubject::Terminal { merchant, terminal } => {
                self.own_merchant(origin, merchant)?
                    .terminal(terminal)?
                    .ok_or(CommandError::UnknownTerminal { merchant, terminal })?;
            }
        }
        self.credentials.revoke(subject)?;
        Ok(Outcome::Done)
    }

    /// Opens a deposit account with the holder's cash and binds it to the wallet, all or nothing.
    /// Keyed by the wallet: a retry answers the first account; a wallet keeps the account it has.
    pub(super) fn open_bank_account_with_cash(
        &mut self,
        origin: Origin,
        wallet: WalletId,
        cash: Amount,
        by: Keyed,
        now: u64,
    ) -> CommandResult {
        check_amount(cash)?;
        if cash > COUNTER_CASH_DEPOSIT_MAX {
            return Err(CommandError::CashDepositTooLarge {
                cash,
                max: COUNTER_CASH_DEPOSIT_MAX,
            });
        }
        self.own_wallet(origin, wallet)?;
        let outcome = self.keyed(wallet, by, |state| {
            let found = state.wallet(wallet)?;
            found.ensure_active(wallet)?;
            if let Some(account) = found.bank_account() {
                return Err(CommandError::BankAccountAlreadyBound { wallet, account });
            }
            let operator = found.operator;
            let bank_funding = state.operator(operator)?.bank_funding;
            // Checked before anything is opened, so the steps below cannot fail half-way.
            state
                .ledger
                .account(bank_funding)?
                .balance
                .checked_sub(cash)
                .ok_or(CommandError::Overflow)?;
            let account = state
                .ledger
                .open_account(AccountKind::CustomerDeposit, operator);
            let leg = Leg {
                debit: bank_funding,
                credit: account,
                amount: cash,
                kind: TransferKind::CashDeposit,
            };
            let deposit = state
                .ledger
                .transfer(leg, now)
                .expect("a new deposit account takes any checked amount");
            state.wallet_mut(wallet).bind_bank_account(account);
            state
                .ledger
                .push_wallet_event(wallet, WalletChange::BankAccountBound { account }, now);
            Ok(deposit)
        })?;
        let Outcome::Transfer(deposit) = outcome else {
            unreachable!("a keyed command answers its first transfer")
        };
        let account = self
            .wallet(wallet)?
            .bank_account()
            .expect("the keyed opening bound an account");
        Ok(Outcome::BankAccount { account, deposit })
    }
}
