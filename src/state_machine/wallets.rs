//! Wallets at the center: opening, KYC classes and the identities behind them, bank accounts,
//! status and closing, and the exchanges between bank deposits and e-CNY.

use super::*;

impl StateMachine {
    pub(super) fn open_wallet(
        &mut self,
        origin: Origin,
        operator: OperatorId,
        phone: Phone,
        key: PublicKey,
        now: u64,
    ) -> CommandResult {
        // The front office checked the number in the clear; only its seal reaches the log.
        let Phone::Sealed(phone) = phone else {
            return Err(CommandError::IdentityNotSealed);
        };
        if !matches!(key.0[0], 2 | 3) {
            return Err(CommandError::SignatureInvalid);
        }
        let index = self.operator_slot(origin, operator)?;
        let id = Self::wallet_id_at(self.wallets.len());
        self.operators[index].register_phone(phone, id)?;
        let account = self.ledger.open_account(AccountKind::Wallet, operator);
        self.wallets.push(Wallet::new(account, operator));
        self.wallet_keys.push(key);
        self.index_wallet_account(id, account);
        let change = WalletChange::Opened {
            operator,
            class: WalletClass::Four,
        };
        self.ledger.push_wallet_event(id, change, now);
        Ok(Outcome::Wallet(id))
    }

    pub(super) fn upgrade_wallet(
        &mut self,
        origin: Origin,
        id: WalletId,
        to: WalletClass,
        identity: Identity,
        now: u64,
    ) -> CommandResult {
        let wallet = self.own_wallet(origin, id)?;
        if wallet.status == WalletStatus::Closed {
            return Err(CommandError::WalletClosed(id));
        }
        let (current, has_bank, op_index) = (
            wallet.class,
            wallet.bank_account().is_some(),
            wallet
                .operator
                .slot()
                .expect("a wallet's operator is known"),
        );
        if to <= WalletClass::Two {
            self.check_identity_wallets(op_index, id, &identity)?;
        }
        self.operators[op_index].upgrade_identity(id, current, to, identity, has_bank)?;
        self.wallet_mut(id).class = to;
        self.ledger
            .push_wallet_event(id, WalletChange::ClassChanged { class: to }, now);
        Ok(Outcome::Done)
    }

    /// One identity holds at most `CLASS_TWO_WALLETS_PER_IDENTITY_MAX` open wallets of class 2
    /// or better at one operator, counted by its ID number's seal tag.
    pub(super) fn check_identity_wallets(
        &self,
        op_index: usize,
        wallet: WalletId,
        update: &Identity,
    ) -> Result<(), CommandError> {
        let operator = &self.operators[op_index];
        let known = operator.identity(wallet).and_then(|i| i.id_number.as_ref());
        let Some(id_number) = update.id_number.as_ref().or(known) else {
            return Ok(());
        };
        let others = operator
            .wallets_of_id_number(&id_number.tag)
            .iter()
            .filter(|other| **other != wallet)
            .filter(|other| {
                let Ok(other) = self.wallet(**other) else {
                    return false;
                };
                other.class <= WalletClass::Two && other.status != WalletStatus::Closed
            })
            .count();
        if others >= CLASS_TWO_WALLETS_PER_IDENTITY_MAX {
            return Err(CommandError::IdentityWalletLimit {
                class: WalletClass::Two,
                max: CLASS_TWO_WALLETS_PER_IDENTITY_MAX,
            });
        }
        Ok(())
    }

    pub(super) fn bind_bank_account(
        &mut self,
        origin: Origin,
        id: WalletId,
        account: AccountId,
        auth: &Option<HolderAuth>,
        now: u64,
    ) -> CommandResult {
        let wallet = self.own_wallet(origin, id)?;
        wallet.ensure_active(id)?;
        self.check_holder_auth(id, auth, now)?;
        let target = self.ledger.account(account)?;
        if target.kind != AccountKind::CustomerDeposit || target.operator != wallet.operator {
            return Err(CommandError::UnknownAccount(account));
        }
        self.wallet_mut(id).bind_bank_account(account);
        self.ledger
            .push_wallet_event(id, WalletChange::BankAccountBound { account }, now);
        Ok(Outcome::Done)
    }

    pub(super) fn set_wallet_status(
        &mut self,
        origin: Origin,
        id: WalletId,
        status: WalletStatus,
        now: u64,
    ) -> CommandResult {
        let wallet = self.own_wallet(origin, id)?;
        if wallet.status == WalletStatus::Closed || status == WalletStatus::Closed {
            return Err(CommandError::WalletClosed(id));
        }
        self.wallet_mut(id).status = status;
        self.ledger
            .push_wallet_event(id, WalletChange::StatusChanged { status }, now);
        Ok(Outcome::Done)
    }

    pub(super) fn close_wallet(&mut self, origin: Origin, id: WalletId, now: u64) -> CommandResult {
        let wallet = self.own_wallet(origin, id)?;
        if wallet.status == WalletStatus::Closed {
            return Err(CommandError::WalletClosed(id));
        }
        let account = self.ledger.account(wallet.account)?;
        if account.pending_debits.is_positive() {
            return Err(CommandError::WalletNotEmpty(id));
        }
        if let Some(campaign) = self.red_packets.running_campaign_of(id) {
            return Err(CommandError::WalletSponsorsCampaign {
                wallet: id,
                campaign,
            });
        }
        if account.balance.is_positive() {
            let bank = wallet
                .bank_account()
                .ok_or(CommandError::NoBoundBankAccount(id))?;
            let op = self.operator(wallet.operator)?;
            let amount = account.balance;
            let legs = [
                Leg {
                    debit: wallet.account,
                    credit: op.vault,
                    amount,
                    kind: TransferKind::CloseWallet,
                },
                Leg {
                    debit: op.bank_funding,
                    credit: bank,
                    amount,
                    kind: TransferKind::CloseWallet,
                },
            ];
            self.ledger.transfer_linked(&legs, now)?;
        }
        self.wallet_mut(id).status = WalletStatus::Closed;
        let change = WalletChange::StatusChanged {
            status: WalletStatus::Closed,
        };
        self.ledger.push_wallet_event(id, change, now);
        Ok(Outcome::Done)
    }

    /// An active wallet of the calling operator with its bound bank account and its operator.
    pub(super) fn banked_wallet(
        &self,
        origin: Origin,
        id: WalletId,
    ) -> Result<(&Wallet, AccountId, &Operator), CommandError> {
        let wallet = self.own_wallet(origin, id)?;
        wallet.ensure_active(id)?;
        let bank = wallet
            .bank_account()
            .ok_or(CommandError::NoBoundBankAccount(id))?;
        Ok((wallet, bank, self.operator(wallet.operator)?))
    }

    pub(super) fn exchange(
        &mut self,
        origin: Origin,
        id: WalletId,
        amount: Amount,
        by: Keyed,
        auth: Option<HolderAuth>,
        now: u64,
    ) -> CommandResult {
        self.check_holder_movement(origin, id, amount, &auth, now)?;
        self.keyed(id, by, |state| {
            let (wallet, bank, op) = state.banked_wallet(origin, id)?;
            let balance = state.ledger.account(wallet.account)?.balance;
            wallet.check_incoming(id, op.limits_for(wallet.class), balance, amount)?;
            let vault = state.ledger.account(op.vault)?.available();
            if vault < amount {
                return Err(CommandError::VaultInsufficient {
                    operator: op.id,
                    available: vault,
                    needed: amount,
                });
            }
            let legs = [
                Leg {
                    debit: bank,
                    credit: op.bank_funding,
                    amount,
                    kind: TransferKind::Exchange,
                },
                Leg {
                    debit: op.vault,
                    credit: wallet.account,
                    amount,
                    kind: TransferKind::Exchange,
                },
            ];
            state.ledger.transfer_linked(&legs, now)
        })
    }

    pub(super) fn deposit_back(
        &mut self,
        origin: Origin,
        id: WalletId,
        amount: Amount,
        by: Keyed,
        auth: Option<HolderAuth>,
        now: u64,
    ) -> CommandResult {
        self.check_holder_movement(origin, id, amount, &auth, now)?;
        self.keyed(id, by, |state| {
            let (wallet, bank, op) = state.banked_wallet(origin, id)?;
            let legs = [
                Leg {
                    debit: wallet.account,
                    credit: op.vault,
                    amount,
                    kind: TransferKind::DepositBack,
                },
                Leg {
                    debit: op.bank_funding,
                    credit: bank,
                    amount,
                    kind: TransferKind::DepositBack,
                },
            ];
            state.ledger.transfer_linked(&legs, now)
        })
    }
}
